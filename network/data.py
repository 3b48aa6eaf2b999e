"""From stored frames to the network's batches: synthetic Zarr stores and real captures alike.

Every frame becomes a dict of tensors (a *frame*), and :func:`collate` stacks frames into the batch
dict that :meth:`network.model.PoseKernelLifter.forward` reads:

=================  =============  ==========================================================
key                shape (batch)  meaning
=================  =============  ==========================================================
``kernels``        (B, P, T)      pose kernels, cropped / zero-padded to ``config.kernel_samples``
                                  and normalised per frame (:func:`pipeline.deconvolution.normalize_kernels`)
``pair_index``     (B, P, 2)      (speaker, microphone) of each kernel row
``pair_mask``      (B, P) bool    True for real pairs, False for the padding of frames with fewer pairs
``speaker_pos``    (B, S, 3)      camera frame, m (zero-padded)
``mic_pos``        (B, M, 3)      camera frame, m (zero-padded)
``keypoints2d``    (B, 15, 3)     (u, v, confidence), pixels
``intrinsics``     (B, 3, 3)      camera matrix
``speed_of_sound`` (B,)           m/s
``grid_to_camera`` (B, 4, 4)      the frame's voxel grid (see below)
``joints3d``       (B, 15, 3)     ground truth, camera frame, m (NaN when unknown)
``is_minor``       (B,) bool      subject under 18
``room_id``        (B,)           room / environment id
``index``          (B,)           frame index in its dataset
=================  =============  ==========================================================

Where the grid goes (no ground truth is used to place it): :func:`frame_grid`, by the config's
``grid_placement``. By default ("camera") every frame, synthetic or real, gets the same grid: level with
the camera (up = camera -y), centred at ``config.grid_center_m`` = (0, 0.2, 3.5) m in the camera frame,
or at ``grid_center_m`` given here (``--grid-center`` on the command lines, for a real rig whose people
stand elsewhere). The real PoseKernel dataset knows no floor, so the synthetic frames do not get one
either: a floor-standing grid would tell a vision-only network the depth of the feet.
``grid_placement="floor"`` stands the grid on the floor of every frame that carries a camera pose
(synthetic frames; raw captures whose ``cam_to_world`` is not the identity).

Kernels: both sources are normalised the same way *after* cropping to the config's length, so a
real rig's unknown gain is gone and amplitudes are in the synthetic range.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from core.errors import DamagedDataError, InputError
from pipeline.deconvolution import normalize_kernels
from pipeline.grid import VoxelGrid, close_to

__all__ = [
    "COLOCATED_DISTANCE_M",
    "colocated_pair_mask",
    "pair_positions",
    "LABEL_KEYS",
    "MODEL_KEYS",
    "REQUIRED_MODEL_KEYS",
    "STACKED_KEYS",
    "DamagedRealDataError",
    "DataError",
    "RealFrames",
    "SynthFrames",
    "batch_to_device",
    "collate",
    "frame_grid",
    "is_zarr_store",
    "list_environments",
    "pair_counts",
    "real_dataset",
    "sample_frame",
    "synthetic_frame",
]

# The batch contract (the table above), defined once. Keys the model reads: REQUIRED_MODEL_KEYS, plus the
# optional pair_mask; everything else in a batch is for losses, metrics and bookkeeping (LABEL_KEYS).
REQUIRED_MODEL_KEYS = ("kernels", "pair_index", "speaker_pos", "mic_pos", "keypoints2d", "intrinsics",
                       "speed_of_sound", "grid_to_camera")
MODEL_KEYS = ("kernels", "pair_index", "pair_mask", "speaker_pos", "mic_pos", "keypoints2d", "intrinsics",
              "speed_of_sound", "grid_to_camera")
LABEL_KEYS = ("joints3d", "is_minor", "room_id", "index")
# Keys of the same shape in every frame, stacked as they are by collate (the others are padded there).
STACKED_KEYS = ("keypoints2d", "intrinsics", "speed_of_sound", "grid_to_camera") + LABEL_KEYS

# Arrays a synthetic frame is built from (synthetic_frame), all that SynthFrames(in_memory=True) reads.
SYNTH_FRAME_FIELDS = ("kernels", "pair_index", "speaker_pos", "mic_pos", "keypoints2d", "intrinsics",
                      "speed_of_sound", "cam_to_world", "joints3d", "is_minor", "room_id")
# Arrays a synthetic store must hold for training and evaluation.
REQUIRED_STORE_ARRAYS = ("kernels", "kernel_scale", "pair_index", "speaker_pos", "mic_pos", "joints3d",
                         "keypoints2d", "intrinsics", "cam_to_world", "room_id", "split", "is_minor",
                         "speed_of_sound")


# A speaker and a microphone this close form a co-located pair: the co-located rigs put the microphone 2 cm
# above its speaker, separated rigs keep them 0.6 m or more apart.
COLOCATED_DISTANCE_M = 0.05


def pair_positions(pair_index: torch.Tensor, speaker_pos: torch.Tensor,
                   mic_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P, 3) speaker and (B, P, 3) microphone of each pair, float32.

    Args: ``pair_index`` (B, P, 2) (speaker, microphone), ``speaker_pos`` (B, S, 3), ``mic_pos`` (B, M, 3).
    Indices are clamped into range, so padded pairs read a real transducer (their ``pair_mask`` is False).
    """
    index = pair_index.long().clamp(min=0)
    speakers, mics = speaker_pos.float(), mic_pos.float()
    speaker = torch.gather(speakers, 1, index[..., 0].clamp(max=speakers.shape[1] - 1)[..., None].expand(-1, -1, 3))
    mic = torch.gather(mics, 1, index[..., 1].clamp(max=mics.shape[1] - 1)[..., None].expand(-1, -1, 3))
    return speaker, mic


