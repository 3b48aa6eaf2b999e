"""simulator.noise: rendered noise against closed forms (power-law spectrum, in-band power, a sinusoid's
A^2 / 2, Poisson bursts, the noise a chirp deconvolution leaves), input checks, determinism and draw ranges.

In-band power of x over N samples is Parseval's brick-wall definition, P_band = sum_band w_k |X_k|^2 / N^2
(w_k = 2, 1 at DC and Nyquist), written out here and not taken from the module."""
from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.deconvolution import deconvolve
from simulator.errors import SimulationInputError
from simulator.noise import NoiseDraw, NoiseModel, impulse_noise, render_noise, tone_noise
from simulator.signals import ChirpPlan

FS = 96_000.0
N = 9600                     # one 100 ms period
BAND = (19_000.0, 32_000.0)
FREQS = np.fft.rfftfreq(N, 1 / FS)
WEIGHTS = np.where((FREQS == 0) | (FREQS == FS / 2), 1.0, 2.0)
IN_BAND = (FREQS >= BAND[0]) & (FREQS <= BAND[1])


def band_power(x: np.ndarray) -> np.ndarray:
    """Per-channel in-band power (Parseval, brick wall)."""
    return np.sum(WEIGHTS[IN_BAND] * np.abs(np.fft.rfft(x, axis=-1)[..., IN_BAND]) ** 2, axis=-1) / N**2


def power_law_band_mean(c: float, alpha: float, f1: float, f2: float) -> float:
    """(1 / (f2 - f1)) * integral_f1^f2 c f^alpha df."""
    if abs(alpha + 1) < 1e-12:
        return c * np.log(f2 / f1) / (f2 - f1)
    return c * (f2 ** (alpha + 1) - f1 ** (alpha + 1)) / ((alpha + 1) * (f2 - f1))


@pytest.mark.parametrize("slope_db_per_octave", [-6.0, -3.0103, 0.0, 3.0])
def test_ambient_spectrum_follows_the_power_law(slope_db_per_octave):
    """One-sided PSD S(f) = c max(f, f_c)^alpha, alpha = slope / 3.0103, c from integral_band c f^alpha df = P_n.

    Averaged periodogram (S_k = w_k |X_k|^2 / (N fs), 200 channels) in third-octave bands from 1.25 to 40 kHz
    against the band average of c f^alpha, and below the 1 kHz corner (400-630 Hz) against c f_c^alpha."""
    draw = NoiseDraw(snr_db=20.0, spectral_slope_db_per_octave=slope_db_per_octave, low_corner_hz=1000.0)
    x = render_noise(draw, 200, N, FS, 3.0, np.random.default_rng(1), band_hz=BAND)
    psd = np.mean(WEIGHTS * np.abs(np.fft.rfft(x, axis=-1)) ** 2, axis=0) / (N * FS)
    alpha = slope_db_per_octave / (10 * np.log10(2))
    p_n = 3.0 / 10 ** (20.0 / 10)
    c = p_n / (power_law_band_mean(1.0, alpha, *BAND) * (BAND[1] - BAND[0]))   # integral_band c f^alpha df = P_n
    centres = 1000.0 * 2.0 ** (np.arange(1, 17) / 3)                     # 1.26 ... 40.3 kHz
    measured_db, predicted_db = [], []
    for f1, f2 in zip(centres * 2 ** (-1 / 6), centres * 2 ** (1 / 6)):
        bins = (FREQS >= f1) & (FREQS < f2)
        measured_db.append(10 * np.log10(psd[bins].mean()))
        predicted_db.append(10 * np.log10(power_law_band_mean(c, alpha, f1, f2)))
    deviation_db = np.array(measured_db) - np.array(predicted_db)
    assert np.max(np.abs(deviation_db)) < 0.5, deviation_db
    fitted_slope = np.polyfit(np.log2(centres), measured_db, 1)[0]
    assert abs(fitted_slope - slope_db_per_octave) < 0.1, fitted_slope
    below = (FREQS >= 400) & (FREQS < 630)
    assert abs(10 * np.log10(psd[below].mean() / (c * 1000.0**alpha))) < 0.5
    assert psd[0] == pytest.approx(0.0, abs=1e-20 * psd.max())               # no DC


