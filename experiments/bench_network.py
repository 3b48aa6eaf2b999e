"""Time both lifting networks (forward, and a training step) on this machine.

    python -m experiments.bench_network [--skip-full] [--pairs 4] [--repeats 2] [--json out.json]
    python -m experiments.bench_network --device cuda [--batch 8]     # a GPU: bf16 autocast

Cases: the coarse-to-fine presets ("c2f_small", "c2f"), the "tiny" and "small" presets as they are, and
the paper's network (6 stages, 32 channels,
16 audio channels) on grids of growing resolution over the same ~3.5 x 3.5 x 2.5 m box, up to the
paper's 70 x 70 x 50 (forward only; ``--skip-full`` leaves it out). Every forward includes the
encodings (envelopes, spatial and visual encoding), as in training. Inference: batch 1 on CPU
(``--batch`` on a GPU), no_grad. Training step: forward + L2 loss + backward + SGD step, batch 2 on
CPU (``--batch`` on a GPU), with each architecture's own loss (:func:`network.lifters.training_loss`).
Inputs come from :func:`network.model.synthetic_batch` (co-located pairs).
Prints frames/s per case and the largest grid that reaches 10 frames/s inference.
"""
from __future__ import annotations

import argparse
import time

import torch

from experiments.bench_encodings import machine_name
from experiments.reporting import report
from network.config import NetworkConfig, get_config
from network.lifters import build_lifter, on_device, training_loss
from network.model import PoseKernelLifter, count_parameters, synthetic_batch

INTERMEDIATE_GRIDS = ((16, 16, 12), (20, 20, 14), (24, 24, 16), (32, 32, 24), (40, 40, 30), (48, 48, 32))
FULL_GRID = (70, 70, 50)
TARGET_FPS = 10.0


