"""Per-device transducer responses (simulator.transducers): a point reflector's kernel through a speaker and a
microphone against an independent computation, the range bias of an uncalibrated latency, and the draws."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.signal

from simulator.body_echo import output_lowpass
from simulator.deconvolution import band_taper
from simulator.errors import SimulationInputError
from simulator.signals import ChirpPlan
from simulator.transducers import DeviceResponses, TransducerModel, frequency_response, group_delay_s

FS = 96_000.0
N = 2**15                      # long enough for any device's ring-down (poles at >= 1 kHz, Q <= 8)
FREQS = np.fft.rfftfreq(N, 1 / FS)
C_M_S = 343.2


def _impulse_responses(devices: DeviceResponses) -> np.ndarray:
    """(D, N) band-limited impulse responses g_d, t = 0 at sample 0 (circular)."""
    return np.fft.irfft(frequency_response(devices, FREQS) * output_lowpass(FREQS, FS), N)


def _resonance(devices: DeviceResponses, d: int, frequencies_hz: np.ndarray) -> np.ndarray:
    """The resonance of device d as an analog biquad evaluated by scipy (independent of the module)."""
    w0, q = 2 * np.pi * devices.resonance_hz[d], devices.q[d]
    peak = 10 ** (devices.resonance_gain_db[d] / 20)
    _, response = scipy.signal.freqs([1.0, w0 * peak / q, w0**2], [1.0, w0 / q, w0**2], 2 * np.pi * frequencies_hz)
    return response


def test_point_reflector_kernel_is_delta_through_speaker_and_microphone():
    rng = np.random.default_rng(7)
    model = TransducerModel(q_range=(6.0, 8.0), tilt_db_per_octave_range=(-3.0, 3.0))
    speakers, microphones = model.draw(rng, 4), model.draw(rng, 4)
    s, m = 2, 1
    band = ChirpPlan().speaker_band_hz(s)
    g_speaker, g_microphone = _impulse_responses(speakers)[s], _impulse_responses(microphones)[m]
    # A point reflector: a band-limited delta of area a at tau, then through g_s and g_m (circular
    # convolutions, as the recorder's: the delta's band-limited tails wrap around).
    tau_samples, amplitude = 1000.3, 0.05
    delta = np.fft.irfft(amplitude * band_taper(FREQS, band) * np.exp(-2j * np.pi * FREQS * tau_samples / FS), N)
    kernel = np.fft.irfft(np.fft.rfft(delta) * np.fft.rfft(g_speaker) * np.fft.rfft(g_microphone), N)
    spectrum = np.fft.rfft(kernel)
    inside = band_taper(FREQS, band) == 1.0
    f = FREQS[inside]
    # Expected, independently: scipy's biquads, the ideal power-law tilt, the gains.
    tilt = (speakers.tilt_db_per_octave[s] + microphones.tilt_db_per_octave[m]) / (20 * np.log10(2))
    expected_db = 20 * np.log10(amplitude * np.abs(_resonance(speakers, s, f) * _resonance(microphones, m, f))
                                * (f / 25_000.0) ** tilt) + speakers.gain_db[s] + microphones.gain_db[m]
    assert np.max(np.abs(20 * np.log10(np.abs(spectrum[inside])) - expected_db)) < 0.1
    fine = np.linspace(f[0] - 50, f[-1] + 50, 20001)
    phase = np.unwrap(np.angle(_resonance(speakers, s, fine) * _resonance(microphones, m, fine)))
    resonance_delay_s = np.interp(f, fine, -np.gradient(phase, 2 * np.pi * fine))
    expected_delay = tau_samples + (speakers.latency_s[s] + microphones.latency_s[m] + resonance_delay_s) * FS
    measured_delay = -np.gradient(np.unwrap(np.angle(spectrum)), 2 * np.pi * FREQS / FS)[inside]
    assert np.max(np.abs(measured_delay - expected_delay)) < 0.5
    # group_delay_s (closed form) agrees with the measurement too.
    closed_form = tau_samples + (group_delay_s(speakers, f)[s] + group_delay_s(microphones, f)[m]) * FS
    assert np.max(np.abs(measured_delay - closed_form)) < 0.05


def _envelope_peak_samples(spectrum: np.ndarray, upsample: int = 16) -> float:
    """Time of the peak of |analytic signal| of a kernel given by its rFFT (length N), in samples."""
    analytic = np.zeros(N * upsample, complex)
    analytic[: len(spectrum)] = 2 * spectrum
    envelope = np.abs(np.fft.ifft(analytic))
    k = int(np.argmax(envelope))
    left, centre, right = envelope[k - 1], envelope[k], envelope[(k + 1) % len(envelope)]
    return (k + 0.5 * (left - right) / (left - 2 * centre + right)) / upsample


def test_uncalibrated_latency_biases_range_by_c_latency_over_two():
    latency_s = np.array([1.5e-4, 0.6e-4])                    # speaker, microphone
    distance_m = 1.5
    round_trip_s = 2 * distance_m / C_M_S
    echo = band_taper(FREQS, (19_000.0, 32_000.0)) * np.exp(-2j * np.pi * FREQS * round_trip_s) / distance_m**2
    # Flat devices with a latency: the envelope's peak gives the range, biased by c L / 2.
    flat = [DeviceResponses([25e3], [4.0], [0.0], [0.0], [0.0], [value]) for value in latency_s]
    gains = frequency_response(flat[0], FREQS)[0] * frequency_response(flat[1], FREQS)[0]
    range_m = C_M_S * _envelope_peak_samples(echo * gains) / FS / 2
    bias_m = C_M_S * latency_s.sum() / 2
    assert bias_m > 0.03
    assert abs(range_m - (distance_m + bias_m)) < 0.01
    assert abs(C_M_S * _envelope_peak_samples(echo) / FS / 2 - distance_m) < 0.01
    # Drawn devices: adding the latency moves the peak by L fs samples exactly.
    rng = np.random.default_rng(3)
    speaker, microphone = TransducerModel().draw(rng, 1), TransducerModel().draw(rng, 1)
    no_latency = [dataclasses.replace(d, latency_s=np.zeros(1)) for d in (speaker, microphone)]
    with_latency = echo * frequency_response(speaker, FREQS)[0] * frequency_response(microphone, FREQS)[0]
    without = echo * frequency_response(no_latency[0], FREQS)[0] * frequency_response(no_latency[1], FREQS)[0]
    shift = _envelope_peak_samples(with_latency) - _envelope_peak_samples(without)
    assert abs(shift - (speaker.latency_s[0] + microphone.latency_s[0]) * FS) < 0.05


def test_draws_within_ranges_reproducible_and_serialisable():
    model = TransducerModel()
    devices = model.draw(np.random.default_rng(11), 200)
    for name, key in (("resonance_hz", "resonance_hz_range"), ("q", "q_range"),
                      ("resonance_gain_db", "resonance_gain_db_range"),
                      ("tilt_db_per_octave", "tilt_db_per_octave_range"), ("latency_s", "latency_s_range")):
        low, high = getattr(model, key)
        values = getattr(devices, name)
        assert values.shape == (200,) and values.min() >= low and values.max() <= high
        assert values.max() - values.min() > 0.8 * (high - low)
    assert np.abs(devices.gain_db).max() <= model.gain_spread_db
    again = model.draw(np.random.default_rng(11), 200)
    assert all(np.array_equal(getattr(devices, f.name), getattr(again, f.name)) for f in dataclasses.fields(devices))
    stored = json.loads(json.dumps(devices.to_dict()))
    assert all(type(v) is float for values in stored.values() for v in values)
    back = DeviceResponses.from_dict(stored)
    assert np.array_equal(frequency_response(back, FREQS[:50]), frequency_response(devices, FREQS[:50]))
    # No resonance, no tilt, no gain, no latency: a flat response.
    ideal = DeviceResponses([25e3], [4.0], [0.0], [0.0], [0.0], [0.0])
    np.testing.assert_allclose(frequency_response(ideal, FREQS), 1.0, atol=1e-12)
    # |G(f0)| is the resonance gain (plus the tilt and gain at f0).
    peaky = DeviceResponses([22e3], [5.0], [9.0], [0.0], [-2.0], [0.0])
    assert abs(20 * np.log10(abs(frequency_response(peaky, [22e3])[0, 0])) - 7.0) < 1e-9


@pytest.mark.parametrize("kwargs, field", [
    (dict(resonance_hz_range=(30e3, 20e3)), "resonance_hz_range"),
    (dict(resonance_hz_range=(20e3, 300e3)), "resonance_hz_range"),
    (dict(q_range=(0.1, 2.0)), "q_range"),
    (dict(q_range=(2.0, float("nan"))), "q_range"),
    (dict(resonance_gain_db_range=(0.0, 40.0)), "resonance_gain_db_range"),
    (dict(tilt_db_per_octave_range=(-10.0, 0.0)), "tilt_db_per_octave_range"),
    (dict(tilt_db_per_octave_range=(1.0, 2.0, 3.0)), "tilt_db_per_octave_range"),
    (dict(gain_spread_db=-1.0), "gain_spread_db"),
    (dict(gain_spread_db="3"), "gain_spread_db"),
    (dict(latency_s_range=(-1e-4, 1e-4)), "latency_s_range"),
])
def test_bad_model_values_refused(kwargs, field):
    with pytest.raises(SimulationInputError, match=field) as caught:
        TransducerModel(**kwargs)
    assert "\n" not in str(caught.value) and "give" in str(caught.value)


def test_bad_device_values_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(SimulationInputError, match="n_devices"):
        TransducerModel().draw(rng, 0)
    with pytest.raises(SimulationInputError, match="rng"):
        TransducerModel().draw(0, 2)
    with pytest.raises(SimulationInputError, match="latency_s"):
        DeviceResponses([25e3], [4.0], [0.0], [0.0], [0.0], [-1e-5])
    with pytest.raises(SimulationInputError, match="one length"):
        DeviceResponses([25e3, 26e3], [4.0], [0.0], [0.0], [0.0], [0.0])
    with pytest.raises(SimulationInputError, match="fields"):
        DeviceResponses.from_dict({"q": [1.0]})
    with pytest.raises(SimulationInputError, match="frequencies_hz"):
        frequency_response(TransducerModel().draw(rng, 1), [np.nan])
