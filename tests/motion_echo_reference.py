"""The moving echo's unbatched kernels: the straightforward form of ``simulator.motion_echo``'s fast method.

Generation used these until issue 15 batched them (``simulator._kernels.moving_path_extents`` and
``deposit_moving_paths``); they stay here, outside the package, as the reference that
``tests/test_motion_echo.py`` holds the batched kernels to (within 1e-9 of the echo's peak). One pair at a
time, every lit facet's terms computed where it is deposited, a complex grid of two nodes per path.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from simulator._kernels import (
    _CONFLUENT_EPS, _JUMP_EPS, _STACK_SIZE, _band_terms, _cubic_bspline, _facet_bounds, _facing, _first_difference,
    _k1, _needs_split, _next_leaf,
)


@njit(cache=True, inline="always")
def _add_nodes(grid, i, node, value_a, value_b):
    if 0 <= i < grid.shape[0]:
        grid[i, node] += value_a
        grid[i, node + 1] += value_b


@njit(cache=True, inline="always")
def _add_ramp_nodes(grid, row_start, node, t, slope_a, slope_b):
    """``_add_ramp`` into columns node and node + 1 of ``grid`` with two slopes."""
    m0 = int(math.floor(t)) - 1
    for m in range(m0, m0 + 4):
        v = _cubic_bspline(m - t)
        _add_nodes(grid, m + 1 - row_start, node, slope_a * v, slope_b * v)


@njit(cache=True, inline="always")
def _add_step_nodes(grid, row_start, node, t, height_a, height_b):
    """``_add_step`` into columns node and node + 1 of ``grid`` with two heights."""
    m0 = int(math.floor(t)) - 1
    for m in range(m0, m0 + 4):
        v = _k1(m + 1.0 - t) - 2.0 * _k1(m - t) + _k1(m - 1.0 - t)
        _add_nodes(grid, m + 1 - row_start, node, height_a * v, height_b * v)


@njit(cache=True)
def _deposit_triangle_nodes(grid, row_start, node, ta, tb, tc, weight_a, weight_b):
    """``_deposit_triangle`` into two adjacent columns of a (L, K) grid (fine sample row_start + i in row i): column
    ``node`` with weight ``weight_a`` and column node + 1 with ``weight_b`` (complex weights allowed); the same
    arithmetic, each kernel value computed once for both."""
    if ta > tb:
        ta, tb = tb, ta
    if tb > tc:
        tb, tc = tc, tb
    if ta > tb:
        ta, tb = tb, ta
    span = tc - ta
    if span >= 1.0:
        peak = 2.0 / span
        if tb - ta < _JUMP_EPS:
            t0 = 0.5 * (ta + tb)
            k = -peak / (tc - t0)
            _add_step_nodes(grid, row_start, node, t0, weight_a * peak, weight_b * peak)
            _add_ramp_nodes(grid, row_start, node, t0, weight_a * k, weight_b * k)
            _add_ramp_nodes(grid, row_start, node, tc, -weight_a * k, -weight_b * k)
        elif tc - tb < _JUMP_EPS:
            t0 = 0.5 * (tb + tc)
            k = peak / (t0 - ta)
            _add_ramp_nodes(grid, row_start, node, ta, weight_a * k, weight_b * k)
            _add_ramp_nodes(grid, row_start, node, t0, -weight_a * k, -weight_b * k)
            _add_step_nodes(grid, row_start, node, t0, -weight_a * peak, -weight_b * peak)
        else:
            rise = peak / (tb - ta)
            fall = peak / (tc - tb)
            _add_ramp_nodes(grid, row_start, node, ta, weight_a * rise, weight_b * rise)
            _add_ramp_nodes(grid, row_start, node, tb, -weight_a * (rise + fall), -weight_b * (rise + fall))
            _add_ramp_nodes(grid, row_start, node, tc, weight_a * fall, weight_b * fall)
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
            _add_nodes(grid, i0 + m0 + k, node, weight_a * v, weight_b * v)
            _add_nodes(grid, i0 + m0 + k + 1, node, -2.0 * weight_a * v, -2.0 * weight_b * v)
            _add_nodes(grid, i0 + m0 + k + 2, node, weight_a * v, weight_b * v)
        return
    scale = 2.0 / span
    for m in range(0, int(math.ceil(c)) + 2):
        v = scale * (_first_difference(m, b, c) - _first_difference(m, a, b))
        _add_nodes(grid, i0 + m, node, weight_a * v, weight_b * v)
        _add_nodes(grid, i0 + m + 1, node, -2.0 * weight_a * v, -2.0 * weight_b * v)
        _add_nodes(grid, i0 + m + 2, node, weight_a * v, weight_b * v)


@njit(cache=True)
def _deposit_subdivided_nodes(grid, row_start, node, weight_a, weight_b, shift, triangle, normal, weight, s, r,
                              delay_scale, max_delay_error, stack, stack_depth):
    """``_deposit_subdivided`` with every delay plus ``shift`` fine samples, into two columns of ``grid``
    (``_deposit_triangle_nodes``): the same splitting and weights."""
    stack[0] = triangle
    stack_depth[0] = 0
    top = 1
    while top > 0:
        top, t0, t1, t2, w, found = _next_leaf(stack, stack_depth, top, normal, weight, s, r, delay_scale,
                                                max_delay_error)
        if found:
            _deposit_triangle_nodes(grid, row_start, node, t0 + shift, t1 + shift, t2 + shift, w * weight_a,
                                    w * weight_b)


@njit(cache=True, inline="always")
def _facet_rate(f, centroids, facet_velocity, s, r, speed_of_sound):
    """Delay rate v . (u_s + u_r) / c of facet f's centroid for transmitter s and receiver r
    (``simulator.motion_echo.facet_delay_rates``), and the centroid's two distances."""
    ax, ay, az = centroids[f, 0] - s[0], centroids[f, 1] - s[1], centroids[f, 2] - s[2]
    bx, by, bz = centroids[f, 0] - r[0], centroids[f, 1] - r[1], centroids[f, 2] - r[2]
    da = math.sqrt(ax * ax + ay * ay + az * az)
    db = math.sqrt(bx * bx + by * by + bz * bz)
    rate = (facet_velocity[f, 0] * (ax / da + bx / db) + facet_velocity[f, 1] * (ay / da + by / db)
            + facet_velocity[f, 2] * (az / da + bz / db)) / speed_of_sound
    return rate, da, db