@pytest.mark.parametrize("snr_db, slope", [(10.0, 0.0), (25.0, -6.0), (40.0, -2.0), (0.0, 4.5)])
def test_in_band_power_is_reference_over_snr(snr_db, slope):
    """Mean in-band power over 64 channels = reference_power / 10^(snr_db / 10) within 2 %; for white noise
    the total power is (fs / 2) / B times the in-band one (the offset from SimulationConfig.snr_db)."""
    reference_power = 0.37
    draw = NoiseDraw(snr_db=snr_db, spectral_slope_db_per_octave=slope)
    x = render_noise(draw, 64, N, FS, reference_power, np.random.default_rng(2), band_hz=BAND)
    expected = reference_power / 10 ** (snr_db / 10)
    assert band_power(x).mean() == pytest.approx(expected, rel=0.02)
    if slope == 0.0:
        assert np.mean(x**2) == pytest.approx(expected * (FS / 2) / (BAND[1] - BAND[0]), rel=0.02)


def test_tones_have_their_frequency_and_level():
    """A sin(2 pi f t + phi) has power A^2 / 2 = P_n 10^(L / 10); a least-squares fit of sin and cos at f per
    channel recovers A^2 = a^2 + b^2 (the ambient noise biases it by fs / (N B) P_n = 8e-4 P_n and scatters it by
    ~6 % per channel for the -3 dB tone, 0.35 % over 256 channels); a Hann-windowed, 16x
    zero-padded spectrum peaks within 2 Hz of f; the phases differ between channels."""
    frequencies_hz, levels_db, snr_db, reference_power = (23_456.7, 30_123.4), (10.0, -3.0), 30.0, 2.0
    draw = NoiseDraw(snr_db=snr_db, tone_frequencies_hz=frequencies_hz, tone_levels_db=levels_db)
    x = render_noise(draw, 256, N, FS, reference_power, np.random.default_rng(3), band_hz=BAND)
    p_n = reference_power / 10 ** (snr_db / 10)
    t_s = np.arange(N) / FS
    zero_padded_hz = np.fft.rfftfreq(16 * N, 1 / FS)
    spectrum = np.abs(np.fft.rfft(x[:16] * np.hanning(N), 16 * N, axis=-1)).mean(0)
    for f_hz, level_db in zip(frequencies_hz, levels_db):
        basis = np.stack([np.sin(2 * np.pi * f_hz * t_s), np.cos(2 * np.pi * f_hz * t_s)], 1)
        coefficients = np.linalg.lstsq(basis, x.T, rcond=None)[0]            # (2, channels)
        power = np.mean(np.sum(coefficients**2, 0)) / 2
        assert power == pytest.approx(p_n * 10 ** (level_db / 10), rel=0.01)
        near = np.abs(zero_padded_hz - f_hz) < 500
        assert abs(zero_padded_hz[near][np.argmax(spectrum[near])] - f_hz) < 2.0
        phases = np.arctan2(coefficients[1], coefficients[0])
        assert np.ptp(phases) > 1.0


def test_impulse_power_matches_poisson_bursts():
    """E P_band = r T * P_onset * sum_{n < L} exp(-2 n / (tau fs)) / N, L = ceil(8 tau fs): Poisson count (mean
    r T), in-band power P_onset at onset, envelope exp(-n / (tau fs)); a white carrier's expected spectrum is
    flat whatever the envelope. 100 renders of ~100 events (Poisson scatter 1 %); bursts share their onsets
    across channels, so the channels' short-time energies correlate."""
    rate_per_s, decay_s, onset_power = 1000.0, 0.002, 0.5
    rng = np.random.default_rng(4)
    measured = np.mean([band_power(impulse_noise(4, N, FS, rate_per_s, decay_s, onset_power, BAND, rng)).mean()
                        for _ in range(100)])
    length = int(np.ceil(8 * decay_s * FS))
    expected = rate_per_s * N / FS * onset_power * np.sum(np.exp(-2 * np.arange(length) / (decay_s * FS))) / N
    assert measured == pytest.approx(expected, rel=0.05)
    sparse = impulse_noise(2, N, FS, 30.0, 0.001, 1.0, BAND, np.random.default_rng(5))
    energy = (sparse**2).reshape(2, -1, 96).sum(-1)                       # 1 ms frames
    assert np.corrcoef(energy)[0, 1] > 0.8
    assert not impulse_noise(2, N, FS, 0.0, 0.001, 1.0, BAND, rng).any()


