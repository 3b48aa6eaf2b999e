"""Furniture: unions of upright boxes (rotated about z) with one material, and their makers.

A table is its top slab only (legs a few cm wide send little energy back to the rig and would
multiply the walls of the image-source model); seats and shelves are solid blocks standing on
the floor. Furniture faces point into the furniture (out of the air).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import RoomInputError
from .materials import Material, get_material
from .polygons import convex_hull_2d
from .surfaces import Surface

__all__ = ["Box", "Furniture", "make_seat", "make_shelf", "make_table"]


@dataclass(frozen=True, eq=False)
class Box:
    """A box standing upright, rotated about z by ``yaw_rad``.

    Attributes:
        center_m: (3,) centre of the box.
        size_m: (3,) full extents along the box's own x, y and z axes.
        yaw_rad: rotation of the box's x axis from the room's x axis, about z.
    """

    center_m: np.ndarray
    size_m: np.ndarray
    yaw_rad: float = 0.0

    def __post_init__(self):
        center = np.asarray(self.center_m, dtype=float).reshape(3)
        size = np.asarray(self.size_m, dtype=float).reshape(3)
        if not np.all(np.isfinite(center)) or not np.all(np.isfinite(size)) or np.any(size <= 0):
            raise RoomInputError(f"Box size_m = {size.tolist()} must be positive and finite (metres).")
        object.__setattr__(self, "center_m", center)
        object.__setattr__(self, "size_m", size)
        object.__setattr__(self, "yaw_rad", float(self.yaw_rad))

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) rotation from box axes to room axes."""
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    @property
    def z_range_m(self) -> tuple[float, float]:
        return float(self.center_m[2] - self.size_m[2] / 2), float(self.center_m[2] + self.size_m[2] / 2)

    def to_local(self, points_m) -> np.ndarray:
        """Room-frame points (N, 3) in the box frame (origin at its centre)."""
        return (np.asarray(points_m, dtype=float).reshape(-1, 3) - self.center_m) @ self.rotation

    def contains(self, points_m, margin_m: float = 0.0) -> np.ndarray:
        """(N,) bool: points deeper than ``margin_m`` inside the box (negative margin grows it)."""
        local = np.abs(self.to_local(points_m))
        return np.all(local < self.size_m / 2 - margin_m, axis=1)

    def corners(self) -> np.ndarray:
        """(8, 3) corners in the room frame."""
        signs = np.array([[sx, sy, sz] for sz in (-1, 1) for sy in (-1, 1) for sx in (-1, 1)], dtype=float)
        return self.center_m + (signs * self.size_m / 2) @ self.rotation.T

    def footprint_xy(self) -> np.ndarray:
        """(4, 2) counter-clockwise outline of the box seen from above."""
        hx, hy = self.size_m[:2] / 2
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        return self.center_m[:2] + local @ self.rotation[:2, :2].T

    def faces(self) -> dict[str, np.ndarray]:
        """The six faces, name -> (4, 3) corners counter-clockwise around the box's OUTWARD normal."""
        hx, hy, hz = self.size_m / 2
        local = {
            "bottom": [[-hx, -hy, -hz], [-hx, hy, -hz], [hx, hy, -hz], [hx, -hy, -hz]],
            "top": [[-hx, -hy, hz], [hx, -hy, hz], [hx, hy, hz], [-hx, hy, hz]],
            "back": [[-hx, -hy, -hz], [-hx, -hy, hz], [-hx, hy, hz], [-hx, hy, -hz]],  # -x
            "front": [[hx, -hy, -hz], [hx, hy, -hz], [hx, hy, hz], [hx, -hy, hz]],  # +x
            "right": [[-hx, -hy, -hz], [hx, -hy, -hz], [hx, -hy, hz], [-hx, -hy, hz]],  # -y
            "left": [[-hx, hy, -hz], [-hx, hy, hz], [hx, hy, hz], [hx, hy, -hz]],  # +y
        }
        return {name: self.center_m + np.array(c) @ self.rotation.T for name, c in local.items()}


