"""CoarseToFineLifter: find the body on a coarse grid, then place each joint on a fine cube around it.

The paper's network (:mod:`network.model`) runs three convolutions per speaker-microphone pair and
six stages on one 5 cm grid; its cost grows with the pair count and the grid's volume. This one,
after VoxelPose (a coarse proposal grid, then a fine grid around the person) and integral pose
regression (soft-argmax volumes trained with an L1 loss in metres):

1. Coarse stage, on the config's grid (about 10 cm voxels over the whole volume):
   - audio: each pair's kernel envelope, anti-aliased for the voxel size
     (:func:`pipeline.spatial_encoding.antialiased_envelope`), is read out at every voxel's round-trip
     delay, and the pairs are pooled by order-invariant statistics (max, mean, standard deviation,
     mean of logs: :func:`pipeline.spatial_encoding.pair_statistics`), so any count and order of
     pairs works and the cost does not grow with the pair count beyond the read-out;
   - vision: each joint's 2D keypoint as a Gaussian of the pixel distance between the voxel's
     projection and the keypoint, times its confidence (:func:`pipeline.visual_encoding.keypoint_rays`);
   - their product per joint (vision times the pairs' geometric mean: a no-learning localiser);
   - a small 3D U-Net maps these to one volume per joint, decoded by a soft-argmax into metres.
2. Fine stage, per joint, on a cube of ``fine_cube`` voxels of ``fine_voxel_m`` centred on the
   coarse estimate (detached: the cube is where to look, not something to learn through): the same
   encodings at the cube's voxels (only this joint's ray), a learned joint embedding, a 3D CNN
   shared by all joints, and a soft-argmax.

Both stages return joints in the camera frame (metres); the training loss is the L1 distance of
both to the truth (:func:`joint_l1_loss`). Shapes: B frames, P pairs, J = 15 joints.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bodies.joints import NUM_JOINTS
from network.config import NetworkConfig
from network.data import pair_positions
from pipeline.grid import voxel_centers_camera
from pipeline.spatial_encoding import antialiased_envelope, kernel_envelope, pair_statistics, spatial_encoding
from pipeline.visual_encoding import keypoint_rays

__all__ = ["CoarseToFineLifter", "LifterOutput", "joint_l1_loss", "soft_argmax_points"]

AUDIO_STATISTICS = 4          # max, mean, standard deviation, mean of logs over pairs


@dataclass
class LifterOutput:
    """What :meth:`CoarseToFineLifter.forward` returns.

    Attributes:
        joints: (B, J, 3) final joints, camera frame, metres.
        coarse_joints: (B, J, 3) the coarse stage's joints.
        coarse_logits: (B, J, X, Y, Z) the coarse stage's volumes (before the softmax).
        fine_centers: (B, J, 3) centres of the fine cubes (the detached coarse joints).
    """

    joints: torch.Tensor
    coarse_joints: torch.Tensor
    coarse_logits: torch.Tensor
    fine_centers: torch.Tensor


def soft_argmax_points(logits: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Expected position under softmax(logits) over the last ``points.ndim - 2`` axes.

    Args:
        logits: (B, J, *S) one volume per joint.
        points: (B, J or 1, *S, 3) the position of every cell, metres.
    Returns:
        (B, J, 3) the softmax-weighted mean position of each joint.
    """
    b, j = logits.shape[:2]
    weights = torch.softmax(logits.reshape(b, j, -1).float(), dim=-1)
    flat = points.reshape(points.shape[0], points.shape[1], -1, 3).float()
    return torch.einsum("bjn,bjnc->bjc", weights, flat.expand(b, j, -1, -1))


