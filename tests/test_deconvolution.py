"""simulator.deconvolution: pose kernels from simulated recordings, checked against geometry (echo
delays), the simulator's ground-truth kernels, the expected noise level, and known clock offsets."""
from __future__ import annotations

import time

import numpy as np
import pytest
import trimesh

from simulator.deconvolution import (
    DeconvolutionInputError, band_limit, band_taper, deconvolve, estimate_clock_offset, estimate_emission_offset,
    normalize_kernels, remove_tones,
)
from simulator.recording import RoomSimulator, SimulationConfig
from simulator.scene import envelope
from simulator.signals import ChirpPlan
from tests.helpers import SEPARATED, make_scene, sphere_body

FS = 96_000.0
CENTRE = np.array([3.6, 4.3, 1.45])   # clear of every speaker-microphone line; >1.4 m from walls


def simulator(**overrides) -> RoomSimulator:
    config = dict(snr_db=None, body_room_multipath=False, shadowing=False) | overrides
    return RoomSimulator(make_scene(SEPARATED), SimulationConfig(**config))


@pytest.fixture(scope="module")
def plain():
    """Full room (image sources to order 17), body echo only: the delay and SNR checks."""
    return simulator()


def specular_delays_samples(sim, centre, radius) -> np.ndarray:
    """(S, M) (|s - X| + |X - m|) / c of the specular point X: the sphere's point nearest both transducers."""
    points = trimesh.creation.icosphere(subdivisions=6, radius=radius).vertices + centre
    path = (np.linalg.norm(points[None, None] - sim.speakers[:, None, None], axis=-1)
            + np.linalg.norm(points[None, None] - sim.microphones[None, :, None], axis=-1)).min(-1)
    return path / sim.speed_of_sound_m_s * FS


def bistatic_angle_deg(sim, centre) -> np.ndarray:
    """(S, M) angle at the reflector between the directions to the speaker and to the microphone."""
    u = sim.speakers[:, None] - centre
    v = sim.microphones[None, :] - centre
    cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(cos))


def peak_sample(kernel: np.ndarray) -> float:
    """Sub-sample position of the envelope's maximum (parabola through the top three samples)."""
    env = envelope(kernel)
    i = int(np.argmax(env))
    y0, y1, y2 = env[i - 1], env[i], env[(i + 1) % len(env)]
    return i + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)


def inner_band(x: np.ndarray, bands, margin_hz: float = 320.0) -> np.ndarray:
    """(S, M, T) with row s brick-wall filtered to [low + margin, high - margin] of band s: the part of each
    band where the deconvolution's taper is 1, so the comparison does not depend on the taper."""
    f = np.fft.rfftfreq(x.shape[-1], 1 / FS)
    spectra = np.fft.rfft(x, axis=-1)
    for s, (lo, hi) in enumerate(bands):
        spectra[s, :, (f < lo + margin_hz) | (f > hi - margin_hz)] = 0
    return np.fft.irfft(spectra, x.shape[-1], axis=-1)


def delay(x: np.ndarray, samples: float) -> np.ndarray:
    """Circular fractional delay, the way the simulator applies a clock offset (spectrum x exp(-2 pi j f d))."""
    f = np.fft.rfftfreq(x.shape[-1])
    return np.fft.irfft(np.fft.rfft(x, axis=-1) * np.exp(-2j * np.pi * f * samples), x.shape[-1], axis=-1)


