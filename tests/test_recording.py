"""simulator.recording and simulator.scene: recordings of FDM chirps in a room with a person,
checked against geometry and closed-form answers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.signal
import trimesh

from bodies import Subject
from bodies.model import PosedBody
from rooms import RoomGeometryError, air_absorption_db_per_m, separated_rig
from simulator.recording import RoomSimulator, SimulationConfig, SimulationInputError, fold_into_period
from simulator.scene import band_limited, envelope, subtract_empty_room
from simulator.signals import ChirpPlan
from tests.helpers import CO_LOCATED, SEPARATED, make_scene, sphere_body

FS = 96_000.0


def box_body(centre, size) -> PosedBody:
    mesh = trimesh.creation.box(extents=size)
    mesh = mesh.subdivide().subdivide()
    vertices = np.asarray(mesh.vertices) + centre
    return PosedBody(vertices=vertices, faces=np.asarray(mesh.faces), joints=np.tile(centre, (15, 1)),
                     stature_m=1.7, subject=Subject(30, "male", 1.7), activity="standing")


def quiet(**overrides) -> SimulationConfig:
    return SimulationConfig(**({"snr_db": None} | overrides))


@pytest.fixture(scope="module")
def free_field_simulator():
    """Direct paths only (image-source order 0): a free-field check of the whole recording chain."""
    return RoomSimulator(make_scene(SEPARATED), quiet(max_order=0, body_room_multipath=False, shadowing=False))


def _band(x, band, fs=FS):
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / fs)
    spectrum[(f < band[0]) | (f > band[1])] = 0
    return np.fft.irfft(spectrum, len(x))


def test_empty_room_recording_is_each_chirp_delayed_and_attenuated_by_its_direct_path(free_field_simulator):
    sim = free_field_simulator
    rec = sim.record(sphere_body([3.0, 3.5, 1.3]), np.random.default_rng(0))
    plan = sim.config.chirp_plan
    c = sim.speed_of_sound_m_s
    for s in range(4):
        band = plan.speaker_band_hz(s)
        for m in range(4):
            d = np.linalg.norm(sim.speakers[s] - sim.microphones[m])
            heard = _band(rec.empty_recordings[m], band)
            # circular cross-correlation with the emitted chirp: peak at the delay d / c
            xc = np.fft.irfft(np.fft.rfft(heard) * np.conj(np.fft.rfft(rec.chirps[s])), len(heard))
            auto = np.fft.irfft(np.abs(np.fft.rfft(_band(rec.chirps[s], band))) ** 2, len(heard))
            # the carrier makes xc ripple every ~4.6 samples: locate and measure on its envelope
            xc_env, auto_env = envelope(xc), envelope(np.roll(auto, len(auto) // 2))
            lag = int(np.argmax(xc_env))
            assert abs(lag - d / c * FS) <= 1.0, (s, m)
            centre_hz = np.mean(band)
            expected = 10 ** (-air_absorption_db_per_m(centre_hz, 20.0, 50.0) * d / 20) / (4 * np.pi * d)
            assert xc_env[lag] / auto_env.max() == pytest.approx(expected, rel=0.05), (s, m)


def test_the_empty_room_subtracted_recording_is_the_pose_kernel(free_field_simulator):
    sim = free_field_simulator
    rec = sim.record(sphere_body([3.0, 3.5, 1.3]), np.random.default_rng(0))
    bands = sim.config.chirp_plan.speaker_bands_hz()
    estimate = subtract_empty_room(rec, bands)
    truth = band_limited(rec.pose_kernels, bands, FS)
    inner = [(lo + 300, hi - 300) for lo, hi in bands]  # away from the chirps' tapered band edges
    for s in range(4):
        for m in range(4):
            a, b = _band(estimate[s, m], inner[s]), _band(truth[s, m], inner[s])
            # what remains is the neighbouring speakers' chirp tails leaking into this band (FDM crosstalk)
            assert np.linalg.norm(a - b) < 1e-2 * np.linalg.norm(b)


def test_body_echo_matches_the_exact_rigid_sphere_with_air_absorption(free_field_simulator):
    """A rigid sphere recorded through the whole chain against the exact series solution
    (spherical Hankel functions), attenuated by ISO 9613-1 air over its path: arrival within
    1 sample, band energy within 1.5 dB, for every pair that sees a reflection (bistatic angle
    up to 120 degrees). Pairs looking past the sphere from opposite sides are in its forward
    diffraction lobe, which physical optics leaves out: there the body's effect is its shadow."""
    from simulator.recording import apply_air_absorption
    from simulator.sphere_exact import scattered_impulse_response

    sim = free_field_simulator
    sim.config = quiet(max_order=0, body_room_multipath=False, shadowing=False, reflection_coefficient=1.0)
    centre, radius = np.array([3.2, 3.3, 1.35]), 0.15
    kernels = sim.body_response(sphere_body(centre, radius, subdivisions=4))[..., :2400]  # paths < 8.5 m
    bands = sim.config.chirp_plan.speaker_bands_hz()
    c = sim.speed_of_sound_m_s
    tested = 0
    for s in range(4):
        for m in range(4):
            u, v = sim.speakers[s] - centre, sim.microphones[m] - centre
            if np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))) > 120:
                continue
            tested += 1
            exact = scattered_impulse_response(radius, sim.speakers[s], sim.microphones[m], 2400, FS,
                                               centre_m=centre, speed_of_sound_m_s=c)
            exact = apply_air_absorption(exact, FS, c, 20.0, 50.0)
            ours_b = _band(kernels[s, m], bands[s])
            exact_b = _band(exact, bands[s])
            assert abs(np.argmax(envelope(ours_b)) - np.argmax(envelope(exact_b))) <= 1, (s, m)
            ratio_db = 10 * np.log10(np.sum(ours_b**2) / np.sum(exact_b**2))
            assert abs(ratio_db) < 1.5, (s, m, ratio_db)
    assert tested >= 8


