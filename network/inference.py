"""Running a trained PoseKernelLifter: the device, bf16 autocast, :func:`predict`, and the evaluation methods.

:func:`run_methods` is the one runner of the methods that ``network.evaluate`` and
``experiments.paper_tables`` compare on the same frames (:data:`METHODS`): the model with every pair,
with half the pairs or co-located pairs only (:func:`mask_half_pairs`, :func:`mask_colocated_only`),
an audio-only model, a learned vision-only model, the no-learning geometric baseline and the
vision-only stature priors (1.7 m and the population's mean). Public names: ``__all__``.
"""
from __future__ import annotations

import os
from contextlib import nullcontext

import numpy as np
import torch

from core.errors import InputError
from network.baselines import geometric_baseline, lift_average_height
from network.commands import UsageError
from network.data import COLOCATED_DISTANCE_M, batch_to_device, colocated_pair_mask, model_inputs
from network.lifters import predicted_joints, training_loss

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "COLOCATED_DISTANCE_M",
    "EvaluationError",
    "autocast",
    "collect_reference",
    "colocated_pairs",
    "mask_colocated_only",
    "mask_half_pairs",
    "predict",
    "resolve_device",
    "run_methods",
]

METHODS = ("ours", "vision_avg_height", "vision_mean_stature", "vision_learned", "geometric", "audio_only",
           "vision_half_pairs", "colocated_only")
METHOD_LABELS = {
    "ours": "Ours (Vis.+Audio, all pairs)",
    "vision_avg_height": "Vis.: average height 1.7 m",
    "vision_mean_stature": "Vis.: population-mean stature",
    "vision_learned": "Vis.: learned, no audio",
    "geometric": "Geometric (no learning)",
    "audio_only": "Audio only",
    "vision_half_pairs": "Vis.+Audio, half the pairs",
    "colocated_only": "Vis.+Audio, co-located pairs only",
}
# A pair counts as co-located when its microphone is within this distance of its speaker: the co-located
# rigs here put the microphone 2 cm above its speaker; separated rigs keep them metres apart.


class EvaluationError(InputError):
    """Bad arguments or data for an evaluation (exit code 2)."""


