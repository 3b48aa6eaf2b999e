"""Evaluate a trained PoseKernelLifter as the paper's Tables 1 and 2 (MPJPE, PCK@t per joint group).

    python -m network.evaluate --checkpoint runs/paper/finetune/best.pt --data PoseKernel/ --split test --out results/
    python -m network.evaluate --checkpoint runs/small/pretrain/best.pt --data data/synth.zarr --split test \\
        --methods ours vision_avg_height vision_half_pairs colocated_only \\
        --audio-checkpoint runs/audio/pretrain/best.pt --out results/synth

Writes to ``--out``: ``metrics.json`` (every number), ``tables.md`` (Table 1: MPJPE in cm, Table 2: PCK@10/20/30/40
cm, per joint group Head, Neck, Hand, Elbow, Shoulder, Hip, Knee, Foot and Mean, each cell "minors / adults"
as in the paper) and ``skeletons.png`` (a few frames: truth against the predictions). ``--out`` is claimed before
any work: a new or empty folder, or one this command made; every number and checkpoint is checked first (the
checkpoints load weights only, see ``docs/checkpoint_format.md``). The network configuration comes from the
checkpoint: ``--config NAME`` may be left out; given, it must be the checkpoint's (another is refused, the
differing fields named).

Data: a synthetic Zarr store (``--split train|val|test|all``) or real captures (PoseKernel layout or raw
capture folders). For real data ``--split test`` reads the checkpoint's held-out ``test_environments``
(``--environments`` overrides), ``--split train`` its fine-tuning environments, ``--split all`` everything.

Methods (``--methods``, all on the same frames):

* ``ours`` -- the checkpoint's model (vision + every pair);
* ``vision_avg_height`` -- the vision-only baseline of the paper: 2D keypoints lifted to metric 3D by assuming a
  1.7 m stature (:func:`network.baselines.lift_average_height`);
* ``vision_mean_stature`` -- the same lifter with the population's mean stature: the mean ``height`` of the
  store's training split for a synthetic store (minors and adults mixed as generated), else 1.7 m with a note
  (:func:`network.baselines.population_mean_stature`);
* ``vision_learned`` -- a model trained with ``use_audio=False`` (``python -m network.train --no-audio ...``),
  given by ``--vision-checkpoint``;
* ``geometric`` -- no learning: the visual encoding times the geometric mean over pairs of the audio encodings,
  arg-max per joint on the checkpoint's grid (:func:`network.baselines.geometric_baseline`);
* ``audio_only`` -- a model trained with ``use_vision=False`` (``python -m network.train --no-vision ...``),
  given by ``--audio-checkpoint`` (the paper's Audio x4);
* ``vision_half_pairs`` -- ours with the second half of each frame's pairs masked (the paper's Vis.+Audio x2;
  for a full S x M rig this keeps the first half of the speakers with every microphone);
* ``colocated_only`` -- ours with only the pairs whose microphone lies within
  ``network.inference.COLOCATED_DISTANCE_M`` of its speaker (by geometry, not index). Frames without such a pair
  (separated rigs) are not applicable: NaN joints, left out of that method's cells, their count in the tables.

Default: every method that can run (``audio_only`` only with ``--audio-checkpoint``, ``vision_learned`` only
with ``--vision-checkpoint``).

Uncertainty: every MPJPE and PCK cell, and the median and 90th percentile of the joint errors per group
(Table 3), carries a 95 % interval from a bootstrap over rooms (:mod:`network.bootstrap`: the frames of a room
are resampled together), written "estimate [low, high]" and in metrics.json under each method's ``intervals``
as {estimate, low, high, level, rooms}. With fewer than ``network.bootstrap.MIN_ROOMS`` rooms the evaluation
says so (one line on stderr, a note in tables.md) and reports the estimates without intervals.

Metrics (pure functions, metres in, centimetres out): :func:`mpjpe_by_group` -- the mean Euclidean error of
the group's joints over frames; "Mean" averages all 15 joints (pelvis included). :func:`pck_by_group` --
the fraction of (frame, joint) errors <= t cm (an error of exactly t counts). Joints whose truth is not finite are left out. Minors and
adults separately (NaN / "--" for a population with no frames).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from bodies.joints import JOINT_GROUPS, JOINT_INDEX, NUM_JOINTS, SKELETON_EDGE_INDICES
from core.checks import check_choice, check_finite_array, check_number, check_whole
from core.cli import run_command
from core.outputs import atomic_write, png_metadata, write_json
from network.baselines import population_mean_stature
from network.bootstrap import MIN_ROOMS, Interval, room_bootstrap
from network.checkpoints import config_differences, load_model, resolve_checkpoint, trained_pair_counts
from network.commands import claim_run_dir, one_line_worker_errors
from network.config import CONFIGS, get_config
from network.data import SynthFrames, collate, is_zarr_store, list_environments, pair_counts, real_dataset
from network.inference import (  # noqa: F401 - METHOD_LABELS, EvaluationError and the masks: also from here
    METHOD_LABELS,
    METHODS,
    EvaluationError,
    collect_reference,
    mask_colocated_only,
    mask_half_pairs,
    resolve_device,
    run_methods,
)

__all__ = [
    "GROUPS",
    "METHODS",
    "PCK_THRESHOLDS_CM",
    "evaluate",
    "format_tables",
    "joint_errors_cm",
    "jsonable",
    "main",
    "metric_intervals",
    "mpjpe_by_group",
    "pck_by_group",
]

GROUPS = tuple(JOINT_GROUPS) + ("Mean",)
PCK_THRESHOLDS_CM = (10, 20, 30, 40)
PCK_TOLERANCE_CM = 1e-9   # an error of exactly t cm counts as correct despite rounding
POPULATIONS = ("minor", "adult")
WRITER = "network.evaluate"
OUTPUT_FILES = ("metrics.json", "tables.md", "skeletons.png")
# ---------------------------------------------------------------------------------------------------------
# Metrics (pure)
def joint_errors_cm(pred, truth) -> np.ndarray:
    """(N, 15) Euclidean error of every joint, cm; NaN where the truth (or prediction) is not finite."""
    pred, truth = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[1:] != (NUM_JOINTS, 3):
        raise EvaluationError(f"pred {pred.shape} and truth {truth.shape} must both be (N, {NUM_JOINTS}, 3), metres")
    return np.linalg.norm(pred - truth, axis=-1) * 100.0


def _group_columns() -> dict[str, list[int]]:
    columns = {g: [JOINT_INDEX[n] for n in names] for g, names in JOINT_GROUPS.items()}
    columns["Mean"] = list(range(NUM_JOINTS))
    return columns


def _populations(is_minor, n: int) -> dict[str, np.ndarray]:
    if is_minor is None:
        return {"all": np.ones(n, bool)}
    is_minor = np.asarray(is_minor, dtype=bool).reshape(-1)
    if len(is_minor) != n:
        raise EvaluationError(f"is_minor has {len(is_minor)} entries for {n} frames; give one flag per frame")
    return {"minor": is_minor, "adult": ~is_minor}


def mpjpe_by_group(pred, truth, is_minor) -> dict[str, dict[str, float]]:
    """MPJPE (cm) per joint group, minors and adults separately.

    Args:
        pred, truth: (N, 15, 3) joints, metres (same frame).
        is_minor: (N,) bool; None pools every frame under the key "all".
    Returns:
        {"minor": {"Head": cm, ..., "Foot": cm, "Mean": cm}, "adult": {...}}: each group's value is the mean
        error over the frames of that population and the group's joints; NaN when there are none.
    """
    errors = joint_errors_cm(pred, truth)
    out = {}
    for population, rows in _populations(is_minor, len(errors)).items():
        out[population] = {}
        for group, cols in _group_columns().items():
            values = errors[rows][:, cols]
            values = values[np.isfinite(values)]
            out[population][group] = float(values.mean()) if values.size else float("nan")
    return out


def pck_by_group(pred, truth, thresholds_cm=PCK_THRESHOLDS_CM, is_minor=None) -> dict[str, dict]:
    """PCK@t per joint group: the fraction of joints within t cm of the truth, minors and adults separately.

    Returns:
        {"minor": {t: {"Head": fraction, ..., "Mean": fraction}}, "adult": {...}} for each t of
        ``thresholds_cm`` (keys as given); NaN when a population has no frames.
    """
    errors = joint_errors_cm(pred, truth)
    out = {}
    for population, rows in _populations(is_minor, len(errors)).items():
        out[population] = {}
        for t in thresholds_cm:
            out[population][t] = {}
            for group, cols in _group_columns().items():
                values = errors[rows][:, cols]
                values = values[np.isfinite(values)]
                out[population][t][group] = float((values <= float(t) + PCK_TOLERANCE_CM).mean()) if values.size else float("nan")
    return out


QUANTILES = {"median_cm": 50, "p90_cm": 90}
QUANTILE_RESAMPLES = 1000   # quantiles take the slow (concatenating) bootstrap path: fewer resamples


def _empty_interval(level: float) -> Interval:
    return Interval(math.nan, math.nan, math.nan, level, 0, "no frames")


def metric_intervals(pred, truth, is_minor, rooms, thresholds_cm=PCK_THRESHOLDS_CM, level: float = 0.95,
                     resamples: int = 2000, seed: int = 0, min_rooms: int = MIN_ROOMS) -> dict:
    """Every cell of Tables 1-3 as an :class:`network.bootstrap.Interval` by resampling rooms.

    Args:
        pred, truth: (N, 15, 3) joints, metres; is_minor: (N,) bool (None pools under "all");
        rooms: (N,) room id of each frame (the unit of resampling).
    Returns:
        {"mpjpe_cm": {pop: {group: Interval}}, "pck": {pop: {t: {group: Interval}}},
        "median_cm": {pop: {group: Interval}}, "p90_cm": {...}}. The estimates equal :func:`mpjpe_by_group` /
        :func:`pck_by_group` (frames pooled; NaN joints left out). Without enough rooms the bounds are NaN.
    """
    errors = joint_errors_cm(pred, truth)
    rooms = np.asarray(rooms).reshape(-1)
    if len(rooms) != len(errors):
        raise EvaluationError(f"rooms has {len(rooms)} entries for {len(errors)} frames; give one room id per frame")
    out = {"mpjpe_cm": {}, "pck": {}, **{k: {} for k in QUANTILES}}
    boot = dict(level=level, seed=seed, min_rooms=min_rooms)
    for population, rows in _populations(is_minor, len(errors)).items():
        for key in out:
            out[key][population] = {t: {} for t in thresholds_cm} if key == "pck" else {}
        for group, cols in _group_columns().items():
            values = errors[rows][:, cols]
            if not np.isfinite(values).any():
                for key in out:
                    for cell in ([out[key][population][t] for t in thresholds_cm] if key == "pck"
                                 else [out[key][population]]):
                        cell[group] = _empty_interval(level)
                continue
            where = rooms[rows]
            out["mpjpe_cm"][population][group] = room_bootstrap(values, where, resamples=resamples, **boot)
            for t in thresholds_cm:
                hits = np.where(np.isfinite(values), (values <= float(t) + PCK_TOLERANCE_CM).astype(float), np.nan)
                out["pck"][population][t][group] = room_bootstrap(hits, where, resamples=resamples, **boot)
            for key, q in QUANTILES.items():
                out[key][population][group] = room_bootstrap(
                    values, where, statistic=lambda v, q=q: float(np.nanpercentile(v, q)),
                    resamples=min(resamples, QUANTILE_RESAMPLES), **boot)
    return out


def rooms_note(rooms, min_rooms: int = MIN_ROOMS) -> str:
    """"" with enough rooms for intervals, else the sentence that says why none are given."""
    count = len(np.unique(np.asarray(rooms).reshape(-1)))
    if count >= min_rooms:
        return ""
    return (f"only {count} room(s) in this evaluation: a room-bootstrap interval needs at least {min_rooms}, so the "
            f"numbers are given without intervals (evaluate on more rooms for them)")


# ---------------------------------------------------------------------------------------------------------
# Tables
def _missing(v) -> bool:
    if isinstance(v, Interval):
        return not math.isfinite(v.estimate)
    return v is None or (isinstance(v, float) and math.isnan(v))


def _cell(values, fmt, digits: int = 2) -> str:
    """One "minors / adults" cell; an :class:`Interval` is written "estimate [low, high]"."""
    return " / ".join("–" if _missing(v) else (v.format(digits) if isinstance(v, Interval) else fmt(v))
                      for v in values)


def format_tables(results: dict, thresholds_cm=PCK_THRESHOLDS_CM, header: str = "") -> str:
    """Markdown of the paper's Tables 1 and 2 (and Table 3, medians and 90th percentiles, when intervals are
    given). ``results[method] = {"mpjpe_cm": ..., "pck": ...}`` as returned by :func:`mpjpe_by_group` /
    :func:`pck_by_group` with minors and adults, plus optionally ``"intervals"`` (:func:`metric_intervals`),
    whose cells then replace the plain numbers."""
    lines = []
    if header:
        lines += [header, ""]
    cols = "| " + " | ".join(GROUPS) + " |"
    cells_of = {m: r.get("intervals") or r for m, r in results.items()}
    lines += ["## Table 1. MPJPE (cm, lower is better), minors / adults", "",
              "| Method " + cols, "| --- " + "| --- " * len(GROUPS) + "|"]
    for method, r in cells_of.items():
        cells = [_cell([r["mpjpe_cm"][p][g] for p in POPULATIONS], lambda v: f"{v:.2f}", 1) for g in GROUPS]
        lines.append(f"| {METHOD_LABELS.get(method, method)} | " + " | ".join(cells) + " |")
    lines += ["", "## Table 2. PCK@t (fraction of joints within t, higher is better), minors / adults", "",
              "| Method | t " + cols, "| --- | --- " + "| --- " * len(GROUPS) + "|"]
    for t in thresholds_cm:
        for method, r in cells_of.items():
            cells = [_cell([r["pck"][p][t][g] for p in POPULATIONS], lambda v: f"{v:.3f}", 2) for g in GROUPS]
            lines.append(f"| {METHOD_LABELS.get(method, method)} | {t:g} cm | " + " | ".join(cells) + " |")
    with_quantiles = {m: r for m, r in cells_of.items() if "median_cm" in r}
    if with_quantiles:
        lines += ["", "## Table 3. Median and 90th percentile of the joint errors (cm), minors / adults", "",
                  "| Method | statistic " + cols, "| --- | --- " + "| --- " * len(GROUPS) + "|"]
        for key, name in (("median_cm", "median"), ("p90_cm", "90th percentile")):
            for method, r in with_quantiles.items():
                cells = [_cell([r[key][p][g] for p in POPULATIONS], lambda v: f"{v:.2f}", 1) for g in GROUPS]
                lines.append(f"| {METHOD_LABELS.get(method, method)} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def jsonable(value):
    """``value`` with numpy scalars as Python values, intervals as dicts and NaN/inf as None (JSON has neither)."""
    if isinstance(value, Interval):
        return jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


# ---------------------------------------------------------------------------------------------------------
# Evaluation
def _dataset(data: str, split: str, config, checkpoint: dict, environments, grid_center):
    if is_zarr_store(data):
        frames = SynthFrames(data, config, split=None if split == "all" else split)
        if len(frames) == 0:
            raise EvaluationError(f"{data}: no finished frames in split {split!r}; try --split all or another split")
        return frames, {"source": "synth", "split": split}
    if not Path(data).is_dir():
        raise EvaluationError(f"--data {data}: neither a Zarr store nor a folder of real captures")
    info = checkpoint.get("data") or {}
    if environments is None:
        if split == "all":
            environments = list_environments(data)
        elif info.get("source") == "real" and split in ("test", "train"):
            environments = info.get("test_environments" if split == "test" else "finetune_environments") or None
        if not environments:
            raise EvaluationError(f"--split {split}: the checkpoint records no {split} environments for real data; "
                                  f"give --environments ENV ... (or --split all)")
    if grid_center is None:
        grid_center = info.get("grid_center_m") or config.grid_center_m
    frames = real_dataset(data, config, environments=environments, grid_center_m=grid_center,
                          require_ground_truth=True)
    return frames, {"source": "real", "split": split, "environments": list(environments),
                    "grid_center_m": list(grid_center)}


def check_pair_counts(checkpoint: str, state: dict, frames, allow: bool = False) -> list[int]:
    """Refuse data whose speaker-microphone pair count the model never trained on (unless ``allow``).

    The network max-pools over pairs, so it runs on any count, but a model trained only on 16-pair synthetic
    rigs is not a fair measure of a 4-pair real rig: that needs fine-tuning first. Checkpoints made before
    pair counts were recorded are not checked.
    """
    counts = pair_counts(frames)
    seen = trained_pair_counts(state)
    if seen and not allow and not set(counts) <= set(seen):
        raise EvaluationError(
            f"{checkpoint} was trained on frames of {seen} speaker-microphone pairs, but this data has {counts}. "
            f"Fine-tune on this rig first (python -m network.train --finetune real --real DIR --init {checkpoint}), "
            f"or pass --any-pair-count to evaluate anyway")
    return counts


def _plot(path: Path, truth, predictions: dict, frames: int = 4) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(truth)
    chosen = np.unique(np.linspace(0, n - 1, min(frames, n)).round().astype(int))
    colours = {"ours": "tab:red", "vision_avg_height": "tab:blue", "audio_only": "tab:green",
               "vision_half_pairs": "tab:orange", "colocated_only": "tab:purple", "vision_learned": "tab:cyan",
               "vision_mean_stature": "tab:olive", "geometric": "tab:brown"}
    fig = plt.figure(figsize=(4 * len(chosen), 4.5))
    for k, f in enumerate(chosen):
        ax = fig.add_subplot(1, len(chosen), k + 1, projection="3d")
        for name, joints, style in [("truth", truth[f], dict(color="black", lw=2.5))] + \
                [(m, p[f], dict(color=colours.get(m, "gray"), lw=1.5, ls="--")) for m, p in predictions.items()]:
            if not np.all(np.isfinite(joints)):
                continue
            x, y, z = joints[:, 0], joints[:, 2], -joints[:, 1]     # camera frame -> x right, depth, up
            for e, (a, b) in enumerate(SKELETON_EDGE_INDICES):
                ax.plot([x[a], x[b]], [y[a], y[b]], [z[a], z[b]], label=name if e == 0 else None, **style)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("depth z (m)")
        ax.set_zlabel("up -y (m)")
        ax.set_title(f"frame {f}")
        if k == 0:
            ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, dpi=90, format="png", metadata=png_metadata(WRITER))
    plt.close(fig)
    atomic_write(path, lambda handle: handle.write(image.getvalue()))


def _made_by_old_evaluate(path: Path) -> bool:
    """An output folder of this command from before output markers: only its three files, metrics.json ours."""
    try:
        if not {p.name for p in path.iterdir()} <= set(OUTPUT_FILES):
            return False
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and {"checkpoint", "methods", "frames"} <= set(metrics)


def _check_arguments(split: str, methods, audio_checkpoint, batch_size, workers, max_frames, grid_center,
                    thresholds_cm, stature_prior_m, vision_checkpoint=None) -> dict:
    """Every argument of :func:`evaluate` that is not a file, checked (EvaluationError naming the flag);
    returns them converted (``methods`` resolved to the list that runs)."""
    check_choice("--split", split, ("train", "val", "test", "all"), error=EvaluationError)
    if methods is None:
        methods = [m for m in METHODS if (m != "audio_only" or audio_checkpoint)
                   and (m != "vision_learned" or vision_checkpoint)]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise EvaluationError(f"--methods {unknown or '(none)'}: choose from {list(METHODS)}")
    if "audio_only" in methods and not audio_checkpoint:
        raise EvaluationError("audio_only needs --audio-checkpoint: a model trained with "
                              "`python -m network.train --no-vision ...`")
    if "vision_learned" in methods and not vision_checkpoint:
        raise EvaluationError("vision_learned needs --vision-checkpoint: a model trained with "
                              "`python -m network.train --no-audio ...`")
    if grid_center is not None:
        grid_center = check_finite_array("--grid-center", grid_center, (3,), error=EvaluationError).tolist()
    thresholds_cm = list(thresholds_cm)
    for t in thresholds_cm:     # checked, kept as given: they are the keys of the PCK results
        check_number("thresholds_cm", t, 0, low_open=True, error=EvaluationError)
    return {
        "methods": list(methods), "grid_center": grid_center,
        "batch_size": check_whole("--batch-size", batch_size, 1, error=EvaluationError),
        "workers": check_whole("--workers", workers, 0, error=EvaluationError),
        "max_frames": None if max_frames is None else check_whole("--max-frames", max_frames, 1,
                                                                  error=EvaluationError),
        "thresholds_cm": list(thresholds_cm),
        "stature_prior_m": check_number("stature_prior_m", stature_prior_m, 0, low_open=True, error=EvaluationError),
    }


def _ablation_model(wanted: bool, path, flag: str, switched_off: str, train_flag: str, device):
    """(model, state) of an ablation checkpoint whose ``switched_off`` input must be off, or (None, None)."""
    if not wanted:
        return None, None
    model, state = load_model(path, device=device)
    if getattr(state["config_obj"], switched_off):
        raise EvaluationError(f"{flag} {path} was trained with {switched_off}=True; train that model with {train_flag}")
    return model, state


def evaluate(checkpoint: str, data: str, split: str = "test", out: str = "results", methods=None,
             audio_checkpoint: str | None = None, environments=None, grid_center=None, batch_size: int = 4,
             device: str = "auto", workers: int = 0, thresholds_cm=PCK_THRESHOLDS_CM, max_frames: int | None = None,
             progress: bool = True, stature_prior_m: float = 1.7, any_pair_count: bool = False,
             vision_checkpoint: str | None = None, resamples: int = 2000, config_name: str | None = None) -> dict:
    """Run the methods on the same frames and write metrics.json, tables.md and skeletons.png to ``out``.

    The network configuration is the checkpoint's; ``config_name`` (``--config``), when given, must
    name the same preset (see :func:`check_requested_config`).

    Every argument, both checkpoints and the data are checked, and ``out`` is claimed
    (``core.outputs.claim_output_dir``), before any frame is evaluated.
    """
    checked = _check_arguments(split, methods, audio_checkpoint, batch_size, workers, max_frames, grid_center,
                              thresholds_cm, stature_prior_m, vision_checkpoint)
    methods, grid_center, thresholds_cm = checked["methods"], checked["grid_center"], checked["thresholds_cm"]
    dev = resolve_device(device)
    checkpoint = str(resolve_checkpoint(checkpoint))     # "pretrained": the shipped model
    model, state = load_model(checkpoint, device=dev)
    config = state["config_obj"]
    check_requested_config(checkpoint, config, config_name)
    audio_model, audio_state = _ablation_model("audio_only" in methods, audio_checkpoint, "--audio-checkpoint",
                                               "use_vision", "--no-vision", dev)
    vision_model, vision_state = _ablation_model("vision_learned" in methods, vision_checkpoint, "--vision-checkpoint",
                                                 "use_audio", "--no-audio", dev)
    frames, data_info = _dataset(data, split, config, state, environments, grid_center)
    check_pair_counts(checkpoint, state, frames, any_pair_count)
    n_frames = len(frames) if checked["max_frames"] is None else min(checked["max_frames"], len(frames))
    subset = list(range(n_frames))
    frames_used = torch.utils.data.Subset(frames, subset)
    audio_frames = None
    if audio_model is not None:
        audio_frames, _ = _dataset(data, split, audio_state["config_obj"], state, environments, grid_center)
        check_pair_counts(audio_checkpoint, audio_state, audio_frames, any_pair_count)
    vision_frames = None
    if vision_model is not None:
        vision_frames, _ = _dataset(data, split, vision_state["config_obj"], state, environments, grid_center)
        vision_frames = torch.utils.data.Subset(vision_frames, subset)
    mean_stature_m, stature_note = population_mean_stature(data)
    out_dir = claim_run_dir(out, "--out", WRITER, _made_by_old_evaluate)

    def loader(ds):
        return torch.utils.data.DataLoader(ds, batch_size=checked["batch_size"], shuffle=False,
                                           num_workers=checked["workers"], collate_fn=collate)

    reference = collect_reference(loader(frames_used))
    truth, is_minor = reference["truth"], reference["is_minor"].astype(bool)
    if not np.all(np.isfinite(truth)):
        raise EvaluationError(f"{data}: some frames have no 3D ground truth; they cannot be scored")
    predictions = run_methods(
        methods, reference, loader, dev, dev.type == "cuda", model=model, frames=frames_used,
        audio_model=audio_model,
        audio_frames=None if audio_frames is None else torch.utils.data.Subset(audio_frames, subset),
        stature_prior_m=checked["stature_prior_m"], progress=progress, vision_model=vision_model,
        vision_frames=vision_frames, mean_stature_m=mean_stature_m, config=config)
    rooms = reference["room_id"]
    note = rooms_note(rooms)
    if note:
        print(f"{WRITER}: {note}", file=sys.stderr)
    results = {m: {"mpjpe_cm": mpjpe_by_group(p, truth, is_minor), "pck": pck_by_group(p, truth, thresholds_cm, is_minor),
                   "intervals": metric_intervals(p, truth, is_minor, rooms, thresholds_cm, resamples=resamples),
                   "frames_scored": int(np.isfinite(p).all(axis=(1, 2)).sum())}
               for m, p in predictions.items()}
    summary = {
        "checkpoint": str(checkpoint), "audio_checkpoint": audio_checkpoint, "vision_checkpoint": vision_checkpoint,
        "data": str(data), **data_info, "config": config.to_dict(), "frames": len(truth),
        "minors": int(is_minor.sum()), "adults": int((~is_minor).sum()), "rooms": len(np.unique(rooms)),
        "intervals_note": note, "mean_stature_m": mean_stature_m, "mean_stature_note": stature_note,
        "groups": list(GROUPS), "thresholds_cm": list(thresholds_cm), "methods": results,
    }
    write_json(out_dir / "metrics.json", jsonable(summary), WRITER)
    where = ", ".join(f"{k} {v}" for k, v in data_info.items() if k != "source")
    header = (f"# PoseKernelLifter evaluation\n\nCheckpoint `{checkpoint}` (config {config.name!r}); data `{data}` "
              f"({data_info['source']}, {where}); {len(truth)} frames from {len(np.unique(rooms))} rooms: "
              f"{int(is_minor.sum())} of minors, {int((~is_minor).sum())} of adults. Cells: minors / adults "
              f"(– when none), each \"estimate [low, high]\": a 95 % interval from a bootstrap over rooms."
              + (f"\n\n**Note: {note}.**" if note else "") + _method_notes(results, len(truth), mean_stature_m,
                                                                          stature_note))
    tables = format_tables(results, thresholds_cm, header)
    atomic_write(out_dir / "tables.md", lambda handle: handle.write(tables.encode()))
    _plot(out_dir / "skeletons.png", truth, predictions)
    return summary


def check_requested_config(checkpoint, config, config_name: str | None) -> None:
    """``--config NAME``: accepted when the preset is the checkpoint's configuration, else refused naming the fields.

    The configuration always comes from the checkpoint (the weights fit no other); ``--config`` only
    states what the user expects, as ``network.train --config`` does with ``--init`` / ``--resume``.
    """
    if config_name is None:
        return
    if config_name not in CONFIGS:
        raise EvaluationError(f"--config {config_name}: no such network configuration; choose one of "
                              f"{', '.join(sorted(CONFIGS))}, or leave --config out (the checkpoint's is used)")
    differences = config_differences(get_config(config_name), config)     # 'field: requested != checkpoint's'
    if not differences:
        return
    same_as = config.name in CONFIGS and not config_differences(get_config(config.name), config)
    raise EvaluationError(
        f"--config {config_name}: {checkpoint} was trained with configuration {config.name!r}, which differs "
        f"({config_name} != checkpoint) in {'; '.join(differences)}; network.evaluate takes the configuration "
        f"from the checkpoint, so leave --config out" + (f" (or give --config {config.name})" if same_as else ""))


def _method_notes(results: dict, frames: int, mean_stature_m: float, stature_note: str) -> str:
    notes = []
    if "vision_mean_stature" in results:
        notes.append(f"Population-mean stature prior: {mean_stature_m:.3f} m ({stature_note}).")
    for method, r in results.items():
        if r["frames_scored"] < frames:
            why = " (the others have no co-located pair)" if method == "colocated_only" else ""
            notes.append(f"{METHOD_LABELS.get(method, method)}: {r['frames_scored']} of {frames} frames scored{why}.")
    return "".join(f"\n\n{n}" for n in notes)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m network.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="the trained model (best.pt or last.pt), or 'pretrained': the model shipped in network/pretrained")
    p.add_argument("--config", default=None, choices=sorted(CONFIGS),
                   help="network preset the checkpoint should have (optional: the configuration always comes "
                        "from the checkpoint; a different preset is refused with the differing fields named)")
    p.add_argument("--data", required=True, help="synthetic Zarr store, or real captures folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    p.add_argument("--out", default="results", help="folder for metrics.json, tables.md, skeletons.png")
    p.add_argument("--methods", nargs="+", default=None, choices=list(METHODS),
                   help="methods to compare (default: all that can run)")
    p.add_argument("--audio-checkpoint", default=None, help="audio-only model (trained with --no-vision)")
    p.add_argument("--vision-checkpoint", default=None, help="vision-only model (trained with --no-audio)")
    p.add_argument("--environments", nargs="+", default=None, help="real data: environments to evaluate")
    p.add_argument("--grid-center", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="real data: grid centre, camera frame, m (default: the checkpoint's, else the config's)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--max-frames", type=int, default=None, help="evaluate only the first N frames")
    p.add_argument("--any-pair-count", action="store_true",
                   help="evaluate even on a pair count the model never trained on (e.g. synthetic 16 -> real 4)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    summary = evaluate(args.checkpoint, args.data, split=args.split, out=args.out, methods=args.methods,
                       audio_checkpoint=args.audio_checkpoint, vision_checkpoint=args.vision_checkpoint,
                       environments=args.environments,
                       grid_center=args.grid_center, batch_size=args.batch_size, device=args.device,
                       workers=args.workers, max_frames=args.max_frames, progress=not args.no_progress,
                       any_pair_count=args.any_pair_count, config_name=args.config)
    print((Path(args.out) / "tables.md").read_text())
    print(f"wrote {Path(args.out) / 'metrics.json'}, tables.md, skeletons.png ({summary['frames']} frames)")
    return 0


def main(argv=None) -> int:
    """Command-line entry; returns the exit code (0 done, 2 bad input / missing data, 130 interrupted)."""
    return run_command(one_line_worker_errors(lambda: _main(argv)),
                       interrupted="the evaluation stopped before its results were written; run the same command again")


if __name__ == "__main__":
    sys.exit(main())
