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
    """Add band-limited deltas to ``out`` (C, N, B), circularly (negative times wrap): path k adds
    ``weights[k] * amplitudes[k, b] * h(n - delays_samples[k])`` to ``out[channels[k], n, b]`` for the
    2 ``half_width`` samples n nearest its delay. Bands last: a tap writes its B band values side by side.

    The kernel is the impulse response of ``output_lowpass`` (a raised-cosine spectrum, flat to
    ``lp_a - lp_b`` and zero beyond ``lp_a + lp_b`` in units of fs), sampled at n - delay:
    h(u) = lp_a sinc(lp_a u) cos(pi lp_b u) / (1 - (2 lp_b u)^2).
    """
    n_fft = out.shape[1]
    n_bands = out.shape[2]
    # sin(pi lp_a u) and cos(pi lp_b u) along the taps (u steps by 1) by rotation, two libm calls per path
    # instead of two per tap; the two taps nearest the delay (|u| < 1, where the sinc divides by a small
    # lp_a u) are evaluated directly. The rotations add ~1e-16 per tap: taps agree with the direct formula
    # within ~1e-14 of the peak tap (tests/test_room_kernels.py).
    step_sa, step_ca = math.sin(math.pi * lp_a), math.cos(math.pi * lp_a)
    step_sb, step_cb = math.sin(math.pi * lp_b), math.cos(math.pi * lp_b)
    for k in range(len(delays_samples)):
        w = weights[k]
        if w == 0.0:
            continue
        c = channels[k]
        x = delays_samples[k]
        n0 = int(math.floor(x))
        first = n0 - half_width + 1
        u = first - x
        sa, ca = math.sin(math.pi * lp_a * u), math.cos(math.pi * lp_a * u)
        sb, cb = math.sin(math.pi * lp_b * u), math.cos(math.pi * lp_b * u)
        for n in range(first, n0 + half_width + 1):
            u = n - x
            au = lp_a * u
            if n == n0 or n == n0 + 1:        # |u| < 1: direct
                sin_au = math.sin(math.pi * au)
                cos_bu = math.cos(math.pi * lp_b * u)
            else:
                sin_au, cos_bu = sa, cb
            if abs(au) < 1e-12:
                sinc = 1.0
            else:
                sinc = sin_au / (math.pi * au)
            den = 1.0 - (2.0 * lp_b * u) ** 2
            if abs(den) < 1e-9:
                taper = math.pi / 4.0
            else:
                taper = cos_bu / den
            tap = w * lp_a * sinc * taper
            idx = n % n_fft
            for b in range(n_bands):
                out[c, idx, b] += tap * amplitudes[k, b]
            sa, ca = sa * step_ca + ca * step_sa, ca * step_ca - sa * step_sa
            sb, cb = sb * step_cb + cb * step_sb, cb * step_cb - sb * step_sb


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

