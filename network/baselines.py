"""Baselines without a trained network: vision-only stature priors and the geometric audio-visual arg-max.

Vision only: lift 2D keypoints to metric 3D by assuming an average stature (1.7 m, or the population's
mean stature: :func:`population_mean_stature`). The geometric baseline (:func:`geometric_baseline`) is
described at its definition.

The paper compares against monocular lifters (LfD, FrankMocap) that reconstruct a pose only up
to scale and brings them to metric scale "by using the average human height in our dataset
(1.7 m)" (section 5). :func:`lift_average_height` is that scale assumption with the simplest
possible lifter, so that its metric error isolates the one thing sound adds: scale/depth.

Method (deterministic, no learning):

1. Back-project each keypoint to its viewing ray: r_j = K^-1 (u_j, v_j, 1) (a point at depth 1).
2. Measure the body's length in the image, on the rays at depth 1: the sum of the lengths of the
   chain head-neck, neck-pelvis, hip-knee, knee-ankle, each leg segment the longer of left and
   right (foreshortening only shortens a segment). Segments whose two keypoints have
   confidence < ``min_confidence`` are left out.
3. The canonical body (:data:`CANONICAL_SKELETON_FRACTIONS`, standing, proportions of a 1.0-tall
   body from common anthropometric tables: neck 0.85, head joint 0.92, pelvis 0.53, hips 0.50,
   knees 0.285, ankles 0.04 of stature) gives the same chain as a fraction rho of stature for
   the segments measured. With stature H the chain is rho H metres long, so under a pinhole
   camera the body is at depth z = rho H / L where L is the measured length at depth 1.
4. Every joint is placed on its ray at that depth: X_j = z r_j (relative depths 0: a flat,
   camera-facing body; the depth spread of a real pose is part of the baseline's error).

A person of stature H_true photographed at depth d is therefore placed at d * 1.7 / H_true: a
1.45 m child is placed 17 % too far and every joint is scaled by the same factor about the camera.
Frames where no segment is visible get NaN joints.
"""
from __future__ import annotations

import numpy as np
import torch

from bodies.joints import JOINT_INDEX, JOINT_NAMES
from core.checks import check_number
from core.errors import InputError
from pipeline.grid import voxel_centers_camera
from pipeline.spatial_encoding import kernel_envelope, spatial_encoding
from pipeline.visual_encoding import keypoint_heatmaps, visual_encoding

AVERAGE_STATURE_M = 1.7

# Canonical standing body facing the camera, stature 1 (sole to crown), camera-frame axes
# (x right in the image, y down, z away from the camera): columns (x, y, z) with y = -height.
# The person's right side is on the image's left.
_HEIGHT = {"head": 0.92, "neck": 0.85, "r_shoulder": 0.81, "r_elbow": 0.63, "r_wrist": 0.485,
           "pelvis": 0.53, "r_hip": 0.50, "r_knee": 0.285, "r_ankle": 0.04}
_LATERAL = {"head": 0.0, "neck": 0.0, "r_shoulder": 0.11, "r_elbow": 0.125, "r_wrist": 0.125,
            "pelvis": 0.0, "r_hip": 0.055, "r_knee": 0.055, "r_ankle": 0.055}


def _canonical() -> np.ndarray:
    out = np.zeros((len(JOINT_NAMES), 3))
    for i, name in enumerate(JOINT_NAMES):
        key = "r_" + name[2:] if name.startswith("l_") else name
        side = -1.0 if name.startswith("r_") else (1.0 if name.startswith("l_") else 0.0)
        out[i] = (side * _LATERAL[key], -_HEIGHT[key], 0.0)
    return out


CANONICAL_SKELETON_FRACTIONS = _canonical()
"""(15, 3) canonical joints of a body of stature 1, facing the camera, feet at y = 0 (y down)."""

# The chain measured in the image: (segment, alternatives). Each entry lists (a, b) joint pairs whose
# longest visible length counts for the segment.
MEASURED_SEGMENTS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("head", "neck"),),
    (("neck", "pelvis"),),
    (("r_hip", "r_knee"), ("l_hip", "l_knee")),
    (("r_knee", "r_ankle"), ("l_knee", "l_ankle")),
)


def _segment_fractions() -> np.ndarray:
    c = CANONICAL_SKELETON_FRACTIONS
    return np.array([max(np.linalg.norm(c[JOINT_INDEX[a]] - c[JOINT_INDEX[b]]) for a, b in seg)
                     for seg in MEASURED_SEGMENTS])


SEGMENT_FRACTIONS = _segment_fractions()
"""Length of each measured segment as a fraction of stature (0.07, 0.32, 0.215, 0.245: sum 0.85)."""


def canonical_skeleton(stature_m: float = AVERAGE_STATURE_M) -> np.ndarray:
    """(15, 3) the canonical standing body scaled to ``stature_m``, feet at the origin, y down."""
    return CANONICAL_SKELETON_FRACTIONS * float(stature_m)


