"""Numba kernels of the body-echo model (the numerical core; the API is in body_echo.py).

Time is measured here in *fine samples*: units of 1 / (oversampling * sample_rate_hz).
For every (transmitter, receiver) pair and every facet that both see, the kernels deposit
the facet's weighted delay-area distribution onto a fine time grid, pre-filtered by a hat
(linear B-spline) of half-width one fine sample:

    grid[m] += w * (hat * D)(m),

where D is the density (in time) of the two-way delay tau(x) = (|x - s| + |x - r|) / c over
the facet area, normalised to unit integral. With tau linear over a triangle (exact delays at
the vertices), D is the linear B-spline with knots at the three vertex delays: a sum of three
ramps, D = sum_k alpha_k (t - t_k)_+. The grid stores second differences, so that each ramp
costs four writes (a cubic B-spline, the second difference of the hat-filtered ramp K2) however
long the facet's delay span; the caller integrates twice (cumsum). Facets narrower than a fine
sample are evaluated directly as (hat * D)(m) = 2 [ta, tb, tc] K2(m - .), a second divided
difference of K2, the second antiderivative of the hat (Curry-Schoenberg). Facets whose delay
departs from linear by more than a tolerance (large facets close to the transducers) are split
in four, recursively.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Knot spacing (fine samples) below which divided differences switch to their confluent limits.
_CONFLUENT_EPS = 1e-4
# Rising or falling edge (fine samples) below which a facet's density edge is treated as a step.
_JUMP_EPS = 1e-2
# Deepest recursive split of one facet (4**12 sub-triangles would be far beyond any use).
_MAX_DEPTH = 12
_STACK_SIZE = 4 * _MAX_DEPTH + 8


@njit(cache=True, inline="always")
def _k1(u):
    """Cumulative integral of the hat max(0, 1 - |u|)."""
    if u <= -1.0:
        return 0.0
    if u < 0.0:
        return 0.5 * (u + 1.0) * (u + 1.0)
    if u < 1.0:
        return 1.0 - 0.5 * (1.0 - u) * (1.0 - u)
    return 1.0


@njit(cache=True, inline="always")
def _k2(u):
    """Second antiderivative of the hat: 0 for u <= -1, u for u >= 1, cubic between."""
    if u <= -1.0:
        return 0.0
    if u < 0.0:
        return (u + 1.0) ** 3 / 6.0
    if u < 1.0:
        return u + (1.0 - u) ** 3 / 6.0
    return u


@njit(cache=True, inline="always")
def _first_difference(m, a, b):
    """[a, b] of f(tau) = K2(m - tau), with the confluent limit -K1 for b close to a."""
    if b - a < _CONFLUENT_EPS:
        return -_k1(m - 0.5 * (a + b))
    return (_k2(m - b) - _k2(m - a)) / (b - a)


@njit(cache=True, inline="always")
def _cubic_bspline(u):
    """Centred cubic B-spline (hat * hat)(u), support (-2, 2)."""
    u = abs(u)
    if u < 1.0:
        return 2.0 / 3.0 - u * u + 0.5 * u * u * u
    if u < 2.0:
        return (2.0 - u) ** 3 / 6.0
    return 0.0


@njit(cache=True, inline="always")
def _add(row, i, value):
    if 0 <= i < row.shape[0]:
        row[i] += value


@njit(cache=True, inline="always")
def _add_ramp(row, row_start, t, slope):
    """Second difference of slope * K2(m - t): a ramp starting at t, hat-filtered."""
    m0 = int(math.floor(t)) - 1
    for m in range(m0, m0 + 4):
        _add(row, m + 1 - row_start, slope * _cubic_bspline(m - t))


@njit(cache=True, inline="always")
def _add_step(row, row_start, t, height):
    """Second difference of height * K1(m - t): a step at t, hat-filtered."""
    m0 = int(math.floor(t)) - 1
    for m in range(m0, m0 + 4):
        _add(row, m + 1 - row_start, height * (_k1(m + 1.0 - t) - 2.0 * _k1(m - t) + _k1(m - 1.0 - t)))


@njit(cache=True)
def _deposit_triangle(row, row_start, ta, tb, tc, weight):
    """Add the second difference of ``weight`` times the hat-filtered delay density of a triangle.

    ``row`` holds second differences: the density itself is cumsum(cumsum(row)). A triangle's
    density is a linear B-spline (knots ta <= tb <= tc, fine samples, any input order), i.e. three
    ramps; each ramp costs four writes whatever the facet's delay span. Facets narrower than one
    fine sample are evaluated directly (divided differences of K2, with confluent limits).
    Writes outside the row are dropped (only affects samples at or after them).
    """
    if ta > tb:
        ta, tb = tb, ta
    if tb > tc:
        tb, tc = tc, tb
    if ta > tb:
        ta, tb = tb, ta
    span = tc - ta
    if span >= 1.0:
        peak = 2.0 / span  # density at tb (unit area)
        if tb - ta < _JUMP_EPS:  # rising edge shorter than _JUMP_EPS: a step, then a ramp down
            t0 = 0.5 * (ta + tb)
            slope = -weight * peak / (tc - t0)
            _add_step(row, row_start, t0, weight * peak)
            _add_ramp(row, row_start, t0, slope)
            _add_ramp(row, row_start, tc, -slope)
        elif tc - tb < _JUMP_EPS:  # falling edge a step
            t0 = 0.5 * (tb + tc)
            slope = weight * peak / (t0 - ta)
            _add_ramp(row, row_start, ta, slope)
            _add_ramp(row, row_start, t0, -slope)
            _add_step(row, row_start, t0, -weight * peak)
        else:
            rise = weight * peak / (tb - ta)
            fall = weight * peak / (tc - tb)
            _add_ramp(row, row_start, ta, rise)
            _add_ramp(row, row_start, tb, -rise - fall)
            _add_ramp(row, row_start, tc, fall)
        return
    # narrow facet: direct values v[m] = 2 [ta, tb, tc] K2(m - .), stored as second differences
    base = math.floor(ta)
    a = ta - base
    b = tb - base
    c = tc - base
    i0 = int(base) - row_start
    if span < _CONFLUENT_EPS:  # all delays equal: the density is a delta -> a hat
        mid = (a + b + c) / 3.0
        m0 = int(math.floor(mid))
        frac = mid - m0
        values = (weight * (1.0 - frac), weight * frac)
        for k in range(2):
            _add(row, i0 + m0 + k, values[k])
            _add(row, i0 + m0 + k + 1, -2.0 * values[k])
            _add(row, i0 + m0 + k + 2, values[k])
        return
    scale = 2.0 * weight / span
    for m in range(0, int(math.ceil(c)) + 2):  # support (a - 1, c + 1), a in [0, 1)
        value = scale * (_first_difference(m, b, c) - _first_difference(m, a, b))
        _add(row, i0 + m, value)
        _add(row, i0 + m + 1, -2.0 * value)
        _add(row, i0 + m + 2, value)


@njit(cache=True, inline="always")
def _distance(x, y, z, p):
    dx = x - p[0]
    dy = y - p[1]
    dz = z - p[2]
    return math.sqrt(dx * dx + dy * dy + dz * dz)


@njit(cache=True, inline="always")
def _path(point, s, r):
    """|point - s| + |point - r| for a (3,) point."""
    return _distance(point[0], point[1], point[2], s) + _distance(point[0], point[1], point[2], r)


@njit(cache=True)
def vertex_distances(vertices, positions, used):
    """|x_v - p_i| for every vertex v and every position i with used[i] (else 0): (n_pos, V)."""
    out = np.zeros((positions.shape[0], vertices.shape[0]))
    for i in range(positions.shape[0]):
        if used[i]:
            for v in range(vertices.shape[0]):
                out[i, v] = _distance(vertices[v, 0], vertices[v, 1], vertices[v, 2], positions[i])
    return out


@njit(cache=True)
def pair_delay_bounds(
    faces, normals, centroids, max_edges, lit, positions, vertex_distance, pair_tx, pair_rx, delay_scale
):
    """Bounds on the two-way delay over the facets lit for each pair.

    The path length f(x) = |x - s| + |x - r| is convex, so its maximum over a triangle is at a
    vertex. Its minimum may be inside (the specular point); since |grad f| <= 2 it is at least
    the smallest vertex value minus twice the longest edge, and at least the mirror path across
    the facet's plane.

    Args:
        faces: (F, 3) int64. normals, centroids: (F, 3). max_edges: (F,) metres.
        lit: (n_positions, F) bool, facet visible from and facing each position.
        positions: (n_positions, 3) float64, metres.
        vertex_distance: (n_positions, V) from ``vertex_distances``.
        pair_tx, pair_rx: (P,) int64 indices into positions.
        delay_scale: samples per metre of path (sample_rate / c).
    Returns:
        bounds: (P, 2) float64 [lower, upper] delay in samples; (+inf, -inf) for an unlit pair.
        n_lit: (P,) int64 number of facets lit for the pair.
    """
    n_pairs = pair_tx.shape[0]
    bounds = np.empty((n_pairs, 2))
    n_lit = np.zeros(n_pairs, dtype=np.int64)
    for p in range(n_pairs):
        s = positions[pair_tx[p]]
        r = positions[pair_rx[p]]
        dist_s = vertex_distance[pair_tx[p]]
        dist_r = vertex_distance[pair_rx[p]]
        lo = np.inf
        hi = -np.inf
        lit_s = lit[pair_tx[p]]
        lit_r = lit[pair_rx[p]]
        for f in range(faces.shape[0]):
            if not (lit_s[f] and lit_r[f]):
                continue
            n_lit[p] += 1
            f_lo = np.inf
            for k in range(3):
                path = dist_s[faces[f, k]] + dist_r[faces[f, k]]
                hi = max(hi, path)
                f_lo = min(f_lo, path)
            f_lo -= 2.0 * max_edges[f]
            if f_lo < lo:  # mirror s across the facet plane for a tighter bound
                height = 0.0
                for d in range(3):
                    height += normals[f, d] * (s[d] - centroids[f, d])
                mirror = _distance(r[0], r[1], r[2], s - 2.0 * height * normals[f])
                lo = min(lo, max(f_lo, mirror))
        bounds[p, 0] = lo * delay_scale
        bounds[p, 1] = hi * delay_scale
    return bounds, n_lit


@njit(cache=True, inline="always")
def _leaf_facing(cx, cy, cz, nx, ny, nz, s, r):
    """For a leaf triangle of centroid (cx, cy, cz) and unit normal (nx, ny, nz): (n.u_s + n.u_r, R_s R_r, lit),
    lit False when it faces away from either end or an end lies on it (the leaf is then dropped). Shared by
    ``_next_leaf`` and ``_next_moving_leaf``; their weights divide the one by the other, as written out before."""
    dist_s = _distance(cx, cy, cz, s)
    dist_r = _distance(cx, cy, cz, r)
    if dist_s < 1e-9 or dist_r < 1e-9:
        return 0.0, 1.0, False
    cos_s = (nx * (s[0] - cx) + ny * (s[1] - cy) + nz * (s[2] - cz)) / dist_s
    cos_r = (nx * (r[0] - cx) + ny * (r[1] - cy) + nz * (r[2] - cz)) / dist_r
    if cos_s <= 0.0 or cos_r <= 0.0:
        return 0.0, 1.0, False
    return cos_s + cos_r, dist_s * dist_r, True


@njit(cache=True, inline="always")
def _next_leaf(stack, stack_depth, top, normal, weight, s, r, delay_scale, max_delay_error):
    """Pop triangles off ``stack`` (``top`` entries), splitting each in four while its delay is not linear,
    until one is deposited as it is: (top, t0, t1, t2, w, True) with its corner delays (fine samples) and
    weight ``weight * 0.25**depth * (n.u_s + n.u_r) / (R_s R_r)``, or (0, ..., False) once the stack is empty.
    Triangles facing away from either end (or touching one) are dropped. The one subdivision of
    ``_deposit_subdivided`` and ``_deposit_subdivided_nodes``.
    """
    nx, ny, nz = normal[0], normal[1], normal[2]
    while top > 0:
        top -= 1
        tri = stack[top]
        depth = stack_depth[top]
        t0 = _path(tri[0], s, r) * delay_scale
        t1 = _path(tri[1], s, r) * delay_scale
        t2 = _path(tri[2], s, r) * delay_scale
        if depth < _MAX_DEPTH:
            # delay at the edge midpoints against linear interpolation
            worst = 0.0
            for k in range(3):
                k2 = (k + 1) % 3
                mx = 0.5 * (tri[k, 0] + tri[k2, 0])
                my = 0.5 * (tri[k, 1] + tri[k2, 1])
                mz = 0.5 * (tri[k, 2] + tri[k2, 2])
                tm = (_distance(mx, my, mz, s) + _distance(mx, my, mz, r)) * delay_scale
                tk = t0 if k == 0 else (t1 if k == 1 else t2)
                tk2 = t1 if k2 == 1 else (t2 if k2 == 2 else t0)
                worst = max(worst, abs(tm - 0.5 * (tk + tk2)))
            if worst > max_delay_error:
                # split into four by the edge midpoints; the children replace it on the stack
                m01 = 0.5 * (tri[0] + tri[1])
                m12 = 0.5 * (tri[1] + tri[2])
                m20 = 0.5 * (tri[2] + tri[0])
                v0 = tri[0].copy()
                v1 = tri[1].copy()
                v2 = tri[2].copy()
                children = ((v0, m01, m20), (m01, v1, m12), (m20, m12, v2), (m01, m12, m20))
                for child in children:
                    for k in range(3):
                        for d in range(3):
                            stack[top, k, d] = child[k][d]
                    stack_depth[top] = depth + 1
                    top += 1
                continue
        facing, distances, lit = _leaf_facing((tri[0, 0] + tri[1, 0] + tri[2, 0]) / 3.0,
                                              (tri[0, 1] + tri[1, 1] + tri[2, 1]) / 3.0,
                                              (tri[0, 2] + tri[1, 2] + tri[2, 2]) / 3.0, nx, ny, nz, s, r)
        if not lit:
            continue
        return top, t0, t1, t2, weight * 0.25**depth * facing / distances, True
    return 0, 0.0, 0.0, 0.0, 0.0, False


@njit(cache=True)
def _deposit_subdivided(
    row, row_start, triangle, normal, weight, s, r, delay_scale, max_delay_error, stack, stack_depth
):
    """Deposit one facet, splitting it in four (recursively) while its delay is not linear (``_next_leaf``).

    triangle: (3, 3) vertices. weight: gain * reflection * area of the whole facet.
    stack, stack_depth: scratch buffers of _STACK_SIZE entries.
    """
    stack[0] = triangle
    stack_depth[0] = 0
    top = 1
    while top > 0:
        top, t0, t1, t2, w, found = _next_leaf(stack, stack_depth, top, normal, weight, s, r, delay_scale,
                                                max_delay_error)
        if found:
            _deposit_triangle(row, row_start, t0, t1, t2, w)


@njit(cache=True)
def deposit_pair_echoes(
    vertices,
    faces,
    normals,
    areas,
    centroids,
    max_edges,
    reflection,
    lit,
    positions,
    vertex_distance,
    pair_tx,
    pair_rx,
    pair_channel,
    pair_gain,
    delay_scale,
    grid,
    grid_start,
    max_delay_error,
):
    """Accumulate the weighted delay-area densities of all lit facets of all pairs.

    The weight of a (sub-)triangle of area A centred at x with unit normal n is
    gain * reflection * A * (n.u_s + n.u_r) / (|x - s| |x - r|), where u_s, u_r are the unit
    vectors from x towards transmitter s and receiver r. (The caller multiplies by
    1 / (16 pi^2 c) and differentiates in time.)

    Args:
        vertices (V, 3), faces (F, 3), normals (F, 3) unit, areas (F,) m^2, centroids (F, 3),
        max_edges (F,) longest edge of each facet, m, reflection (F,).
        lit: (n_positions, F) bool. positions: (n_positions, 3).
        vertex_distance: (n_positions, V) from ``vertex_distances``.
        pair_tx, pair_rx, pair_channel: (P,) int64. pair_gain: (P,) float64.
        delay_scale: fine samples per metre of path.
        grid: (C, L) float64, second differences of the densities, accumulated in place;
            grid[c, i] is fine sample grid_start[c] + i. Integrate twice (cumsum) to use.
        grid_start: (C,) int64.
        max_delay_error: split a triangle while its delay departs from linear by more than
            this many fine samples at an edge midpoint.
    """
    stack = np.empty((_STACK_SIZE, 3, 3))
    stack_depth = np.empty(_STACK_SIZE, dtype=np.int64)
    triangle = np.empty((3, 3))
    for p in range(pair_tx.shape[0]):
        s = positions[pair_tx[p]]
        r = positions[pair_rx[p]]
        lit_s = lit[pair_tx[p]]
        lit_r = lit[pair_rx[p]]
        dist_sv = vertex_distance[pair_tx[p]]
        dist_rv = vertex_distance[pair_rx[p]]
        row = grid[pair_channel[p]]
        row_start = grid_start[pair_channel[p]]
        for f in range(faces.shape[0]):
            if not (lit_s[f] and lit_r[f]):
                continue
            _deposit_facet(row, row_start, f, pair_gain[p] * reflection[f] * areas[f], vertices, faces, normals,
                           centroids, max_edges, s, r, dist_sv, dist_rv, delay_scale, max_delay_error, triangle,
                           stack, stack_depth)


@njit(cache=True)
def deposit_entry_echoes(
    vertices,
    faces,
    normals,
    areas,
    centroids,
    max_edges,
    positions,
    vertex_distance,
    entry_tx,
    entry_rx,
    entry_facet,
    entry_row,
    entry_gain,
    delay_scale,
    grid,
    grid_start,
    max_delay_error,
):
    """``deposit_pair_echoes`` for a list of (pair, facet) entries, each into its own grid row.

    Entry e deposits facet entry_facet[e] as seen by transmitter entry_tx[e] and receiver entry_rx[e]
    (indices into positions) with weight entry_gain[e] * areas[f] * (n.u_s + n.u_r) / (|x - s| |x - r|)
    into grid[entry_row[e]] (fine sample grid_start[entry_row[e]] + i): the same arithmetic, facet by
    facet, as ``deposit_pair_echoes``. The caller chooses the entries (no lit test here), e.g. the
    facets of one delay-rate bin of a moving body.

    Args:
        entry_tx, entry_rx, entry_facet, entry_row: (E,) int64. entry_gain: (E,) float64 (pair gain times
        the facet's reflection coefficient and transducer gains). Others as in ``deposit_pair_echoes``.
    """
    stack = np.empty((_STACK_SIZE, 3, 3))
    stack_depth = np.empty(_STACK_SIZE, dtype=np.int64)
    triangle = np.empty((3, 3))
    for e in range(entry_tx.shape[0]):
        f = entry_facet[e]
        row = grid[entry_row[e]]
        _deposit_facet(row, grid_start[entry_row[e]], f, entry_gain[e] * areas[f], vertices, faces, normals,
                       centroids, max_edges, positions[entry_tx[e]], positions[entry_rx[e]],
                       vertex_distance[entry_tx[e]], vertex_distance[entry_rx[e]], delay_scale, max_delay_error,
                       triangle, stack, stack_depth)


@njit(cache=True, inline="always")
def _needs_split(dist_s, dist_r, edge, delay_scale, max_delay_error):
    """Does a facet (centroid at dist_s and dist_r from the ends, longest edge ``edge``) need subdividing?"""
    # |d^2/dl^2 |x - s|| <= 1 / |x - s| along any line, so the delay departs from linear
    # by at most edge^2 / 8 * (1 / min|x - s| + 1 / min|x - r|) over the facet
    near_s = dist_s - edge
    near_r = dist_r - edge
    curved = near_s <= 0.0 or near_r <= 0.0
    return curved or 0.125 * edge * edge * (1.0 / near_s + 1.0 / near_r) * delay_scale > max_delay_error


@njit(cache=True, inline="always")
def _facing(normal, s, r, cx, cy, cz, dist_s, dist_r):
    """(n.u_s, n.u_r): the cosines between a facet's normal and the directions to its two ends."""
    cos_s = (normal[0] * (s[0] - cx) + normal[1] * (s[1] - cy) + normal[2] * (s[2] - cz)) / dist_s
    cos_r = (normal[0] * (r[0] - cx) + normal[1] * (r[1] - cy) + normal[2] * (r[2] - cz)) / dist_r
    return cos_s, cos_r


@njit(cache=True, inline="always")
def _deposit_facet(row, row_start, f, weight, vertices, faces, normals, centroids, max_edges, s, r, dist_sv,
                   dist_rv, delay_scale, max_delay_error, triangle, stack, stack_depth):
    """Deposit facet f of weight ``gain * reflection * area`` for transmitter s and receiver r (one pair)."""
    cx, cy, cz = centroids[f, 0], centroids[f, 1], centroids[f, 2]
    dist_s = _distance(cx, cy, cz, s)
    dist_r = _distance(cx, cy, cz, r)
    if _needs_split(dist_s, dist_r, max_edges[f], delay_scale, max_delay_error):
        for k in range(3):
            for d in range(3):
                triangle[k, d] = vertices[faces[f, k], d]
        _deposit_subdivided(
            row, row_start, triangle, normals[f], weight, s, r, delay_scale, max_delay_error, stack, stack_depth
        )
        return
    cos_s, cos_r = _facing(normals[f], s, r, cx, cy, cz, dist_s, dist_r)
    if cos_s <= 0.0 or cos_r <= 0.0:
        return
    a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
    _deposit_triangle(
        row,
        row_start,
        (dist_sv[a] + dist_rv[a]) * delay_scale,
        (dist_sv[b] + dist_rv[b]) * delay_scale,
        (dist_sv[c] + dist_rv[c]) * delay_scale,
        weight * (cos_s + cos_r) / (dist_s * dist_r),
    )


# -- moving bodies (``simulator.motion_echo``'s fast method) ------------------------------------------------------
@njit(cache=True, inline="always")
def _band_terms(rate, centre_hz, beta_hz_s):
    """(delay shift s, phase rad, curvature rad / Hz^2, amplitude) of ``simulator.motion_echo.band_coupling``."""
    a = 1.0 - rate
    shift_s = rate * centre_hz / (a * a * beta_hz_s)
    kappa = math.pi * rate * (2.0 - rate) / (a * a * beta_hz_s)
    return shift_s, kappa * centre_hz * centre_hz, kappa, 1.0 / a


@njit(cache=True, inline="always")
def _facet_bounds(f, faces, max_edges, dist_sv, dist_rv):
    """Path-length bounds (m) of facet f for one pair, as ``pair_delay_bounds`` takes them per facet."""
    pa = dist_sv[faces[f, 0]] + dist_rv[faces[f, 0]]
    pb = dist_sv[faces[f, 1]] + dist_rv[faces[f, 1]]
    pc = dist_sv[faces[f, 2]] + dist_rv[faces[f, 2]]
    return min(pa, min(pb, pc)) - 2.0 * max_edges[f], max(pa, max(pb, pc))


# -- moving bodies, batched (``simulator.motion_echo``'s fast method since issue 15) ------------------------------
# The per-path formulas of the unbatched kernels (``tests/motion_echo_reference.py``), reorganised for speed: each
# pair's lit facets are gathered first, then their terms computed in one loop and deposited in another (independent
# iterations the CPU overlaps), with the floating-point reassociation flags below. Those only reorder roundings
# (no NaN / infinity assumptions, no approximate functions): results agree with the unbatched kernels to float64
# rounding, not bit for bit (``tests/test_motion_echo.py`` bounds the echo's difference by 1e-9 of its peak).
_REASSOCIATE = {"nsz", "arcp", "contract", "reassoc"}


@njit(cache=True, inline="always")
def _unit_phasor(theta):
    """(cos theta, sin theta), |theta| up to ~1e5 rad: theta reduced by multiples of pi / 2 (two-term Cody-Waite:
    error ~|theta| 2^-53 rad, i.e. the rounding theta already carries) and fdlibm's minimax polynomials on
    [-pi / 4, pi / 4] (error below 1e-16). Inline arithmetic: libm's cos and sin of a phase of tens of radians
    each reduce it again, the slow part of a path's terms."""
    quadrant = math.floor(theta * (2.0 / math.pi) + 0.5)
    x = (theta - quadrant * 1.5707963267341256e+00) - quadrant * 6.0771005065061922e-11
    z = x * x
    sin_x = x + x * z * (-1.66666666666666324348e-01 + z * (8.33333333332248946124e-03 + z * (
        -1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 + z * (-2.50507602534068634195e-08
                                                                         + z * 1.58969099521155010221e-10)))))
    cos_x = 1.0 - 0.5 * z + z * z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * (
        2.48015872894767294178e-05 + z * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09
                                                                        - z * 1.13596475577881948265e-11)))))
    q = int(quadrant) & 3
    if q == 0:
        return cos_x, sin_x
    if q == 1:
        return -sin_x, cos_x
    if q == 2:
        return -cos_x, -sin_x
    return sin_x, -cos_x