# -- the empty room: the mean of P periods ---------------------------------------------------------------------
def test_averaged_ambient_is_the_same_noise_at_one_pth_of_the_power():
    """Ambient noise of consecutive periods is independent, so the mean of P is the same Gaussian process at P_n / P:
    rendered from the same draws it is the single period's noise times 1 / sqrt(P), and its in-band power over 64
    channels is P_n / P within the scatter of ~1300 bins per channel (2.8 % / sqrt(64))."""
    draw = NoiseDraw(snr_db=20.0, spectral_slope_db_per_octave=-3.0)
    one = render_noise(draw, 64, N, FS, 1.0, np.random.default_rng(2), band_hz=BAND)
    for periods in (4, 10):
        mean = render_noise(draw, 64, N, FS, 1.0, np.random.default_rng(2), band_hz=BAND, periods=periods)
        np.testing.assert_allclose(mean, one / np.sqrt(periods), rtol=1e-12, atol=1e-15)
        assert band_power(mean).mean() == pytest.approx(10 ** -2 / periods, rel=0.02)


@pytest.mark.parametrize("cycles_per_period", [250.0, 250.5, 250.1, 312.37])
def test_averaged_tone_is_the_mean_of_the_continuous_tone_over_p_periods(cycles_per_period):
    """A tone A sin(2 pi f t + phi) played through P consecutive periods, cut into periods and averaged sample by
    sample (the definition, computed directly), equals tone_noise(..., periods=P) with the same phases: whole f T
    keeps the tone (|c| = 1), f T = k + 1/2 with even P cancels it, others are attenuated by |c|."""
    periods, f_hz = 10, cycles_per_period * FS / N
    rendered = tone_noise(3, N, FS, (f_hz,), (0.5,), np.random.default_rng(9), periods)
    phases = np.random.default_rng(9).uniform(0.0, 2 * np.pi, (3, 1))
    t_s = np.arange(periods * N) / FS
    continuous = np.sin(2 * np.pi * f_hz * t_s + phases)                     # A = sqrt(2 * 0.5) = 1
    direct = continuous.reshape(3, periods, N).mean(axis=1)
    np.testing.assert_allclose(rendered, direct, atol=1e-9)
    if cycles_per_period == 250.0:
        single = tone_noise(3, N, FS, (f_hz,), (0.5,), np.random.default_rng(9))
        np.testing.assert_allclose(rendered, single, atol=1e-9)
    if cycles_per_period == 250.5:
        assert np.abs(rendered).max() < 1e-9


def test_averaged_impulses_have_one_pth_of_the_power():
    """The bursts of P periods, Poisson(r P T) of them at 1 / P of their amplitude, folded onto one period: the
    expected in-band power is the single period's over P (Poisson scatter of ~1000 events: 3 %)."""
    rate_per_s, decay_s, onset_power, periods = 1000.0, 0.002, 0.5, 10
    rng = np.random.default_rng(4)
    measured = np.mean([band_power(impulse_noise(4, N, FS, rate_per_s, decay_s, onset_power, BAND, rng,
                                                 periods)).mean() for _ in range(100)])
    length = int(np.ceil(8 * decay_s * FS))
    single = rate_per_s * N / FS * onset_power * np.sum(np.exp(-2 * np.arange(length) / (decay_s * FS))) / N
    assert measured == pytest.approx(single / periods, rel=0.05)


def test_the_empty_room_of_a_realistic_recording_averages_its_periods():
    """RoomSimulator with realistic noise: the frame's recording carries one period's noise, the empty room's the
    mean of NoiseModel.empty_room_periods; a draw from a store before that field (no key) reads as 1 period."""
    from rooms import RoomSampler, RoomSamplerConfig
    from simulator.recording import RoomSimulator, SimulationConfig

    scene = RoomSampler(RoomSamplerConfig()).sample(np.random.default_rng(0))
    powers = {}
    for periods in (1, 10):
        model = NoiseModel(snr_db_range=(20.0, 20.0), tone_count_range=(0, 0), impulse_rate_per_s_range=(0.0, 0.0),
                           empty_room_periods=periods)
        simulator = RoomSimulator(scene, SimulationConfig(max_order=1, noise=model), rng=np.random.default_rng(1))
        clean = simulator._empty_clean
        full, _ = simulator._finish(clean.copy(), np.random.default_rng(2))
        empty, _ = simulator._finish(clean.copy(), np.random.default_rng(2), empty=True)
        powers[periods] = (band_power(full - clean).mean(), band_power(empty - clean).mean())
    p_n = powers[1][0]
    assert powers[1][1] == pytest.approx(p_n, rel=0.05)            # one period: as noisy as a frame
    assert powers[10][0] == pytest.approx(p_n, rel=0.05)           # the frame is still one period
    assert powers[10][1] == pytest.approx(p_n / 10, rel=0.05)
    legacy = {k: v for k, v in NoiseModel().draw(np.random.default_rng(3)).to_dict().items()
              if k != "empty_room_periods"}
    assert NoiseDraw(**legacy).empty_room_periods == 1


