"""Reproduce the paper's Tables 1 and 2 and its claims on synthetic data, end to end, at a chosen scale.

    python -m experiments.paper_tables --scale tiny  [--out experiments/results/tiny]  [--workers N]
    python -m experiments.paper_tables --scale small      # < 1 h on the project's 2-core CPU (estimate below)
    python -m experiments.paper_tables --scale full       # the paper's sizes: for a GPU machine

Steps (each timed and recorded in ``<out>/run.json``):

1. Generate (``simulator.generate.generate``) the main store (rig 'mixed', rooms >= 5 m, split by room so the
   test rooms are unseen), a generalisation pair (family A: 'co-located' rigs in 5-7 m rooms, trained on;
   family B: 'separated' rigs in 7-10 m rooms, another seed hence other rooms and materials, test only) and four
   shadow stores (floors 3-4.5 m and 5-8 m, body shadowing on and off, the same seed so the same rooms and poses).
2. Train (``network.train.main``) ours (vision + every pair), audio only (``--no-vision``), vision only
   (``--no-audio``) and ours on family A.
3. Evaluate on the same test frames (:data:`MAIN_METHODS`): ours, the learned vision-only network, the
   no-learning geometric baseline, the population-mean-stature and 1.7 m priors, audio only, ours with half the
   pairs and ours with co-located pairs only; ``network.evaluate.main`` writes its own ``evaluate/`` folder
   (ours and the 1.7 m prior only: a cross-check of the per-frame path used here, not a second full run).
4. Write ``tables.md`` (Tables 1 and 2: the paper's numbers, measured on the real PoseKernel dataset, beside this
   project's, measured on synthetic data, every cell of ours with its 95 % room-bootstrap interval; Table 3:
   medians and 90th percentiles), ``mpjpe_by_height.png``, ``claims.md`` (six claims, each "holds", "does not
   hold" or "undecided" from the interval of its comparison), ``metrics.json`` and ``run.json``.

Claims (the pure rules of :mod:`experiments.claims`, unit-tested):
(1) ours far better than the vision-only 1.7 m average-height prior; (2) the vision-only error grows as stature
departs from 1.7 m (minors worst) while ours does not; (3) audio alone is poor; (4) more pairs help (all vs half vs
co-located only); (5) generalisation to unseen rooms, rigs and materials (train on family A, test on family B);
(6) the shadow effect: the body's shadow on room paths costs more in rooms below 5 x 5 m than above.

Scales (:data:`SCALES`): ``tiny`` is a smoke run for the test suite (numbers meaningless); ``small`` is sized
for this CPU, see :data:`SMALL_ESTIMATE`; ``full`` is the paper's 500 rooms x 20 frames with the paper network.
``--workers 0`` generates in this process without Ray (one core, no Ray start-up: faster for tiny stores).
``small`` and ``full`` test on at least 25 unseen rooms (``Scale.min_test_rooms``; the seed is chosen so the
random per-room split gives that many), enough for room-bootstrap intervals (``network.bootstrap.MIN_ROOMS``);
``tiny`` has too few rooms and reports without intervals, saying so.

This module is the driver: the paper's numbers are in :mod:`experiments.paper_numbers`, the claim rules in
:mod:`experiments.claims`, the tables and plot in :mod:`experiments.paper_report`; generation is
``simulator.generate.generate`` and every method runs through ``network.inference.run_methods``, the runner
``network.evaluate`` uses. :func:`run` goes through :func:`plan_stores`, :func:`generate_stores`,
:func:`train_models`, :func:`predict_all` and :func:`write_report`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError, TargetMissedError
from core.cli import run_command
from core.outputs import atomic_write
from network.commands import claim_run_dir
from experiments.claims import (  # noqa: F401 - re-exported: the claim rules and verdicts, as before
    CLAIM_TITLES,
    CLAIMS,
    FAILS,
    HOLDS,
    UNDETERMINED,
    claim_audio_poor,
    claim_generalisation,
    claim_height_dependence,
    claim_more_pairs,
    claim_ours_beats_vision,
    claim_shadow,
    height_dependence,
)
from experiments.paper_numbers import (  # noqa: F401 - re-exported: the paper's numbers, as before
    GROUPS,
    OUR_SOURCE,
    PAPER_ANALOGUE,
    PAPER_SOURCE,
    PAPER_TABLE1,
    PAPER_TABLE2,
    PCK_T,
)
from experiments.paper_report import (  # noqa: F401 - re-exported
    METHOD_ORDER,
    format_claims,
    format_paper_tables,
    WRITER,
    jsonable,
    machine,
    plot_mpjpe_by_height,
)
from experiments.targets import format_targets, judge_targets

# ---------------------------------------------------------------------------------------------------------
# Scales
@dataclass
class Scale:
    """Sizes of one reproduction run.

    rooms / frames_per_room / split: the main store (split by room); gen_*: the generalisation stores (family A
    trained on, family B test only); shadow_*: each of the four shadow stores (test only). config: network preset;
    epochs, batch_size: training of every model. max_order, kernel_samples: generation of every store.
    """

    name: str
    rooms: int
    frames_per_room: int
    config: str
    epochs: int
    max_order: int
    kernel_samples: int
    split: tuple = (0.7, 0.1, 0.2)
    subjects_per_room: int = 2
    gen_train_rooms: int = 2
    gen_test_rooms: int = 1
    gen_frames_per_room: int = 2
    shadow_rooms: int = 1
    shadow_frames_per_room: int = 2
    batch_size: int = 4
    lr: float | None = None          # learning rate (None: network.train's default)
    lr_schedule: str = "constant"    # network.train --lr-schedule
    seed: int = 0
    minor_fraction: float = 0.4
    notes: str = ""
    min_test_rooms: int = 1          # the main store's seed is chosen so its test split has at least this many rooms
    min_train_rooms: int = 1
    gen_min_test_rooms: int = 1      # family A's test rooms (claim 5's "seen family")
    aux_epochs: int | None = None    # epochs of the audio-only and vision-only models (default: epochs)


SCALES = {
    "tiny": Scale("tiny", rooms=4, frames_per_room=2, config="tiny", epochs=1, max_order=2, kernel_samples=2400,
                  split=(0.5, 0.25, 0.25), gen_train_rooms=2, gen_test_rooms=1, gen_frames_per_room=2,
                  shadow_rooms=1, shadow_frames_per_room=2, batch_size=4, minor_fraction=0.5,
                  notes="smoke run for the test suite: a few frames and one epoch; the numbers are meaningless"),
    "small": Scale("small", rooms=56, frames_per_room=20, config="small", epochs=6, max_order=6, kernel_samples=4800,
                   split=(0.48, 0.05, 0.47), gen_train_rooms=14, gen_test_rooms=5, gen_frames_per_room=6,
                   shadow_rooms=5, shadow_frames_per_room=4, batch_size=8, min_test_rooms=25, min_train_rooms=26,
                   gen_min_test_rooms=5, aux_epochs=3,
                   notes="sized for the project's 2-core CPU (< 1 h from nothing, run.json's total_wall_s): >= 25 "
                         "unseen test rooms x 20 frames, so training is shrunk to ~27 rooms (540 frames) and a few "
                         "epochs: trends, not the paper's accuracy"),
    "medium": Scale("medium", rooms=160, frames_per_room=20, config="c2f", epochs=20, max_order=17,
                    kernel_samples=4800, split=(0.7, 0.1, 0.2), gen_train_rooms=40, gen_test_rooms=10,
                    gen_frames_per_room=10, shadow_rooms=8, shadow_frames_per_room=10, batch_size=8,
                    min_test_rooms=25, min_train_rooms=80, gen_min_test_rooms=5, aux_epochs=6,
                    notes="sized for one H200 with 16 cores in about 15 minutes (MEDIUM_ESTIMATE): ~2,200 training "
                          "frames of ~110 rooms, >= 25 unseen test rooms"),
    "full": Scale("full", rooms=500, frames_per_room=20, config="paper", epochs=30, max_order=17, kernel_samples=4800,
                  split=(0.8, 0.1, 0.1), gen_train_rooms=100, gen_test_rooms=25, gen_frames_per_room=20,
                  shadow_rooms=25, shadow_frames_per_room=20, batch_size=8, min_test_rooms=25,
                  gen_min_test_rooms=5,
                  notes="the paper's sizes (500 rooms x 20 frames, the paper network): for a GPU machine"),
}

# How `small` is sized (2 cores, no GPU): a test split of >= 25 unseen rooms x 20 frames (>= 500 frames, what
# room-bootstrap intervals need) and everything else within an hour. Stores: main 56 rooms x 20 frames (split
# 0.48 / 0.05 / 0.47, the seed chosen for >= 25 test and >= 26 training rooms: 540 training frames), family A
# 14 x 6, family B 5 x 6, shadow 4 x 5 x 4: ~1,300 realistic frames. Training: ours 30 epochs of the 540 frames
# read into memory (steps, not rooms, were what the small model lacked: experiments/results/network/README.md),
# the audio-only and vision-only models 6, family A 30. Measured from nothing on this CPU, realistic stores
# (experiments/results/small/run.json, 2026-12-03, Intel Xeon): generation 13.3 min, training 35.7 min (ours 25.4),
# evaluation 3.4 min: 52.7 min.
SMALL_ESTIMATE = {
    "generation_min": 13.3,
    "training_min": 35.7,
    "evaluation_min": 3.4,
    "total_min": 52.7,         # measured end to end (run.json total_wall_s = 3160 s)
}

# How long `full` would take on one H200 (measured there, experiments/results/gpu): the paper network trains at
# 38 frames/s eager, 49 compiled (16 pairs, batch 8, bf16). Stores: 10,000 + 2,500 + 4 x 500 frames; on a
# 16-core machine at ~3 frames/s/core ~ 5 min. Training: 8,000 frames x 30 epochs = 240,000 samples = 1.8 h
# for ours, the same for audio-only, 0.3 h for family A: ~4 h in all on one H200 (the paper: 70 epochs, 36 h
# on four V100s). Not run in this project: its GPU loans were 15 minutes.
FULL_ESTIMATE_H200_H = 4.0

# How `medium` is sized for one H200 with 16 CPU cores (an estimate: no GPU was lent when it was added, and its
# results are committed only once run there). Stores: 3,200 + 400 + 100 + 4 x 80 frames ~ 4,000 frames at
# order 17; at ~1.2 frames/s per core (README, "Measured figures", with the room's ISM at order 17) on 16 cores
# ~ 3.5 min. Training the default c2f at batch 8, bf16: its CPU step costs about a third of the paper
# network's small preset, and the paper network trained at 38-49 samples/s on the H200, so c2f is estimated at
# >= 150 samples/s: ours 2,240 frames x 20 epochs ~ 5 min, audio-only and vision-only 6 epochs ~ 1.5 min each,
# family A ~ 0.5 min. Evaluation of ~640 test frames by every method ~ 1 min. About 13 minutes in all.
MEDIUM_ESTIMATE_H200_MIN = 13.0



class StepFailedError(TargetMissedError):
    """A step of the reproduction (a training run) did not finish; its own error was printed above."""


class Recorder:
    """Collects every step's command / arguments and wall time for run.json."""

    def __init__(self):
        self.steps = []

    def run(self, name: str, description, fn, *args, **kwargs):
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        self.steps.append({"step": name, "command": description, "wall_s": round(time.perf_counter() - t, 2)})
        print(f"[paper_tables] {name}: {self.steps[-1]['wall_s']} s", flush=True)
        return result


