"""The file checks both capture formats share: their errors, and .npy arrays and joints read safely.

A .npy file is checked from its header first (cheap, and a copy cut short is named as such), then
read as finite float64; joints arrive as FrankMocap's 49 or our 15 and leave as (..., 15, 3) metres.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bodies.joints import FRANKMOCAP49_INDICES, JOINT_NAMES
from core import npy_files as core_npy
from core.errors import DamagedDataError, InputError

__all__ = ["CaptureFormatError", "DamagedCaptureError", "NUM_JOINTS", "joints15", "joints_shape_ok", "npy_header",
           "read_npy"]

NUM_JOINTS = len(JOINT_NAMES)

# Joints further than this from the camera are taken for millimetres.
MAX_JOINT_DISTANCE_M = 30.0


class CaptureFormatError(InputError):
    """A capture file is missing, malformed or inconsistent; the message names the file and the field."""


class DamagedCaptureError(CaptureFormatError, DamagedDataError):
    """A capture file is there but damaged: cut short, not the format its name says, or changed on disk
    after the reader checked it. The message names the file."""


def npy_header(path: Path, what: str, fix: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file from its header alone, checked against the file's size on disk.

    A missing file or one of another dtype is a :class:`CaptureFormatError`; a file that is not a .npy
    array or is shorter than its header announces (a copy cut short) is a :class:`DamagedCaptureError`.
    """
    return core_npy.npy_header(path, what, fix, CaptureFormatError, DamagedCaptureError)


def read_npy(path: Path, what: str, fix: str) -> np.ndarray:
    """A .npy file whose header :func:`npy_header` accepted, as finite float64."""
    return core_npy.read_npy(path, what, fix, CaptureFormatError, DamagedCaptureError)


def joints_shape_ok(shape: tuple[int, ...], per_frame: bool) -> bool:
    """(49 | 15, >=3) for one pose (also (1, 49 | 15, >=3)); (F, 49 | 15, >=3) when ``per_frame``."""
    if not per_frame and len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    rank = 3 if per_frame else 2
    return len(shape) == rank and shape[-2] in (15, 49) and shape[-1] >= 3


def joints15(array: np.ndarray, path: Path, field_name: str, per_frame: bool, fix: str) -> np.ndarray:
    """(49, >=3) FrankMocap or (15, >=3) joints (a leading (F,) when ``per_frame``) -> (..., 15, 3) in metres."""
    if not joints_shape_ok(array.shape, per_frame):
        lead = "(F, " if per_frame else "("
        raise CaptureFormatError(f"{path}: {field_name} has shape {array.shape}; expected {lead}49, 3) in "
                                 f"FrankMocap's order or {lead}15, 3) in {', '.join(JOINT_NAMES[:3])}, ... order; "
                                 f"{fix}")
    if not per_frame and array.ndim == 3:
        array = array[0]
    joints = array[..., :3]
    if joints.shape[-2] == 49:
        joints = joints[..., FRANKMOCAP49_INDICES, :]
    reach_m = float(np.abs(joints).max()) if joints.size else 0.0
    if reach_m > MAX_JOINT_DISTANCE_M:
        raise CaptureFormatError(f"{path}: {field_name} reaches {reach_m:.0f}; joints must be in metres (camera "
                                 f"frame), these look like millimetres -- divide by 1000")
    return joints
