"""A pinhole camera in the room.

The camera frame is OpenCV's: x right, y down, z forward (optical axis), metres.
``cam_to_world`` (4, 4) maps camera-frame points to the room (world) frame:
``X_world = R @ X_cam + t`` with ``R = cam_to_world[:3, :3]``, ``t = cam_to_world[:3, 3]``
(the camera centre in the room).

Default intrinsics: the Azure Kinect colour camera in its 1920 x 1080 mode, the camera
of the PoseKernel dataset. The values (fx = fy = 914 px, cx = 957, cy = 547) are
approximate: each device ships its own factory calibration, and these are typical of
the calibrations people report for that mode (horizontal field of view ~92 degrees).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import RoomInputError

#: Approximate Azure Kinect colour intrinsics, 1920 x 1080 mode (pixels).
AZURE_KINECT_COLOR_1080P_INTRINSICS = np.array([[914.0, 0.0, 957.0], [0.0, 914.0, 547.0], [0.0, 0.0, 1.0]])
#: Its image size (width, height) in pixels.
AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX = (1920, 1080)


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera (no lens distortion).

    Attributes:
        intrinsics: (3, 3) camera matrix K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], pixels.
        image_size_px: (width, height) in pixels.
        cam_to_world: (4, 4) rigid transform from the camera frame to the room frame.
    """

    intrinsics: np.ndarray = field(default_factory=lambda: AZURE_KINECT_COLOR_1080P_INTRINSICS.copy())
    image_size_px: tuple[int, int] = AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX
    cam_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self):
        k = np.asarray(self.intrinsics, dtype=float)
        size = tuple(int(v) for v in np.asarray(self.image_size_px).reshape(-1))
        pose = np.asarray(self.cam_to_world, dtype=float)
        if k.shape != (3, 3) or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0, 0, 1]):
            raise RoomInputError(
                "intrinsics must be a finite 3x3 matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0 (pixels)."
            )
        if len(size) != 2 or min(size) <= 0:
            raise RoomInputError(f"image_size_px = {self.image_size_px!r}; give (width, height) in pixels.")
        if pose.shape != (4, 4) or not np.allclose(pose[3], [0, 0, 0, 1]):
            raise RoomInputError("cam_to_world must be a 4x4 rigid transform with last row (0, 0, 0, 1).")
        rotation = pose[:3, :3]
        if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
            raise RoomInputError("cam_to_world[:3, :3] must be a rotation (orthonormal, det +1).")
        object.__setattr__(self, "intrinsics", k)
        object.__setattr__(self, "image_size_px", size)
        object.__setattr__(self, "cam_to_world", pose)

    @classmethod
    def look_at(
        cls,
        eye_m,
        target_m,
        intrinsics=None,
        image_size_px=AZURE_KINECT_COLOR_1080P_IMAGE_SIZE_PX,
        up_world=(0.0, 0.0, 1.0),
    ) -> "Camera":
        """A camera at ``eye_m`` (3,) whose optical axis points at ``target_m`` (3,), upright
        (image x axis horizontal, image y axis pointing down along -``up_world``)."""
        eye = np.asarray(eye_m, dtype=float).reshape(3)
        forward = np.asarray(target_m, dtype=float).reshape(3) - eye
        if np.linalg.norm(forward) < 1e-9:
            raise RoomInputError("look_at: target_m equals eye_m; give a target away from the camera.")
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, np.asarray(up_world, dtype=float))
        if np.linalg.norm(right) < 1e-6:
            raise RoomInputError("look_at: the camera looks straight along up_world; tilt the target.")
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([right, down, forward], axis=1)
        pose[:3, 3] = eye
        k = AZURE_KINECT_COLOR_1080P_INTRINSICS.copy() if intrinsics is None else intrinsics
        return cls(k, image_size_px, pose)

    @property
    def world_to_cam(self) -> np.ndarray:
        """(4, 4) inverse of ``cam_to_world``."""
        inverse = np.eye(4)
        rotation = self.cam_to_world[:3, :3]
        inverse[:3, :3] = rotation.T
        inverse[:3, 3] = -rotation.T @ self.cam_to_world[:3, 3]
        return inverse

    @property
    def position_m(self) -> np.ndarray:
        """(3,) camera centre in the room frame."""
        return self.cam_to_world[:3, 3].copy()

    @property
    def optical_axis(self) -> np.ndarray:
        """(3,) unit viewing direction in the room frame."""
        return self.cam_to_world[:3, 2].copy()

    def world_to_camera(self, points_world_m) -> np.ndarray:
        """Room-frame points (..., 3) in the camera frame (..., 3)."""
        points = np.asarray(points_world_m, dtype=float)
        rotation, t = self.cam_to_world[:3, :3], self.cam_to_world[:3, 3]
        return (points - t) @ rotation

    def camera_to_world(self, points_cam_m) -> np.ndarray:
        """Camera-frame points (..., 3) in the room frame (..., 3)."""
        points = np.asarray(points_cam_m, dtype=float)
        return points @ self.cam_to_world[:3, :3].T + self.cam_to_world[:3, 3]

    def project(self, points_world_m) -> tuple[np.ndarray, np.ndarray]:
        """Project room-frame points (..., 3).

        Returns:
            pixels (..., 2) as (u, v) with u to the right and v down (NaN behind the
            camera), and depth_m (...,) the camera-frame z.
        """
        return project_points(self.world_to_camera(points_world_m), self.intrinsics)

    def in_view(self, points_world_m, margin_px: float = 0.0, min_depth_m: float = 0.1) -> np.ndarray:
        """(...,) bool: points in front of the camera projecting inside the image, at least
        ``margin_px`` from its border."""
        pixels, depth = self.project(points_world_m)
        width, height = self.image_size_px
        with np.errstate(invalid="ignore"):
            return (
                (depth > min_depth_m)
                & (pixels[..., 0] >= margin_px)
                & (pixels[..., 0] <= width - margin_px)
                & (pixels[..., 1] >= margin_px)
                & (pixels[..., 1] <= height - margin_px)
            )


def project_points(points_camera_m, intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of camera-frame points (..., 3) (OpenCV: x right, y down, z forward).

    intrinsics: (3, 3) camera matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]], pixels.
    Returns:
        pixels (..., 2) as (u, v) (NaN for points at or behind the camera, depth <= 0) and
        depth_m (...,) the camera-frame z.
    """
    cam = np.asarray(points_camera_m, dtype=float)
    depth = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        normalized = cam[..., :2] / np.where(depth > 0, depth, np.nan)[..., None]
    k = intrinsics
    u = k[0, 0] * normalized[..., 0] + k[0, 1] * normalized[..., 1] + k[0, 2]
    v = k[1, 1] * normalized[..., 1] + k[1, 2]
    return np.stack([u, v], axis=-1), depth
