"""Benchmark: frames/s that the training loader reads from a synthetic store, per way of reading.

    python -m experiments.bench_loader --synth data/synth.zarr [--config small] [--frames 240] [--json out.json]

Reads the store's frames (all splits) through ``network.data.SynthFrames`` and a DataLoader as training
does (batch 8, ``network.data.collate``), with 0 and 2 worker processes, from the store and in memory
(``in_memory=True``), with and without the training augmentation (``network.augment``). From the store,
two orders: frames shuffled uniformly (``order="frames"``: nearly every frame decodes its room's chunk)
and rooms shuffled in blocks (``order="rooms"``, :class:`pipeline.store_dataset.RoomBlockSampler`, ``network.train
--shuffle rooms``: each room's chunk decoded once). Uniform orders sample with replacement, so a small store
gives a steady-state figure:
``--frames`` frames per measurement, after one warm-up batch; worker start-up is reported apart
(``start_s``: the time to the first batch). Loading the store into memory is timed too (``load_s``).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

from experiments.reporting import report


def _measure(frames, workers: int, batch_size: int, n_frames: int, order: str = "frames") -> dict:
    import torch

    from network.data import collate
    from pipeline.store_dataset import RoomBlockSampler

    if order == "rooms":
        sampler = RoomBlockSampler(frames.store.frames, frames.store.frames_per_room,
                                   block_rooms=frames.store.cached_rooms, batch_size=batch_size, loader_workers=workers)
    else:
        sampler = torch.utils.data.RandomSampler(frames, replacement=True, num_samples=n_frames + batch_size,
                                                 generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(frames, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                         collate_fn=collate)
    started = time.perf_counter()
    batches = iter(loader)
    next(batches)                                    # warm-up: worker start-up and the first batch
    first = time.perf_counter()
    read = sum(len(batch["index"]) for batch in batches)
    done = time.perf_counter()
    return {"frames_per_s": read / (done - first), "start_s": first - started, "frames": read}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth", default="data/synth.zarr", help="synthetic store (default data/synth.zarr)")
    parser.add_argument("--config", default="small", help="network config whose kernel length is read")
    parser.add_argument("--frames", type=int, default=240, help="frames read per measurement (default 240)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import torch

    from network.augment import Augmentation
    from network.config import get_config
    from network.data import SynthFrames

    torch.set_num_threads(1)     # as in DataLoader workers; the main process must not take every core
    config = get_config(args.config)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "store": args.synth,
               "config": args.config, "batch_size": args.batch_size, "runs": []}
    for in_memory in (False, True):
        for augment in (False, True):
            started = time.perf_counter()
            frames = SynthFrames(args.synth, config, split=None, in_memory=in_memory,
                                 augmentation=Augmentation() if augment else None)
            load_s = time.perf_counter() - started
            for order in (("frames",) if in_memory else ("frames", "rooms")):
                for workers in args.workers:
                    row = {"in_memory": in_memory, "order": order, "augment": augment, "workers": workers,
                           "load_s": load_s, "store_frames": len(frames)}
                    row.update(_measure(frames, workers, args.batch_size, args.frames, order))
                    results["runs"].append(row)
                    print(f"{'memory' if in_memory else 'store ':6s}  {order:6s}  augment {'on ' if augment else 'off'}  "
                          f"workers {workers}:  {row['frames_per_s']:7.1f} frames/s  (start {row['start_s']:.2f} s, "
                          f"load {load_s:.2f} s)", flush=True)
    return report(results, args.json, echo=False)


if __name__ == "__main__":
    main()
