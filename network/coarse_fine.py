"""CoarseToFineLifter: find the body on a coarse grid, then place each joint on a fine tube along its ray.

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
2. Fine stage, per joint, around the coarse estimate (detached: it says where to look, not something
   to learn through), on a cube of ``fine_cube`` voxels of ``fine_voxel_m`` (``fine_shape="cube"``) or
   on a tube along the joint's viewing ray (``fine_shape="ray"``, :meth:`CoarseToFineLifter.ray_tubes`):
   the same encodings at its points (only this joint's ray), a learned joint embedding, a 3D CNN
   shared by all joints, and a soft-argmax. A tube also samples the coarse stage's volumes of all
   joints (log-probabilities), so that a weak reflector such as a hand is placed with the body around
   it in view.
Between the two (``depth_search``, :class:`DepthSearch`): the coarse stage places the body only to about its
voxel, and each joint's tube is centred there. A 1D network reads every joint's audio statistics along its line
of sight (the tube's axis) at once and picks one depth offset for the whole body; the tubes are centred at the
coarse joints moved by it. One joint's profile alone has the echoes of every body part on it; all of them
together, shifted as one, are where the body is.
3. Refinement (``refine_joints``, :class:`JointRefiner`): the fine stage places each joint on its own;
   a small MLP over all joints at once (their positions relative to the body, lines of sight, the fine
   stage's spread in depth and the keypoints' confidences) moves each joint along its line of sight,
   after the 2D-to-3D lifting networks that learn a body's proportions (Martinez et al. 2017). It starts
   as the identity (zero last layer).

Why tubes: a keypoint detected within a few pixels fixes its joint to a ray to within ~3 cm at 3.5 m,
so the error left is the depth along the ray, which is what the delays measure. A cube must cover the
coarse error in all three directions; a tube spends its points on depth (``ray_samples`` steps, ~1 m)
and covers the keypoint's pixel error across (``fine_cube`` steps). Keypoints below
:data:`RAY_MIN_CONFIDENCE` (occluded, or not found) are not trusted: their tube follows the ray through
the coarse joint instead.

Both stages return joints in the camera frame (metres); the training loss is the L1 distance of
both to the truth (:func:`joint_l1_loss`). Shapes: B frames, P pairs, J = 15 joints.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bodies.joints import NUM_JOINTS
from network.config import NetworkConfig
from pipeline.grid import camera_to_voxel, voxel_centers_camera
from pipeline.spatial_encoding import antialiased_envelope, kernel_envelope, pair_statistics, spatial_encoding_indexed
from pipeline.visual_encoding import keypoint_rays

__all__ = ["CoarseToFineLifter", "DepthSearch", "JointRefiner", "LifterOutput", "joint_l1_loss", "soft_argmax_points"]

AUDIO_STATISTICS = 4          # max, mean, standard deviation, mean of logs over pairs
RAY_MIN_CONFIDENCE = 0.2      # below it a keypoint's ray is not trusted (the detector's occluded keypoints)


@dataclass
class LifterOutput:
    """What :meth:`CoarseToFineLifter.forward` returns.

    Attributes:
        joints: (B, J, 3) final joints, camera frame, metres.
        coarse_joints: (B, J, 3) the coarse stage's joints.
        coarse_logits: (B, J, X, Y, Z) the coarse stage's volumes (before the softmax).
        fine_centers: (B, J, 3) centres of the fine cubes or tubes (the detached coarse joints; a tube is
            centred at the coarse joint's depth on its ray).
        fine_joints: (B, J, 3) the fine stage's joints before :class:`JointRefiner` (None without one:
            ``joints`` are then the fine stage's).
        searched_joints: (B, J, 3) the coarse joints moved along their lines of sight by :class:`DepthSearch`'s
            offset (None without one; ``fine_centers`` are then the coarse joints).
    """

    joints: torch.Tensor
    coarse_joints: torch.Tensor
    coarse_logits: torch.Tensor
    fine_centers: torch.Tensor
    fine_joints: torch.Tensor | None = None
    searched_joints: torch.Tensor | None = None


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


class _Conv3d(nn.Conv3d):
    """nn.Conv3d that takes oneDNN's kernel on the CPU whatever its channel count.

    PyTorch's CPU dispatch sends 3D convolutions of up to 16 input channels to a slow reference
    kernel (``slow_conv3d``): 16 -> 16 channels on the default 35 x 35 x 26 grid took 86 ms there
    against 13 ms through ``torch.mkldnn_convolution``, which is differentiable too and agrees to
    ~3e-6. Same parameters and state dict as nn.Conv3d; GPUs and other dtypes take the usual path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and x.dtype == torch.float32 and self.padding_mode == "zeros"
                and torch.backends.mkldnn.is_available() and not isinstance(self.padding, str)):
            return torch.mkldnn_convolution(x.contiguous(), self.weight, self.bias, list(self.padding),
                                            list(self.stride), list(self.dilation), self.groups)
        return super().forward(x)