@dataclass(frozen=True, eq=False)
class Furniture:
    """A piece of furniture: a union of boxes with one material.

    Attributes:
        kind: ``"seat"``, ``"table"``, ``"shelf"`` or any other label.
        boxes: the boxes it is made of.
        material: its surface material.
        seat_point_m: (3,) for seats, the centre of the seat surface, where a sitting
            person's pelvis rests (``seat_point_m[2]`` is the seat height); else None.
        facing_xy: (2,) unit vector a person sitting on it looks along; None if not a seat.
    """

    kind: str
    boxes: tuple[Box, ...]
    material: Material
    seat_point_m: np.ndarray | None = None
    facing_xy: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "boxes", tuple(self.boxes))
        if not self.boxes:
            raise RoomInputError(f"Furniture {self.kind!r} has no boxes; give at least one Box.")
        if self.seat_point_m is not None:
            object.__setattr__(self, "seat_point_m", np.asarray(self.seat_point_m, dtype=float).reshape(3))
        if self.facing_xy is not None:
            facing = np.asarray(self.facing_xy, dtype=float).reshape(2)
            object.__setattr__(self, "facing_xy", facing / np.linalg.norm(facing))

    @property
    def seat_height_m(self) -> float | None:
        """Height of the seat surface above the floor, m (None if not a seat)."""
        return None if self.seat_point_m is None else float(self.seat_point_m[2])

    @property
    def top_height_m(self) -> float:
        """Height of the highest point, m."""
        return max(box.z_range_m[1] for box in self.boxes)

    def footprint_xy(self) -> np.ndarray:
        """(K, 2) counter-clockwise convex outline seen from above."""
        return convex_hull_2d(np.concatenate([box.footprint_xy() for box in self.boxes]))

    def contains(self, points_m, margin_m: float = 0.0) -> np.ndarray:
        """(N,) bool: points deeper than ``margin_m`` inside any of the boxes."""
        points = np.asarray(points_m, dtype=float).reshape(-1, 3)
        inside = np.zeros(len(points), dtype=bool)
        for box in self.boxes:
            inside |= box.contains(points, margin_m)
        return inside

    def surfaces(self, name: str) -> list[Surface]:
        """The reflecting faces, normals pointing INTO the furniture (out of the air).

        Bottom faces resting on the floor are left out (no sound reaches them).
        """
        surfaces = []
        for b, box in enumerate(self.boxes):
            for face_name, corners in box.faces().items():
                if face_name == "bottom" and box.z_range_m[0] <= 1e-6:
                    continue
                surfaces.append(Surface(f"{name}/box{b}/{face_name}", corners[::-1].copy(), self.material))
        return surfaces


def make_seat(
    position_xy_m,
    facing_yaw_rad: float = 0.0,
    seat_height_m: float = 0.45,
    seat_width_m: float = 0.5,
    seat_depth_m: float = 0.5,
    backrest_height_m: float = 0.9,
    material: Material | str = "upholstery_fabric",
) -> Furniture:
    """A chair: a solid block from the floor to ``seat_height_m`` plus a backrest slab.

    Args:
        position_xy_m: (2,) centre of the seat on the floor.
        facing_yaw_rad: direction a sitting person faces, angle from the room's x axis.
        seat_height_m: height of the seat surface (0.35-0.6 m for chairs and sofas).
        seat_width_m, seat_depth_m: seat size across and along the facing direction.
        backrest_height_m: top of the backrest above the floor (<= seat height: none).
        material: a Material or a library name.
    """
    if not (0.15 <= seat_height_m <= 1.0):
        raise RoomInputError(f"seat_height_m = {seat_height_m}; use 0.15-1.0 m (chairs are ~0.45 m, a child's ~0.3 m).")
    material = get_material(material) if isinstance(material, str) else material
    xy = np.asarray(position_xy_m, dtype=float).reshape(2)
    facing = np.array([math.cos(facing_yaw_rad), math.sin(facing_yaw_rad)])
    boxes = [Box([xy[0], xy[1], seat_height_m / 2], [seat_depth_m, seat_width_m, seat_height_m], facing_yaw_rad)]
    backrest_thickness_m = 0.08
    if backrest_height_m > seat_height_m + 0.05:
        back_xy = xy - facing * (seat_depth_m / 2 - backrest_thickness_m / 2)
        height = backrest_height_m - seat_height_m
        boxes.append(
            Box([back_xy[0], back_xy[1], seat_height_m + height / 2], [backrest_thickness_m, seat_width_m, height], facing_yaw_rad)
        )
    # Sitting point: the middle of the seat surface left free by the backrest.
    seat_xy = xy + facing * (backrest_thickness_m / 2 if len(boxes) > 1 else 0.0)
    return Furniture("seat", tuple(boxes), material, [seat_xy[0], seat_xy[1], seat_height_m], facing)


def make_table(
    center_xy_m,
    yaw_rad: float = 0.0,
    top_size_m=(1.2, 0.7),
    height_m: float = 0.75,
    top_thickness_m: float = 0.04,
    material: Material | str = "wood_16mm",
) -> Furniture:
    """A table: its top slab (legs are not modelled, see the module docstring)."""
    if not (0.3 <= height_m <= 1.2):
        raise RoomInputError(f"table height_m = {height_m}; use 0.3-1.2 m (desks are ~0.75 m).")
    material = get_material(material) if isinstance(material, str) else material
    xy = np.asarray(center_xy_m, dtype=float).reshape(2)
    top = Box([xy[0], xy[1], height_m - top_thickness_m / 2], [top_size_m[0], top_size_m[1], top_thickness_m], yaw_rad)
    return Furniture("table", (top,), material)


def make_shelf(
    center_xy_m,
    yaw_rad: float = 0.0,
    size_m=(0.8, 0.35),
    height_m: float = 1.8,
    material: Material | str = "wood_16mm",
) -> Furniture:
    """A shelf or cabinet: a solid block from the floor. ``size_m`` = (width, depth); its
    back is the box's -y side (so ``yaw_rad`` turns its front, +y, to the room)."""
    if not (0.3 <= height_m <= 2.6):
        raise RoomInputError(f"shelf height_m = {height_m}; use 0.3-2.6 m.")
    material = get_material(material) if isinstance(material, str) else material
    xy = np.asarray(center_xy_m, dtype=float).reshape(2)
    box = Box([xy[0], xy[1], height_m / 2], [size_m[0], size_m[1], height_m], yaw_rad)
    return Furniture("shelf", (box,), material)
