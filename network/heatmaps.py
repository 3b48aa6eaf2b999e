"""3D joint heatmaps: Gaussian targets, the multi-stage L2 loss (eq. 10) and sub-voxel decoding.

Voxel coordinates follow ``pipeline.grid``: voxel (i, j, k)'s centre is at continuous coordinate
(i, j, k), and a point is inside the grid when every coordinate lies in [-0.5, n - 0.5].
"""
from __future__ import annotations

from core.errors import InputError
import itertools

import torch

from pipeline.grid import camera_to_voxel, voxel_to_camera


class HeatmapInputError(InputError):
    """Heatmaps, targets or joints of inconsistent shapes."""


def joints_in_grid(joints_camera_m: torch.Tensor, grid_to_camera: torch.Tensor, grid_shape,
                   voxel_size_m: float) -> torch.Tensor:
    """(B, J) bool: finite joints inside the grid box."""
    coords = camera_to_voxel(joints_camera_m.to(grid_to_camera.dtype), grid_to_camera, voxel_size_m)
    upper = torch.as_tensor(grid_shape, dtype=coords.dtype, device=coords.device) - 0.5
    finite = torch.isfinite(coords).all(-1)
    coords = torch.nan_to_num(coords, nan=-1e9)
    return finite & ((coords >= -0.5) & (coords <= upper)).all(-1)


def gaussian_targets(joints_camera_m: torch.Tensor, grid_to_camera: torch.Tensor, grid_shape,
                     voxel_size_m: float, sigma_voxels: float = 1.5, return_mask: bool = False):
    """Gaussian 3D heatmaps of the joints (the targets of eq. 10).

    Each joint's volume is exp(-|v - c|^2 / (2 sigma^2)) with v the voxel coordinate and c the joint's
    continuous voxel coordinate: peak 1 at the joint (a joint between voxel centres leaves every
    voxel a little under 1). Joints outside the grid, or not finite, give all-zero volumes.

    Args:
        joints_camera_m: (B, J, 3) joints, camera frame.
        grid_to_camera: (B, 4, 4) grid poses.
        grid_shape: (X, Y, Z).
        voxel_size_m: voxel edge, metres.
        sigma_voxels: standard deviation, voxels.
        return_mask: also return the (B, J) bool mask of joints inside the grid.
    Returns:
        (B, J, X, Y, Z) float32 targets, or (targets, mask) when ``return_mask``.
    """
    if joints_camera_m.ndim != 3 or joints_camera_m.shape[-1] != 3:
        raise HeatmapInputError(f"joints_camera_m must be (B, J, 3), got {tuple(joints_camera_m.shape)}")
    if tuple(grid_to_camera.shape) != (joints_camera_m.shape[0], 4, 4):
        raise HeatmapInputError(f"grid_to_camera must be (B, 4, 4) with B = {joints_camera_m.shape[0]}, "
                                f"got {tuple(grid_to_camera.shape)}")
    if not sigma_voxels > 0:
        raise HeatmapInputError(f"sigma_voxels={sigma_voxels!r} must be positive")
    pose = grid_to_camera.double()
    mask = joints_in_grid(joints_camera_m.double(), pose, grid_shape, voxel_size_m)
    coords = camera_to_voxel(torch.nan_to_num(joints_camera_m.double()), pose, voxel_size_m)
    volume = None
    for axis, n in enumerate(grid_shape):
        steps = torch.arange(n, dtype=torch.float64, device=coords.device)
        g = torch.exp(-0.5 * ((steps - coords[..., axis, None]) / sigma_voxels) ** 2)  # (B, J, n)
        shape = [g.shape[0], g.shape[1]] + [1] * len(grid_shape)
        shape[2 + axis] = n
        g = g.reshape(shape)
        volume = g if volume is None else volume * g
    targets = (volume * mask[..., None, None, None].to(volume.dtype)).float()
    return (targets, mask) if return_mask else targets