def choose_seed(config_kwargs: dict, base_seed: int, need=("train", "test"), tries: int = 1000,
                minimum: dict | None = None) -> int:
    """The first seed >= base_seed whose room split (``simulator.generate.room_split``) gives every split of
    ``need`` at least one room (a handful of rooms can otherwise leave the test split empty), and each split of
    ``minimum`` ({split: rooms}) at least that many rooms."""
    from simulator.generate import GenerationConfig, room_split

    names = ("train", "val", "test")
    wanted = {n: 1 for n in need} | {n: k for n, k in (minimum or {}).items()}
    for seed in range(base_seed, base_seed + tries):
        cfg = GenerationConfig(**dict(config_kwargs, seed=seed))
        got = [names[room_split(cfg, r)] for r in range(cfg.rooms)]
        if all(got.count(n) >= k for n, k in wanted.items()):
            return seed
    raise InputError(f"no seed in [{base_seed}, {base_seed + tries}) gives rooms {wanted} per split; "
                     f"give the scale more rooms or other split proportions")


def generate_store(config_kwargs: dict, out: str, workers: int | None) -> dict:
    """``simulator.generate.generate`` (Ray workers; ``workers == 0``: in this process, without Ray)."""
    from simulator.generate import GenerationConfig, generate

    return generate(GenerationConfig(**config_kwargs), out, workers=workers, progress=False)


