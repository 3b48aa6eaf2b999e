"""Numba kernels of the room response: band-limited path deposits and leg pruning by boxes.

Used by :mod:`simulator.room_synthesis` (``deposit_paths``) and :mod:`simulator.room_acoustics`
(``segments_near_body``); plain loops compiled once and cached.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["deposit_paths", "segments_near_body"]


@njit(cache=True)
def deposit_paths(out, channels, delays_samples, amplitudes, weights, half_width, lp_a, lp_b):
    """Add band-limited deltas to ``out`` (C, B, N), circularly (negative times wrap).

    The kernel is the impulse response of ``output_lowpass`` (a raised-cosine spectrum, flat to
    ``lp_a - lp_b`` and zero beyond ``lp_a + lp_b`` in units of fs), sampled at n - delay:
    h(u) = lp_a sinc(lp_a u) cos(pi lp_b u) / (1 - (2 lp_b u)^2).
    """
    n_fft = out.shape[2]
    n_bands = out.shape[1]
    for k in range(len(delays_samples)):
        w = weights[k]
        if w == 0.0:
            continue
        c = channels[k]
        x = delays_samples[k]
        n0 = int(math.floor(x))
        for n in range(n0 - half_width + 1, n0 + half_width + 1):
            u = n - x
            au = lp_a * u
            if abs(au) < 1e-12:
                sinc = 1.0
            else:
                sinc = math.sin(math.pi * au) / (math.pi * au)
            den = 1.0 - (2.0 * lp_b * u) ** 2
            if abs(den) < 1e-9:
                taper = math.pi / 4.0
            else:
                taper = math.cos(math.pi * lp_b * u) / den
            tap = w * lp_a * sinc * taper
            idx = n % n_fft
            for b in range(n_bands):
                out[c, b, idx] += tap * amplitudes[k, b]


@njit(cache=True)
def _segment_hits_box(sx, sy, sz, ex, ey, ez, lo, hi):
    t0 = 0.0
    t1 = 1.0
    s = (sx, sy, sz)
    e = (ex, ey, ez)
    for d in range(3):
        dd = e[d] - s[d]
        if abs(dd) < 1e-15:
            if s[d] < lo[d] or s[d] > hi[d]:
                return False
        else:
            ta = (lo[d] - s[d]) / dd
            tb = (hi[d] - s[d]) / dd
            if ta > tb:
                ta, tb = tb, ta
            if ta > t0:
                t0 = ta
            if tb < t1:
                t1 = tb
            if t0 > t1:
                return False
    return True


@njit(cache=True)
def segments_near_body(starts, ends, box_lo, box_hi, slice_lo, slice_hi, leg_mask):
    """(L,) bool: legs (with leg_mask) crossing the body's box and one of its z slices."""
    n = starts.shape[0]
    hit = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if not leg_mask[i]:
            continue
        sx, sy, sz = starts[i, 0], starts[i, 1], starts[i, 2]
        ex, ey, ez = ends[i, 0], ends[i, 1], ends[i, 2]
        if not _segment_hits_box(sx, sy, sz, ex, ey, ez, box_lo, box_hi):
            continue
        for j in range(slice_lo.shape[0]):
            if _segment_hits_box(sx, sy, sz, ex, ey, ez, slice_lo[j], slice_hi[j]):
                hit[i] = True
                break
    return hit

