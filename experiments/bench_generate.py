"""Benchmark: generation throughput with 1 and 2 Ray workers and on a local two-node cluster, memory per
worker, writing through an fsspec URL, and reading speed.

    python -m experiments.bench_generate [--rooms 4] [--frames-per-room 5] [--no-cluster] [--json out.json]

Runs ``simulator.generate`` at its defaults (the realistic preset, order 17, multipath, shadowing) on a few
rooms, once with one worker and once with two, into fresh stores, and reports frames/s, the scaling
efficiency (a frame's time in a worker alone over its time with a second worker beside it: the same rooms,
the same work), each worker's peak memory, the time the default ``--rooms 500`` run would take, and the
reading speed of ``pipeline.store_dataset.SyntheticStoreDataset`` through a DataLoader with 0 and 2 workers.
Then the same rooms on a Ray cluster of two nodes started on this machine with ``ray start`` (a head and a
second node of one CPU each, as a multi-machine cluster is started; ``ray stop`` after), written through a
``file://`` fsspec URL (the path a cluster writes to object storage by), with its efficiency against one
worker and the store's write throughput (bytes written per second of store writes in the workers).
Times include starting Ray and building the body model in each worker (a few seconds), which a
500-room run amortises: the per-frame figure is taken from the workers' own room timings. A warm-up room
(one frame, not reported) is generated first, so that compiled kernels' on-disk caches are filled before
the timed runs and the first run does not pay what the second is spared.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time


from experiments.reporting import report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--frames-per-room", type=int, default=5)
    parser.add_argument("--no-cluster", action="store_true", help="skip the two-node cluster run")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import torch

    from pipeline.store_dataset import SyntheticStoreDataset
    from simulator.generate import GenerationConfig, generate

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "rooms": args.rooms,
               "frames_per_room": args.frames_per_room}
    config = GenerationConfig(rooms=args.rooms, frames_per_room=args.frames_per_room)
    with tempfile.TemporaryDirectory() as tmp:
        generate(GenerationConfig(rooms=1, frames_per_room=1), os.path.join(tmp, "warm-up.zarr"), workers=1,
                 progress=False)
        for workers in (1, 2):
            out = os.path.join(tmp, f"w{workers}.zarr")
            t = time.perf_counter()
            summary = generate(config, out, workers=workers, progress=False)
            wall = time.perf_counter() - t
            results[f"workers_{workers}"] = {
                "wall_s": round(wall, 1), "frames": summary["frames"],
                "frames_per_s_wall": round(summary["frames"] / wall, 3),
                "worker_peak_memory_mb": summary.get("worker_peak_memory_mb"),
                "seconds_per_frame_in_workers": summary["seconds_per_frame_in_workers"],
                "size_on_disk_mb": summary["size_on_disk_mb"],
            }
            print(json.dumps({f"workers_{workers}": results[f"workers_{workers}"]}), flush=True)
        # Same rooms, same work: the per-frame time inside a worker alone and beside another one.
        alone = results["workers_1"]["seconds_per_frame_in_workers"]
        beside = results["workers_2"]["seconds_per_frame_in_workers"]
        results["scaling_efficiency_2_workers"] = round(alone / beside, 3)
        results["steady_frames_per_s_2_workers"] = round(2 / beside, 3)
        results["default_500_rooms_hours_estimate"] = round(500 * 20 * beside / 2 / 3600, 2)
        # reading
        data = SyntheticStoreDataset(os.path.join(tmp, "w2.zarr"), split=None)
        for workers in (0, 2):
            loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True, num_workers=workers)
            t = time.perf_counter()
            n = 0
            for _ in range(3):
                for batch in loader:
                    n += len(batch["index"])
            results[f"read_frames_per_s_{workers}_loader_workers"] = round(n / (time.perf_counter() - t), 1)
        results["bytes_per_frame_on_disk"] = round(results["workers_2"]["size_on_disk_mb"] * 2**20 /
                                                   results["workers_2"]["frames"])
        if not args.no_cluster:
            results["cluster_2_nodes"] = _cluster_run(config, "file://" + os.path.join(tmp, "cluster.zarr"), alone)
            print(json.dumps({"cluster_2_nodes": results["cluster_2_nodes"]}), flush=True)
    return report(results, args.json)


def _cluster_run(config, url: str, alone_s_per_frame: float) -> dict:
    """The rooms on two ``ray start`` nodes of one CPU each (this machine), into ``url``; then ``ray stop``."""
    import socket
    import subprocess

    from simulator.generate import generate

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run(["ray", "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
                       check=True, capture_output=True, timeout=180)
        subprocess.run(["ray", "start", f"--address=127.0.0.1:{port}", *common], check=True, capture_output=True,
                       timeout=180)
        t = time.perf_counter()
        summary = generate(config, url, address=f"127.0.0.1:{port}", progress=False)
        wall = time.perf_counter() - t
    finally:
        subprocess.run(["ray", "stop", "--force"], capture_output=True, timeout=120)
    per_frame = summary["seconds_per_frame_in_workers"]
    return {"nodes": 2, "cpus_per_node": 1, "url": "file://...", "wall_s": round(wall, 1), "frames": summary["frames"],
            "frames_per_s_wall": round(summary["frames"] / wall, 3), "seconds_per_frame_in_workers": per_frame,
            "scaling_efficiency_vs_1_worker": round(alone_s_per_frame / per_frame, 3),
            "worker_peak_memory_mb": summary.get("worker_peak_memory_mb"),
            "size_on_disk_mb": summary["size_on_disk_mb"],
            "store_write_mb_per_s": summary.get("store_write_mb_per_s")}


if __name__ == "__main__":
    main()