def _gen_description(kwargs: dict, out: str, workers) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"simulator.generate.generate(GenerationConfig({args}), {out!r}, workers={workers})"


def train_model(argv: list[str]) -> None:
    from network.train import main as train_main

    rc = train_main(argv)
    if rc != 0:
        raise StepFailedError(f"python -m network.train {' '.join(argv)} exited with {rc}")


def predict_methods(checkpoint: str, store: str, split: str | None, methods, audio_checkpoint: str | None = None,
                    batch_size: int = 4, vision_checkpoint: str | None = None, mean_stature_m: float | None = None) -> dict:
    """Per-frame predictions of each method on the same frames, by ``network.inference.run_methods`` (the
    runner of ``network.evaluate``): {"truth", "is_minor", "height", "index", "rooms", "pred": {method: (N, 15, 3)}}."""
    import torch
    import zarr

    from network.checkpoints import load_model
    from network.data import SynthFrames, collate
    from network.inference import collect_reference, resolve_device, run_methods

    dev = resolve_device("auto")
    model, state = load_model(checkpoint, device=dev)
    frames = SynthFrames(store, state["config_obj"], split=split)

    def loader(ds):
        return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0, collate_fn=collate)

    others = {}
    for method, path in (("audio_only", audio_checkpoint), ("vision_learned", vision_checkpoint)):
        if method in methods:
            other, other_state = load_model(path, device=dev)
            others[method] = (other, SynthFrames(store, other_state["config_obj"], split=split))
    none = (None, None)
    reference = collect_reference(loader(frames))
    pred = run_methods(methods, reference, loader, dev, dev.type == "cuda", model=model, frames=frames,
                       audio_model=others.get("audio_only", none)[0], audio_frames=others.get("audio_only", none)[1],
                       vision_model=others.get("vision_learned", none)[0],
                       vision_frames=others.get("vision_learned", none)[1], mean_stature_m=mean_stature_m)
    out = {"truth": reference["truth"], "is_minor": reference["is_minor"].astype(bool), "index": reference["index"],
           "rooms": reference["room_id"], "pred": pred}
    root = zarr.open_group(store, mode="r")
    out["height"] = np.asarray(root["height"][:], float)[out["index"].astype(int)]
    return out


