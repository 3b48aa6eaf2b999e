"""Poses from motion files: AMASS-style SMPL parameters drive any body model.

AMASS (https://amass.is.tue.mpg.de) ships ``.npz`` files with ``poses`` (N, 72 for SMPL or
N, 156 for SMPL-H/X: root orientation then the body joints, axis-angle), ``trans`` (N, 3) and
``mocap_framerate``, in a z-up world. :func:`load_amass` reads one; :func:`smpl_segment_rotations`
turns a frame into this package's model-independent segment rotations. Because the rotations
are matched to each model's rest pose (Anny's A-pose as well as SMPL's T-pose), a user's motion
capture poses Anny too, not only SMPL.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from bodies.errors import BodyInputError
from bodies.model import SEGMENT_INDEX, SEGMENTS, RestSkeleton
from bodies.rotations import swing

SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19])
# SMPL joint whose global rotation moves each segment.
_SEGMENT_SMPL_JOINT = {
    "root": 0, "torso": 9, "neck": 15,
    "l_upperarm": 16, "l_forearm": 18, "r_upperarm": 17, "r_forearm": 19,
    "l_thigh": 1, "l_shin": 4, "l_foot": 7, "r_thigh": 2, "r_shin": 5, "r_foot": 8,
}
# Direction of each segment in SMPL's T-pose, body frame (z up, facing -y, left at +x).
_TPOSE_DIRECTION = {
    "torso": (0, 0, 1), "neck": (0, 0, 1),
    "l_upperarm": (1, 0, 0), "l_forearm": (1, 0, 0), "r_upperarm": (-1, 0, 0), "r_forearm": (-1, 0, 0),
    "l_thigh": (0, 0, -1), "l_shin": (0, 0, -1), "r_thigh": (0, 0, -1), "r_shin": (0, 0, -1),
    "l_foot": (0, -0.9, -0.43), "r_foot": (0, -0.9, -0.43),
}
# The rest-skeleton landmarks spanning each segment.
_SEGMENT_ENDS = {
    "torso": ("pelvis", "neck"), "neck": ("neck", "head"),
    "l_upperarm": ("l_shoulder", "l_elbow"), "l_forearm": ("l_elbow", "l_wrist"),
    "r_upperarm": ("r_shoulder", "r_elbow"), "r_forearm": ("r_elbow", "r_wrist"),
    "l_thigh": ("l_hip", "l_knee"), "l_shin": ("l_knee", "l_ankle"), "l_foot": ("l_ankle", "l_toe"),
    "r_thigh": ("r_hip", "r_knee"), "r_shin": ("r_knee", "r_ankle"), "r_foot": ("r_ankle", "r_toe"),
}
SMPL_TO_BODY = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class MotionClip:
    """Attributes: poses (N, 22, 3) axis-angle of SMPL's body joints incl. the root; trans (N, 3)
    metres; framerate_hz; source path."""

    poses: np.ndarray
    trans: np.ndarray
    framerate_hz: float
    source: str

    def __len__(self) -> int:
        return len(self.poses)


def load_amass(path: str | Path) -> MotionClip:
    """Read an AMASS-style ``.npz`` (``poses`` with 72 or more columns, ``trans``)."""
    path = Path(path)
    if not path.is_file():
        raise BodyInputError(f"motion file {path} does not exist; pass an AMASS-style .npz")
    with np.load(path, allow_pickle=False) as data:
        if "poses" not in data:
            raise BodyInputError(f"{path}: no 'poses' array; an AMASS file has poses (N, 72+) and trans (N, 3)")
        poses = np.asarray(data["poses"], float)
        if poses.ndim != 2 or poses.shape[1] < 66:
            raise BodyInputError(f"{path}: 'poses' has shape {poses.shape}; expected (N, 72) or (N, 156)")
        trans = np.asarray(data["trans"], float) if "trans" in data else np.zeros((len(poses), 3))
        rate = float(data["mocap_framerate"]) if "mocap_framerate" in data else 30.0
    if not np.isfinite(poses).all():
        raise BodyInputError(f"{path}: 'poses' holds NaN or infinite values")
    return MotionClip(poses[:, :66].reshape(-1, 22, 3), trans, rate, str(path))


def smpl_segment_rotations(poses: np.ndarray, rest: RestSkeleton, world_z_up: bool = True) -> np.ndarray:
    """Segment rotations (B, S, 3, 3) that put each body model's segments where SMPL puts them.

    Args:
        poses: (B, 22, 3) SMPL axis-angle (root first).
        rest: the target model's rest skeleton for the same B bodies (or one, broadcast).
        world_z_up: True for AMASS, whose root orientation maps SMPL's y-up body into a z-up
            world; False when the root orientation is relative to SMPL's own y-up frame.
    """
    poses = np.asarray(poses, float)
    batch = poses.shape[0]
    local = Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(batch, 22, 3, 3)
    glob = np.zeros_like(local)
    for j, parent in enumerate(SMPL_PARENTS):
        glob[:, j] = local[:, j] if parent < 0 else glob[:, parent] @ local[:, j]
    # Global rotations acting on body-frame vectors.
    left = np.eye(3) if world_z_up else SMPL_TO_BODY
    glob = left @ glob @ SMPL_TO_BODY.T
    landmarks = rest.landmarks if rest.landmarks.shape[0] == batch else np.repeat(rest.landmarks, batch, 0)
    skeleton = RestSkeleton(landmarks, rest.elbow_hinge)
    out = np.zeros((batch, len(SEGMENTS), 3, 3))
    for segment in SEGMENTS:
        g = glob[:, _SEGMENT_SMPL_JOINT[segment]]
        if segment == "root":
            out[:, SEGMENT_INDEX[segment]] = g
            continue
        a, b = _SEGMENT_ENDS[segment]
        rest_dir = skeleton[b] - skeleton[a]
        tpose = np.broadcast_to(np.asarray(_TPOSE_DIRECTION[segment], float), rest_dir.shape)
        out[:, SEGMENT_INDEX[segment]] = g @ swing(rest_dir, tpose)
    return out