def lift_average_height(keypoints2d: torch.Tensor, intrinsics: torch.Tensor,
                        stature_prior_m: float = AVERAGE_STATURE_M, min_confidence: float = 0.1) -> torch.Tensor:
    """Metric 3D joints from 2D keypoints, assuming the person is ``stature_prior_m`` tall.

    Args:
        keypoints2d: (B, 15, 3) (u, v, confidence) in pixels, joint order ``JOINT_NAMES``.
        intrinsics: (B, 3, 3) camera matrices.
        stature_prior_m: assumed stature (1.7 m, the paper's average height).
        min_confidence: keypoints below this confidence are not measured. Missed keypoints
            ((0, 0) or NaN) are placed on the mean ray of the visible joints at the body's depth.
    Returns:
        (B, 15, 3) joints in the camera frame, metres (NaN for frames with no measurable segment).
    """
    if keypoints2d.ndim != 3 or tuple(keypoints2d.shape[1:]) != (len(JOINT_NAMES), 3):
        raise InputError(f"keypoints2d must be (B, 15, 3), got {tuple(keypoints2d.shape)}; give one row per joint")
    if tuple(intrinsics.shape) != (keypoints2d.shape[0], 3, 3):
        raise InputError(f"intrinsics must be (B, 3, 3) with B = {keypoints2d.shape[0]}, got {tuple(intrinsics.shape)}; "
                         f"give one camera matrix per frame")
    stature_prior_m = check_number("stature_prior_m", stature_prior_m, 0, low_open=True)   # InputError (a ValueError)
    min_confidence = check_number("min_confidence", min_confidence, 0, 1)
    dtype = torch.float64
    kp = keypoints2d.to(dtype)
    homogeneous = torch.cat([kp[..., :2], torch.ones_like(kp[..., :1])], -1)
    rays = torch.linalg.solve(intrinsics.to(dtype), homogeneous.transpose(1, 2)).transpose(1, 2)  # (B, J, 3)
    rays = rays / rays[..., 2:3]
    visible = torch.nan_to_num(kp[..., 2], nan=0.0) >= min_confidence
    measured = torch.zeros(kp.shape[0], dtype=dtype, device=kp.device)
    expected = torch.zeros_like(measured)
    for fraction, segment in zip(SEGMENT_FRACTIONS, MEASURED_SEGMENTS):
        best = torch.full_like(measured, -1.0)
        for a, b in segment:
            ia, ib = JOINT_INDEX[a], JOINT_INDEX[b]
            length = torch.linalg.vector_norm(rays[:, ia, :2] - rays[:, ib, :2], dim=-1)
            ok = visible[:, ia] & visible[:, ib] & torch.isfinite(length)
            best = torch.where(ok, torch.maximum(best, torch.nan_to_num(length, nan=-1.0)), best)
        seen = best >= 0
        measured = measured + torch.where(seen, best, torch.zeros_like(best))
        expected = expected + seen.to(dtype) * float(fraction)
    depth = expected * float(stature_prior_m) / measured
    depth = torch.where((expected > 0) & (measured > 0), depth, torch.full_like(depth, float("nan")))
    # A joint the detector missed (stored as pixel (0, 0), or NaN) has no image position: put it on
    # the mean ray of the joints it did see (the body's centre), at the body's depth. A
    # low-confidence joint with a position keeps its own ray.
    weights = visible.to(dtype)[..., None]
    centre_ray = (rays.nan_to_num(0.0) * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1.0)
    missed = ((kp[..., 0] == 0) & (kp[..., 1] == 0)) | ~torch.isfinite(kp[..., :2]).all(-1)
    rays = torch.where(missed[..., None], centre_ray.expand_as(rays), rays)
    joints = rays * depth[:, None, None]
    return joints.to(keypoints2d.dtype if keypoints2d.is_floating_point() else torch.float32)