@njit(cache=True, inline="always")
def _exp_near_zero(x):
    """exp(x), inline for |x| <= 2 (a path's decay exponent k_s times its delay shift, a few tenths at most unless the
    shift wraps across the period): exp(x) = p(x / 8)^8, p the Taylor polynomial of degree 13 (truncation
    (1/4)^14 / 14! < 1e-19 relative; the three squarings multiply p's rounding by 8: ~1e-15 relative). Beyond, libm's
    exp. Why: a libm call per path is the slow part of the decay (it keeps the terms loop from overlapping
    iterations)."""
    if abs(x) > 2.0:
        return math.exp(x)
    u = 0.125 * x
    p = 1.0 + u * (1.0 + u * (1.0 / 2.0 + u * (1.0 / 6.0 + u * (1.0 / 24.0 + u * (1.0 / 120.0 + u * (1.0 / 720.0 + u * (
        1.0 / 5040.0 + u * (1.0 / 40320.0 + u * (1.0 / 362880.0 + u * (1.0 / 3628800.0 + u * (1.0 / 39916800.0 + u * (
            1.0 / 479001600.0 + u * (1.0 / 6227020800.0)))))))))))))
    p = p * p
    p = p * p
    return p * p


@njit(cache=True, inline="always")
def _lit_paths(words_s, words_r, out):
    """Facets lit by both ends, in increasing order, into ``out``: returns how many. ``words_s``, ``words_r``: the
    two ends' lit masks as bytes (0 or 1) packed eight facets a uint64 word, facet 8 j + k in byte k of word j
    (little-endian), zero padded."""
    n = 0
    for j in range(words_s.shape[0]):
        both = words_s[j] & words_r[j]
        if both == 0:       # eight facets at once: a pair sees a tenth of a body's facets, in runs of indices
            continue
        # written unconditionally and kept by advancing the count: no branch to mispredict on the scattered lit
        # facets (``out`` has room for every facet plus eight)
        for k in range(8):
            out[n] = 8 * j + k
            n += np.int64((both >> np.uint64(8 * k)) & np.uint64(1))
    return n


