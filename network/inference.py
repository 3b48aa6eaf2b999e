"""Running a trained PoseKernelLifter: the device, bf16 autocast, :func:`predict`, and the evaluation methods.

:func:`run_methods` is the one runner of the methods that ``network.evaluate`` and
``experiments.paper_tables`` compare on the same frames (:data:`METHODS`): the model with every pair,
with half the pairs or co-located pairs only (:func:`mask_half_pairs`, :func:`mask_colocated_only`),
an audio-only model, and the vision-only average-height baseline. Public names: ``__all__``.
"""
from __future__ import annotations

import os
from contextlib import nullcontext

import numpy as np
import torch

from core.errors import InputError
from network.baselines import lift_average_height
from network.commands import UsageError
from network.data import batch_to_device, model_inputs
from network.heatmaps import gaussian_targets, heatmap_loss, soft_argmax_joints

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "EvaluationError",
    "autocast",
    "collect_reference",
    "mask_colocated_only",
    "mask_half_pairs",
    "predict",
    "resolve_device",
    "run_methods",
]

METHODS = ("ours", "vision_avg_height", "audio_only", "vision_half_pairs", "colocated_only")
METHOD_LABELS = {
    "ours": "Ours (Vis.+Audio, all pairs)",
    "vision_avg_height": "Vis.: average height 1.7 m",
    "audio_only": "Audio only",
    "vision_half_pairs": "Vis.+Audio, half the pairs",
    "colocated_only": "Vis.+Audio, co-located pairs only",
}


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
    from tqdm import tqdm

    module = model.module if hasattr(model, "module") else model
    cfg = module.config
    model.eval()
    out = {k: [] for k in ("pred", "truth", "is_minor", "keypoints2d", "intrinsics", "index", "room_id")}
    losses = []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        if transform is not None:
            batch = transform(batch)
        batch = batch_to_device(batch, device)
        with autocast(device, amp):
            heatmaps = model(model_inputs(batch))
        heatmaps = [h.float() for h in heatmaps]
        joints = batch["joints3d"]
        if torch.isfinite(joints).all():
            targets, mask = gaussian_targets(joints, batch["grid_to_camera"], cfg.grid_shape, cfg.voxel_size_m,
                                             cfg.target_sigma_voxels, return_mask=True)
            losses.append(float(heatmap_loss(heatmaps, targets, mask)))
        pred = soft_argmax_joints(heatmaps[-1], batch["grid_to_camera"], cfg.voxel_size_m)
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


def mask_colocated_only(batch: dict) -> dict:
    """Keep the pairs whose speaker index equals the microphone index; a frame with none keeps all."""
    batch = dict(batch)
    mask = batch["pair_mask"]
    same = mask & (batch["pair_index"][..., 0] == batch["pair_index"][..., 1])
    empty = same.sum(1) == 0
    batch["pair_mask"] = torch.where(empty[:, None], mask, same)
    return batch


def collect_reference(loader) -> dict:
    """The frames' ``truth`` (N, 15, 3) m (float64), ``is_minor``, ``keypoints2d``, ``intrinsics`` and ``index``,
    read without a model."""
    out = {k: [] for k in ("truth", "is_minor", "keypoints2d", "intrinsics", "index")}
    for batch in loader:
        out["truth"].append(batch["joints3d"].double().numpy())
        for key in ("is_minor", "keypoints2d", "intrinsics", "index"):
            out[key].append(batch[key].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


# The ablations of the model: each edits a batch before the forward pass.
_PAIR_MASKS = {"ours": None, "vision_half_pairs": mask_half_pairs, "colocated_only": mask_colocated_only}


def run_methods(methods, reference: dict, make_loader, device, amp: bool, model=None, frames=None,
                audio_model=None, audio_frames=None, stature_prior_m: float = 1.7,
                progress: bool = False) -> dict[str, np.ndarray]:
    """Each method's predictions on the same frames: {method: (N, 15, 3) float64, camera frame, m}.

    Args:
        methods: names of :data:`METHODS`.
        reference: :func:`collect_reference` of ``frames`` (the baseline lifts its keypoints).
        make_loader: dataset -> DataLoader over it, in order (no shuffling).
        model, frames: the checkpoint's model and its frames ("ours" and the pair masks).
        audio_model, audio_frames: an audio-only model and the same frames built for its config ("audio_only").
        stature_prior_m: the vision-only baseline's assumed stature.
    """
    predictions = {}
    for method in methods:
        if method in _PAIR_MASKS:
            r = predict(model, make_loader(frames), device, amp, transform=_PAIR_MASKS[method], progress=progress,
                        desc=method)
        elif method == "audio_only":
            r = predict(audio_model, make_loader(audio_frames), device, amp, progress=progress, desc=method)
        elif method == "vision_avg_height":
            r = {"pred": lift_average_height(torch.as_tensor(reference["keypoints2d"]),
                                             torch.as_tensor(reference["intrinsics"]),
                                             stature_prior_m=stature_prior_m).double().numpy()}
        else:
            raise EvaluationError(f"method {method!r}: choose from {list(METHODS)}")
        predictions[method] = np.asarray(r["pred"], dtype=float)
    return predictions