def paper_net_on(shape) -> NetworkConfig:
    """The paper's network on a grid of ``shape`` covering ~3.5 m horizontally."""
    voxel = round(3.5 / shape[0], 4)
    sigma = max(8.0, 8.0 * voxel / 0.05 / 2)  # keep the keypoint cone at ~1/2 voxel or wider
    return get_config("paper", grid_shape=tuple(shape), voxel_size_m=voxel, keypoint_sigma_px=sigma,
                      name="paper@" + "x".join(map(str, shape)))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_time_s(fn, repeats: int, device) -> float:
    fn()  # warm-up (allocations, cudnn autotune)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def bench_case(config: NetworkConfig, device, pairs: int, infer_batch: int, train_batch: int | None,
               repeats: int, amp: bool, channels_last: bool = False, compile_model: bool = False) -> dict:
    torch.manual_seed(0)
    model = on_device(build_lifter(config), device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    if compile_model:
        model.compile_convolutions()
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)
    batch, _ = synthetic_batch(config, infer_batch, pairs, seed=0, device=device)
    model.eval()

    def infer():
        with torch.no_grad(), autocast:
            return model(batch)

    forward_s = best_time_s(infer, repeats, device)
    result = {"config": config.name, "arch": config.arch, "channels_last": channels_last, "compiled": compile_model,
              "grid": list(config.grid_shape), "voxel_m": config.voxel_size_m,
              "stages": config.stages, "channels": config.channels, "parameters": count_parameters(model),
              "pairs": pairs, "infer_batch": infer_batch, "forward_s": forward_s,
              "infer_fps": infer_batch / forward_s}
    if train_batch:
        tbatch, joints = synthetic_batch(config, train_batch, pairs, seed=1, device=device)
        tbatch["joints3d"] = joints
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        model.train()

        def step():
            with autocast:
                loss = training_loss(config, model(tbatch), tbatch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step_s = best_time_s(step, repeats, device)
        result.update(train_batch=train_batch, train_step_s=step_s, train_samples_per_s=train_batch / step_s)
        if device.type == "cuda":
            result["train_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    variant = ("+channels_last" if channels_last else "") + ("+compile" if compile_model else "")
    line = (f"{config.name + variant:>18} {'x'.join(map(str, config.grid_shape)):>9} @{config.voxel_size_m:.3f} m "
            f"{'c2f' if config.arch == 'coarse_fine' else f'{config.stages}st'}/{config.channels}ch: forward b{infer_batch} {forward_s * 1e3:8.1f} ms "
            f"= {result['infer_fps']:7.2f} frames/s")
    if train_batch:
        line += f" | train step b{train_batch} {result['train_step_s'] * 1e3:8.1f} ms = {result['train_samples_per_s']:6.2f} samples/s"
        if "train_peak_gib" in result:
            line += f" (peak {result['train_peak_gib']:.1f} GiB)"
    print(line, flush=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def bench_breakdown(config: NetworkConfig, device, pairs: int, batch_size: int, repeats: int, amp: bool) -> dict:
    """Where a training step's time goes: encodings, the per-pair audio stack, fusion + stages (fwd + bwd)."""
    torch.manual_seed(0)
    model = PoseKernelLifter(config).to(device).train()
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)
    batch, _ = synthetic_batch(config, batch_size, pairs, seed=1, device=device)
    with torch.no_grad():
        centers = model.voxel_centers(batch["grid_to_camera"])
        encodings = model.audio_encoding(batch, centers)
        visual = model.visual_encoding(batch, centers)
    mask = model.pair_mask(batch)

    def encode():
        with torch.no_grad():
            c = model.voxel_centers(batch["grid_to_camera"])
            model.audio_encoding(batch, c), model.visual_encoding(batch, c)

    def audio():
        with autocast:
            out = model.audio_features(encodings, mask)
        out.float().sum().backward()

    audio_out = None
    with torch.no_grad(), autocast:
        audio_out = model.audio_features(encodings, mask).float()

    def stages():
        with autocast:
            features = model.fuse(torch.cat([audio_out, visual], 1))
            previous, total = None, 0.0
            for stage in model.stages:
                x = features if previous is None else torch.cat([features, previous.to(features.dtype)], 1)
                previous = stage(x)
                total = total + previous.float().square().mean()
        total.backward()

    times = {name: best_time_s(fn, repeats, device) for name, fn in
             (("encodings_s", encode), ("audio_stack_fwd_bwd_s", audio), ("fusion_and_stages_fwd_bwd_s", stages))}
    print(f"breakdown {config.name} b{batch_size} {pairs} pairs: " +
          ", ".join(f"{k[:-2]} {v * 1e3:.1f} ms" for k, v in times.items()), flush=True)
    return {"config": config.name, "pairs": pairs, "batch": batch_size, **times}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda: bf16 autocast, cudnn benchmark)")
    parser.add_argument("--pairs", type=int, default=4, help="speaker-microphone pairs (paper dataset: 4; a 4 x 4 rig: 16)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per case; the best counts")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 1 for inference, 2 for training on CPU; 8 on a GPU)")
    parser.add_argument("--skip-full", action="store_true", help="leave out the paper's full 70 x 70 x 50 grid")
    parser.add_argument("--only-full", action="store_true", help="time the paper's full grid alone")
    parser.add_argument("--full-train", action="store_true", help="also time a training step on the full grid (default on cuda)")
    parser.add_argument("--variants", action="store_true",
                        help="time the full grid also with channels_last_3d memory and with torch.compile")
    parser.add_argument("--breakdown", action="store_true",
                        help="also split a full-grid training step into encodings, audio stack, stages")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    infer_batch = args.batch or (8 if gpu else 1)
    train_batch = args.batch or (8 if gpu else 2)
    name = torch.cuda.get_device_name(device) if gpu else machine_name()
    print(f"machine: {name}; device {device}; {args.pairs} pairs; amp bf16: {gpu}", flush=True)

    if args.only_full and args.skip_full:
        parser.error("--only-full and --skip-full exclude each other")
    cases = [] if args.only_full else ([get_config("c2f_small"), get_config("c2f"), get_config("tiny"), get_config("small")]
                                       + [paper_net_on(s) for s in INTERMEDIATE_GRIDS])
    results = [bench_case(c, device, args.pairs, infer_batch, train_batch, args.repeats, gpu) for c in cases]
    if not args.skip_full:
        full_train = train_batch if (gpu or args.full_train) else None
        results.append(bench_case(get_config("paper"), device, args.pairs, infer_batch, full_train,
                                  1 if not gpu else args.repeats, gpu))
        if args.variants:
            for channels_last, compile_model in ((True, False), (False, True), (True, True)):
                results.append(bench_case(get_config("paper"), device, args.pairs, infer_batch, full_train,
                                          1 if not gpu else args.repeats, gpu, channels_last, compile_model))
    breakdown = None
    if args.breakdown:
        breakdown = bench_breakdown(get_config("paper") if not args.skip_full else get_config("small"), device,
                                    args.pairs, train_batch, args.repeats, gpu)

    def largest(rows):
        rows = [r for r in rows if r["infer_fps"] >= TARGET_FPS]
        best = max(rows, key=lambda r: r["grid"][0] * r["grid"][1] * r["grid"][2], default=None)
        return (f"{best['config']} {'x'.join(map(str, best['grid']))} ({best['infer_fps']:.1f} frames/s)"
                if best else "none of those timed")

    summary = {
        "largest_grid_10fps_any_network": largest(results),
        "largest_grid_10fps_paper_network": largest([r for r in results if r["config"].startswith("paper")]),
    }
    print(f"largest grid at >= {TARGET_FPS:.0f} frames/s inference (batch {infer_batch}): any network: "
          f"{summary['largest_grid_10fps_any_network']}; the paper's 6-stage/32-channel network: "
          f"{summary['largest_grid_10fps_paper_network']}")
    return report({"machine": name, "device": str(device), "cases": results, "summary": summary,
                   "breakdown": breakdown}, args.json, echo=False)


if __name__ == "__main__":
    main()
