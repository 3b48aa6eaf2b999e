"""Room geometry: shoebox and polyhedral rooms, furniture, and geometric queries.

Frame: the room (world) frame, metres, z up, origin on the floor at a room corner.

Conventions
-----------
* A :class:`Surface` is a planar polygon ``polygon_m`` (K, 3) with a material. Its corners
  run counter-clockwise around the normal that points **out of the air** (into the
  solid): outwards for the walls of the room, into the furniture for furniture faces.
  This is the orientation pyroomacoustics requires (an image source is only created on
  the side a wall's normal points to).
* ``contains(points)`` is true for points in the air: inside the room shell and not
  inside any furniture.
* Furniture is a union of oriented boxes (:class:`Box`, rotated about z only). A table
  is its top slab only (legs a few cm wide send little energy back to the rig and
  would multiply the walls of the image-source model); seats and shelves are solid
  blocks standing on the floor.

Main types: :class:`ShoeboxRoom`, :class:`PolyhedralRoom` (from a ``trimesh.Trimesh``),
:class:`Furniture` (made by :func:`make_seat`, :func:`make_table`, :func:`make_shelf`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .air import air_absorption_energy_per_m, speed_of_sound_m_s
from .errors import RoomGeometryError, RoomInputError
from .materials import Material, get_material

#: Names of the six surfaces of a shoebox room (pyroomacoustics' names).
#: west: x = 0, east: x = Lx, south: y = 0, north: y = Ly, floor: z = 0, ceiling: z = Lz.
SHOEBOX_SURFACES = ("west", "east", "south", "north", "floor", "ceiling")
#: The lowest octave band pyroomacoustics uses.
_PRA_BASE_FREQUENCY_HZ = 125.0


# --------------------------------------------------------------------------------------
# small geometric helpers
# --------------------------------------------------------------------------------------


def _as_points(points, name: str) -> np.ndarray:
    """``points`` as a float array of shape (N, 3); a single (3,) point becomes (1, 3)."""
    array = np.asarray(points, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 3:
        raise RoomInputError(f"{name} has shape {np.shape(points)}; pass an (N, 3) array of points in metres.")
    if not np.all(np.isfinite(array)):
        raise RoomInputError(f"{name} contains NaN or infinite values; pass finite coordinates in metres.")
    return array


def polygon_normal(polygon_m: np.ndarray) -> np.ndarray:
    """Unit normal (3,) of a planar polygon (K, 3), right-handed with its corner order (Newell's method)."""
    p = np.asarray(polygon_m, dtype=float)
    q = np.roll(p, -1, axis=0)
    normal = np.array(
        [
            np.sum((p[:, 1] - q[:, 1]) * (p[:, 2] + q[:, 2])),
            np.sum((p[:, 2] - q[:, 2]) * (p[:, 0] + q[:, 0])),
            np.sum((p[:, 0] - q[:, 0]) * (p[:, 1] + q[:, 1])),
        ]
    )
    length = np.linalg.norm(normal)
    if length == 0.0:
        raise RoomInputError("a surface polygon has zero area; check its corners.")
    return normal / length


def polygon_area_2d(polygon_xy: np.ndarray) -> float:
    """Signed area of a 2D polygon (K, 2): positive when counter-clockwise."""
    x, y = np.asarray(polygon_xy, dtype=float).T
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def points_in_polygon_2d(points_xy: np.ndarray, polygon_xy: np.ndarray) -> np.ndarray:
    """Even-odd test: which of the points (N, 2) lie inside the polygon (K, 2). Returns (N,) bool."""
    points = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    a = np.asarray(polygon_xy, dtype=float)
    b = np.roll(a, -1, axis=0)
    x, y = points[:, :1], points[:, 1:]
    crosses = (a[None, :, 1] > y) != (b[None, :, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at_y = a[None, :, 0] + (y - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / (b[None, :, 1] - a[None, :, 1])
    return np.sum(crosses & (x < x_at_y), axis=1) % 2 == 1


def distance_to_polygon_edges_2d(points_xy: np.ndarray, polygon_xy: np.ndarray) -> np.ndarray:
    """Distance (N,) from each point (N, 2) to the nearest edge of a closed polygon (K, 2)."""
    points = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    a = np.asarray(polygon_xy, dtype=float)
    edge = np.roll(a, -1, axis=0) - a
    rel = points[:, None, :] - a[None, :, :]
    t = np.clip(np.sum(rel * edge, axis=2) / np.maximum(np.sum(edge * edge, axis=1), 1e-300), 0.0, 1.0)
    closest = a[None, :, :] + t[..., None] * edge[None, :, :]
    return np.min(np.linalg.norm(points[:, None, :] - closest, axis=2), axis=1)


def convex_hull_2d(points_xy: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (K, 2) of 2D points (monotone chain)."""
    pts = sorted(set(map(tuple, np.round(np.asarray(points_xy, dtype=float), 12))))
    if len(pts) < 3:
        return np.array(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def convex_polygons_overlap(polygon_a_xy, polygon_b_xy, clearance_m: float = 0.0) -> bool:
    """True unless two convex 2D polygons (K, 2) are separated by at least ``clearance_m``
    along one of their edge normals (separating-axis test; conservative for clearance > 0)."""
    a = np.asarray(polygon_a_xy, dtype=float)
    b = np.asarray(polygon_b_xy, dtype=float)
    for polygon in (a, b):
        edges = np.roll(polygon, -1, axis=0) - polygon
        normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
        for n in normals:
            pa, pb = a @ n, b @ n
            if pa.min() - pb.max() >= clearance_m or pb.min() - pa.max() >= clearance_m:
                return False
    return True


def segments_hit_triangles(starts_m, ends_m, triangles_m, endpoint_tolerance_m: float = 1e-6) -> np.ndarray:
    """Which segments cross at least one triangle (Moeller-Trumbore, vectorised).

    Args:
        starts_m: (N, 3) segment starts.
        ends_m: (N, 3) segment ends.
        triangles_m: (T, 3, 3) triangles.
        endpoint_tolerance_m: hits closer than this to either end of a segment are ignored
            (so a transducer a hair off a wall, or a reflection point on a wall, is not
            counted as blocked).

    Returns:
        (N,) bool, True where the open segment crosses a triangle.
    """
    starts = _as_points(starts_m, "starts_m")
    ends = _as_points(ends_m, "ends_m")
    if starts.shape != ends.shape:
        raise RoomInputError(f"starts_m {starts.shape} and ends_m {ends.shape} must have the same shape.")
    tris = np.asarray(triangles_m, dtype=float).reshape(-1, 3, 3)
    hits = np.zeros(len(starts), dtype=bool)
    if len(tris) == 0 or len(starts) == 0:
        return hits
    v0 = tris[:, 0]
    e1 = tris[:, 1] - v0
    e2 = tris[:, 2] - v0
    chunk = max(1, 2_000_000 // len(tris))
    for lo in range(0, len(starts), chunk):
        s = starts[lo : lo + chunk]
        d = ends[lo : lo + chunk] - s  # (n, 3), parameter t in [0, 1] along the segment
        length = np.linalg.norm(d, axis=1)
        p = np.cross(d[:, None, :], e2[None, :, :])  # (n, T, 3)
        det = np.einsum("tk,ntk->nt", e1, p)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tvec = s[:, None, :] - v0[None, :, :]
        u = np.einsum("ntk,ntk->nt", tvec, p) * inv
        q = np.cross(tvec, e1[None, :, :])
        v = np.einsum("nk,ntk->nt", d, q) * inv
        t = np.einsum("tk,ntk->nt", e2, q) * inv
        tol = (endpoint_tolerance_m / np.maximum(length, 1e-300))[:, None]
        inside = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > tol) & (t < 1 - tol)
        hits[lo : lo + chunk] = inside.any(axis=1)
    return hits


def _pra_band_centers_hz(fs_hz: float) -> np.ndarray:
    """Octave-band centres pyroomacoustics uses at ``fs_hz``: 125 Hz * 2**k, k < floor(log2(fs / 125))."""
    n_bands = math.floor(np.log2(fs_hz / _PRA_BASE_FREQUENCY_HZ))
    return _PRA_BASE_FREQUENCY_HZ * 2.0 ** np.arange(n_bands)


# --------------------------------------------------------------------------------------
# surfaces, boxes, furniture
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Surface:
    """A planar reflecting polygon.

    Attributes:
        name: e.g. ``"floor"``, ``"west"``, ``"seat_0/box0/top"``.
        polygon_m: (K, 3) corners, counter-clockwise around the normal pointing out of
            the air (into the solid).
        material: its :class:`Material`.
        triangles_m: (K - 2, 3, 3) triangulation with the same orientation.
    """

    name: str
    polygon_m: np.ndarray
    material: Material
    triangles_m: np.ndarray = field(repr=False, default=None)

    def __post_init__(self):
        polygon = np.asarray(self.polygon_m, dtype=float)
        object.__setattr__(self, "polygon_m", polygon)
        if self.triangles_m is None:  # fan triangulation, valid for convex polygons
            fan = np.stack([np.repeat(polygon[:1], len(polygon) - 2, axis=0), polygon[1:-1], polygon[2:]], axis=1)
            object.__setattr__(self, "triangles_m", fan)

    @property
    def normal(self) -> np.ndarray:
        """Unit normal (3,), pointing out of the air."""
        return polygon_normal(self.polygon_m)

    @property
    def area_m2(self) -> float:
        e1 = self.triangles_m[:, 1] - self.triangles_m[:, 0]
        e2 = self.triangles_m[:, 2] - self.triangles_m[:, 0]
        return float(0.5 * np.linalg.norm(np.cross(e1, e2), axis=1).sum())


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


# --------------------------------------------------------------------------------------
# rooms
# --------------------------------------------------------------------------------------


class Room:
    """Behaviour shared by :class:`ShoeboxRoom` and :class:`PolyhedralRoom`.

    Subclasses provide ``surfaces`` (the shell), ``furniture``, ``bounds_m``,
    ``floor_polygon_m``, ``volume_m3``, ``_shell_contains`` and
    ``signed_distance_to_shell_m``.
    """

    furniture: tuple[Furniture, ...]

    # -- to be provided by subclasses ---------------------------------------------------
    @property
    def surfaces(self) -> tuple[Surface, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _shell_contains(self, points: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def signed_distance_to_shell_m(self, points_m) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    @property
    def height_m(self) -> float:
        """Floor-to-highest-point height, m."""
        return float(self.bounds_m[1, 2] - self.bounds_m[0, 2])

    def with_furniture(self, furniture: Sequence[Furniture]):
        """A copy of this room with ``furniture`` (replacing the current furniture)."""
        room = dataclasses.replace(self, furniture=tuple(furniture))
        return room

    def furniture_surfaces(self) -> list[Surface]:
        """All furniture faces (normals into the furniture)."""
        surfaces = []
        for i, item in enumerate(self.furniture):
            surfaces += item.surfaces(f"{item.kind}_{i}")
        return surfaces

    def all_surfaces(self, include_furniture: bool = True) -> list[Surface]:
        """Shell surfaces followed by furniture surfaces."""
        return list(self.surfaces) + (self.furniture_surfaces() if include_furniture else [])

    def triangles(self, include_furniture: bool = True) -> np.ndarray:
        """(T, 3, 3) all triangles of the room (and furniture), normals out of the air."""
        return np.concatenate([s.triangles_m for s in self.all_surfaces(include_furniture)], axis=0)

    def to_trimesh(self, include_furniture: bool = True):
        """All triangles as one ``trimesh.Trimesh`` (for ray casting)."""
        import trimesh

        tris = self.triangles(include_furniture)
        return trimesh.Trimesh(vertices=tris.reshape(-1, 3), faces=np.arange(len(tris) * 3).reshape(-1, 3), process=False)

    def inside_furniture(self, points_m, margin_m: float = 0.0) -> np.ndarray:
        """(N,) bool: points deeper than ``margin_m`` inside any furniture."""
        points = _as_points(points_m, "points_m")
        inside = np.zeros(len(points), dtype=bool)
        for item in self.furniture:
            inside |= item.contains(points, margin_m)
        return inside

    def contains(self, points_m) -> np.ndarray:
        """(N,) bool: points in the air, i.e. inside the shell and not inside furniture."""
        points = _as_points(points_m, "points_m")
        return self._shell_contains(points) & ~self.inside_furniture(points)

    def segment_hits_walls(self, starts_m, ends_m, include_furniture: bool = True, endpoint_tolerance_m: float = 1e-6) -> np.ndarray:
        """(N,) bool: does the straight segment start -> end cross a wall (or furniture)?

        Args:
            starts_m, ends_m: (N, 3) or (3,) segment ends, room frame.
            include_furniture: count furniture faces as obstacles.
            endpoint_tolerance_m: crossings this close to an end are ignored.
        """
        return segments_hit_triangles(starts_m, ends_m, self.triangles(include_furniture), endpoint_tolerance_m)

    def horizontal_clearance_m(self, points_xy_m) -> np.ndarray:
        """(N,) distance on the floor plan from each (x, y) to the nearest wall, negative outside."""
        xy = np.asarray(points_xy_m, dtype=float).reshape(-1, 2)
        polygon = self.floor_polygon_m
        distance = distance_to_polygon_edges_2d(xy, polygon)
        return np.where(points_in_polygon_2d(xy, polygon), distance, -distance)

    def furniture_clearance_m(self, points_xy_m) -> np.ndarray:
        """(N,) distance on the floor plan from each (x, y) to the nearest furniture outline
        (negative inside an outline; +inf without furniture)."""
        xy = np.asarray(points_xy_m, dtype=float).reshape(-1, 2)
        clearance = np.full(len(xy), np.inf)
        for item in self.furniture:
            outline = item.footprint_xy()
            d = distance_to_polygon_edges_2d(xy, outline)
            clearance = np.minimum(clearance, np.where(points_in_polygon_2d(xy, outline), -d, d))
        return clearance

    # -- pyroomacoustics -------------------------------------------------------------------
    def _pra_walls(self, fs_hz: float, include_furniture: bool):
        import pyroomacoustics as pra

        centers = _pra_band_centers_hz(fs_hz)
        walls = []
        for surface in self.all_surfaces(include_furniture):
            absorption = surface.material.absorption_at_bands(centers)
            scattering = np.full(len(centers), surface.material.scattering)
            walls.append(
                pra.wall_factory(
                    np.ascontiguousarray(surface.polygon_m.T, dtype=np.float32), absorption, scattering, surface.name
                )
            )
        return walls

    def _use_shoebox_engine(self, include_furniture: bool) -> bool:
        return False

    def to_pyroomacoustics(
        self,
        fs_hz: float = 96_000.0,
        max_order: int = 17,
        temperature_c: float = 20.0,
        relative_humidity_pct: float = 50.0,
        air_absorption: bool = True,
        include_furniture: bool = True,
        **pra_kwargs,
    ):
        """This room as a ``pyroomacoustics`` room (no sources or microphones yet).

        Frequency-dependent wall absorption uses pyroomacoustics' octave bands, which at
        96 kHz are exactly ``OCTAVE_BANDS_HZ`` (125 Hz ... 32 kHz). The speed of sound and
        the air absorption are set from ``temperature_c`` and ``relative_humidity_pct``
        with this package's formulas (``speed_of_sound_m_s``; ISO 9613-1 evaluated at
        the band centres), replacing pyroomacoustics' own (a linear c(T) and a table that
        stops at 8 kHz).

        A shoebox without furniture (or with ``include_furniture=False``) becomes a
        ``pra.ShoeBox`` (fast image sources, order 17 is fine); every other room becomes
        a general ``pra.Room`` whose image-source cost grows as (walls)**order, so keep
        ``max_order`` at 2-4 there.

        Note: pyroomacoustics delays every RIR by ``pra.constants.get("frac_delay_length") // 2``
        samples (40 by default): a path of length d arrives at sample d / c * fs + 40.

        Returns:
            ``pra.ShoeBox`` or ``pra.Room``.
        """
        import pyroomacoustics as pra

        if not (isinstance(max_order, (int, np.integer)) and max_order >= 0):
            raise RoomInputError(f"max_order = {max_order!r}; give a non-negative integer.")
        if not (np.isfinite(fs_hz) and fs_hz >= 1000.0):
            raise RoomInputError(f"fs_hz = {fs_hz}; give a sample rate in Hz (96000 by default).")
        speed = speed_of_sound_m_s(temperature_c)
        air = air_absorption_energy_per_m(_pra_band_centers_hz(fs_hz), temperature_c, relative_humidity_pct)

        if self._use_shoebox_engine(include_furniture):
            materials = {name: self.materials[name].to_pyroomacoustics() for name in SHOEBOX_SURFACES}
            room = pra.ShoeBox(self.dimensions_m, fs=int(fs_hz), materials=materials, max_order=int(max_order), **pra_kwargs)
        else:
            room = pra.Room(self._pra_walls(fs_hz, include_furniture), fs=int(fs_hz), max_order=int(max_order), **pra_kwargs)
        room.set_sound_speed(speed)
        if air_absorption:
            centers = room.octave_bands.centers
            room.set_air_absorption(coefficients=list(air[: len(centers)]), center_freqs=list(centers))
        else:
            room.unset_air_absorption()
            room.air_absorption = None
        return room


def _shoebox_materials(materials) -> dict[str, Material]:
    if isinstance(materials, (Material, str)):
        material = get_material(materials) if isinstance(materials, str) else materials
        return {name: material for name in SHOEBOX_SURFACES}
    if not isinstance(materials, Mapping):
        raise RoomInputError(
            f"materials = {materials!r}; give one Material (or library name) for every surface, "
            f"or a dict with keys {SHOEBOX_SURFACES}."
        )
    missing = [name for name in SHOEBOX_SURFACES if name not in materials]
    extra = [name for name in materials if name not in SHOEBOX_SURFACES]
    if missing or extra:
        raise RoomInputError(
            f"materials keys: missing {missing}, unknown {extra}; use exactly {SHOEBOX_SURFACES}."
        )
    return {name: get_material(materials[name]) if isinstance(materials[name], str) else materials[name] for name in SHOEBOX_SURFACES}


@dataclass(frozen=True, eq=False)
class ShoeboxRoom(Room):
    """A rectangular room [0, Lx] x [0, Ly] x [0, Lz].

    Attributes:
        dimensions_m: (3,) Lx, Ly, Lz in metres.
        materials: one :class:`Material` (or library name) for all surfaces, or a dict
            surface name -> Material for the names in ``SHOEBOX_SURFACES``
            (west x=0, east x=Lx, south y=0, north y=Ly, floor, ceiling).
        furniture: extra geometry inside the room.
    """

    dimensions_m: np.ndarray
    materials: Mapping[str, Material] = "painted_plaster"
    furniture: tuple[Furniture, ...] = ()

    def __post_init__(self):
        dims = np.asarray(self.dimensions_m, dtype=float)
        if dims.shape != (3,) or not np.all(np.isfinite(dims)) or np.any(dims <= 0):
            raise RoomInputError(
                f"dimensions_m = {self.dimensions_m!r}; give three positive lengths (Lx, Ly, Lz) in metres."
            )
        object.__setattr__(self, "dimensions_m", dims)
        object.__setattr__(self, "materials", _shoebox_materials(self.materials))
        object.__setattr__(self, "furniture", tuple(self.furniture))
        _check_furniture_inside(self, self.furniture)

    @property
    def bounds_m(self) -> np.ndarray:
        """(2, 3) lower and upper corners."""
        return np.stack([np.zeros(3), self.dimensions_m])

    @property
    def volume_m3(self) -> float:
        return float(np.prod(self.dimensions_m))

    @property
    def floor_polygon_m(self) -> np.ndarray:
        """(4, 2) floor outline, counter-clockwise."""
        lx, ly, _ = self.dimensions_m
        return np.array([[0.0, 0.0], [lx, 0.0], [lx, ly], [0.0, ly]])

    @property
    def surfaces(self) -> tuple[Surface, ...]:
        lx, ly, lz = self.dimensions_m
        corners = {  # counter-clockwise around the outward normal
            "west": [[0, 0, 0], [0, 0, lz], [0, ly, lz], [0, ly, 0]],
            "east": [[lx, 0, 0], [lx, ly, 0], [lx, ly, lz], [lx, 0, lz]],
            "south": [[0, 0, 0], [lx, 0, 0], [lx, 0, lz], [0, 0, lz]],
            "north": [[0, ly, 0], [0, ly, lz], [lx, ly, lz], [lx, ly, 0]],
            "floor": [[0, 0, 0], [0, ly, 0], [lx, ly, 0], [lx, 0, 0]],
            "ceiling": [[0, 0, lz], [lx, 0, lz], [lx, ly, lz], [0, ly, lz]],
        }
        return tuple(Surface(name, np.array(corners[name], dtype=float), self.materials[name]) for name in SHOEBOX_SURFACES)

    def _shell_contains(self, points: np.ndarray) -> np.ndarray:
        return np.all((points > 0.0) & (points < self.dimensions_m), axis=1)

    def signed_distance_to_shell_m(self, points_m) -> np.ndarray:
        """(N,) distance to the nearest wall, positive inside, negative outside (approx. outside)."""
        points = _as_points(points_m, "points_m")
        return np.min(np.concatenate([points, self.dimensions_m - points], axis=1), axis=1)

    def _use_shoebox_engine(self, include_furniture: bool) -> bool:
        return not (include_furniture and self.furniture)


@dataclass(frozen=True, eq=False)
class PolyhedralRoom(Room):
    """A room bounded by a closed triangle mesh (any polyhedron, convex or not).

    Build it with :meth:`from_trimesh` or :meth:`from_floor_polygon`.

    Attributes:
        vertices_m: (V, 3) mesh vertices, room frame.
        faces: (F, 3) vertex indices, counter-clockwise around the outward normal.
        face_materials: F materials, one per triangle.
        furniture: extra geometry inside the room.
    """

    vertices_m: np.ndarray
    faces: np.ndarray
    face_materials: tuple[Material, ...]
    furniture: tuple[Furniture, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "vertices_m", np.asarray(self.vertices_m, dtype=float))
        object.__setattr__(self, "faces", np.asarray(self.faces, dtype=np.int64))
        object.__setattr__(self, "face_materials", tuple(self.face_materials))
        object.__setattr__(self, "furniture", tuple(self.furniture))
        if len(self.face_materials) != len(self.faces):
            raise RoomInputError(
                f"face_materials has {len(self.face_materials)} entries for {len(self.faces)} faces; give one per face."
            )
        _check_furniture_inside(self, self.furniture)

    @classmethod
    def from_trimesh(cls, mesh, materials: Material | str | Sequence[Material] = "painted_plaster", furniture: Sequence[Furniture] = ()) -> "PolyhedralRoom":
        """A room whose walls are the faces of a closed ``trimesh.Trimesh`` in the room frame.

        Args:
            mesh: watertight mesh with consistent winding; its lowest point should be the
                floor (z = 0 in the room frame). Inward-facing meshes are flipped.
            materials: one Material / library name for all faces, or one per face.
            furniture: furniture inside the room.
        """
        import trimesh

        if not isinstance(mesh, trimesh.Trimesh):
            raise RoomInputError(f"mesh is a {type(mesh).__name__}; pass a trimesh.Trimesh.")
        if not mesh.is_watertight or not mesh.is_winding_consistent:
            raise RoomInputError(
                "mesh is not a closed surface (watertight with consistent winding); "
                "close its holes, e.g. with trimesh.repair.fill_holes, or merge duplicate vertices."
            )
        vertices = np.asarray(mesh.vertices, dtype=float)
        faces = np.asarray(mesh.faces, dtype=np.int64)
        if mesh.volume < 0:
            faces = faces[:, ::-1]
        if isinstance(materials, (Material, str)):
            material = get_material(materials) if isinstance(materials, str) else materials
            face_materials = (material,) * len(faces)
        else:
            face_materials = tuple(get_material(m) if isinstance(m, str) else m for m in materials)
        return cls(vertices, faces, face_materials, tuple(furniture))

    @classmethod
    def from_floor_polygon(
        cls,
        floor_polygon_xy_m,
        height_m: float,
        wall_material: Material | str = "painted_plaster",
        floor_material: Material | str = "concrete",
        ceiling_material: Material | str = "painted_plaster",
        furniture: Sequence[Furniture] = (),
    ) -> "PolyhedralRoom":
        """A room made by extruding a simple floor polygon (K, 2) (e.g. an L shape) to ``height_m``."""
        polygon = np.asarray(floor_polygon_xy_m, dtype=float)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
            raise RoomInputError("floor_polygon_xy_m must be a (K >= 3, 2) array of corners in metres.")
        if polygon_area_2d(polygon) < 0:
            polygon = polygon[::-1]
        if not height_m > 0:
            raise RoomInputError(f"height_m = {height_m}; give a positive room height in metres.")
        k = len(polygon)
        vertices = np.concatenate([np.c_[polygon, np.zeros(k)], np.c_[polygon, np.full(k, height_m)]])
        ear = _ear_clip(polygon)  # counter-clockwise seen from above
        floor = [tuple(t[::-1]) for t in ear]  # outward normal -z
        ceiling = [tuple(np.asarray(t) + k) for t in ear]  # outward normal +z
        walls = []
        for i in range(k):
            j = (i + 1) % k
            walls += [(i, j, j + k), (i, j + k, i + k)]
        faces = np.array(floor + ceiling + walls, dtype=np.int64)
        mats = [get_material(m) if isinstance(m, str) else m for m in (floor_material, ceiling_material, wall_material)]
        face_materials = (mats[0],) * len(floor) + (mats[1],) * len(ceiling) + (mats[2],) * len(walls)
        return cls(vertices, faces, face_materials, tuple(furniture))

    @property
    def mesh(self):
        """The shell as a ``trimesh.Trimesh`` (built once)."""
        import trimesh

        cached = self.__dict__.get("_mesh_cache")
        if cached is None:
            cached = trimesh.Trimesh(self.vertices_m, self.faces, process=False)
            object.__setattr__(self, "_mesh_cache", cached)
        return cached

    @property
    def bounds_m(self) -> np.ndarray:
        return np.stack([self.vertices_m.min(axis=0), self.vertices_m.max(axis=0)])

    @property
    def volume_m3(self) -> float:
        return float(self.mesh.volume)

    @property
    def surfaces(self) -> tuple[Surface, ...]:
        """Coplanar neighbouring triangles of one material merged into polygons."""
        cached = self.__dict__.get("_surfaces_cache")
        if cached is None:
            cached = _merge_coplanar_faces(self.vertices_m, self.faces, self.face_materials)
            object.__setattr__(self, "_surfaces_cache", cached)
        return cached

    @property
    def floor_polygon_m(self) -> np.ndarray:
        """(K, 2) counter-clockwise outline of the floor (downward faces at the lowest z)."""
        normals = self.mesh.face_normals
        z_min = self.bounds_m[0, 2]
        on_floor = (normals[:, 2] < -0.999) & np.all(np.abs(self.vertices_m[self.faces][:, :, 2] - z_min) < 1e-6, axis=1)
        loops = _boundary_loops(self.faces[on_floor])
        if len(loops) != 1:
            raise RoomInputError(
                f"the floor of this mesh has {len(loops)} outlines; a room needs one connected floor without holes."
            )
        polygon = _drop_collinear(self.vertices_m[loops[0]])[:, :2]
        return polygon if polygon_area_2d(polygon) > 0 else polygon[::-1]

    def _shell_contains(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(self.mesh.contains(points), dtype=bool)

    def signed_distance_to_shell_m(self, points_m) -> np.ndarray:
        """(N,) distance to the nearest wall, positive inside, negative outside."""
        import trimesh

        points = _as_points(points_m, "points_m")
        return np.asarray(trimesh.proximity.signed_distance(self.mesh, points), dtype=float)


# --------------------------------------------------------------------------------------
# mesh helpers
# --------------------------------------------------------------------------------------


def _boundary_loops(faces: np.ndarray) -> list[list[int]]:
    """Closed vertex loops bounding a set of consistently wound faces (F, 3)."""
    directed = {(int(f[i]), int(f[(i + 1) % 3])) for f in faces for i in range(3)}
    boundary = [(a, b) for (a, b) in directed if (b, a) not in directed]
    nxt: dict[int, int] = {}
    for a, b in sorted(boundary):
        if a in nxt:  # a vertex touched twice: not a simple loop
            return [[-1], [-1]]
        nxt[a] = b
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt.get(v)
            if v is None:
                return [[-1], [-1]]
        loops.append(loop)
    return loops


def _drop_collinear(polygon: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """Remove corners that lie on the straight line through their neighbours."""
    keep = []
    k = len(polygon)
    for i in range(k):
        a, b, c = polygon[i - 1], polygon[i], polygon[(i + 1) % k]
        if np.linalg.norm(np.cross(b - a, c - b)) > tolerance * max(np.linalg.norm(b - a) * np.linalg.norm(c - b), 1e-300):
            keep.append(i)
    return polygon[keep]


def _merge_coplanar_faces(vertices: np.ndarray, faces: np.ndarray, materials: Sequence[Material]) -> tuple[Surface, ...]:
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    normals = mesh.face_normals
    used = np.zeros(len(faces), dtype=bool)
    surfaces = []
    for group in mesh.facets:
        group = [int(g) for g in group]
        by_material: dict[int, list[int]] = {}
        for g in group:
            by_material.setdefault(id(materials[g]), []).append(g)
        for members in by_material.values():
            loops = _boundary_loops(faces[members])
            if len(loops) != 1:
                continue
            polygon = _drop_collinear(vertices[loops[0]])
            if np.dot(polygon_normal(polygon), normals[members[0]]) < 0:
                polygon = polygon[::-1]
            surfaces.append(Surface(f"facet_{len(surfaces)}", polygon, materials[members[0]], vertices[faces[members]]))
            used[members] = True
    for f in np.flatnonzero(~used):
        surfaces.append(Surface(f"face_{f}", vertices[faces[f]], materials[f]))
    return tuple(surfaces)


def _in_closed_triangle(points_xy: np.ndarray, triangle_xy: np.ndarray, tolerance: float = 1e-12) -> np.ndarray:
    """(N,) bool: points inside or on the edges of a counter-clockwise triangle (3, 2)."""
    a, b, c = triangle_xy
    def side(p, q):
        return (q[0] - p[0]) * (points_xy[:, 1] - p[1]) - (q[1] - p[1]) * (points_xy[:, 0] - p[0])
    return (side(a, b) >= -tolerance) & (side(b, c) >= -tolerance) & (side(c, a) >= -tolerance)


def _ear_clip(polygon_xy: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangulate a simple counter-clockwise polygon (K, 2); triangles are counter-clockwise."""
    remaining = list(range(len(polygon_xy)))
    triangles = []

    def area(i, j, k):
        return polygon_area_2d(polygon_xy[[i, j, k]])

    guard = 0
    while len(remaining) > 3 and guard < 10_000:
        guard += 1
        for n in range(len(remaining)):
            i, j, k = remaining[n - 1], remaining[n], remaining[(n + 1) % len(remaining)]
            if area(i, j, k) <= 1e-12:
                continue
            others = [v for v in remaining if v not in (i, j, k)]
            if others and np.any(_in_closed_triangle(polygon_xy[others], polygon_xy[[i, j, k]])):
                continue
            triangles.append((i, j, k))
            remaining.pop(n)
            break
        else:
            raise RoomInputError("floor polygon is not simple (edges cross); give a non-self-intersecting outline.")
    triangles.append(tuple(remaining))
    return triangles


def _check_furniture_inside(room: Room, furniture: Sequence[Furniture]) -> None:
    """Raise if a piece of furniture pokes through the room shell."""
    for i, item in enumerate(furniture):
        if not isinstance(item, Furniture):
            raise RoomInputError(f"furniture[{i}] is a {type(item).__name__}; pass Furniture objects (make_seat, make_table, make_shelf).")
        corners = np.concatenate([box.corners() for box in item.boxes])
        # Corners may touch the floor and walls; pull them 1 mm towards the box centre.
        centers = np.concatenate([np.repeat(box.center_m[None], 8, axis=0) for box in item.boxes])
        probe = corners + 1e-3 * np.sign(centers - corners)
        if not np.all(room._shell_contains(probe)):
            bad = corners[~room._shell_contains(probe)][0]
            raise RoomGeometryError(
                f"furniture[{i}] ({item.kind}) has a corner at ({bad[0]:.2f}, {bad[1]:.2f}, {bad[2]:.2f}) m "
                f"outside the room; move or shrink it so it lies inside."
            )
