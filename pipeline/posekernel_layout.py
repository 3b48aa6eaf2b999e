"""The public PoseKernel dataset's folder layout, read as :class:`pipeline.sample.Sample`.

::

    root/environmentN/audio_sensor_loc.npy    (4, 3) co-located speaker/microphone pairs, camera frame, m
    root/environmentN/<frame>/rir.npy          (4, T) impulse response of each pair, empty room removed, 96 kHz
    root/environmentN/<frame>/gnd.npy          (49, 3) joints, camera frame, m, FrankMocap order
    root/environmentN/<frame>/keypoints.json   optional: the frame's 2D detections (OpenPose BODY_25 JSON)

Pair i is speaker i with microphone i (P = 4). The dataset has no images: 2D keypoints are the
ground truth projected through a configurable camera (Azure Kinect colour defaults) and corrupted by
:class:`simulator.detector.DetectorModel` (``detector=None``: the exact projection, confidence 1).

Frames of your own in this layout (to predict poses, ``network.predict``) may lack ``gnd.npy``: such a
frame needs ``keypoints.json``, a detector's output for the frame's image in that camera (its joints
are then unknown: NaN). When a frame has ``keypoints.json``, its detections are used, with or
without ``gnd.npy``: real detections are what the network should see.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.checks import check_finite_array, check_number, check_whole
from core.errors import DamagedDataError
from pipeline.capture_files import (
    CaptureFormatError, DamagedCaptureError, joints15, joints_shape_ok, npy_header, read_npy,
)
from pipeline.sample import Sample
from rooms.camera import AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX, AZURE_KINECT_COLOR_1080P_INTRINSICS
from simulator.deconvolution import normalize_kernels

__all__ = ["DATASET_SAMPLE_RATE_HZ", "DATASET_SPEED_OF_SOUND_M_S", "ENVIRONMENT_FOLDER", "KEYPOINTS_FILE", "PoseKernelDataset",
           "environment_folders", "natural_key", "project_keypoints"]

DATASET_SAMPLE_RATE_HZ = 96_000.0
KEYPOINTS_FILE = "keypoints.json"
DATASET_SPEED_OF_SOUND_M_S = 343.2     # 20 degrees C; the dataset records no temperature


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



#: The PoseKernel dataset's environment folders: ``environment1``, ``environment2``, ...
ENVIRONMENT_FOLDER = re.compile(r"environment\d+")


def natural_key(name: str) -> list:
    """Sort key that orders numbers by value: environment2 before environment10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]



