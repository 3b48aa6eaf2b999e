"""What the tone removal of the deconvolution gives back on realistic recordings.

    python -m experiments.tone_removal [--rooms 12] [--frames-per-room 2] [--seed 0] [--out DIR]

Generates ``--rooms`` rooms of the realistic preset as a generation worker does (``RoomGenerator``, with
``keep_recordings``: the noisy recordings and the static ground-truth kernels of every frame) and deconvolves every
frame twice, drift-aware as generation does (``simulator.deconvolution.deconvolve_recording``'s steps), with and
without ``remove_tones``. The measure needs no noiseless twin of the recording: the **echo-to-noise ratio** of a
pair's kernel is its mean power where the body's echo is (the samples where the ground truth's envelope, band-limited
as the deconvolution limits it, is over a tenth of its peak) over its mean power where there is none (under 1e-3 of
the peak: the noise, the tones, what the subtraction left), in dB, and the share of the kernel's energy the removal
takes out; reported per frame as the median over pairs, then over the frames of rooms with and without tones (the room's noise draw says which), with the seconds the removal
adds per frame. The windows come from the static ground truth, so the moving echo's smear and the transducers'
responses (which filter the recorded echo, not the truth) count equally against both.

Writes ``DIR/tone_removal.json`` and ``DIR/tone_removal.md`` (default ``experiments/results/realism``).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from experiments.bench_encodings import machine_name
from simulator.deconvolution import band_limit, deconvolve
from simulator.generation_config import GenerationConfig
from simulator.room_drift import stretch_to_speed
from simulator.room_generation import RoomGenerator

OUTPUT = pathlib.Path(__file__).parent / "results" / "realism"


def echo_to_noise_db(kernels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(P,) dB: each pair's mean kernel power where its (P, K) truth's envelope exceeds 0.1 of its peak, over the mean
    power where it is under 1e-3 of it (module docstring); NaN for a pair without both windows."""
    from simulator.scene import envelope

    env = envelope(truth)
    peak = env.max(axis=-1, keepdims=True)
    echo, quiet = env > 0.1 * peak, env < 1e-3 * peak
    power = kernels**2
    out = np.full(len(kernels), np.nan)
    for p in np.flatnonzero(echo.any(axis=-1) & quiet.any(axis=-1) & (peak[:, 0] > 0)):
        out[p] = 10 * np.log10(power[p, echo[p]].mean() / max(power[p, quiet[p]].mean(), 1e-300))
    return out


def room_rows(generator: RoomGenerator, room: int) -> list[dict]:
    """One row per frame of ``room``: its echo-to-noise ratio with and without tone removal, the kernel energy the
    removal takes out, and its cost."""
    cfg = generator.config
    values = generator.simulate(room)
    frames, realism = values["frames"], values["realism"]
    plan = cfg.simulation_config().chirp_plan
    chirps, bands, fs = plan.chirps(), plan.speaker_bands_hz(), plan.sample_rate_hz
    empty_speed = realism.get("drift", {}).get("empty_speed_of_sound_m_s")
    tones_db = realism["noise"]["tone_levels_db"]
    rows = []
    for f in range(len(frames["recordings"])):
        speed = float(frames["speed_of_sound"][f])
        empty = frames["empty_recordings"][f]
        if empty_speed is not None and empty_speed != speed:
            empty = stretch_to_speed(empty, empty_speed, speed, fs, chirps, bands)
        ratios, seconds, kernels_of = {}, {}, {}
        for removal in (False, True):
            start = time.perf_counter()
            kernels = deconvolve(frames["recordings"][f], empty, chirps, bands, fs, kernel_samples=cfg.kernel_samples,
                                 remove_tones=removal)
            seconds[removal] = time.perf_counter() - start
            kernels_of[removal] = kernels
            truth = band_limit(frames["pose_kernels_true"][f].reshape(kernels.shape[:2] + (-1,)), bands, fs)
            ratios[removal] = float(np.nanmedian(echo_to_noise_db(kernels.reshape(-1, kernels.shape[-1]),
                                                                  truth.reshape(-1, truth.shape[-1]))))
        rows.append({"room": room, "frame": f, "tone_levels_db": list(tones_db),
                     "snr_db": realism["noise"]["snr_db"], "echo_to_noise_db_without": ratios[False],
                     "echo_to_noise_db_with": ratios[True],
                     "removed_energy_share": float(np.sum((kernels_of[False] - kernels_of[True]) ** 2)
                                                   / np.sum(kernels_of[False] ** 2)),
                     "removal_s": seconds[True] - seconds[False]})
    return rows


