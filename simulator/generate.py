"""Generate a synthetic dataset: rooms fanned out to Ray workers, written into one Zarr store.

    python -m simulator.generate --rooms 500
    python -m simulator.generate --verify data/synth.zarr     # list damaged rooms (exit 1 if any)
    python -m simulator.generate --repair data/synth.zarr     # regenerate exactly those rooms

runs on the machine's cores with a local Ray and writes ``data/synth.zarr``; with
``--address HOST:PORT`` it runs on an existing Ray cluster (``ray start --head`` on one machine,
``ray start --address HOST:PORT`` on the others; the store must then be reachable by every worker:
a shared folder or an fsspec URL such as ``s3://bucket/synth.zarr``). ``--workers 0`` simulates
the rooms one after another in this process, without Ray (the same arrays: see below).

Each room is one task: a room scene (size, materials, air, rig, camera) is drawn, its empty-room
response computed once, then ``--frames-per-room`` frames of ``--subjects-per-room`` people doing
random activities are recorded, deconvolved into pose kernels (``pipeline.deconvolution``) and
seen by a 2D detector model (``pipeline.detector``). The worker writes the room's chunks and, last,
the room's ``room_done`` flag (see ``pipeline.store_format`` for the layout).

Resumable and deterministic: room r draws everything from ``numpy.random.default_rng([seed, r])``,
so a killed or interrupted run started again with the same arguments computes only the rooms not
yet flagged done, and any number of workers gives the same arrays. Starting it with other
arguments on an existing store is refused.

Your files are safe: every argument is checked before any work and before anything is written.
The store is created only in a new or empty folder; an existing folder that is not a store of this
format, a file, or a store of another format or version is refused and left as it was.

Damage (``pipeline.store_integrity``): ``--verify STORE`` reads every chunk of every done room and
lists the rooms with a chunk missing, a chunk that does not decode, or values never written.
``--repair STORE`` does the same, then regenerates exactly the damaged rooms from the generator
configuration recorded in the store (with ``--workers`` / ``--address`` as for a generation; the
other generation flags are refused, the store knows them) and verifies again. A repair that is
interrupted is finished by running it again.

Exit codes: 0 done (``--verify``: no damage; ``--repair``: none left); 1 ``--verify`` found damaged
rooms (they are listed on stdout) or ``--repair`` left some; 2 a bad argument, output or store,
refused before any work with one line naming it; 130 interrupted (Ctrl-C): the rooms finished are
kept, the same command resumes.

This module sits at the end of the simulation side of the data flow (bodies, rooms, simulator,
then pipeline's deconvolution and detector), as the design page draws it; it is the one place in
``simulator`` that imports ``pipeline``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bodies import ACTIVITIES
from core.checks import check_choice, check_number, check_whole
from core.cli import run_command
from core.errors import EXIT_OK, EXIT_TARGET_MISSED, InputError
from pipeline.store_format import (
    FORMAT_NAME, FORMAT_VERSION, READABLE_VERSIONS, SPLITS, StoreShape, chunks_for, compressors, fill_value,
    frame_arrays, room_arrays,
)

DEFAULT_OUT = "data/synth.zarr"
RIGS = ("mixed", "co-located", "separated")

# Upper bounds that catch typos before they cost anything. Each reader keeps per-frame index and
# label arrays in memory and a frame's kernels take ~150 kB uncompressed (16 pairs x 4800
# float16), so 10^7 frames (a thousand times the paper's ~10,000) is already ~1.5 TB of kernels; a
# mistyped --rooms 1000000000000 used to try to allocate terabytes for the room flags alone.
MAX_ROOMS = 10**6
MAX_FRAMES = 10**7
MAX_SUBJECTS_PER_ROOM = 1000
# Image sources of order n lie at least n x 2.2 m away (the lowest ceiling the room sampler
# allows), so beyond order 50 (110 m) they arrive long after the room response the recorder keeps
# (simulator.recording.SimulationConfig.room_response_s, 0.15 s ~ 51 m); a higher order only costs
# time, which grows with the cube of the order.
MAX_IMAGE_ORDER = 50
MAX_SEED = 2**63 - 1          # numpy seeds take any non-negative integer; the store's JSON keeps 64 bits

# Fields of the configs built from a GenerationConfig, and the flag that sets each.
_FLAG_OF_FIELD = {
    "max_order": "--max-order", "snr_db": "--snr-db", "clock_offset_max_samples": "--clock-offset-max-samples",
    "transducer_responses": "--no-transducer-responses", "body_room_multipath": "--no-multipath",
    "shadowing": "--no-shadow", "min_floor_side_m": "--min-floor-m", "max_floor_side_m": "--max-floor-m",
    "colocated_probability": "--rig", "minor_fraction": "--minor-fraction",
}


class GenerationError(InputError):
    """A generation argument or the output store is unusable; the message says how to fix it."""


@dataclass
class GenerationConfig:
    """Everything that determines the data (the store records it; a resumed run must match it).

    Every field is checked when the config is built, with the flag that sets it named, and the
    configs a worker builds from it (simulation, room sampler, subject sampler) are built here too,
    so that a bad argument fails in the first second, before any store exists.

    Attributes:
        rooms: number of rooms (tasks), at most ``MAX_ROOMS``.
        frames_per_room: frames recorded in each room (~20: 500 rooms give the paper's ~10,000);
            rooms x frames_per_room is at most ``MAX_FRAMES``.
        subjects_per_room: distinct people per room; frames alternate between them.
        seed: the dataset's seed (>= 0).
        rig: 'co-located' (the real dataset's 4 speaker/microphone pairs), 'separated', or
            'mixed' (each room draws one, half and half).
        minor_fraction: probability that a subject is a minor (5-17 years).
        activities: activities drawn uniformly per frame.
        min_floor_m, max_floor_m: floor side range (5 m and up by default, the paper's assumption).
        max_order: image-source order of the rooms (at most ``MAX_IMAGE_ORDER``).
        snr_db: sensor noise (None: none); clock_offset_max_samples: playback/capture clock offset.
        transducer_responses: speaker and microphone frequency responses.
        multipath, shadowing: body-room multipath and the body's shadow on room paths.
        kernel_samples: length of each stored pose kernel (4800 = 50 ms = 17 m of round trip), at
            most one chirp period.
        kernel_dtype: 'float16' (default, normalised kernels) or 'float32'.
        keep_recordings: also store the raw recordings and the ground-truth kernels.
        split: proportions of train / val / test rooms (split by room).
    """

    rooms: int = 500
    frames_per_room: int = 20
    subjects_per_room: int = 2
    seed: int = 0
    rig: str = "mixed"
    minor_fraction: float = 0.4
    activities: tuple[str, ...] = ACTIVITIES
    min_floor_m: float = 5.0
    max_floor_m: float = 10.0
    max_order: int = 17
    snr_db: float | None = 40.0
    clock_offset_max_samples: float = 0.5
    transducer_responses: bool = True
    multipath: bool = True
    shadowing: bool = True
    kernel_samples: int = 4800
    kernel_dtype: str = "float16"
    keep_recordings: bool = False
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)

    def __post_init__(self) -> None:
        E = GenerationError
        self.rooms = check_whole("--rooms", self.rooms, 1, MAX_ROOMS, error=E)
        self.frames_per_room = check_whole("--frames-per-room", self.frames_per_room, 1, MAX_FRAMES, error=E)
        if self.rooms * self.frames_per_room > MAX_FRAMES:
            raise E(f"--rooms {self.rooms} x --frames-per-room {self.frames_per_room} = "
                    f"{self.rooms * self.frames_per_room:,} frames: a store holds at most {MAX_FRAMES:,}; give fewer "
                    f"rooms or frames per room (or write several stores)")
        self.subjects_per_room = check_whole("--subjects-per-room", self.subjects_per_room, 1, MAX_SUBJECTS_PER_ROOM,
                                             error=E)
        self.seed = check_whole("--seed", self.seed, 0, MAX_SEED, error=E)
        check_choice("--rig", self.rig, RIGS, error=E)
        self.minor_fraction = check_number("--minor-fraction", self.minor_fraction, 0.0, 1.0, error=E)
        if isinstance(self.activities, str):
            self.activities = (self.activities,)
        self.activities = tuple(self.activities)
        unknown = [a for a in self.activities if a not in ACTIVITIES]
        if unknown or not self.activities:
            raise E(f"--activities {unknown if unknown else '(none)'}: choose from {', '.join(ACTIVITIES)}")
        self.min_floor_m = check_number("--min-floor-m", self.min_floor_m, 2.5, error=E)
        self.max_floor_m = check_number("--max-floor-m", self.max_floor_m, 2.5, error=E)
        if self.max_floor_m < self.min_floor_m:
            raise E(f"--max-floor-m = {self.max_floor_m:g} is below --min-floor-m = {self.min_floor_m:g}; give "
                    f"--max-floor-m >= --min-floor-m")
        self.max_order = check_whole("--max-order", self.max_order, 0, MAX_IMAGE_ORDER, error=E)
        if self.snr_db is not None:
            self.snr_db = check_number("--snr-db", self.snr_db, error=E)
        self.clock_offset_max_samples = check_number("--clock-offset-max-samples", self.clock_offset_max_samples,
                                                     0.0, error=E)
        for name, flag in (("transducer_responses", "--no-transducer-responses"), ("multipath", "--no-multipath"),
                           ("shadowing", "--no-shadow"), ("keep_recordings", "--keep-recordings")):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise E(f"{flag}: {name} = {getattr(self, name)!r}; give True or False")
            setattr(self, name, bool(getattr(self, name)))
        check_choice("--kernel-dtype", self.kernel_dtype, ("float16", "float32"), error=E)
        self.split = self._checked_split()
        sim = self.simulation_config()   # its own checks, as every worker will run them
        period = sim.chirp_plan.n_samples
        self.kernel_samples = check_whole("--kernel-samples", self.kernel_samples, 1, error=E)
        if self.kernel_samples > period:
            raise E(f"--kernel-samples = {self.kernel_samples}: at most {period}, one chirp period "
                    f"({sim.chirp_plan.duration_s * 1e3:g} ms at {sim.chirp_plan.sample_rate_hz / 1e3:g} kHz), the "
                    f"longest kernel a frame can be deconvolved into")
        self.room_sampler_config()
        self.subject_sampler_config()

    def _checked_split(self) -> tuple[float, float, float]:
        split = tuple(self.split) if isinstance(self.split, (tuple, list, np.ndarray)) else (self.split,)
        text = f"--split = {tuple(split)}: give three proportions (train val test), each in [0, 1], summing to 1"
        if len(split) != 3:
            raise GenerationError(text)
        try:
            split = tuple(check_number("--split", x, 0.0, 1.0, error=GenerationError) for x in split)
        except GenerationError:
            raise GenerationError(text) from None
        if abs(sum(split) - 1.0) > 1e-6:
            raise GenerationError(text)
        return split

    def _built(self, make):
        """``make()``, its InputError restated with the flag that set the field at fault."""
        try:
            return make()
        except InputError as err:
            text = str(err)
            flag = next((f for field, f in _FLAG_OF_FIELD.items() if field in text), "the generator's configuration")
            raise GenerationError(f"{flag}: {text}") from None

    def simulation_config(self):
        """The :class:`simulator.recording.SimulationConfig` every room is recorded with."""
        from simulator.recording import SimulationConfig

        return self._built(lambda: SimulationConfig(
            max_order=self.max_order, snr_db=self.snr_db, clock_offset_max_samples=self.clock_offset_max_samples,
            transducer_responses=self.transducer_responses, body_room_multipath=self.multipath,
            shadowing=self.shadowing))

    def room_sampler_config(self):
        """The :class:`rooms.RoomSamplerConfig` every room is drawn from."""
        from rooms import RoomSamplerConfig

        colocated = {"co-located": 1.0, "separated": 0.0, "mixed": 0.5}[self.rig]
        return self._built(lambda: RoomSamplerConfig(min_floor_side_m=self.min_floor_m,
                                                     max_floor_side_m=self.max_floor_m,
                                                     colocated_probability=colocated))

    def subject_sampler_config(self):
        """The :class:`bodies.SubjectSamplerConfig` every subject is drawn from."""
        from bodies import SubjectSamplerConfig

        return self._built(lambda: SubjectSamplerConfig(minor_fraction=self.minor_fraction))

    def identity(self) -> dict:
        """JSON form, compared with a store's to refuse mixing datasets."""
        d = dataclasses.asdict(self)
        d["activities"] = list(self.activities)
        d["split"] = list(self.split)
        return d


def room_split(config: GenerationConfig, room: int) -> int:
    """Split (0 train, 1 val, 2 test) of a room: fixed by the seed and the room, never by the frames."""
    u = np.random.default_rng([config.seed, room, 7]).random()
    return int(np.searchsorted(np.cumsum(config.split), u, side="right").clip(0, 2))


# -- one room ---------------------------------------------------------------------------------
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
        from pipeline.deconvolution import deconvolve, normalize_kernels
        from pipeline.detector import DetectorModel, occluded_joints
        from rooms import RoomInputError, RoomSampler
        from simulator.recording import RoomSimulator
        from simulator.scene import compose_scene

        cfg = self.config
        rng = np.random.default_rng([cfg.seed, room])
        room_scene = RoomSampler(cfg.room_sampler_config()).sample(rng)
        sim_config = cfg.simulation_config()
        subjects = [SubjectSampler(cfg.subject_sampler_config()).sample(rng) for _ in range(cfg.subjects_per_room)]
        simulator = RoomSimulator(room_scene, sim_config)  # the room's response, once
        camera = room_scene.camera
        detector = DetectorModel()
        bands = sim_config.chirp_plan.speaker_bands_hz()
        S, M = len(room_scene.rig.speaker_positions_m), len(room_scene.rig.microphone_positions_m)
        pair_index = np.array([(s, m) for s in range(S) for m in range(M)], dtype=np.int16)
        frames: dict[str, list] = {}

        def add(name, value):
            frames.setdefault(name, []).append(np.asarray(value))

        for k in range(cfg.frames_per_room):
            activity = cfg.activities[rng.integers(len(cfg.activities))]
            try:
                scene = compose_scene(rng, room_scene, self.sampler, activity=activity,
                                      subject=subjects[k % len(subjects)])
            except RoomInputError:  # no pose of this activity fits this room (a wide reach, a tiny seat)
                scene = compose_scene(rng, room_scene, self.sampler, activity="standing",
                                      subject=subjects[k % len(subjects)])
            # sitting rebuilds the seat to the body's height: the body is checked against that room
            recording = simulator.record(scene.body, rng, room_scene=scene.room_scene)
            kernels = deconvolve(recording.recordings, recording.empty_recordings, recording.chirps, bands,
                                 recording.sample_rate_hz, kernel_samples=cfg.kernel_samples)
            kernels = kernels.reshape(S * M, cfg.kernel_samples)
            normalized, scale = normalize_kernels(kernels)
            body = scene.body
            to_cam = camera.world_to_camera
            joints_cam = to_cam(body.joints)
            occluded = occluded_joints(to_cam(body.vertices.astype(float)), body.faces, joints_cam)
            keypoints = detector.detect(joints_cam, camera.intrinsics, camera.image_size_px, rng, occluded)
            add("kernels", normalized)
            add("kernel_scale", scale)
            add("pair_index", pair_index)
            add("speaker_pos", to_cam(recording.speaker_positions_m))
            add("mic_pos", to_cam(recording.microphone_positions_m))
            add("joints3d", joints_cam)
            add("keypoints2d", keypoints)
            add("intrinsics", camera.intrinsics)
            add("cam_to_world", camera.cam_to_world)
            add("room_id", room)
            add("split", room_split(cfg, room))
            add("height", body.stature_m)
            add("is_minor", body.is_minor)
            add("activity", ACTIVITIES.index(body.activity))
            add("age_years", body.subject.age_years)
            add("speed_of_sound", recording.speed_of_sound_m_s)
            add("occluded", occluded)
            if cfg.keep_recordings:
                add("recordings", recording.recordings)
                add("empty_recordings", recording.empty_recordings)
                truth = recording.pose_kernels.reshape(S * M, -1)[:, :cfg.kernel_samples]
                add("pose_kernels_true", truth)
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
        return {"frames": {name: np.stack(values) for name, values in frames.items()}, "room": room_values}


def write_room(root, config: GenerationConfig, room: int, result: dict) -> None:
    """Write one room's chunks, then its done flag (last: readers trust only flagged rooms).

    Every chunk is written even when it equals the fill value (an all-False ``is_minor`` chunk),
    so that a missing chunk of a done room always means damage (``pipeline.store_integrity``).
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
    array("room_done")[room] = True


# -- the store --------------------------------------------------------------------------------
def _store_shape(config: GenerationConfig) -> StoreShape:
    period = config.simulation_config().chirp_plan.n_samples
    return StoreShape(config.rooms, config.frames_per_room, 4, 4, config.kernel_samples, period)


def _is_remote(out: str) -> bool:
    return "://" in out and not out.startswith("file://")


def _local_path(out: str) -> Path:
    return Path(out.removeprefix("file://")).expanduser()


_ZARR_MARKERS = {"zarr.json", ".zgroup", ".zarray", ".zattrs"}


def inspect_output(out: str, flag: str = "--out") -> str:
    """What is at ``out``: 'new' (nothing), 'empty' (an empty folder) or 'store' (a Zarr node).

    Refuses (GenerationError naming ``flag``) a file, and a folder that holds anything but a Zarr
    store: nothing there is touched.
    """
    if _is_remote(out):
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(out)
            if not fs.exists(path):
                return "new"
            if fs.isfile(path):
                raise GenerationError(f"{flag} {out}: is a file, not a store; give a new or empty folder")
            names = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False)}
        except GenerationError:
            raise
        except Exception as err:  # noqa: BLE001 - fsspec back ends raise their own kinds
            raise GenerationError(f"{flag} {out}: cannot be read ({type(err).__name__}: {err}); check the URL and "
                                  f"its credentials") from None
    else:
        path = _local_path(out)
        if not path.exists() and not path.is_symlink():
            return "new"
        if not path.is_dir():
            raise GenerationError(f"{flag} {out}: is a file, not a store; give a new or empty folder (nothing was "
                                  f"changed)")
        try:
            names = {entry.name for entry in path.iterdir()}
        except OSError as err:
            raise GenerationError(f"{flag} {out}: cannot be read ({err.strerror}); choose a folder you can "
                                  f"read and write") from None
    if not names:
        return "empty"
    if names & _ZARR_MARKERS:
        return "store"
    shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
    raise GenerationError(f"{flag} {out}: exists and holds files that are not a Zarr store ({shown}); nothing was "
                          f"changed: give a new or empty folder")


def check_writable(out: str, flag: str = "--out") -> None:
    """Refuse an output that cannot be written, before any work; creates nothing that stays.

    The nearest existing folder on the way to ``out`` gets a probe file, removed at once; the
    folders below it are made only when the store is created.
    """
    if _is_remote(out):
        return  # remote stores: zarr / fsspec report their own errors when the store is created
    path = _local_path(out)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise GenerationError(f"{flag} {out}: cannot write there ({existing} is a file, not a folder); choose "
                              f"another path")
    probe = existing / f".write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise GenerationError(f"{flag} {out}: cannot write there ({err.strerror or err}); choose a writable "
                              f"folder") from None


def open_store(url: str, flag: str, mode: str = "r"):
    """An existing store of this format (any readable version), or GenerationError naming ``flag``."""
    import zarr

    if inspect_output(url, flag) != "store":
        raise GenerationError(f"{flag} {url}: no store there; give the folder (or URL) of a store that "
                              f"`python -m simulator.generate` wrote")
    try:
        root = zarr.open_group(url, mode=mode)
        attrs = dict(root.attrs)
    except Exception as err:  # noqa: BLE001 - a Zarr array, or metadata that does not parse
        raise GenerationError(f"{flag} {url}: is not a readable Zarr group ({type(err).__name__}: {err}); "
                              f"choose another path") from None
    if attrs.get("format") != FORMAT_NAME:
        raise GenerationError(f"{flag} {url}: is a Zarr store but not a {FORMAT_NAME} dataset (nothing was "
                              f"changed); choose another path")
    if attrs.get("format_version") not in READABLE_VERSIONS:
        raise GenerationError(f"{flag} {url}: was written by format version {attrs.get('format_version')}, this "
                              f"program reads versions {', '.join(map(str, READABLE_VERSIONS))}; use the program "
                              f"that wrote it")
    return root


def _create_arrays(root, config: GenerationConfig) -> None:
    """Create the format's arrays the store lacks (all of them for a new store).

    NaN / -1 fill values and written empty chunks make damage visible (``pipeline.store_format``).
    """
    shape = _store_shape(config)
    wanted = [(name, spec, False) for name, spec in
              frame_arrays(shape, config.kernel_dtype, config.keep_recordings).items()]
    wanted += [(name, spec, True) for name, spec in room_arrays(shape).items()]
    for name, (array_shape, dtype), per_room in wanted:
        if name in root:
            continue
        root.create_array(name, shape=array_shape, dtype=dtype,
                          chunks=chunks_for(name, array_shape, config.frames_per_room, per_room),
                          compressors=compressors(), fill_value=fill_value(dtype),
                          config={"write_empty_chunks": True})


def _store_attrs(config: GenerationConfig) -> dict:
    from simulator.signals import ChirpPlan

    plan = ChirpPlan()
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sample_rate_hz": plan.sample_rate_hz,
        "speed_of_sound": "per frame, array speed_of_sound (m/s), from each room's air temperature",
        "joint_names": list(__import__("bodies").JOINT_NAMES),
        "activity_labels": list(ACTIVITIES),
        "split_labels": list(SPLITS),
        "frames_per_room": config.frames_per_room,
        "rooms": config.rooms,
        "kernel_samples": config.kernel_samples,
        "kernel_normalization": "kernels = pose kernels / kernel_scale (pipeline.deconvolution.normalize_kernels)",
        "fill_values": "NaN (float arrays) and -1 (integer arrays) where nothing was written: only rooms flagged in "
                       "room_done hold data",
        "chirp_plan": {"band_hz": list(plan.band_hz), "n_speakers": plan.n_speakers, "duration_s": plan.duration_s,
                       "speaker_bands_hz": plan.speaker_bands_hz().tolist()},
        "frame": "camera (OpenCV: x right, y down, z forward), metres; cam_to_world maps to the room frame (z up)",
        "image_size_px": [1920, 1080],
        "seed": config.seed,
        "generator_config": config.identity(),
    }


def _done_or_unreadable(root) -> tuple[np.ndarray, list[int]]:
    from pipeline.store_integrity import done_flags

    done, unreadable, _ = done_flags(root)
    return done, unreadable


def open_or_create_store(out: str, config: GenerationConfig):
    """Open the store for writing, creating it with every array; refuse anything else at ``out``.

    A store is created only where nothing is (a new path or an empty folder) and never opened for
    overwriting; an existing store is resumed only when it was made with the same configuration.
    Returns (root group, indices of rooms still to do).
    """
    import zarr

    kind = inspect_output(out, "--out")
    if kind == "store":
        attrs = dict(open_store(out, "--out").attrs)
        if attrs.get("format_version") != FORMAT_VERSION:
            raise GenerationError(
                f"--out {out}: was written by format version {attrs.get('format_version')}, this is version "
                f"{FORMAT_VERSION}; write a new store (another --out); the old one stays readable")
        if attrs.get("generator_config") != config.identity():
            theirs, ours = attrs.get("generator_config") or {}, config.identity()
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise GenerationError(
                f"--out {out}: holds a dataset made with other arguments ({', '.join(diff)} differ: store "
                f"{ {k: theirs.get(k) for k in diff} }); rerun with the same arguments to resume, or pass "
                f"another --out")
        check_writable(out)
        root = zarr.open_group(out, mode="r+")
        _create_arrays(root, config)   # a creation interrupted between two arrays is finished here
        done, unreadable = _done_or_unreadable(root)
        done[unreadable] = False      # a done flag that does not decode: redo the room
        return root, np.flatnonzero(~done)

    check_writable(out)
    try:
        # "w-" fails if anything is there by now; "w" would delete it
        root = zarr.open_group(out, mode="w-", attributes=_store_attrs(config))
    except FileExistsError:
        raise GenerationError(f"--out {out}: something appeared there while the store was being created; nothing "
                              f"was changed: give a new or empty folder") from None
    _create_arrays(root, config)
    return root, np.arange(config.rooms)


# -- running rooms ------------------------------------------------------------------------------
def check_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """Refuse an unreachable cluster before starting anything."""
    if address in ("auto", "local"):
        return
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise GenerationError(f"--address {address!r}: give HOST:PORT of a Ray head (the one `ray start --head` prints)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        raise GenerationError(
            f"--address {address}: no Ray head answers there ({err}); start one with `ray start --head` and "
            f"pass the address it prints") from None


def check_workers(workers, address: str | None) -> int | None:
    """``--workers``: None (every CPU of the cluster), 0 (this process, no Ray) or a positive count."""
    if workers is None:
        return None
    workers = check_whole("--workers", workers, 0, 100_000, error=GenerationError)   # more: a typo, not a cluster
    if workers == 0 and address:
        raise GenerationError(f"--workers 0 runs the rooms in this process; drop --address {address} (or give "
                              f"--workers >= 1)")
    return workers


def _room_report(room: int, seconds: float, result: dict) -> dict:
    import resource

    frames = result["frames"]
    return {"room": room, "seconds": seconds, "frames": len(frames["height"]),
            "minors": int(frames["is_minor"].sum()), "activities": frames["activity"].tolist(),
            "worker_peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _worker_class():
    import ray

    @ray.remote(num_cpus=1, max_restarts=3, max_task_retries=3)
    class RoomWorker:
        """A Ray actor: builds the body model once, then simulates and writes whole rooms."""

        def __init__(self, config: dict, out: str):
            import zarr

            os.environ.setdefault("NUMBA_NUM_THREADS", "1")
            self.config = GenerationConfig(**config)
            self.generator = RoomGenerator(self.config)
            self.root = zarr.open_group(out, mode="r+")

        def run(self, room: int) -> dict:
            t = time.perf_counter()
            result = self.generator.simulate(room)
            write_room(self.root, self.config, room, result)
            return _room_report(room, time.perf_counter() - t, result)

    return RoomWorker


_BODY_MODEL = None


def _body_model():
    """The body model of in-process runs (``--workers 0``), built once per process."""
    global _BODY_MODEL
    if _BODY_MODEL is None:
        from bodies import load_body_model

        _BODY_MODEL = load_body_model("anny")
    return _BODY_MODEL


def _run_rooms(config: GenerationConfig, out: str, rooms, workers: int | None, address: str | None,
               progress: bool, body_model=None) -> list[dict]:
    """Simulate and write ``rooms``: in this process (``workers == 0``) or on Ray workers."""
    from tqdm import tqdm

    rooms = [int(r) for r in rooms]
    results: list[dict] = []
    if not rooms:
        return results
    started = time.perf_counter()
    bar = tqdm(total=len(rooms), unit="room", disable=not progress, desc="rooms")

    def finished(report):
        results.append(report)
        frames = sum(r["frames"] for r in results)
        bar.set_postfix(frames_per_s=f"{frames / (time.perf_counter() - started):.2f}")
        bar.update(1)

    try:
        if workers == 0:
            import torch
            import zarr

            threads = torch.get_num_threads()   # RoomGenerator takes one thread; give them back after
            try:
                generator = RoomGenerator(config, body_model=body_model or _body_model())
                root = zarr.open_group(out, mode="r+")
                for room in rooms:
                    t = time.perf_counter()
                    result = generator.simulate(room)
                    write_room(root, config, room, result)
                    finished(_room_report(room, time.perf_counter() - t, result))
            finally:
                torch.set_num_threads(threads)
            return results
        import ray

        runtime_env = {"env_vars": {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}}
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), runtime_env=runtime_env, log_to_driver=False,
                     include_dashboard=False)
        try:
            n_workers = min(len(rooms), workers or int(ray.cluster_resources().get("CPU", 1)))
            worker_cls = _worker_class()
            actors = [worker_cls.remote(config.identity(), out) for _ in range(n_workers)]
            queue = list(rooms)
            running = {}
            for actor in actors:
                if queue:
                    running[actor.run.remote(queue.pop(0))] = actor
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                actor = running.pop(ready[0])
                finished(ray.get(ready[0]))
                if queue:
                    running[actor.run.remote(queue.pop(0))] = actor
        finally:
            ray.shutdown()
        return results
    finally:
        bar.close()


def generate(config: GenerationConfig, out: str = DEFAULT_OUT, workers: int | None = None,
             address: str | None = None, progress: bool = True, body_model=None) -> dict:
    """Run (or resume) a generation; returns a summary.

    Args:
        workers: Ray workers (None: every CPU of the cluster); 0 simulates the rooms in this
            process, one after another, without Ray (same arrays: every room has its own seed).
        address: HOST:PORT of a running Ray cluster (None: a local Ray).
        body_model: the body model of an in-process run (default: Anny, built once per process).
    Everything is checked before the store is created or opened for writing.
    """
    workers = check_workers(workers, address)
    if address:
        check_ray_address(address)
    root, todo = open_or_create_store(out, config)
    started = time.perf_counter()
    results = _run_rooms(config, out, todo, workers, address, progress, body_model)
    summary = summarize(out, time.perf_counter() - started, results)
    if results:
        summary["worker_peak_memory_mb"] = round(max(r["worker_peak_memory_mb"] for r in results), 1)
        summary["seconds_per_frame_in_workers"] = round(sum(r["seconds"] for r in results) / summary["frames_this_run"], 3)
    return summary


# -- damage: verify and repair ------------------------------------------------------------------
def recorded_config(root, url: str, flag: str) -> GenerationConfig:
    """The GenerationConfig a store records (its rooms are regenerated from it)."""
    recorded = root.attrs.get("generator_config")
    try:
        return GenerationConfig(**recorded)
    except (TypeError, InputError) as err:
        raise GenerationError(f"{flag} {url}: the store's recorded generator_config cannot be used ({err}); "
                              f"regenerate the store") from None


def verify(url: str, progress: bool = False, flag: str = "--verify") -> dict:
    """Every done room's chunks checked (``pipeline.store_integrity.find_damage``); a report dict."""
    from pipeline.store_integrity import find_damage

    root = open_store(url, flag)
    rooms, damage = find_damage(root, progress=progress)
    return {"store": url, "rooms": int(root.attrs["rooms"]), "rooms_done": len(rooms),
            "damaged_rooms": sorted({d.room for d in damage}), "damage": damage}


def repair(url: str, workers: int | None = None, address: str | None = None, progress: bool = False,
           body_model=None) -> dict:
    """Regenerate exactly the damaged rooms of ``url`` from its recorded configuration, then verify.

    The rooms are rewritten in place (their done flags stay set: an interrupted repair leaves
    rooms that are as damaged as before or repaired, and running it again finishes it).
    Returns {"store", "repaired_rooms", "damaged_rooms" (left after the repair), "damage"}.
    """
    workers = check_workers(workers, address)
    if address:
        check_ray_address(address)
    root = open_store(url, "--repair")
    config = recorded_config(root, url, "--repair")
    check_writable(url, "--repair")
    before = verify(url, progress, flag="--repair")
    _run_rooms(config, url, before["damaged_rooms"], workers, address, progress, body_model)
    after = verify(url, progress, flag="--repair")
    return {"store": url, "repaired_rooms": before["damaged_rooms"], "damaged_rooms": after["damaged_rooms"],
            "damage": after["damage"]}


def _print_damage(report: dict) -> None:
    from pipeline.store_integrity import REPAIR_HINT

    for item in report["damage"]:
        print(f"  {item.describe()}")
    if report["damage"]:
        print("fix: " + REPAIR_HINT.format(url=report["store"]).split(" and ", 1)[1])


# -- summary and command line -------------------------------------------------------------------
def summarize(out: str, seconds: float, results: list[dict]) -> dict:
    """Counts of the store's done frames (a damaged store's counts are replaced by the damage)."""
    import zarr

    from pipeline.store_integrity import StoreDamagedError, done_rooms, read_checked

    root = zarr.open_group(out, mode="r")
    new_frames = sum(r["frames"] for r in results)
    path = _local_path(out)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if not _is_remote(out) else None
    summary = {
        "store": out,
        "rooms": int(root.attrs["rooms"]),
        "frames_this_run": int(new_frames),
        "seconds_this_run": round(seconds, 2),
        "frames_per_s": round(new_frames / seconds, 3) if seconds > 0 and new_frames else None,
        "size_on_disk_mb": None if size is None else round(size / 2**20, 2),
    }
    try:
        rooms = done_rooms(root, out)
        per_room = int(root.attrs["frames_per_room"])
        frames = (rooms[:, None] * per_room + np.arange(per_room)).ravel()
        activity, minors, split = (read_checked(root, out, name, frames) if len(frames) else np.zeros(0, dtype)
                                   for name, dtype in (("activity", int), ("is_minor", bool), ("split", int)))
    except StoreDamagedError as err:
        return summary | {"damage": str(err)}
    return summary | {
        "rooms_done": int(len(rooms)),
        "frames": int(len(frames)),
        "minors": int(minors.sum()), "adults": int((~minors).sum()),
        "activities": {ACTIVITIES[i]: int((activity == i).sum()) for i in range(len(ACTIVITIES))},
        "splits": {SPLITS[i]: int((split == i).sum()) for i in range(3)},
    }


# The flags that describe the data; --verify and --repair take them from the store instead.
_MAINTENANCE_FLAGS = {"verify", "repair", "workers", "address", "quiet"}
_UNSET = object()


def build_parser() -> argparse.ArgumentParser:
    defaults = GenerationConfig.__dataclass_fields__
    d = {name: field.default for name, field in defaults.items()}
    parser = argparse.ArgumentParser(prog="python -m simulator.generate", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rooms", type=int, default=d["rooms"], help=f"number of rooms (at most {MAX_ROOMS:,})")
    parser.add_argument("--frames-per-room", type=int, default=d["frames_per_room"], help="frames in each room")
    parser.add_argument("--subjects-per-room", type=int, default=d["subjects_per_room"],
                        help="people per room (frames alternate between them)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="Zarr store: a new or empty folder, an fsspec URL, or a "
                                                           "store of the same arguments to resume")
    parser.add_argument("--seed", type=int, default=d["seed"], help="dataset seed (>= 0)")
    parser.add_argument("--workers", type=int, default=None,
                        help="Ray workers (default: all CPUs of the cluster); 0: in this process, without Ray")
    parser.add_argument("--address", default=None, help="HOST:PORT of an existing Ray cluster (default: local Ray)")
    parser.add_argument("--rig", choices=RIGS, default=d["rig"],
                        help="co-located speaker/microphone pairs (real dataset), separated, or mixed per room")
    parser.add_argument("--minor-fraction", type=float, default=d["minor_fraction"], help="share of minors")
    parser.add_argument("--activities", nargs="+", default=list(ACTIVITIES), help="activities to draw")
    parser.add_argument("--min-floor-m", type=float, default=d["min_floor_m"], help="smallest floor side (m)")
    parser.add_argument("--max-floor-m", type=float, default=d["max_floor_m"], help="largest floor side (m)")
    parser.add_argument("--max-order", type=int, default=d["max_order"],
                        help=f"image-source order (at most {MAX_IMAGE_ORDER})")
    parser.add_argument("--snr-db", type=float, default=d["snr_db"], help="sensor noise SNR (dB)")
    parser.add_argument("--clock-offset-max-samples", type=float, default=d["clock_offset_max_samples"],
                        help="largest playback/capture clock offset (samples)")
    parser.add_argument("--no-transducer-responses", action="store_true", help="ideal speakers and microphones")
    parser.add_argument("--no-multipath", action="store_true", help="leave out body-room multipath")
    parser.add_argument("--no-shadow", action="store_true", help="leave out the body's shadow on room paths")
    parser.add_argument("--kernel-samples", type=int, default=d["kernel_samples"],
                        help="stored kernel length (at most one chirp period)")
    parser.add_argument("--kernel-dtype", choices=("float16", "float32"), default=d["kernel_dtype"],
                        help="stored kernel precision")
    parser.add_argument("--keep-recordings", action="store_true",
                        help="also store raw recordings and ground-truth kernels (about 3x larger)")
    parser.add_argument("--split", type=float, nargs=3, default=list(d["split"]), metavar=("TRAIN", "VAL", "TEST"),
                        help="room proportions of the splits")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    damage = parser.add_mutually_exclusive_group()
    damage.add_argument("--verify", metavar="STORE", default=None,
                        help="check every chunk of every done room of STORE and list the damaged rooms "
                             "(exit 0: none, 1: some)")
    damage.add_argument("--repair", metavar="STORE", default=None,
                        help="regenerate exactly the damaged rooms of STORE from its recorded configuration, "
                             "then verify (exit 0: none left)")
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The arguments, and the data flags given on the command line (not left at their defaults)."""
    data_dests = [a.dest for a in parser._actions if a.option_strings and a.dest not in _MAINTENANCE_FLAGS
                  and a.dest != "help"]
    # argparse fills in a default only where the namespace has no value yet: a sentinel shows what was given
    args = parser.parse_args(argv, argparse.Namespace(**{dest: _UNSET for dest in data_dests}))
    given = []
    for action in parser._actions:
        if action.dest in data_dests:
            if getattr(args, action.dest) is _UNSET:
                setattr(args, action.dest, action.default)
            else:
                given.append(action.option_strings[0])
    return args, given


def _interrupted_message(state: dict) -> str:
    """What Ctrl-C leaves: the rooms stored, and the command that goes on."""
    out = state.get("out")
    if out is None:
        return "nothing was written"
    try:
        import zarr

        root = zarr.open_group(out, mode="r")
        done, _ = _done_or_unreadable(root)
        stored = f"{int(done.sum())} of {int(root.attrs['rooms'])} rooms are stored in {out}"
    except Exception:  # noqa: BLE001 - interrupted before the store existed
        return f"no room was stored in {out} yet; run the same command again to start"
    if state.get("repair"):
        return f"{stored}; run the same --repair command again to finish the repair"
    return f"{stored}; run the same command again to resume (finished rooms are kept)"


def _run(parser: argparse.ArgumentParser, argv: list[str] | None, state: dict) -> int:
    args, given = _parse(parser, argv)
    store = args.verify or args.repair
    if store is not None:
        flag = "--verify" if args.verify else "--repair"
        if given:
            raise GenerationError(f"{given[0]}: not used with {flag}, which reads the generator configuration "
                                  f"recorded in the store; drop it")
        if args.verify:
            report = verify(store, progress=not args.quiet)
            print(f"{store}: {report['rooms_done']} of {report['rooms']} rooms done, "
                  + (f"{len(report['damaged_rooms'])} damaged: rooms {', '.join(map(str, report['damaged_rooms']))}"
                     if report["damage"] else "no damage found"))
            _print_damage(report)
            return EXIT_TARGET_MISSED if report["damage"] else EXIT_OK
        state.update(out=store, repair=True)
        report = repair(store, args.workers, args.address, progress=not args.quiet)
        repaired = report["repaired_rooms"]
        print(f"{store}: repaired rooms {', '.join(map(str, repaired))}" if repaired else
              f"{store}: no damage found, nothing to repair")
        if report["damage"]:
            print(f"{store}: still damaged after the repair: rooms {', '.join(map(str, report['damaged_rooms']))}")
            _print_damage(report)
            return EXIT_TARGET_MISSED
        return EXIT_OK
    config = GenerationConfig(
        rooms=args.rooms, frames_per_room=args.frames_per_room, subjects_per_room=args.subjects_per_room,
        seed=args.seed, rig=args.rig, minor_fraction=args.minor_fraction, activities=tuple(args.activities),
        min_floor_m=args.min_floor_m, max_floor_m=args.max_floor_m, max_order=args.max_order,
        snr_db=args.snr_db, clock_offset_max_samples=args.clock_offset_max_samples,
        transducer_responses=not args.no_transducer_responses, multipath=not args.no_multipath,
        shadowing=not args.no_shadow, kernel_samples=args.kernel_samples, kernel_dtype=args.kernel_dtype,
        keep_recordings=args.keep_recordings, split=tuple(args.split))
    state["out"] = args.out
    summary = generate(config, args.out, args.workers, args.address, progress=not args.quiet)
    print(json.dumps(summary, indent=2))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    state: dict = {}
    return run_command(lambda: _run(parser, argv, state), interrupted=lambda: _interrupted_message(state))


if __name__ == "__main__":
    sys.exit(main())
