"""One room of a synthetic store: its scene drawn, its frames recorded, deconvolved and detected, its chunks written.

Room r draws everything from ``numpy.random.default_rng([seed, r])``, so a room's arrays depend on
the generator configuration and r only: any worker, any order, the same arrays.

With a rig file (``GenerationConfig.rig_file``) every room carries the user's rig with its camera,
a pose that comes within ``RIG_BODY_CLEARANCE_M`` of a transducer is drawn again, and the stored
``speaker_pos`` / ``mic_pos`` are the file's own numbers: the positions the user's captures carry
(a co-located microphone is simulated 2 cm above its speaker, where its speaker's number puts it).
"""
from __future__ import annotations

import numpy as np

from bodies import ACTIVITIES
from simulator.generation_config import GenerationConfig, room_split
from simulator.realism import REALISM_STREAM

__all__ = ["RIG_BODY_CLEARANCE_M", "RoomGenerator", "write_room"]

#: With a rig file, a body keeps this far from every transducer (m): people do not touch the speakers.
RIG_BODY_CLEARANCE_M = 0.2
#: The fourth word of a room's motion seed: [seed, room, REALISM_STREAM, MOTION_SUBSTREAM].
MOTION_SUBSTREAM = 1
#: Poses drawn before a rig-file frame falls back to standing (the narrowest pose), and then gives up.
_RIG_POSE_TRIES = 20