def summary(rows: list[dict]) -> dict:
    out = {}
    for name, pick in (("rooms with tones", lambda r: len(r["tone_levels_db"]) > 0),
                       ("rooms without tones", lambda r: len(r["tone_levels_db"]) == 0)):
        mine = [r for r in rows if pick(r)]
        if not mine:
            continue
        without = np.array([r["echo_to_noise_db_without"] for r in mine])
        with_ = np.array([r["echo_to_noise_db_with"] for r in mine])
        out[name] = {"rooms": len({r["room"] for r in mine}), "frames": len(mine),
                     "echo_to_noise_db_without_median": float(np.median(without)),
                     "echo_to_noise_db_with_median": float(np.median(with_)),
                     "gain_db_median": float(np.median(with_ - without)),
                     "gain_db_max": float(np.max(with_ - without)),
                     "frames_improved": int(np.sum(with_ > without)),
                     "removed_energy_share_median": float(np.median([r["removed_energy_share"] for r in mine])),
                     "removed_energy_share_max": float(np.max([r["removed_energy_share"] for r in mine])),
                     "frames_changed": int(np.sum(with_ != without)),
                     "removal_s_per_frame_mean": float(np.mean([r["removal_s"] for r in mine]))}
    return out


def markdown(result: dict) -> str:
    lines = [
        "# Tone removal on realistic recordings",
        "",
        f"Machine: {result['machine']}. Command: `{result['command']}`.",
        "",
        "Echo-to-noise ratio: a pair's kernel power where the true (static, band-limited) echo is over its power "
        "where there is none, dB, median over the frame's pairs; summary: medians over frames.",
        "",
        "| rooms | frames | kernel energy removed (median / largest) | echo-to-noise without removal, dB | "
        "with removal, dB | gain, dB (median / largest) | frames changed | removal, s per frame |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in result["summary"].items():
        lines.append(f"| {name} ({s['rooms']}) | {s['frames']} | {s['removed_energy_share_median']:.1%} / "
                     f"{s['removed_energy_share_max']:.1%} | {s['echo_to_noise_db_without_median']:.1f} | "
                     f"{s['echo_to_noise_db_with_median']:.1f} | {s['gain_db_median']:.1f} / {s['gain_db_max']:.1f} | "
                     f"{s['frames_changed']} of {s['frames']} | {s['removal_s_per_frame_mean']:.3f} |")
    lines += ["", "| room | frame | tones, dB over ambient | SNR, dB | energy removed | without, dB | with, dB |",
              "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in result["frames"]:
        tones = ", ".join(f"{t:.1f}" for t in r["tone_levels_db"]) or "none"
        lines.append(f"| {r['room']} | {r['frame']} | {tones} | {r['snr_db']:.1f} | {r['removed_energy_share']:.1%} | "
                     f"{r['echo_to_noise_db_without']:.1f} | "
                     f"{r['echo_to_noise_db_with']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=12)
    parser.add_argument("--frames-per-room", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.rooms < 1 or args.frames_per_room < 1:
        parser.error("--rooms and --frames-per-room: give at least 1")
    generator = RoomGenerator(GenerationConfig(frames_per_room=args.frames_per_room, realism="realistic",
                                               keep_recordings=True, seed=args.seed))
    rows = []
    for room in range(args.rooms):
        rows += room_rows(generator, room)
        print(f"room {room + 1}/{args.rooms}", flush=True)
    command = "python -m experiments.tone_removal " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"written_by": "experiments.tone_removal", "machine": machine_name(), "command": command.strip(),
              "summary": summary(rows), "frames": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tone_removal.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "tone_removal.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