def score(pred: dict, resamples: int = 2000) -> dict:
    """Tables 1-3's numbers of every method of ``pred`` (:func:`predict_methods`), each cell also with its
    room-bootstrap interval (``intervals``, :func:`network.evaluate.metric_intervals`)."""
    from network.evaluate import metric_intervals, mpjpe_by_group, pck_by_group

    return {m: {"mpjpe_cm": mpjpe_by_group(p, pred["truth"], pred["is_minor"]),
                "pck": pck_by_group(p, pred["truth"], PCK_T, pred["is_minor"]),
                "intervals": metric_intervals(p, pred["truth"], pred["is_minor"], pred["rooms"], PCK_T,
                                              resamples=resamples),
                "frames_scored": int(np.isfinite(p).all(axis=(1, 2)).sum())}
            for m, p in pred["pred"].items()}


def mean_cm(pred: dict, method: str) -> float:
    """Mean per-joint error (cm) of a method over every frame (minors and adults pooled)."""
    from network.evaluate import joint_errors_cm

    e = joint_errors_cm(pred["pred"][method], pred["truth"])
    e = e[np.isfinite(e)]
    return float(e.mean()) if e.size else float("nan")


def frame_errors_cm(pred: dict, method: str) -> np.ndarray:
    """(N,) mean joint error of each frame, cm."""
    from network.evaluate import joint_errors_cm

    with np.errstate(invalid="ignore"):
        return np.nanmean(joint_errors_cm(pred["pred"][method], pred["truth"]), axis=1)


