"""Training augmentation of synthetic frames: pair subsets, redrawn 2D detections, kernel gain and noise
jitter, mirrored samples.

Pure functions on a *frame* (the dict of tensors :mod:`network.data` builds, before :func:`network.data.collate`)
plus the :class:`Augmentation` configuration. :class:`network.data.SynthFrames` applies :func:`augment_frame`
to every training frame when given an ``Augmentation`` (``network.train`` does so by default for the synthetic
store's training split; validation, evaluation and real captures are never augmented).

What each one does, and what it keeps:

* **pair subset** (:func:`subset_pairs`): a sample keeps a random subset of its speaker-microphone pairs
  (as few as ``min_pairs``), or exactly its co-located pairs (speaker and microphone within
  ``colocated_distance_m``, by geometry) when the rig has them: the real PoseKernel rig has 4 co-located
  pairs, the synthetic default 16. The batch's ``pair_mask`` pads frames with fewer pairs.
* **redrawn detections** (:func:`redraw_keypoints`): the 2D keypoints are drawn again from the stored 3D
  joints and camera by :class:`simulator.detector.DetectorModel` (with the stored ``occluded`` flags), a new
  draw per (seed, epoch, frame), instead of the store's single draw.
* **gain jitter** (:func:`jitter_kernels`): one gain per pair, log-uniform in +-``gain_jitter_db``; a global
  gain would be undone by the per-frame normalisation (:func:`pipeline.deconvolution.normalize_kernels`),
  per-pair gains are not (a real rig's transducers differ). **Noise jitter**: white noise at an SNR drawn
  uniformly in ``noise_snr_db`` relative to the frame's kernel RMS. The kernels are normalised again after.
* **mirror** (:func:`mirror_frame`): x -> -x in the camera frame for joints, speakers and microphones,
  u -> W - 1 - u for keypoints (the intrinsics' cx -> W - 1 - cx, skew negated), left and right joints
  swapped. A mirror is an isometry, so every delay, and so every kernel, stays as it is. Valid only when the
  frame's voxel grid is mirror-symmetric (the default camera grid centred at x = 0 is;
  :func:`grid_is_mirror_symmetric`); otherwise the frame is not mirrored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bodies.joints import FLIP_PERMUTATION
from core.errors import InputError
from network.data import COLOCATED_DISTANCE_M, colocated_pair_mask
from pipeline.deconvolution import normalize_kernels

__all__ = ["Augmentation", "AugmentationError", "augment_frame", "colocated_pairs", "grid_is_mirror_symmetric",
           "jitter_kernels", "mirror_frame", "redraw_keypoints", "subset_pairs"]


class AugmentationError(InputError):
    """An augmentation was configured with impossible values."""


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations a training frame gets, and how strong (defaults: all on).

    Attributes:
        pair_subset_prob: probability that a sample keeps only a subset of its pairs.
        colocated_share: of those, the share that keeps exactly the co-located pairs (when the rig has any).
        min_pairs: the fewest pairs a random subset keeps.
        colocated_distance_m: a speaker and a microphone this close form a co-located pair.
        redraw_keypoints: redraw the 2D detections every epoch from the 3D joints.
        gain_jitter_db: per-pair gain, log-uniform in +- this many dB (0: off).
        noise_prob: probability that white noise is added to a sample's kernels.
        noise_snr_db: (low, high) SNR of that noise relative to the frame's kernel RMS, dB.
        mirror_prob: probability that a sample is mirrored (when its grid allows).
    """

    pair_subset_prob: float = 0.5
    colocated_share: float = 0.5
    min_pairs: int = 2
    colocated_distance_m: float = COLOCATED_DISTANCE_M
    redraw_keypoints: bool = True
    gain_jitter_db: float = 3.0
    noise_prob: float = 0.5
    noise_snr_db: tuple[float, float] = (10.0, 40.0)
    mirror_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("pair_subset_prob", "colocated_share", "noise_prob", "mirror_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise AugmentationError(f"Augmentation.{name}={getattr(self, name)} must be a probability in [0, 1]")
        if int(self.min_pairs) < 1:
            raise AugmentationError(f"Augmentation.min_pairs={self.min_pairs} must be >= 1")
        if not (self.gain_jitter_db >= 0 and self.colocated_distance_m >= 0):
            raise AugmentationError("Augmentation.gain_jitter_db and colocated_distance_m must be >= 0 "
                                    f"(got {self.gain_jitter_db}, {self.colocated_distance_m})")
        low, high = self.noise_snr_db
        if not low <= high:
            raise AugmentationError(f"Augmentation.noise_snr_db={self.noise_snr_db} must be (low, high), low <= high")

    def pair_counts(self, stored_counts) -> list[int]:
        """The pair counts a model trains on when its frames have ``stored_counts``: each stored count and,
        with pair subsets on, every count a subset can keep (``min_pairs`` up to the stored count; the
        co-located subsets lie in that range for the rigs here). A checkpoint records these, so that a
        model trained with subsets is not refused on the real rig's 4 pairs."""
        counts = {int(c) for c in stored_counts}
        if self.pair_subset_prob > 0:
            for n in list(counts):
                counts.update(range(min(int(self.min_pairs), n), n + 1))
        return sorted(counts)


# ---------------------------------------------------------------------------------------------------------
# Pairs
def colocated_pairs(frame: dict, distance_m: float = COLOCATED_DISTANCE_M) -> np.ndarray:
    """(P,) bool: the frame's co-located pairs, by geometry (:func:`network.data.colocated_pair_mask`)."""
    mask = colocated_pair_mask(frame["pair_index"][None], frame["speaker_pos"][None], frame["mic_pos"][None],
                               distance_m)
    return mask[0].numpy()


def subset_pairs(frame: dict, keep: np.ndarray) -> dict:
    """The frame with only the pairs where ``keep`` (P,) is True, kernels normalised again over them (as a
    rig with only those pairs would be). Transducer positions stay: the kept pairs index into them."""
    out = _kept_pairs(frame, keep)
    out["kernels"] = _normalized(out["kernels"].numpy())
    return out


def _kept_pairs(frame: dict, keep: np.ndarray) -> dict:
    """:func:`subset_pairs` without the normalisation (for a caller that normalises after)."""
    keep = np.asarray(keep, bool)
    if keep.shape != (len(frame["pair_index"]),) or not keep.any():
        raise AugmentationError(f"keep must be a (P,) bool array with at least one True, got {keep.shape}")
    out = dict(frame)
    idx = torch.from_numpy(np.flatnonzero(keep))
    out["pair_index"] = frame["pair_index"][idx]
    out["kernels"] = frame["kernels"][idx]
    return out


def _choose_pairs(frame: dict, aug: Augmentation, rng: np.random.Generator) -> np.ndarray | None:
    """Which pairs to keep (None: all). Draws have fixed shapes, so the stream does not depend on the rig."""
    subset_draw, colocated_draw, count_draw = rng.random(3)
    n_pairs = len(frame["pair_index"])
    order = rng.permutation(n_pairs)
    if subset_draw >= aug.pair_subset_prob:
        return None
    colocated = colocated_pairs(frame, aug.colocated_distance_m)
    if colocated.any() and colocated_draw < aug.colocated_share:
        return colocated
    low = min(int(aug.min_pairs), n_pairs)
    count = low + int(count_draw * (n_pairs - low + 1))   # uniform in [low, P]
    keep = np.zeros(n_pairs, bool)
    keep[order[:min(count, n_pairs)]] = True
    return keep


# ---------------------------------------------------------------------------------------------------------
# Kernels
def _normalized(kernels: np.ndarray) -> torch.Tensor:
    normalized, _ = normalize_kernels(np.asarray(kernels, dtype=np.float64))
    return torch.from_numpy(normalized.astype(np.float32))


def jitter_kernels(kernels: torch.Tensor, gain_db: np.ndarray, noise_snr_db: float | None,
                   rng: np.random.Generator) -> torch.Tensor:
    """Per-pair gains (``gain_db`` (P,)) and, unless ``noise_snr_db`` is None, white noise at that SNR relative
    to the RMS of all the frame's kernels; then normalised again (:func:`pipeline.deconvolution.normalize_kernels`:
    by the median over pairs of each pair's RMS). The input need not be normalised: the normalisation divides out
    any global gain, so this equals jittering before it.

    The samples stay float32, as the network reads them (the noise too); the RMS values and the per-pair factors are
    float64, so without noise each kernel is multiplied by one factor, one rounding. The noise's seed is drawn from
    ``rng`` only when noise is added (it is ``rng``'s last draw for the frame)."""
    values = np.ascontiguousarray(kernels.numpy(), dtype=np.float32)
    gains = 10.0 ** (np.asarray(gain_db, float) / 20.0)
    if noise_snr_db is None:
        rms = gains * _pair_rms(values)
    else:
        values = values * gains.astype(np.float32)[:, None]
        rms = _pair_rms(values)
        sigma = np.sqrt(np.mean(rms ** 2)) * 10.0 ** (-float(noise_snr_db) / 20.0)
        # torch's normal generator, seeded from ``rng``: twice as fast as numpy's here, the augmentation's main cost
        noise = torch.randn(values.shape, generator=torch.Generator().manual_seed(int(rng.integers(2**63 - 1))))
        values += noise.numpy() * np.float32(sigma)
        rms, gains = _pair_rms(values), np.ones(len(values))
    scale = float(np.median(rms))
    factors = gains / scale if scale > 0 else gains
    return torch.from_numpy(values * factors.astype(np.float32)[:, None])


def _pair_rms(values: np.ndarray) -> np.ndarray:
    """(P,) float64 RMS of each row of (P, T) float32 values."""
    return np.sqrt(np.einsum("pt,pt->p", values, values, dtype=np.float64) / values.shape[1])


# ---------------------------------------------------------------------------------------------------------
# Keypoints and mirror
def redraw_keypoints(frame: dict, detector, image_size_px, rng: np.random.Generator, occluded=None) -> dict:
    """The frame with 2D detections drawn again from its ``joints3d`` and ``intrinsics`` by ``detector``
    (a :class:`simulator.detector.DetectorModel`), ``occluded`` (15,) bool the stored flags or None."""
    out = dict(frame)
    keypoints = detector.detect(frame["joints3d"].numpy().astype(float), frame["intrinsics"].numpy().astype(float),
                                image_size_px, rng, occluded)
    out["keypoints2d"] = torch.as_tensor(keypoints, dtype=torch.float32)
    return out


def grid_is_mirror_symmetric(grid_to_camera: torch.Tensor, grid_shape, voxel_size_m: float,
                             tolerance_m: float = 1e-4) -> bool:
    """True when x -> -x (camera frame) maps the grid's voxel centres onto themselves: the 8 corner voxel
    centres, mirrored, are the same 8 points (a box with a uniform lattice is fixed by its corners)."""
    pose = np.asarray(grid_to_camera, dtype=np.float64)
    last = np.asarray(grid_shape, float) - 1.0
    corners = np.array([[i, j, k] for i in (0, last[0]) for j in (0, last[1]) for k in (0, last[2])])
    points = (corners + 0.5) * float(voxel_size_m) @ pose[:3, :3].T + pose[:3, 3]
    mirrored = points * [-1.0, 1.0, 1.0]
    distance = np.linalg.norm(mirrored[:, None, :] - points[None, :, :], axis=-1)
    return bool(np.all(distance.min(axis=1) <= tolerance_m))


def mirror_frame(frame: dict, image_width_px: float, occluded=None) -> tuple[dict, np.ndarray | None]:
    """The frame mirrored x -> -x in the camera frame, and the occlusion flags permuted to match.

    Joints, speakers and microphones get x negated; joints and keypoints swap left and right
    (:data:`bodies.joints.FLIP_PERMUTATION`); detected keypoints get u -> W - 1 - u, missed ones stay
    (0, 0, 0); the intrinsics get cx -> W - 1 - cx and skew -> -skew, so projecting a mirrored joint
    gives the mirrored pixel. Kernels, pair indices and the grid stay (see :func:`grid_is_mirror_symmetric`).
    """
    flip = torch.as_tensor(FLIP_PERMUTATION)
    sign = torch.tensor([-1.0, 1.0, 1.0])
    out = dict(frame)
    out["joints3d"] = (frame["joints3d"] * sign)[flip]
    out["speaker_pos"] = frame["speaker_pos"] * sign
    out["mic_pos"] = frame["mic_pos"] * sign
    keypoints = frame["keypoints2d"].clone()
    detected = ~(keypoints == 0).all(dim=1)
    keypoints[detected, 0] = float(image_width_px) - 1.0 - keypoints[detected, 0]
    out["keypoints2d"] = keypoints[flip]
    k = frame["intrinsics"].clone()
    k[0, 2] = float(image_width_px) - 1.0 - k[0, 2]
    k[0, 1] = -k[0, 1]
    out["intrinsics"] = k
    flipped = None if occluded is None else np.asarray(occluded, bool)[FLIP_PERMUTATION]
    return out, flipped


# ---------------------------------------------------------------------------------------------------------
# All of it
def frame_rngs(seed: int, epoch: int, index: int) -> list[np.random.Generator]:
    """Independent generators (pairs, kernels, mirror, detector) for one (seed, epoch, frame): the same
    frame in the same epoch gets the same augmentation, whichever worker reads it and in whatever order."""
    children = np.random.SeedSequence([int(seed), int(epoch), int(index)]).spawn(4)
    return [np.random.default_rng(c) for c in children]


def augment_frame(frame: dict, aug: Augmentation, rngs: list[np.random.Generator], image_size_px,
                  grid_shape, voxel_size_m: float, occluded=None, detector=None) -> dict:
    """``frame`` augmented by ``aug`` (see the module doc): mirror, redrawn keypoints, pair subset, kernel
    jitter, in that order. ``rngs``: :func:`frame_rngs`; ``image_size_px`` (width, height); ``occluded``: the
    stored flags or None; ``detector``: a ``DetectorModel`` (default one when None)."""
    pair_rng, kernel_rng, mirror_rng, detector_rng = rngs
    if mirror_rng.random() < aug.mirror_prob and grid_is_mirror_symmetric(frame["grid_to_camera"], grid_shape,
                                                                            voxel_size_m):
        frame, occluded = mirror_frame(frame, image_size_px[0], occluded)
    if aug.redraw_keypoints:
        if detector is None:
            from simulator.detector import DetectorModel

            detector = DetectorModel()
        frame = redraw_keypoints(frame, detector, image_size_px, detector_rng, occluded)
    keep = _choose_pairs(frame, aug, pair_rng)
    if keep is not None:
        frame = _kept_pairs(frame, keep)          # normalised once, by the jitter below
    gain_db = kernel_rng.uniform(-aug.gain_jitter_db, aug.gain_jitter_db, len(frame["pair_index"]))
    noise_draw, snr_draw = kernel_rng.random(2)
    snr_db = aug.noise_snr_db[0] + snr_draw * (aug.noise_snr_db[1] - aug.noise_snr_db[0])
    out = dict(frame)
    out["kernels"] = jitter_kernels(frame["kernels"], gain_db, snr_db if noise_draw < aug.noise_prob else None,
                                    kernel_rng)
    return out