def colocated_pair_mask(pair_index: torch.Tensor, speaker_pos: torch.Tensor, mic_pos: torch.Tensor,
                        max_distance_m: float = COLOCATED_DISTANCE_M) -> torch.Tensor:
    """(B, P) bool: pairs whose microphone lies within ``max_distance_m`` of their speaker.

    By the rig's geometry, not by equal indices: in a separated rig speaker i and microphone i are unrelated
    transducers metres apart. Args: ``pair_index`` (B, P, 2), ``speaker_pos`` (B, S, 3), ``mic_pos`` (B, M, 3).
    """
    speaker, mic = pair_positions(pair_index, speaker_pos, mic_pos)
    return torch.linalg.vector_norm(speaker - mic, dim=-1) <= max_distance_m


class DataError(InputError):
    """Training / evaluation data is missing, malformed or does not fit the network's config."""


_IDENTITY = np.eye(4)


# ---------------------------------------------------------------------------------------------------------
# One frame
def _fit_kernels(kernels: np.ndarray, samples: int, where: str) -> np.ndarray:
    """Crop / zero-pad (P, T) kernels to ``samples`` and normalise the frame."""
    kernels = np.asarray(kernels, dtype=np.float64)
    if kernels.ndim != 2 or len(kernels) == 0:
        raise DataError(f"{where}: kernels have shape {kernels.shape}; expected (pairs, samples) with pairs >= 1")
    if not np.all(np.isfinite(kernels)):
        raise DataError(f"{where}: kernels contain NaN/inf; the frame is corrupt (regenerate or drop it)")
    T = kernels.shape[1]
    if T < samples:
        kernels = np.pad(kernels, ((0, 0), (0, samples - T)))
    kernels = kernels[:, :samples]
    normalized, _ = normalize_kernels(kernels)
    return normalized.astype(np.float32)


def _check_rate(rate_hz: float, config, where: str) -> None:
    want = float(config.sample_rate_hz)
    if abs(float(rate_hz) - want) > 1e-6 * want:
        raise DataError(f"{where}: kernels are sampled at {float(rate_hz):g} Hz but the network config "
                        f"{getattr(config, 'name', '')!r} expects sample_rate_hz = {want:g} Hz (delays would be "
                        f"read as wrong distances); resample the data or use a matching config")