def heatmap_loss(stage_heatmaps, targets: torch.Tensor, joint_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 10 with intermediate supervision: L2 between every stage's heatmaps and the targets.

    Per stage: the squared error averaged over the voxels of the joints that count (``joint_mask``
    True, default all) and over the batch; the stages are summed. (A mean rather than the raw sum
    of eq. 10 keeps the scale independent of the grid size; it only rescales the learning rate.)

    Args:
        stage_heatmaps: list of (B, J, X, Y, Z) predictions (or a single tensor).
        targets: (B, J, X, Y, Z).
        joint_mask: optional (B, J) bool; False leaves that joint out (e.g. outside the grid).
    Returns:
        scalar loss (float32).
    """
    if isinstance(stage_heatmaps, torch.Tensor):
        stage_heatmaps = [stage_heatmaps]
    if not stage_heatmaps:
        raise HeatmapInputError("heatmap_loss needs at least one stage")
    targets = targets.float()
    if joint_mask is None:
        weight = torch.ones(targets.shape[:2], device=targets.device)
    else:
        if tuple(joint_mask.shape) != tuple(targets.shape[:2]):
            raise HeatmapInputError(f"joint_mask must be (B, J) = {tuple(targets.shape[:2])}, got {tuple(joint_mask.shape)}")
        weight = joint_mask.to(device=targets.device, dtype=torch.float32)
    voxels = targets[0, 0].numel()
    denominator = weight.sum().clamp(min=1.0) * voxels
    total = targets.new_zeros(())
    for heatmaps in stage_heatmaps:
        if heatmaps.shape != targets.shape:
            raise HeatmapInputError(f"stage heatmaps {tuple(heatmaps.shape)} and targets {tuple(targets.shape)} differ")
        error = (heatmaps.float() - targets).pow(2).flatten(2).sum(-1)  # (B, J)
        total = total + (error * weight).sum() / denominator
    return total


def _window_offsets(window: int, device) -> torch.Tensor:
    r = range(-window, window + 1)
    return torch.tensor(list(itertools.product(r, r, r)), dtype=torch.long, device=device)  # (W, 3)


def soft_argmax_voxel(heatmaps: torch.Tensor, window: int = 2) -> torch.Tensor:
    """Sub-voxel peak of each heatmap, continuous voxel coordinates (B, J, 3).

    Around the argmax voxel, a (2w+1)^3 window: the log of the heatmap (clamped at 1e-6 of the peak)
    is fitted by a full quadratic by weighted least squares, weights = the clamped heatmap squared so
    that the tails count little. A Gaussian's log is exactly quadratic, so a Gaussian blob decodes to
    its centre exactly (any anisotropy). Where the fit is not a maximum or its peak leaves the window
    (noise, flat or non-positive maps), the positive-part centroid of the window is used instead.
    Not differentiable through the argmax; meant for evaluation.
    """
    if heatmaps.ndim != 5:
        raise HeatmapInputError(f"heatmaps must be (B, J, X, Y, Z), got {tuple(heatmaps.shape)}")
    if int(window) != window or window < 1:
        raise HeatmapInputError(f"window={window!r} must be a whole number >= 1")
    b, j = heatmaps.shape[:2]
    shape = torch.tensor(heatmaps.shape[2:], device=heatmaps.device)
    h = heatmaps.detach().double().reshape(b * j, -1)
    peak_index = h.argmax(-1)
    _, ny, nz = heatmaps.shape[2:]
    peak = torch.stack([peak_index // (ny * nz), (peak_index // nz) % ny, peak_index % nz], -1)  # (N, 3)
    offsets = _window_offsets(int(window), heatmaps.device)
    cells = peak[:, None, :] + offsets[None]  # (N, W, 3)
    inside = ((cells >= 0) & (cells < shape)).all(-1)
    cells = torch.minimum(cells.clamp(min=0), shape - 1)
    flat = (cells[..., 0] * ny + cells[..., 1]) * nz + cells[..., 2]
    values = torch.gather(h, 1, flat)  # (N, W)
    peak_value = values.amax(-1, keepdim=True)
    positive = peak_value > 0
    floor = peak_value.abs().clamp(min=1e-30) * 1e-6
    clamped = torch.maximum(values, floor)
    weights = (clamped / peak_value.abs().clamp(min=1e-30)) ** 2 * inside
    d = offsets.double()  # (W, 3)
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    design = torch.stack([torch.ones_like(x), x, y, z, x * x, y * y, z * z, x * y, x * z, y * z], -1)  # (W, 10)
    logv = torch.log(clamped)
    a = torch.einsum("nw,wp,wq->npq", weights, design, design)
    rhs = torch.einsum("nw,wp,nw->np", weights, design, logv)
    a = a + 1e-9 * torch.eye(10, dtype=a.dtype, device=a.device)
    coef = torch.linalg.solve(a, rhs[..., None])[..., 0]
    g = coef[:, 1:4]
    hessian = torch.stack([
        torch.stack([2 * coef[:, 4], coef[:, 7], coef[:, 8]], -1),
        torch.stack([coef[:, 7], 2 * coef[:, 5], coef[:, 9]], -1),
        torch.stack([coef[:, 8], coef[:, 9], 2 * coef[:, 6]], -1),
    ], -2)
    eig = torch.linalg.eigvalsh(hessian)
    concave = eig.amax(-1) < 0
    eye = torch.eye(3, dtype=h.dtype, device=h.device).expand_as(hessian)
    safe_hessian = torch.where(concave[:, None, None], hessian, -eye)  # the fit is discarded where not concave
    offset_fit = -torch.linalg.solve(safe_hessian, g[..., None])[..., 0]
    good = concave & positive[:, 0] & (offset_fit.abs() <= window).all(-1) & torch.isfinite(offset_fit).all(-1)
    # Fallback: centroid of the positive part of the window.
    w_centroid = values.clamp(min=0) * inside
    total = w_centroid.sum(-1, keepdim=True)
    centroid = torch.where(total > 0, (w_centroid @ d) / total.clamp(min=1e-30), torch.zeros_like(g))
    offset = torch.where(good[:, None], offset_fit, centroid)
    return (peak.double() + offset).reshape(b, j, 3).to(torch.float32 if heatmaps.dtype != torch.float64 else torch.float64)


def soft_argmax_joints(heatmaps: torch.Tensor, grid_to_camera: torch.Tensor, voxel_size_m: float,
                       window: int = 2) -> torch.Tensor:
    """Decode heatmaps to camera-frame joints with sub-voxel precision.

    Args:
        heatmaps: (B, J, X, Y, Z) (e.g. the last stage's prediction).
        grid_to_camera: (B, 4, 4) grid poses.
        voxel_size_m: voxel edge, metres.
        window: half-width of the neighbourhood of the argmax voxel used for the fit (see
            :func:`soft_argmax_voxel`).
    Returns:
        (B, J, 3) joints in the camera frame, metres.
    """
    if tuple(grid_to_camera.shape) != (heatmaps.shape[0], 4, 4):
        raise HeatmapInputError(f"grid_to_camera must be (B, 4, 4) with B = {heatmaps.shape[0]}, got {tuple(grid_to_camera.shape)}")
    coords = soft_argmax_voxel(heatmaps, window)
    return voxel_to_camera(coords.double(), grid_to_camera.double().to(coords.device), voxel_size_m).to(coords.dtype)
