"""One frame as the network sees it: the same fields for synthetic and real data.

Field names follow the design page's store contract (``simulator.store_format``): a synthetic store
frame and a real capture (``pipeline.real_captures``) both become a :class:`Sample`. Everything
positional is in the camera frame (OpenCV: x right, y down, z forward), metres.

Kernels are stored the store's way: normalised by :func:`simulator.deconvolution.normalize_kernels`,
with the per-frame ``kernel_scale`` so that ``kernels * kernel_scale`` are the deconvolved kernels in
the units they were computed in (the simulator's impulse-response units for synthetic and raw
captures; the dataset's units for the PoseKernel dataset).

Unknown values: ``joints3d`` all NaN (no ground truth, e.g. a raw capture without 3D), ``height``
and ``age_years`` NaN, ``activity`` and ``split`` "" , ``occluded`` all False.
"""
from __future__ import annotations

from core.errors import InputError
from dataclasses import dataclass, field

import numpy as np

from bodies.joints import JOINT_NAMES

NUM_JOINTS = len(JOINT_NAMES)


class SampleError(InputError):
    """A sample's field has the wrong shape or value; the message names the field."""


@dataclass
class Sample:
    """One frame: pose kernels, transducers, camera, 2D detections and (optionally) 3D ground truth.

    Attributes:
        kernels: (P, T) float32 normalised pose kernels, t = 0 at emission, one per pair.
        kernel_scale: scale removed by the normalisation; kernels * kernel_scale = kernels as deconvolved.
        pair_index: (P, 2) int (speaker, microphone) of each kernel row.
        speaker_pos: (S, 3) speaker positions, camera frame, m.
        mic_pos: (M, 3) microphone positions, camera frame, m.
        joints3d: (15, 3) ground-truth joints, camera frame, m, :data:`bodies.joints.JOINT_NAMES` order;
            all NaN when unknown.
        keypoints2d: (15, 3) detected (u, v, confidence), pixels; confidence 0 = not detected.
        intrinsics: (3, 3) camera matrix, pixels.
        image_size: (2,) int (width, height), pixels.
        cam_to_world: (4, 4) camera pose in the room frame (identity when the room frame is unknown).
        sample_rate_hz: of the kernels.
        speed_of_sound: m/s, to turn kernel delays into path lengths.
        room_id: integer id of the room or environment (environment N of the dataset -> N).
        room_name: readable room / environment name, e.g. "environment3".
        frame_id: the frame's name within its room (the dataset's folder name, the capture's index).
        split: "train", "val", "test" or "" (unassigned).
        height: subject stature, m (NaN when unknown).
        is_minor: the subject is under 18.
        age_years: NaN when unknown.
        activity: activity label (:data:`bodies.ACTIVITIES`) or "".
        occluded: (15,) bool, joints hidden by the body (all False when unknown).
        source: where the frame came from (a path), for error messages.
    """

    kernels: np.ndarray
    kernel_scale: float
    pair_index: np.ndarray
    speaker_pos: np.ndarray
    mic_pos: np.ndarray
    joints3d: np.ndarray
    keypoints2d: np.ndarray
    intrinsics: np.ndarray
    image_size: np.ndarray
    cam_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))
    sample_rate_hz: float = 96_000.0
    speed_of_sound: float = 343.2
    room_id: int = 0
    room_name: str = ""
    frame_id: str = ""
    split: str = ""
    height: float = float("nan")
    is_minor: bool = False
    age_years: float = float("nan")
    activity: str = ""
    occluded: np.ndarray = field(default_factory=lambda: np.zeros(NUM_JOINTS, bool))
    source: str = ""

    def __post_init__(self) -> None:
        where = f" (sample {self.source})" if self.source else ""

        def array(name, dtype, shape=None, finite=True):
            value = np.asarray(getattr(self, name), dtype=dtype)
            if shape is not None and (value.ndim != len(shape) or any(
                    want is not None and got != want for got, want in zip(value.shape, shape))):
                want = "(" + ", ".join("N" if w is None else str(w) for w in shape) + ")"
                raise SampleError(f"{name} has shape {value.shape}; expected {want}{where}")
            if finite and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise SampleError(f"{name} contains NaN/inf{where}")
            setattr(self, name, value)
            return value

        kernels = array("kernels", np.float32, (None, None))
        pairs = array("pair_index", np.int64, (len(kernels), 2))
        speakers = array("speaker_pos", np.float64, (None, 3))
        microphones = array("mic_pos", np.float64, (None, 3))
        if len(pairs) and (pairs.min() < 0 or pairs[:, 0].max() >= len(speakers)
                           or pairs[:, 1].max() >= len(microphones)):
            raise SampleError(f"pair_index refers to speakers/microphones beyond speaker_pos ({len(speakers)}) "
                              f"or mic_pos ({len(microphones)}){where}")
        array("joints3d", np.float64, (NUM_JOINTS, 3), finite=False)
        array("keypoints2d", np.float64, (NUM_JOINTS, 3))
        array("intrinsics", np.float64, (3, 3))
        size = array("image_size", np.int64, (2,))
        if size.min() <= 0:
            raise SampleError(f"image_size = {size.tolist()} must be positive (width, height) pixels{where}")
        array("cam_to_world", np.float64, (4, 4))
        array("occluded", bool, (NUM_JOINTS,))
        self.kernel_scale = float(self.kernel_scale)
        self.sample_rate_hz = float(self.sample_rate_hz)
        self.speed_of_sound = float(self.speed_of_sound)
        self.height = float(self.height)
        self.age_years = float(self.age_years)
        self.is_minor = bool(self.is_minor)
        self.room_id = int(self.room_id)

    @property
    def has_ground_truth(self) -> bool:
        """True when ``joints3d`` holds a 3D pose (not NaN)."""
        return bool(np.all(np.isfinite(self.joints3d)))

    @property
    def pair_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(P, 3) speaker and (P, 3) microphone position of each kernel row, camera frame, m."""
        return self.speaker_pos[self.pair_index[:, 0]], self.mic_pos[self.pair_index[:, 1]]