def _frame(kernels, pair_index, speaker_pos, mic_pos, keypoints2d, intrinsics, speed_of_sound, grid: VoxelGrid,
           joints3d, is_minor, room_id, index, config, where) -> dict:
    pair_index = np.asarray(pair_index, dtype=np.int64)
    return {
        "kernels": torch.from_numpy(_fit_kernels(kernels, int(config.kernel_samples), where)),
        "pair_index": torch.from_numpy(pair_index),
        "speaker_pos": torch.as_tensor(np.asarray(speaker_pos, dtype=np.float32)),
        "mic_pos": torch.as_tensor(np.asarray(mic_pos, dtype=np.float32)),
        "keypoints2d": torch.as_tensor(np.asarray(keypoints2d, dtype=np.float32)),
        "intrinsics": torch.as_tensor(np.asarray(intrinsics, dtype=np.float32)),
        "speed_of_sound": torch.tensor(float(speed_of_sound), dtype=torch.float32),
        "grid_to_camera": grid.pose_tensor(dtype=torch.float32),
        "joints3d": torch.as_tensor(np.asarray(joints3d, dtype=np.float32)),
        "is_minor": torch.tensor(bool(is_minor)),
        "room_id": torch.tensor(int(room_id)),
        "index": torch.tensor(int(index)),
    }


def frame_grid(config, cam_to_world=None, grid_center_m: Sequence[float] | None = None) -> VoxelGrid:
    """The voxel grid of one frame (see the module doc).

    Args:
        config: the network's config (grid shape, voxel size, ``grid_placement``, ``grid_center_m``).
        cam_to_world: (4, 4) camera pose in a z-up room, or None / the identity when unknown.
        grid_center_m: camera-frame centre overriding ``config.grid_center_m`` ("camera" placement).
    """
    shape, size = tuple(config.grid_shape), float(config.voxel_size_m)
    center = np.asarray(config.grid_center_m if grid_center_m is None else grid_center_m, dtype=float)
    known_pose = cam_to_world is not None and not close_to(np.asarray(cam_to_world, float), _IDENTITY)
    if config.grid_placement == "floor" and known_pose:
        return VoxelGrid.from_camera_pose(np.asarray(cam_to_world, float), center_distance_m=float(center[2]),
                                          shape=shape, voxel_size_m=size)
    return VoxelGrid(shape, size, _centered_pose(tuple(center.tolist()), shape, size).copy())


@functools.lru_cache(maxsize=16)
def _centered_pose(center_m: tuple, shape: tuple, voxel_size_m: float) -> np.ndarray:
    """``VoxelGrid.centered_at(...).grid_to_camera``, computed once per grid: most frames share one (callers copy)."""
    return VoxelGrid.centered_at(center_m, shape=shape, voxel_size_m=voxel_size_m).grid_to_camera


def _to_numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def synthetic_frame(item: dict, config, sample_rate_hz: float | None = None, where: str = "store frame") -> dict:
    """A :class:`pipeline.store_dataset.SyntheticStoreDataset` item as a network frame.

    The grid is :func:`frame_grid` of the config (and of the frame's ``cam_to_world`` for "floor" placement).
    """
    if sample_rate_hz is not None:
        _check_rate(sample_rate_hz, config, where)
    missing = [k for k in ("kernels", "pair_index", "speaker_pos", "mic_pos", "keypoints2d", "intrinsics",
                           "speed_of_sound", "cam_to_world", "joints3d") if k not in item]
    if missing:
        raise DataError(f"{where}: fields {missing} are missing")
    grid = frame_grid(config, _to_numpy(item["cam_to_world"]).astype(float))
    return _frame(_to_numpy(item["kernels"]), _to_numpy(item["pair_index"]), _to_numpy(item["speaker_pos"]),
                  _to_numpy(item["mic_pos"]), _to_numpy(item["keypoints2d"]), _to_numpy(item["intrinsics"]),
                  float(item["speed_of_sound"]), grid, _to_numpy(item["joints3d"]),
                  bool(item.get("is_minor", False)), int(item.get("room_id", 0)), int(item.get("index", 0)),
                  config, where)