@njit(cache=True, fastmath=_REASSOCIATE, error_model="numpy")
def position_facet_terms(centroids, normals, facet_velocity, lit, positions, used):
    """What a path's two ends contribute separately, computed once per (position, facet) rather than once per path
    (a position ends many paths: a speaker with each microphone and each microphone image): for every position i
    with used[i] and facet f lit from it, (n_positions, F) arrays of the centroid's distance R = |x_f - p_i|, the
    facet velocity's component along the unit vector from p_i, v_f . (x_f - p_i) / R (the path's delay rate is the
    sum of its two ends' over c, as the reference's ``_facet_rate``), and the facing cosine n_f . (p_i - x_f) / R
    (``_facing``). Entries for other (position, facet) are left unset: read only those of lit paths."""
    n_positions, n_facets = lit.shape
    distance = np.empty((n_positions, n_facets))
    along = np.empty((n_positions, n_facets))
    facing = np.empty((n_positions, n_facets))
    for i in range(n_positions):
        if not used[i]:
            continue
        px, py, pz = positions[i, 0], positions[i, 1], positions[i, 2]
        for f in range(n_facets):
            if not lit[i, f]:
                continue
            ax, ay, az = centroids[f, 0] - px, centroids[f, 1] - py, centroids[f, 2] - pz
            d = math.sqrt(ax * ax + ay * ay + az * az)
            distance[i, f] = d
            along[i, f] = (facet_velocity[f, 0] * ax + facet_velocity[f, 1] * ay + facet_velocity[f, 2] * az) / d
            facing[i, f] = -(normals[f, 0] * ax + normals[f, 1] * ay + normals[f, 2] * az) / d
    return distance, along, facing