# ---------------------------------------------------------------------------------------------------------
# The steps of a run
def plan_stores(scale: Scale) -> list[tuple[str, dict]]:
    """Every store to generate, (name, ``GenerationConfig`` keyword arguments), in generation order: the main
    store, the generalisation families A and B, and the four shadow stores."""
    common = {"frames_per_room": scale.frames_per_room, "subjects_per_room": scale.subjects_per_room,
              "max_order": scale.max_order, "kernel_samples": scale.kernel_samples,
              "minor_fraction": scale.minor_fraction}
    main_kw = dict(common, rooms=scale.rooms, rig="mixed", split=tuple(scale.split))
    main_kw["seed"] = choose_seed(main_kw, scale.seed, need=("train", "val", "test") if scale.rooms >= 3 else ("train", "test"),
                                  minimum={"test": scale.min_test_rooms, "train": scale.min_train_rooms})
    gen_a_kw = dict(common, rooms=scale.gen_train_rooms, frames_per_room=scale.gen_frames_per_room, rig="co-located",
                    min_floor_m=5.0, max_floor_m=7.0, split=(0.5, 0.0, 0.5) if scale.gen_train_rooms < 6 else (0.55, 0.05, 0.4))
    gen_a_kw["seed"] = choose_seed(gen_a_kw, scale.seed + 100, minimum={"test": scale.gen_min_test_rooms})
    gen_b_kw = dict(common, rooms=scale.gen_test_rooms, frames_per_room=scale.gen_frames_per_room, rig="separated",
                    min_floor_m=7.0, max_floor_m=10.0, split=(0.0, 0.0, 1.0), seed=scale.seed + 200)
    plan = [("main", main_kw), ("gen_a", gen_a_kw), ("gen_b", gen_b_kw)]
    for size, lo, hi in (("small_rooms", 3.0, 4.5), ("large_rooms", 5.0, 8.0)):
        for shadow in (True, False):
            plan.append((f"shadow_{size}_{'on' if shadow else 'off'}",
                         dict(common, rooms=scale.shadow_rooms, frames_per_room=scale.shadow_frames_per_room,
                              rig="mixed", min_floor_m=lo, max_floor_m=hi, shadowing=shadow, split=(0.0, 0.0, 1.0),
                              seed=scale.seed + 300)))
    return plan


def generate_stores(rec: Recorder, plan: list[tuple[str, dict]], data: Path, workers: int | None) -> tuple[dict, dict]:
    """Generate (or resume) every planned store under ``data``; returns ({name: path}, {name: summary})."""
    stores, summaries = {}, {}
    for name, kw in plan:
        path = str(data / f"{name}.zarr")
        stores[name] = path
        summaries[name] = rec.run(f"generate {name}", _gen_description(kw, path, workers), generate_store, kw, path, workers)
    return stores, summaries


def train_models(rec: Recorder, scale: Scale, stores: dict, runs: Path) -> dict:
    """Train ours, audio only, vision only and ours on family A (a model whose best.pt exists is kept);
    {name: best.pt}."""
    base = ["--pretrain", "synth", "--config", scale.config, "--batch-size", str(scale.batch_size), "--workers", "0",
            "--seed", str(scale.seed), "--no-progress", "--lr-schedule", scale.lr_schedule, "--in-memory"] + (
                ["--lr", repr(scale.lr)] if scale.lr is not None else [])
    aux = str(scale.aux_epochs or scale.epochs)
    trainings = {"ours": (["--synth", stores["main"], "--out", str(runs / "ours")], str(scale.epochs)),
                 "audio_only": (["--synth", stores["main"], "--out", str(runs / "audio_only"), "--no-vision"], aux),
                 "vision_learned": (["--synth", stores["main"], "--out", str(runs / "vision_learned"), "--no-audio"], aux),
                 "gen_a": (["--synth", stores["gen_a"], "--out", str(runs / "gen_a")], str(scale.epochs))}
    ckpt = {}
    for name, (extra, epochs) in trainings.items():
        argv = extra + base + ["--epochs", epochs]
        best = Path(extra[extra.index("--out") + 1]) / "pretrain" / "best.pt"
        if not best.exists():
            rec.run(f"train {name}", "python -m network.train " + " ".join(argv), train_model, argv)
        ckpt[name] = str(best)
    return ckpt


MAIN_METHODS = ("ours", "vision_learned", "geometric", "vision_mean_stature", "vision_avg_height", "audio_only",
                "vision_half_pairs", "colocated_only")


def cross_check_cli(rec: Recorder, ckpt: dict, stores: dict, out_dir: Path) -> int:
    """``python -m network.evaluate`` on the main test split into ``out_dir/evaluate`` (ours and the 1.7 m prior:
    a check that the command gives the numbers computed here, without a second pass of every model); its exit code."""
    from network.evaluate import main as evaluate_main

    eval_argv = ["--checkpoint", ckpt["ours"], "--data", stores["main"], "--split", "test", "--out",
                 str(out_dir / "evaluate"), "--methods", "ours", "vision_avg_height", "--no-progress"]
    return rec.run("evaluate (network.evaluate CLI, cross-check)", "python -m network.evaluate " + " ".join(eval_argv),
                   evaluate_main, eval_argv)