def test_air_absorption_weakens_far_echoes_as_iso_9613_says(free_field_simulator):
    from simulator.recording import apply_air_absorption

    sim = free_field_simulator
    sim.config = quiet(max_order=0, body_room_multipath=False, shadowing=False)
    body = sphere_body([3.0, 3.5, 1.3])
    kernels = sim.body_response(body)
    echo = sim.body_response  # noqa: F841 (the same call without air, below)
    from simulator.body_echo import FacetMesh, body_impulse_responses

    raw = body_impulse_responses(FacetMesh(body.vertices, body.faces), sim.speakers, sim.microphones, 9600,
                                 speed_of_sound_m_s=sim.speed_of_sound_m_s).impulse_responses.reshape(4, 4, -1)
    f = np.fft.rfftfreq(9600, 1 / FS)
    for s, m in [(0, 0), (2, 1)]:
        path = np.argmax(envelope(raw[s, m])) / FS * sim.speed_of_sound_m_s
        k = np.argmin(np.abs(f - np.mean(sim.config.chirp_plan.speaker_band_hz(s))))
        measured_db = 20 * np.log10(np.abs(np.fft.rfft(kernels[s, m])[k] / np.fft.rfft(raw[s, m])[k]))
        assert measured_db == pytest.approx(-air_absorption_db_per_m(f[k], 20.0, 50.0) * path, abs=0.25)
    assert apply_air_absorption(np.zeros((2, 100)), FS, 343.0, 20, 50).shape == (2, 100)


def test_colocated_microphones_sit_beside_their_speakers():
    sim = RoomSimulator(make_scene(CO_LOCATED), quiet(max_order=1))
    offsets = sim.microphones - sim.speakers
    np.testing.assert_allclose(offsets, [[0, 0, 0.02]] * 4)
    assert np.isfinite(sim.room_impulse_responses).all()


def test_body_room_multipath_adds_the_floor_echo():
    centre, radius = np.array([3.0, 3.5, 0.6]), 0.2
    scene = make_scene(CO_LOCATED)
    with_mp = RoomSimulator(scene, quiet(max_order=0, body_room_multipath=True, shadowing=False))
    without = RoomSimulator(scene, quiet(max_order=0, body_room_multipath=False, shadowing=False))
    body = sphere_body(centre, radius)
    extra = with_mp.body_response(body) - without.body_response(body)
    bands = with_mp.config.chirp_plan.speaker_bands_hz()
    extra = band_limited(extra, bands, FS)
    points = trimesh.creation.icosphere(subdivisions=6, radius=radius).vertices + centre
    c = with_mp.speed_of_sound_m_s
    s = m = 0
    spk, mic = with_mp.speakers[s], with_mp.microphones[m]
    spk_floor = spk * [1, 1, -1]
    # speaker -> floor -> sphere -> microphone (and its reciprocal) arrive together
    floor_path = np.min(np.linalg.norm(points - spk_floor, axis=1) + np.linalg.norm(points - mic, axis=1))
    env = envelope(extra[s, m])
    window = slice(int(floor_path / c * FS) - 3, int(floor_path / c * FS) + 4)
    assert env[window].max() > 0.5 * env.max()
    # No multipath arrives before the direct echo (only the band filter's ringing is there).
    direct = np.min(np.linalg.norm(points - spk, axis=1) + np.linalg.norm(points - mic, axis=1))
    early = int(direct / c * FS) - 30
    assert np.sum(extra[s, m, :early] ** 2) < 0.02 * np.sum(extra[s, m] ** 2)


