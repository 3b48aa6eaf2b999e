"""The project's 15-joint skeleton and its exchange with the FrankMocap 49-joint order.

Every package speaks this joint set (see ``../shared/DESIGN.md``): ground truth in the Zarr store,
the network's heatmaps, the evaluation tables. The real PoseKernel dataset ships FrankMocap's
49-joint order; :func:`from_frankmocap49` and :func:`to_frankmocap49` convert both ways.
"""
from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "neck", "head",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

# Index of each of our joints in FrankMocap's 49-joint output (the real dataset's gnd.npy order).
FRANKMOCAP49_INDEX: dict[str, int] = {
    "pelvis": 39, "neck": 37, "head": 43,
    "r_shoulder": 33, "r_elbow": 32, "r_wrist": 31,
    "l_shoulder": 34, "l_elbow": 35, "l_wrist": 36,
    "r_hip": 27, "r_knee": 26, "r_ankle": 25,
    "l_hip": 28, "l_knee": 29, "l_ankle": 30,
}
FRANKMOCAP49_INDICES = np.array([FRANKMOCAP49_INDEX[n] for n in JOINT_NAMES], dtype=np.int64)

# Bones drawn in pictures and measured in tests: (parent joint, child joint).
SKELETON_EDGES: tuple[tuple[str, str], ...] = (
    ("pelvis", "neck"), ("neck", "head"),
    ("neck", "r_shoulder"), ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"),
    ("neck", "l_shoulder"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"),
    ("pelvis", "r_hip"), ("r_hip", "r_knee"), ("r_knee", "r_ankle"),
    ("pelvis", "l_hip"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"),
)
SKELETON_EDGE_INDICES = np.array(
    [(JOINT_INDEX[a], JOINT_INDEX[b]) for a, b in SKELETON_EDGES], dtype=np.int64
)

# Groups of the paper's Tables 1 and 2, in their column order.
JOINT_GROUPS: dict[str, tuple[str, ...]] = {
    "Head": ("head",),
    "Neck": ("neck",),
    "Hand": ("r_wrist", "l_wrist"),
    "Elbow": ("r_elbow", "l_elbow"),
    "Shoulder": ("r_shoulder", "l_shoulder"),
    "Hip": ("r_hip", "l_hip"),
    "Knee": ("r_knee", "l_knee"),
    "Foot": ("r_ankle", "l_ankle"),
}

# Left/right twins, for symmetry checks and for a detector's left/right swaps.
LEFT_RIGHT_PAIRS: tuple[tuple[str, str], ...] = (
    ("l_shoulder", "r_shoulder"), ("l_elbow", "r_elbow"), ("l_wrist", "r_wrist"),
    ("l_hip", "r_hip"), ("l_knee", "r_knee"), ("l_ankle", "r_ankle"),
)
FLIP_PERMUTATION = np.arange(NUM_JOINTS)
for _l, _r in LEFT_RIGHT_PAIRS:
    FLIP_PERMUTATION[JOINT_INDEX[_l]], FLIP_PERMUTATION[JOINT_INDEX[_r]] = JOINT_INDEX[_r], JOINT_INDEX[_l]


def from_frankmocap49(joints49: np.ndarray) -> np.ndarray:
    """Select our 15 joints from FrankMocap's 49.

    Args:
        joints49: (..., 49, D) joints in FrankMocap's order.
    Returns:
        (..., 15, D) joints in :data:`JOINT_NAMES` order.
    """
    joints49 = np.asarray(joints49)
    if joints49.ndim < 2 or joints49.shape[-2] != 49:
        raise ValueError(
            f"joints49 must have shape (..., 49, D) in FrankMocap's order, got {joints49.shape}"
        )
    return joints49[..., FRANKMOCAP49_INDICES, :]


def to_frankmocap49(joints15: np.ndarray, fill_value: float = np.nan) -> np.ndarray:
    """Scatter our 15 joints into FrankMocap's 49 slots; the other 34 get ``fill_value``.

    Args:
        joints15: (..., 15, D) joints in :data:`JOINT_NAMES` order.
    Returns:
        (..., 49, D) array.
    """
    joints15 = np.asarray(joints15)
    if joints15.ndim < 2 or joints15.shape[-2] != NUM_JOINTS:
        raise ValueError(f"joints15 must have shape (..., 15, D), got {joints15.shape}")
    out = np.full(joints15.shape[:-2] + (49, joints15.shape[-1]), fill_value, dtype=np.result_type(joints15, float))
    out[..., FRANKMOCAP49_INDICES, :] = joints15
    return out


def bone_lengths(joints: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """Length (m) of every skeleton edge. joints: (..., 15, 3)."""
    joints = np.asarray(joints)
    return {
        (a, b): np.linalg.norm(joints[..., JOINT_INDEX[b], :] - joints[..., JOINT_INDEX[a], :], axis=-1)
        for a, b in SKELETON_EDGES
    }