@pytest.mark.parametrize("with_empty_noise", [False, True])
def test_deconvolved_noise_matches_the_chirp_spectrum_prediction(with_empty_noise):
    """White noise of variance sigma^2 (no signal) through k_s = irfft(W_s D / C_s): the rFFT bins of white
    noise are independent with E|D_k|^2 = N sigma^2, so by Parseval the kernel's variance per sample is

        var_s = g sigma^2 / N * sum_k w_k W_s(f_k)^2 / |C_s(k)|^2,      g = 1, or 2 with an independent
                                                                         noisy empty-room recording subtracted

    (W_s the raised-cosine taper, 1 inside [low + 300, high - 300] Hz; regularisation lambda = 1e-3 changes
    it by < 0.2 %). Here sigma^2 = P_n N / sum_band w_k (white noise of in-band power P_n). Time-bandwidth
    form: a linear chirp of amplitude 1 sweeping B has |C_k|^2 ~ N fs / (4 B) in its band (stationary phase;
    Parseval with energy E_c = N / 2), and sum_k W_k^2 ~ (N / fs) integral W^2 df = (N / fs) (B - 375 Hz)
    (each 300 Hz raised-cosine edge keeps 3/8 of its width), so

        var_s ~ g sigma^2 (2 / fs)^2 B (B - 375 Hz) / E_c     (= g sigma^2 (2 B / fs)^2 / E_c, brick wall):

    the in-band noise over the chirp's energy; the chirp's 5 ms Tukey edges and the Fresnel ripple of |C|^2
    add ~1 %. Both predictions within 5 %."""
    plan = ChirpPlan()
    chirps, bands = plan.chirps(), plan.speaker_bands_hz()
    draw, p_n = NoiseDraw(snr_db=0.0), 1.0
    rng = np.random.default_rng(6)
    recordings = render_noise(draw, 128, N, FS, p_n, rng, band_hz=BAND)
    empty = render_noise(draw, 128, N, FS, p_n, rng, band_hz=BAND) if with_empty_noise else np.zeros_like(recordings)
    kernels = deconvolve(recordings, empty, chirps, bands, FS, kernel_samples=N, align=False)   # (S, M, N)
    measured = np.mean(kernels**2, axis=(1, 2))
    sigma2 = p_n * N / np.sum(WEIGHTS[IN_BAND])
    gain = 2.0 if with_empty_noise else 1.0
    chirp_power = np.abs(np.fft.rfft(chirps, axis=-1)) ** 2
    for s, (low, high) in enumerate(bands):
        inside = np.clip(np.minimum(FREQS - low, high - FREQS) / 300.0, 0.0, 1.0)
        taper = 0.5 * (1 - np.cos(np.pi * inside))
        predicted = gain * sigma2 / N * np.sum(WEIGHTS * taper**2 / np.maximum(chirp_power[s], 1e-300))
        assert measured[s] == pytest.approx(predicted, rel=0.05), (s, measured[s], predicted)
        width = high - low
        time_bandwidth = gain * sigma2 * (2 / FS) ** 2 * width * (width - 375.0) / (N / 2)
        assert measured[s] == pytest.approx(time_bandwidth, rel=0.05), (s, measured[s], time_bandwidth)


@pytest.mark.parametrize("kwargs, field", [
    (dict(snr_db_range=(40.0, 10.0)), "NoiseModel.snr_db_range"),
    (dict(snr_db_range="loud"), "NoiseModel.snr_db_range"),
    (dict(spectral_slope_db_per_octave_range=(-20.0, 0.0)), "NoiseModel.spectral_slope_db_per_octave_range[0]"),
    (dict(low_corner_hz=0.0), "NoiseModel.low_corner_hz"),
    (dict(tone_count_range=(0, 2.5)), "NoiseModel.tone_count_range[1]"),
    (dict(tone_count_range=(-1, 2)), "NoiseModel.tone_count_range[0]"),
    (dict(tone_frequency_range_hz=(0.0, 30_000.0)), "NoiseModel.tone_frequency_range_hz[0]"),
    (dict(tone_level_db_range=(float("nan"), 0.0)), "NoiseModel.tone_level_db_range"),
    (dict(impulse_rate_per_s_range=(-1.0, 1.0)), "NoiseModel.impulse_rate_per_s_range[0]"),
    (dict(impulse_decay_s_range=(0.0, 0.001)), "NoiseModel.impulse_decay_s_range[0]"),
    (dict(impulse_level_db_range=(1.0, 2.0, 3.0)), "NoiseModel.impulse_level_db_range"),
    (dict(empty_room_periods=0), "NoiseModel.empty_room_periods"),
    (dict(empty_room_periods=2.5), "NoiseModel.empty_room_periods"),
])
def test_bad_model_values_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(SimulationInputError) as caught:
        NoiseModel(**kwargs)
    message = str(caught.value)
    assert message.startswith(field) and "\n" not in message and "give" in message, message