# -- (a) a small reflector ----------------------------------------------------------------------------
def test_a_small_sphere_echo_peaks_at_its_round_trip_delay(plain):
    """A 5 cm sphere 3 m from the rig, at 80 dB SNR (a weak echo: at 60 dB the noise alone moves its
    envelope peak by up to 1.4 samples): for every pair that sees a reflection (bistatic
    angle < 120 degrees), the kernel's envelope peaks within 1 sample of the specular path's delay,
    for the near-monostatic pairs (< 60 degrees; a wider angle skews the echo's band-limited
    envelope, ground truth included), and within 1 sample of the band-limited ground truth's peak for
    all of them."""
    sim = plain
    sim.config = SimulationConfig(snr_db=80.0, body_room_multipath=False, shadowing=False)
    radius = 0.05
    rec = sim.record(sphere_body(CENTRE, radius), np.random.default_rng(0))
    bands = sim.config.chirp_plan.speaker_bands_hz()
    kernels = deconvolve(rec.recordings, rec.empty_recordings, rec.chirps, bands, FS)
    assert kernels.shape == (4, 4, 4800)
    truth = band_limit(rec.pose_kernels, bands, FS)
    expected = specular_delays_samples(sim, CENTRE, radius)
    angle = bistatic_angle_deg(sim, CENTRE)
    near, seen = 0, 0
    for s in range(4):
        for m in range(4):
            if angle[s, m] > 120:
                continue
            seen += 1
            assert abs(peak_sample(kernels[s, m]) - peak_sample(truth[s, m])) <= 1, (s, m)
            if angle[s, m] < 60:
                near += 1
                assert abs(peak_sample(kernels[s, m]) - expected[s, m]) <= 1.0, (s, m, expected[s, m])
    assert seen >= 10 and near >= 4


# -- (b) no body ----------------------------------------------------------------------------------------
def test_without_a_body_the_kernel_is_noise_at_the_expected_level(plain):
    """Recording = empty room (both with independent sensor noise at 40 dB SNR, i.e. 40 dB under the
    chirps heard 1 m from the speakers).

    Expected noise after deconvolution (Parseval, white noise of std sigma_m in both recordings,
    a linear chirp's flat in-band spectrum |C|^2 = E_c T / (2 n_band) bins, the band taper's
    energy loss 5/8 of the taper per edge):

        std_k = sigma_m sqrt(8 B B_w / E_c) / fs,   B = band width, B_w = B - 1.25 taper

    The kernel's RMS is within 20 % of that, its envelope never exceeds 5.5 std_k (a Rayleigh
    envelope's maximum over the window is ~4 std_k), while a 15 cm sphere at the same SNR peaks above
    that bound in every pair that sees it (7 to 37 std_k here), at a median 4 x the no-body peak."""
    sim = plain
    sim.config = SimulationConfig(snr_db=40.0, body_room_multipath=False, shadowing=False)
    rng = np.random.default_rng(1)
    body = sphere_body(CENTRE, 0.15)
    a, b = sim.record(body, rng), sim.record(body, rng)
    bands = sim.config.chirp_plan.speaker_bands_hz()
    nothing = deconvolve(a.empty_recordings, b.empty_recordings, a.chirps, bands, FS)
    person = deconvolve(a.recordings, b.empty_recordings, a.chirps, bands, FS)

    sigma = np.full(len(bands), np.sqrt(sim.reference_power / 10 ** (40 / 10)))    # (M,) the sensor noise
    energy = np.sum(a.chirps**2, axis=1)                                            # (S,)
    width = bands[:, 1] - bands[:, 0]
    expected = sigma[None, :] * np.sqrt(8 * (width * (width - 1.25 * 300.0) / energy))[:, None] / FS
    np.testing.assert_allclose(nothing.std(axis=-1) / expected, 1.0, atol=0.2)
    assert np.all(envelope(nothing).max(-1) < 5.5 * expected)
    seen = bistatic_angle_deg(sim, CENTRE) < 120
    person_peak = envelope(person).max(-1)
    assert np.all(person_peak[seen] > 5.5 * expected[seen])
    assert np.median(person_peak[seen] / envelope(nothing).max(-1)[seen]) > 4