def joint_l1_loss(joints: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute coordinate error (metres) over the joints whose truth is finite (and ``mask``)."""
    valid = torch.isfinite(truth).all(-1)
    if mask is not None:
        valid = valid & mask
    if not bool(valid.any()):
        return joints.sum() * 0.0
    error = (joints - torch.nan_to_num(truth)).abs().sum(-1)
    return (error * valid).sum() / (3.0 * valid.sum())


def _block(in_channels: int, out_channels: int, groups: int = 4) -> nn.Sequential:
    groups = max(g for g in range(1, min(groups, out_channels) + 1) if out_channels % g == 0)
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.GroupNorm(groups, out_channels), nn.ReLU(inplace=True))


class _UNet3d(nn.Module):
    """Two levels: full resolution, then half; the half-resolution features widen the receptive field
    to the whole body (about 1 m at 10 cm voxels) at a quarter of the cost."""

    def __init__(self, in_channels: int, channels: int, out_channels: int):
        super().__init__()
        self.down = nn.Sequential(_block(in_channels, channels), _block(channels, channels))
        self.bottom = nn.Sequential(nn.MaxPool3d(2, ceil_mode=True), _block(channels, 2 * channels),
                                    _block(2 * channels, 2 * channels))
        self.up = nn.Sequential(_block(3 * channels, channels), _block(channels, channels))
        self.head = nn.Conv3d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down(x)
        low = self.bottom(skip)
        low = nn.functional.interpolate(low, size=skip.shape[2:], mode="trilinear", align_corners=False)
        return self.head(self.up(torch.cat([skip, low], dim=1)))


class CoarseToFineLifter(nn.Module):
    """Coarse grid over the volume, then a fine cube per joint; soft-argmax decoding in metres.

    Args:
        config: a :class:`network.config.NetworkConfig` with ``arch="coarse_fine"``: ``grid_shape`` and
            ``voxel_size_m`` give the coarse grid, ``fine_cube`` and ``fine_voxel_m`` the cubes,
            ``channels`` the width of both networks.
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        c = config.channels
        inputs = AUDIO_STATISTICS + 2 * NUM_JOINTS          # audio statistics, rays, rays x audio
        self.coarse = _UNet3d(inputs, c, NUM_JOINTS)
        self.joint_embedding = nn.Embedding(NUM_JOINTS, c)
        self.fine_in = _block(AUDIO_STATISTICS + 2, c)      # audio statistics, this joint's ray, ray x audio
        self.fine = nn.Sequential(_block(c, c), _block(c, c), _block(c, c), nn.Conv3d(c, 1, 1))
        # Soft-argmax heads start flat (zero logits): every cell equally likely, the grid's centre as the
        # first guess, and gradients that move the mass toward the truth from the first step.
        for head in (self.coarse.head, self.fine[-1]):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    # -- encodings (geometry, float32) --------------------------------------------------------------
    def _pairs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        speaker, mic = pair_positions(batch["pair_index"], batch["speaker_pos"], batch["mic_pos"])
        mask = batch.get("pair_mask")
        mask = torch.ones(speaker.shape[:2], dtype=torch.bool, device=speaker.device) if mask is None else mask.bool()
        return speaker, mic, mask

    def _audio(self, envelopes, speaker, mic, mask, points, speed) -> torch.Tensor:
        """(B, 4, *S) pair statistics at ``points`` (B, *S, 3) with S three axes."""
        encodings = spatial_encoding(envelopes, speaker, mic, points, speed, self.config.sample_rate_hz)
        return pair_statistics(encodings, mask)

    def _envelopes(self, batch: dict, voxel_m: float) -> torch.Tensor:
        """The kernels' envelopes, anti-aliased for ``voxel_m`` when the config says so; the envelope itself is computed once per
        forward (``batch["_envelopes"]``, set by :meth:`forward`) and shared by both stages."""
        cfg = self.config
        envelopes = batch.get("_envelopes")
        if envelopes is None:
            envelopes = kernel_envelope(batch["kernels"][..., :cfg.kernel_samples].float())
        if not cfg.antialias_encoding:
            return envelopes
        speed = float(batch["speed_of_sound"].float().min())
        return antialiased_envelope(envelopes, voxel_m, speed, cfg.sample_rate_hz)

    # -- stages ---------------------------------------------------------------------------------------
    def coarse_stage(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, J, X, Y, Z) logits and (B, J, 3) soft-argmax joints on the coarse grid."""
        cfg = self.config
        centers = voxel_centers_camera(batch["grid_to_camera"].float(), cfg.grid_shape, cfg.voxel_size_m)
        with torch.autocast(device_type=centers.device.type, enabled=False):
            rays = keypoint_rays(batch["keypoints2d"].float(), batch["intrinsics"].float(),
                                 centers[:, None].expand(-1, NUM_JOINTS, -1, -1, -1, -1),
                                 cfg.image_size_px, cfg.keypoint_sigma_px)          # (B, J, X, Y, Z)
            if cfg.use_audio:
                speaker, mic, mask = self._pairs(batch)
                audio = self._audio(self._envelopes(batch, cfg.voxel_size_m), speaker, mic, mask, centers,
                                    batch["speed_of_sound"].float())
            else:
                audio = rays.new_zeros((rays.shape[0], AUDIO_STATISTICS, *cfg.grid_shape))
            if not cfg.use_vision:
                rays = torch.zeros_like(rays)
            evidence = rays * torch.exp(audio[:, 3:4]) if cfg.use_audio else rays
        logits = self.coarse(torch.cat([audio, rays, evidence], dim=1))
        return logits, soft_argmax_points(logits, centers[:, None])

    def fine_cubes(self, centers_m: torch.Tensor) -> torch.Tensor:
        """(B, J, F, F, F, 3) voxel centres of axis-aligned cubes around (B, J, 3) camera-frame points."""
        n, size = self.config.fine_cube, self.config.fine_voxel_m
        steps = (torch.arange(n, device=centers_m.device, dtype=centers_m.dtype) - (n - 1) / 2) * size
        offsets = torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), dim=-1)   # (F, F, F, 3)
        return centers_m[:, :, None, None, None, :] + offsets

    def fine_stage(self, batch: dict, centers_m: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) joints placed on fine cubes around ``centers_m`` (B, J, 3)."""
        cfg = self.config
        b, n = centers_m.shape[0], cfg.fine_cube
        cubes = self.fine_cubes(centers_m)                                                  # (B, J, F, F, F, 3)
        with torch.autocast(device_type=cubes.device.type, enabled=False):
            rays = keypoint_rays(batch["keypoints2d"].float(), batch["intrinsics"].float(), cubes,
                                 cfg.image_size_px, cfg.keypoint_sigma_px * cfg.fine_voxel_m / cfg.voxel_size_m)
            if not cfg.use_vision:
                rays = torch.zeros_like(rays)
            if cfg.use_audio:
                speaker, mic, mask = self._pairs(batch)
                points = cubes.reshape(b, NUM_JOINTS * n, n, n, 3)
                audio = self._audio(self._envelopes(batch, cfg.fine_voxel_m), speaker, mic, mask, points,
                                    batch["speed_of_sound"].float())
                audio = audio.reshape(b, AUDIO_STATISTICS, NUM_JOINTS, n, n, n).transpose(1, 2)
                evidence = rays * torch.exp(audio[:, :, 3])
            else:
                audio = rays.new_zeros((b, NUM_JOINTS, AUDIO_STATISTICS, n, n, n))
                evidence = rays
        x = torch.cat([audio, rays[:, :, None], evidence[:, :, None]], dim=2)               # (B, J, 6, F, F, F)
        x = self.fine_in(x.reshape(b * NUM_JOINTS, -1, n, n, n))
        joint_ids = torch.arange(NUM_JOINTS, device=x.device).repeat(b)
        x = x + self.joint_embedding(joint_ids)[:, :, None, None, None].to(x.dtype)
        logits = self.fine(x).reshape(b, NUM_JOINTS, n, n, n)
        return soft_argmax_points(logits, cubes)

    def forward(self, batch: dict) -> LifterOutput:
        """Args: the batch of :meth:`network.model.PoseKernelLifter.forward` (same keys and shapes)."""
        if self.config.use_audio:
            with torch.autocast(device_type=batch["kernels"].device.type, enabled=False):
                batch = {**batch, "_envelopes": kernel_envelope(
                    batch["kernels"][..., :self.config.kernel_samples].float())}
        coarse_logits, coarse_joints = self.coarse_stage(batch)
        centers = coarse_joints.detach()
        joints = self.fine_stage(batch, centers)
        return LifterOutput(joints=joints, coarse_joints=coarse_joints, coarse_logits=coarse_logits,
                            fine_centers=centers)