def predict_all(rec: Recorder, ckpt: dict, stores: dict, plan: list[tuple[str, dict]]) -> dict:
    """Per-frame predictions: "main" (every method, main test split), "gen_seen" / "gen_unseen" (family A's
    model on A's test rooms / on family B) and "shadow" ({store: the main model on it})."""
    from network.baselines import population_mean_stature

    mean_stature_m, _ = population_mean_stature(stores["main"])
    preds = {"main": rec.run("predict main test split (per frame)", f"predict_methods({ckpt['ours']!r}, main test)",
                             predict_methods, ckpt["ours"], stores["main"], "test", MAIN_METHODS, ckpt["audio_only"],
                             vision_checkpoint=ckpt["vision_learned"], mean_stature_m=mean_stature_m)}
    preds["main"]["mean_stature_m"] = mean_stature_m
    preds["gen_seen"] = rec.run("predict generalisation: family A test rooms", "predict_methods(gen_a model, gen_a test)",
                                predict_methods, ckpt["gen_a"], stores["gen_a"], "test", ("ours", "vision_avg_height"))
    preds["gen_unseen"] = rec.run("predict generalisation: family B", "predict_methods(gen_a model, gen_b all)",
                                  predict_methods, ckpt["gen_a"], stores["gen_b"], None, ("ours", "vision_avg_height"))
    preds["shadow"] = {}
    for name in [n for n, _ in plan if n.startswith("shadow_")]:
        preds["shadow"][name] = rec.run(f"predict {name}", f"predict_methods(ours model, {name} all)",
                                        predict_methods, ckpt["ours"], stores[name], None, ("ours",))
    return preds


def judge_claims(preds: dict, results: dict, plan: dict, scale: Scale) -> tuple[dict, dict, dict]:
    """The six claims' verdicts with their setups; also the pooled MPJPE and height fits they use."""
    main_pred, gen_seen, gen_unseen, shadow = preds["main"], preds["gen_seen"], preds["gen_unseen"], preds["shadow"]
    n_minor, n_adult = int(main_pred["is_minor"].sum()), int((~main_pred["is_minor"]).sum())
    pooled = {m: mean_cm(main_pred, m) for m in MAIN_METHODS}
    heights, rooms = main_pred["height"], main_pred["rooms"]
    dep = {m: height_dependence(frame_errors_cm(main_pred, m), heights) for m in ("vision_avg_height", "ours")}
    err = {m: frame_errors_cm(main_pred, m) for m in MAIN_METHODS}
    unseen = {m: frame_errors_cm(gen_unseen, m) for m in ("ours", "vision_avg_height")}
    small_large = [(frame_errors_cm(shadow[f"shadow_{s}_on"], "ours"), frame_errors_cm(shadow[f"shadow_{s}_off"], "ours"),
                    shadow[f"shadow_{s}_on"]["rooms"]) for s in ("small_rooms", "large_rooms")]
    claims = {
        "ours_beats_vision_prior": claim_ours_beats_vision(err["ours"], err["vision_avg_height"], rooms),
        "height_dependence": claim_height_dependence(err["vision_avg_height"], err["ours"], heights, rooms,
                                                     main_pred["is_minor"]),
        "audio_alone_poor": claim_audio_poor(err["audio_only"], err["ours"], rooms),
        "more_pairs_help": claim_more_pairs(err["ours"], err["vision_half_pairs"], err["colocated_only"], rooms),
        "generalisation": claim_generalisation(frame_errors_cm(gen_seen, "ours"), gen_seen["rooms"], unseen["ours"],
                                               gen_unseen["rooms"], unseen["vision_avg_height"]),
        "shadow_effect": claim_shadow(*small_large[0], *small_large[1]),
    }
    claims["ours_beats_vision_prior"]["setup"] = claims["audio_alone_poor"]["setup"] = claims["more_pairs_help"]["setup"] = \
        f"main store test split ({len(heights)} frames of unseen rooms: {n_minor} of minors, {n_adult} of adults), mixed rigs"
    claims["height_dependence"]["setup"] = ("per-frame mean joint error against |stature - 1.7 m|, main test split, "
                                            "slopes' intervals by resampling rooms; see mpjpe_by_height.png")
    claims["generalisation"]["setup"] = (
        f"model trained on family A only (co-located rigs, floors 5-7 m, seed {plan['gen_a']['seed']}); 'seen family' = A's "
        f"test rooms ({len(gen_seen['truth'])} frames), 'unseen family' = family B (separated speakers and microphones, "
        f"floors 7-10 m, seed {plan['gen_b']['seed']}: other rooms, materials and rig geometry; {len(gen_unseen['truth'])} frames). "
        "Unseen rooms of the same family are claims (1)-(4)'s test split.")
    claims["shadow_effect"]["setup"] = (
        f"the main model on four test-only stores of the same seed ({scale.seed + 300}: same rooms' draws and poses), "
        "floors 3-4.5 m vs 5-8 m, body shadowing of room paths on vs off; the main model was trained on floors >= 5 m "
        "with shadowing on, so the small rooms are also out of its training range: compare on vs off within a size")
    for c in claims.values():
        c.setdefault("setup", "")
    return claims, pooled, dep