# -- (c) agreement with the ground truth ---------------------------------------------------------------
def test_kernels_match_the_ground_truth_pose_kernels_at_high_snr():
    """Full physics (body echo, body-room multipath, shadowing), 80 dB SNR: in the part of each band
    where the taper is 1, the deconvolved kernels equal the simulator's ground truth to < 5 % of its
    energy, pair by pair, and to < 2 % over all pairs."""
    sim = simulator(snr_db=80.0, body_room_multipath=True, shadowing=True)
    rec = sim.record(sphere_body(CENTRE, 0.15), np.random.default_rng(2))
    bands = sim.config.chirp_plan.speaker_bands_hz()
    T = rec.recordings.shape[-1]
    kernels = deconvolve(rec.recordings, rec.empty_recordings, rec.chirps, bands, FS, kernel_samples=T)
    ours, truth = inner_band(kernels, bands), inner_band(rec.pose_kernels, bands)
    error = np.sum((ours - truth) ** 2, -1) / np.sum(truth**2, -1)
    assert np.all(error < 0.05), error.round(4)
    assert np.sum((ours - truth) ** 2) < 0.02 * np.sum(truth**2)
    # the band-limited truth of band_limit is what the docstring promises
    full = band_limit(rec.pose_kernels, bands, FS)
    assert np.sum((kernels - full) ** 2) < 0.05 * np.sum(full**2)


def test_speakers_are_separated_by_band():
    """Only speaker 2's paths include the body (the body response is given to speaker 2 alone): the
    other speakers' kernels hold < 1e-5 of speaker 2's energy (-50 dB: the neighbours' chirps leak
    that little across the 250 Hz guard bands). Without alignment, to see the band separation alone:
    alignment adds a residual of the room of ~-35 dB here, because the body's echo biases the
    offset estimate by ~4e-5 sample."""
    sim = simulator()
    kernels_true = sim.body_response(sphere_body(CENTRE, 0.15))
    only_2 = np.zeros_like(kernels_true)
    only_2[2] = kernels_true[2]
    recorded = sim._convolve(sim.room_impulse_responses + only_2)
    bands = sim.config.chirp_plan.speaker_bands_hz()
    kernels = deconvolve(recorded, sim._empty_clean, sim.chirps, bands, FS, align=False)
    energy = np.sum(kernels**2, axis=(1, 2))
    assert np.all(energy[[0, 1, 3]] < 1e-5 * energy[2])
    aligned = deconvolve(recorded, sim._empty_clean, sim.chirps, bands, FS)
    energy = np.sum(aligned**2, axis=(1, 2))
    assert np.all(energy[[0, 1, 3]] < 1e-3 * energy[2])


# -- (d) clock offsets -----------------------------------------------------------------------------------
def test_a_clock_offset_of_2_3_samples_is_found_and_removed(plain):
    """The recording is 2.3 samples late against the empty room (the simulator's clock-offset
    operation): the offset is estimated to 0.01 sample, the aligned kernels meet (a) and (c), and
    without alignment the un-cancelled room swamps the kernels."""
    sim = plain
    sim.config = SimulationConfig(snr_db=80.0, body_room_multipath=False, shadowing=False)
    radius = 0.05
    rec = sim.record(sphere_body(CENTRE, radius), np.random.default_rng(3))
    bands = sim.config.chirp_plan.speaker_bands_hz()
    late = delay(rec.recordings, 2.3)
    assert estimate_clock_offset(late, rec.empty_recordings, bands, FS) == pytest.approx(2.3, abs=0.01)
    T = late.shape[-1]
    aligned, offset = deconvolve(late, rec.empty_recordings, rec.chirps, bands, FS, kernel_samples=T,
                                 return_offsets=True)
    assert offset == pytest.approx(2.3, abs=0.01)
    unaligned = deconvolve(late, rec.empty_recordings, rec.chirps, bands, FS, kernel_samples=T, align=False)
    truth = inner_band(rec.pose_kernels, bands)
    error = lambda k: np.sum((inner_band(k, bands) - truth) ** 2) / np.sum(truth**2)  # noqa: E731
    assert error(aligned) < 0.05
    assert error(unaligned) > 10.0
    expected = specular_delays_samples(sim, CENTRE, radius)
    near = np.argwhere(bistatic_angle_deg(sim, CENTRE) < 60)
    for s, m in near:
        assert abs(peak_sample(aligned[s, m, :4800]) - expected[s, m]) <= 1.0
    misses = sum(abs(peak_sample(unaligned[s, m, :4800]) - expected[s, m]) > 1.0 for s, m in near)
    assert misses >= len(near) // 2


