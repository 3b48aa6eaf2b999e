"""The room response's path deposit (``simulator._room_kernels.deposit_paths``) against its closed form."""
from __future__ import annotations

import numpy as np

from simulator._room_kernels import deposit_paths
from simulator.room_synthesis import KERNEL_HALF_WIDTH, PASSBAND_FRACTION


def _closed_form(u: np.ndarray, lp_a: float, lp_b: float) -> np.ndarray:
    """h(u) = lp_a sinc(lp_a u) cos(pi lp_b u) / (1 - (2 lp_b u)^2), its removable singularities filled."""
    den = 1.0 - (2.0 * lp_b * u) ** 2
    singular = np.abs(den) < 1e-9
    taper = np.where(singular, np.pi / 4.0, np.cos(np.pi * lp_b * u) / np.where(singular, 1.0, den))
    return lp_a * np.sinc(lp_a * u) * taper


def test_path_deposits_are_the_band_limited_kernel_at_every_tap():
    """Delays of every kind (random, on a sample, a hair off one, at the taper's removable singularity, wrapping
    around the buffer's start and end): each tap is h(n - delay) times the path's weight and band amplitude,
    within 1e-13 of the peak tap (the taps' sines and cosines are stepped by rotations, not called per tap)."""
    rng = np.random.default_rng(3)
    lp_a, lp_b = 0.5 * (1.0 + PASSBAND_FRACTION), 0.5 * (1.0 - PASSBAND_FRACTION)
    n_fft, bands = 4096, 3
    singular = 1.0 / (2.0 * lp_b)                     # u where the taper's denominator vanishes
    delays = np.r_[rng.uniform(0, n_fft, 40), 100.0, 200.0 + 1e-9, 300.0 - 1e-13, 400.0 + singular,
                   500.0 - singular - 7.0, 3.0, n_fft - 2.5]
    weights = rng.uniform(0.5, 2.0, len(delays))
    amplitudes = rng.uniform(-1.0, 1.0, (len(delays), bands))
    channels = rng.integers(0, 2, len(delays))
    out = np.zeros((2, n_fft, bands))
    deposit_paths(out, channels, delays, amplitudes, weights, KERNEL_HALF_WIDTH, lp_a, lp_b)
    out = out.transpose(0, 2, 1)                      # (channels, bands, samples), as built below

    expected = np.zeros_like(out)
    for c, x, w, amp in zip(channels, delays, weights, amplitudes):
        n = np.arange(int(np.floor(x)) - KERNEL_HALF_WIDTH + 1, int(np.floor(x)) + KERNEL_HALF_WIDTH + 1)
        np.add.at(expected[c], (slice(None), n % n_fft), w * amp[:, None] * _closed_form(n - x, lp_a, lp_b)[None])
    peak = np.abs(expected).max()
    assert peak > 1.0
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-13 * peak)