def write_report(out_dir: Path, scale: Scale, preds: dict, results: dict, claims: dict, pooled: dict, dep: dict,
                 rc: int) -> dict:
    """tables.md, claims.md, mpjpe_by_height.png and metrics.json; returns the metrics."""
    main_pred, gen_seen, gen_unseen = preds["main"], preds["gen_seen"], preds["gen_unseen"]
    heights = main_pred["height"]
    n_minor, n_adult = int(main_pred["is_minor"].sum()), int((~main_pred["is_minor"]).sum())
    banner = (f"**Scale `{scale.name}`: {scale.notes}.**" if scale.name != "tiny" else
              "**TINY SCALE: a smoke run of a few frames and one epoch. The numbers below are meaningless; only "
              "the code path is exercised.**")
    from network.evaluate import joint_errors_cm, rooms_note

    n_rooms = len(np.unique(main_pred["rooms"]))
    frames_note = (f"Test frames: {len(heights)} from {n_rooms} unseen rooms ({n_minor} of minors, {n_adult} of adults); "
                   "– where a population has none. Our cells: estimate [95 % interval from a bootstrap over rooms]. "
                   f"Population-mean stature prior: {main_pred.get('mean_stature_m', float('nan')):.3f} m (mean "
                   "stature of the training split).")
    note = rooms_note(main_pred["rooms"])
    if note:
        print(f"[paper_tables] {note}", file=sys.stderr)
        frames_note += f" **Note: {note}.**"
    for method, r in results.items():
        if r.get("frames_scored", len(heights)) < len(heights):
            frames_note += f" {method}: {r['frames_scored']} of {len(heights)} frames scored (the others have no co-located pair)."
    _write_text(out_dir / "tables.md", format_paper_tables(results, frames_note, banner))
    targets = judge_targets(joint_errors_cm(main_pred["pred"]["ours"], main_pred["truth"]), main_pred["is_minor"],
                            main_pred["rooms"], joint_errors_cm(main_pred["pred"]["colocated_only"], main_pred["truth"]))
    _write_text(out_dir / "claims.md", format_claims(claims, banner) + "\n## The network's accuracy targets (README)\n\n"
                + "Ours on the same test frames; met only when the whole interval is on the target's side.\n\n"
                + format_targets(targets))
    plot_mpjpe_by_height(out_dir / "mpjpe_by_height.png", heights,
                         {m: frame_errors_cm(main_pred, m) for m in ("vision_avg_height", "ours")})
    cross = json.loads((out_dir / "evaluate" / "metrics.json").read_text()) if rc == 0 else {}
    cli_ours = (((cross.get("methods") or {}).get("ours") or {}).get("mpjpe_cm") or {})
    metrics = {"scale": scale.name, "methods": results, "pooled_mean_mpjpe_cm": pooled, "height_dependence": dep,
               "claims": claims, "targets": targets, "test_frames": len(heights), "test_rooms": n_rooms, "intervals_note": note,
               "mean_stature_m": main_pred.get("mean_stature_m"), "minors": n_minor, "adults": n_adult,
               "generalisation_cm": {"seen_family": mean_cm(gen_seen, "ours"), "unseen_family": mean_cm(gen_unseen, "ours"),
                                     "vision_unseen_family": mean_cm(gen_unseen, "vision_avg_height")},
               "shadow_cm": {k: mean_cm(v, "ours") for k, v in preds["shadow"].items()},
               "cross_check_evaluate_cli": {"exit_code": rc, "ours_mpjpe_cm_cli": cli_ours,
                                            "ours_mpjpe_cm_here": results["ours"]["mpjpe_cm"]}}
    _write_text(out_dir / "metrics.json", json.dumps(jsonable(metrics), indent=2))
    return metrics


