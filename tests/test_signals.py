"""Frequency-division-multiplexed chirps: bands, spectra, validation."""

import numpy as np
import pytest
from scipy.signal import hilbert

from simulator.signals import ChirpPlan, band_window


def test_default_plan_shape_and_amplitude():
    plan = ChirpPlan()
    chirps = plan.chirps()
    assert chirps.shape == (4, 9600)
    assert np.max(np.abs(chirps)) <= 1.0
    assert np.max(np.abs(chirps)) > 0.99


def test_sub_bands_are_disjoint_ordered_and_inside_the_band():
    plan = ChirpPlan(guard_hz=300.0)
    bands = plan.speaker_bands_hz()
    assert bands[0, 0] == pytest.approx(19_000.0)
    assert bands[-1, 1] == pytest.approx(32_000.0)
    assert np.all(bands[:, 1] > bands[:, 0])
    gaps = bands[1:, 0] - bands[:-1, 1]
    np.testing.assert_allclose(gaps, 300.0)
    widths = bands[:, 1] - bands[:, 0]
    np.testing.assert_allclose(widths, widths[0])


@pytest.mark.parametrize("n_speakers", [1, 4, 6])
def test_each_chirp_keeps_99_percent_of_its_energy_in_its_sub_band(n_speakers):
    plan = ChirpPlan(n_speakers=n_speakers)
    chirps = plan.chirps()
    power = np.abs(np.fft.rfft(chirps, axis=1)) ** 2
    f_hz = np.fft.rfftfreq(plan.n_samples, 1.0 / plan.sample_rate_hz)
    for i in range(n_speakers):
        low_hz, high_hz = plan.speaker_band_hz(i)
        inside = (f_hz >= low_hz) & (f_hz <= high_hz)
        assert power[i, inside].sum() / power[i].sum() > 0.99
        # and almost nothing in the other speakers' bands
        for j in range(n_speakers):
            if j != i:
                lo, hi = plan.speaker_band_hz(j)
                other = (f_hz >= lo) & (f_hz <= hi)
                assert power[i, other].sum() / power[i].sum() < 0.005


def test_instantaneous_frequency_sweeps_the_sub_band():
    plan = ChirpPlan()
    chirps = plan.chirps()
    taper = int(plan.taper_s * plan.sample_rate_hz)
    for i, chirp in enumerate(chirps):
        phase = np.unwrap(np.angle(hilbert(chirp)))
        measured_hz = np.diff(phase) * plan.sample_rate_hz / (2 * np.pi)
        middle = slice(taper, plan.n_samples - taper)
        expected_hz = plan.instantaneous_frequency_hz()[i, :-1]
        low_hz, high_hz = plan.speaker_band_hz(i)
        assert np.all(expected_hz >= low_hz - 1e-6) and np.all(expected_hz <= high_hz + 1e-6)
        # measured from the waveform itself, away from the tapers (Hilbert edge effects)
        np.testing.assert_allclose(measured_hz[middle], expected_hz[middle], atol=40.0)


def test_band_beyond_nyquist_is_rejected():
    with pytest.raises(ValueError, match="band_hz.*Nyquist"):
        ChirpPlan(band_hz=(19_000.0, 50_000.0))
    with pytest.raises(ValueError, match="Nyquist.*sample_rate_hz"):
        ChirpPlan(sample_rate_hz=48_000.0)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n_speakers": 0}, "n_speakers"),
        ({"n_speakers": 2.5}, "n_speakers"),
        ({"duration_s": 0.0}, "duration_s"),
        ({"duration_s": -0.1}, "duration_s"),
        ({"sample_rate_hz": 0.0}, "sample_rate_hz"),
        ({"band_hz": (32_000.0, 19_000.0)}, "band_hz"),
        ({"band_hz": (0.0, 19_000.0)}, "band_hz"),
        ({"guard_hz": -100.0}, "guard_hz.*overlap"),
        ({"guard_hz": 5_000.0}, "guard_hz"),
        ({"taper_s": 0.06}, "taper_s"),
    ],
)
def test_invalid_plans_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ChirpPlan(**kwargs)


def test_speaker_index_is_checked():
    with pytest.raises(ValueError, match="speaker"):
        ChirpPlan().speaker_band_hz(4)


def test_band_window_edges():
    f_hz = np.array([17_000.0, 18_500.0, 19_000.0, 25_000.0, 32_000.0, 32_500.0, 34_000.0])
    gain = band_window(f_hz, (19_000.0, 32_000.0), 1_000.0)
    np.testing.assert_allclose(gain, [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0], atol=1e-12)


def test_chirp_plan_round_trips_through_its_dict():
    from simulator.signals import ChirpPlan

    plan = ChirpPlan(band_hz=(18_000.0, 30_000.0), n_speakers=3, guard_hz=100.0)
    assert list(plan.to_dict()) == list(ChirpPlan.field_names())
    assert ChirpPlan.from_dict(plan.to_dict()) == plan
    with pytest.raises(Exception, match="unknown field"):
        ChirpPlan.from_dict({"bands": [1, 2]})