class RoomGenerator:
    """Simulates whole rooms; holds the body model (built once per process)."""

    def __init__(self, config: GenerationConfig, body_model=None):
        import torch

        from bodies import PoseSampler, load_body_model

        torch.set_num_threads(1)  # one room per core, and bit-identical results
        self.config = config
        self.sampler = PoseSampler(body_model or load_body_model("anny"))

    def simulate(self, room: int) -> dict:
        """All arrays of one room: {'frames': {name: (frames_per_room, ...)}, 'room': {name: value}}."""
        from bodies import SubjectSampler
        from rooms import RoomSampler
        from simulator.detector import DetectorModel
        from simulator.recording import RoomSimulator

        cfg = self.config
        self.sampler.model.forget_subjects()     # new room, new people: the last room's rest shapes are of no use
        rng = np.random.default_rng([cfg.seed, room])
        room_scene = RoomSampler(cfg.room_sampler_config()).sample(rng)
        sim_config = cfg.simulation_config()
        subjects = [SubjectSampler(cfg.subject_sampler_config()).sample(rng) for _ in range(cfg.subjects_per_room)]
        # the room's response, once; realistic effects from a stream of their own (the rest of the room as ideal)
        realism_rng = np.random.default_rng([cfg.seed, room, REALISM_STREAM]) if sim_config.realistic else None
        simulator = RoomSimulator(room_scene, sim_config, rng=realism_rng)
        detector = DetectorModel()
        # the bodies' motion during the chirp: a stream of its own too, so that the people stay the ideal store's
        motion_rng = (np.random.default_rng([cfg.seed, room, REALISM_STREAM, MOTION_SUBSTREAM])
                      if sim_config.motion is not None else None)
        S, M = len(room_scene.rig.speaker_positions_m), len(room_scene.rig.microphone_positions_m)
        pair_index = np.array([(s, m) for s in range(S) for m in range(M)], dtype=np.int16)
        frames: dict[str, list] = {}
        for k in range(cfg.frames_per_room):
            values = self._frame(rng, room, room_scene, simulator, detector, subjects[k % len(subjects)], pair_index,
                                 motion_rng)
            for name, value in values.items():
                frames.setdefault(name, []).append(np.asarray(value))
        room_ir = simulator.room_impulse_responses
        room_scale = float(np.abs(room_ir).max()) or 1.0
        room_values = {
            "room_impulse_responses": room_ir / room_scale,
            "room_impulse_scale": room_scale,
            "room_dimensions_m": room_scene.room.bounds_m[1] - room_scene.room.bounds_m[0],
            "room_temperature_c": room_scene.temperature_c,
            "room_relative_humidity_pct": room_scene.relative_humidity_pct,
            "room_colocated": bool(room_scene.rig.colocated),
            "room_split": room_split(cfg, room),
        }
        return {"frames": {name: np.stack(values) for name, values in frames.items()}, "room": room_values,
                "realism": simulator.realism()}

    def _frame(self, rng, room: int, room_scene, simulator, detector, subject, pair_index, motion_rng=None) -> dict:
        """One frame's values (the store's per-frame arrays, in the order they are drawn); ``motion_rng`` draws the
        body's velocities during the chirp (None: a still body)."""
        from simulator.deconvolution import deconvolve_recording, normalize_kernels
        from simulator.detector import occluded_joints

        cfg = self.config
        camera = room_scene.camera
        activity = cfg.activities[rng.integers(len(cfg.activities))]
        scene = self._compose(rng, room_scene, activity, subject)
        moving = scene.body
        if motion_rng is not None:
            from bodies import with_velocities

            moving = with_velocities(self.sampler, scene.body, motion_rng, simulator.config.motion)
        # sitting rebuilds the seat to the body's height: the body is checked against that room
        recording = simulator.record(moving, rng, room_scene=scene.room_scene, ground_truth=cfg.keep_recordings)
        bands = cfg.simulation_config().chirp_plan.speaker_bands_hz()
        kernels = deconvolve_recording(recording, bands, kernel_samples=cfg.kernel_samples)   # drift-aware
        kernels = kernels.reshape(len(pair_index), cfg.kernel_samples)
        normalized, scale = normalize_kernels(kernels)
        body = scene.body
        to_cam = camera.world_to_camera
        joints_cam = to_cam(body.joints)
        occluded = occluded_joints(to_cam(body.vertices.astype(float)), body.faces, joints_cam)
        keypoints = detector.detect(joints_cam, camera.intrinsics, camera.image_size_px, rng, occluded)
        if cfg.rig_file is None:
            speaker_pos, mic_pos = to_cam(recording.speaker_positions_m), to_cam(recording.microphone_positions_m)
        else:  # the file's numbers, exactly (camera frame)
            speaker_pos = np.array(cfg.rig_file.rig.speaker_positions_m)
            mic_pos = np.array(cfg.rig_file.rig.microphone_positions_m)
        values = {
            "kernels": normalized, "kernel_scale": scale, "pair_index": pair_index,
            "speaker_pos": speaker_pos, "mic_pos": mic_pos,
            "joints3d": joints_cam, "keypoints2d": keypoints, "intrinsics": camera.intrinsics,
            "cam_to_world": camera.cam_to_world, "room_id": room, "split": room_split(cfg, room),
            "height": body.stature_m, "is_minor": body.is_minor, "activity": ACTIVITIES.index(body.activity),
            "age_years": body.subject.age_years, "speed_of_sound": recording.speed_of_sound_m_s, "occluded": occluded,
        }
        if cfg.keep_recordings:
            values["recordings"] = recording.recordings
            values["empty_recordings"] = recording.empty_recordings
            values["pose_kernels_true"] = recording.pose_kernels.reshape(len(pair_index), -1)[:, :cfg.kernel_samples]
        return values

    def _compose(self, rng, room_scene, activity: str, subject):
        """A person doing ``activity`` (standing if no such pose fits the room) placed in the room; with a
        rig file, clear of every transducer by ``RIG_BODY_CLEARANCE_M`` (drawn again, at last standing)."""
        from rooms import RoomGeometryError, RoomInputError
        from simulator.scene import compose_scene

        def draw(activity):
            try:
                return compose_scene(rng, room_scene, self.sampler, activity=activity, subject=subject)
            except RoomInputError:  # no pose of this activity fits this room (a wide reach, a tiny seat)
                return compose_scene(rng, room_scene, self.sampler, activity="standing", subject=subject)

        if self.config.rig_file is None:
            return draw(activity)
        rig = room_scene.rig
        transducers = np.vstack([rig.speaker_positions_m, rig.microphone_positions_m])
        for attempt in range(_RIG_POSE_TRIES):
            scene = draw(activity if attempt < _RIG_POSE_TRIES - 1 else "standing")
            vertices = scene.body.vertices.astype(float)
            gap = min(float(np.min(np.linalg.norm(vertices - point, axis=1))) for point in transducers)
            if gap >= RIG_BODY_CLEARANCE_M:
                return scene
        raise RoomGeometryError(f"no pose of a {activity} body keeps {RIG_BODY_CLEARANCE_M:g} m from the rig file's "
                                f"transducers in {_RIG_POSE_TRIES} tries (the closest came within {gap:.2f} m)")


def write_room(root, config: GenerationConfig, room: int, result: dict) -> None:
    """Write one room's chunks, then its done flag (last: readers trust only flagged rooms).

    Every chunk is written even when it equals the fill value (an all-False ``is_minor`` chunk),
    so that a missing chunk of a done room always means damage (``simulator.store_integrity``).
    """
    lo = room * config.frames_per_room
    hi = lo + config.frames_per_room

    def array(name):
        return root[name].with_config({"write_empty_chunks": True})

    for name, values in result["frames"].items():
        target = array(name)
        target[lo:hi] = values.astype(target.dtype)
    for name, value in result["room"].items():
        target = array(name)
        target[room] = np.asarray(value).astype(target.dtype)
    if result.get("realism"):   # the room's drawn effects: attributes of a group of its own (no shared file)
        root.require_group("room_realism").require_group(str(room)).attrs.update(result["realism"])
    array("room_done")[room] = True
