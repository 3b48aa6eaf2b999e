"""Polygon and segment geometry: 2D outlines, planar polygons, segment-triangle crossings.

Pure numpy functions on arrays of metres (room frame); no room, no material.
"""

from __future__ import annotations

import numpy as np

from .errors import RoomInputError

__all__ = [
    "convex_hull_2d",
    "convex_polygons_overlap",
    "distance_to_polygon_edges_2d",
    "ear_clip",
    "points_in_polygon_2d",
    "polygon_area_2d",
    "polygon_normal",
    "segments_hit_triangles",
]


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


def points_in_polygon_2d(points_xy: np.ndarray, polygon_xy: np.ndarray, edge_tolerance_m: float | None = None) -> np.ndarray:
    """Even-odd test: which of the points (N, 2) lie inside the polygon (K, 2). Returns (N,) bool.

    edge_tolerance_m: if given, points closer than this to an edge count as inside too (for
        reflection points computed in float32 by pyroomacoustics that land on a wall's rim).
    """
    points = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    a = np.asarray(polygon_xy, dtype=float)
    b = np.roll(a, -1, axis=0)
    x, y = points[:, :1], points[:, 1:]
    crosses = (a[None, :, 1] > y) != (b[None, :, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at_y = a[None, :, 0] + (y - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / (b[None, :, 1] - a[None, :, 1])
    inside = np.sum(crosses & (x < x_at_y), axis=1) % 2 == 1
    if edge_tolerance_m is None:
        return inside
    return inside | _near_edges_2d(x, y, a, b, edge_tolerance_m)


def _near_edges_2d(x, y, a, b, tolerance_m: float) -> np.ndarray:
    """(N,) bool: points (x, y: (N, 1)) within ``tolerance_m`` of an edge a -> b ((K, 2) each)."""
    ax, ay, bx, by = a[:, 0][None], a[:, 1][None], b[:, 0][None], b[:, 1][None]
    ex, ey = bx - ax, by - ay
    length2 = np.maximum(ex * ex + ey * ey, 1e-30)
    t = np.clip(((x - ax) * ex + (y - ay) * ey) / length2, 0.0, 1.0)
    dist2 = (x - ax - t * ex) ** 2 + (y - ay - t * ey) ** 2
    return dist2.min(axis=1) < tolerance_m * tolerance_m


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


def _in_closed_triangle(points_xy: np.ndarray, triangle_xy: np.ndarray, tolerance: float = 1e-12) -> np.ndarray:
    """(N,) bool: points inside or on the edges of a counter-clockwise triangle (3, 2)."""
    a, b, c = triangle_xy
    def side(p, q):
        return (q[0] - p[0]) * (points_xy[:, 1] - p[1]) - (q[1] - p[1]) * (points_xy[:, 0] - p[0])
    return (side(a, b) >= -tolerance) & (side(b, c) >= -tolerance) & (side(c, a) >= -tolerance)


def ear_clip(polygon_xy: np.ndarray) -> list[tuple[int, int, int]]:
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
