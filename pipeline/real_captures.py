"""Readers for real captures, yielding :class:`pipeline.sample.Sample` like a synthetic store frame.

Two sources (the design page's "Real captures"):

1. :class:`PoseKernelDataset` -- the public PoseKernel dataset's layout::

       root/environmentN/audio_sensor_loc.npy    (4, 3) co-located speaker/microphone pairs, camera frame, m
       root/environmentN/<frame>/rir.npy          (4, T) impulse response of each pair, empty room removed, 96 kHz
       root/environmentN/<frame>/gnd.npy          (49, 3) joints, camera frame, m, FrankMocap order

   Pair i is speaker i with microphone i (P = 4). The dataset has no images: 2D keypoints are the
   ground truth projected through a configurable camera (Azure Kinect colour defaults) and corrupted by
   :class:`pipeline.detector.DetectorModel` (``detector=None``: the exact projection, confidence 1).

2. :class:`RawCapture` -- a user's own rig, in the format of ``docs/raw_capture_format.md``: continuous
   multichannel WAV recordings with and without the person, ``calibration.json`` and OpenPose keypoints,
   deconvolved by :func:`pipeline.deconvolution.deconvolve`. :func:`write_raw_capture` writes that format
   (from the simulator, for tests and demos).

Both readers check every file of every frame when they are opened, so a bad frame is reported before
any training or evaluation starts, not in the middle of an epoch. Every error is one line naming the
file, the field (or frame) and the fix: :class:`CaptureFormatError` for a file that breaks the format,
:class:`DamagedCaptureError` for one that is cut short, unreadable, or changed after it was checked.
The readers only read: nothing is ever written into a capture folder.
"""
from __future__ import annotations

import difflib
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import scipy.io.wavfile

from bodies.joints import FRANKMOCAP49_INDICES, JOINT_NAMES
from core.checks import check_finite_array, check_number, check_whole
from core.errors import DamagedDataError, InputError
from pipeline.deconvolution import (
    DEFAULT_BAND_TAPER_HZ, DEFAULT_KERNEL_SAMPLES, DEFAULT_REGULARIZATION, deconvolve, estimate_emission_offset,
    fractional_shift, normalize_kernels,
)
from pipeline.sample import Sample
from rooms.camera import AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX, AZURE_KINECT_COLOR_1080P_INTRINSICS
from simulator.signals import ChirpPlan

__all__ = [
    "CaptureCalibration", "CaptureFormatError", "DamagedCaptureError", "PoseKernelDataset", "RawCapture",
    "project_keypoints", "read_raw_capture", "wav_to_full_scale", "write_raw_capture", "CALIBRATION_FILE",
    "RECORDING_FILE", "EMPTY_FILE", "KEYPOINTS_DIR", "JOINTS3D_FILE",
]

NUM_JOINTS = len(JOINT_NAMES)
DATASET_SAMPLE_RATE_HZ = 96_000.0
DATASET_SPEED_OF_SOUND_M_S = 343.2     # 20 degrees C; the dataset records no temperature

RAW_FORMAT_NAME = "posekernel-raw-capture"
RAW_FORMAT_VERSION = 1
CALIBRATION_FILE = "calibration.json"
RECORDING_FILE = "recording.wav"
EMPTY_FILE = "empty.wav"
KEYPOINTS_DIR = "keypoints"
JOINTS3D_FILE = "joints3d.npy"

# OpenPose BODY_25 slot of each of our joints, for writing (the head goes to the nose slot; ears and eyes
# are left undetected, so pipeline.keypoint_formats reads it back from the nose).
BODY25_SLOT = {"pelvis": 8, "neck": 1, "head": 0, "r_shoulder": 2, "r_elbow": 3, "r_wrist": 4, "l_shoulder": 5,
               "l_elbow": 6, "l_wrist": 7, "r_hip": 9, "r_knee": 10, "r_ankle": 11, "l_hip": 12, "l_knee": 13,
               "l_ankle": 14}

# Joints further than this from the camera are taken for millimetres.
MAX_JOINT_DISTANCE_M = 30.0


class CaptureFormatError(InputError):
    """A capture file is missing, malformed or inconsistent; the message names the file and the field."""


class DamagedCaptureError(CaptureFormatError, DamagedDataError):
    """A capture file is there but damaged: cut short, not the format its name says, or changed on disk
    after the reader checked it. The message names the file."""


