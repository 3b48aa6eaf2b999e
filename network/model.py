"""PoseKernelLifter: the multi-stage 3D CNN that lifts sound and sight to metric 3D pose.

Paper section 3.3, eq. 8 and Fig. 5::

    {P_i(X)} = g_theta( phi_v(X; I), max_j phi_a(K_j(X)) )

Inside :meth:`PoseKernelLifter.forward`, on the model's device (stored volumes would be ~30 MB a
frame, see DESIGN.md):

1. audio: each pair's pose kernel is cropped to ``kernel_samples``, turned into its envelope (widened
   for the voxel size when ``antialias_encoding``, see
   :func:`pipeline.spatial_encoding.antialiased_envelope`) and read out on the voxel grid at the pair's
   round-trip delay (eq. 5-7,
   :func:`pipeline.spatial_encoding.spatial_encoding`): (B, P, X, Y, Z). The present pairs go
   through one shared stack of three 3x3x3 convolutions as a batch of single-channel volumes
   (phi_a) and are max-pooled across pairs; absent pairs (``pair_mask`` False) take no part, so
   any number and any order of pairs gives the same features. A frame with no pair gets zeros.
2. vision: each joint's 2D keypoint becomes a Gaussian heatmap sampled at every voxel's
   projection (eq. 9, :func:`pipeline.visual_encoding.visual_encoding`): 15 channels (phi_v).
3. fusion: concat(audio, visual) -> 3x3x3 conv -> ``channels`` audio-visual features.
4. stages (convolutional pose machine): stage 1 maps the features to 15 joint heatmaps;
   stage s > 1 maps concat(features, stage s-1 prediction). Every stage is returned, for the
   intermediate supervision of eq. 10 (:func:`network.heatmaps.heatmap_loss`).

``use_audio=False`` / ``use_vision=False`` replace the respective features by zeros (the layers keep
their shapes, so checkpoints of ablations load the same way).
"""
from __future__ import annotations

from core.errors import InputError
import torch
from torch import nn

from bodies.joints import NUM_JOINTS
from network.config import NetworkConfig
from network.data import REQUIRED_MODEL_KEYS, pair_positions
from pipeline.grid import voxel_centers_camera
from pipeline.spatial_encoding import antialiased_envelope, kernel_envelope, spatial_encoding
from pipeline.visual_encoding import keypoint_heatmaps, visual_encoding

# Number of shared 3D convolutions applied to each pair's encoding (paper: "three 3D convolutional filters").
AUDIO_CONVS = 3

REQUIRED_KEYS = REQUIRED_MODEL_KEYS     # the batch contract lives in network.data


class ModelInputError(InputError):
    """The batch given to the network is missing a key or has inconsistent shapes."""


def _norm(kind: str, channels: int, groups: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "group":
        groups = max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


def conv_block(in_channels: int, out_channels: int, norm: str, groups: int) -> nn.Sequential:
    """3x3x3 convolution (same padding) + normalisation + ReLU."""
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=(norm == "none")),
        _norm(norm, out_channels, groups),
        nn.ReLU(inplace=True),
    )