def sample_frame(sample, config, grid_center_m: Sequence[float] | None = None, index: int = 0) -> dict:
    """A :class:`pipeline.sample.Sample` (real capture) as a network frame.

    The grid is :func:`frame_grid`: centred at ``grid_center_m`` (camera frame; default the config's),
    or, with "floor" placement and a real camera pose (``cam_to_world`` not the identity), on that floor.
    """
    where = sample.source or f"sample {sample.room_name}/{sample.frame_id}"
    _check_rate(sample.sample_rate_hz, config, where)
    grid = frame_grid(config, sample.cam_to_world, grid_center_m)
    return _frame(sample.kernels, sample.pair_index, sample.speaker_pos, sample.mic_pos, sample.keypoints2d,
                  sample.intrinsics, sample.speed_of_sound, grid, sample.joints3d, sample.is_minor, sample.room_id,
                  index, config, where)


# ---------------------------------------------------------------------------------------------------------
# Datasets
def is_zarr_store(path) -> bool:
    """True for a Zarr store folder (v2 or v3) or an fsspec URL."""
    text = str(path)
    if "://" in text and not text.startswith("file://"):
        return True
    p = Path(text.removeprefix("file://"))
    return p.is_dir() and any((p / name).exists() for name in ("zarr.json", ".zgroup", ".zattrs"))