class AverageHeightLifter:
    """Callable wrapper of :func:`lift_average_height` with a fixed stature prior (the paper's
    "Vis." baselines' metric scaling); ``lifter(batch)`` reads ``keypoints2d`` and ``intrinsics``."""

    def __init__(self, stature_prior_m: float = AVERAGE_STATURE_M, min_confidence: float = 0.1):
        self.stature_prior_m = check_number("stature_prior_m", stature_prior_m, 0, low_open=True)
        self.min_confidence = check_number("min_confidence", min_confidence, 0, 1)

    def lift(self, keypoints2d: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        return lift_average_height(keypoints2d, intrinsics, self.stature_prior_m, self.min_confidence)

    def __call__(self, batch: dict) -> torch.Tensor:
        return self.lift(batch["keypoints2d"], batch["intrinsics"])


# ---------------------------------------------------------------------------------------------------------
# The population-mean stature prior
def population_mean_stature(data, split: str = "train") -> tuple[float, str]:
    """The mean stature of the population a vision-only lifter would be calibrated on; (metres, note).

    For a synthetic store: the mean of its ``height`` array over ``split`` (the training rooms, so that
    nothing of the test frames leaks into the prior; adults and minors mixed as the generator mixes
    them). For anything else (real captures, whose statures are unknown): the paper's 1.7 m, with a
    note saying so.
    """
    from network.data import is_zarr_store

    if data is None or not is_zarr_store(data):
        return AVERAGE_STATURE_M, (f"{data}: not a synthetic store, so no population to average: the population-mean "
                                   f"prior falls back to {AVERAGE_STATURE_M} m")
    from pipeline.store_dataset import SyntheticStoreDataset

    heights = np.asarray(SyntheticStoreDataset(str(data), split=split).values("height"), dtype=float)
    heights = heights[np.isfinite(heights) & (heights > 0)]
    if heights.size == 0:
        return AVERAGE_STATURE_M, (f"{data}: no frames with a stature in split {split!r}: the population-mean "
                                   f"prior falls back to {AVERAGE_STATURE_M} m")
    return float(heights.mean()), f"mean stature of the {heights.size} {split} frames of {data}"


# ---------------------------------------------------------------------------------------------------------
# The geometric (no-learning) baseline
def geometric_volumes(batch: dict, config, log_floor: float = 1e-3) -> torch.Tensor:
    """(B, 15, X, Y, Z) visual encoding times the geometric mean over the present pairs of the audio encodings.

    The audio encodings are eq. 5-7 on the config's grid, read from the plain envelopes: a max-pool
    widening (``pipeline.spatial_encoding.antialiased_envelope``) guarantees the peak at the nearest
    voxel but turns each shell into a plateau a few voxels thick in range, on which an arg-max is
    ambiguous (on ``network.model.synthetic_batch`` frames it moved joints by up to 3 voxels); a pulse
    narrower than a voxel can fall between voxel centres instead, which is part of this baseline's
    error. The geometric mean is exp(mean over pairs of log(floor + e / max e)): large only where every
    pair hears a reflector, the intersection of the shells. A frame with no pair present keeps the
    visual encoding alone.
    """
    speakers, mics = batch["speaker_pos"].float(), batch["mic_pos"].float()
    index = batch["pair_index"].long().clamp(min=0)
    speaker = torch.gather(speakers, 1, index[..., 0].clamp(max=speakers.shape[1] - 1)[..., None].expand(-1, -1, 3))
    mic = torch.gather(mics, 1, index[..., 1].clamp(max=mics.shape[1] - 1)[..., None].expand(-1, -1, 3))
    centers = voxel_centers_camera(batch["grid_to_camera"].float(), config.grid_shape, config.voxel_size_m)
    speed = batch["speed_of_sound"].float()
    envelopes = kernel_envelope(batch["kernels"][..., :config.kernel_samples].float())
    audio = spatial_encoding(envelopes, speaker, mic, centers, speed, config.sample_rate_hz)   # (B, P, X, Y, Z)
    peak = audio.flatten(2).amax(-1).clamp(min=1e-12)[..., None, None, None]
    mask = batch.get("pair_mask")
    mask = torch.ones(audio.shape[:2], dtype=torch.bool) if mask is None else mask.bool()
    weight = mask.to(audio.dtype)[..., None, None, None]
    count = weight.sum(1)
    log_mean = (torch.log(log_floor + audio / peak) * weight).sum(1) / count.clamp(min=1.0)
    geometric = torch.where(count > 0, torch.exp(log_mean), torch.ones_like(log_mean))       # (B, X, Y, Z)
    heatmaps = keypoint_heatmaps(batch["keypoints2d"].float(), config.image_size_px, config.keypoint_sigma_px,
                                 config.heatmap_stride)
    visual = visual_encoding(heatmaps, batch["intrinsics"].float(), centers, config.image_size_px,
                             config.heatmap_stride)                                            # (B, 15, X, Y, Z)
    return visual * geometric[:, None]


@torch.no_grad()
def geometric_baseline(batch: dict, config) -> torch.Tensor:
    """(B, 15, 3) camera-frame joints (m): per joint, the centre of the voxel where
    :func:`geometric_volumes` is largest. No learning, no checkpoint: only the grid config (``grid_shape``,
    ``voxel_size_m``, ``kernel_samples``, ``sample_rate_hz``, ``image_size_px``, ``keypoint_sigma_px``,
    ``heatmap_stride``). Its resolution is the voxel: a perfect frame lands within half a voxel diagonal."""
    volumes = geometric_volumes(batch, config)
    b, j = volumes.shape[:2]
    best = volumes.reshape(b, j, -1).argmax(-1)                                                # (B, 15)
    centers = voxel_centers_camera(batch["grid_to_camera"].float(), config.grid_shape, config.voxel_size_m)
    flat = centers.reshape(b, -1, 3)
    return torch.gather(flat, 1, best[..., None].expand(-1, -1, 3))
