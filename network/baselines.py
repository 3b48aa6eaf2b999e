"""Vision-only baseline: lift 2D keypoints to metric 3D by assuming an average stature of 1.7 m.

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