@njit(cache=True)
def moving_pair_extents(faces, centroids, max_edges, facet_velocity, lit, positions, vertex_distance, pair_tx, pair_rx,
                        pair_centre_hz, pair_beta_hz_s, pair_node_spacing, speed_of_sound, sample_rate, max_start):
    """Per pair of a moving body (``simulator.motion_echo``'s fast method), over the facets lit by both ends whose
    delay bounds start before ``max_start`` samples: (P, 4) float64 (earliest start and latest end of the facets'
    delay bounds plus their delay shifts, samples; lowest and highest curvature node floor(kappa / spacing)), and
    (P,) int64 the number of such facets (0: the row is +-inf)."""
    n_pairs = pair_tx.shape[0]
    out = np.empty((n_pairs, 4))
    counts = np.zeros(n_pairs, dtype=np.int64)
    scale = sample_rate / speed_of_sound
    for p in range(n_pairs):
        lo, hi, node_lo, node_hi = np.inf, -np.inf, np.inf, -np.inf
        s = positions[pair_tx[p]]
        r = positions[pair_rx[p]]
        lit_s = lit[pair_tx[p]]
        lit_r = lit[pair_rx[p]]
        dist_sv = vertex_distance[pair_tx[p]]
        dist_rv = vertex_distance[pair_rx[p]]
        for f in range(faces.shape[0]):
            if not (lit_s[f] and lit_r[f]):
                continue
            first_m, last_m = _facet_bounds(f, faces, max_edges, dist_sv, dist_rv)
            if first_m * scale >= max_start:
                continue
            rate, _, _ = _facet_rate(f, centroids, facet_velocity, s, r, speed_of_sound)
            shift_s, _, kappa, _ = _band_terms(rate, pair_centre_hz[p], pair_beta_hz_s[p])
            lo = min(lo, first_m * scale + shift_s * sample_rate)
            hi = max(hi, last_m * scale + shift_s * sample_rate)
            node = math.floor(kappa / pair_node_spacing[p])
            node_lo = min(node_lo, node)
            node_hi = max(node_hi, node)
            counts[p] += 1
        out[p, 0], out[p, 1], out[p, 2], out[p, 3] = lo, hi, node_lo, node_hi
    return out, counts


