"""Time the spatial (eq. 5-7) and visual (eq. 9) encodings on this machine.

    python -m experiments.bench_encodings [--repeats 3] [--device cpu]

Batch 1, 16 speaker-microphone pairs (4 x 4 rig), 15 joints, the full 70 x 70 x 50 grid and a small
24 x 24 x 16 one; kernels of 0.1 s at 96 kHz; a 1920 x 1080 image with heatmaps at stride 4.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from pipeline.grid import VoxelGrid
from pipeline.spatial_encoding import kernel_envelope, spatial_encoding
from pipeline.visual_encoding import keypoint_heatmaps, visual_encoding

SAMPLE_RATE_HZ = 96_000.0
IMAGE_SIZE = (1920, 1080)
INTRINSICS = [[914.0, 0.0, 957.0], [0.0, 914.0, 547.0], [0.0, 0.0, 1.0]]


def machine_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs visible, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, {platform.system()}")


def best_time_s(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(shape, repeats: int, device: torch.device) -> None:
    rng = np.random.default_rng(0)
    grid = VoxelGrid.centered_at([0.0, 0.2, 3.0], shape=shape)
    centers = grid.centers_camera(device=device)[None]
    kernels = torch.tensor(rng.standard_normal((1, 16, 9600)), dtype=torch.float32, device=device)
    speakers = torch.tensor(rng.uniform(-1, 1, (1, 4, 3)), dtype=torch.float32, device=device)
    mics = torch.tensor(rng.uniform(-1, 1, (1, 4, 3)), dtype=torch.float32, device=device)
    speaker_pos = speakers.repeat_interleave(4, dim=1)  # pair (s, m) -> speaker s
    mic_pos = mics.repeat(1, 4, 1)
    speed = torch.tensor([343.0], device=device)
    keypoints = torch.tensor(np.c_[rng.uniform(600, 1300, (15, 2)), rng.uniform(0.3, 1, 15)][None],
                             dtype=torch.float32, device=device)
    intrinsics = torch.tensor([INTRINSICS], dtype=torch.float32, device=device)

    def spatial():
        return spatial_encoding(kernel_envelope(kernels), speaker_pos, mic_pos, centers, speed, SAMPLE_RATE_HZ)

    def visual():
        heatmaps = keypoint_heatmaps(keypoints, IMAGE_SIZE, sigma_px=8.0, stride=4)
        return visual_encoding(heatmaps, intrinsics, centers, IMAGE_SIZE, stride=4)

    spatial(), visual()  # warm up
    label = "x".join(map(str, shape))
    spatial_s = best_time_s(spatial, repeats, device)
    visual_s = best_time_s(visual, repeats, device)
    mb = lambda n: n * 4 / 2 ** 20
    print(f"grid {label:>9} ({grid.num_voxels:>7} voxels): spatial 16 pairs {spatial_s * 1e3:8.1f} ms "
          f"({mb(16 * grid.num_voxels):6.1f} MB out) | visual 15 joints {visual_s * 1e3:8.1f} ms "
          f"({mb(15 * grid.num_voxels):6.1f} MB out)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case; the best is printed")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"machine: {machine_name()}; device {device}")
    for shape in ((24, 24, 16), (70, 70, 50)):
        with torch.no_grad():
            bench(shape, args.repeats, device)


if __name__ == "__main__":
    main()