@njit(cache=True, fastmath=_REASSOCIATE, error_model="numpy")
def moving_path_extents(faces, max_edges, along, lit_words, vertex_distance, pair_tx, pair_rx, pair_centre_hz,
                        pair_beta_hz_s, pair_node_spacing, speed_of_sound, sample_rate, max_start):
    """The reference ``moving_pair_extents`` (``tests/motion_echo_reference.py``: the same (P, 4) extents and (P,)
    counts, to rounding: a node index may differ by one where kappa / spacing rounds onto an integer, which
    ``deposit_moving_paths`` tolerates), batched, plus the paths it found: (E,) int32 facet indices, pair by pair in
    increasing order, pair p's at offsets[p]:offsets[p + 1] ((P + 1,) int64), for ``deposit_moving_paths`` not to
    search the lit masks again. ``along``: ``position_facet_terms``' velocity components (a path's delay rate is the
    sum of its ends' over c). ``lit_words``: (n_positions, W) uint64, the (n_positions, F) bool lit masks zero
    padded to 8 W facets and viewed as words (``_lit_paths``)."""
    n_pairs = pair_tx.shape[0]
    out = np.empty((n_pairs, 4))
    counts = np.zeros(n_pairs, dtype=np.int64)
    scale = sample_rate / speed_of_sound
    facets = np.empty(8 * lit_words.shape[1] + 8, dtype=np.int64)
    offsets = np.zeros(n_pairs + 1, dtype=np.int64)
    paths = np.empty(max(faces.shape[0], 16), dtype=np.int32)
    for p in range(n_pairs):
        along_s = along[pair_tx[p]]
        along_r = along[pair_rx[p]]
        dist_sv = vertex_distance[pair_tx[p]]
        dist_rv = vertex_distance[pair_rx[p]]
        n_lit = _lit_paths(lit_words[pair_tx[p]], lit_words[pair_rx[p]], facets)
        if offsets[p] + n_lit > paths.shape[0]:      # grow geometrically
            grown = np.empty(max(2 * paths.shape[0], offsets[p] + n_lit), dtype=np.int32)
            grown[:offsets[p]] = paths[:offsets[p]]
            paths = grown
        lo, hi, node_lo, node_hi = np.inf, -np.inf, np.inf, -np.inf
        n = 0
        for e in range(n_lit):
            f = facets[e]
            first_m, last_m = _facet_bounds(f, faces, max_edges, dist_sv, dist_rv)
            # the ``max_start`` test here, on the bounds computed once (nearly every lit facet passes it)
            if first_m * scale >= max_start:
                continue
            paths[offsets[p] + n] = f
            n += 1
            rate = (along_s[f] + along_r[f]) / speed_of_sound
            shift_s, _, kappa, _ = _band_terms(rate, pair_centre_hz[p], pair_beta_hz_s[p])
            lo = min(lo, first_m * scale + shift_s * sample_rate)
            hi = max(hi, last_m * scale + shift_s * sample_rate)
            node = math.floor(kappa / pair_node_spacing[p])
            node_lo = min(node_lo, node)
            node_hi = max(node_hi, node)
        counts[p] = n
        offsets[p + 1] = offsets[p] + n
        out[p, 0], out[p, 1], out[p, 2], out[p, 3] = lo, hi, node_lo, node_hi
    return out, counts, paths[:offsets[n_pairs]], offsets