def test_a_body_between_speaker_and_microphone_removes_the_direct_path():
    rig = separated_rig([[0.5, 3.5, 1.2]], [[5.5, 3.5, 1.2]])
    scene = make_scene(rig)
    plan = ChirpPlan(n_speakers=1)
    sim = RoomSimulator(scene, quiet(chirp_plan=plan, max_order=1, body_room_multipath=False))
    blocker = box_body([3.0, 3.5, 1.0], (0.4, 0.6, 1.8))
    kernel = sim.body_response(blocker)
    c = sim.speed_of_sound_m_s
    direct = int(round(5.0 / c * FS))
    window = slice(direct - 20, direct + 20)
    band = plan.speaker_band_hz(0)
    before = _band(sim.room_impulse_responses[0, 0], band)[window]
    after = _band(sim.room_impulse_responses[0, 0] + kernel[0, 0], band)[window]
    assert np.sum(after**2) < 0.01 * np.sum(before**2)
    # Without shadowing the direct path survives.
    sim.config = quiet(chirp_plan=plan, max_order=1, body_room_multipath=False, shadowing=False)
    kept = _band(sim.room_impulse_responses[0, 0] + sim.body_response(blocker)[0, 0], band)[window]
    assert np.sum(kept**2) > 0.9 * np.sum(before**2)


def test_sensor_noise_has_the_requested_snr():
    sim = RoomSimulator(make_scene(CO_LOCATED), SimulationConfig(max_order=2, snr_db=20.0,
                                                                 body_room_multipath=False, shadowing=False))
    rec = sim.record(sphere_body([3.0, 3.5, 1.3]), np.random.default_rng(1))
    noise = rec.empty_recordings - sim._empty_clean
    # the reference: the four chirps summed, as heard 1 m away in free field, 1 / (4 pi) of emitted
    at_1m = rec.chirps.sum(0) / (4 * np.pi)
    snr = 10 * np.log10(np.mean(at_1m**2) / np.mean(noise**2, axis=1))
    np.testing.assert_allclose(snr, 20.0, atol=0.3)


def test_clock_offset_delays_the_recording():
    sim = RoomSimulator(make_scene(CO_LOCATED), quiet(max_order=1, clock_offset_max_samples=3.0,
                                                      body_room_multipath=False, shadowing=False))
    rec = sim.record(sphere_body([3.0, 3.5, 1.3]), np.random.default_rng(2))
    offset = rec.clock_offsets_samples[1]
    assert 0 < abs(offset) <= 3.0
    clean = sim._empty_clean[0]
    f = np.fft.rfftfreq(len(clean))
    # the recorded spectrum is the clean one times exp(-2 pi j f offset)
    ratio = np.fft.rfft(rec.empty_recordings[0]) / np.fft.rfft(clean)
    band = (f * FS > 20e3) & (f * FS < 31e3)
    phase_slope = np.polyfit(f[band], np.unwrap(np.angle(ratio[band])), 1)[0]
    assert -phase_slope / (2 * np.pi) == pytest.approx(offset, abs=0.01)


def test_transducer_responses_shape_the_kernel():
    scene = make_scene(CO_LOCATED)
    body = sphere_body([3.0, 3.5, 1.3])
    plain = RoomSimulator(scene, quiet(max_order=1, body_room_multipath=False, shadowing=False))
    shaped = RoomSimulator(scene, quiet(max_order=1, body_room_multipath=False, shadowing=False,
                                        transducer_responses=True))
    a = subtract_empty_room(plain.record(body, np.random.default_rng(0)), plain.config.chirp_plan.speaker_bands_hz())
    b = subtract_empty_room(shaped.record(body, np.random.default_rng(0)), plain.config.chirp_plan.speaker_bands_hz())
    f = np.fft.rfftfreq(a.shape[-1], 1 / FS)
    gain = shaped._transducer_gain
    band = (f > 19.5e3) & (f < 22e3)
    ratio = np.fft.rfft(b[0, 0])[band] / np.fft.rfft(a[0, 0])[band]
    np.testing.assert_allclose(ratio, gain[band], rtol=1e-6)
    assert not np.allclose(np.abs(gain[band]), 1.0, atol=0.02)


