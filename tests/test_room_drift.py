"""The empty room at another temperature (simulator.room_drift): one image path's residual against its closed
form, dT = 0 unchanged, stretch and un-stretch, the drift-aware step on a steady-state chirp recording, bad values."""
from __future__ import annotations

import numpy as np
import pytest

from rooms import ShoeboxRoom, get_material
from rooms.air import speed_of_sound_m_s
from simulator.body_echo import output_lowpass
from simulator.deconvolution import deconvolve
from simulator.errors import SimulationInputError
from simulator.room_drift import (DriftModel, drifted_empty_room, resynthesized_empty_room, stretch_impulse_responses,
                                  stretch_to_speed)
from simulator.room_response import compute_room_acoustics
from simulator.signals import ChirpPlan, band_window

FS = 96_000.0
T = 9600
FREQS = np.fft.rfftfreq(T, 1 / FS)
BAND = (19_000.0, 32_000.0)


def _paths(delays_s, amplitudes, window) -> np.ndarray:
    """(..., T) circular band-limited responses of point paths: sum_p a_p exp(-j 2 pi f tau_p) x window."""
    phases = np.exp(-2j * np.pi * FREQS * np.asarray(delays_s)[..., None])
    return np.fft.irfft(np.sum(np.asarray(amplitudes)[..., None] * phases, axis=-2) * window, T)


@pytest.mark.parametrize("length_m, drift_k", [(5.0, 0.5), (2.5, -0.5), (9.0, 0.3)])
def test_one_image_path_residual_matches_closed_form(length_m, drift_k):
    c0, c1 = speed_of_sound_m_s(20.0), speed_of_sound_m_s(20.0 + drift_k)
    amplitude = 1 / (4 * np.pi * length_m)
    # A delta at L / c0, flat over 19-32 kHz (raised-cosine roll-off over 2 kHz outside).
    original = _paths([[length_m / c0]], [[amplitude]], band_window(FREQS, BAND, 2_000.0))      # (1, T)
    drifted = drifted_empty_room(original[None], 20.0, drift_k, FS)[0]
    residual = np.fft.rfft(drifted - original)[0] / amplitude
    closed_form = np.abs(1 - np.exp(-2j * np.pi * FREQS * length_m * (1 / c1 - 1 / c0)))
    inside = (FREQS >= BAND[0]) & (FREQS <= BAND[1])
    assert closed_form[inside].min() > 0.4
    assert np.max(np.abs(np.abs(residual[inside]) / closed_form[inside] - 1)) < 0.01


def test_zero_drift_returns_the_input_bit_for_bit():
    rng = np.random.default_rng(0)
    responses = rng.standard_normal((2, 3, 500))
    for out in (drifted_empty_room(responses, 21.0, 0.0, FS), stretch_impulse_responses(responses, 343.0, 343.0, FS),
                stretch_to_speed(responses[0], 343.0, 343.0, FS, responses[1, :2], [[1e3, 2e3], [3e3, 4e3]])):
        assert out is not responses and np.array_equal(out, responses if out.ndim == 3 else responses[0])


def test_stretch_then_unstretch_recovers_the_input():
    rng = np.random.default_rng(1)
    delays_s = rng.uniform(0.005, 0.04, (4, 12))                                        # 4 responses, 12 paths
    responses = _paths(delays_s, rng.uniform(-0.1, 0.1, (4, 12)), band_window(FREQS, BAND, 3_000.0))
    c0, c1 = speed_of_sound_m_s(20.0), speed_of_sound_m_s(20.5)
    stretched = stretch_impulse_responses(responses, c0, c1, FS)
    back = stretch_impulse_responses(stretched, c1, c0, FS)
    inside = (FREQS >= BAND[0]) & (FREQS <= BAND[1])
    spectra, back_spectra = np.fft.rfft(responses)[:, inside], np.fft.rfft(back)[:, inside]
    assert np.linalg.norm(back_spectra - spectra) < 1e-6 * np.linalg.norm(spectra)


def test_stretch_moves_every_path_to_the_new_speed():
    rng = np.random.default_rng(2)
    delays_s, amplitudes = rng.uniform(0.005, 0.04, 12), rng.uniform(-0.1, 0.1, 12)
    c0, c1 = speed_of_sound_m_s(20.0), speed_of_sound_m_s(19.5)
    window = output_lowpass(FREQS, FS) * band_window(FREQS, BAND, 3_000.0)
    stretched = np.fft.rfft(stretch_impulse_responses(_paths(delays_s[None], amplitudes[None], window), c0, c1, FS))
    expected = np.fft.rfft(_paths(delays_s[None] * c0 / c1, amplitudes[None], window))
    inside = (FREQS >= BAND[0]) & (FREQS <= BAND[1])
    assert np.linalg.norm((stretched - expected)[:, inside]) < 1e-4 * np.linalg.norm(expected[:, inside])