def test_the_simulators_random_clock_offsets_are_recovered():
    """With SimulationConfig.clock_offset_max_samples the recording and the empty recording get
    independent offsets: the estimate is their difference, and the kernel's echo sits at the true
    delay plus the empty recording's offset (t = 0 is the empty recording's)."""
    sim = simulator(snr_db=80.0, clock_offset_max_samples=3.0)
    radius = 0.05
    rec = sim.record(sphere_body(CENTRE, radius), np.random.default_rng(4))
    bands = sim.config.chirp_plan.speaker_bands_hz()
    kernels, offset = deconvolve(rec.recordings, rec.empty_recordings, rec.chirps, bands, FS, return_offsets=True)
    full, empty = rec.clock_offsets_samples
    assert offset == pytest.approx(full - empty, abs=0.01)
    expected = specular_delays_samples(sim, CENTRE, radius) + empty
    for s, m in np.argwhere(bistatic_angle_deg(sim, CENTRE) < 60):
        assert abs(peak_sample(kernels[s, m]) - expected[s, m]) <= 1.0


def test_emission_offset_is_found_from_the_direct_paths(plain):
    """An empty recording cut 1234.6 samples into the chirp cycle: the direct paths' delays put the
    emission back to within 0.05 sample (0.004 here)."""
    sim = plain
    sim.config = SimulationConfig(snr_db=40.0, body_room_multipath=False, shadowing=False)
    rec = sim.record(sphere_body(CENTRE, 0.15), np.random.default_rng(5))
    bands = sim.config.chirp_plan.speaker_bands_hz()
    cut = delay(rec.empty_recordings, 1234.6)
    found = estimate_emission_offset(cut, rec.chirps, bands, FS, sim.speakers, sim.microphones,
                                     sim.speed_of_sound_m_s)
    assert found == pytest.approx(1234.6, abs=0.05)


def test_batches_of_frames_match_frame_by_frame(plain):
    sim = plain
    sim.config = SimulationConfig(snr_db=40.0, body_room_multipath=False, shadowing=False)
    rng = np.random.default_rng(6)
    recs = [sim.record(sphere_body(CENTRE + [0.2 * i, 0, 0], 0.1), rng) for i in range(3)]
    bands = sim.config.chirp_plan.speaker_bands_hz()
    frames = np.stack([r.recordings for r in recs])
    batch = deconvolve(frames, recs[0].empty_recordings, recs[0].chirps, bands, FS, kernel_samples=1000)
    assert batch.shape == (3, 4, 4, 1000)
    for i, r in enumerate(recs):
        single = deconvolve(r.recordings, recs[0].empty_recordings, r.chirps, bands, FS, kernel_samples=1000)
        np.testing.assert_allclose(batch[i], single, atol=1e-12 * np.abs(single).max())


def test_deconvolution_time_per_frame(plain):
    """4 x 4 pairs, one 100 ms frame at 96 kHz, alignment on: well under the 100 ms a frame lasts."""
    sim = plain
    rec = sim.record(sphere_body(CENTRE, 0.1), np.random.default_rng(7))
    bands = sim.config.chirp_plan.speaker_bands_hz()
    deconvolve(rec.recordings, rec.empty_recordings, rec.chirps, bands, FS)
    start = time.perf_counter()
    for _ in range(10):
        deconvolve(rec.recordings, rec.empty_recordings, rec.chirps, bands, FS)
    per_frame_s = (time.perf_counter() - start) / 10
    print(f"deconvolution of 4 x 4 pairs: {1e3 * per_frame_s:.1f} ms per frame")
    assert per_frame_s < 0.1


