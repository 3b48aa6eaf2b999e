"""Generate a synthetic dataset: rooms fanned out to Ray workers, written into one Zarr store.

    python -m simulator.generate --rooms 500

runs on the machine's cores with a local Ray and writes ``data/synth.zarr``; with
``--address HOST:PORT`` it runs on an existing Ray cluster (``ray start --head`` on one machine,
``ray start --address HOST:PORT`` on the others; the store must then be reachable by every worker:
a shared folder or an fsspec URL such as ``s3://bucket/synth.zarr``).

Each room is one task: a room scene (size, materials, air, rig, camera) is drawn, its empty-room
response computed once, then ``--frames-per-room`` frames of ``--subjects-per-room`` people doing
random activities are recorded, deconvolved into pose kernels (``pipeline.deconvolution``) and
seen by a 2D detector model (``pipeline.detector``). The worker writes the room's chunks and, last,
the room's ``room_done`` flag (see ``pipeline.store_format`` for the layout).

Resumable and deterministic: room r draws everything from ``numpy.random.default_rng([seed, r])``,
so a killed run started again with the same arguments computes only the rooms not yet flagged done,
and any number of workers gives the same arrays. Starting it with other arguments on an existing
store is refused.

This module sits at the end of the simulation side of the data flow (bodies, rooms, simulator,
then pipeline's deconvolution and detector), as the design page draws it; it is the one place in
``simulator`` that imports ``pipeline``.
"""
from __future__ import annotations

from core.errors import InputError
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
from pipeline.store_format import (
    FORMAT_NAME, FORMAT_VERSION, SPLITS, StoreShape, chunks_for, frame_arrays, room_arrays,
)

DEFAULT_OUT = "data/synth.zarr"
RIGS = ("mixed", "co-located", "separated")


class GenerationError(InputError):
    """A generation argument or the output store is unusable; the message says how to fix it."""


@dataclass
class GenerationConfig:
    """Everything that determines the data (the store records it; a resumed run must match it).

    Attributes:
        rooms: number of rooms (tasks).
        frames_per_room: frames recorded in each room (~20: 500 rooms give the paper's ~10,000).
        subjects_per_room: distinct people per room; frames alternate between them.
        seed: the dataset's seed.
        rig: 'co-located' (the real dataset's 4 speaker/microphone pairs), 'separated', or
            'mixed' (each room draws one, half and half).
        minor_fraction: probability that a subject is a minor (5-17 years).
        activities: activities drawn uniformly per frame.
        min_floor_m, max_floor_m: floor side range (5 m and up by default, the paper's assumption).
        max_order: image-source order of the rooms.
        snr_db: sensor noise; clock_offset_max_samples: playback/capture clock offset.
        transducer_responses: speaker and microphone frequency responses.
        multipath, shadowing: body-room multipath and the body's shadow on room paths.
        kernel_samples: length of each stored pose kernel (4800 = 50 ms = 17 m of round trip).
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
    snr_db: float = 40.0
    clock_offset_max_samples: float = 0.5
    transducer_responses: bool = True
    multipath: bool = True
    shadowing: bool = True
    kernel_samples: int = 4800
    kernel_dtype: str = "float16"
    keep_recordings: bool = False
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)

    def __post_init__(self) -> None:
        self.activities = tuple(self.activities)
        self.split = tuple(float(x) for x in self.split)
        for name in ("rooms", "frames_per_room", "subjects_per_room", "kernel_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise GenerationError(f"--{name.replace('_', '-')} = {value!r}: give a positive whole number")
        if self.rig not in RIGS:
            raise GenerationError(f"--rig = {self.rig!r}: choose one of {', '.join(RIGS)}")
        if not 0.0 <= self.minor_fraction <= 1.0:
            raise GenerationError(f"--minor-fraction = {self.minor_fraction}: give a probability in [0, 1]")
        unknown = set(self.activities) - set(ACTIVITIES)
        if unknown or not self.activities:
            raise GenerationError(f"--activities {sorted(unknown)}: choose from {', '.join(ACTIVITIES)}")
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1.0) > 1e-6:
            raise GenerationError(f"--split = {self.split}: give three proportions (train val test) summing to 1")
        if self.kernel_dtype not in ("float16", "float32"):
            raise GenerationError(f"--kernel-dtype = {self.kernel_dtype!r}: choose float16 or float32")
        if int(self.max_order) != self.max_order or self.max_order < 0:
            raise GenerationError(f"--max-order = {self.max_order}: give a non-negative whole number")
        if not 2.5 <= self.min_floor_m <= self.max_floor_m:
            raise GenerationError(f"--min-floor-m {self.min_floor_m} / --max-floor-m {self.max_floor_m}: "
                                  "need 2.5 <= min <= max")

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
        from bodies import SubjectSampler, SubjectSamplerConfig
        from pipeline.deconvolution import deconvolve, normalize_kernels
        from pipeline.detector import DetectorModel, occluded_joints
        from rooms import RoomInputError, RoomSampler, RoomSamplerConfig
        from simulator.recording import RoomSimulator, SimulationConfig
        from simulator.scene import compose_scene

        cfg = self.config
        rng = np.random.default_rng([cfg.seed, room])
        colocated = {"co-located": 1.0, "separated": 0.0, "mixed": 0.5}[cfg.rig]
        room_scene = RoomSampler(RoomSamplerConfig(
            min_floor_side_m=cfg.min_floor_m, max_floor_side_m=cfg.max_floor_m,
            colocated_probability=colocated)).sample(rng)
        sim_config = SimulationConfig(
            max_order=cfg.max_order, snr_db=cfg.snr_db, clock_offset_max_samples=cfg.clock_offset_max_samples,
            transducer_responses=cfg.transducer_responses, body_room_multipath=cfg.multipath,
            shadowing=cfg.shadowing)
        subjects = [SubjectSampler(SubjectSamplerConfig(minor_fraction=cfg.minor_fraction)).sample(rng)
                    for _ in range(cfg.subjects_per_room)]
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
    """Write one room's chunks, then its done flag (last: readers trust only flagged rooms)."""
    lo = room * config.frames_per_room
    hi = lo + config.frames_per_room
    for name, values in result["frames"].items():
        root[name][lo:hi] = values.astype(root[name].dtype)
    for name, value in result["room"].items():
        root[name][room] = np.asarray(value).astype(root[name].dtype)
    root["room_done"][room] = True


