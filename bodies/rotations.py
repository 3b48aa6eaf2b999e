"""Small batched rotation helpers (numpy, (B, 3, 3) matrices)."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def axis_angle(axis: np.ndarray, angle_rad: np.ndarray) -> np.ndarray:
    """Rotation by ``angle_rad`` (B,) about unit ``axis`` (B, 3) or (3,). Returns (B, 3, 3)."""
    angle_rad = np.atleast_1d(np.asarray(angle_rad, float))
    axis = np.broadcast_to(np.asarray(axis, float), angle_rad.shape + (3,))
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    return Rotation.from_rotvec(axis * angle_rad[:, None]).as_matrix()


def rot_x(angle_rad):
    return axis_angle(np.array([1.0, 0.0, 0.0]), angle_rad)


def rot_y(angle_rad):
    return axis_angle(np.array([0.0, 1.0, 0.0]), angle_rad)


def rot_z(angle_rad):
    return axis_angle(np.array([0.0, 0.0, 1.0]), angle_rad)


def swing(from_dir: np.ndarray, to_dir: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction ``from_dir`` to ``to_dir``, both (B, 3). Returns (B, 3, 3)."""
    a = from_dir / np.linalg.norm(from_dir, axis=-1, keepdims=True)
    b = to_dir / np.linalg.norm(to_dir, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.einsum("bi,bi->b", a, b)
    angle = np.arctan2(sin, cos)
    # Opposite directions: any axis perpendicular to a serves.
    fallback = np.cross(a, np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]))
    axis = np.where(sin[:, None] > 1e-9, axis, fallback)
    return axis_angle(axis, angle)


def signed_angle(u: np.ndarray, v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle from u to v about ``axis`` (all (B, 3)), in radians, positive counter-clockwise."""
    return np.arctan2(np.einsum("bi,bi->b", np.cross(u, v), axis), np.einsum("bi,bi->b", u, v))


def apply(rotations: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(B, 3, 3) @ (B, 3) -> (B, 3)."""
    return np.einsum("bij,bj->bi", rotations, vectors)