class SynthFrames(torch.utils.data.Dataset):
    """Frames of a synthetic store as network frames (``SyntheticStoreDataset`` + grid + crop).

    Args:
        url: the store; split, minors, activities, rooms: as for ``SyntheticStoreDataset``.
        config: the network's :class:`network.config.NetworkConfig`.
        augmentation: a :class:`network.augment.Augmentation` to augment every frame (training only), drawn
            per (``seed``, epoch, frame): call :meth:`set_epoch` before each epoch; None (default): as stored.
        in_memory: read every array a frame needs once, here, and serve frames from memory (for stores that
            fit in RAM: no Zarr decoding per frame; DataLoader workers share the arrays copy-on-write).
    Raises:
        DataError: no store there (with the command that makes one), arrays missing, another sample rate.
        pipeline.store_integrity.StoreDamagedError (a core.errors.DamagedDataError): a done room of the
            store lacks a chunk (on open), or a chunk does not decode / holds fill values (on read);
            never read as zeros.
    """

    def __init__(self, url, config, split: str | None = "train", minors: bool | None = None,
                 activities: Iterable[str] | None = None, rooms: Iterable[int] | None = None,
                 augmentation=None, in_memory: bool = False, seed: int = 0):
        from pipeline.store_dataset import StoreFormatError, SyntheticStoreDataset

        self.url, self.config = str(url), config
        local = Path(self.url.removeprefix("file://"))
        if "://" not in self.url and not local.exists():
            raise DataError(f"{self.url}: no synthetic store there. Make one with\n"
                            f"    python -m simulator.generate --rooms 500 --out {self.url}\n"
                            f"(or point --synth at an existing store)")
        try:
            import zarr

            root = zarr.open_group(self.url, mode="r")
            missing = [name for name in REQUIRED_STORE_ARRAYS if name not in root]
        except Exception:   # noqa: BLE001 - the store reader below gives the precise message
            missing = []
        if missing:
            raise DataError(f"{self.url}: the store lacks arrays {missing} that training needs; regenerate it with "
                            f"`python -m simulator.generate`")
        try:
            self.store = SyntheticStoreDataset(self.url, split=split, minors=minors, activities=activities,
                                               rooms=rooms)
        except StoreFormatError as err:
            raise DataError(str(err)) from None
        self.sample_rate_hz = float(self.store.attrs.get("sample_rate_hz", config.sample_rate_hz))
        _check_rate(self.sample_rate_hz, config, self.url)
        self.split = split
        self.augmentation, self.seed, self.epoch = augmentation, int(seed), 0
        size = self.store.attrs.get("image_size_px")
        self.image_size_px = None if size is None else tuple(float(v) for v in size)
        import zarr

        self.has_occluded = "occluded" in zarr.open_group(self.url, mode="r")
        if augmentation is not None and augmentation.redraw_keypoints and self.image_size_px is None:
            raise DataError(f"{self.url}: the store's attributes lack image_size_px, which redrawing the 2D "
                            f"detections needs; regenerate the store or turn augmentation off (--no-augment)")
        self.memory = self._read_all() if in_memory else None

    def _read_all(self) -> dict[str, np.ndarray]:
        """Every array a frame needs, for all of this dataset's frames (damage raised, as when read per frame)."""
        names = SYNTH_FRAME_FIELDS + (("occluded",) if self.has_occluded else ())
        return {name: np.asarray(self.store.values(name)) for name in names}

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose augmentation draws the next frames get (DataLoader workers copy it at each epoch)."""
        self.epoch = int(epoch)

    def occluded(self, i: int) -> np.ndarray | None:
        """(15,) stored occlusion flags of the i-th frame, or None when the store has none."""
        if not self.has_occluded:
            return None
        if self.memory is not None:
            return self.memory["occluded"][i].astype(bool)
        return np.asarray(self.store.values("occluded", int(self.store.frames[i])), dtype=bool)

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> dict:
        if self.memory is None:
            item = self.store[i]
        else:
            item = {name: values[i] for name, values in self.memory.items()}
            item["index"] = int(self.store.frames[i])
        frame = synthetic_frame(item, self.config, None, where=f"{self.url} frame {int(item['index'])}")
        if self.augmentation is None:
            return frame
        from network.augment import augment_frame, frame_rngs

        return augment_frame(frame, self.augmentation, frame_rngs(self.seed, self.epoch, int(item["index"])),
                             self.image_size_px, self.config.grid_shape, float(self.config.voxel_size_m),
                             occluded=self.occluded(i))


class RealFrames(torch.utils.data.Dataset):
    """Real captures (any sequence of :class:`pipeline.sample.Sample`) as network frames.

    Args:
        samples: a ``PoseKernelDataset``, a ``RawCapture``, a list of samples, ...
        config: the network's config.
        indices: which samples to keep (default: all).
        grid_center_m: the grid's centre in the camera frame (default the config's; see the module doc).
    """

    def __init__(self, samples, config, indices: Sequence[int] | None = None,
                 grid_center_m: Sequence[float] | None = None, environments: Sequence[str] = ()):
        self.samples, self.config = samples, config
        self.indices = list(range(len(samples))) if indices is None else [int(i) for i in indices]
        center = config.grid_center_m if grid_center_m is None else grid_center_m
        self.grid_center_m = tuple(float(v) for v in center)
        self.environments = list(environments)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        j = self.indices[i]
        return sample_frame(self.samples[j], self.config, self.grid_center_m, index=j)

    def subset(self, positions: Sequence[int]) -> RealFrames:
        return RealFrames(self.samples, self.config, [self.indices[p] for p in positions], self.grid_center_m,
                          self.environments)

    def environment_of(self, i: int) -> str:
        """Environment (PoseKernel layout) or capture folder name of the i-th frame."""
        j = self.indices[i]
        frames = getattr(self.samples, "frames", None)
        if frames is not None and hasattr(frames[j], "environment"):
            return frames[j].environment
        names = getattr(self.samples, "names", None)
        return names[j] if names is not None else ""


def pair_counts(frames) -> list[int]:
    """The distinct speaker-microphone pair counts per frame of a dataset, without reading every frame.

    A synthetic store has one count (its pair axis); real captures have one rig per environment, so the
    first frame of each environment (or capture folder) is read.
    """
    if isinstance(frames, torch.utils.data.Subset):
        frames = frames.dataset
    if isinstance(frames, SynthFrames):
        import zarr

        return [int(zarr.open_group(frames.url, mode="r")["pair_index"].shape[1])]
    if isinstance(frames, RealFrames):
        first: dict[str, int] = {}
        for i in range(len(frames)):
            first.setdefault(frames.environment_of(i), i)
        return sorted({len(frames.samples[frames.indices[i]].pair_index) for i in first.values()})
    return sorted({len(frames[i]["pair_index"]) for i in range(len(frames))})


class _RawCaptures:
    """Several raw capture folders read as one sequence of samples."""

    def __init__(self, captures, names):
        self.captures, self.names_of_capture = captures, names
        self.offsets = np.cumsum([0] + [len(c) for c in captures])
        self.names = [n for n, c in zip(names, captures) for _ in range(len(c))]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, j: int):
        c = int(np.searchsorted(self.offsets, j, side="right") - 1)
        return self.captures[c][j - int(self.offsets[c])]


def list_environments(path) -> list[str]:
    """Environments of a real-data folder: ``environmentN`` folders (PoseKernel layout) or raw capture
    sub-folders (each holding ``calibration.json``); one raw capture folder is its own environment."""
    from pipeline.real_captures import CALIBRATION_FILE, environment_folders, natural_key

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no real-capture folder there; {REAL_DATA_HELP}")
    if (root / CALIBRATION_FILE).is_file():
        return [root.name]
    envs = environment_folders(root)
    if envs:
        return [p.name for p in envs]
    return [p.name for p in sorted(root.iterdir(), key=lambda p: natural_key(p.name))
            if p.is_dir() and (p / CALIBRATION_FILE).is_file()]


class DamagedRealDataError(DataError, DamagedDataError):
    """A real capture's file is damaged: cut short, unreadable, or changed after it was checked."""