@njit(cache=True, inline="always")
def _add_ramp_lanes(grid, row_start, lane, t, slope):
    """``_add_ramp`` into four adjacent float64 columns lane .. lane + 3 of ``grid`` with four slopes (two complex
    nodes as (re, im, re, im)); the cubic B-spline's four taps written out for t's fractional part u:
    (1 - u)^3 / 6, 2/3 - u^2 (1 - u / 2), 2/3 - (1 - u)^2 (1 - (1 - u) / 2), u^3 / 6."""
    base = math.floor(t)
    u = t - base
    v = 1.0 - u
    taps = (v * v * v / 6.0, 2.0 / 3.0 - u * u * (1.0 - 0.5 * u), 2.0 / 3.0 - v * v * (1.0 - 0.5 * v),
            u * u * u / 6.0)
    i = int(base) - row_start
    for j in range(4):
        if 0 <= i + j < grid.shape[0]:
            for k in range(4):
                # unsigned indices (both are >= 0 here): no negative-index wraparound per lane, the four lanes
                # one vector read-modify-write
                grid[np.uintp(i + j), np.uintp(lane + k)] += slope[k] * taps[j]


@njit(cache=True, inline="always")
def _add_lanes(grid, i, lane, weights, value):
    if 0 <= i < grid.shape[0]:
        for k in range(4):
            grid[np.uintp(i), np.uintp(lane + k)] += weights[k] * value     # unsigned: as ``_add_ramp_lanes``