def _norm_groups(channels: int, at_most: int = 4) -> int:
    """The most GroupNorm groups, up to ``at_most``, that divide ``channels``."""
    return max(g for g in range(1, min(at_most, channels) + 1) if channels % g == 0)


def _block(in_channels: int, out_channels: int, groups: int = 4) -> nn.Sequential:
    return nn.Sequential(_Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.GroupNorm(_norm_groups(out_channels, groups), out_channels), nn.ReLU(inplace=True))


class _UNet3d(nn.Module):
    """Two levels: full resolution, then half; the half-resolution features widen the receptive field
    to the whole body (about 1 m at 10 cm voxels) at a quarter of the cost."""

    def __init__(self, in_channels: int, channels: int, out_channels: int):
        super().__init__()
        self.down = nn.Sequential(_block(in_channels, channels), _block(channels, channels))
        self.bottom = nn.Sequential(nn.MaxPool3d(2, ceil_mode=True), _block(channels, 2 * channels),
                                    _block(2 * channels, 2 * channels))
        self.up = nn.Sequential(_block(3 * channels, channels), _block(channels, channels))
        self.head = _Conv3d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down(x)
        low = self.bottom(skip)
        low = nn.functional.interpolate(low, size=skip.shape[2:], mode="trilinear", align_corners=False)
        return self.head(self.up(torch.cat([skip, low], dim=1)))


