"""Visual encoding of 2D detections on the voxel grid (paper eq. 9).

Each joint's 2D detection becomes a heatmap p_i (a Gaussian of ``sigma_px`` image pixels, scaled by
the detection's confidence) and every voxel X takes p_i(Pi X), the heatmap at X's projection
through the camera intrinsics. A joint's volume is therefore a cone of constant value along the
back-projected ray of its keypoint: it says where the joint may lie across the image, nothing
about depth.

Pixel convention (OpenCV): pixel centres sit at integer (u, v), the image spans
[-0.5, W - 0.5] x [-0.5, H - 0.5]. A heatmap of stride s has ceil(W / s) x ceil(H / s) cells;
cell (r, c) covers image pixels [c s, (c + 1) s) x [r s, (r + 1) s) and its value is the
Gaussian at the cell's centre u = c s + (s - 1) / 2, v = r s + (s - 1) / 2. Voxels are sampled
bilinearly between cell centres (``grid_sample``, align_corners=False); voxels behind the camera
or projecting outside the image get 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.checks import check_whole
from pipeline.spatial_encoding import EncodingInputError

# Points nearer than this to the camera plane (z, metres) count as behind the camera.
MIN_DEPTH_M = 1e-3


def heatmap_size(image_size_px, stride: int) -> tuple[int, int]:
    """(H', W') of a heatmap with ``stride`` image pixels per cell; image_size_px = (W, H)."""
    width, height = (int(v) for v in image_size_px)
    if width <= 0 or height <= 0:
        raise EncodingInputError(f"image_size_px={image_size_px!r} must be (width, height) in pixels, both positive")
    stride = check_whole("stride (image pixels per heatmap cell)", stride, minimum=1, error=EncodingInputError)
    return math.ceil(height / stride), math.ceil(width / stride)


def keypoint_heatmaps(keypoints: torch.Tensor, image_size_px, sigma_px: float = 8.0, stride: int = 4) -> torch.Tensor:
    """Confidence-weighted Gaussian heatmaps of 2D keypoints.

    Args:
        keypoints: (B, J, 3) (u, v, confidence) in image pixels; confidence in [0, 1], 0 = missing.
        image_size_px: (W, H) of the image.
        sigma_px: standard deviation of each Gaussian, in image pixels.
        stride: image pixels per heatmap cell (4-8 usual).
    Returns:
        (B, J, H', W') heatmaps, peak value = confidence, H' = ceil(H / stride), W' = ceil(W / stride).
    """
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
        raise EncodingInputError(f"keypoints must have shape (B, J, 3) as (u, v, confidence), got {tuple(keypoints.shape)}")
    if not sigma_px > 0:
        raise EncodingInputError(f"sigma_px={sigma_px!r} must be a positive width in image pixels")
    height_cells, width_cells = heatmap_size(image_size_px, stride)
    dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float32
    keypoints = keypoints.to(dtype)
    offset = (stride - 1) / 2
    u_cells = torch.arange(width_cells, device=keypoints.device, dtype=dtype) * stride + offset
    v_cells = torch.arange(height_cells, device=keypoints.device, dtype=dtype) * stride + offset
    u, v, confidence = keypoints[..., 0, None], keypoints[..., 1, None], keypoints[..., 2, None]
    gauss_u = torch.exp(-0.5 * ((u_cells - u) / sigma_px) ** 2)  # (B, J, W')
    gauss_v = torch.exp(-0.5 * ((v_cells - v) / sigma_px) ** 2)  # (B, J, H')
    confidence = torch.nan_to_num(confidence, nan=0.0).clamp(0, 1)
    gauss_v = torch.where(torch.isfinite(gauss_v), gauss_v, torch.zeros_like(gauss_v))
    gauss_u = torch.where(torch.isfinite(gauss_u), gauss_u, torch.zeros_like(gauss_u))
    return (confidence * gauss_v)[..., :, None] * gauss_u[..., None, :]


def project_points(points_camera_m: torch.Tensor, intrinsics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection.

    Args:
        points_camera_m: (B, N, 3) camera frame (OpenCV).
        intrinsics: (B, 3, 3) camera matrices.
    Returns:
        pixels (B, N, 2) as (u, v) (garbage where depth <= 0) and depth_m (B, N).
    """
    homogeneous = torch.einsum("bij,bnj->bni", intrinsics, points_camera_m)
    depth = points_camera_m[..., 2]
    safe_depth = torch.where(depth > MIN_DEPTH_M, homogeneous[..., 2], torch.ones_like(depth))
    return homogeneous[..., :2] / safe_depth[..., None], depth


