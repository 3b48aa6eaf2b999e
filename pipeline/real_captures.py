"""Readers for real captures, yielding :class:`pipeline.sample.Sample` like a synthetic store frame.

Two sources (the design page's "Real captures"), each in its own module and re-exported here:

1. :class:`PoseKernelDataset` (:mod:`pipeline.posekernel_layout`) -- the public PoseKernel dataset's
   ``environmentN/<frame>/rir.npy`` layout; 2D keypoints are the ground truth seen by a detector model.
2. :class:`RawCapture` (:mod:`pipeline.raw_captures`) -- a user's own rig, in the format of
   ``docs/raw_capture_format.md``: multichannel WAVs (:mod:`pipeline.wav_io`) with and without the
   person, ``calibration.json`` (:mod:`pipeline.capture_calibration`) and OpenPose keypoints.
   :func:`write_raw_capture` writes that format (from the simulator, for tests and demos).

Both readers check every file of every frame when they are opened, so a bad frame is reported before
any training or evaluation starts, not in the middle of an epoch. Every error is one line naming the
file, the field (or frame) and the fix: :class:`CaptureFormatError` for a file that breaks the format,
:class:`DamagedCaptureError` for one that is cut short, unreadable, or changed after it was checked
(:mod:`pipeline.capture_files`). The readers only read: nothing is ever written into a capture folder.
The public names are in ``__all__``.
"""
from __future__ import annotations

from pipeline.capture_calibration import (  # noqa: F401
    CALIBRATION_FILE, EMPTY_FILE, JOINTS3D_FILE, KEYPOINTS_DIR, RAW_FORMAT_NAME, RAW_FORMAT_VERSION, RECORDING_FILE,
    CaptureCalibration,
)
from pipeline.capture_files import (  # noqa: F401
    MAX_JOINT_DISTANCE_M, NUM_JOINTS, CaptureFormatError, DamagedCaptureError,
)
from pipeline.posekernel_layout import (  # noqa: F401
    DATASET_SAMPLE_RATE_HZ, DATASET_SPEED_OF_SOUND_M_S, ENVIRONMENT_FOLDER, PoseKernelDataset, environment_folders,
    natural_key, project_keypoints,
)
from pipeline.raw_captures import BODY25_SLOT, RawCapture, write_raw_capture  # noqa: F401
from pipeline.wav_io import LEVEL_RATIO_LIMIT, wav_to_full_scale  # noqa: F401

__all__ = [
    "CaptureCalibration", "CaptureFormatError", "DamagedCaptureError", "PoseKernelDataset", "RawCapture",
    "project_keypoints", "wav_to_full_scale", "write_raw_capture", "CALIBRATION_FILE",
    "RECORDING_FILE", "EMPTY_FILE", "KEYPOINTS_DIR", "JOINTS3D_FILE", "ENVIRONMENT_FOLDER", "environment_folders",
    "natural_key",
]
