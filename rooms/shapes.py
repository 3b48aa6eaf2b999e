"""Rooms: the shoebox and the polyhedral room (any closed mesh), with their furniture.

Frame: the room (world) frame, metres, z up, origin on the floor at a room corner.
``contains(points)`` is true for points in the air: inside the room shell and not inside any
furniture. The export to pyroomacoustics lives in :mod:`rooms.pra_export`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .errors import RoomGeometryError, RoomInputError
from .furniture import Furniture
from .materials import Material, get_material
from .polygons import (
    _as_points,
    distance_to_polygon_edges_2d,
    ear_clip,
    points_in_polygon_2d,
    polygon_area_2d,
    segments_hit_triangles,
)
from .pra_export import SHOEBOX_SURFACES, to_pyroomacoustics
from .surfaces import Surface, boundary_loops, drop_collinear, merge_coplanar_faces

__all__ = ["PolyhedralRoom", "Room", "ShoeboxRoom"]


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
        return to_pyroomacoustics(self, fs_hz, max_order, temperature_c, relative_humidity_pct, air_absorption,
                                  include_furniture, **pra_kwargs)


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
        ear = ear_clip(polygon)  # counter-clockwise seen from above
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
            cached = merge_coplanar_faces(self.vertices_m, self.faces, self.face_materials)
            object.__setattr__(self, "_surfaces_cache", cached)
        return cached

    @property
    def floor_polygon_m(self) -> np.ndarray:
        """(K, 2) counter-clockwise outline of the floor (downward faces at the lowest z)."""
        normals = self.mesh.face_normals
        z_min = self.bounds_m[0, 2]
        on_floor = (normals[:, 2] < -0.999) & np.all(np.abs(self.vertices_m[self.faces][:, :, 2] - z_min) < 1e-6, axis=1)
        loops = boundary_loops(self.faces[on_floor])
        if len(loops) != 1:
            raise RoomInputError(
                f"the floor of this mesh has {len(loops)} outlines; a room needs one connected floor without holes."
            )
        polygon = drop_collinear(self.vertices_m[loops[0]])[:, :2]
        return polygon if polygon_area_2d(polygon) > 0 else polygon[::-1]

    def _shell_contains(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(self.mesh.contains(points), dtype=bool)

    def signed_distance_to_shell_m(self, points_m) -> np.ndarray:
        """(N,) distance to the nearest wall, positive inside, negative outside."""
        import trimesh

        points = _as_points(points_m, "points_m")
        return np.asarray(trimesh.proximity.signed_distance(self.mesh, points), dtype=float)


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