# -- the store --------------------------------------------------------------------------------
def _store_shape(config: GenerationConfig) -> StoreShape:
    from simulator.signals import ChirpPlan

    return StoreShape(config.rooms, config.frames_per_room, 4, 4, config.kernel_samples, ChirpPlan().n_samples)


def check_writable(out: str) -> None:
    """Refuse an output that cannot be written, before any work."""
    if "://" in out and not out.startswith("file://"):
        return  # remote stores: zarr / fsspec report their own errors when opening
    path = Path(out.removeprefix("file://")).expanduser()
    parent = path if path.exists() else path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise GenerationError(f"--out {out}: cannot write there ({err.strerror}); choose a writable folder") from None


def open_or_create_store(out: str, config: GenerationConfig):
    """Open the store for writing, creating it with every array; refuse one made otherwise.

    Returns (root group, indices of rooms still to do).
    """
    import zarr
    from zarr.codecs import BloscCodec

    check_writable(out)
    try:
        existing = zarr.open_group(out, mode="r")
    except FileNotFoundError:
        existing = None
    except zarr.errors.NodeNotFoundError:
        local = Path(out.removeprefix("file://"))
        if local.exists() and any(local.iterdir()):
            raise GenerationError(f"--out {out}: exists but is not a Zarr store; choose another path") from None
        existing = None
    if existing is not None:
        attrs = dict(existing.attrs)
        if attrs.get("format") != FORMAT_NAME:
            raise GenerationError(f"--out {out}: is a Zarr store but not a {FORMAT_NAME} dataset; choose another path")
        if attrs.get("format_version") != FORMAT_VERSION:
            raise GenerationError(
                f"--out {out}: was written by format version {attrs.get('format_version')}, this is version "
                f"{FORMAT_VERSION}; write a new store (another --out)")
        if attrs.get("generator_config") != config.identity():
            theirs, ours = attrs.get("generator_config", {}), config.identity()
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise GenerationError(
                f"--out {out}: holds a dataset made with other arguments ({', '.join(diff)} differ: store "
                f"{ {k: theirs.get(k) for k in diff} }); rerun with the same arguments to resume, or pass "
                f"another --out")
        root = zarr.open_group(out, mode="r+")
        done = np.asarray(root["room_done"][:], dtype=bool)
        return root, np.flatnonzero(~done)

    from simulator.signals import ChirpPlan

    plan = ChirpPlan()
    shape = _store_shape(config)
    root = zarr.open_group(out, mode="w")
    compressor = BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")
    for name, (array_shape, dtype) in frame_arrays(shape, config.kernel_dtype, config.keep_recordings).items():
        root.create_array(name, shape=array_shape, dtype=dtype,
                          chunks=chunks_for(name, array_shape, config.frames_per_room, False),
                          compressors=[compressor], fill_value=0)
    for name, (array_shape, dtype) in room_arrays(shape).items():
        root.create_array(name, shape=array_shape, dtype=dtype,
                          chunks=chunks_for(name, array_shape, config.frames_per_room, True),
                          compressors=[compressor], fill_value=0)
    root.attrs.update({
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
        "chirp_plan": {"band_hz": list(plan.band_hz), "n_speakers": plan.n_speakers, "duration_s": plan.duration_s,
                       "speaker_bands_hz": plan.speaker_bands_hz().tolist()},
        "frame": "camera (OpenCV: x right, y down, z forward), metres; cam_to_world maps to the room frame (z up)",
        "image_size_px": [1920, 1080],
        "seed": config.seed,
        "generator_config": config.identity(),
    })
    return root, np.arange(config.rooms)


