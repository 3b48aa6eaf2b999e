"""Polylines of image-source paths: where each path reflects, so the body can block it.

Shoeboxes unfold: the straight line from the image source to the microphone crosses the cell
boundaries x = k Lx, y = k Ly, z = k Lz at the reflections, and folding it back into the room
gives the polyline (:func:`shoebox_legs`). General rooms are traced back from the microphone:
the segment towards the image leaves the room through its generating wall, the image's parent
is its mirror across that wall, and so on down to the speaker (:func:`traced_legs`).
Every function returns legs as (starts (L, 3), ends (L, 3), path index (L,)), room frame, metres.
"""

from __future__ import annotations

import warnings

import numpy as np

from rooms.polygons import points_in_polygon_2d

__all__ = ["departure_directions", "earliest_arrival_of_order", "shoebox_images", "shoebox_legs", "traced_legs"]

#: An image chain traced back must land on its speaker within this distance (m).
TRACE_TOLERANCE_M = 1e-3


def shoebox_images(source: np.ndarray, dims: np.ndarray, orders_xyz: np.ndarray) -> np.ndarray:
    """(K, 3) float64 image positions for lattice indices (K, 3) (pyroomacoustics' formula)."""
    odd = (np.abs(orders_xyz) % 2) == 1
    return orders_xyz * dims + np.where(odd, dims - source, source)


def _fold(points: np.ndarray, dims: np.ndarray) -> np.ndarray:
    r = np.mod(points, 2.0 * dims)
    return np.where(r > dims, 2.0 * dims - r, r)