@njit(cache=True)
def deposit_moving_pairs(vertices, faces, normals, areas, centroids, max_edges, reflection, facet_gains,
                         facet_velocity, lit, positions, vertex_distance, pair_tx, pair_rx, pair_gain, centre_hz,
                         beta_hz_s, node_spacing, decay_per_s, period_s, first_node, speed_of_sound, sample_rate,
                         oversampling, max_start, grid, grid_start, max_delay_error):
    """Deposit a moving body's paths, all of one speaker, as ``simulator.motion_echo``'s fast method does.

    For every pair p and facet f lit by both ends whose delay bounds start before ``max_start`` samples: the
    path's rate r (``_facet_rate``), its delay shift Delta, phase theta, curvature kappa and amplitude A
    (``_band_terms`` with the speaker's band centre ``centre_hz`` and sweep rate ``beta_hz_s``), A times
    exp(decay_per_s ((tau + Delta) mod period_s - tau)) (tau: the centroid's delay), and the facet's weight
    pair_gain[p] * reflection[f] * facet_gains[tx, f] * facet_gains[rx, f] * area * (n.u_s + n.u_r) / (R_s R_r)
    deposited with all its delays plus Delta into the complex columns n - first_node and n - first_node + 1 of
    ``grid`` (n = floor(kappa / node_spacing), lambda = kappa / node_spacing - n) with the complex weights
    (1 - lambda) A exp(j theta) and lambda A exp(j theta): the same facet arithmetic as ``deposit_pair_echoes``.

    Args:
        grid: (L, N) complex128 second differences of N nodes, row i at fine sample ``grid_start`` + i.
        facet_gains: (n_positions, F) transducer gains (ones for none). Others as ``deposit_pair_echoes``.
    """
    stack = np.empty((_STACK_SIZE, 3, 3))
    stack_depth = np.empty(_STACK_SIZE, dtype=np.int64)
    triangle = np.empty((3, 3))
    scale = sample_rate / speed_of_sound
    delay_scale = scale * oversampling
    for p in range(pair_tx.shape[0]):
        t_index, r_index = pair_tx[p], pair_rx[p]
        s = positions[t_index]
        r = positions[r_index]
        lit_s = lit[t_index]
        lit_r = lit[r_index]
        dist_sv = vertex_distance[t_index]
        dist_rv = vertex_distance[r_index]
        for f in range(faces.shape[0]):
            if not (lit_s[f] and lit_r[f]):
                continue
            first_m, _ = _facet_bounds(f, faces, max_edges, dist_sv, dist_rv)
            if first_m * scale >= max_start:
                continue
            rate, dist_s, dist_r = _facet_rate(f, centroids, facet_velocity, s, r, speed_of_sound)
            shift_s, theta, kappa, amplitude = _band_terms(rate, centre_hz, beta_hz_s)
            if decay_per_s != 0.0:
                tau_s = (dist_s + dist_r) / speed_of_sound
                moved = tau_s + shift_s
                moved -= period_s * math.floor(moved / period_s)
                amplitude *= math.exp(decay_per_s * (moved - tau_s))
            position = kappa / node_spacing
            node = math.floor(position)
            fraction = position - node
            phasor = amplitude * complex(math.cos(theta), math.sin(theta))
            column = int(node) - first_node
            weight_a = (1.0 - fraction) * phasor
            weight_b = fraction * phasor
            shift = shift_s * sample_rate * oversampling
            weight = pair_gain[p] * reflection[f] * facet_gains[t_index, f] * facet_gains[r_index, f] * areas[f]
            if _needs_split(dist_s, dist_r, max_edges[f], delay_scale, max_delay_error):
                for k in range(3):
                    for d in range(3):
                        triangle[k, d] = vertices[faces[f, k], d]
                _deposit_subdivided_nodes(grid, grid_start, column, weight_a, weight_b, shift, triangle, normals[f],
                                          weight, s, r, delay_scale, max_delay_error, stack, stack_depth)
                continue
            cos_s, cos_r = _facing(normals[f], s, r, centroids[f, 0], centroids[f, 1], centroids[f, 2], dist_s,
                                   dist_r)
            if cos_s <= 0.0 or cos_r <= 0.0:
                continue
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            w = weight * (cos_s + cos_r) / (dist_s * dist_r)
            _deposit_triangle_nodes(
                grid, grid_start, column,
                (dist_sv[a] + dist_rv[a]) * delay_scale + shift,
                (dist_sv[b] + dist_rv[b]) * delay_scale + shift,
                (dist_sv[c] + dist_rv[c]) * delay_scale + shift,
                w * weight_a, w * weight_b,
            )
