"""Running rooms: in this process (``workers=0``) or fanned out to Ray actors, and :func:`generate`, which resumes.

Every room is one task; a worker builds the body model once and then simulates and writes whole
rooms. Because each room has its own seed, any number of workers, in any order, writes the same
arrays.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import time

import numpy as np

from bodies import ACTIVITIES
from core.checks import check_whole
from core.progress import progress as show_progress
from simulator.generation_config import GenerationConfig, GenerationError
from simulator.generation_store import _is_remote, _local_path, open_or_create_store, writing_options
from simulator.room_generation import RoomGenerator, write_room
from simulator.store_format import SPLITS

__all__ = ["DEFAULT_OUT", "check_ray_address", "check_workers", "generate", "summarize"]

DEFAULT_OUT = "data/synth.zarr"


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


_RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
_RAY_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"


class _DropRayTokenNotice(logging.Filter):
    """Drops Ray's notice that a new local instance uses token authentication; keeps every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_RAY_TOKEN_NOTICE)


@contextlib.contextmanager
def _quiet_local_token_auth():
    """Start a local Ray instance exactly as Ray does, without its token-authentication notice.

    Ray (2.60 here) turns token authentication on for a new local instance (unless ``RAY_AUTH_MODE``
    says otherwise; the token is kept in ``~/.ray/auth_token``) and says so at every start, with
    "Set RAY_AUTH_MODE=disabled to opt out". For a local run that is noise: the instance is this
    run's own, it is as secure as Ray makes it, and nothing else changes here. Only that one
    notice is dropped, only while the instance starts. A run against an existing cluster
    (``--address``) does not come here: its security, and what Ray says about it, are the cluster's.
    """
    logger = logging.getLogger(_RAY_TOKEN_LOGGER)
    quiet = _DropRayTokenNotice()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _room_report(room: int, seconds: float, result: dict, write_seconds: float = 0.0) -> dict:
    import resource

    frames = result["frames"]
    return {"room": room, "seconds": seconds, "write_seconds": write_seconds, "frames": len(frames["height"]),
            "minors": int(frames["is_minor"].sum()), "activities": frames["activity"].tolist(),
            "worker_peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


#: glibc's malloc in a worker: arrays of 4 MB and more are mapped from the system and given back when freed. Without
#: it glibc raises that threshold to the largest array freed so far (up to 32 MB), then keeps such arrays' memory in
#: its heap for reuse: a worker's memory grew from room to room (by about 230 MB that glibc held free) and peaked
#: over 1 GB. Below 4 MB the heap serves as before (a lower threshold, 128 kB, slowed a room by half).
WORKER_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(4 * 2**20)}


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
            self.root = zarr.open_group(out, mode="r+", **writing_options(out))

        def run(self, room: int) -> dict:
            t = time.perf_counter()
            result = self.generator.simulate(room)
            w = time.perf_counter()
            write_room(self.root, self.config, room, result)
            done = time.perf_counter()
            return _room_report(room, done - t, result, done - w)

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
    rooms = [int(r) for r in rooms]
    results: list[dict] = []
    if not rooms:
        return results
    started = time.perf_counter()
    bar = show_progress(total=len(rooms), unit="room", enabled=progress, desc="rooms")

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
                root = zarr.open_group(out, mode="r+", **writing_options(out))
                for room in rooms:
                    t = time.perf_counter()
                    result = generator.simulate(room)
                    w = time.perf_counter()
                    write_room(root, config, room, result)
                    done = time.perf_counter()
                    finished(_room_report(room, done - t, result, done - w))
            finally:
                torch.set_num_threads(threads)
            return results
        import ray

        runtime_env = {"env_vars": {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", **WORKER_MALLOC_ENV}}
        # a new local instance (no --address, or "local") starts quietly; an existing cluster is left as it is
        with _quiet_local_token_auth() if address in (None, "local") else contextlib.nullcontext():
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
        write_s = sum(r.get("write_seconds", 0.0) for r in results)
        if write_s > 0 and len(results) == summary["rooms"]:   # a fresh store: its size is what these writes wrote
            summary["store_write_mb_per_s"] = round(summary["size_on_disk_mb"] / write_s, 1)
    return summary


def summarize(out: str, seconds: float, results: list[dict]) -> dict:
    """Counts of the store's done frames (a damaged store's counts are replaced by the damage)."""
    import zarr

    from simulator.store_integrity import StoreDamagedError, done_rooms, read_checked

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