# -- taper and normalisation ------------------------------------------------------------------------------
def test_band_taper_is_one_inside_zero_outside_and_smooth():
    f = np.array([18_000, 19_000, 19_150, 19_300, 20_000, 21_900, 22_050, 22_200, 23_000])
    w = band_taper(f, (19_000, 22_200), 300.0)
    np.testing.assert_allclose(w, [0, 0, 0.5, 1, 1, 1, 0.5, 0, 0], atol=1e-12)


def test_normalization_removes_a_global_gain_and_keeps_relative_amplitudes():
    rng = np.random.default_rng(8)
    kernels = rng.standard_normal((3, 16, 500)) * np.linspace(1, 2, 16)[None, :, None]
    normalized, scale = normalize_kernels(kernels)
    assert scale.shape == (3,)
    louder, louder_scale = normalize_kernels(kernels * 250.0)
    np.testing.assert_allclose(louder, normalized, rtol=1e-12)
    np.testing.assert_allclose(louder_scale, 250 * scale)
    # the definition: median over pairs of each pair's RMS is 1 after normalisation
    np.testing.assert_allclose(np.median(np.sqrt(np.mean(normalized**2, -1)), -1), 1.0)
    # pairs keep their relative amplitude, and a dead pair does not change the scale much
    ratio = np.sqrt(np.mean(normalized[:, -1] ** 2, -1) / np.mean(normalized[:, 0] ** 2, -1))
    np.testing.assert_allclose(ratio, 2.0, rtol=0.1)
    broken = kernels.copy()
    broken[:, 3] = 0.0
    assert np.all(np.abs(normalize_kernels(broken)[1] / scale - 1) < 0.1)
    # (S, M, T) frames and all-zero frames
    frame, frame_scale = normalize_kernels(kernels[0].reshape(4, 4, 500), pair_axes=2)
    np.testing.assert_allclose(frame.reshape(16, 500), normalized[0])
    zeros, zero_scale = normalize_kernels(np.zeros((4, 10)))
    assert zero_scale == 0 and not zeros.any()


# -- (e) bad input ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good():
    rng = np.random.default_rng(9)
    from simulator.signals import ChirpPlan

    plan = ChirpPlan()
    return dict(recordings=rng.standard_normal((4, 9600)), empty_recordings=rng.standard_normal((4, 9600)),
                chirps=plan.chirps(), bands_hz=plan.speaker_bands_hz(), sample_rate_hz=FS)


@pytest.mark.parametrize("change, match", [
    (dict(kernel_samples=0), "kernel_samples"),
    (dict(kernel_samples=9601), "kernel_samples"),
    (dict(kernel_samples=12.5), "kernel_samples"),
    (dict(sample_rate_hz=48_000.0), "bands_hz.*Nyquist"),
    (dict(bands_hz=[[19e3, 22e3], [22e3, 25e3], [25e3, 28e3], [28e3, 50e3]]), "bands_hz.*Nyquist"),
    (dict(bands_hz=[[19e3, 23e3], [22e3, 25e3], [25e3, 28e3], [28e3, 31e3]]), "bands_hz.*overlaps"),
    (dict(bands_hz=[[19e3, 22e3], [22e3, 25e3]]), "bands_hz.*4 speakers"),
    (dict(recordings=np.zeros((4, 9000)), empty_recordings=np.zeros((4, 9000))), "chirps.*9000"),
    (dict(empty_recordings=np.zeros((3, 9600))), "empty_recordings.*shape"),
    (dict(recordings=np.zeros(9600)), "recordings.*shape"),
    (dict(regularization=-1.0), "regularization"),
    (dict(band_taper_hz=2000.0), "band_taper_hz"),
])
def test_bad_arguments_name_the_argument(good, change, match):
    with pytest.raises(DeconvolutionInputError, match=match):
        deconvolve(**(good | change))


