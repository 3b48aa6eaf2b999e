"""Timing of the rooms package on this machine: scene sampling and pyroomacoustics ISM.

    python -m experiments.bench_rooms
"""

from __future__ import annotations

import time

import numpy as np

from rooms import RoomSampler, RoomSamplerConfig


def _ism_seconds(scene, max_order: int, include_furniture: bool, repeats: int = 3) -> tuple[float, int]:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        room = scene.to_pyroomacoustics(96_000, max_order, include_furniture=include_furniture)
        for position in scene.rig.speaker_positions_m:
            room.add_source(position)
        room.add_microphone_array(scene.rig.microphone_positions_m.T)
        room.compute_rir()
        best = min(best, time.perf_counter() - start)
    return best, len(room.walls)


def main() -> None:
    sampler = RoomSampler(RoomSamplerConfig(colocated_probability=0.0))  # separated: no zero-length pair
    start = time.perf_counter()
    scenes = [sampler.sample(np.random.default_rng(seed)) for seed in range(20)]
    print(f"sample scene: {(time.perf_counter() - start) / 20 * 1e3:.1f} ms each")
    scene = scenes[3]
    _ism_seconds(scene, 1, False, repeats=1)  # warm-up (imports, first allocation)
    seconds, walls = _ism_seconds(scene, 17, False)
    print(f"4x4 rig, shoebox {scene.room.dimensions_m.round(2)} m, order 17, 96 kHz: {seconds:.2f} s ({walls} walls)")
    for order in (1, 2, 3):
        seconds, walls = _ism_seconds(scene, order, True)
        print(f"4x4 rig, with furniture ({walls} walls, general pra.Room), order {order}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