@pytest.mark.parametrize("call, field", [
    (lambda d: render_noise(d, 2, N, FS, 1.0, np.random.default_rng(0), band_hz=(19e3, 50e3)), "band_hz"),
    (lambda d: render_noise(d, 2, N, FS, 0.0, np.random.default_rng(0)), "reference_power"),
    (lambda d: render_noise(d, 2, 1, FS, 1.0, np.random.default_rng(0)), "n_samples"),
    (lambda d: render_noise(d.to_dict(), 2, N, FS, 1.0, np.random.default_rng(0)), "draw"),
    (lambda d: render_noise(NoiseDraw(10.0, tone_frequencies_hz=(60e3,), tone_levels_db=(0.0,)), 2, N, FS, 1.0,
                            np.random.default_rng(0)), "tone frequency"),
    (lambda d: NoiseDraw(10.0, tone_frequencies_hz=(25e3,)), "NoiseDraw.tone_frequencies_hz"),
    (lambda d: NoiseDraw(10.0, impulse_decay_s=0.0), "NoiseDraw.impulse_decay_s"),
])
def test_bad_render_inputs_are_refused_naming_the_argument(call, field):
    with pytest.raises(SimulationInputError) as caught:
        call(NoiseDraw(snr_db=10.0))
    assert str(caught.value).startswith(field), str(caught.value)


def test_same_seed_same_noise():
    def noise(seed):
        rng = np.random.default_rng(seed)
        draw = NoiseModel(tone_count_range=(2, 2), impulse_rate_per_s_range=(50.0, 50.0)).draw(rng)
        return draw, render_noise(draw, 3, N, FS, 1.0, rng)

    (draw_a, a), (draw_b, b), (draw_c, c) = noise(11), noise(11), noise(12)
    assert draw_a == draw_b and np.array_equal(a, b)
    assert draw_a != draw_c and not np.allclose(a, c)


def test_draws_stay_in_their_ranges_and_round_trip_through_json():
    model = NoiseModel(snr_db_range=(5.0, 15.0), spectral_slope_db_per_octave_range=(-4.0, 1.0),
                       tone_count_range=(1, 3), tone_frequency_range_hz=(20e3, 21e3), tone_level_db_range=(-5.0, 5.0),
                       impulse_rate_per_s_range=(0.5, 3.0), impulse_decay_s_range=(0.001, 0.002),
                       impulse_level_db_range=(0.0, 6.0))
    rng = np.random.default_rng(8)
    draws = [model.draw(rng) for _ in range(2000)]
    for attribute, (low, high) in [("snr_db", model.snr_db_range),
                                   ("spectral_slope_db_per_octave", model.spectral_slope_db_per_octave_range),
                                   ("impulse_rate_per_s", model.impulse_rate_per_s_range),
                                   ("impulse_decay_s", model.impulse_decay_s_range),
                                   ("impulse_level_db", model.impulse_level_db_range)]:
        values = np.array([getattr(d, attribute) for d in draws])
        assert values.min() >= low and values.max() <= high, attribute
        assert values.min() < low + 0.01 * (high - low) and values.max() > high - 0.01 * (high - low), attribute
    counts = np.array([len(d.tone_frequencies_hz) for d in draws])
    assert set(counts) == {1, 2, 3} and all(len(d.tone_levels_db) == len(d.tone_frequencies_hz) for d in draws)
    tones = np.concatenate([d.tone_frequencies_hz for d in draws])
    levels = np.concatenate([d.tone_levels_db for d in draws])
    assert tones.min() >= 20e3 and tones.max() <= 21e3 and levels.min() >= -5 and levels.max() <= 5
    assert all(d.low_corner_hz == model.low_corner_hz for d in draws)
    stored = json.loads(json.dumps(draws[0].to_dict()))
    assert all(type(v) in (float, list) for k, v in stored.items() if k != "empty_room_periods")
    assert stored["empty_room_periods"] == 10 and NoiseDraw(**stored) == draws[0]
    defaults = NoiseModel()
    assert defaults.snr_db_range == (10.0, 40.0) and defaults.spectral_slope_db_per_octave_range == (-6.0, 0.0)