@njit(cache=True)
def _deposit_triangle_lanes(grid, row_start, lane, ta, tb, tc, weights):
    """The reference ``_deposit_triangle_nodes`` (``tests/motion_echo_reference.py``) into a float64 view of the
    complex grid: four lanes (two complex nodes), the weights a (4,) tuple (re_a, im_a, re_b, im_b). The same
    density, its values computed in another order."""
    # sorted without branches (which knot is earliest is a coin toss from one facet to the next)
    low, high = min(ta, tb), max(ta, tb)
    ta, tb, tc = min(low, tc), max(low, min(high, tc)), max(high, tc)
    span = tc - ta
    if span >= 1.0:
        peak = 2.0 / span
        if tb - ta < _JUMP_EPS:
            t0 = 0.5 * (ta + tb)
            k = -peak / (tc - t0)
            m0 = int(math.floor(t0)) - 1
            for m in range(m0, m0 + 4):
                _add_lanes(grid, m + 1 - row_start, lane, weights,
                           peak * (_k1(m + 1.0 - t0) - 2.0 * _k1(m - t0) + _k1(m - 1.0 - t0)))
            _add_ramp_lanes(grid, row_start, lane, t0, (weights[0] * k, weights[1] * k, weights[2] * k,
                                                         weights[3] * k))
            _add_ramp_lanes(grid, row_start, lane, tc, (-weights[0] * k, -weights[1] * k, -weights[2] * k,
                                                         -weights[3] * k))
        elif tc - tb < _JUMP_EPS:
            t0 = 0.5 * (tb + tc)
            k = peak / (t0 - ta)
            _add_ramp_lanes(grid, row_start, lane, ta, (weights[0] * k, weights[1] * k, weights[2] * k,
                                                         weights[3] * k))
            _add_ramp_lanes(grid, row_start, lane, t0, (-weights[0] * k, -weights[1] * k, -weights[2] * k,
                                                         -weights[3] * k))
            m0 = int(math.floor(t0)) - 1
            for m in range(m0, m0 + 4):
                _add_lanes(grid, m + 1 - row_start, lane, weights,
                           -peak * (_k1(m + 1.0 - t0) - 2.0 * _k1(m - t0) + _k1(m - 1.0 - t0)))
        else:
            rise = peak / (tb - ta)
            fall = peak / (tc - tb)
            both = -(rise + fall)
            _add_ramp_lanes(grid, row_start, lane, ta, (weights[0] * rise, weights[1] * rise, weights[2] * rise,
                                                         weights[3] * rise))
            _add_ramp_lanes(grid, row_start, lane, tb, (weights[0] * both, weights[1] * both, weights[2] * both,
                                                         weights[3] * both))
            _add_ramp_lanes(grid, row_start, lane, tc, (weights[0] * fall, weights[1] * fall, weights[2] * fall,
                                                         weights[3] * fall))
        return
    base = math.floor(ta)
    a = ta - base
    b = tb - base
    c = tc - base
    i0 = int(base) - row_start
    if span < _CONFLUENT_EPS:
        mid = (a + b + c) / 3.0
        m0 = int(math.floor(mid))
        frac = mid - m0
        for k in range(2):
            v = (1.0 - frac) if k == 0 else frac
            _add_lanes(grid, i0 + m0 + k, lane, weights, v)
            _add_lanes(grid, i0 + m0 + k + 1, lane, weights, -2.0 * v)
            _add_lanes(grid, i0 + m0 + k + 2, lane, weights, v)
        return
    scale = 2.0 / span
    for m in range(0, int(math.ceil(c)) + 2):
        v = scale * (_first_difference(m, b, c) - _first_difference(m, a, b))
        _add_lanes(grid, i0 + m, lane, weights, v)
        _add_lanes(grid, i0 + m + 1, lane, weights, -2.0 * v)
        _add_lanes(grid, i0 + m + 2, lane, weights, v)