def test_nan_input_is_refused_with_its_location(good):
    bad = good["recordings"].copy()
    bad[2, 77] = np.nan
    with pytest.raises(DeconvolutionInputError, match=r"recordings.*NaN.*\(2, 77\)"):
        deconvolve(**(good | dict(recordings=bad)))
    empty = good["empty_recordings"].copy()
    empty[0, 0] = np.inf
    with pytest.raises(DeconvolutionInputError, match="empty_recordings.*NaN/inf"):
        deconvolve(**(good | dict(empty_recordings=empty)))


def test_a_chirp_without_energy_in_its_band_is_refused(good):
    chirps = good["chirps"][[1, 0, 2, 3]]        # speaker rows swapped against bands_hz
    chirps[1] = 0.0
    with pytest.raises(DeconvolutionInputError, match="chirps.*row 1.*no energy"):
        deconvolve(**(good | dict(chirps=chirps)))


# -- narrowband interferers ----------------------------------------------------------------------------------
BANDS = ChirpPlan().speaker_bands_hz()


def tones(frequencies_hz, amplitudes, n_channels: int, n_samples: int, rng) -> np.ndarray:
    """(M, T) sum of amplitudes[j] cos(2 pi f_j t / fs + phi), phi uniform per tone and channel."""
    t = np.arange(n_samples) / FS
    out = np.zeros((n_channels, n_samples))
    for f, a in zip(frequencies_hz, amplitudes):
        out += a * np.cos(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (n_channels, 1)))
    return out


def test_remove_tones_subtracts_off_bin_tones_down_to_the_noise():
    """Two tones between bins (10 Hz bins) in white noise, 1.5e5 times its power in a bin: found to 0.01 Hz, and what
    is left differs from the noise alone by about what a 2-parameter fit per tone and channel takes from the noise
    (4 M sigma^2 = 12; 15 measured), not by the tones (1.6e6)."""
    rng = np.random.default_rng(3)
    M, T = 3, 9600
    noise = rng.standard_normal((M, T))
    truth = np.array([23_456.789, 30_123.4])
    interferers = tones(truth, [3.0, 10.0], M, T, rng)
    cleaned, found = remove_tones(noise + interferers, BANDS, FS)
    assert len(found) == 2
    assert np.allclose(np.sort(found), truth, atol=0.01), found
    left = np.sum((cleaned - noise) ** 2)
    assert left < 10 * 2 * len(truth) * M, left                 # a fit's share of the noise, with margin
    assert left < 1e-4 * np.sum(interferers**2)


def test_remove_tones_leaves_broadband_signals_alone():
    """White noise (one and four microphones, 20 draws) and a noiseless band-limited echo hold no line 15 dB over
    their band's median: nothing is found and the signals come back unchanged, bit for bit."""
    rng = np.random.default_rng(4)
    for trial in range(20):
        x = rng.standard_normal((1 if trial % 2 else 4, 9600))
        cleaned, found = remove_tones(x, BANDS, FS)
        assert len(found) == 0 and np.array_equal(cleaned, x)