# -- Ray --------------------------------------------------------------------------------------
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
            frames = result["frames"]
            import resource

            return {"room": room, "seconds": time.perf_counter() - t, "frames": len(frames["height"]),
                    "minors": int(frames["is_minor"].sum()), "activities": frames["activity"].tolist(),
                    "worker_peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    return RoomWorker


def generate(config: GenerationConfig, out: str = DEFAULT_OUT, workers: int | None = None,
             address: str | None = None, progress: bool = True) -> dict:
    """Run (or resume) a generation; returns a summary."""
    import ray
    from tqdm import tqdm

    if workers is not None and (int(workers) != workers or workers < 1):
        raise GenerationError(f"--workers = {workers}: give a positive whole number")
    if address:
        check_ray_address(address)
    root, todo = open_or_create_store(out, config)
    started = time.perf_counter()
    results = []
    if len(todo):
        runtime_env = {"env_vars": {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}}
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), runtime_env=runtime_env, log_to_driver=False,
                     include_dashboard=False)
        try:
            n_workers = min(len(todo), workers or int(ray.cluster_resources().get("CPU", 1)))
            worker_cls = _worker_class()
            actors = [worker_cls.remote(config.identity(), out) for _ in range(n_workers)]
            queue = list(todo)
            running = {}
            for actor in actors:
                if queue:
                    running[actor.run.remote(int(queue.pop(0)))] = actor
            bar = tqdm(total=config.rooms, initial=config.rooms - len(todo), unit="room", disable=not progress,
                       desc="rooms")
            frames_done = 0
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                actor = running.pop(ready[0])
                results.append(ray.get(ready[0]))
                frames_done += results[-1]["frames"]
                elapsed = time.perf_counter() - started
                bar.set_postfix(frames_per_s=f"{frames_done / elapsed:.2f}")
                bar.update(1)
                if queue:
                    running[actor.run.remote(int(queue.pop(0)))] = actor
            bar.close()
        finally:
            ray.shutdown()
    summary = summarize(out, time.perf_counter() - started, results)
    if results:
        summary["worker_peak_memory_mb"] = round(max(r["worker_peak_memory_mb"] for r in results), 1)
        summary["seconds_per_frame_in_workers"] = round(sum(r["seconds"] for r in results) / summary["frames_this_run"], 3)
    return summary


