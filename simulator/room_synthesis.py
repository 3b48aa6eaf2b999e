"""Synthesis of image-source path responses on the output grid (float64, band-limited).

Each path is deposited as a band-limited delta per synthesis node (:func:`synthesis_nodes_hz`),
and the nodes' piecewise-linear hats (:func:`hats`) blend them into one spectrum; the octave
bands' zero-phase gains (:func:`octave_band_gains`) are those of pyroomacoustics' filter bank.
The physics and conventions are in :mod:`simulator.room_response`'s docstring.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ._room_kernels import deposit_paths
from .body_echo import PASSBAND_FRACTION

__all__ = ["KERNEL_HALF_WIDTH", "fft_length", "hats", "octave_band_gains", "synthesis_nodes_hz", "synthesize"]

#: Half width (samples) of the band-limited delta kernel; its tails beyond are < 1e-4.
KERNEL_HALF_WIDTH = 48


def fft_length(n_samples: int) -> int:
    # Twice the window: the low octave bands' zero-phase filters have tails of ~1/(band overlap)
    # (tens of ms) that must not wrap around into the window.
    n = scipy.fft.next_fast_len(2 * (n_samples + 2 * KERNEL_HALF_WIDTH), real=True)
    while n % 2:
        n = scipy.fft.next_fast_len(n + 1, real=True)
    return n


def synthesis_nodes_hz(octave_centers_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Frequencies (Hz) at which path amplitudes are evaluated: octave centres below 16 kHz,
    every 1 kHz from 16 to 36 kHz (the chirps' band with margins), and Nyquist."""
    nyquist = sample_rate_hz / 2
    fine = np.arange(16_000.0, min(36_000.0, nyquist) + 1.0, 1_000.0)
    coarse = np.asarray(octave_centers_hz, dtype=float)
    return np.unique(np.r_[coarse[coarse < fine[0]], fine, nyquist])


def hats(nodes_hz: np.ndarray, grid_hz: np.ndarray) -> np.ndarray:
    """(N, F) piecewise-linear interpolation basis on ``nodes_hz``: sum_k H_k(f) = 1 for every f."""
    eye = np.eye(len(nodes_hz))
    return np.ascontiguousarray(np.stack([np.interp(grid_hz, nodes_hz, row) for row in eye]))


def octave_band_gains(bands, n_fft: int, fs: float, n_bands: int) -> np.ndarray:
    """(B, n_fft // 2 + 1) zero-phase gain of each pyroomacoustics octave band on the rfft grid.

    pyroomacoustics' Antoni filter bank analyses and re-synthesises with the window G_b, so a
    band's signal is G_b(f)^2 X(f) (sum_b G_b^2 = 1). Older filter banks (time-domain FIR
    applied in 'same' mode) are supported through their zero-phase frequency response.
    """
    if hasattr(bands, "_make_window_function"):
        window, *_ = bands._make_window_function(n_fft)
        gains = np.asarray(window, dtype=float) ** 2
    else:  # pragma: no cover - pyroomacoustics < 0.8
        filters = np.asarray(bands.filters, dtype=float)  # (K, B)
        k = filters.shape[0]
        padded = np.zeros((n_fft, filters.shape[1]))
        padded[:k] = filters
        padded = np.roll(padded, -((k - 1) // 2), axis=0)
        gains = np.real(np.fft.rfft(padded, axis=0)).T
    if gains.shape != (n_bands, n_fft // 2 + 1):  # pragma: no cover - defensive
        raise RuntimeError(f"unexpected octave band gains of shape {gains.shape}")
    return np.ascontiguousarray(gains)


def synthesize(acoustics, idx: np.ndarray, weights: np.ndarray, period: int | None = None) -> np.ndarray:
    """(S, M, T) sum of weights (K,) x responses of the paths ``idx`` (K,) of a ``RoomAcoustics``
    (T = its n_samples, or ``period`` for the circular in-band synthesis)."""
    S, M = acoustics.n_speakers, acoustics.n_microphones
    T = acoustics.n_samples if period is None else int(period)
    out = np.zeros((S * M, T))
    if len(idx) == 0:
        return out.reshape(S, M, T)
    paths = acoustics.paths
    n_fft = acoustics._n_fft
    gains = acoustics._synthesis_gains
    node_mask = np.ones(len(paths.band_centers_hz), dtype=bool)
    if period is not None:  # deposit circularly on the period, band nodes only (see path_impulse_responses)
        n_fft = T
        node_mask = (paths.band_centers_hz >= 16_000.0) & (paths.band_centers_hz <= 36_000.0)
        grid_hz = np.fft.rfftfreq(T, 1.0 / acoustics.sample_rate_hz)
        gains = hats(paths.band_centers_hz, grid_hz)
    lp_a = 0.5 * (1.0 + PASSBAND_FRACTION)
    lp_b = 0.5 * (1.0 - PASSBAND_FRACTION)
    # One pair at a time: the per-node grid of all pairs at once would take hundreds of MB.
    for pair in np.unique(paths.pair[idx]):
        mine = paths.pair[idx] == pair
        sel, w = idx[mine], weights[mine]
        used = np.flatnonzero(np.any(paths.band_amplitudes[sel] != 0.0, axis=0) & node_mask)
        grid = np.zeros((1, n_fft, len(used)))
        deposit_paths(
            grid,
            np.zeros(len(sel), dtype=np.int64),
            paths.delay_s[sel] * acoustics.sample_rate_hz,
            np.ascontiguousarray(paths.band_amplitudes[sel][:, used]),
            np.ascontiguousarray(w, dtype=float),
            KERNEL_HALF_WIDTH,
            lp_a,
            lp_b,
        )
        spectrum = np.einsum("fb,bf->f", scipy.fft.rfft(grid[0], axis=0), gains[used])
        out[pair] = scipy.fft.irfft(spectrum, n_fft)[:T]
    return out.reshape(S, M, T)