def test_fold_into_period_sums_the_tail_back():
    x = np.arange(10.0)
    np.testing.assert_array_equal(fold_into_period(x, 4), [0 + 4 + 8, 1 + 5 + 9, 2 + 6, 3 + 7])


# -- bad input ----------------------------------------------------------------------------------


def test_transducers_outside_the_room_fail_before_any_work():
    rig = separated_rig([[7.5, 3.5, 1.2]], [[5.5, 3.5, 1.2]])
    with pytest.raises(RoomGeometryError, match="speaker_positions_m"):
        RoomSimulator(make_scene(rig), quiet(chirp_plan=ChirpPlan(n_speakers=1)))


def test_rig_and_chirp_plan_must_agree():
    with pytest.raises(SimulationInputError, match="n_speakers"):
        RoomSimulator(make_scene(CO_LOCATED), quiet(chirp_plan=ChirpPlan(n_speakers=2)))


def test_a_body_through_a_wall_is_refused(free_field_simulator):
    with pytest.raises(RoomGeometryError, match="body.vertices"):
        free_field_simulator.record(sphere_body([5.95, 3.5, 1.3]), np.random.default_rng(0))


def test_nan_in_a_mesh_is_refused(free_field_simulator):
    body = sphere_body([3.0, 3.5, 1.3])
    body.vertices[5] = np.nan
    with pytest.raises((RoomGeometryError, ValueError), match="NaN|finite"):
        free_field_simulator.record(body, np.random.default_rng(0))


def test_a_speaker_inside_the_body_is_refused_before_any_ray_is_cast(free_field_simulator):
    # speaker 1 of SEPARATED sits at (5.7, 3.0, 1.4); a body around it would hear no echo from it
    inside = r"speaker_positions_m\[1\] = .* lies inside the body mesh: move it outside"
    with pytest.raises(SimulationInputError, match=inside):
        free_field_simulator.record(sphere_body([5.7, 3.0, 1.4]), np.random.default_rng(0))


def test_an_inside_out_body_is_refused(free_field_simulator):
    body = sphere_body([3.0, 3.5, 1.3])
    body.faces = body.faces[:, ::-1].copy()
    with pytest.raises(SimulationInputError, match="inside out"):
        free_field_simulator.record(body, np.random.default_rng(0))


NAN, INF = float("nan"), float("inf")


# Every field is checked where the configuration is built: a generator builds one up front to
# refuse its arguments before any work, so nothing here may first fail inside a worker.
@pytest.mark.parametrize("field, value", [
    ("max_order", -1), ("max_order", NAN), ("max_order", 2.5), ("max_order", 10_000), ("max_order", True),
    ("snr_db", NAN), ("snr_db", INF), ("snr_db", "40"),
    ("reflection_coefficient", 1.5), ("reflection_coefficient", NAN),
    ("shadow_attenuation", 2.0), ("shadow_attenuation", NAN),
    ("speaker_band_hz", (10e3, 60e3)), ("speaker_band_hz", (NAN, 30e3)), ("speaker_band_hz", (1e3, 2e3, 3e3)),
    ("room_response_s", 0.0), ("room_response_s", NAN), ("room_response_s", 1e4),
    ("clock_offset_max_samples", NAN), ("clock_offset_max_samples", -1.0), ("clock_offset_max_samples", INF),
    ("multipath_patch_m", NAN), ("multipath_patch_m", 0.0),
    ("microphone_corner_hz", NAN), ("microphone_corner_hz", 60e3),
    ("colocated_microphone_offset_m", NAN), ("colocated_microphone_offset_m", 0.0),
    ("body_room_multipath", "no"), ("shadowing", 1), ("transducer_responses", None),
    ("chirp_plan", "default"),
])
def test_bad_configuration_names_the_field(field, value):
    with pytest.raises(SimulationInputError, match=field):
        SimulationConfig(**{field: value})


def test_a_sample_rate_the_room_simulation_cannot_use_is_refused_with_the_configuration():
    with pytest.raises(SimulationInputError, match="chirp_plan.sample_rate_hz"):
        SimulationConfig(chirp_plan=ChirpPlan(sample_rate_hz=96_000.5))


def test_a_good_configuration_keeps_its_values():
    config = SimulationConfig(max_order=3.0, snr_db=20, speaker_band_hz=[15e3, 36e3])
    assert (config.max_order, config.snr_db, config.speaker_band_hz) == (3, 20.0, (15e3, 36e3))
    assert isinstance(config.max_order, int)