# ---------------------------------------------------------------------------------------------------------
# Device
def resolve_device(name: str = "auto") -> torch.device:
    """'auto': the (local-rank) GPU when available, else the CPU; 'cuda' fails clearly without one."""
    if name not in ("auto", "cpu", "cuda") and not name.startswith("cuda:"):
        raise UsageError(f"--device {name!r}: choose auto, cpu or cuda")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if name == "auto":
            return torch.device("cpu")
        raise UsageError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    if name.startswith("cuda:"):
        return torch.device(name)
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on a GPU when ``amp``; nothing otherwise (the encodings stay float32 inside the model)."""
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if (amp and device.type == "cuda") else nullcontext()


# ---------------------------------------------------------------------------------------------------------
# Inference
@torch.no_grad()
def predict(model, loader, device, amp: bool = True, transform=None, progress: bool = False, desc: str = "predict"):
    """Decode every frame of ``loader``: dict of numpy arrays ``pred`` (N, 15, 3) m, ``truth``, ``is_minor``,
    ``keypoints2d``, ``intrinsics``, ``index``, ``room_id``, and ``loss`` (mean heatmap loss per batch).

    ``transform(batch) -> batch`` edits a batch first (e.g. masks pairs for an ablation).
    """
    from core.progress import progress as show_progress

    module = model.module if hasattr(model, "module") else model
    cfg = module.config
    model.eval()
    out = {k: [] for k in ("pred", "truth", "is_minor", "keypoints2d", "intrinsics", "index", "room_id")}
    losses = []
    for batch in show_progress(loader, desc=desc, enabled=progress, leave=False):
        if transform is not None:
            batch = transform(batch)
        batch = batch_to_device(batch, device)
        with autocast(device, amp):
            output = model(model_inputs(batch))
        joints = batch["joints3d"]
        if torch.isfinite(joints).all():
            losses.append(float(training_loss(cfg, output, batch)))
        pred = predicted_joints(cfg, output, batch)
        out["pred"].append(pred.cpu().double().numpy())
        out["truth"].append(joints.cpu().double().numpy())
        for key in ("is_minor", "keypoints2d", "intrinsics", "index", "room_id"):
            out[key].append(batch[key].cpu().numpy())
    result = {k: (np.concatenate(v) if v else np.zeros((0,))) for k, v in out.items()}
    result["loss"] = float(np.mean(losses)) if losses else float("nan")
    return result


# ---------------------------------------------------------------------------------------------------------
# Evaluation methods
def mask_half_pairs(batch: dict) -> dict:
    """Keep the first ceil(P_f / 2) pairs of each frame (P_f its real pairs)."""
    batch = dict(batch)
    mask = batch["pair_mask"].clone()
    counts = mask.sum(1)
    keep = (counts + 1) // 2
    position = torch.cumsum(mask.long(), 1)
    batch["pair_mask"] = mask & (position <= keep[:, None])
    return batch


def colocated_pairs(batch: dict, max_distance_m: float = COLOCATED_DISTANCE_M) -> torch.Tensor:
    """(B, P) bool: the real pairs (``pair_mask``) that are co-located (:func:`network.data.colocated_pair_mask`)."""
    near = colocated_pair_mask(batch["pair_index"], batch["speaker_pos"], batch["mic_pos"], max_distance_m)
    return batch["pair_mask"].bool() & near


def mask_colocated_only(batch: dict) -> dict:
    """Keep only the co-located pairs (:func:`colocated_pairs`). A frame with none keeps none (no audio):
    the method does not apply to it, and :func:`run_methods` reports NaN joints for it rather than
    silently scoring it with every pair."""
    batch = dict(batch)
    batch["pair_mask"] = colocated_pairs(batch)
    return batch


def collect_reference(loader) -> dict:
    """The frames' ``truth`` (N, 15, 3) m (float64), ``is_minor``, ``keypoints2d``, ``intrinsics``, ``index``,
    ``room_id`` (the bootstrap's unit) and ``colocated`` (each frame's count of co-located pairs), read
    without a model."""
    keys = ("is_minor", "keypoints2d", "intrinsics", "index", "room_id")
    out = {k: [] for k in ("truth", "colocated") + keys}
    for batch in loader:
        out["truth"].append(batch["joints3d"].double().numpy())
        out["colocated"].append(colocated_pairs(batch).sum(1).numpy())
        for key in keys:
            out[key].append(batch[key].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


# The ablations of the model: each edits a batch before the forward pass.
_PAIR_MASKS = {"ours": None, "vision_half_pairs": mask_half_pairs, "colocated_only": mask_colocated_only}


def _geometric(make_loader, frames, config) -> np.ndarray:
    out = [geometric_baseline(batch, config).double().numpy() for batch in make_loader(frames)]
    return np.concatenate(out) if out else np.zeros((0, 15, 3))


def _needs(method: str, **given) -> None:
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise EvaluationError(f"method {method!r} needs {missing}; give them to run_methods")


def run_methods(methods, reference: dict, make_loader, device, amp: bool, model=None, frames=None,
                audio_model=None, audio_frames=None, stature_prior_m: float = 1.7,
                progress: bool = False, vision_model=None, vision_frames=None, mean_stature_m: float | None = None,
                config=None) -> dict[str, np.ndarray]:
    """Each method's predictions on the same frames: {method: (N, 15, 3) float64, camera frame, m}.

    Args:
        methods: names of :data:`METHODS`.
        reference: :func:`collect_reference` of ``frames`` (the baselines lift its keypoints; ``colocated``
            says which frames ``colocated_only`` applies to).
        make_loader: dataset -> DataLoader over it, in order (no shuffling).
        model, frames: the checkpoint's model and its frames ("ours" and the pair masks).
        audio_model, audio_frames: an audio-only model and the same frames built for its config ("audio_only").
        vision_model, vision_frames: a vision-only model (``--no-audio``) and the same frames for its config.
        stature_prior_m: the 1.7 m baseline's assumed stature; mean_stature_m: the population-mean prior's
            (:func:`network.baselines.population_mean_stature`).
        config: the grid of the geometric baseline (default: ``model``'s config).
    ``colocated_only`` gives NaN joints for frames without a co-located pair: it does not apply there.
    """
    predictions = {}
    for method in methods:
        if method in _PAIR_MASKS:
            _needs(method, model=model, frames=frames)
            pred = predict(model, make_loader(frames), device, amp, transform=_PAIR_MASKS[method], progress=progress,
                           desc=method)["pred"]
            if method == "colocated_only":
                pred = np.where(np.asarray(reference["colocated"])[:, None, None] > 0, pred, np.nan)
        elif method in ("audio_only", "vision_learned"):
            net, data = (audio_model, audio_frames) if method == "audio_only" else (vision_model, vision_frames)
            _needs(method, model=net, frames=data)
            pred = predict(net, make_loader(data), device, amp, progress=progress, desc=method)["pred"]
        elif method in ("vision_avg_height", "vision_mean_stature"):
            prior = stature_prior_m if method == "vision_avg_height" else mean_stature_m
            _needs(method, mean_stature_m=prior)
            pred = lift_average_height(torch.as_tensor(reference["keypoints2d"]), torch.as_tensor(reference["intrinsics"]),
                                       stature_prior_m=prior).double().numpy()
        elif method == "geometric":
            grid = config if config is not None else getattr(getattr(model, "module", model), "config", None)
            _needs(method, config=grid, frames=frames)
            pred = _geometric(make_loader, frames, grid)
        else:
            raise EvaluationError(f"method {method!r}: choose from {list(METHODS)}")
        predictions[method] = np.asarray(pred, dtype=float)
    return predictions
