"""Empty-room responses and shadowing (simulator.room_response), against analytic answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import trimesh

from rooms import PolyhedralRoom, ShoeboxRoom, flat_material
from rooms.air import air_absorption_db_per_m
from simulator.body_echo import FacetMesh
from simulator.room_response import compute_room_acoustics

FS = 96_000.0
DIMS = np.array([6.0, 7.0, 3.0])
# Chosen so that the direct path and the six first-order reflections arrive >= 51 samples
# apart from each other and from every path of order 2-8.
SPEAKER = np.array([1.84, 1.74, 1.58])
MIC = np.array([3.26, 3.79, 1.75])
T = 4096


def _images_of_order(source, order, dims=DIMS):
    """Image sources of exactly ``order`` in a shoebox, by hand (Allen & Berkley lattice)."""
    out = []
    for n in itertools.product(range(-order, order + 1), repeat=3):
        n = np.array(n)
        if np.abs(n).sum() == order:
            odd = np.abs(n) % 2 == 1
            out.append(n * dims + np.where(odd, dims - source, source))
    return np.array(out)


def _first_order_images_by_hand(p, dims=DIMS):
    x, y, z = p
    lx, ly, lz = dims
    return np.array([[-x, y, z], [2 * lx - x, y, z], [x, -y, z], [x, 2 * ly - y, z], [x, y, -z], [x, y, 2 * lz - z]])


def _band_energy(signal, center_sample, half_width=40, band=(19_000.0, 32_000.0)):
    lo = int(round(center_sample)) - half_width
    segment = signal[max(lo, 0) : lo + 2 * half_width + 1]
    n = 4096
    spectrum = np.fft.rfft(segment, n)
    f = np.fft.rfftfreq(n, 1.0 / FS)
    sel = (f >= band[0]) & (f <= band[1])
    return float(np.sum(np.abs(spectrum[sel]) ** 2))


@pytest.fixture(scope="module")
def room():
    return ShoeboxRoom(DIMS, materials="painted_plaster")


@pytest.fixture(scope="module")
def acoustics(room):
    return compute_room_acoustics(room, SPEAKER[None], MIC[None], n_samples=T, max_order=8)


def _box(center, size):
    box = trimesh.creation.box(extents=size)
    box.apply_translation(center)
    return box


def test_direct_and_first_order_arrive_at_image_source_delays(acoustics):
    c = acoustics.speed_of_sound_m_s
    h = acoustics.impulse_responses[0, 0]
    images = np.concatenate([SPEAKER[None], _first_order_images_by_hand(SPEAKER)])
    expected = np.linalg.norm(images - MIC, axis=1) / c * FS
    # band-limited: 16x sinc interpolation (FFT zero padding) locates the peaks between samples
    up = 16
    n = len(h)
    H = np.fft.rfft(h)
    fine = np.fft.irfft(H, n * up) * up
    for delay, image in zip(expected, images):
        lo, hi = int((delay - 4) * up), int((delay + 4) * up)
        peak = (lo + np.argmax(np.abs(fine[lo:hi]))) / up
        assert abs(peak - delay) <= 1.0, (image, peak, delay)
        # the arrival is really there (not the tail of another one): its peak is of the order
        # of 1 / (4 pi d) (walls absorb < 15 % at these frequencies, air a few dB)
        d = delay / FS * c
        assert np.abs(fine[lo:hi]).max() > 0.5 / (4 * np.pi * d)


def test_direct_path_in_band_amplitude_is_free_field_with_air_absorption(acoustics):
    c = acoustics.speed_of_sound_m_s
    d = np.linalg.norm(SPEAKER - MIC)
    delay = d / c * FS
    h = acoustics.impulse_responses[0, 0]
    lo = int(delay) - 40
    segment = np.zeros(len(h))
    segment[lo : lo + 81] = h[lo : lo + 81]
    f = np.fft.rfftfreq(len(h), 1.0 / FS)
    sel = (f >= 19_000) & (f <= 32_000)
    measured = np.abs(np.fft.rfft(segment))[sel]
    amplitude_np_per_m = air_absorption_db_per_m(f[sel], 20.0, 50.0) * np.log(10) / 20
    expected = np.exp(-amplitude_np_per_m * d) / (4 * np.pi * d)
    np.testing.assert_allclose(measured, expected, rtol=0.05)
    # and the phase is a pure delay d / c
    phase = np.angle(np.fft.rfft(segment)[sel] * np.exp(2j * np.pi * f[sel] * d / c))
    assert np.abs(phase).max() < 0.05


def test_matches_pyroomacoustics_compute_rir_in_band(room):
    """Own synthesis = pyroomacoustics' RIR / (4 pi), 40 samples earlier (its filter delay).

    Without air absorption: pyroomacoustics takes air per octave band, which at ultrasound is
    too coarse (ours is exact ISO 9613-1 per frequency, checked against the standard above)."""
    speaker, mic = np.array([2.0, 3.0, 1.2]), np.array([3.5, 3.6, 1.6])
    ra = compute_room_acoustics(room, speaker[None], mic[None], n_samples=2048, max_order=3, air_absorption=False)
    pra_room = room.to_pyroomacoustics(FS, 3, 20.0, 50.0, air_absorption=False, include_furniture=False)
    pra_room.add_source(speaker)
    pra_room.add_microphone_array(mic[:, None])
    pra_room.compute_rir()
    reference = np.asarray(pra_room.rir[0][0], dtype=float)[40 : 40 + 2048] / (4 * np.pi)
    ours = ra.impulse_responses[0, 0, : len(reference)]
    n = 8192
    f = np.fft.rfftfreq(n, 1.0 / FS)
    sel = (f >= 19_000) & (f <= 32_000)
    diff = np.abs(np.fft.rfft(ours - reference[: len(ours)], n))[sel]
    ref = np.abs(np.fft.rfft(reference[: len(ours)], n))[sel]
    assert np.sqrt(np.sum(diff**2) / np.sum(ref**2)) < 0.02


def test_box_on_the_direct_line_cancels_the_direct_path(acoustics):
    c = acoustics.speed_of_sound_m_s
    mid = 0.5 * (SPEAKER + MIC)
    body = _box([mid[0], mid[1], 0.9], [0.4, 0.4, 1.8])
    correction = acoustics.shadow_correction(body)
    h = acoustics.impulse_responses[0, 0]
    delay = np.linalg.norm(SPEAKER - MIC) / c * FS
    before = _band_energy(h, delay)
    after = _band_energy(h + correction[0, 0], delay)
    assert after < 0.01 * before
    # also through a FacetMesh (the body-echo mesh), with half attenuation: -6 dB
    half = acoustics.shadow_correction(FacetMesh.from_trimesh(body), attenuation=0.5)
    np.testing.assert_allclose(half, 0.5 * correction, atol=1e-12)


def test_box_far_from_low_order_paths_leaves_them_unchanged(acoustics):
    c = acoustics.speed_of_sound_m_s
    center = np.array([5.5, 6.5, 0.9])
    # hand check: the corner box is > 1 m from every first-order polyline (and the direct path)
    for image in _first_order_images_by_hand(SPEAKER):
        direction = MIC - image
        samples = image + np.linspace(0, 1, 2001)[:, None] * direction
        # fold the unfolded line back into the room
        r = np.mod(samples, 2 * DIMS)
        folded = np.where(r > DIMS, 2 * DIMS - r, r)
        assert np.min(np.linalg.norm(folded[:, :2] - center[:2], axis=1)) > 1.0
    body = _box(center, [0.4, 0.4, 1.8])
    correction = acoustics.shadow_correction(body)[0, 0]
    h = acoustics.impulse_responses[0, 0]
    images = np.concatenate([SPEAKER[None], _first_order_images_by_hand(SPEAKER)])
    for delay in np.linalg.norm(images - MIC, axis=1) / c * FS:
        assert _band_energy(correction, delay) < 1e-8 * _band_energy(h, delay)
    assert np.any(correction != 0.0)  # some higher-order paths do cross the corner


def _floor_blocking_box():
    # floor reflection point of SPEAKER -> MIC, and a small box on its second leg
    t = SPEAKER[2] / (SPEAKER[2] + MIC[2])
    floor_point = SPEAKER + t * (MIC - SPEAKER)
    floor_point[2] = 0.0
    center = 0.5 * (floor_point + MIC)
    return _box(center, [0.15, 0.15, 0.15]), floor_point


@pytest.mark.parametrize("kind", ["shoebox", "polyhedral"])
def test_box_on_floor_reflection_second_leg_removes_only_it(room, acoustics, kind):
    if kind == "shoebox":
        ra = acoustics
    else:  # same room as a general polyhedral room: legs traced back through pra's walls
        poly = PolyhedralRoom.from_floor_polygon(
            [[0, 0], [DIMS[0], 0], [DIMS[0], DIMS[1]], [0, DIMS[1]]],
            DIMS[2],
            wall_material="painted_plaster",
            floor_material="painted_plaster",
            ceiling_material="painted_plaster",
        )
        ra = compute_room_acoustics(poly, SPEAKER[None], MIC[None], n_samples=T, max_order=2)
    c = ra.speed_of_sound_m_s
    body, floor_point = _floor_blocking_box()
    # the box is clear of the direct path and of the first leg (hand geometry)
    box_center = body.bounds.mean(axis=0)
    for a, b in [(SPEAKER, MIC), (SPEAKER, floor_point)]:
        s = np.linspace(0, 1, 1001)[:, None]
        assert np.min(np.linalg.norm(a + s * (b - a) - box_center, axis=1)) > 0.3
    correction = ra.shadow_correction(body)[0, 0]
    h = ra.impulse_responses[0, 0]
    floor_delay = np.linalg.norm(SPEAKER * [1, 1, -1] - MIC) / c * FS
    direct_delay = np.linalg.norm(SPEAKER - MIC) / c * FS
    assert _band_energy(h + correction, floor_delay) < 0.01 * _band_energy(h, floor_delay)
    assert _band_energy(correction, direct_delay) < 1e-8 * _band_energy(h, direct_delay)


def test_polyhedral_room_matches_shoebox(room):
    poly = PolyhedralRoom.from_floor_polygon(
        [[0, 0], [DIMS[0], 0], [DIMS[0], DIMS[1]], [0, DIMS[1]]],
        DIMS[2],
        wall_material="painted_plaster",
        floor_material="painted_plaster",
        ceiling_material="painted_plaster",
    )
    a = compute_room_acoustics(room, SPEAKER[None], MIC[None], n_samples=1500, max_order=2)
    b = compute_room_acoustics(poly, SPEAKER[None], MIC[None], n_samples=1500, max_order=2)
    h = a.impulse_responses[0, 0]
    assert np.abs(b.impulse_responses[0, 0] - h).max() < 1e-3 * np.abs(h).max()


@pytest.mark.filterwarnings("ignore:max_order = 1 is too low:RuntimeWarning")
def test_first_order_images_are_mirror_images(room):
    speakers = np.array([[1.0, 2.0, 1.5], [4.0, 5.0, 1.0]])
    mics = speakers + [0.02, 0.0, 0.0]
    ra = compute_room_acoustics(room, speakers, mics, n_samples=2048, max_order=1)
    images = ra.first_order_images()
    assert images.wall_names == ("west", "east", "south", "north", "floor", "ceiling")
    for s, p in enumerate(speakers):
        np.testing.assert_allclose(images.speaker_images_m[s], _first_order_images_by_hand(p), atol=1e-12)
    for m, p in enumerate(mics):
        np.testing.assert_allclose(images.microphone_images_m[m], _first_order_images_by_hand(p), atol=1e-12)
    # painted plaster absorbs 7-10 % of the energy at 16-32 kHz
    assert np.all((images.wall_reflection > 0.9) & (images.wall_reflection < 0.99))
    # a first-order path's specular point lies on the wall plane
    q = images.specular_points_m(images.speaker_images_m[0, 4], mics[0], 4)
    assert abs(q[0, 2]) < 1e-12

    rigid = ShoeboxRoom(DIMS, materials=flat_material("rigid", 0.0))
    ra_rigid = compute_room_acoustics(rigid, speakers, mics, n_samples=2048, max_order=1)
    np.testing.assert_allclose(ra_rigid.first_order_images().wall_reflection, 1.0, atol=1e-6)


def test_validation_errors_name_the_field(room):
    good = np.array([[1.0, 1.0, 1.0]])
    mic = np.array([[1.5, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"speaker_positions_m\[0\]"):
        compute_room_acoustics(room, [[7.0, 1.0, 1.0]], mic, n_samples=1000)
    with pytest.raises(ValueError, match=r"microphone_positions_m\[1\]"):
        compute_room_acoustics(room, good, [[1.5, 1.0, 1.0], [1.0, 1.0, -0.5]], n_samples=1000)
    with pytest.raises(ValueError, match=r"microphone_positions_m\[1\].*[Oo]ffset the microphone"):
        compute_room_acoustics(room, good, [[1.5, 1.0, 1.0], [1.0, 1.0, 1.001]], n_samples=1000)
    with pytest.raises(ValueError, match="max_order"):
        compute_room_acoustics(room, good, mic, n_samples=1000, max_order=-1)
    with pytest.raises(ValueError, match="n_samples"):
        compute_room_acoustics(room, good, mic, n_samples=0)
    with pytest.raises(ValueError, match="n_samples"):  # shorter than the direct path (0.5 m = 140 samples)
        compute_room_acoustics(room, good, mic, n_samples=100, max_order=1)
    with pytest.warns(RuntimeWarning, match="max_order"):  # order-2 paths arrive inside the window
        ra = compute_room_acoustics(room, good, mic, n_samples=4000, max_order=1)
    with pytest.raises(ValueError, match="attenuation"):
        ra.shadow_correction(_box([3, 3, 1], [0.2, 0.2, 0.2]), attenuation=2.0)


def _check_polylines(ra, speaker, mic, sample=None):
    """Every path's legs form a continuous polyline joining the speaker and the microphone whose
    length is the image-source distance (the defining property of a specular path)."""
    paths = ra.paths
    indices = np.arange(paths.n_paths) if sample is None else sample
    order_of_leg = np.argsort(paths.leg_path, kind="stable")
    leg_path = paths.leg_path[order_of_leg]
    bounds = np.searchsorted(leg_path, np.arange(paths.n_paths + 1))
    for k in indices:
        sel = order_of_leg[bounds[k] : bounds[k + 1]]
        starts, ends = paths.leg_start_m[sel], paths.leg_end_m[sel]
        assert len(sel) == paths.order[k] + 1
        np.testing.assert_allclose(starts[1:], ends[:-1], atol=1e-6)
        ends_points = {tuple(np.round(starts[0], 6)), tuple(np.round(ends[-1], 6))}
        assert ends_points == {tuple(np.round(speaker, 6)), tuple(np.round(mic, 6))}
        total = np.linalg.norm(ends - starts, axis=1).sum()
        assert abs(total - paths.length_m[k]) < 1e-5 * max(1.0, paths.length_m[k])


def test_legs_are_specular_polylines_shoebox_order_17(room):
    ra = compute_room_acoustics(room, SPEAKER[None], MIC[None], n_samples=9600, max_order=17)
    assert ra.paths.order.max() >= 10
    _check_polylines(ra, SPEAKER, MIC, sample=np.random.default_rng(0).choice(ra.paths.n_paths, 300, replace=False))


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_legs_are_specular_polylines_furnished_room_colocated_rig():
    from rooms import RoomSampler

    scene = RoomSampler().sample(np.random.default_rng(3))
    speakers = scene.rig.speaker_positions_m[:2]
    mics = speakers + [0.0, 0.0, 0.02]  # co-located: corner paths pass through room edges
    ra = compute_room_acoustics(scene.room, speakers, mics, n_samples=4800, max_order=2, include_furniture=True)
    assert any("/" in name for name in ra.wall_names)  # furniture faces reflect
    for s in range(2):
        for m in range(2):
            sl = ra.paths.of_pair(s, m, 2)
            _check_polylines(ra, speakers[s], mics[m], sample=np.arange(sl.start, sl.stop))
    with pytest.raises(ValueError, match="max_order"):
        compute_room_acoustics(scene.room, speakers, mics, n_samples=4800, max_order=6, include_furniture=True)


def test_period_folded_shadow_equals_the_folded_full_correction_in_band(acoustics):
    """The fast per-frame path (deposited on the frame period, band nodes only) agrees with
    folding the full synthesis, inside the chirps' band. (Paths within a kernel half-width of
    the window's end are left out: the full synthesis cuts their tails at T, the circular one
    wraps them.)"""
    body = trimesh.creation.box(extents=(0.4, 0.4, 1.8))
    body.apply_translation([3.0, 3.5, 0.9])
    blocked = acoustics.blocked_paths(body)
    idx = np.flatnonzero(blocked & (acoustics.paths.delay_s * FS < T - 60))
    assert len(idx) > 5
    full = acoustics.path_impulse_responses(idx, -1.0)
    period = 2400
    fast = acoustics.path_impulse_responses(idx, -1.0, period)
    assert fast.shape[-1] == period
    folded = np.zeros(full.shape[:-1] + (-(-T // period) * period,))
    folded[..., :T] = full
    folded = folded.reshape(full.shape[:-1] + (-1, period)).sum(-2)
    f = np.fft.rfftfreq(period, 1.0 / FS)
    band = (f >= 17_500) & (f <= 34_500)
    a, b = np.fft.rfft(fast, axis=-1)[..., band], np.fft.rfft(folded, axis=-1)[..., band]
    assert np.linalg.norm(a - b) < 1e-3 * np.linalg.norm(b)
    assert np.abs(np.fft.rfft(fast, axis=-1)[..., f < 7_900]).max() < 1e-12  # the 16 kHz hat starts at 8 kHz
    shadow = acoustics.shadow_correction(body, period=period)
    assert shadow.shape == (1, 1, period) and np.abs(shadow).max() > 0