@njit(cache=True, inline="always")
def _push_triangle(stack, stack_delays, stack_depth, top, a, b, c, ta, tb, tc, depth):
    """Put the triangle of corners a, b, c ((x, y, z) tuples) and corner delays ta, tb, tc on the stack at ``top``."""
    corners = (a, b, c)
    for k in range(3):
        for d in range(3):
            stack[top, k, d] = corners[k][d]
    stack_delays[top, 0], stack_delays[top, 1], stack_delays[top, 2] = ta, tb, tc
    stack_depth[top] = depth
    return top + 1


@njit(cache=True, inline="always")
def _next_moving_leaf(stack, stack_delays, stack_depth, top, normal, s, r, delay_scale, max_delay_error):
    """``_next_leaf`` with weight 1, each triangle's corner delays (fine samples) carried on ``stack_delays``
    ((_STACK_SIZE, 3)) instead of recomputed: a child's corners are its parent's corners and edge midpoints, whose
    delays the parent's linearity test has computed from the same points with the same arithmetic. The same leaves,
    delays and weights, with half the square roots (three edge midpoints per triangle, not three more corners)."""
    nx, ny, nz = normal[0], normal[1], normal[2]
    while top > 0:
        top -= 1
        depth = stack_depth[top]
        p0 = (stack[top, 0, 0], stack[top, 0, 1], stack[top, 0, 2])
        p1 = (stack[top, 1, 0], stack[top, 1, 1], stack[top, 1, 2])
        p2 = (stack[top, 2, 0], stack[top, 2, 1], stack[top, 2, 2])
        t0, t1, t2 = stack_delays[top, 0], stack_delays[top, 1], stack_delays[top, 2]
        if depth < _MAX_DEPTH:
            # delay at the edge midpoints against linear interpolation (scalars: no array per triangle tested)
            m01 = (0.5 * (p0[0] + p1[0]), 0.5 * (p0[1] + p1[1]), 0.5 * (p0[2] + p1[2]))
            m12 = (0.5 * (p1[0] + p2[0]), 0.5 * (p1[1] + p2[1]), 0.5 * (p1[2] + p2[2]))
            m20 = (0.5 * (p2[0] + p0[0]), 0.5 * (p2[1] + p0[1]), 0.5 * (p2[2] + p0[2]))
            t01 = (_distance(m01[0], m01[1], m01[2], s) + _distance(m01[0], m01[1], m01[2], r)) * delay_scale
            t12 = (_distance(m12[0], m12[1], m12[2], s) + _distance(m12[0], m12[1], m12[2], r)) * delay_scale
            t20 = (_distance(m20[0], m20[1], m20[2], s) + _distance(m20[0], m20[1], m20[2], r)) * delay_scale
            worst = max(abs(t01 - 0.5 * (t0 + t1)), max(abs(t12 - 0.5 * (t1 + t2)), abs(t20 - 0.5 * (t2 + t0))))
            if worst > max_delay_error:
                # split into four by the edge midpoints; the children replace it on the stack (``_next_leaf``'s order)
                top = _push_triangle(stack, stack_delays, stack_depth, top, p0, m01, m20, t0, t01, t20, depth + 1)
                top = _push_triangle(stack, stack_delays, stack_depth, top, m01, p1, m12, t01, t1, t12, depth + 1)
                top = _push_triangle(stack, stack_delays, stack_depth, top, m20, m12, p2, t20, t12, t2, depth + 1)
                top = _push_triangle(stack, stack_delays, stack_depth, top, m01, m12, m20, t01, t12, t20, depth + 1)
                continue
        facing, distances, lit = _leaf_facing((p0[0] + p1[0] + p2[0]) / 3.0, (p0[1] + p1[1] + p2[1]) / 3.0,
                                              (p0[2] + p1[2] + p2[2]) / 3.0, nx, ny, nz, s, r)
        if not lit:
            continue
        return top, t0, t1, t2, 0.25**depth * facing / distances, True
    return 0, 0.0, 0.0, 0.0, 0.0, False