def shoebox_legs(images: np.ndarray, orders_xyz: np.ndarray, mic: np.ndarray, dims: np.ndarray):
    """Legs of shoebox paths by unfolding: the line image -> mic crosses the cell walls at the
    reflections; folding its pieces back into the room gives the polyline."""
    n_paths = len(images)
    if n_paths == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    orders = np.abs(orders_xyz).sum(axis=1)
    n_axis = max(int(np.abs(orders_xyz).max()), 1)
    j = np.arange(n_axis)
    direction = mic[None, :] - images  # (K, 3)
    ts = np.full((n_paths, 3, n_axis), np.inf)
    for d in range(3):
        n = orders_xyz[:, d][:, None]
        plane = np.where(n > 0, 1 + j[None, :], -j[None, :]) * dims[d]  # (K, n_axis)
        valid = j[None, :] < np.abs(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (plane - images[:, d][:, None]) / direction[:, d][:, None]
        ts[:, d, :] = np.where(valid, t, np.inf)
    ts = np.sort(ts.reshape(n_paths, -1), axis=1)[:, : max(int(orders.max()), 0)]
    ts = np.where(np.isfinite(ts), ts, 1.0)
    ts = np.concatenate([np.zeros((n_paths, 1)), ts, np.ones((n_paths, 1))], axis=1)  # (K, O + 2)
    points = _fold(images[:, None, :] + ts[..., None] * direction[:, None, :], dims)
    starts, ends = points[:, :-1], points[:, 1:]
    leg_index = np.arange(ts.shape[1] - 1)
    valid = leg_index[None, :] <= orders[:, None]
    path_of = np.broadcast_to(np.arange(n_paths)[:, None], valid.shape)
    return starts[valid], ends[valid], path_of[valid].astype(np.int64)


def _plane_frames(surfaces):
    """Per surface: origin, unit normal, in-plane axes u, v, and the polygon in (u, v)."""
    frames = []
    for surface in surfaces:
        poly = np.asarray(surface.polygon_m, dtype=float)
        n = np.asarray(surface.normal, dtype=float)
        origin = poly[0]
        u = poly[1] - poly[0]
        u = u - (u @ n) * n
        u /= np.linalg.norm(u)
        v = np.cross(n, u)
        frames.append((origin, n, u, v, np.stack([(poly - origin) @ u, (poly - origin) @ v], axis=1)))
    return frames


def traced_legs(images, gen_walls, orders, source, mic, surfaces):
    """Legs of general-room paths, traced back from the microphone.

    The segment from the current point towards the current image leaves the room through the
    image's generating wall (pyroomacoustics' ``walls`` for the first step, the first wall
    polygon crossed afterwards); the reflection point is that crossing and the image's parent
    its mirror across the wall.
    """
    n_paths = len(images)
    if n_paths == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    frames = _plane_frames(surfaces)
    origins = np.stack([f[0] for f in frames])
    normals = np.stack([f[1] for f in frames])
    current = np.repeat(mic[None, :], n_paths, axis=0)
    image = images.copy()
    wall = gen_walls.copy()
    remaining = orders.copy()
    previous = np.full(n_paths, -1, dtype=np.int64)
    starts, ends, owners = [], [], []
    first = True
    while np.any(remaining > 0):
        active = np.flatnonzero(remaining > 0)
        x, p = current[active], image[active]
        if first:
            w = wall[active]
        else:
            w = _first_wall_crossed(x, p, previous[active], frames, origins, normals)
        n, o = normals[w], origins[w]
        den = np.einsum("kd,kd->k", p - x, n)
        t = np.einsum("kd,kd->k", o - x, n) / np.where(np.abs(den) > 1e-12, den, 1e-12)
        q = x + np.clip(t, 0.0, 1.0)[:, None] * (p - x)
        starts.append(x)
        ends.append(q)
        owners.append(active)
        image[active] = p - 2.0 * np.einsum("kd,kd->k", p - o, n)[:, None] * n
        current[active] = q
        previous[active] = w
        remaining[active] -= 1
        first = False
    starts.append(current)
    ends.append(np.repeat(source[None, :], n_paths, axis=0))
    owners.append(np.arange(n_paths))
    starts, ends, owners = np.concatenate(starts), np.concatenate(ends), np.concatenate(owners).astype(np.int64)
    failed = np.flatnonzero(np.linalg.norm(image - source, axis=1) > TRACE_TOLERANCE_M)
    if len(failed) == 0:
        return starts, ends, owners
    # Paths through an edge or a corner (two reflections at one point, common with co-located
    # transducers) or grazing furniture: search the reflection sequence path by path.
    n_lost = 0
    replaced_starts, replaced_ends, replaced_owners = [], [], []
    for k in failed:
        legs = _trace_one(mic, images[k], int(gen_walls[k]), int(orders[k]), source, frames, origins, normals)
        if legs is None:  # keep the vectorised (approximate) legs
            n_lost += 1
            continue
        replaced_starts.append(np.array([a for a, _ in legs]))
        replaced_ends.append(np.array([b for _, b in legs]))
        replaced_owners.append(np.full(len(legs), k, dtype=np.int64))
    if replaced_owners:
        keep = ~np.isin(owners, np.concatenate(replaced_owners))
        starts = np.concatenate([starts[keep]] + replaced_starts)
        ends = np.concatenate([ends[keep]] + replaced_ends)
        owners = np.concatenate([owners[keep]] + replaced_owners)
    if n_lost:
        warnings.warn(
            f"{n_lost} image-source paths could not be traced back to their speaker; their legs are approximate.",
            RuntimeWarning,
            stacklevel=4,  # the caller of compute_room_acoustics
        )
    order = np.argsort(owners, kind="stable")
    return starts[order], ends[order], owners[order]


def _trace_one(mic, image, gen_wall, order, source, frames, origins, normals):
    """Legs [(start, end), ...] of one path by depth-first search over the walls crossed
    (ties at edges and corners included), or None."""

    def crossings(x, p, previous):
        seg = p - x
        found = []
        for wi, (origin, n, u, v, poly2d) in enumerate(frames):
            den = seg @ n
            if wi == previous or den <= 1e-12:
                continue
            t = ((origin - x) @ n) / den
            slack = 1e-4 / max(float(np.linalg.norm(seg)), 1e-9)  # 0.1 mm: pyroomacoustics' images are float32
            if t < -slack or t > 1.0 + slack:
                continue
            q = x + t * seg
            rel = q - origin
            if points_in_polygon_2d(np.array([[rel @ u, rel @ v]]), poly2d, edge_tolerance_m=1e-4)[0]:
                found.append((t, wi, q))
        found.sort(key=lambda item: item[0])
        return found

    def search(x, p, previous, remaining, forced):
        if remaining == 0:
            return [(x, source.copy())] if np.linalg.norm(p - source) <= TRACE_TOLERANCE_M else None
        options = crossings(x, p, previous)
        if forced is not None:
            options = [item for item in options if item[1] == forced]
        for _, wi, q in options:
            n, o = normals[wi], origins[wi]
            parent = p - 2.0 * ((p - o) @ n) * n
            rest = search(q, parent, wi, remaining - 1, None)
            if rest is not None:
                return [(x, q)] + rest
        return None

    return search(np.asarray(mic, dtype=float), np.asarray(image, dtype=float), -1, order, gen_wall)


def _first_wall_crossed(x, p, previous, frames, origins, normals):
    """(K,) index of the first wall polygon the segments x -> p cross outwards."""
    k = len(x)
    best_t = np.full(k, np.inf)
    best_w = np.full(k, -1, dtype=np.int64)
    fallback_t = np.full(k, np.inf)
    fallback_w = np.zeros(k, dtype=np.int64)
    seg = p - x
    for wi, (origin, n, u, v, poly2d) in enumerate(frames):
        den = seg @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((origin - x) @ n) / den
        ok = (den > 1e-12) & (t > 1e-9) & (t <= 1.0 + 1e-9) & (previous != wi)
        if not ok.any():
            continue
        better_fallback = ok & (t < fallback_t)
        fallback_t[better_fallback] = t[better_fallback]
        fallback_w[better_fallback] = wi
        q = x + t[:, None] * seg
        rel = q - origin
        inside = np.zeros(k, dtype=bool)
        inside[ok] = points_in_polygon_2d(np.stack([rel[ok] @ u, rel[ok] @ v], axis=1), poly2d, edge_tolerance_m=1e-6)
        better = inside & (t < best_t)
        best_t[better] = t[better]
        best_w[better] = wi
    return np.where(best_w >= 0, best_w, fallback_w)


def departure_directions(starts, ends, owners, n_paths: int, speaker, fallback) -> np.ndarray:
    """(K, 3) direction in which each of ``n_paths`` paths leaves ``speaker``: along its leg with an end at the
    speaker (the first leg, whichever way the legs run), from the speaker towards that leg's other end.

    fallback: (K, 3) used for a path whose speaker leg is missing or shorter than 1 micrometre (a speaker on
    a wall); the image-to-microphone direction, exact for the direct path. Directivity uses these directions
    (the image's mirrored aim towards the microphone gives the same gain, ``simulator.directivity``).
    """
    out = np.array(fallback, dtype=float, copy=True).reshape(n_paths, 3)
    if n_paths == 0 or len(owners) == 0:
        return out
    speaker = np.asarray(speaker, dtype=float)
    at_start = np.linalg.norm(starts - speaker, axis=1)
    at_end = np.linalg.norm(ends - speaker, axis=1)
    other = np.where((at_start <= at_end)[:, None], ends, starts)
    closeness = np.minimum(at_start, at_end)
    # per path, the leg that touches the speaker most closely
    order = np.lexsort((closeness, owners))
    first = order[np.r_[True, owners[order][1:] != owners[order][:-1]]]
    direction = other[first] - speaker
    good = (closeness[first] < TRACE_TOLERANCE_M) & (np.linalg.norm(direction, axis=1) > 1e-6)
    out[owners[first][good]] = direction[good]
    return out


def earliest_arrival_of_order(speakers, microphones, dims, order: int) -> float:
    """Shortest path length (m) of any shoebox image of exactly ``order`` over all pairs."""
    r = np.arange(-order, order + 1)
    nx, ny, nz = np.meshgrid(r, r, r, indexing="ij")
    lattice = np.stack([nx.ravel(), ny.ravel(), nz.ravel()], axis=1)
    lattice = lattice[np.abs(lattice).sum(axis=1) == order]
    best = np.inf
    for s in speakers:
        images = shoebox_images(s, dims, lattice)
        d = np.linalg.norm(images[:, None, :] - microphones[None, :, :], axis=2)
        best = min(best, float(d.min()))
    return best