class JointRefiner(nn.Module):
    """Moves every joint along its line of sight by an offset that a small MLP reads off all the joints at once.

    Per joint j (the fine stage's p_j, camera frame; the body's mean joint p_mean): p_j - p_mean, its depth
    |p_j| less the mean depth, its line of sight a_j = p_j / |p_j|, the spread (standard deviation, metres)
    of the fine stage's distribution along a_j, the keypoint's confidence and the coarse joint's offset
    c_j - p_j; for the frame, the mean depth less 3.5 m. Output: p_j + delta_j a_j. The inputs are detached
    (the stages before learn from their own losses); the last layer starts at zero, so an untrained refiner
    returns the fine joints exactly.
    """

    FEATURES = 12

    def __init__(self, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(NUM_JOINTS * self.FEATURES + 1, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, NUM_JOINTS))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    @staticmethod
    def lines_of_sight(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, J, 3) unit direction from the camera to each of ``joints`` (B, J, 3), detached, and (B, J, 1) its
        distance: the lines the refiner moves the joints along."""
        p = joints.detach().float()
        depth = p.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        return p / depth, depth

    @staticmethod
    def depth_spread(logits: torch.Tensor, points: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
        """(B, J) standard deviation (metres) along ``axis`` (B, J, 3) of softmax(``logits``) (B, J, *S) over
        ``points`` (B, J, *S, 3)."""
        b, j = logits.shape[:2]
        weights = torch.softmax(logits.reshape(b, j, -1).float(), dim=-1)
        along = torch.einsum("bjnc,bjc->bjn", points.reshape(b, j, -1, 3).float(), axis)
        mean = (weights * along).sum(-1, keepdim=True)
        return ((weights * (along - mean) ** 2).sum(-1)).clamp_min(0.0).sqrt()

    def forward(self, joints: torch.Tensor, coarse_joints: torch.Tensor, spread_m: torch.Tensor,
                confidence: torch.Tensor) -> torch.Tensor:
        """Args: the fine joints (B, J, 3), coarse joints (B, J, 3), depth spreads (B, J) and keypoint
        confidences (B, J). Returns the refined joints (B, J, 3)."""
        p = joints.detach().float()
        axis, depth = self.lines_of_sight(joints)
        mean_depth = depth.mean(dim=1, keepdim=True)
        features = torch.cat([p - p.mean(dim=1, keepdim=True), depth - mean_depth, axis, spread_m.detach()[..., None],
                              torch.nan_to_num(confidence, nan=0.0)[..., None].float(),
                              coarse_joints.detach().float() - p], dim=-1)                 # (B, J, 12)
        x = torch.cat([features.flatten(1), mean_depth[:, 0] - 3.5], dim=1)
        delta = self.mlp(x)                                                                # (B, J)
        return joints + delta[..., None].to(joints.dtype) * axis.to(joints.dtype)


class DepthSearch(nn.Module):
    """One depth offset for the whole body from every joint's audio profile along its line of sight.

    Input (B, J * 4, D): the pair statistics at D = ``ray_samples`` points of each joint's line, ``fine_voxel_m``
    apart and centred on its coarse joint. Three 1D convolutions over the depth steps (joints and statistics as
    channels), a zero-initialised head, a softmax over the D offsets and its expectation: (B,) metres. Untrained, the
    softmax is flat over offsets symmetric about zero, so the offset is zero and the coarse joints stay where they are.
    """

    def __init__(self, channels: int, kernel: int = 5):
        super().__init__()
        layers, width = [], NUM_JOINTS * AUDIO_STATISTICS
        for _ in range(3):
            layers += [nn.Conv1d(width, channels, kernel, padding=kernel // 2, bias=False),
                       nn.GroupNorm(_norm_groups(channels), channels), nn.ReLU(inplace=True)]
            width = channels
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv1d(channels, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, profiles: torch.Tensor, offsets_m: torch.Tensor) -> torch.Tensor:
        """``profiles`` (B, J * 4, D), ``offsets_m`` (D,) the offset of each step: the expected offset, (B,) metres."""
        logits = self.head(self.body(profiles))[:, 0]                                      # (B, D)
        return torch.softmax(logits.float(), dim=-1) @ offsets_m.float()


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
        # audio statistics, this joint's ray, ray x audio (and, for tubes, every joint's coarse volume)
        self.fine_in = _block(AUDIO_STATISTICS + 2 + (NUM_JOINTS if config.fine_shape == "ray" else 0), c)
        self.fine = nn.Sequential(_block(c, c), _block(c, c), _block(c, c), _Conv3d(c, 1, 1))
        # Soft-argmax heads start flat (zero logits): every cell equally likely, the grid's centre as the
        # first guess, and gradients that move the mass toward the truth from the first step.
        for head in (self.coarse.head, self.fine[-1]):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.refiner = JointRefiner() if config.refine_joints else None
        # (the vision-only ablation has no profiles to search: it keeps the coarse joints)
        self.depth_search = DepthSearch(2 * c) if config.depth_search and config.use_audio else None

    # -- encodings (geometry, float32) --------------------------------------------------------------
    def _audio(self, batch: dict, envelopes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """(B, 4, *S) pair statistics at ``points`` (B, *S, 3) with S three axes: each transducer's distances
        are computed once for all its pairs (:func:`pipeline.spatial_encoding.spatial_encoding_indexed`)."""
        mask = batch.get("pair_mask")
        if mask is None:
            mask = torch.ones(envelopes.shape[:2], dtype=torch.bool, device=envelopes.device)
        encodings = spatial_encoding_indexed(envelopes, batch["pair_index"], batch["speaker_pos"].float(),
                                             batch["mic_pos"].float(), points, batch["speed_of_sound"].float(),
                                             self.config.sample_rate_hz)
        return pair_statistics(encodings, mask.bool())

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
                audio = self._audio(batch, self._envelopes(batch, cfg.voxel_size_m), centers)
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

    def sight_lines(self, keypoints: torch.Tensor, intrinsics: torch.Tensor, centers_m: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, J, 3) unit direction of each joint's line of sight and (B, J) the depth of ``centers_m`` (B, J, 3) on
        it. The line is the keypoint's (``keypoints`` (B, J, 3) as u, v, confidence; ``intrinsics`` (B, 3, 3)) when
        its confidence is at least :data:`RAY_MIN_CONFIDENCE`, else the one through the centre."""
        pixels = torch.nan_to_num(keypoints[..., :2])
        confidence = torch.nan_to_num(keypoints[..., 2], nan=0.0)
        homogeneous = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1)
        detected = torch.einsum("bij,bkj->bki", torch.linalg.inv(intrinsics), homogeneous)
        trusted = (confidence >= RAY_MIN_CONFIDENCE) & torch.isfinite(keypoints[..., :2]).all(-1)
        axis = torch.where(trusted[..., None], detected, centers_m)
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        return axis, (centers_m * axis).sum(-1)

    def ray_tubes(self, keypoints: torch.Tensor, intrinsics: torch.Tensor, centers_m: torch.Tensor) -> torch.Tensor:
        """(B, J, D, W, W, 3) camera-frame points of a tube per joint: D = ``ray_samples`` steps of
        ``fine_voxel_m`` along the joint's line of sight (:meth:`sight_lines`), centred at the depth of ``centers_m``
        (B, J, 3) on it, and W = ``fine_cube`` steps across."""
        cfg = self.config
        axis, depth = self.sight_lines(keypoints, intrinsics, centers_m)
        up = torch.zeros_like(axis)
        up[..., 1] = 1.0
        across = torch.linalg.cross(up, axis)
        across = across / across.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        down = torch.linalg.cross(axis, across)
        size = cfg.fine_voxel_m
        along = self.depth_steps_m(axis)
        side = (torch.arange(cfg.fine_cube, device=axis.device, dtype=axis.dtype) - (cfg.fine_cube - 1) / 2) * size
        d, u, v = torch.meshgrid(along, side, side, indexing="ij")                          # (D, W, W)
        e = (lambda t: t[:, :, None, None, None, :])
        return (e(axis) * (depth[:, :, None, None, None, None] + d[..., None]) + e(across) * u[..., None]
                + e(down) * v[..., None])

    def depth_steps_m(self, like: torch.Tensor) -> torch.Tensor:
        """(D,) the tubes' depth offsets about their centre: ``ray_samples`` steps of ``fine_voxel_m``, symmetric."""
        cfg = self.config
        return (torch.arange(cfg.ray_samples, device=like.device, dtype=like.dtype) - (cfg.ray_samples - 1) / 2) \
            * cfg.fine_voxel_m

    def searched_centers(self, batch: dict, centers_m: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) ``centers_m`` (the detached coarse joints) moved along their lines of sight by
        :class:`DepthSearch`'s one offset per frame."""
        axis, depth = self.sight_lines(batch["keypoints2d"].float(), batch["intrinsics"].float(), centers_m)
        steps = self.depth_steps_m(axis)
        points = axis[:, :, None, :] * (depth[:, :, None, None] + steps[None, None, :, None])  # (B, J, D, 3)
        b, d = points.shape[0], steps.shape[0]
        with torch.autocast(device_type=points.device.type, enabled=False):
            audio = self._audio(batch, self._envelopes(batch, self.config.fine_voxel_m),
                                points.reshape(b, NUM_JOINTS * d, 1, 1, 3))                  # (B, 4, J * D, 1, 1)
        profiles = audio.reshape(b, AUDIO_STATISTICS, NUM_JOINTS, d).transpose(1, 2).reshape(b, -1, d)
        offset = self.depth_search(profiles, steps)                                          # (B,)
        return axis * (depth + offset[:, None])[..., None]

    def fine_points(self, batch: dict, centers_m: torch.Tensor) -> torch.Tensor:
        """(B, J, *S, 3) the points of each joint's fine stage around ``centers_m`` (B, J, 3)."""
        if self.config.fine_shape == "ray":
            return self.ray_tubes(batch["keypoints2d"].float(), batch["intrinsics"].float(), centers_m)
        return self.fine_cubes(centers_m)

    @staticmethod
    def coarse_context(coarse_logits: torch.Tensor, points: torch.Tensor, batch: dict, voxel_size_m: float) -> torch.Tensor:
        """(B, J, J, *S): every joint's coarse log-probability volume (detached), trilinearly sampled at
        each joint's fine points ``points`` (B, J, *S, 3); points outside the grid take its border value."""
        b, j = coarse_logits.shape[:2]
        volume = torch.log_softmax(coarse_logits.detach().float().reshape(b, j, -1), dim=-1).reshape(coarse_logits.shape)
        shape = points.shape[2:-1]
        voxels = camera_to_voxel(points.reshape(b, -1, 3), batch["grid_to_camera"].float(), voxel_size_m)
        sizes = torch.tensor(coarse_logits.shape[2:], device=voxels.device, dtype=voxels.dtype)
        normalised = (2.0 * voxels / (sizes - 1) - 1.0).flip(-1)       # grid_sample wants (z, y, x) in [-1, 1]
        sampled = nn.functional.grid_sample(volume, normalised.reshape(b, -1, 1, 1, 3), mode="bilinear",
                                            padding_mode="border", align_corners=True)      # (B, J, N, 1, 1)
        return sampled.reshape(b, j, j, *shape).transpose(1, 2)

    def fine_stage(self, batch: dict, centers_m: torch.Tensor, coarse_logits: torch.Tensor | None = None) -> torch.Tensor:
        """(B, J, 3) joints placed on fine cubes or tubes around ``centers_m`` (B, J, 3); tubes also read
        ``coarse_logits`` (B, J, X, Y, Z)."""
        logits, points = self.fine_volumes(batch, centers_m, coarse_logits)
        return soft_argmax_points(logits, points)

    def fine_volumes(self, batch: dict, centers_m: torch.Tensor, coarse_logits: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fine stage before its soft-argmax: (B, J, *S) logits and (B, J, *S, 3) camera-frame points
        (*S = (D, W, W) for tubes, (F, F, F) for cubes), for pictures and confidences."""
        cfg = self.config
        b = centers_m.shape[0]
        points = self.fine_points(batch, centers_m)                                         # (B, J, *S, 3)
        shape = points.shape[2:-1]
        with torch.autocast(device_type=points.device.type, enabled=False):
            rays = keypoint_rays(batch["keypoints2d"].float(), batch["intrinsics"].float(), points,
                                 cfg.image_size_px, cfg.keypoint_sigma_px * cfg.fine_voxel_m / cfg.voxel_size_m)
            if not cfg.use_vision:
                rays = torch.zeros_like(rays)
            if cfg.use_audio:
                flat = points.reshape(b, NUM_JOINTS * shape[0], *shape[1:], 3)
                audio = self._audio(batch, self._envelopes(batch, cfg.fine_voxel_m), flat)
                audio = audio.reshape(b, AUDIO_STATISTICS, NUM_JOINTS, *shape).transpose(1, 2)
                evidence = rays * torch.exp(audio[:, :, 3])
            else:
                audio = rays.new_zeros((b, NUM_JOINTS, AUDIO_STATISTICS, *shape))
                evidence = rays
            parts = [audio, rays[:, :, None], evidence[:, :, None]]
            if cfg.fine_shape == "ray":
                if coarse_logits is None:
                    raise ValueError("fine_stage with tubes needs the coarse stage's logits")
                parts.append(self.coarse_context(coarse_logits, points, batch, cfg.voxel_size_m))
        x = torch.cat(parts, dim=2)                                                         # (B, J, C, *S)
        x = self.fine_in(x.reshape(b * NUM_JOINTS, -1, *shape))
        joint_ids = torch.arange(NUM_JOINTS, device=x.device).repeat(b)
        x = x + self.joint_embedding(joint_ids)[:, :, None, None, None].to(x.dtype)
        return self.fine(x).reshape(b, NUM_JOINTS, *shape), points

    def forward(self, batch: dict) -> LifterOutput:
        """Args: the batch of :meth:`network.model.PoseKernelLifter.forward` (same keys and shapes)."""
        if self.config.use_audio:
            with torch.autocast(device_type=batch["kernels"].device.type, enabled=False):
                batch = {**batch, "_envelopes": kernel_envelope(
                    batch["kernels"][..., :self.config.kernel_samples].float())}
        coarse_logits, coarse_joints = self.coarse_stage(batch)
        centers = coarse_joints.detach()
        searched = None
        if self.depth_search is not None:
            searched = self.searched_centers(batch, centers)
            centers = searched.detach()
        if self.refiner is None:
            joints = self.fine_stage(batch, centers, coarse_logits)
            return LifterOutput(joints=joints, coarse_joints=coarse_joints, coarse_logits=coarse_logits,
                                fine_centers=centers, searched_joints=searched)
        logits, points = self.fine_volumes(batch, centers, coarse_logits)
        fine_joints = soft_argmax_points(logits, points)
        axis, _ = JointRefiner.lines_of_sight(fine_joints)
        spread = JointRefiner.depth_spread(logits.detach(), points.detach(), axis)
        joints = self.refiner(fine_joints, coarse_joints, spread, batch["keypoints2d"][..., 2])
        return LifterOutput(joints=joints, coarse_joints=coarse_joints, coarse_logits=coarse_logits,
                            fine_centers=centers, fine_joints=fine_joints, searched_joints=searched)