@njit(cache=True, fastmath=_REASSOCIATE, error_model="numpy")
def deposit_moving_paths(vertices, faces, normals, areas, max_edges, reflection, facet_gains, use_facet_gains,
                         distance, along, facing, paths, path_start, path_count, positions, vertex_distance,
                         pair_tx, pair_rx, pair_gain, centre_hz, beta_hz_s, node_spacing, decay_per_s, period_s,
                         first_node, speed_of_sound, sample_rate, oversampling, grid, grid_start, max_delay_error):
    """The reference ``deposit_moving_pairs`` (``tests/motion_echo_reference.py``), batched: the same paths, terms
    and facet arithmetic (its docstring), into ``grid`` (L, 2 N) float64, the complex (L, N) grid viewed as reals
    (node n's real and imaginary parts in columns 2 n and 2 n + 1). ``facet_gains`` is read only where
    ``use_facet_gains`` (else every gain is 1). The paths are given, not searched: pair p's facets are
    paths[path_start[p]:path_start[p] + path_count[p]] (``paths`` and ``offsets`` of ``moving_path_extents``, which
    applied the lit and ``max_start`` tests). ``distance``, ``along``, ``facing``: ``position_facet_terms``' (each
    end's centroid distance, velocity component and facing cosine).

    Differences, all rounding: exp(j theta) is ``_unit_phasor``'s (|theta| is a few hundred rad at most: errs by
    ~1e-13 rad, as theta's own rounding does); the decay's exp is ``_exp_near_zero``'s (~1e-15 relative); a split
    facet's corner delays are ``vertex_distance``'s sums and its sub-triangles' are carried from their parents'
    linearity tests (``_next_moving_leaf``), the same distances computed once; a path whose node kappa / spacing
    rounds onto the next integer differently from ``moving_path_extents`` is clamped into the grid's columns with
    its fraction taken from the clamped node (the same interpolation, extrapolated by a rounding error).
    """
    stack = np.empty((_STACK_SIZE, 3, 3))
    stack_delays = np.empty((_STACK_SIZE, 3))
    stack_depth = np.empty(_STACK_SIZE, dtype=np.int64)
    scale = sample_rate / speed_of_sound
    delay_scale = scale * oversampling
    last_column = grid.shape[1] // 2 - 2
    n_facets = max(path_count.max(), 1) if path_count.shape[0] else 1
    n_pairs = pair_tx.shape[0]
    columns = np.empty(n_facets, dtype=np.int64)
    shifts = np.empty(n_facets)
    weights = np.empty((n_facets, 4))
    split = np.empty(n_facets, dtype=np.bool_)
    for p in range(n_pairs):
        t_index, r_index = pair_tx[p], pair_rx[p]
        s = positions[t_index]
        r = positions[r_index]
        dist_sv = vertex_distance[t_index]
        dist_rv = vertex_distance[r_index]
        facets = paths[path_start[p]:path_start[p] + path_count[p]]
        n = facets.shape[0]
        # every path's terms: shift (fine samples), node column, and its two nodes' complex weights times its facet
        # weight (0 for a facet facing away from either end; split facets keep the bare gain, their leaves carry
        # the geometry)
        for e in range(n):
            f = facets[e]
            dist_s = distance[t_index, f]
            dist_r = distance[r_index, f]
            rate = (along[t_index, f] + along[r_index, f]) / speed_of_sound
            shift_s, theta, kappa, amplitude = _band_terms(rate, centre_hz, beta_hz_s)
            if decay_per_s != 0.0:
                tau_s = (dist_s + dist_r) / speed_of_sound
                moved = tau_s + shift_s
                moved -= period_s * math.floor(moved / period_s)
                amplitude *= _exp_near_zero(decay_per_s * (moved - tau_s))
            position = kappa / node_spacing
            column = int(math.floor(position)) - first_node
            column = min(max(column, 0), last_column)
            fraction = position - (column + first_node)
            gain = pair_gain[p] * reflection[f] * areas[f]
            if use_facet_gains:
                gain *= facet_gains[t_index, f] * facet_gains[r_index, f]
            split[e] = _needs_split(dist_s, dist_r, max_edges[f], delay_scale, max_delay_error)
            if not split[e]:
                cos_s, cos_r = facing[t_index, f], facing[r_index, f]
                gain = gain * (cos_s + cos_r) / (dist_s * dist_r) if cos_s > 0.0 and cos_r > 0.0 else 0.0
            cos_theta, sin_theta = _unit_phasor(theta)
            re = gain * amplitude * cos_theta
            im = gain * amplitude * sin_theta
            weights[e, 0] = (1.0 - fraction) * re
            weights[e, 1] = (1.0 - fraction) * im
            weights[e, 2] = fraction * re
            weights[e, 3] = fraction * im
            columns[e] = 2 * column
            shifts[e] = shift_s * sample_rate * oversampling
        for e in range(n):
            f = facets[e]
            w = (weights[e, 0], weights[e, 1], weights[e, 2], weights[e, 3])
            if split[e]:
                for k in range(3):
                    v = faces[f, k]
                    for d in range(3):
                        stack[0, k, d] = vertices[v, d]
                    stack_delays[0, k] = (dist_sv[v] + dist_rv[v]) * delay_scale    # the vertices' distances
                stack_depth[0] = 0
                top = 1
                while top > 0:
                    top, t0, t1, t2, leaf, found = _next_moving_leaf(stack, stack_delays, stack_depth, top,
                                                                     normals[f], s, r, delay_scale, max_delay_error)
                    if found:
                        _deposit_triangle_lanes(grid, grid_start, columns[e], t0 + shifts[e], t1 + shifts[e],
                                                t2 + shifts[e], (w[0] * leaf, w[1] * leaf, w[2] * leaf, w[3] * leaf))
                continue
            if w[0] == 0.0 and w[1] == 0.0 and w[2] == 0.0 and w[3] == 0.0:
                continue
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            _deposit_triangle_lanes(grid, grid_start, columns[e], (dist_sv[a] + dist_rv[a]) * delay_scale + shifts[e],
                                    (dist_sv[b] + dist_rv[b]) * delay_scale + shifts[e],
                                    (dist_sv[c] + dist_rv[c]) * delay_scale + shifts[e], w)