def real_dataset(path, config, environments: Sequence[str] | None = None,
                 grid_center_m: Sequence[float] | None = None, detector="default", seed: int = 0,
                 require_ground_truth: bool = False) -> RealFrames:
    """Real captures at ``path`` as network frames, the layout chosen automatically.

    * ``path/environmentN/...`` -> :class:`pipeline.real_captures.PoseKernelDataset` (the public dataset);
    * ``path/calibration.json`` -> one :class:`pipeline.real_captures.RawCapture`;
    * ``path/<name>/calibration.json`` -> several raw captures, ``environments`` naming the sub-folders.

    Args:
        environments: environment (or capture folder) names to keep; None = all.
        detector, seed: the PoseKernel layout's 2D detections (see ``PoseKernelDataset``).
        require_ground_truth: drop nothing, but raise when a frame has no 3D ground truth.
    Raises:
        DataError: every file of every chosen frame is checked here, so a missing or malformed one is
            refused before any training or evaluation work (its message names the environment, frame,
            file and fix); DamagedRealDataError when a file is cut short or unreadable.
    """
    from pipeline.real_captures import CALIBRATION_FILE, CaptureFormatError, PoseKernelDataset, RawCapture

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no real-capture folder there; {REAL_DATA_HELP}")
    available = list_environments(root)
    if not available:
        raise DataError(f"{root}: neither the PoseKernel layout (environmentN/audio_sensor_loc.npy, "
                        f"environmentN/<frame>/rir.npy, gnd.npy) nor raw capture folders (calibration.json); "
                        f"{REAL_DATA_HELP}")
    if environments is not None:
        unknown = sorted(set(environments) - set(available))
        if unknown:
            raise DataError(f"{root}: environments {unknown} do not exist; it has {available}")
    chosen = available if environments is None else [e for e in available if e in set(environments)]
    try:
        if (root / CALIBRATION_FILE).is_file():
            samples = _RawCaptures([RawCapture(root, kernel_samples=_raw_kernel_samples(root, config))], [root.name])
        elif (root / chosen[0] / "audio_sensor_loc.npy").is_file() or chosen[0].startswith("environment"):
            samples = PoseKernelDataset(root, environments=chosen, kernel_samples=int(config.kernel_samples),
                                        detector=detector, seed=seed)
        else:
            samples = _RawCaptures([RawCapture(root / name, kernel_samples=_raw_kernel_samples(root / name, config))
                                    for name in chosen], chosen)
    except CaptureFormatError as err:
        raise (DamagedRealDataError if isinstance(err, DamagedDataError) else DataError)(str(err)) from None
    frames = RealFrames(samples, config, grid_center_m=grid_center_m, environments=chosen)
    # Checked here, not when a frame is read, so data at another rate stops nothing mid-epoch.
    if isinstance(samples, _RawCaptures):
        for capture in samples.captures:
            _check_rate(capture.calibration.sample_rate_hz, config, str(capture.folder / CALIBRATION_FILE))
    else:
        _check_rate(samples.sample_rate_hz, config, f"{root} (the PoseKernel dataset is recorded at 96 kHz)")
    if require_ground_truth and isinstance(samples, _RawCaptures):
        for capture, name in zip(samples.captures, samples.names_of_capture):
            if capture.joints3d is None:
                raise DataError(f"{root / name if name != root.name else root}: no joints3d.npy (3D ground truth); "
                                f"training and evaluation need it")
    return frames