def summarize(out: str, seconds: float, results: list[dict]) -> dict:
    import zarr

    from pipeline.store_format import done_frames

    root = zarr.open_group(out, mode="r")
    frames = done_frames(root)
    activity = np.asarray(root["activity"][:])[frames] if len(frames) else np.zeros(0, int)
    minors = np.asarray(root["is_minor"][:])[frames] if len(frames) else np.zeros(0, bool)
    split = np.asarray(root["split"][:])[frames] if len(frames) else np.zeros(0, int)
    path = Path(out.removeprefix("file://"))
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else None
    new_frames = sum(r["frames"] for r in results)
    return {
        "store": out,
        "rooms_done": int(np.asarray(root["room_done"][:]).sum()),
        "rooms": int(root.attrs["rooms"]),
        "frames": int(len(frames)),
        "frames_this_run": int(new_frames),
        "seconds_this_run": round(seconds, 2),
        "frames_per_s": round(new_frames / seconds, 3) if seconds > 0 and new_frames else None,
        "size_on_disk_mb": None if size is None else round(size / 2**20, 2),
        "minors": int(minors.sum()), "adults": int((~minors).sum()),
        "activities": {ACTIVITIES[i]: int((activity == i).sum()) for i in range(len(ACTIVITIES))},
        "splits": {SPLITS[i]: int((split == i).sum()) for i in range(3)},
    }


def main(argv: list[str] | None = None) -> int:
    defaults = GenerationConfig()
    parser = argparse.ArgumentParser(prog="python -m simulator.generate", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rooms", type=int, default=defaults.rooms, help="number of rooms")
    parser.add_argument("--frames-per-room", type=int, default=defaults.frames_per_room, help="frames in each room")
    parser.add_argument("--subjects-per-room", type=int, default=defaults.subjects_per_room,
                        help="people per room (frames alternate between them)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="Zarr store: a folder or an fsspec URL")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="dataset seed")
    parser.add_argument("--workers", type=int, default=None, help="Ray workers (default: all CPUs of the cluster)")
    parser.add_argument("--address", default=None, help="HOST:PORT of an existing Ray cluster (default: local Ray)")
    parser.add_argument("--rig", choices=RIGS, default=defaults.rig,
                        help="co-located speaker/microphone pairs (real dataset), separated, or mixed per room")
    parser.add_argument("--minor-fraction", type=float, default=defaults.minor_fraction, help="share of minors")
    parser.add_argument("--activities", nargs="+", default=list(defaults.activities), help="activities to draw")
    parser.add_argument("--min-floor-m", type=float, default=defaults.min_floor_m, help="smallest floor side (m)")
    parser.add_argument("--max-floor-m", type=float, default=defaults.max_floor_m, help="largest floor side (m)")
    parser.add_argument("--max-order", type=int, default=defaults.max_order, help="image-source order")
    parser.add_argument("--snr-db", type=float, default=defaults.snr_db, help="sensor noise SNR (dB)")
    parser.add_argument("--clock-offset-max-samples", type=float, default=defaults.clock_offset_max_samples,
                        help="largest playback/capture clock offset (samples)")
    parser.add_argument("--no-transducer-responses", action="store_true", help="ideal speakers and microphones")
    parser.add_argument("--no-multipath", action="store_true", help="leave out body-room multipath")
    parser.add_argument("--no-shadow", action="store_true", help="leave out the body's shadow on room paths")
    parser.add_argument("--kernel-samples", type=int, default=defaults.kernel_samples, help="stored kernel length")
    parser.add_argument("--kernel-dtype", choices=("float16", "float32"), default=defaults.kernel_dtype,
                        help="stored kernel precision")
    parser.add_argument("--keep-recordings", action="store_true",
                        help="also store raw recordings and ground-truth kernels (about 3x larger)")
    parser.add_argument("--split", type=float, nargs=3, default=list(defaults.split), metavar=("TRAIN", "VAL", "TEST"),
                        help="room proportions of the splits")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = GenerationConfig(
            rooms=args.rooms, frames_per_room=args.frames_per_room, subjects_per_room=args.subjects_per_room,
            seed=args.seed, rig=args.rig, minor_fraction=args.minor_fraction, activities=tuple(args.activities),
            min_floor_m=args.min_floor_m, max_floor_m=args.max_floor_m, max_order=args.max_order,
            snr_db=args.snr_db, clock_offset_max_samples=args.clock_offset_max_samples,
            transducer_responses=not args.no_transducer_responses, multipath=not args.no_multipath,
            shadowing=not args.no_shadow, kernel_samples=args.kernel_samples, kernel_dtype=args.kernel_dtype,
            keep_recordings=args.keep_recordings, split=tuple(args.split))
        summary = generate(config, args.out, args.workers, args.address, progress=not args.quiet)
    except GenerationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