def test_bands_beyond_nyquist_are_refused():
    with pytest.raises(ValueError, match="Nyquist|band_hz"):
        ChirpPlan(band_hz=(19e3, 52e3))
    with pytest.raises(ValueError, match="duration_s"):
        ChirpPlan(duration_s=0.0)


@pytest.mark.parametrize("field, value", [
    ("band_hz", (NAN, 32e3)), ("band_hz", (19e3, INF)), ("band_hz", ("low", "high")), ("band_hz", (19e3,)),
    ("n_speakers", NAN), ("n_speakers", "4"), ("duration_s", NAN), ("duration_s", 1e6),
    ("sample_rate_hz", NAN), ("sample_rate_hz", INF), ("taper_s", NAN), ("taper_s", -0.001), ("guard_hz", NAN),
])
def test_bad_chirp_plans_are_refused_naming_the_field(field, value):
    with pytest.raises(SimulationInputError, match=field):
        ChirpPlan(**{field: value})


# -- scenes -------------------------------------------------------------------------------------


def test_compose_scene_places_people_clear_of_walls_and_furniture(anny_sampler):
    from rooms import RoomSampler
    from simulator.scene import compose_scene

    rng = np.random.default_rng(0)
    room_scene = RoomSampler().sample(rng)
    for activity in ("standing", "sitting", "jumping"):
        scene = compose_scene(rng, room_scene, anny_sampler, activity=activity)
        scene.room_scene.validate_body(scene.body.vertices)
        assert scene.room_scene.camera.in_view(scene.body.joints).all()
        if activity == "sitting":
            seat = scene.room_scene.seat
            assert seat.seat_point_m[2] == pytest.approx(scene.body.seat_height_m)
            np.testing.assert_allclose(seat.seat_point_m[:2], scene.body.seat_center_xy_m, atol=1e-9)
    a = compose_scene(np.random.default_rng(5), room_scene, anny_sampler)
    b = compose_scene(np.random.default_rng(5), room_scene, anny_sampler)
    np.testing.assert_array_equal(a.body.vertices, b.body.vertices)