def _raw_kernel_samples(folder: Path, config) -> int:
    """Deconvolve a raw capture to the config's kernel length (at most one chirp period)."""
    import json

    from simulator.signals import ChirpPlan

    try:
        plan = json.loads((folder / "calibration.json").read_text()).get("chirp_plan", {})
        period = ChirpPlan(**{k: plan[k] for k in ("band_hz", "n_speakers", "duration_s", "sample_rate_hz",
                                                   "taper_s", "guard_hz") if k in plan}).n_samples
    except Exception:   # noqa: BLE001 - RawCapture reports a bad calibration precisely
        return int(config.kernel_samples)
    return int(min(int(config.kernel_samples), period))


REAL_DATA_HELP = (
    "fine-tuning needs real captures. Either download the public PoseKernel dataset (Yang et al., "
    "'PoseKernelLifter: Metric Lifting of 3D Human Pose using Sound', CVPR 2022, arXiv:2112.00216; project page "
    "https://saic-ny.github.io/PoseKernelLifter/) and pass its root (holding environment1/, environment2/, ...) "
    "with --real DIR, or record your own rig in the raw capture format of docs/raw_capture_format.md "
    "(calibration.json, recording.wav, empty.wav, keypoints/, joints3d.npy) and pass that folder."
)


# ---------------------------------------------------------------------------------------------------------
# Batches
def collate(frames: Sequence[dict]) -> dict:
    """Stack frames into a batch; pairs (and speakers, microphones) padded to the batch's largest count.

    ``pair_mask`` (B, P) is True for a frame's real pairs. Padded kernels are zero, padded pairs point at
    speaker 0 / microphone 0 (valid indices, masked out), padded transducer positions are zero.
    """
    if not frames:
        raise DataError("collate: empty batch")
    B = len(frames)
    P = max(len(f["pair_index"]) for f in frames)
    S = max(len(f["speaker_pos"]) for f in frames)
    M = max(len(f["mic_pos"]) for f in frames)
    T = frames[0]["kernels"].shape[-1]
    if any(f["kernels"].shape[-1] != T for f in frames):
        raise DataError("collate: frames have kernels of different lengths; build them with one config")
    kernels = torch.zeros(B, P, T, dtype=torch.float32)
    pair_index = torch.zeros(B, P, 2, dtype=torch.int64)
    pair_mask = torch.zeros(B, P, dtype=torch.bool)
    speakers = torch.zeros(B, S, 3, dtype=torch.float32)
    mics = torch.zeros(B, M, 3, dtype=torch.float32)
    for b, f in enumerate(frames):
        p = len(f["pair_index"])
        kernels[b, :p] = f["kernels"]
        pair_index[b, :p] = f["pair_index"]
        pair_mask[b, :p] = True
        speakers[b, :len(f["speaker_pos"])] = f["speaker_pos"]
        mics[b, :len(f["mic_pos"])] = f["mic_pos"]
    batch = {"kernels": kernels, "pair_index": pair_index, "pair_mask": pair_mask, "speaker_pos": speakers,
             "mic_pos": mics}
    for key in STACKED_KEYS:
        batch[key] = torch.stack([f[key] for f in frames])
    return batch


def batch_to_device(batch: dict, device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def model_inputs(batch: dict) -> dict:
    """The keys of ``batch`` that the model reads."""
    return {k: batch[k] for k in MODEL_KEYS if k in batch}
