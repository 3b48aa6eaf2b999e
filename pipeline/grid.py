"""The voxel grid on which the network fuses sound and sight (paper section 3.3).

A :class:`VoxelGrid` is a box of ``shape = (X, Y, Z)`` cubic voxels of side ``voxel_size_m``
(default 70 x 70 x 50 at 5 cm: 3.5 x 3.5 x 2.5 m), posed in the camera frame by
``grid_to_camera`` (4, 4).

Grid frame (metres, right-handed):
    origin  the outer corner of voxel (0, 0, 0), so voxel (i, j, k) has its centre at
            ((i + 0.5) s, (j + 0.5) s, (k + 0.5) s) with s = ``voxel_size_m``;
    axis 0  horizontal, to the camera's right (X voxels, 3.5 m);
    axis 1  horizontal, away from the camera (Y voxels, 3.5 m);
    axis 2  up, against gravity (Z voxels, 2.5 m).
The two 70-voxel axes span the floor plane and the 50-voxel axis is vertical, whatever the
camera's tilt. ``grid_to_camera`` maps grid-frame points to the camera frame (OpenCV: x right,
y down, z forward): ``X_cam = R @ X_grid + t``.

Voxel coordinates are continuous indices: voxel (i, j, k)'s centre has voxel coordinates
(i, j, k) exactly, and a point at voxel coordinates (1.5, 0, 0) lies on the face between voxels
1 and 2. ``round()`` of a point's voxel coordinates is the voxel that holds it.

Placement:
* :meth:`VoxelGrid.from_camera_pose` (synthetic data: the camera's pose in the z-up room is
  known): the grid stands on the floor (its bottom face at ``floor_z_m``), is horizontally centred
  on the camera's viewing direction projected on the floor, with its centre ``center_distance_m``
  (default 3.5 m) ahead of the camera, so it covers 1.75-5.25 m ahead by default. Pass
  ``center_xy_world_m`` to centre it over a known floor point instead (for example a scene's
  body region; note that this tells the network roughly where the person stands).
* :meth:`VoxelGrid.centered_at` (real data without a floor plane): the grid's centre at a given
  camera-frame point, axis 2 along ``up_camera`` (default -y of a roughly level camera), axis 1
  along the camera's forward direction made orthogonal to up.

Batches: the network sees one grid pose per frame. :func:`stack_grid_poses` turns grids into a
(B, 4, 4) tensor, and the module-level functions :func:`voxel_centers_camera`,
:func:`camera_to_voxel` and :func:`voxel_to_camera` work on (B, 4, 4) poses directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.checks import check_number
from core.errors import InputError

DEFAULT_GRID_SHAPE = (70, 70, 50)
DEFAULT_VOXEL_SIZE_M = 0.05


class GridInputError(InputError):
    """A voxel grid was given an invalid shape, pose or direction."""


def _unit(vector, name: str) -> np.ndarray:
    vector = np.asarray(vector, dtype=float).reshape(-1)
    if vector.shape != (3,) or not np.all(np.isfinite(vector)) or np.linalg.norm(vector) < 1e-9:
        raise GridInputError(f"{name} must be a finite, non-zero 3-vector, got {vector!r}")
    return vector / np.linalg.norm(vector)


def close_to(a: np.ndarray, b: np.ndarray, atol: float = 1e-8) -> bool:
    """``np.allclose(a, b, atol=atol)`` for finite arrays, without its overhead (grids and poses are checked per
    training frame)."""
    return bool((np.abs(a - b) <= atol + 1e-5 * np.abs(b)).all())


_LAST_ROW = np.array([0.0, 0.0, 0.0, 1.0])


def _check_rigid(pose, name: str) -> np.ndarray:
    pose = np.asarray(pose, dtype=float)
    if pose.shape != (4, 4) or not np.isfinite(pose).all() or not close_to(pose[3], _LAST_ROW):
        raise GridInputError(f"{name} must be a finite 4x4 rigid transform with last row (0, 0, 0, 1)")
    rotation = pose[:3, :3]
    if not close_to(rotation.T @ rotation, np.eye(3), atol=1e-5) or np.linalg.det(rotation) < 0:
        raise GridInputError(f"{name}[:3, :3] must be a rotation matrix (orthonormal, det +1)")
    return pose


def _rigid_inverse(pose: np.ndarray) -> np.ndarray:
    inverse = np.eye(4)
    inverse[:3, :3] = pose[:3, :3].T
    inverse[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return inverse


@dataclass(frozen=True, eq=False)
class VoxelGrid:
    """A box of cubic voxels posed in the camera frame.

    Attributes:
        shape: (X, Y, Z) voxel counts along grid axes 0 (right), 1 (forward), 2 (up).
        voxel_size_m: edge of one voxel, metres.
        grid_to_camera: (4, 4) rigid transform from the grid frame (see module doc) to the camera frame.
    """

    shape: tuple[int, int, int] = DEFAULT_GRID_SHAPE
    voxel_size_m: float = DEFAULT_VOXEL_SIZE_M
    grid_to_camera: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in np.asarray(self.shape).reshape(-1))
        if len(shape) != 3 or min(shape) < 1:
            raise GridInputError(f"shape={self.shape!r} must be three positive voxel counts (X, Y, Z)")
        voxel_size_m = check_number("voxel_size_m", self.voxel_size_m, 0.0, low_open=True, error=GridInputError)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "voxel_size_m", voxel_size_m)
        object.__setattr__(self, "grid_to_camera", _check_rigid(self.grid_to_camera, "grid_to_camera"))

    # ----------------------------------------------------------------------------------------
    # Constructors

    @classmethod
    def from_camera_pose(cls, cam_to_world, floor_z_m: float = 0.0, center_distance_m: float = 3.5,
                         center_xy_world_m=None, shape=DEFAULT_GRID_SHAPE,
                         voxel_size_m: float = DEFAULT_VOXEL_SIZE_M) -> "VoxelGrid":
        """A grid standing on the floor of a z-up room, in front of the camera.

        Grid axis 2 is the room's +z, axis 1 the camera's viewing direction projected on the floor,
        axis 0 = axis 1 x axis 2 (the camera's horizontal right). The bottom face lies at
        ``floor_z_m``. Horizontally the grid is centred on the point ``center_distance_m`` ahead
        of the camera along the projected viewing direction, or on ``center_xy_world_m`` (2,)
        when given.

        Args:
            cam_to_world: (4, 4) camera-to-room transform (room frame z up).
            floor_z_m: height of the floor in the room frame.
            center_distance_m: horizontal distance from the camera to the grid's centre.
            center_xy_world_m: optional (2,) room-frame floor point under the grid's centre.
        """
        cam_to_world = _check_rigid(cam_to_world, "cam_to_world")
        up = np.array([0.0, 0.0, 1.0])
        view = cam_to_world[:3, 2]
        forward = view - up * (view @ up)
        if np.linalg.norm(forward) < 1e-3:
            raise GridInputError(
                "cam_to_world: the camera looks straight up or down, so its viewing direction has no "
                "horizontal part; use VoxelGrid.centered_at with an explicit forward direction"
            )
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, up)
        camera_position = cam_to_world[:3, 3]
        if center_xy_world_m is None:
            center_xy = camera_position[:2] + center_distance_m * forward[:2]
        else:
            center_xy = np.asarray(center_xy_world_m, dtype=float).reshape(-1)
            if center_xy.shape != (2,) or not np.all(np.isfinite(center_xy)):
                raise GridInputError(f"center_xy_world_m must be a finite (x, y) floor point, got {center_xy_world_m!r}")
        extent = np.asarray(shape, dtype=float) * voxel_size_m
        origin = np.r_[center_xy, floor_z_m] - 0.5 * extent[0] * right - 0.5 * extent[1] * forward
        grid_to_world = np.eye(4)
        grid_to_world[:3, :3] = np.stack([right, forward, up], axis=1)
        grid_to_world[:3, 3] = origin
        return cls(shape, voxel_size_m, _rigid_inverse(cam_to_world) @ grid_to_world)

    @classmethod
    def centered_at(cls, point_camera_m, up_camera=(0.0, -1.0, 0.0), forward_camera=(0.0, 0.0, 1.0),
                    shape=DEFAULT_GRID_SHAPE, voxel_size_m: float = DEFAULT_VOXEL_SIZE_M) -> "VoxelGrid":
        """A grid whose centre is ``point_camera_m`` (3,), camera frame.

        Axis 2 points along ``up_camera`` (default -y: a roughly level camera), axis 1 along
        ``forward_camera`` made orthogonal to up, axis 0 = axis 1 x axis 2 (camera right).
        """
        center = np.asarray(point_camera_m, dtype=float).reshape(-1)
        if center.shape != (3,) or not np.all(np.isfinite(center)):
            raise GridInputError(f"point_camera_m must be a finite 3D point in metres, got {point_camera_m!r}")
        up = _unit(up_camera, "up_camera")
        forward = _unit(forward_camera, "forward_camera")
        forward = forward - up * (forward @ up)
        if np.linalg.norm(forward) < 1e-3:
            raise GridInputError("forward_camera is parallel to up_camera; give a forward direction with a horizontal part")
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, up)
        rotation = np.stack([right, forward, up], axis=1)
        extent = np.asarray(shape, dtype=float) * voxel_size_m
        pose = np.eye(4)
        pose[:3, :3] = rotation
        pose[:3, 3] = center - rotation @ (0.5 * extent)
        return cls(shape, voxel_size_m, pose)

    # ----------------------------------------------------------------------------------------
    # Geometry

    @property
    def extent_m(self) -> np.ndarray:
        """(3,) side lengths of the box, metres."""
        return np.asarray(self.shape, dtype=float) * self.voxel_size_m

    @property
    def num_voxels(self) -> int:
        return int(np.prod(self.shape))

    @property
    def center_camera_m(self) -> np.ndarray:
        """(3,) centre of the box, camera frame."""
        return self.grid_to_camera[:3, :3] @ (0.5 * self.extent_m) + self.grid_to_camera[:3, 3]

    @property
    def up_camera(self) -> np.ndarray:
        """(3,) the grid's up axis (axis 2) in the camera frame."""
        return self.grid_to_camera[:3, 2].copy()

    def pose_tensor(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """(4, 4) ``grid_to_camera`` as a tensor."""
        return torch.as_tensor(self.grid_to_camera, dtype=dtype, device=device)

    def centers_camera(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """(X, Y, Z, 3) voxel centres in the camera frame, metres."""
        pose = self.pose_tensor(device, torch.float64)
        return voxel_centers_camera(pose[None], self.shape, self.voxel_size_m)[0].to(dtype)

    def camera_to_voxel(self, points_camera_m) -> np.ndarray | torch.Tensor:
        """Camera-frame points (..., 3) to continuous voxel coordinates (..., 3); numpy or torch."""
        return _apply_to_points(self, points_camera_m, camera_to_voxel)

    def voxel_to_camera(self, voxel_coords) -> np.ndarray | torch.Tensor:
        """Continuous voxel coordinates (..., 3) to camera-frame points (..., 3); numpy or torch."""
        return _apply_to_points(self, voxel_coords, voxel_to_camera)

    def world_to_voxel(self, points_world_m, cam_to_world) -> np.ndarray:
        """Room-frame points (..., 3) to voxel coordinates (..., 3), given the (4, 4) camera pose."""
        cam_to_world = _check_rigid(cam_to_world, "cam_to_world")
        points = np.asarray(points_world_m, dtype=float)
        points_camera = (points - cam_to_world[:3, 3]) @ cam_to_world[:3, :3]
        return self.camera_to_voxel(points_camera)

    def contains(self, points_camera_m) -> np.ndarray:
        """(...,) bool: camera-frame points (..., 3) inside the box."""
        coords = np.asarray(self.camera_to_voxel(np.asarray(points_camera_m, dtype=float)))
        return np.all((coords >= -0.5) & (coords <= np.asarray(self.shape) - 0.5), axis=-1)


def _apply_to_points(grid: VoxelGrid, points, fn):
    is_numpy = not isinstance(points, torch.Tensor)
    tensor = torch.as_tensor(np.asarray(points, dtype=float)) if is_numpy else points
    if tensor.shape[-1:] != (3,):
        raise GridInputError(f"points must have shape (..., 3), got {tuple(tensor.shape)}")
    pose = grid.pose_tensor(tensor.device, tensor.dtype)
    flat = tensor.reshape(1, -1, 3)
    out = fn(flat, pose[None], grid.voxel_size_m).reshape(tensor.shape)
    return out.numpy() if is_numpy else out


# --------------------------------------------------------------------------------------------
# Batched helpers on (B, 4, 4) poses


def stack_grid_poses(grids, device=None, dtype=torch.float32) -> torch.Tensor:
    """(B, 4, 4) ``grid_to_camera`` of several grids, which must share shape and voxel size."""
    grids = list(grids)
    if not grids:
        raise GridInputError("stack_grid_poses: got no grids")
    for grid in grids[1:]:
        if grid.shape != grids[0].shape or grid.voxel_size_m != grids[0].voxel_size_m:
            raise GridInputError(
                f"stack_grid_poses: grids differ in shape/voxel size ({grid.shape}, {grid.voxel_size_m} m vs "
                f"{grids[0].shape}, {grids[0].voxel_size_m} m); a batch needs one grid layout"
            )
    return torch.stack([g.pose_tensor(device, dtype) for g in grids])


def _check_poses(grid_to_camera: torch.Tensor) -> None:
    if grid_to_camera.ndim != 3 or grid_to_camera.shape[-2:] != (4, 4):
        raise GridInputError(f"grid_to_camera must have shape (B, 4, 4), got {tuple(grid_to_camera.shape)}")


def voxel_centers_camera(grid_to_camera: torch.Tensor, shape, voxel_size_m: float) -> torch.Tensor:
    """Voxel centres of a batch of posed grids.

    Args:
        grid_to_camera: (B, 4, 4) grid poses.
        shape: (X, Y, Z) voxel counts.
        voxel_size_m: voxel edge, metres.
    Returns:
        (B, X, Y, Z, 3) centres in the camera frame, metres (dtype/device of ``grid_to_camera``).
    """
    _check_poses(grid_to_camera)
    axes = [torch.arange(n, device=grid_to_camera.device, dtype=grid_to_camera.dtype) for n in shape]
    ijk = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (X, Y, Z, 3)
    grid_points = (ijk + 0.5) * voxel_size_m
    rotation, translation = grid_to_camera[:, :3, :3], grid_to_camera[:, :3, 3]
    return torch.einsum("bij,xyzj->bxyzi", rotation, grid_points) + translation[:, None, None, None, :]


def camera_to_voxel(points_camera_m: torch.Tensor, grid_to_camera: torch.Tensor, voxel_size_m: float) -> torch.Tensor:
    """Camera-frame points to continuous voxel coordinates (voxel (i, j, k)'s centre is (i, j, k)).

    Args:
        points_camera_m: (B, N, 3) points, metres.
        grid_to_camera: (B, 4, 4) grid poses.
    Returns:
        (B, N, 3) voxel coordinates.
    """
    _check_poses(grid_to_camera)
    rotation, translation = grid_to_camera[:, :3, :3], grid_to_camera[:, :3, 3]
    grid_points = torch.einsum("bji,bnj->bni", rotation, points_camera_m - translation[:, None, :])
    return grid_points / voxel_size_m - 0.5


def voxel_to_camera(voxel_coords: torch.Tensor, grid_to_camera: torch.Tensor, voxel_size_m: float) -> torch.Tensor:
    """Continuous voxel coordinates to camera-frame points, the inverse of :func:`camera_to_voxel`.

    Args:
        voxel_coords: (B, N, 3) voxel coordinates.
        grid_to_camera: (B, 4, 4) grid poses.
    Returns:
        (B, N, 3) points in the camera frame, metres.
    """
    _check_poses(grid_to_camera)
    rotation, translation = grid_to_camera[:, :3, :3], grid_to_camera[:, :3, 3]
    grid_points = (voxel_coords + 0.5) * voxel_size_m
    return torch.einsum("bij,bnj->bni", rotation, grid_points) + translation[:, None, :]