class PoseKernelLifter(nn.Module):
    """Multi-stage 3D CNN over audio (pose kernel) and visual (2D keypoint) encodings.

    Args:
        config: sizes and switches, see :class:`network.config.NetworkConfig`.
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        if not isinstance(config, NetworkConfig):
            raise TypeError(f"config must be a NetworkConfig, got {type(config).__name__}")
        self.config = config
        c, a, norm, groups = config.channels, config.audio_channels, config.norm, config.norm_groups
        self.num_joints = NUM_JOINTS
        # phi_a: shared over pairs, one single-channel volume in.
        self.audio_net = nn.Sequential(*[conv_block(1 if i == 0 else a, a, norm, groups) for i in range(AUDIO_CONVS)])
        self.fuse = conv_block(a + NUM_JOINTS, c, norm, groups)
        self.stages = nn.ModuleList()
        for s in range(config.stages):
            in_channels = c if s == 0 else c + NUM_JOINTS
            layers = [conv_block(in_channels if i == 0 else c, c, norm, groups) for i in range(config.convs_per_stage)]
            head = nn.Conv3d(c, NUM_JOINTS, kernel_size=1)
            # Heads start at zero output: the targets are ~99.9 % zeros, and a head with random weights
            # spends its first hundreds of steps only learning to be silent (measured on the small
            # store, config tiny, Adam 1e-3: 82 cm validation MPJPE after 200 steps from the default
            # initialisation, 27 cm after 80 from zero). Gradients still reach the head's weights,
            # since its input features are not zero.
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            layers.append(head)
            self.stages.append(nn.Sequential(*layers))

        self._compiled: dict[str, object] = {}

    def compile_convolutions(self, **options) -> PoseKernelLifter:
        """Compile the convolution stacks with ``torch.compile`` (fuses normalisation and ReLU into
        the convolutions' neighbours); returns self.

        The pair pooling (a Python loop over frames) stays eager, and the compiled wrappers are kept
        outside the module tree, so ``state_dict`` keys do not change and checkpoints load either way.
        Its speed-up on a GPU: README, "Network", and ``experiments/results/gpu``.
        """
        compiled = {"audio_net": torch.compile(self.audio_net, **options), "fuse": torch.compile(self.fuse, **options)}
        compiled.update({f"stage{i}": torch.compile(stage, **options) for i, stage in enumerate(self.stages)})
        self._compiled = compiled
        return self

    def _run(self, name: str, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self._compiled.get(name, module)(x)

    # ------------------------------------------------------------------------------------------
    # Encodings

    def _check_batch(self, batch: dict) -> None:
        missing = [k for k in REQUIRED_KEYS if k not in batch]
        if missing:
            raise ModelInputError(f"batch is missing {missing}; a batch needs {list(REQUIRED_KEYS)} (+ optional pair_mask)")
        kernels = batch["kernels"]
        if kernels.ndim != 3:
            raise ModelInputError(f"kernels must be (B, P, T), got {tuple(kernels.shape)}")
        b, p, _ = kernels.shape
        expected = {
            "pair_index": (b, p, 2), "keypoints2d": (b, NUM_JOINTS, 3), "intrinsics": (b, 3, 3),
            "speed_of_sound": (b,), "grid_to_camera": (b, 4, 4),
        }
        for key, shape in expected.items():
            if tuple(batch[key].shape) != shape:
                raise ModelInputError(f"{key} must have shape {shape} to match kernels {tuple(kernels.shape)}, "
                                      f"got {tuple(batch[key].shape)}")
        for key in ("speaker_pos", "mic_pos"):
            pos = batch[key]
            if pos.ndim != 3 or pos.shape[0] != b or pos.shape[2] != 3:
                raise ModelInputError(f"{key} must be (B, N, 3) with B = {b}, got {tuple(pos.shape)}")
        mask = batch.get("pair_mask")
        if mask is not None and tuple(mask.shape) != (b, p):
            raise ModelInputError(f"pair_mask must be (B, P) = ({b}, {p}), got {tuple(mask.shape)}")

    def voxel_centers(self, grid_to_camera: torch.Tensor) -> torch.Tensor:
        """(B, X, Y, Z, 3) voxel centres in the camera frame for (B, 4, 4) grid poses."""
        cfg = self.config
        return voxel_centers_camera(grid_to_camera.float(), cfg.grid_shape, cfg.voxel_size_m)

    def pair_mask(self, batch: dict) -> torch.Tensor:
        """(B, P) bool: the pairs that take part (``pair_mask`` if given, else all)."""
        kernels = batch["kernels"]
        mask = batch.get("pair_mask")
        if mask is None:
            return torch.ones(kernels.shape[:2], dtype=torch.bool, device=kernels.device)
        return mask.to(device=kernels.device, dtype=torch.bool)

    def audio_encoding(self, batch: dict, centers: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 5-7 for every pair: (B, P, X, Y, Z) envelope read at each voxel's round-trip delay.

        Pairs masked out are encoded too (with their index clamped into range); the network ignores them.
        """
        cfg = self.config
        kernels = batch["kernels"][..., :cfg.kernel_samples].float()
        speaker, mic = pair_positions(batch["pair_index"], batch["speaker_pos"], batch["mic_pos"])
        if centers is None:
            centers = self.voxel_centers(batch["grid_to_camera"])
        envelopes = kernel_envelope(kernels)
        if cfg.antialias_encoding:
            speed = float(batch["speed_of_sound"].float().min())
            envelopes = antialiased_envelope(envelopes, cfg.voxel_size_m, speed, cfg.sample_rate_hz)
        return spatial_encoding(envelopes, speaker, mic, centers, batch["speed_of_sound"].float(), cfg.sample_rate_hz)

    def visual_encoding(self, batch: dict, centers: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 9: (B, 15, X, Y, Z) 2D keypoint heatmaps sampled at every voxel's projection."""
        cfg = self.config
        if centers is None:
            centers = self.voxel_centers(batch["grid_to_camera"])
        heatmaps = keypoint_heatmaps(batch["keypoints2d"].float(), cfg.image_size_px, cfg.keypoint_sigma_px,
                                     cfg.heatmap_stride)
        return visual_encoding(heatmaps, batch["intrinsics"].float(), centers, cfg.image_size_px, cfg.heatmap_stride)

    def audio_features(self, encodings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """phi_a on the present pairs, max-pooled across pairs: (B, P, X, Y, Z) -> (B, A, X, Y, Z)."""
        b, p = encodings.shape[:2]
        grid = encodings.shape[2:]
        flat_mask = mask.reshape(-1)
        present = encodings.reshape(b * p, 1, *grid)[flat_mask]
        features = self._run("audio_net", self.audio_net, present) if present.shape[0] else present.new_zeros((0, self.config.audio_channels, *grid))
        counts = mask.sum(1).tolist()
        pooled, start = [], 0
        for n in counts:
            if n == 0:
                pooled.append(features.new_zeros((self.config.audio_channels, *grid)))
            else:
                pooled.append(features[start:start + n].amax(0))
            start += n
        return torch.stack(pooled)

    # ------------------------------------------------------------------------------------------

    def forward(self, batch: dict) -> list[torch.Tensor]:
        """One (B, 15, X, Y, Z) heatmap volume per stage, last stage last.

        Args:
            batch: tensors on the model's device: ``kernels`` (B, P, T), ``pair_index`` (B, P, 2) long
                (speaker, microphone), ``speaker_pos`` (B, S, 3), ``mic_pos`` (B, M, 3) camera frame,
                ``keypoints2d`` (B, 15, 3) pixels + confidence, ``intrinsics`` (B, 3, 3),
                ``speed_of_sound`` (B,), ``grid_to_camera`` (B, 4, 4), optional ``pair_mask`` (B, P) bool.
        """
        self._check_batch(batch)
        cfg = self.config
        b = batch["kernels"].shape[0]
        dtype = next(self.parameters()).dtype
        # The encodings are geometry: keep them in float32 even under autocast.
        with torch.autocast(device_type=batch["kernels"].device.type, enabled=False):
            centers = self.voxel_centers(batch["grid_to_camera"])
            if cfg.use_vision:
                visual = self.visual_encoding(batch, centers)
            else:
                visual = centers.new_zeros((b, NUM_JOINTS, *cfg.grid_shape))
            encodings = self.audio_encoding(batch, centers) if cfg.use_audio else None
        if cfg.use_audio:
            audio = self.audio_features(encodings.to(dtype), self.pair_mask(batch))
        else:
            audio = visual.new_zeros((b, cfg.audio_channels, *cfg.grid_shape), dtype=dtype)
        features = self._run("fuse", self.fuse, torch.cat([audio, visual.to(audio.dtype)], dim=1))
        outputs = []
        previous = None
        for i, stage in enumerate(self.stages):
            x = features if previous is None else torch.cat([features, previous.to(features.dtype)], dim=1)
            previous = self._run(f"stage{i}", stage, x)
            outputs.append(previous)
        return outputs


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def synthetic_batch(config: NetworkConfig, batch_size: int = 1, num_pairs: int = 4, seed: int = 0,
                    num_samples: int | None = None, carrier_hz: float = 25_000.0,
                    device=None) -> tuple[dict, torch.Tensor]:
    """A geometry-only example for tests and benchmarks (no store needed).

    A standing canonical body (``network.baselines.canonical_skeleton``, 1.5-1.9 m) stands ~3 m in
    front of a level camera (1920 x 1080, f = 1000 px) whose grid is centred on it. Every joint is a
    point reflector: each co-located speaker/microphone pair (scattered around the camera) hears a
    Gaussian-enveloped ``carrier_hz`` tone at the joint's round-trip delay (eq. 5). The 2D keypoints
    are the joints' exact projections (confidence 1).

    Returns:
        (batch dict as :meth:`PoseKernelLifter.forward` takes it, joints3d (B, 15, 3) camera frame).
    """
    import math

    import numpy as np

    from network.baselines import canonical_skeleton
    from pipeline.grid import VoxelGrid

    rng = np.random.default_rng(seed)
    num_samples = int(num_samples or config.kernel_samples)
    fs, speed = config.sample_rate_hz, 343.0
    width, height = config.image_size_px
    focal = 1000.0
    kernels, speakers, joints_all, keypoints, poses, intrinsics = [], [], [], [], [], []
    for _ in range(batch_size):
        stature = rng.uniform(1.5, 1.9)
        joints = canonical_skeleton(stature)  # feet at origin, y down
        joints = joints + np.array([rng.uniform(-0.3, 0.3), 1.2, rng.uniform(2.7, 3.3)])  # camera 1.2 m above floor
        joints[:, 2] += rng.normal(0, 0.05, len(joints))
        centre = joints.mean(0)
        grid = VoxelGrid.centered_at(centre, shape=config.grid_shape, voxel_size_m=config.voxel_size_m)
        k = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]])
        uvw = joints @ k.T
        kp = np.concatenate([uvw[:, :2] / uvw[:, 2:], np.ones((len(joints), 1))], 1)
        pos = np.stack([rng.uniform(-1.0, 1.0, num_pairs), rng.uniform(-0.5, 0.5, num_pairs),
                        rng.uniform(-0.2, 0.2, num_pairs)], 1)
        t = np.arange(num_samples) / fs
        kern = np.zeros((num_pairs, num_samples))
        for p in range(num_pairs):
            delays = 2 * np.linalg.norm(joints - pos[p], axis=1) / speed
            for d in delays:
                kern[p] += np.exp(-0.5 * ((t - d) / 1e-4) ** 2) * np.cos(2 * math.pi * carrier_hz * (t - d))
        kern /= np.abs(kern).max()
        kernels.append(kern)
        speakers.append(pos)
        joints_all.append(joints)
        keypoints.append(kp)
        poses.append(grid.grid_to_camera)
        intrinsics.append(k)

    def tensor(values, dtype=torch.float32):
        return torch.as_tensor(np.stack(values), dtype=dtype, device=device)

    pair_index = torch.arange(num_pairs, device=device)[None, :, None].expand(batch_size, num_pairs, 2).contiguous()
    batch = {
        "kernels": tensor(kernels), "pair_index": pair_index, "speaker_pos": tensor(speakers),
        "mic_pos": tensor(speakers), "keypoints2d": tensor(keypoints), "intrinsics": tensor(intrinsics),
        "speed_of_sound": torch.full((batch_size,), speed, device=device), "grid_to_camera": tensor(poses),
        "pair_mask": torch.ones(batch_size, num_pairs, dtype=torch.bool, device=device),
    }
    return batch, tensor(joints_all)
