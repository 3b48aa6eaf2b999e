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

Every error names the file and the field at fault and says what to do.
"""
from __future__ import annotations

from core.errors import InputError
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from bodies.joints import FRANKMOCAP49_INDICES, JOINT_NAMES
from pipeline.deconvolution import (
    DEFAULT_BAND_TAPER_HZ, DEFAULT_KERNEL_SAMPLES, DEFAULT_REGULARIZATION, deconvolve, estimate_emission_offset,
    fractional_shift, normalize_kernels,
)
from pipeline.sample import Sample
from rooms.camera import AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX, AZURE_KINECT_COLOR_1080P_INTRINSICS
from simulator.signals import ChirpPlan

__all__ = [
    "CaptureCalibration", "CaptureFormatError", "PoseKernelDataset", "RawCapture", "project_keypoints",
    "read_raw_capture", "write_raw_capture", "CALIBRATION_FILE", "RECORDING_FILE", "EMPTY_FILE",
    "KEYPOINTS_DIR", "JOINTS3D_FILE",
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


class CaptureFormatError(InputError):
    """A capture file is missing, unreadable or inconsistent; the message names the file and the field."""


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


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise CaptureFormatError(f"{path}: missing ({what}); the dataset layout needs it in every frame folder")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - any reader failure becomes a clear format error
        raise CaptureFormatError(f"{path}: cannot be read as a .npy array ({err}); re-export it with numpy.save")
    if array.dtype.kind not in "fiu":
        raise CaptureFormatError(f"{path}: has dtype {array.dtype}; expected numbers ({what})")
    array = array.astype(float)
    if not np.all(np.isfinite(array)):
        raise CaptureFormatError(f"{path}: contains NaN/inf values ({what}); repair or drop this frame")
    return array


def _joints15(array: np.ndarray, path: Path, field_name: str) -> np.ndarray:
    """(..., 49, >=3) FrankMocap or (..., 15, >=3) joints -> (..., 15, 3), checked to be in metres."""
    if array.ndim >= 3 and array.shape[0] == 1 and array.ndim == 3 and array.shape[1] in (15, 49):
        array = array[0]
    if array.ndim < 2 or array.shape[-2] not in (15, 49) or array.shape[-1] < 3:
        raise CaptureFormatError(f"{path}: {field_name} has shape {array.shape}; expected (49, 3) in FrankMocap's "
                                 f"order or (15, 3) in {JOINT_NAMES[:3]}... order")
    joints = array[..., :3]
    if joints.shape[-2] == 49:
        joints = joints[..., FRANKMOCAP49_INDICES, :]
    if np.abs(joints).max() > 30:
        raise CaptureFormatError(f"{path}: {field_name} reaches {np.abs(joints).max():.0f}; joints must be in "
                                 f"metres (camera frame), these look like millimetres -- divide by 1000")
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
        self.intrinsics = np.array(AZURE_KINECT_COLOR_1080P_INTRINSICS if intrinsics is None else intrinsics, float)
        if self.intrinsics.shape != (3, 3):
            raise CaptureFormatError(f"intrinsics has shape {self.intrinsics.shape}; expected (3, 3)")
        self.image_size_px = tuple(int(v) for v in image_size_px)
        if detector == "default":
            from pipeline.detector import DetectorModel

            detector = DetectorModel()
        self.detector = detector
        self.seed = int(seed)
        if kernel_samples is not None and (int(kernel_samples) != kernel_samples or kernel_samples < 1):
            raise CaptureFormatError(f"kernel_samples = {kernel_samples!r} must be a positive integer or None")
        self.kernel_samples = kernel_samples
        self.sample_rate_hz = float(sample_rate_hz)
        self.speed_of_sound_m_s = float(speed_of_sound_m_s)
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
            sensors = _load_npy(folder / "audio_sensor_loc.npy", "speaker/microphone positions, camera frame, m")
            if sensors.ndim != 2 or sensors.shape[1] != 3:
                raise CaptureFormatError(f"{folder / 'audio_sensor_loc.npy'}: has shape {sensors.shape}; expected "
                                         f"(pairs, 3) positions of co-located speaker/microphone pairs")
            self._sensors[folder.name] = sensors
            frame_folders = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name))
            if not frame_folders:
                raise CaptureFormatError(f"{folder}: no frame folders (expected {folder}/0/rir.npy, ...)")
            room_id = int(folder.name[len("environment"):])
            for i, frame in enumerate(frame_folders):
                self.frames.append(_DatasetFrame(folder.name, room_id, i, frame))

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int) -> Sample:
        frame = self.frames[index]
        sensors = self._sensors[frame.environment]
        rir_path, gnd_path = frame.folder / "rir.npy", frame.folder / "gnd.npy"
        rir = _load_npy(rir_path, "impulse responses, one row per pair")
        if rir.ndim != 2 or len(rir) != len(sensors):
            raise CaptureFormatError(
                f"{rir_path}: has shape {rir.shape}; expected ({len(sensors)}, T), one row per pair of "
                f"{frame.folder.parent / 'audio_sensor_loc.npy'}" + (" (transposed?)" if rir.ndim == 2 and
                                                                      rir.shape[1] == len(sensors) else ""))
        silent = np.flatnonzero(np.abs(rir).max(axis=1) == 0)
        if len(silent):
            raise CaptureFormatError(f"{rir_path}: row(s) {silent.tolist()} are all zero (silent pair); drop the "
                                     f"frame or the pair")
        if self.kernel_samples is not None:
            K = int(self.kernel_samples)
            rir = np.pad(rir, ((0, 0), (0, max(0, K - rir.shape[1]))))[:, :K]
        joints = _joints15(_load_npy(gnd_path, "3D joints, camera frame, m"), gnd_path, "joints")
        if joints.shape != (NUM_JOINTS, 3):
            raise CaptureFormatError(f"{gnd_path}: holds {joints.shape[:-2]} poses; expected one (49, 3) pose")
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
        wav_full_scale: integer WAVs map full scale (32767 / 2147483647) to this value, float WAVs are
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
        """Parse and check ``calibration.json``'s content; errors name ``path`` and the field."""

        def fail(field_name, message):
            raise CaptureFormatError(f"{path}: field '{field_name}' {message}")

        def get(mapping, key, prefix="", required=True, default=None):
            if not isinstance(mapping, dict) or key not in mapping:
                if required:
                    fail(prefix + key, "is missing; see docs/raw_capture_format.md for the schema")
                return default
            return mapping[key]

        def positions(key):
            value = np.asarray(get(data, key), dtype=float)
            if value.ndim != 2 or value.shape[1] != 3 or len(value) == 0 or not np.all(np.isfinite(value)):
                fail(key, f"has shape {value.shape}; give a list of [x, y, z] positions in metres, camera frame")
            return value

        if get(data, "format", required=False, default=RAW_FORMAT_NAME) != RAW_FORMAT_NAME:
            fail("format", f"is {data['format']!r}; expected {RAW_FORMAT_NAME!r}")
        if get(data, "version", required=False, default=1) != RAW_FORMAT_VERSION:
            fail("version", f"is {data['version']!r}; this reader reads version {RAW_FORMAT_VERSION}")
        speakers, microphones = positions("speakers_m"), positions("microphones_m")
        plan_data = get(data, "chirp_plan")
        try:
            plan = ChirpPlan(**{k: plan_data[k] for k in ("band_hz", "n_speakers", "duration_s", "sample_rate_hz",
                                                           "taper_s", "guard_hz") if k in plan_data})
        except (TypeError, ValueError) as err:
            fail("chirp_plan", f"is invalid: {err}")
        rate = float(get(data, "sample_rate_hz", required=False, default=plan.sample_rate_hz))
        if rate != plan.sample_rate_hz:
            fail("sample_rate_hz", f"= {rate:g} differs from chirp_plan.sample_rate_hz = {plan.sample_rate_hz:g}; "
                                   f"make them equal")
        if plan.n_speakers != len(speakers):
            fail("chirp_plan.n_speakers", f"= {plan.n_speakers} but speakers_m lists {len(speakers)} speakers")
        if "speed_of_sound_m_s" in data:
            speed = float(data["speed_of_sound_m_s"])
        elif "temperature_c" in data:
            from rooms.air import speed_of_sound_m_s

            speed = float(speed_of_sound_m_s(float(data["temperature_c"])))
        else:
            fail("speed_of_sound_m_s", "is missing; give it (m/s) or temperature_c (degrees C)")
        if not 300 < speed < 380:
            fail("speed_of_sound_m_s", f"= {speed:g} m/s is not the speed of sound in air (~343 m/s)")
        camera = get(data, "camera")
        intrinsics = np.asarray(get(camera, "intrinsics", "camera."), dtype=float)
        if intrinsics.shape != (3, 3) or not np.allclose(intrinsics[2], [0, 0, 1]) or intrinsics[0, 0] <= 0:
            fail("camera.intrinsics", "must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels")
        size = [int(v) for v in get(camera, "image_size_px", "camera.")]
        if len(size) != 2 or min(size) <= 0:
            fail("camera.image_size_px", f"= {size}; give [width, height] in pixels")
        pose = np.asarray(get(camera, "cam_to_world", "camera.", required=False, default=np.eye(4).tolist()), float)
        if pose.shape != (4, 4) or not np.allclose(pose[3], [0, 0, 0, 1]):
            fail("camera.cam_to_world", "must be a 4 x 4 rigid transform (last row 0, 0, 0, 1)")
        pairs = get(data, "pairs", required=False)
        if pairs is not None:
            pairs = np.asarray(pairs, dtype=np.int64)
            if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.min() < 0 or pairs[:, 0].max() >= len(speakers) \
                    or pairs[:, 1].max() >= len(microphones):
                fail("pairs", f"must list [speaker, microphone] indices below ({len(speakers)}, {len(microphones)})")
        recording = get(data, "recording", required=False, default={})
        first = get(recording, "first_sample", required=False, default=0)
        empty_first = get(recording, "empty_first_sample", required=False, default=0)
        for name, value, nullable in (("first_sample", first, False), ("empty_first_sample", empty_first, True)):
            if value is None and nullable:
                continue
            if not isinstance(value, (int, float)) or value < 0:
                fail(f"recording.{name}", f"= {value!r} must be a sample index >= 0" + (" or null" if nullable else ""))
        if int(first) != first:
            fail("recording.first_sample", f"= {first!r} must be an integer sample index")
        for name, expected in (("file", RECORDING_FILE), ("empty_file", EMPTY_FILE)):
            if get(recording, name, required=False, default=expected) != expected:
                fail(f"recording.{name}", f"must be {expected!r} (the format's fixed file names)")
        full_scale = float(get(recording, "wav_full_scale", required=False, default=1.0))
        if not (np.isfinite(full_scale) and full_scale > 0):
            fail("recording.wav_full_scale", f"= {full_scale!r} must be > 0")
        environment = get(data, "environment", required=False, default={})
        subject = get(data, "subject", required=False, default={})
        return cls(
            speaker_positions_m=speakers, microphone_positions_m=microphones, intrinsics=intrinsics,
            image_size_px=tuple(size), chirp_plan=plan, speed_of_sound_m_s=speed, cam_to_world=pose, pairs=pairs,
            first_sample=int(first), empty_first_sample=empty_first, wav_full_scale=full_scale,
            environment_id=int(get(environment, "id", required=False, default=0)),
            environment_name=str(get(environment, "name", required=False, default="")),
            height_m=get(subject, "height_m", required=False), is_minor=bool(get(subject, "is_minor", required=False)),
            age_years=get(subject, "age_years", required=False),
            activity=str(get(data, "activity", required=False, default="") or ""),
        )