def test_resynthesized_room_moves_the_direct_path():
    room = ShoeboxRoom((4.0, 5.0, 3.0), get_material("painted_plaster"))
    speaker, microphone = np.array([[1.0, 1.0, 1.5]]), np.array([[3.0, 3.5, 1.2]])
    with pytest.warns(RuntimeWarning, match="max_order"):
        acoustics = compute_room_acoustics(room, speaker, microphone, n_samples=2400, max_order=1, temperature_c=20.0)
    assert np.array_equal(resynthesized_empty_room(acoustics, 0.0), acoustics.impulse_responses)
    distance_m = np.linalg.norm(speaker - microphone)
    c0, c1 = speed_of_sound_m_s(20.0), speed_of_sound_m_s(24.0)
    for drifted in (resynthesized_empty_room(acoustics, 4.0),
                    drifted_empty_room(acoustics.impulse_responses, 20.0, 4.0, FS)):
        # the direct path alone is the first arrival: its phase slope over 19-32 kHz is its delay
        early = drifted[0, 0, : int(distance_m / c0 * FS) + 48]
        spectrum = np.fft.rfft(early, 8 * T)
        f = np.fft.rfftfreq(8 * T, 1 / FS)
        inside = (f >= BAND[0]) & (f <= BAND[1])
        slope = np.polyfit(2 * np.pi * f[inside], np.unwrap(np.angle(spectrum[inside])), 1)[0]
        assert abs(-slope - distance_m / c1) * FS < 0.02


def test_stretch_to_speed_cancels_the_drift_of_a_chirp_recording():
    plan = ChirpPlan()
    chirps, bands = plan.chirps(), plan.speaker_bands_hz()
    rng = np.random.default_rng(3)
    S, M = 4, 2
    lengths_m = np.concatenate([rng.uniform(1.0, 12.0, (S, M, 20)), np.full((S, M, 1), 0.02)], axis=-1)
    amplitudes = 1 / (4 * np.pi * lengths_m)                  # the last path: a co-located pair's 2 cm
    window = output_lowpass(FREQS, FS)
    c0, c1 = speed_of_sound_m_s(20.0), speed_of_sound_m_s(20.5)
    chirp_spectra = np.fft.rfft(chirps)

    def record(speed_m_s):
        responses = _paths(lengths_m / speed_m_s, amplitudes, window)                   # (S, M, T), circular
        return np.fft.irfft(np.einsum("sk,smk->mk", chirp_spectra, np.fft.rfft(responses)), T)

    frame, empty = record(c0), record(c1)
    aligned = stretch_to_speed(empty, c1, c0, FS, chirps, bands)

    def residual(empty_recordings):
        kernels = deconvolve(frame, empty_recordings, chirps, bands, FS, kernel_samples=4800, align=False)
        return np.linalg.norm(kernels)

    drift, after = residual(empty), residual(aligned)
    assert after < 2e-3 * drift, (after, drift)


def test_drift_model_draws_and_bad_values():
    model = DriftModel()
    draws = [model.draw(np.random.default_rng(seed)) for seed in range(200)]
    assert min(draws) >= -0.5 and max(draws) <= 0.5 and max(draws) - min(draws) > 0.8
    assert model.draw(np.random.default_rng(5)) == model.draw(np.random.default_rng(5))
    assert DriftModel((0.2, 0.2)).draw(np.random.default_rng(0)) == 0.2
    for kwargs in ((1.0, -1.0), (-20.0, 0.0), (0.0, float("nan")), (1.0, 2.0, 3.0), "warm"):
        with pytest.raises(SimulationInputError, match="temperature_drift_k_range"):
            DriftModel(kwargs)
    with pytest.raises(SimulationInputError, match="rng"):
        model.draw(3)
    responses = np.zeros((2, 2, 100))
    with pytest.raises(SimulationInputError, match="temperature_drift_k"):
        drifted_empty_room(responses, 20.0, 25.0, FS)
    with pytest.raises(SimulationInputError, match="temperature_c"):
        drifted_empty_room(responses, 80.0, 0.5, FS)
    with pytest.raises(SimulationInputError, match="speed_to_m_s"):
        stretch_impulse_responses(responses, 343.0, 34.3, FS)
    with pytest.raises(SimulationInputError, match="responses"):
        stretch_impulse_responses(np.full(10, np.nan), 343.0, 344.0, FS)
    with pytest.raises(SimulationInputError, match="sample_rate_hz"):
        stretch_impulse_responses(responses, 343.0, 344.0, 0.0)
    with pytest.raises(SimulationInputError, match="bands_hz"):
        stretch_to_speed(np.zeros((2, 100)), 343.0, 344.0, FS, np.zeros((2, 100)), [[2e3, 3e3], [1e3, 2.5e3]])
    with pytest.raises(SimulationInputError, match="chirps"):
        stretch_to_speed(np.zeros((2, 100)), 343.0, 344.0, FS, np.zeros((2, 90)), [[1e3, 2e3], [3e3, 4e3]])