def visual_encoding(heatmaps: torch.Tensor, intrinsics: torch.Tensor, voxel_centers_m: torch.Tensor,
                    image_size_px, stride: int = 4) -> torch.Tensor:
    """Eq. 9: every voxel takes each joint's heatmap value at the voxel's projection.

    Args:
        heatmaps: (B, J, H', W') from :func:`keypoint_heatmaps` (same ``image_size_px``, ``stride``).
        intrinsics: (B, 3, 3) camera matrices, image pixels.
        voxel_centers_m: (B or 1, X, Y, Z, 3) voxel centres in the camera frame (any (B or 1, ..., 3)).
        image_size_px: (W, H) of the image.
        stride: image pixels per heatmap cell.
    Returns:
        (B, J, X, Y, Z) encodings, device and dtype of ``heatmaps``.
    """
    if heatmaps.ndim != 4:
        raise EncodingInputError(f"heatmaps must have shape (B, J, H', W'), got {tuple(heatmaps.shape)}")
    batch, _, height_cells, width_cells = heatmaps.shape
    if (height_cells, width_cells) != heatmap_size(image_size_px, stride):
        raise EncodingInputError(
            f"heatmaps are {height_cells} x {width_cells} cells but image_size_px={tuple(image_size_px)} with "
            f"stride={stride} gives {heatmap_size(image_size_px, stride)}; pass the values used to make them"
        )
    if tuple(intrinsics.shape) != (batch, 3, 3):
        raise EncodingInputError(f"intrinsics must have shape (B, 3, 3) with B = {batch}, got {tuple(intrinsics.shape)}")
    if voxel_centers_m.shape[-1] != 3 or voxel_centers_m.ndim < 3 or voxel_centers_m.shape[0] not in (1, batch):
        raise EncodingInputError(
            f"voxel_centers_m must have shape (B or 1, X, Y, Z, 3) with B = {batch}, got {tuple(voxel_centers_m.shape)}"
        )
    grid_shape = voxel_centers_m.shape[1:-1]
    points = voxel_centers_m.reshape(voxel_centers_m.shape[0], -1, 3).to(heatmaps.dtype).expand(batch, -1, -1)
    pixels, depth = project_points(points, intrinsics.to(heatmaps.dtype))

    width, height = (int(v) for v in image_size_px)
    u, v = pixels[..., 0], pixels[..., 1]
    visible = (depth > MIN_DEPTH_M) & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
    # Normalised grid_sample coordinates: -1 / +1 are the outer edges of the first / last cell.
    x_norm = 2 * (u + 0.5) / (width_cells * stride) - 1
    y_norm = 2 * (v + 0.5) / (height_cells * stride) - 1
    sample_grid = torch.stack([x_norm, y_norm], dim=-1)
    sample_grid = torch.where(visible[..., None], sample_grid, torch.full_like(sample_grid, -2.0))
    values = F.grid_sample(heatmaps, sample_grid[:, :, None, :], mode="bilinear",
                           padding_mode="border", align_corners=False)  # (B, J, N, 1)
    values = values[..., 0] * visible[:, None, :].to(values.dtype)
    return values.reshape(batch, heatmaps.shape[1], *grid_shape)


def keypoint_rays(keypoints: torch.Tensor, intrinsics: torch.Tensor, points_m: torch.Tensor, image_size_px,
                  sigma_px: float) -> torch.Tensor:
    """Each joint's 2D detection as a Gaussian ray: confidence x exp(-d^2 / (2 sigma^2)) at every point,
    with d the pixel distance between the point's projection and the joint's keypoint.

    The analytic form of eq. 9 with a Gaussian heatmap: no heatmap is drawn, so the value is exact at
    any point (a fine cube of 2 cm voxels as well as a coarse grid) and costs one projection a point.
    Points behind the camera get 0; a keypoint with confidence 0 or NaN gives 0 everywhere.

    Args:
        keypoints: (B, J, 3) (u, v, confidence), pixels.
        intrinsics: (B, 3, 3) camera matrices.
        points_m: (B, J, ..., 3) camera-frame points, one set per joint (expand a shared grid).
        image_size_px: (W, H), for the checks only (the Gaussian is not cut at the image's border).
        sigma_px: width of the Gaussian, pixels.
    Returns:
        (B, J, ...) values in [0, 1].
    """
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
        raise EncodingInputError(f"keypoints must have shape (B, J, 3) as (u, v, confidence), got {tuple(keypoints.shape)}")
    if points_m.shape[:2] != keypoints.shape[:2] or points_m.shape[-1] != 3:
        raise EncodingInputError(f"points_m must have shape (B, J, ..., 3) with (B, J) = {tuple(keypoints.shape[:2])}, "
                                 f"got {tuple(points_m.shape)}")
    if not sigma_px > 0:
        raise EncodingInputError(f"sigma_px={sigma_px!r} must be a positive width in image pixels")
    heatmap_size(image_size_px, 1)
    b, j = keypoints.shape[:2]
    flat = points_m.reshape(b, -1, 3)
    pixels, depth = project_points(flat, intrinsics.to(flat.dtype))
    pixels = pixels.reshape(b, j, -1, 2)
    depth = depth.reshape(b, j, -1)
    distance2 = ((pixels - keypoints[:, :, None, :2].to(pixels.dtype)) ** 2).sum(-1)
    confidence = torch.nan_to_num(keypoints[..., 2:3].to(pixels.dtype), nan=0.0).clamp(0, 1)
    values = confidence * torch.exp(-0.5 * distance2 / sigma_px ** 2) * (depth > MIN_DEPTH_M).to(pixels.dtype)
    values = torch.nan_to_num(values, nan=0.0)
    return values.reshape(points_m.shape[:-1])