def environment_folders(root: Path) -> list[Path]:
    """The ``environmentN`` folders of ``root``, in natural order (none: an empty list)."""
    return sorted((p for p in Path(root).iterdir() if p.is_dir() and ENVIRONMENT_FOLDER.fullmatch(p.name)),
                  key=lambda p: natural_key(p.name))


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
            (15, 3); default :class:`simulator.detector.DetectorModel`; None: exact projection.
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
            from simulator.detector import DetectorModel

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
        for folder in self._chosen_environments(environments):
            self._add_environment(folder)
        for frame in self.frames:
            self._frame_arrays(frame)

    def _chosen_environments(self, environments) -> list[Path]:
        """The ``environmentN`` folders to read, in natural order; every named one must exist."""
        folders = environment_folders(self.root)
        if environments is not None:
            wanted = set(environments)
            missing = wanted - {p.name for p in folders}
            if missing:
                raise CaptureFormatError(f"{self.root}: no environment folder(s) {sorted(missing)}")
            folders = [p for p in folders if p.name in wanted]
        if not folders:
            raise CaptureFormatError(f"{self.root}: no environmentN folders; expected the PoseKernel layout "
                                     f"environment1/audio_sensor_loc.npy, environment1/0/rir.npy, ...")
        return folders

    def _add_environment(self, folder: Path) -> None:
        """Read one environment's sensor positions and list its frame folders (their files are checked later)."""
        path = folder / "audio_sensor_loc.npy"
        fix = f"re-copy {folder.name} from the PoseKernel dataset"
        shape, _ = npy_header(path, "speaker/microphone positions, camera frame, m", fix)
        if len(shape) != 2 or shape[0] < 1 or shape[1] != 3:
            raise CaptureFormatError(f"{path}: has shape {shape}; expected (pairs, 3) positions of co-located "
                                     f"speaker/microphone pairs in metres; {fix}")
        self._sensors[folder.name] = read_npy(path, "speaker/microphone positions, camera frame, m", fix)
        frame_folders = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                               key=lambda p: natural_key(p.name))
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

    def _frame_arrays(self, frame: _DatasetFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(P, T) impulse responses, (15, 3) joints (NaN without ``gnd.npy``) and the (15, 3) detections of
        ``keypoints.json`` (None without it) of one frame, after every check of the layout.

        The headers are checked first (cheap, and a cut-short copy is named as such), then the values.
        """
        sensors_path = frame.folder.parent / "audio_sensor_loc.npy"
        pairs = len(self._sensors[frame.environment])
        rir_path, gnd_path = frame.folder / "rir.npy", frame.folder / "gnd.npy"
        fix = (f"re-copy frame {frame.folder.name} of {frame.environment} from the PoseKernel dataset, or move "
               f"the folder {frame.folder} out of the dataset")
        rir_what = f"{frame.environment} frame {frame.folder.name}: impulse responses, one row per pair"
        gnd_what = f"{frame.environment} frame {frame.folder.name}: 3D joints, camera frame, m"
        shape, _ = npy_header(rir_path, rir_what, fix)
        if len(shape) != 2 or shape[0] != pairs or shape[1] < 1:
            transposed = len(shape) == 2 and shape[1] == pairs
            raise CaptureFormatError(
                f"{rir_path}: has shape {shape}; expected ({pairs}, T), one row per pair of {sensors_path}"
                + (" (transposed? save rir.T)" if transposed else "") + f"; {fix}")
        keypoints_path = frame.folder / KEYPOINTS_FILE
        keypoints = None
        if keypoints_path.is_file():
            from pipeline.keypoint_formats import read_openpose_json

            keypoints = read_openpose_json(keypoints_path, self.image_size_px)
        if keypoints is not None and not gnd_path.exists():
            return self._checked_rir(rir_path, rir_what, fix), np.full((15, 3), np.nan), keypoints
        if not gnd_path.exists():
            raise CaptureFormatError(
                f"{gnd_path}: missing, and the frame has no {KEYPOINTS_FILE} either; a frame needs its 3D joints "
                f"(gnd.npy) or, without ground truth, its 2D detections ({KEYPOINTS_FILE}, OpenPose BODY_25 JSON "
                f"of the frame's image); {fix}")
        shape, _ = npy_header(gnd_path, gnd_what, fix)
        if not joints_shape_ok(shape, per_frame=False):
            raise CaptureFormatError(f"{gnd_path}: has shape {shape}; expected one pose, (49, 3) in FrankMocap's "
                                     f"order or (15, 3); {fix}")
        rir = self._checked_rir(rir_path, rir_what, fix)
        joints = joints15(read_npy(gnd_path, gnd_what, fix), gnd_path, "joints", per_frame=False, fix=fix)
        return rir, joints, keypoints

    @staticmethod
    def _checked_rir(rir_path: Path, rir_what: str, fix: str) -> np.ndarray:
        rir = read_npy(rir_path, rir_what, fix)
        silent = np.flatnonzero(np.abs(rir).max(axis=1) == 0)
        if len(silent):
            raise CaptureFormatError(f"{rir_path}: row(s) {silent.tolist()} are all zero (silent pair); {fix}")
        return rir

    def __getitem__(self, index: int) -> Sample:
        frame = self.frames[index]
        sensors = self._sensors[frame.environment]
        try:
            rir, joints, detected = self._frame_arrays(frame)
        except CaptureFormatError as err:
            # Every frame passed these checks when the dataset was opened: the file changed since.
            if isinstance(err, DamagedDataError):
                raise
            raise DamagedCaptureError(f"{err} (it changed on disk after the dataset was opened)") from None
        if self.kernel_samples is not None:
            K = int(self.kernel_samples)
            rir = np.pad(rir, ((0, 0), (0, max(0, K - rir.shape[1]))))[:, :K]
        if detected is not None:
            keypoints = detected
        elif self.detector is None:
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