# -- shared helpers --------------------------------------------------------------------------------------
def project_keypoints(joints_camera_m: np.ndarray, intrinsics: np.ndarray, image_size_px) -> np.ndarray:
    """Exact pinhole projection of (15, 3) camera-frame joints -> (15, 3) (u, v, confidence).

    Confidence 1 for joints in front of the camera and inside the image, else 0 (and (0, 0) behind it).
    """
    joints = np.asarray(joints_camera_m, dtype=float)
    k = np.asarray(intrinsics, dtype=float)
    depth = joints[:, 2]
    in_front = depth > 1e-3
    uv = (joints @ k.T)[:, :2] / np.where(in_front, depth, 1.0)[:, None]
    width, height = image_size_px
    inside = in_front & (uv[:, 0] >= -0.5) & (uv[:, 0] <= width - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= height - 0.5)
    uv[~in_front] = 0.0
    return np.concatenate([uv, inside[:, None].astype(float)], axis=1)


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _npy_header(path: Path, what: str, fix: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file from its header alone, checked against the file's size on disk.

    A missing file or one of another dtype is a :class:`CaptureFormatError`; a file that is not a .npy
    array or is shorter than its header announces (a copy cut short) is a :class:`DamagedCaptureError`.
    """
    if not path.is_file():
        raise CaptureFormatError(f"{path}: missing ({what}); {fix}")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in _NPY_HEADER_READERS:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
            shape, _, dtype = _NPY_HEADER_READERS[version](handle)
            data_offset = handle.tell()
    except (OSError, ValueError, EOFError) as err:
        raise DamagedCaptureError(f"{path}: not a readable .npy array ({err}); {fix}") from None
    if dtype.hasobject or dtype.names is not None or dtype.kind not in "fiu":
        raise CaptureFormatError(f"{path}: holds {dtype} values; expected numbers ({what}); {fix}")
    needed = data_offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < needed:
        raise DamagedCaptureError(f"{path}: truncated -- {size} bytes on disk but its header announces {needed} "
                                  f"(shape {tuple(shape)}, {dtype}); the copy was cut short: {fix}")
    return tuple(int(n) for n in shape), dtype


def _read_npy(path: Path, what: str, fix: str) -> np.ndarray:
    """A .npy file whose header :func:`_npy_header` accepted, as finite float64."""
    try:
        array = np.load(path, allow_pickle=False).astype(np.float64)
    except (OSError, ValueError, EOFError) as err:
        raise DamagedCaptureError(f"{path}: cannot be read although its header is intact ({err}); {fix}") from None
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise CaptureFormatError(f"{path}: contains NaN/inf ({what}; first at index {tuple(int(i) for i in bad)}); "
                                 f"{fix}")
    return array


def _load_npy(path: Path, what: str, fix: str) -> np.ndarray:
    """Header check, then the finite float64 data of a .npy file."""
    _npy_header(path, what, fix)
    return _read_npy(path, what, fix)


def _joints_shape_ok(shape: tuple[int, ...], per_frame: bool) -> bool:
    """(49 | 15, >=3) for one pose (also (1, 49 | 15, >=3)); (F, 49 | 15, >=3) when ``per_frame``."""
    if not per_frame and len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    rank = 3 if per_frame else 2
    return len(shape) == rank and shape[-2] in (15, 49) and shape[-1] >= 3


def _joints15(array: np.ndarray, path: Path, field_name: str, per_frame: bool, fix: str) -> np.ndarray:
    """(49, >=3) FrankMocap or (15, >=3) joints (a leading (F,) when ``per_frame``) -> (..., 15, 3) in metres."""
    if not _joints_shape_ok(array.shape, per_frame):
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


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# -- 1. the PoseKernel dataset ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _DatasetFrame:
    environment: str
    room_id: int
    index_in_environment: int
    folder: Path


class PoseKernelDataset:
    """Every frame of every ``environmentN`` folder of the PoseKernel dataset, as :class:`Sample`.

    Opening the dataset checks every frame of the chosen environments (each file's presence, .npy
    header, size on disk, shape, and finite values; every pair heard something; joints in metres), so
    a damaged frame is refused here with its environment, frame, file and fix, before any work. This
    reads every frame once. Folders whose name starts with "." are not frames.

    Args:
        root: the folder holding ``environment1``, ``environment2``, ...
        intrinsics: (3, 3) camera matrix for the 2D keypoints (default: Azure Kinect colour, 1080p).
        image_size_px: (width, height) of that camera.
        detector: turns true joints into detections, ``detector.detect(joints, K, size, rng)`` ->
            (15, 3); default :class:`pipeline.detector.DetectorModel`; None: exact projection.
        seed: the detector's noise for frame i of environment N is drawn from
            ``default_rng([seed, N, i])``: reading is reproducible and order-independent.
        kernel_samples: crop (or zero-pad) every kernel to this length; None keeps the file's T.
        sample_rate_hz, speed_of_sound_m_s: of the dataset (96 kHz; 20 degrees C assumed).
        environments: names of the environments to read (default: all).
        frame_metadata: optional ``f(environment, frame_name) -> dict`` with any of height, is_minor,
            age_years, activity, split (the layout itself carries none of them).
    Raises:
        CaptureFormatError: a file is missing or breaks the layout; DamagedCaptureError: a file is cut
        short or unreadable (also from ``dataset[i]`` when a file changed after the dataset was opened).

    Example::

        dataset = PoseKernelDataset("PoseKernel/")
        sample = dataset[0]         # Sample: kernels (4, T), joints3d (15, 3), keypoints2d (15, 3), ...
    """

    def __init__(self, root, *, intrinsics=None, image_size_px=AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX,
                 detector="default", seed: int = 0, kernel_samples: int | None = None,
                 sample_rate_hz: float = DATASET_SAMPLE_RATE_HZ,
                 speed_of_sound_m_s: float = DATASET_SPEED_OF_SOUND_M_S, environments=None,
                 frame_metadata=None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise CaptureFormatError(f"{self.root}: not a folder; pass the dataset root holding environment1, ...")
        self.intrinsics = check_finite_array("intrinsics", AZURE_KINECT_COLOR_1080P_INTRINSICS if intrinsics is None
                                             else intrinsics, (3, 3), error=CaptureFormatError)
        self.image_size_px = tuple(check_whole(f"image_size_px[{i}]", v, minimum=1, error=CaptureFormatError)
                                   for i, v in enumerate(image_size_px))
        if detector == "default":
            from pipeline.detector import DetectorModel

            detector = DetectorModel()
        self.detector = detector
        self.seed = check_whole("seed", seed, minimum=0, error=CaptureFormatError)
        if kernel_samples is not None:
            kernel_samples = check_whole("kernel_samples", kernel_samples, minimum=1, error=CaptureFormatError)
        self.kernel_samples = kernel_samples
        self.sample_rate_hz = check_number("sample_rate_hz", sample_rate_hz, 0, low_open=True, error=CaptureFormatError)
        self.speed_of_sound_m_s = check_number("speed_of_sound_m_s", speed_of_sound_m_s, 300, 380,
                                               error=CaptureFormatError)
        self.frame_metadata = frame_metadata
        self._sensors: dict[str, np.ndarray] = {}
        self.frames: list[_DatasetFrame] = []
        folders = sorted((p for p in self.root.iterdir() if p.is_dir() and re.fullmatch(r"environment\d+", p.name)),
                         key=lambda p: _natural_key(p.name))
        if environments is not None:
            wanted = set(environments)
            missing = wanted - {p.name for p in folders}
            if missing:
                raise CaptureFormatError(f"{self.root}: no environment folder(s) {sorted(missing)}")
            folders = [p for p in folders if p.name in wanted]
        if not folders:
            raise CaptureFormatError(f"{self.root}: no environmentN folders; expected the PoseKernel layout "
                                     f"environment1/audio_sensor_loc.npy, environment1/0/rir.npy, ...")
        for folder in folders:
            path = folder / "audio_sensor_loc.npy"
            fix = f"re-copy {folder.name} from the PoseKernel dataset"
            shape, _ = _npy_header(path, "speaker/microphone positions, camera frame, m", fix)
            if len(shape) != 2 or shape[0] < 1 or shape[1] != 3:
                raise CaptureFormatError(f"{path}: has shape {shape}; expected (pairs, 3) positions of co-located "
                                         f"speaker/microphone pairs in metres; {fix}")
            self._sensors[folder.name] = _read_npy(path, "speaker/microphone positions, camera frame, m", fix)
            frame_folders = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                                   key=lambda p: _natural_key(p.name))
            if not frame_folders:
                raise CaptureFormatError(f"{folder}: no frame folders (expected {folder}/0/rir.npy, ...)")
            room_id = int(folder.name[len("environment"):])
            for i, frame in enumerate(frame_folders):
                self.frames.append(_DatasetFrame(folder.name, room_id, i, frame))
        for frame in self.frames:
            self._frame_arrays(frame)

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def _frame_arrays(self, frame: _DatasetFrame) -> tuple[np.ndarray, np.ndarray]:
        """(P, T) impulse responses and (15, 3) joints of one frame, after every check of the layout.

        The headers are checked first (cheap, and a cut-short copy is named as such), then the values.
        """
        sensors_path = frame.folder.parent / "audio_sensor_loc.npy"
        pairs = len(self._sensors[frame.environment])
        rir_path, gnd_path = frame.folder / "rir.npy", frame.folder / "gnd.npy"
        fix = (f"re-copy frame {frame.folder.name} of {frame.environment} from the PoseKernel dataset, or move "
               f"the folder {frame.folder} out of the dataset")
        rir_what = f"{frame.environment} frame {frame.folder.name}: impulse responses, one row per pair"
        gnd_what = f"{frame.environment} frame {frame.folder.name}: 3D joints, camera frame, m"
        shape, _ = _npy_header(rir_path, rir_what, fix)
        if len(shape) != 2 or shape[0] != pairs or shape[1] < 1:
            transposed = len(shape) == 2 and shape[1] == pairs
            raise CaptureFormatError(
                f"{rir_path}: has shape {shape}; expected ({pairs}, T), one row per pair of {sensors_path}"
                + (" (transposed? save rir.T)" if transposed else "") + f"; {fix}")
        shape, _ = _npy_header(gnd_path, gnd_what, fix)
        if not _joints_shape_ok(shape, per_frame=False):
            raise CaptureFormatError(f"{gnd_path}: has shape {shape}; expected one pose, (49, 3) in FrankMocap's "
                                     f"order or (15, 3); {fix}")
        rir = _read_npy(rir_path, rir_what, fix)
        silent = np.flatnonzero(np.abs(rir).max(axis=1) == 0)
        if len(silent):
            raise CaptureFormatError(f"{rir_path}: row(s) {silent.tolist()} are all zero (silent pair); {fix}")
        joints = _joints15(_read_npy(gnd_path, gnd_what, fix), gnd_path, "joints", per_frame=False, fix=fix)
        return rir, joints

    def __getitem__(self, index: int) -> Sample:
        frame = self.frames[index]
        sensors = self._sensors[frame.environment]
        try:
            rir, joints = self._frame_arrays(frame)
        except CaptureFormatError as err:
            # Every frame passed these checks when the dataset was opened: the file changed since.
            if isinstance(err, DamagedDataError):
                raise
            raise DamagedCaptureError(f"{err} (it changed on disk after the dataset was opened)") from None
        if self.kernel_samples is not None:
            K = int(self.kernel_samples)
            rir = np.pad(rir, ((0, 0), (0, max(0, K - rir.shape[1]))))[:, :K]
        if self.detector is None:
            keypoints = project_keypoints(joints, self.intrinsics, self.image_size_px)
        else:
            rng = np.random.default_rng([self.seed, frame.room_id, frame.index_in_environment])
            keypoints = self.detector.detect(joints, self.intrinsics, self.image_size_px, rng)
        normalized, scale = normalize_kernels(rir)
        meta = dict(self.frame_metadata(frame.environment, frame.folder.name)) if self.frame_metadata else {}
        pairs = np.repeat(np.arange(len(sensors))[:, None], 2, axis=1)
        return Sample(
            kernels=normalized, kernel_scale=float(scale), pair_index=pairs, speaker_pos=sensors, mic_pos=sensors,
            joints3d=joints, keypoints2d=keypoints, intrinsics=self.intrinsics, image_size=self.image_size_px,
            cam_to_world=np.eye(4), sample_rate_hz=self.sample_rate_hz, speed_of_sound=self.speed_of_sound_m_s,
            room_id=frame.room_id, room_name=frame.environment, frame_id=frame.folder.name,
            source=str(frame.folder), **meta,
        )


# -- 2. raw captures ---------------------------------------------------------------------------------------
@dataclass
class CaptureCalibration:
    """Everything ``calibration.json`` holds (see ``docs/raw_capture_format.md``).

    Attributes:
        speaker_positions_m: (S, 3) camera frame, m; speaker s plays chirp_plan's chirp s.
        microphone_positions_m: (M, 3) camera frame, m; channel m of every WAV is microphone m.
        intrinsics: (3, 3) camera matrix, pixels. image_size_px: (width, height).
        chirp_plan: the emitted chirps (band, speakers, duration = one frame period, rate, taper, guard).
        speed_of_sound_m_s: of the air during the capture.
        cam_to_world: (4, 4) camera pose in a room frame (identity if none).
        pairs: (P, 2) (speaker, microphone) kernels to keep; None = every speaker with every microphone.
        first_sample: sample of recording.wav at which frame 0's chirp period starts (its emission).
        empty_first_sample: the same for empty.wav; None = estimate it from the direct paths
            (:func:`pipeline.deconvolution.estimate_emission_offset`).
        wav_full_scale: the physical value of a WAV's full scale: samples are first brought to [-1, 1)
            (:func:`wav_to_full_scale`: integer PCM divided by 2^(bits - 1), float as is), then
            multiplied by it; recording.wav and empty.wav share it.
        environment_id, environment_name: which room.
        height_m, is_minor, age_years, activity: the subject (optional).
    """

    speaker_positions_m: np.ndarray
    microphone_positions_m: np.ndarray
    intrinsics: np.ndarray
    image_size_px: tuple[int, int]
    chirp_plan: ChirpPlan = field(default_factory=ChirpPlan)
    speed_of_sound_m_s: float = 343.2
    cam_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))
    pairs: np.ndarray | None = None
    first_sample: int = 0
    empty_first_sample: int | float | None = 0
    wav_full_scale: float = 1.0
    environment_id: int = 0
    environment_name: str = ""
    height_m: float | None = None
    is_minor: bool = False
    age_years: float | None = None
    activity: str = ""

    @property
    def sample_rate_hz(self) -> float:
        return float(self.chirp_plan.sample_rate_hz)

    @property
    def pair_index(self) -> np.ndarray:
        if self.pairs is not None:
            return np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        S, M = len(self.speaker_positions_m), len(self.microphone_positions_m)
        return np.array([(s, m) for s in range(S) for m in range(M)], dtype=np.int64)

    def to_json(self) -> dict:
        plan = self.chirp_plan
        return {
            "format": RAW_FORMAT_NAME, "version": RAW_FORMAT_VERSION,
            "sample_rate_hz": plan.sample_rate_hz,
            "speed_of_sound_m_s": float(self.speed_of_sound_m_s),
            "speakers_m": np.asarray(self.speaker_positions_m, float).tolist(),
            "microphones_m": np.asarray(self.microphone_positions_m, float).tolist(),
            "pairs": None if self.pairs is None else self.pair_index.tolist(),
            "camera": {"intrinsics": np.asarray(self.intrinsics, float).tolist(),
                       "image_size_px": [int(v) for v in self.image_size_px],
                       "cam_to_world": np.asarray(self.cam_to_world, float).tolist()},
            "chirp_plan": {"band_hz": list(plan.band_hz), "n_speakers": plan.n_speakers,
                           "duration_s": plan.duration_s, "sample_rate_hz": plan.sample_rate_hz,
                           "taper_s": plan.taper_s, "guard_hz": plan.guard_hz},
            "recording": {"file": RECORDING_FILE, "first_sample": int(self.first_sample),
                          "empty_file": EMPTY_FILE, "empty_first_sample": self.empty_first_sample,
                          "wav_full_scale": float(self.wav_full_scale)},
            "environment": {"id": int(self.environment_id), "name": self.environment_name},
            "subject": {"height_m": self.height_m, "is_minor": bool(self.is_minor), "age_years": self.age_years},
            "activity": self.activity,
        }

    @classmethod
    def from_json(cls, data: dict, path: Path | str = CALIBRATION_FILE) -> "CaptureCalibration":
        """Parse and check ``calibration.json``'s content; errors name ``path``, the field and the fix.

        Every field is typed as JSON types it: numbers are JSON numbers (``"96k"`` and ``"343"`` are
        refused, not converted), booleans are ``true`` / ``false`` (``"false"`` is refused, not read as
        true), arrays have their shape, and unknown fields are refused (a misspelt optional field would
        otherwise be ignored without a word).
        """
        read = _CalibrationFields(path)
        read.known("", data, _CALIBRATION_FIELDS)
        if "format" in data:
            read.choice("format", data["format"], (RAW_FORMAT_NAME,), "this reader reads raw captures")
        if "version" in data and read.whole("version", data["version"], "give the format version, 1") != \
                RAW_FORMAT_VERSION:
            read.fail("version", data["version"], f"this reader reads version {RAW_FORMAT_VERSION}")
        positions = "give a list of [x, y, z] positions in metres, camera frame"
        speakers = read.array("speakers_m", read.required(data, "speakers_m", positions), (None, 3), positions)
        microphones = read.array("microphones_m", read.required(data, "microphones_m", positions), (None, 3),
                                 positions)

        plan_data = read.section(data, "chirp_plan", _CHIRP_PLAN_FIELDS, required=True)
        plan_args = {}
        if "band_hz" in plan_data:
            plan_args["band_hz"] = tuple(read.array("chirp_plan.band_hz", plan_data["band_hz"], (2,),
                                                    "give [low, high] in Hz, e.g. [19000, 32000]"))
        if "n_speakers" in plan_data:
            plan_args["n_speakers"] = read.whole("chirp_plan.n_speakers", plan_data["n_speakers"],
                                                 "give the number of speakers", minimum=1)
        for key, zero_allowed, fix in (("duration_s", False, "give one chirp period in seconds, e.g. 0.1"),
                                       ("sample_rate_hz", False, "give the sample rate in Hz, e.g. 96000"),
                                       ("taper_s", True, "give the taper in seconds, e.g. 0.005 (0 for none)"),
                                       ("guard_hz", True, "give the gap between sub-bands in Hz, e.g. 250")):
            if key in plan_data:
                plan_args[key] = read.number(f"chirp_plan.{key}", plan_data[key], fix,
                                             low=0.0, low_open=not zero_allowed)
        try:
            plan = ChirpPlan(**plan_args)
        except (TypeError, ValueError) as err:
            raise CaptureFormatError(f"{path}: field chirp_plan is invalid: {err}") from None
        if "sample_rate_hz" in data:
            rate = read.number("sample_rate_hz", data["sample_rate_hz"], "give the sample rate in Hz, e.g. 96000",
                               low=0.0, low_open=True)
            if rate != plan.sample_rate_hz:
                read.conflict("sample_rate_hz", data["sample_rate_hz"],
                              f"differs from chirp_plan.sample_rate_hz = {plan.sample_rate_hz:g}; make them equal")
        if plan.n_speakers != len(speakers):
            read.conflict("chirp_plan.n_speakers", plan.n_speakers,
                          f"but speakers_m lists {len(speakers)} speakers; make them agree")

        speed_fix = "give the speed of sound in air in m/s (about 343), or temperature_c instead"
        if "temperature_c" in data:
            from rooms.air import speed_of_sound_m_s

            temperature = read.number("temperature_c", data["temperature_c"],
                                      "give the air temperature in degrees Celsius, e.g. 21.5", low=-50.0, high=60.0)
            speed = float(speed_of_sound_m_s(temperature))
        if "speed_of_sound_m_s" in data:
            speed = read.number("speed_of_sound_m_s", data["speed_of_sound_m_s"], speed_fix, low=300.0, high=380.0,
                                low_open=True, high_open=True)
        elif "temperature_c" not in data:
            read.missing("speed_of_sound_m_s", speed_fix)

        camera = read.section(data, "camera", _CAMERA_FIELDS, required=True)
        intrinsics_fix = "give [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels"
        intrinsics = read.array("camera.intrinsics", read.required(camera, "intrinsics", intrinsics_fix, "camera."),
                                (3, 3), intrinsics_fix)
        if not np.allclose(intrinsics[2], [0, 0, 1]) or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
            read.fail("camera.intrinsics", camera["intrinsics"], intrinsics_fix + " (fx, fy > 0)")
        size_fix = "give [width, height] in pixels, e.g. [1920, 1080]"
        size_value = read.required(camera, "image_size_px", size_fix, "camera.")
        if not isinstance(size_value, list) or len(size_value) != 2:
            read.fail("camera.image_size_px", size_value, size_fix)
        size = tuple(read.whole(f"camera.image_size_px[{i}]", v, size_fix, minimum=1) for i, v in enumerate(size_value))
        pose = np.eye(4)
        pose_fix = "give a 4 x 4 rigid transform [[R, t], [0, 0, 0, 1]] (R a rotation), or leave it out"
        if camera.get("cam_to_world") is not None:
            pose = read.array("camera.cam_to_world", camera["cam_to_world"], (4, 4), pose_fix)
            rotation = pose[:3, :3]
            if not np.allclose(pose[3], [0, 0, 0, 1]) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) \
                    or np.linalg.det(rotation) < 0:
                read.fail("camera.cam_to_world", camera["cam_to_world"], pose_fix)

        pairs = None
        pairs_fix = (f"give a list of [speaker, microphone] index pairs below ({len(speakers)}, {len(microphones)}), "
                     f"each once, or null for all")
        if data.get("pairs") is not None:
            value = data["pairs"]
            if not isinstance(value, list) or not value or \
                    any(not isinstance(pair, list) or len(pair) != 2 for pair in value):
                read.fail("pairs", value, pairs_fix)
            pairs = np.array([[read.whole(f"pairs[{i}][{j}]", index, pairs_fix, minimum=0,
                                          maximum=(len(speakers), len(microphones))[j] - 1)
                               for j, index in enumerate(pair)] for i, pair in enumerate(value)], dtype=np.int64)
            if len({tuple(pair) for pair in pairs.tolist()}) != len(pairs):
                read.fail("pairs", value, pairs_fix)

        recording = read.section(data, "recording", _RECORDING_FIELDS)
        for key, expected in (("file", RECORDING_FILE), ("empty_file", EMPTY_FILE)):
            if key in recording:
                read.choice(f"recording.{key}", recording[key], (expected,), "the format's file names are fixed")
        first = 0
        if "first_sample" in recording:
            first = read.whole("recording.first_sample", recording["first_sample"],
                               "give the sample of recording.wav where frame 0's chirp period starts", minimum=0)
        empty_first = 0
        if "empty_first_sample" in recording:
            empty_first = recording["empty_first_sample"]
            if empty_first is not None:
                empty_first = read.number("recording.empty_first_sample", empty_first,
                                          "give the sample of empty.wav where a chirp period starts (>= 0), or null "
                                          "to find it from the direct paths", low=0.0)
                empty_first = int(empty_first) if float(empty_first).is_integer() else empty_first
        full_scale = 1.0
        if "wav_full_scale" in recording:
            full_scale = read.number("recording.wav_full_scale", recording["wav_full_scale"],
                                     "give the physical value of the WAVs' full scale (> 0), 1 if unknown",
                                     low=0.0, low_open=True)

        environment = read.section(data, "environment", _ENVIRONMENT_FIELDS)
        environment_id = 0
        if "id" in environment:
            environment_id = read.whole("environment.id", environment["id"], "give the room's number, e.g. 3",
                                        minimum=0)
        environment_name = ""
        if "name" in environment:
            environment_name = read.text("environment.name", environment["name"], "give the room's name as a string")

        subject = read.section(data, "subject", _SUBJECT_FIELDS)
        height = age = None
        if subject.get("height_m") is not None:
            height = read.number("subject.height_m", subject["height_m"],
                                 "give the subject's height in metres, e.g. 1.74 (or null)", low=0.3, high=2.6)
        if subject.get("age_years") is not None:
            age = read.number("subject.age_years", subject["age_years"], "give the subject's age in years (or null)",
                              low=0.0, high=130.0)
        is_minor = False
        if subject.get("is_minor") is not None:
            is_minor = read.boolean("subject.is_minor", subject["is_minor"])
            if age is not None and is_minor != (age < 18):
                read.conflict("subject.is_minor", subject["is_minor"],
                              f"but subject.age_years = {age:g}; make them agree (is_minor is true under 18)")
        elif age is not None:
            is_minor = age < 18
        activity = ""
        if data.get("activity") is not None:
            activity = read.text("activity", data["activity"], 'give the activity as a string, e.g. "standing"')

        return cls(
            speaker_positions_m=speakers, microphone_positions_m=microphones, intrinsics=intrinsics,
            image_size_px=size, chirp_plan=plan, speed_of_sound_m_s=speed, cam_to_world=pose, pairs=pairs,
            first_sample=first, empty_first_sample=empty_first, wav_full_scale=full_scale,
            environment_id=environment_id, environment_name=environment_name, height_m=height, is_minor=is_minor,
            age_years=age, activity=activity,
        )


_CALIBRATION_FIELDS = ("format", "version", "sample_rate_hz", "speed_of_sound_m_s", "temperature_c", "speakers_m",
                       "microphones_m", "pairs", "camera", "chirp_plan", "recording", "environment", "subject",
                       "activity", "notes")
_CAMERA_FIELDS = ("intrinsics", "image_size_px", "cam_to_world")
_CHIRP_PLAN_FIELDS = ("band_hz", "n_speakers", "duration_s", "sample_rate_hz", "taper_s", "guard_hz")
_RECORDING_FIELDS = ("file", "first_sample", "empty_file", "empty_first_sample", "wav_full_scale")
_ENVIRONMENT_FIELDS = ("id", "name")
_SUBJECT_FIELDS = ("height_m", "is_minor", "age_years")


def _json_text(value) -> str:
    """A value as the user typed it in JSON (``"abc"``, ``null``, ``false``), shortened."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_json_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_tree(value, depth: int) -> bool:
    """True for ``depth`` levels of JSON lists ending in JSON numbers (not strings, booleans or null)."""
    if depth == 0:
        return _is_json_number(value)
    return isinstance(value, list) and all(_number_tree(item, depth - 1) for item in value)


class _CalibrationFields:
    """Typed reads of ``calibration.json``: each checks one field and raises one line naming the file, the
    field as the user wrote it (``camera.intrinsics``), its value in JSON and the fix."""

    def __init__(self, path):
        self.path = path

    def fail(self, name: str, value, fix: str) -> NoReturn:
        raise CaptureFormatError(f"{self.path}: field {name} = {_json_text(value)}: {fix}")

    def conflict(self, name: str, value, text: str) -> NoReturn:
        """A well-typed value that contradicts another field."""
        raise CaptureFormatError(f"{self.path}: field {name} = {_json_text(value)} {text}")

    def missing(self, name: str, fix: str) -> NoReturn:
        raise CaptureFormatError(f"{self.path}: field {name} is missing; {fix} (docs/raw_capture_format.md)")

    def required(self, mapping: dict, key: str, fix: str, prefix: str = ""):
        if key not in mapping:
            self.missing(prefix + key, fix)
        return mapping[key]

    def known(self, prefix: str, mapping: dict, names: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"did you mean {prefix}{close[0]}? " if close else ""
                raise CaptureFormatError(f"{self.path}: field {prefix}{key} is not part of the format; {hint}"
                                         f"the fields are {', '.join(prefix + n for n in names)} "
                                         f"(docs/raw_capture_format.md)")

    def section(self, data: dict, key: str, names: tuple[str, ...], required: bool = False) -> dict:
        """A nested object (``camera``, ``recording``, ...); absent is {} unless required."""
        if key not in data:
            if not required:
                return {}
            self.missing(key, f"give an object with {', '.join(names)}")
        value = data[key]
        if not isinstance(value, dict):
            self.fail(key, value, f"give an object with the fields {', '.join(names)}")
        self.known(key + ".", value, names)
        return value

    def number(self, name: str, value, fix: str, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
        if not _is_json_number(value):
            self.fail(name, value, fix + " (a JSON number, not a string)" if isinstance(value, str) else fix)
        try:
            return check_number(f"{self.path}: field {name}", value, low, high, low_open=low_open,
                                high_open=high_open, error=CaptureFormatError)
        except CaptureFormatError as err:
            raise CaptureFormatError(f"{err}; {fix}") from None

    def whole(self, name: str, value, fix: str, minimum: int | None = None, maximum: int | None = None) -> int:
        if not _is_json_number(value):
            self.fail(name, value, fix + " (a JSON number, not a string)" if isinstance(value, str) else fix)
        try:
            return check_whole(f"{self.path}: field {name}", value, minimum, maximum, error=CaptureFormatError)
        except CaptureFormatError as err:
            raise CaptureFormatError(f"{err}; {fix}") from None

    def boolean(self, name: str, value) -> bool:
        if not isinstance(value, bool):
            self.fail(name, value, "give true or false (JSON booleans, without quotes)")
        return value

    def text(self, name: str, value, fix: str) -> str:
        if not isinstance(value, str):
            self.fail(name, value, fix)
        return value

    def choice(self, name: str, value, choices: tuple, why: str) -> None:
        if not isinstance(value, str) or value not in choices:
            self.fail(name, value, f"give {' or '.join(json.dumps(c) for c in choices)} ({why})")

    def array(self, name: str, value, shape: tuple, fix: str) -> np.ndarray:
        """Nested JSON lists of numbers of ``shape`` (None: any length >= 1 on that axis), finite."""
        if not _number_tree(value, len(shape)):
            self.fail(name, value, fix)
        try:
            array = check_finite_array(f"{self.path}: field {name}", value, shape, error=CaptureFormatError)
        except CaptureFormatError as err:
            raise CaptureFormatError(f"{err}; {fix}") from None
        if array.size == 0:
            self.fail(name, value, fix)
        return array


# -- WAV files -----------------------------------------------------------------------------------------------
# recording.wav and empty.wav are subtracted from each other after scaling: their levels (median over the
# microphones, the direct paths dominate both) may differ by at most this factor. A person shadows a few
# direct paths by a few dB; a factor of 2 is a gain or format mix-up, whose kernels would be garbage.
LEVEL_RATIO_LIMIT = 2.0


def wav_to_full_scale(samples: np.ndarray) -> np.ndarray:
    """WAV samples as scipy reads them -> float64 in full-scale units, integer PCM in [-1, 1).

    Integer PCM is divided by 2^(bits - 1): int16 / 32768, int32 / 2^31 (24-bit files arrive as
    int32, left-aligned, so they scale the same way); 8-bit PCM is unsigned with its zero at 128:
    (x - 128) / 128. Float samples are left as they are (a float WAV's full scale is 1.0).

    Raises:
        TypeError: another sample type.
    """
    samples = np.asarray(samples)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float64) - 128.0) / 128.0
    if samples.dtype.kind == "i":
        return samples.astype(np.float64) / float(2 ** (8 * samples.dtype.itemsize - 1))
    if samples.dtype.kind == "f":
        return samples.astype(np.float64)
    raise TypeError(f"WAV samples of type {samples.dtype} are not supported")


def _format_name(dtype: np.dtype) -> str:
    if dtype.kind == "f":
        return f"{8 * dtype.itemsize}-bit float"
    return f"{8 * dtype.itemsize}-bit PCM" + (" (or 24-bit)" if dtype == np.int32 else "")


@dataclass
class _Wav:
    path: Path
    rate_hz: int
    samples: np.ndarray        # (N, channels) as stored in the file

    @property
    def channels(self) -> int:
        return self.samples.shape[1]


def _open_wav(path: Path, role: str) -> _Wav:
    """A capture WAV as stored; missing, cut short or unreadable files are refused naming the file."""
    if not path.is_file():
        raise CaptureFormatError(f"{path}: missing ({role}); see docs/raw_capture_format.md")
    with open(path, "rb") as handle:
        header = handle.read(8)
    size = path.stat().st_size
    if len(header) == 8 and header[:4] == b"RIFF" and size < int.from_bytes(header[4:8], "little") + 8:
        raise DamagedCaptureError(f"{path}: truncated -- {size} bytes on disk but its RIFF header announces "
                                  f"{int.from_bytes(header[4:8], 'little') + 8}; the file was cut short, copy it again")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate, samples = scipy.io.wavfile.read(path)
        except Exception as err:  # noqa: BLE001 - struct/ValueError from a broken header
            raise DamagedCaptureError(f"{path}: not a readable WAV file ({type(err).__name__}: {err}); "
                                      f"re-export it as PCM or IEEE-float WAV") from None
    for warning in caught:
        if "EOF" in str(warning.message) or "premature" in str(warning.message).lower():
            raise DamagedCaptureError(f"{path}: truncated -- {warning.message}; the file was cut short, copy it "
                                      f"again")
    return _Wav(path, int(rate), samples.reshape(len(samples), -1))


def _check_wav_pair(recording: _Wav, empty: _Wav, calibration: CaptureCalibration, calibration_path: Path) -> None:
    """The two WAVs agree with each other (naming both files), then with the calibration."""
    rate_hz = calibration.sample_rate_hz
    if recording.rate_hz != empty.rate_hz:
        raise CaptureFormatError(f"{recording.path} is sampled at {recording.rate_hz} Hz but {empty.path} at "
                                 f"{empty.rate_hz} Hz; the empty room is subtracted sample by sample, so record both "
                                 f"at {calibration_path.name}'s sample_rate_hz = {rate_hz:g} Hz")
    if recording.channels != empty.channels:
        raise CaptureFormatError(f"{recording.path} has {recording.channels} channels but {empty.path} has "
                                 f"{empty.channels}; both need one channel per microphone of "
                                 f"{calibration_path.name}'s microphones_m, in the same order")
    microphones = len(calibration.microphone_positions_m)
    for wav in (recording, empty):
        if wav.rate_hz != rate_hz:
            raise CaptureFormatError(f"{wav.path}: sample rate is {wav.rate_hz} Hz but {calibration_path.name}'s "
                                     f"sample_rate_hz is {rate_hz:g} Hz; record at that rate (or fix the calibration)")
        if wav.channels != microphones:
            raise CaptureFormatError(f"{wav.path}: has {wav.channels} channels but {calibration_path.name}'s "
                                     f"microphones_m lists {microphones} microphones (channel m = microphone m)")


def _wav_signals(wav: _Wav, full_scale: float, min_samples: int) -> np.ndarray:
    """(M, N) float64 physical signals of a capture WAV: full-scale units x ``full_scale``, checked."""
    path, samples = wav.path, wav.samples
    try:
        signals = wav_to_full_scale(samples).T * full_scale
    except TypeError:
        raise CaptureFormatError(f"{path}: sample format {samples.dtype} is not supported; re-export it as 8-, 16-, "
                                 f"24- or 32-bit PCM or 32-bit float") from None
    if samples.dtype.kind in "iu":
        limits = np.iinfo(samples.dtype)
        clipped = np.mean((samples >= limits.max) | (samples <= limits.min), axis=0)
        for m in np.flatnonzero(clipped > 1e-4):
            warnings.warn(f"{path}: channel {m} is clipped on {100 * clipped[m]:.2f} % of its samples; "
                          f"lower the recording gain", stacklevel=3)
    bad = ~np.isfinite(signals)
    if bad.any():
        m, t = np.argwhere(bad)[0]
        raise CaptureFormatError(f"{path}: channel {m} holds NaN/inf (first at sample {t}); re-export the recording")
    if signals.shape[1] < min_samples:
        raise CaptureFormatError(f"{path}: truncated -- {signals.shape[1]} samples, but one chirp period from the "
                                 f"recording's first sample needs {min_samples} (chirp_plan.duration_s x "
                                 f"sample_rate_hz + first sample)")
    rms = np.sqrt(np.mean(signals**2, axis=1))
    silent = np.flatnonzero(rms <= 1e-6 * max(rms.max(), 1e-300))
    if rms.max() == 0 or len(silent):
        raise CaptureFormatError(f"{path}: channel(s) {silent.tolist()} are silent (microphone(s) "
                                 f"{silent.tolist()} recorded nothing); check the cables and the channel order")
    return signals


class RawCapture:
    """A raw capture folder (``docs/raw_capture_format.md``) as a sequence of :class:`Sample`.

    Frame f is samples [first_sample + f N, first_sample + (f + 1) N) of recording.wav, N = the chirp
    period; the empty room is the average of all whole periods of empty.wav from empty_first_sample
    (estimated from the direct paths when null). Each frame is deconvolved against it
    (:func:`pipeline.deconvolution.deconvolve`, with alignment), the calibration's pairs are kept, and
    the kernels are normalised (:func:`pipeline.deconvolution.normalize_kernels`).

    Opening the folder reads and checks everything (calibration, both WAVs and their agreement, every
    frame's keypoint file, joints3d.npy), so ``capture[i]`` reads no file and cannot fail on one.

    Args:
        folder: the capture folder.
        kernel_samples, regularization, align, band_taper_hz: passed to ``deconvolve``.
    Raises:
        CaptureFormatError: a file is missing or breaks the format (the message names the file, the
        field and the fix); DamagedCaptureError: a file is cut short or unreadable.
    """

    def __init__(self, folder, *, kernel_samples: int = DEFAULT_KERNEL_SAMPLES,
                 regularization: float = DEFAULT_REGULARIZATION, align: bool = True,
                 band_taper_hz: float = DEFAULT_BAND_TAPER_HZ):
        self.folder = Path(folder)
        path = self.folder / CALIBRATION_FILE
        if not path.is_file():
            raise CaptureFormatError(f"{path}: missing; a raw capture folder needs calibration.json "
                                     f"(docs/raw_capture_format.md)")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CaptureFormatError(f"{path}: not valid JSON ({err}); fix it in a text editor "
                                     f"(docs/raw_capture_format.md shows an example)") from None
        except OSError as err:
            raise CaptureFormatError(f"{path}: cannot be read ({err.strerror or err})") from None
        if not isinstance(data, dict):
            raise CaptureFormatError(f"{path}: holds a JSON {type(data).__name__}; expected an object with the "
                                     f"fields of docs/raw_capture_format.md")
        self.calibration = calibration = CaptureCalibration.from_json(data, path)
        plan = calibration.chirp_plan
        self.period = N = plan.n_samples
        kernel_samples = check_whole("kernel_samples", kernel_samples, 1, N, error=CaptureFormatError)
        self.deconvolution = dict(kernel_samples=kernel_samples, regularization=regularization, align=align,
                                  band_taper_hz=band_taper_hz)
        self.chirps = plan.chirps()
        self.bands_hz = plan.speaker_bands_hz()
        recording_wav = _open_wav(self.folder / RECORDING_FILE, "the recording with the person")
        empty_wav = _open_wav(self.folder / EMPTY_FILE, "the empty room's recording")
        _check_wav_pair(recording_wav, empty_wav, calibration, path)
        self.recording = _wav_signals(recording_wav, calibration.wav_full_scale, calibration.first_sample + N)
        self.n_frames = (self.recording.shape[1] - calibration.first_sample) // N
        empty_start = calibration.empty_first_sample
        empty = _wav_signals(empty_wav, calibration.wav_full_scale, int(np.ceil(empty_start or 0)) + N)
        start = int(np.floor(empty_start or 0))
        periods = (empty.shape[1] - start) // N
        self.empty = empty[:, start:start + periods * N].reshape(empty.shape[0], periods, N).mean(axis=1)
        if empty_start is None:
            self.empty_offset_samples = estimate_emission_offset(
                self.empty, self.chirps, self.bands_hz, calibration.sample_rate_hz,
                calibration.speaker_positions_m, calibration.microphone_positions_m, calibration.speed_of_sound_m_s,
                band_taper_hz=band_taper_hz)
        else:
            self.empty_offset_samples = float(empty_start) - start    # a fractional first sample
        if self.empty_offset_samples:
            self.empty = fractional_shift(self.empty, -self.empty_offset_samples)
        self._check_levels(recording_wav, empty_wav, path)
        self.joints3d = self._read_joints3d()
        self._keypoints = self._read_all_keypoints()

    def _check_levels(self, recording_wav: _Wav, empty_wav: _Wav, calibration_path: Path) -> None:
        """Refuse a recording and an empty room on different scales (LEVEL_RATIO_LIMIT): subtracting them
        would leave the direct paths in every kernel."""
        first = self.calibration.first_sample
        frames = self.recording[:, first:first + self.n_frames * self.period]
        ratio = float(np.median(np.sqrt(np.mean(frames**2, axis=1) / np.mean(self.empty**2, axis=1))))
        if not 1 / LEVEL_RATIO_LIMIT <= ratio <= LEVEL_RATIO_LIMIT:
            raise CaptureFormatError(
                f"{recording_wav.path} ({_format_name(recording_wav.samples.dtype)}) is {ratio:.3g} times as loud as "
                f"{empty_wav.path} ({_format_name(empty_wav.samples.dtype)}), median over the microphones, after "
                f"scaling both to full scale x {calibration_path.name}'s recording.wav_full_scale; the empty room is "
                f"subtracted from every frame, so record both with the same gain and store them on one scale "
                f"(re-export both in one sample format)")

    def _read_joints3d(self) -> np.ndarray | None:
        """(F, 15, 3) ground truth from the optional joints3d.npy, or None without it."""
        path = self.folder / JOINTS3D_FILE
        if not path.exists():
            return None
        fix = (f"save one (15 or 49, 3) pose per frame of recording.wav in metres with numpy.save, or move "
               f"{JOINTS3D_FILE} out of the folder (it is optional)")
        shape, _ = _npy_header(path, "3D joints per frame, camera frame, m", fix)
        if not _joints_shape_ok(shape, per_frame=True):
            raise CaptureFormatError(f"{path}: has shape {shape}; expected (frames, 49, 3) in FrankMocap's order or "
                                     f"(frames, 15, 3); {fix}")
        if shape[0] < self.n_frames:
            raise CaptureFormatError(f"{path}: holds {shape[0]} poses but recording.wav has {self.n_frames} frames; "
                                     f"give one (15 or 49, 3) pose per frame")
        joints = _read_npy(path, "3D joints per frame, camera frame, m", fix)
        return _joints15(joints, path, "joints3d", per_frame=True, fix=fix)

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def frame_recordings(self, index: int) -> np.ndarray:
        """(M, N) the microphones during frame ``index``."""
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside [0, {self.n_frames}) of {self.folder / RECORDING_FILE}")
        start = self.calibration.first_sample + index * self.period
        return self.recording[:, start:start + self.period]

    def kernels(self, index: int) -> np.ndarray:
        """(S, M, K) pose kernels of frame ``index`` (deconvolved, not normalised)."""
        return deconvolve(self.frame_recordings(index), self.empty, self.chirps, self.bands_hz,
                          self.calibration.sample_rate_hz, **self.deconvolution)

    def keypoints_path(self, index: int) -> Path:
        return self.folder / KEYPOINTS_DIR / f"{index:06d}_keypoints.json"

    def keypoints(self, index: int) -> np.ndarray:
        """(15, 3) (u, v, confidence) of frame ``index``, as read from its file when the capture was opened."""
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside [0, {self.n_frames}) of {self.folder / RECORDING_FILE}")
        return self._keypoints[index].copy()

    def _read_all_keypoints(self) -> np.ndarray:
        """(F, 15, 3) of every frame's OpenPose BODY_25 file, read now so a bad file is refused before any work.

        Keypoints outside the image get confidence 0, with one warning for the whole capture (a detector
        cannot see them, and one stray joint should not discard a frame); when most of a frame's confident
        keypoints are outside, the calibration's image size or intrinsics are wrong and the read fails.
        """
        from pipeline.keypoint_formats import KeypointFileError, read_openpose_json

        width, height = self.calibration.image_size_px
        all_keypoints = np.zeros((self.n_frames, NUM_JOINTS, 3))
        outside_frames: list[tuple[Path, list[str]]] = []
        for index in range(self.n_frames):
            path = self.keypoints_path(index)
            if not path.is_file():
                raise CaptureFormatError(f"{path}: missing; every frame of recording.wav ({self.n_frames} here) needs "
                                         f"an OpenPose BODY_25 file named <frame:06d>_keypoints.json in "
                                         f"{KEYPOINTS_DIR}/")
            try:
                keypoints = read_openpose_json(path)
            except KeypointFileError as err:
                raise CaptureFormatError(str(err)) from None
            u, v, confidence = keypoints.T
            detected = confidence > 0
            outside = detected & ((u < -0.5) | (u > width - 0.5) | (v < -0.5) | (v > height - 0.5))
            if outside.sum() > 0.5 * max(detected.sum(), 1):
                raise CaptureFormatError(
                    f"{path}: {int(outside.sum())} of {int(detected.sum())} keypoints (pose_keypoints_2d) lie outside "
                    f"the {width} x {height} image of calibration.json's camera.image_size_px; the image size or the "
                    f"keypoints' resolution is wrong")
            if outside.any():
                outside_frames.append((path, [JOINT_NAMES[i] for i in np.flatnonzero(outside)]))
                keypoints[outside, 2] = 0.0
            all_keypoints[index] = keypoints
        if outside_frames:
            path, names = outside_frames[0]
            more = f" (and in {len(outside_frames) - 1} more frames)" if len(outside_frames) > 1 else ""
            warnings.warn(f"{path}: keypoints {names} (pose_keypoints_2d) lie outside the {width} x {height} "
                          f"image{more}; their confidence is set to 0", stacklevel=3)
        return all_keypoints

    def __getitem__(self, index: int) -> Sample:
        cal = self.calibration
        kernels = self.kernels(index)
        pairs = cal.pair_index
        normalized, scale = normalize_kernels(kernels[pairs[:, 0], pairs[:, 1]])
        joints = self.joints3d[index] if self.joints3d is not None else np.full((NUM_JOINTS, 3), np.nan)
        return Sample(
            kernels=normalized, kernel_scale=float(scale), pair_index=pairs, speaker_pos=cal.speaker_positions_m,
            mic_pos=cal.microphone_positions_m, joints3d=joints, keypoints2d=self.keypoints(index),
            intrinsics=cal.intrinsics, image_size=cal.image_size_px, cam_to_world=cal.cam_to_world,
            sample_rate_hz=cal.sample_rate_hz, speed_of_sound=cal.speed_of_sound_m_s, room_id=cal.environment_id,
            room_name=cal.environment_name, frame_id=f"{index:06d}",
            height=np.nan if cal.height_m is None else cal.height_m, is_minor=cal.is_minor,
            age_years=np.nan if cal.age_years is None else cal.age_years, activity=cal.activity,
            source=f"{self.folder / RECORDING_FILE} frame {index}",
        )


def read_raw_capture(folder, **deconvolution) -> RawCapture:
    """Open a raw capture folder: ``RawCapture(folder, **deconvolution)``."""
    return RawCapture(folder, **deconvolution)


def write_raw_capture(folder, recordings: np.ndarray, empty_recordings: np.ndarray,
                      calibration: CaptureCalibration, keypoints: np.ndarray | None = None,
                      joints3d: np.ndarray | None = None, *, wav_format: str = "float32") -> Path:
    """Write a raw capture folder (``docs/raw_capture_format.md``), e.g. from the simulator.

    Args:
        folder: created if needed; refused when it already holds a capture file (nothing is overwritten).
        recordings: (F, M, N) one chirp period per frame, t = 0 at emission (``Recording.recordings``);
            written back to back into recording.wav (frame f at sample first_sample + f N).
        empty_recordings: (M, N) or (E, M, N) empty-room periods, written back to back into empty.wav.
        calibration: positions in the camera frame, camera, chirp plan, subject. Its first_sample
            zero-samples are written before frame 0, and empty_first_sample (an integer, or None for
            0) before the empty room's first period. wav_full_scale is set here for int WAVs.
        keypoints: optional (F, 15, 3) (u, v, confidence), written as OpenPose BODY_25 JSON files.
        joints3d: optional (F, 15, 3) ground truth, camera frame, m -> joints3d.npy.
        wav_format: "float32" (values as they are, wav_full_scale = 1) or "int16" (PCM = value /
            wav_full_scale x 32768, scaled so the peak of both files is 0.99 of full scale;
            wav_full_scale records the factor).

    Returns:
        the folder.
    """
    folder = Path(folder)
    existing = [name for name in (CALIBRATION_FILE, RECORDING_FILE, EMPTY_FILE, KEYPOINTS_DIR, JOINTS3D_FILE)
                if (folder / name).exists()]
    if existing:
        raise CaptureFormatError(f"{folder}: already holds {', '.join(existing)}; write_raw_capture writes new "
                                 f"captures only, choose a new folder")
    recordings = np.asarray(recordings, dtype=float)
    empty = np.asarray(empty_recordings, dtype=float)
    empty = empty[None] if empty.ndim == 2 else empty
    N = calibration.chirp_plan.n_samples
    M = len(calibration.microphone_positions_m)
    if recordings.ndim != 3 or recordings.shape[1:] != (M, N):
        raise CaptureFormatError(f"recordings has shape {recordings.shape}; expected (F, M, N) = (F, {M}, {N})")
    if empty.ndim != 3 or empty.shape[1:] != (M, N):
        raise CaptureFormatError(f"empty_recordings has shape {empty.shape}; expected (M, N) or (E, M, N) "
                                 f"with (M, N) = ({M}, {N})")
    if not (np.all(np.isfinite(recordings)) and np.all(np.isfinite(empty))):
        raise CaptureFormatError("recordings / empty_recordings contain NaN/inf; nothing written")
    empty_lead = calibration.empty_first_sample
    if empty_lead is not None and int(empty_lead) != empty_lead:
        raise CaptureFormatError(f"calibration.empty_first_sample = {empty_lead!r}: the writer needs an integer")
    lead = np.zeros((M, calibration.first_sample))
    signal = np.concatenate([lead] + list(recordings), axis=1)                      # (M, first + F N)
    empty_signal = np.concatenate([np.zeros((M, int(empty_lead or 0)))] + list(empty), axis=1)
    if wav_format == "float32":
        calibration.wav_full_scale = 1.0
        to_wav = lambda x: x.T.astype(np.float32)  # noqa: E731
    elif wav_format == "int16":
        peak = max(np.abs(signal).max(), np.abs(empty_signal).max())
        calibration.wav_full_scale = float(peak / 0.99) if peak > 0 else 1.0
        to_wav = lambda x: np.clip(np.round(x.T / calibration.wav_full_scale * 32768),  # noqa: E731
                                   -32768, 32767).astype(np.int16)
    else:
        raise CaptureFormatError(f"wav_format = {wav_format!r}: use 'float32' or 'int16'")
    rate = int(round(calibration.sample_rate_hz))
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.wavfile.write(folder / RECORDING_FILE, rate, to_wav(signal))
    scipy.io.wavfile.write(folder / EMPTY_FILE, rate, to_wav(empty_signal))
    (folder / CALIBRATION_FILE).write_text(json.dumps(calibration.to_json(), indent=2))
    if keypoints is not None:
        keypoints = np.asarray(keypoints, dtype=float)
        if keypoints.shape != (len(recordings), NUM_JOINTS, 3):
            raise CaptureFormatError(f"keypoints has shape {keypoints.shape}; expected (F, 15, 3) = "
                                     f"({len(recordings)}, 15, 3)")
        (folder / KEYPOINTS_DIR).mkdir(exist_ok=True)
        for f, frame in enumerate(keypoints):
            body25 = np.zeros((25, 3))
            for j, name in enumerate(JOINT_NAMES):
                body25[BODY25_SLOT[name]] = frame[j]
            person = {"person_id": [-1], "pose_keypoints_2d": body25.ravel().round(3).tolist()}
            (folder / KEYPOINTS_DIR / f"{f:06d}_keypoints.json").write_text(
                json.dumps({"version": 1.3, "people": [person]}))
    if joints3d is not None:
        joints3d = np.asarray(joints3d, dtype=float)
        if joints3d.shape != (len(recordings), NUM_JOINTS, 3):
            raise CaptureFormatError(f"joints3d has shape {joints3d.shape}; expected ({len(recordings)}, 15, 3)")
        np.save(folder / JOINTS3D_FILE, joints3d)
    return folder