def _read_wav(path: Path, calibration: CaptureCalibration, min_samples: int, role: str) -> np.ndarray:
    """(M, N) float64 signals of a capture WAV, checked against the calibration."""
    if not path.is_file():
        raise CaptureFormatError(f"{path}: missing ({role}); see docs/raw_capture_format.md")
    header = path.open("rb").read(8)
    size = path.stat().st_size
    if len(header) == 8 and header[:4] == b"RIFF" and size < int.from_bytes(header[4:8], "little") + 8:
        raise CaptureFormatError(f"{path}: truncated -- {size} bytes on disk but its RIFF header announces "
                                 f"{int.from_bytes(header[4:8], 'little') + 8}; the file was cut short, copy it again")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate, data = scipy.io.wavfile.read(path)
        except Exception as err:  # noqa: BLE001 - struct/ValueError from a broken header
            raise CaptureFormatError(f"{path}: not a readable WAV file ({type(err).__name__}: {err}); "
                                     f"re-export it as PCM or IEEE-float WAV")
    for warning in caught:
        if "EOF" in str(warning.message) or "premature" in str(warning.message).lower():
            raise CaptureFormatError(f"{path}: truncated -- {warning.message}; the file was cut short, copy it again")
    if float(rate) != calibration.sample_rate_hz:
        raise CaptureFormatError(f"{path}: sample rate is {rate} Hz but calibration.json's sample_rate_hz is "
                                 f"{calibration.sample_rate_hz:g} Hz; record at that rate (or fix the calibration)")
    data = data.reshape(len(data), -1)
    M = len(calibration.microphone_positions_m)
    if data.shape[1] != M:
        raise CaptureFormatError(f"{path}: has {data.shape[1]} channels but calibration.json's microphones_m lists "
                                 f"{M} microphones (channel m = microphone m)")
    if data.dtype == np.int16:
        signals, full = data.astype(float) / 32767.0, 32767
    elif data.dtype == np.int32:
        signals, full = data.astype(float) / 2147483647.0, 2147483647
    elif data.dtype.kind == "f":
        signals, full = data.astype(float), None
    else:
        raise CaptureFormatError(f"{path}: sample format {data.dtype} is not supported; use int16, int32 or float32")
    if full is not None:
        clipped = np.mean(np.abs(data.astype(np.int64)) >= full, axis=0)
        for m in np.flatnonzero(clipped > 1e-4):
            warnings.warn(f"{path}: channel {m} is clipped on {100 * clipped[m]:.2f} % of its samples; "
                          f"lower the recording gain", stacklevel=3)
    signals = signals.T * calibration.wav_full_scale
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

    Args:
        folder: the capture folder.
        kernel_samples, regularization, align, band_taper_hz: passed to ``deconvolve``.
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
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise CaptureFormatError(f"{path}: not valid JSON ({err})")
        self.calibration = calibration = CaptureCalibration.from_json(data, path)
        plan = calibration.chirp_plan
        self.period = N = plan.n_samples
        if kernel_samples > N:
            raise CaptureFormatError(f"kernel_samples = {kernel_samples} exceeds the chirp period {N} samples")
        self.deconvolution = dict(kernel_samples=kernel_samples, regularization=regularization, align=align,
                                  band_taper_hz=band_taper_hz)
        self.chirps = plan.chirps()
        self.bands_hz = plan.speaker_bands_hz()
        self.recording = _read_wav(self.folder / RECORDING_FILE, calibration, calibration.first_sample + N,
                                   "the recording with the person")
        self.n_frames = (self.recording.shape[1] - calibration.first_sample) // N
        empty_start = calibration.empty_first_sample
        empty = _read_wav(self.folder / EMPTY_FILE, calibration, int(np.ceil(empty_start or 0)) + N,
                          "the empty room's recording")
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
        self.joints3d = None
        joints_path = self.folder / JOINTS3D_FILE
        if joints_path.is_file():
            joints = _joints15(_load_npy(joints_path, "3D joints per frame, camera frame, m"), joints_path, "joints3d")
            if joints.ndim != 3 or len(joints) < self.n_frames:
                raise CaptureFormatError(f"{joints_path}: holds {joints.shape[:-2]} poses but recording.wav has "
                                         f"{self.n_frames} frames; give one (15 or 49, 3) pose per frame")
            self.joints3d = joints

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
        """(15, 3) (u, v, confidence) of frame ``index`` from its OpenPose BODY_25 file.

        Keypoints outside the image get confidence 0 with a warning (a detector cannot see them, and one
        stray joint should not discard a frame); when most confident keypoints are outside, the image size
        or intrinsics of the calibration are wrong and the read fails.
        """
        from pipeline.keypoint_formats import KeypointFileError, read_openpose_json

        path = self.keypoints_path(index)
        if not path.is_file():
            raise CaptureFormatError(f"{path}: missing; every frame needs an OpenPose BODY_25 file named "
                                     f"<frame:06d>_keypoints.json in {KEYPOINTS_DIR}/")
        try:
            keypoints = read_openpose_json(path)
        except KeypointFileError as err:
            raise CaptureFormatError(str(err)) from err
        width, height = self.calibration.image_size_px
        u, v, confidence = keypoints.T
        detected = confidence > 0
        outside = detected & ((u < -0.5) | (u > width - 0.5) | (v < -0.5) | (v > height - 0.5))
        if outside.sum() > 0.5 * max(detected.sum(), 1):
            raise CaptureFormatError(
                f"{path}: {int(outside.sum())} of {int(detected.sum())} keypoints (pose_keypoints_2d) lie outside "
                f"the {width} x {height} image of calibration.json's camera.image_size_px; the image size or the "
                f"keypoints' resolution is wrong")
        if outside.any():
            names = [JOINT_NAMES[i] for i in np.flatnonzero(outside)]
            warnings.warn(f"{path}: keypoints {names} (pose_keypoints_2d) lie outside the {width} x {height} "
                          f"image; their confidence is set to 0", stacklevel=2)
            keypoints = keypoints.copy()
            keypoints[outside, 2] = 0.0
        return keypoints

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
        folder: created if needed; existing capture files are overwritten.
        recordings: (F, M, N) one chirp period per frame, t = 0 at emission (``Recording.recordings``);
            written back to back into recording.wav (frame f at sample first_sample + f N).
        empty_recordings: (M, N) or (E, M, N) empty-room periods, written back to back into empty.wav.
        calibration: positions in the camera frame, camera, chirp plan, subject. Its first_sample
            zero-samples are written before frame 0, and empty_first_sample (an integer, or None for
            0) before the empty room's first period. wav_full_scale is set here for int WAVs.
        keypoints: optional (F, 15, 3) (u, v, confidence), written as OpenPose BODY_25 JSON files.
        joints3d: optional (F, 15, 3) ground truth, camera frame, m -> joints3d.npy.
        wav_format: "float32" (values as they are, wav_full_scale = 1) or "int16" (scaled so the peak
            of both files is 0.99 of full scale; wav_full_scale records the factor).

    Returns:
        the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
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
        to_wav = lambda x: np.round(x.T / calibration.wav_full_scale * 32767).astype(np.int16)  # noqa: E731
    else:
        raise CaptureFormatError(f"wav_format = {wav_format!r}: use 'float32' or 'int16'")
    rate = int(round(calibration.sample_rate_hz))
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