OUTPUT_FILES = ("tables.md", "claims.md", "metrics.json", "run.json", "mpjpe_by_height.png")


def _made_by_old_paper_tables(path: Path) -> bool:
    """A results folder this driver wrote before output folders got their marker: only its own files."""
    names = {p.name for p in path.iterdir()}
    return "run.json" in names and names <= set(OUTPUT_FILES) | {"data", "runs", "evaluate"}


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode()))


def run(scale: Scale, out: str, workers: int | None = None, data_dir: str | None = None) -> dict:
    """Every step at ``scale``; writes tables.md, claims.md, mpjpe_by_height.png, metrics.json, run.json."""
    started = time.perf_counter()
    out_dir = claim_run_dir(out, "--out", WRITER, _made_by_old_paper_tables)
    data = Path(data_dir) if data_dir else out_dir / "data"
    rec = Recorder()
    plan = plan_stores(scale)
    stores, summaries = generate_stores(rec, plan, data, workers)
    ckpt = train_models(rec, scale, stores, out_dir / "runs")
    rc = cross_check_cli(rec, ckpt, stores, out_dir)
    preds = predict_all(rec, ckpt, stores, plan)
    results = score(preds["main"])
    claims, pooled, dep = judge_claims(preds, results, dict(plan), scale)
    metrics = write_report(out_dir, scale, preds, results, claims, pooled, dep, rc)
    run_info = {"scale": asdict(scale), "out": str(out_dir), "workers": workers, "machine": machine(),
                "seeds": {"network": scale.seed, **{n: kw["seed"] for n, kw in plan}},
                "stores": {n: {"path": stores[n], "config": kw, "summary": summaries[n]} for n, kw in plan},
                "checkpoints": ckpt, "commands": rec.steps,
                "total_wall_s": round(time.perf_counter() - started, 2),
                "argv": sys.argv, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - (time.perf_counter() - started)))}
    _write_text(out_dir / "run.json", json.dumps(jsonable(run_info), indent=2, default=str))
    return {"metrics": metrics, "run": run_info}


# What each scale trains, by architecture: the coarse-to-fine network is the default since it beat the paper's
# at equal training time on the same unseen rooms (README, "Network"); ``--arch paper`` reproduces the paper's
# own network. Its small-scale settings: batch 4 as in the comparison that made it the default, and a cosine
# schedule from 3e-3, which beat the constant 2e-3 on the same frames (experiments/results/network/README.md);
# an epoch costs about a third of the paper network's, so it gets more of them in the same time.
ARCH_SETTINGS = {
    "coarse_fine": {"tiny": dict(config="c2f_tiny"),
                    "small": dict(config="c2f_small", epochs=30, aux_epochs=6, batch_size=4, lr=3e-3,
                                  lr_schedule="cosine"),
                    "medium": dict(config="c2f", lr=3e-3, lr_schedule="cosine"),
                    "full": dict(config="c2f")},
    "paper": {"tiny": dict(config="tiny"), "small": dict(config="small"), "medium": dict(config="paper", epochs=6),
              "full": dict(config="paper")},
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.paper_tables", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    p.add_argument("--arch", choices=sorted(ARCH_SETTINGS), default="coarse_fine",
                   help="the network trained for 'ours' and the ablations (paper: the paper's multi-stage network)")
    p.add_argument("--out", default=None, help="output folder (default experiments/results/<scale>)")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray workers for generation (default: every core); 0 generates in this process without Ray")
    p.add_argument("--data", default=None, help="folder for the Zarr stores (default <out>/data)")
    args = p.parse_args(argv)
    scale = dataclasses.replace(SCALES[args.scale], **ARCH_SETTINGS[args.arch][args.scale])
    out = args.out or f"experiments/results/{scale.name}"

    def work() -> int:
        summary = run(scale, out, workers=args.workers, data_dir=args.data)
        for key in CLAIMS:
            print(f"{CLAIM_TITLES[key]}: {summary['metrics']['claims'][key]['verdict']}")
        print(f"wrote {out}/tables.md, claims.md, mpjpe_by_height.png, metrics.json, run.json "
              f"({summary['run']['total_wall_s']} s)")
        return 0

    return run_command(work, interrupted="finished stores and models are kept; the same command goes on from them")


if __name__ == "__main__":
    sys.exit(main())
