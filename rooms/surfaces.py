"""Reflecting surfaces: planar polygons with a material, and closed meshes merged into them.

A :class:`Surface`'s corners run counter-clockwise around the normal that points out of the
air (into the solid), the orientation pyroomacoustics requires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .materials import Material
from .polygons import polygon_normal

__all__ = ["Surface", "boundary_loops", "drop_collinear", "merge_coplanar_faces"]


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


def boundary_loops(faces: np.ndarray) -> list[list[int]]:
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


def drop_collinear(polygon: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """Remove corners that lie on the straight line through their neighbours."""
    keep = []
    k = len(polygon)
    for i in range(k):
        a, b, c = polygon[i - 1], polygon[i], polygon[(i + 1) % k]
        if np.linalg.norm(np.cross(b - a, c - b)) > tolerance * max(np.linalg.norm(b - a) * np.linalg.norm(c - b), 1e-300):
            keep.append(i)
    return polygon[keep]


def merge_coplanar_faces(vertices: np.ndarray, faces: np.ndarray, materials: Sequence[Material]) -> tuple[Surface, ...]:
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
            loops = boundary_loops(faces[members])
            if len(loops) != 1:
                continue
            polygon = drop_collinear(vertices[loops[0]])
            if np.dot(polygon_normal(polygon), normals[members[0]]) < 0:
                polygon = polygon[::-1]
            surfaces.append(Surface(f"facet_{len(surfaces)}", polygon, materials[members[0]], vertices[faces[members]]))
            used[members] = True
    for f in np.flatnonzero(~used):
        surfaces.append(Surface(f"face_{f}", vertices[faces[f]], materials[f]))
    return tuple(surfaces)