def test_deconvolve_removes_an_interferer_from_the_kernels():
    """A steady tone heard in the recording and (with another phase) in the empty room does not cancel: divided by
    the chirp it is a sinusoid across the whole kernel, and it pulls the clock-offset estimate (0.01 sample here,
    which leaves the room's response un-cancelled): over 1000 times the echo's energy. With the tone removal (the
    default; the alignment leaves the tone's bins out) the kernels are those of the recording without it within
    1 % of the echo's energy (0.2 % measured)."""
    sim = simulator()
    recorded = sim._convolve(sim.room_impulse_responses + sim.body_response(sphere_body(CENTRE, 0.15)))
    empty = sim._empty_clean
    bands = sim.config.chirp_plan.speaker_bands_hz()
    truth = deconvolve(recorded, empty, sim.chirps, bands, FS)
    rng = np.random.default_rng(5)
    level = 0.3 * np.sqrt(np.mean(recorded**2))            # a tone 10 dB under the whole recording
    with_tone = recorded + tones([24_681.3], [level], len(recorded), recorded.shape[1], rng)
    empty_with_tone = empty + tones([24_681.3], [level], len(empty), empty.shape[1], rng)
    kept = deconvolve(with_tone, empty_with_tone, sim.chirps, bands, FS, remove_tones=False)
    removed = deconvolve(with_tone, empty_with_tone, sim.chirps, bands, FS)
    echo = np.sum(truth**2)
    assert np.sum((kept - truth) ** 2) > 100 * echo
    assert np.sum((removed - truth) ** 2) < 0.01 * echo


@pytest.mark.parametrize("kwargs, field", [
    (dict(threshold_db=0.0), "threshold_db"), (dict(threshold_db=float("nan")), "threshold_db"),
    (dict(max_tones=-1), "max_tones"), (dict(max_tones=2.5), "max_tones"),
])
def test_remove_tones_refuses_bad_settings(kwargs, field):
    with pytest.raises(DeconvolutionInputError, match=field):
        remove_tones(np.zeros((2, 960)), BANDS, FS, **kwargs)
    with pytest.raises(DeconvolutionInputError, match="signals"):
        remove_tones(np.full((2, 960), np.nan), BANDS, FS)


def test_deconvolve_removes_an_interferer_heard_in_a_drifted_empty_room():
    """An empty room recorded in air 1 K warmer is stretched to the frame's speed of sound before the subtraction
    (``deconvolve_recording``); a tone it heard is stretched too and is no longer one sinusoid but a comb of lines a
    few bins wide. The removal takes them one by one: a tone that left 1.5 times the echo's energy in the kernels
    leaves 3 % (measured; the comb's lines under the threshold stay), asserted under 5 %. The warm empty room is
    the frame's stretched the other way (the round trip leaves 8e-4 of the echo's energy)."""
    from simulator.room_drift import stretch_to_speed

    sim = simulator()
    recorded = sim._convolve(sim.room_impulse_responses + sim.body_response(sphere_body(CENTRE, 0.15)))
    bands = sim.config.chirp_plan.speaker_bands_hz()
    c = sim.speed_of_sound_m_s
    warmer = c * np.sqrt((293.15 + 1.0) / 293.15)
    empty_warm = stretch_to_speed(sim._empty_clean, c, warmer, FS, sim.chirps, bands)

    def stretched(x):
        return stretch_to_speed(x, warmer, c, FS, sim.chirps, bands)

    truth = deconvolve(recorded, stretched(empty_warm), sim.chirps, bands, FS)
    rng = np.random.default_rng(6)
    level = 0.01 * np.sqrt(np.mean(recorded**2))
    with_tone = recorded + tones([27_013.7], [level], len(recorded), recorded.shape[1], rng)
    empty_with_tone = stretched(empty_warm + tones([27_013.7], [level], len(empty_warm), empty_warm.shape[1], rng))
    kept = deconvolve(with_tone, empty_with_tone, sim.chirps, bands, FS, remove_tones=False)
    removed = deconvolve(with_tone, empty_with_tone, sim.chirps, bands, FS)
    echo = np.sum(truth**2)
    assert np.sum((kept - truth) ** 2) > echo
    assert np.sum((removed - truth) ** 2) < 0.05 * echo


def test_clock_offset_refuses_an_unreadable_interferer_frequency():
    with pytest.raises(DeconvolutionInputError, match="exclude_hz"):
        estimate_clock_offset(np.ones((2, 960)), np.ones((2, 960)), BANDS, FS, exclude_hz=[float("nan")])
