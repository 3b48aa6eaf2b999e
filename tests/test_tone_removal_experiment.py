"""experiments.tone_removal: its echo-to-noise measure on a hand-computed case."""
from __future__ import annotations

import numpy as np

from experiments.tone_removal import echo_to_noise_db
from simulator.scene import envelope


def test_echo_to_noise_is_the_power_ratio_of_the_echo_window_to_the_quiet_one():
    """Truth: a Gaussian-windowed 25 kHz burst; kernel: 3 where the truth's envelope is over a tenth of its peak, 0.5
    where it is under 1e-3, anything between: 20 log10(3 / 0.5) = 15.56 dB, for any between-values. A pair without
    a quiet window is NaN."""
    t = np.arange(4800) / 96_000.0
    truth = np.exp(-0.5 * ((t - 0.02) / 4e-4) ** 2) * np.cos(2 * np.pi * 25_000 * t)
    env = envelope(truth[None])[0]
    kernel = np.full_like(truth, 7.0)
    kernel[env > 0.1 * env.max()] = 3.0
    kernel[env < 1e-3 * env.max()] = 0.5
    wide = np.cos(2 * np.pi * 25_000 * t)                           # its envelope never falls under 1e-3
    ratio = echo_to_noise_db(np.stack([kernel, kernel]), np.stack([truth, wide]))
    assert np.isclose(ratio[0], 20 * np.log10(3 / 0.5), atol=1e-9)
    assert np.isnan(ratio[1])