def test_scene_command_draws_and_summarises(tmp_path):
    from simulator import scene

    png, js = tmp_path / "scene.png", tmp_path / "scene.json"
    assert scene.main(["--seed", "0", "--activity", "standing", "--max-order", "3", "--png", str(png),
                       "--json", str(js)]) == 0
    assert png.stat().st_size > 50_000
    summary = json.loads(js.read_text())
    assert summary["body"]["activity"] == "standing"
    assert len(summary["speaker_positions_m"]) == 4
    assert summary["written_by"] == "simulator.scene"
    assert scene.main(["--activity", "flying", "--png", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
    # a second run replaces the files it wrote itself (and only those: test_bad_input_simulator)
    assert scene.main(["--seed", "0", "--activity", "standing", "--max-order", "3", "--png", str(png),
                       "--json", str(js)]) == 0
    assert json.loads(js.read_text())["timings_s"] != summary["timings_s"]  # rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.json", "scene.png"]  # no temporaries


def test_realistic_noise_replaces_the_white_noise_at_its_in_band_snr():
    """With a NoiseModel the recorder adds noise whose in-band power is reference_power / 10^(snr/10) for the
    SNR drawn for the room (in-band power, closed form; the empty room's, the mean of empty_room_periods periods,
    has 1 / P of it), not the white noise of snr_db; drawing needs an rng."""
    from simulator.noise import NoiseModel

    model = NoiseModel(snr_db_range=(20.0, 30.0), tone_count_range=(0, 0), impulse_rate_per_s_range=(0.0, 0.0))
    config = SimulationConfig(max_order=0, body_room_multipath=False, shadowing=False, snr_db=0.0, noise=model)
    with pytest.raises(SimulationInputError, match="rng"):
        RoomSimulator(make_scene(SEPARATED), config)
    sim = RoomSimulator(make_scene(SEPARATED), config, rng=np.random.default_rng(3))
    snr_db = sim.noise_draw.snr_db
    assert 20.0 <= snr_db <= 30.0 and sim.realism()["noise"]["snr_db"] == snr_db
    band = sim.config.chirp_plan.band_hz
    powers = []
    for seed in range(8):
        rec = sim.record(sphere_body([3.0, 3.5, 1.3]), np.random.default_rng(seed))
        noise = rec.empty_recordings - sim._empty_clean
        powers.append(np.mean([np.mean(_band(channel, band) ** 2) for channel in noise]))
    expected = sim.reference_power / 10 ** (snr_db / 10) / model.empty_room_periods   # the empty room: a mean
    assert np.mean(powers) == pytest.approx(expected, rel=0.05)      # not snr_db=0's white noise (~1000x louder)
    with pytest.raises(SimulationInputError, match="noise"):
        SimulationConfig(noise="loud")


def test_drawn_devices_filter_the_kernels_by_speaker_times_microphone_response():
    """With per-device responses the deconvolved kernel of pair (s, m) is the ideal rig's kernel filtered by
    g_s * g_m (in amplitude and delay, latency included), each from the closed-form device response."""
    from simulator.deconvolution import deconvolve
    from simulator.transducers import TransducerModel, frequency_response

    base = dict(max_order=1, body_room_multipath=False, shadowing=False, snr_db=None)
    scene = make_scene(SEPARATED)
    body = sphere_body([3.0, 3.5, 1.3])
    ideal = RoomSimulator(scene, SimulationConfig(**base))
    real = RoomSimulator(scene, SimulationConfig(**base, devices=TransducerModel()), rng=np.random.default_rng(1))
    draw = real.device_draw
    assert draw.n_devices == 8 and len(real.realism()["devices"]["latency_s"]) == 8
    bands = ideal.config.chirp_plan.speaker_bands_hz()
    n = ideal.period
    kernels = {}
    for name, sim in (("ideal", ideal), ("real", real)):
        rec = sim.record(body, np.random.default_rng(0))
        kernels[name] = deconvolve(rec.recordings, rec.empty_recordings, rec.chirps, bands, FS, kernel_samples=n,
                                   align=False)
    freqs = np.fft.rfftfreq(n, 1 / FS)
    response = frequency_response(draw, freqs)
    for s in range(4):
        for m in range(4):
            inside = (freqs > bands[s][0] + 500) & (freqs < bands[s][1] - 500)
            expected = np.fft.rfft(kernels["ideal"][s, m]) * response[s] * response[4 + m]
            got = np.fft.rfft(kernels["real"][s, m])
            error = np.linalg.norm((got - expected)[inside]) / np.linalg.norm(expected[inside])
            assert error < 1e-3, (s, m, error)          # float rounding of the deconvolution: ~6e-5
    with pytest.raises(SimulationInputError, match="devices"):
        SimulationConfig(devices=3)


def test_image_to_image_paths_match_the_exact_sphere_between_the_images():
    """Transducers 5 cm off a wall: the added speaker-image -> sphere -> microphone-image path (both mirrored in
    that wall) is R^2 times the rigid sphere's echo between the two images. Against the exact series
    (spherical Hankel functions, simulator.sphere_exact, with the same air absorption), the model's image path
    and its direct echo must show the same physical-optics error (about -0.9 dB in this window) to 0.1 dB:
    a wrong image position, a missing or single R (R = 0.95 here: 0.4 dB) fails it. Arrival within a sample;
    here 0.57 of the direct echo's energy; absent unless asked for."""
    from simulator.recording import apply_air_absorption
    from simulator.sphere_exact import scattered_impulse_response

    plan = ChirpPlan(n_speakers=1)
    speaker, microphone = np.array([0.05, 3.3, 1.3]), np.array([0.05, 3.7, 1.3])
    scene = make_scene(separated_rig([speaker], [microphone]))
    centre, radius = np.array([1.25, 3.5, 1.3]), 0.2
    config = dict(chirp_plan=plan, max_order=0, body_room_multipath=True, shadowing=False)
    body = sphere_body(centre, radius, subdivisions=5)
    only_direct = RoomSimulator(scene, quiet(**{**config, "body_room_multipath": False})).body_response(body)
    without = RoomSimulator(scene, quiet(**config)).body_response(body)
    sim = RoomSimulator(scene, quiet(**config, image_image_paths=True))
    added = sim.body_response(body) - without
    band = plan.speaker_band_hz(0)
    images = sim.acoustics.first_order_images()
    west = int(np.argmin(images.speaker_images_m[0, :, 0]))           # the wall at x = 0
    reflection = images.wall_reflection[west]
    c, n = sim.speed_of_sound_m_s, sim.period

    def error_db(model, source, receiver, gain):
        exact = scattered_impulse_response(radius, source, receiver, n, FS, band_hz=band, centre_m=centre,
                                           speed_of_sound_m_s=c)
        exact = _band(apply_air_absorption(exact[None] * gain, FS, c, scene.temperature_c,
                                           scene.relative_humidity_pct)[0], band)
        model = _band(model, band)
        arrival = (np.linalg.norm(centre - source) + np.linalg.norm(centre - receiver) - 2 * radius) / c * FS
        window = slice(int(arrival) - 40, int(arrival) + 60)
        assert abs(int(np.argmax(envelope(model)[window])) - int(np.argmax(envelope(exact)[window]))) <= 1
        return 10 * np.log10(np.sum(model[window] ** 2) / np.sum(exact[window] ** 2)), np.sum(model[window] ** 2)

    mirror = np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(images.speaker_images_m[0, west], speaker * mirror, atol=1e-9)
    image_db, image_energy = error_db(added[0, 0], speaker * mirror, microphone * mirror, reflection ** 2)
    direct_db, direct_energy = error_db(only_direct[0, 0], speaker, microphone, 1.0)
    assert abs(image_db - direct_db) < 0.1, (image_db, direct_db)
    assert abs(direct_db) < 1.5
    assert image_energy > 0.1 * direct_energy
    assert not SimulationConfig().image_image_paths


@pytest.mark.parametrize("rig", [SEPARATED, CO_LOCATED])
def test_drifted_empty_room_and_the_drift_aware_deconvolution(rig):
    """With a DriftModel the empty room is recorded at c(T + dT): its direct paths arrive at L / c1 (closed form),
    the residual of the plain subtraction dwarfs the body's kernel, and stretching the empty room to the frame's
    speed of sound (simulator.room_drift.stretch_to_speed, what generation does) brings the kernel back."""
    from rooms.air import speed_of_sound_m_s
    from simulator.deconvolution import deconvolve
    from simulator.room_drift import DriftModel, stretch_to_speed

    base = dict(max_order=0, body_room_multipath=False, shadowing=False, snr_db=None)
    scene = make_scene(rig)
    body = sphere_body([3.0, 3.5, 1.3])
    still = RoomSimulator(scene, SimulationConfig(**base))
    drifted = RoomSimulator(scene, SimulationConfig(**base, drift=DriftModel((0.5, 0.5))), rng=np.random.default_rng(0))
    assert still.realism() == {} and still.empty_speed_of_sound_m_s == still.speed_of_sound_m_s
    c1 = speed_of_sound_m_s(scene.temperature_c + 0.5)
    assert drifted.temperature_drift_k == 0.5 and drifted.realism()["drift"]["empty_speed_of_sound_m_s"] == c1
    rec = drifted.record(body, np.random.default_rng(0))
    assert rec.empty_speed_of_sound_m_s == c1 and rec.speed_of_sound_m_s == still.speed_of_sound_m_s
    reference = still.record(body, np.random.default_rng(0))
    np.testing.assert_array_equal(rec.recordings, reference.recordings)      # the frame itself is unchanged
    bands = still.config.chirp_plan.speaker_bands_hz()
    # the direct path 0 -> 1 of the empty recording moves from L / c0 to L / c1 (its deconvolved kernel's peak, 64x
    # upsampled; free field, so that no other path's tail moves the band-limited peak)
    L = np.linalg.norm(drifted.speakers[0] - drifted.microphones[1])

    def direct_peak(recording):
        kernel = deconvolve(recording.empty_recordings, np.zeros_like(recording.empty_recordings), recording.chirps,
                            bands, FS, kernel_samples=still.period, align=False)[0, 1]
        fine = np.abs(scipy.signal.hilbert(scipy.signal.resample(kernel, 64 * still.period)))
        near = np.arange(int(64 * (L / c1 * FS - 4)), int(64 * (L / c1 * FS + 4)))
        return near[np.argmax(fine[near])] / 64

    if rig is SEPARATED:   # (a co-located microphone also hears its own speaker's 2 cm path leak into band 0)
        assert direct_peak(rec) == pytest.approx(L / c1 * FS, abs=0.05)
        assert direct_peak(reference) == pytest.approx(L / rec.speed_of_sound_m_s * FS, abs=0.05)

    def kernels(empty):
        return deconvolve(rec.recordings, empty, rec.chirps, bands, FS, kernel_samples=2400, align=False)

    truth = kernels(reference.empty_recordings)
    plain = np.linalg.norm(kernels(rec.empty_recordings) - truth) / np.linalg.norm(truth)
    aligned = stretch_to_speed(rec.empty_recordings, c1, rec.speed_of_sound_m_s, FS, rec.chirps, bands)
    aware = np.linalg.norm(kernels(aligned) - truth) / np.linalg.norm(truth)
    # separated rigs come back to ~2 % of the kernel; a co-located rig's facing pairs keep more (the 2 cm path
    # leaks into every band and the strongest-arrival step takes the leak for the direct path): still 30x less
    assert plain > 10.0 and aware < (0.05 if rig is SEPARATED else plain / 20), (plain, aware)
    # what generation deconvolves: this drift-aware step, not the plain subtraction
    from simulator.deconvolution import deconvolve_recording
    generated = deconvolve_recording(rec, bands, kernel_samples=2400)
    np.testing.assert_array_equal(generated, deconvolve(rec.recordings, aligned, rec.chirps, bands, FS,
                                                        kernel_samples=2400))
    assert np.array_equal(deconvolve_recording(reference, bands, kernel_samples=2400),
                          deconvolve(reference.recordings, reference.empty_recordings, reference.chirps, bands, FS,
                                     kernel_samples=2400))
    with pytest.raises(SimulationInputError, match="drift"):
        SimulationConfig(drift=0.5)


def test_the_recorder_hears_the_furniture_with_clutter():
    """With ``clutter`` the room's response is the image-source room plus the furniture's reflections and shadows
    (:func:`simulator.clutter.compute_clutter`, checked against closed forms in tests/test_clutter.py); a room
    without furniture is the same with or without it, bit for bit; the body's shadow also removes the furniture
    paths it blocks."""
    from simulator.clutter import body_shadow_correction, compute_clutter
    from simulator.recording import fold_into_period

    from dataclasses import replace

    from rooms import make_table

    base = dict(max_order=1, body_room_multipath=True, shadowing=True, snr_db=None)
    scene = make_scene(SEPARATED)
    scene = replace(scene, room=scene.room.with_furniture(list(scene.room.furniture) + [
        make_table((3.0, 3.5), 0.0, (2.0, 1.5), 0.75)]))                # a table top the rig's pairs reflect off
    plain, heard = RoomSimulator(scene, SimulationConfig(**base)), RoomSimulator(scene, SimulationConfig(**base, clutter=True))
    clutter = compute_clutter(scene.room, plain.acoustics)
    assert clutter.paths.n_paths > 0                                    # the seat reflects something to this rig
    np.testing.assert_allclose(heard.room_impulse_responses, fold_into_period(
        plain.acoustics.impulse_responses + clutter.impulse_responses, plain.period), atol=1e-12)
    assert np.abs(heard.room_impulse_responses - plain.room_impulse_responses).max() > 1e-4
    bare = replace(scene, room=scene.room.with_furniture([]))
    np.testing.assert_array_equal(RoomSimulator(bare, SimulationConfig(**base, clutter=True)).room_impulse_responses,
                                  RoomSimulator(bare, SimulationConfig(**base)).room_impulse_responses)
    body = sphere_body([3.0, 3.5, 1.3])
    from simulator.body_echo import FacetMesh
    mesh = FacetMesh(body.vertices.astype(float), body.faces)
    expected = body_shadow_correction(heard.acoustics, heard.clutter, mesh, period=heard.period)
    no_shadow = RoomSimulator(scene, SimulationConfig(**(base | {"shadowing": False}), clutter=True))
    np.testing.assert_allclose(heard.body_response(body) - no_shadow.body_response(body), expected, atol=1e-12)


def test_clothing_sets_the_bodys_reflection_per_subject():
    """With ``clothing`` every subject gets one outfit per room (kept in ``realism()``); a sphere posing as a body
    is all head (every joint at its centre), i.e. bare skin: its kernel is the default body's times R_skin / 0.9."""
    from simulator.clothing import ClothingModel

    base = dict(max_order=0, body_room_multipath=False, shadowing=False, snr_db=None)
    scene = make_scene(SEPARATED)
    body = sphere_body([3.0, 3.5, 1.3])
    plain = RoomSimulator(scene, SimulationConfig(**base))
    dressed = RoomSimulator(scene, SimulationConfig(**base, clothing=ClothingModel()), rng=np.random.default_rng(2))
    kernel = dressed.body_response(body)
    outfit = dressed.clothing_for(body.subject)
    skin = outfit.region_reflection[0]
    assert 0.97 <= skin <= 1.0
    np.testing.assert_allclose(kernel, plain.body_response(body) * skin / 0.9, rtol=1e-9, atol=1e-9 * np.abs(kernel).max())
    other = Subject(8, "female", 1.25)
    dressed.clothing_for(other)
    assert dressed.clothing_for(body.subject) is outfit                  # one outfit per subject
    assert len(dressed.realism()["clothing"]) == 2
    with pytest.raises(SimulationInputError, match="clothing"):
        SimulationConfig(clothing="jeans")
