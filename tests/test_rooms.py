"""Tests of the rooms package: air physics against ISO tables, image-source geometry
against analytic image positions, materials in the ultrasonic bands, rigs, camera,
the room sampler, and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import trimesh

from rooms import (
    MATERIALS,
    OCTAVE_BANDS_HZ,
    Camera,
    Material,
    PolyhedralRoom,
    RoomGeometryError,
    RoomInputError,
    RoomSampler,
    RoomSamplerConfig,
    ShoeboxRoom,
    air_absorption_db_per_m,
    air_absorption_energy_per_m,
    colocated_rig,
    flat_material,
    get_material,
    make_seat,
    make_shelf,
    make_table,
    sample_rig,
    separated_rig,
    speed_of_sound_m_s,
    validate_body_inside,
)
from rooms.materials import MATERIAL_KINDS

FS_HZ = 96_000
PRA_DELAY_SAMPLES = 40  # pyroomacoustics: frac_delay_length // 2


def exact_midband_hz(n: int) -> float:
    """Exact one-third-octave midband frequency 1000 * 10**(n / 10) Hz (IEC 61260), as the ISO tables use."""
    return 1000.0 * 10.0 ** (n / 10.0)


# --------------------------------------------------------------------------------------
# air
# --------------------------------------------------------------------------------------


def test_speed_of_sound_at_0_and_20_celsius():
    assert speed_of_sound_m_s(0.0) == pytest.approx(331.3, abs=1e-9)
    assert speed_of_sound_m_s(20.0) == pytest.approx(343.2, abs=0.05)
    assert speed_of_sound_m_s(30.0) > speed_of_sound_m_s(20.0)
    with pytest.raises(RoomInputError, match="temperature_c"):
        speed_of_sound_m_s(300.0)


# ISO 9613-1:1993 Table 1 entries (pure tone, 101.325 kPa), dB/km.
ISO_9613_1_TABLE_1 = [
    (exact_midband_hz(-13), -20.0, 10.0, 0.589),
    (exact_midband_hz(8), 20.0, 15.0, 175.0),
    (exact_midband_hz(-13), 20.0, 80.0, 0.0501),
    (exact_midband_hz(0), 20.0, 80.0, 5.15),
    (exact_midband_hz(10), 20.0, 80.0, 105.0),
]


@pytest.mark.parametrize("frequency_hz, temperature_c, humidity_pct, table_db_per_km", ISO_9613_1_TABLE_1)
def test_air_absorption_matches_iso_9613_1_table_1(frequency_hz, temperature_c, humidity_pct, table_db_per_km):
    computed = air_absorption_db_per_m(frequency_hz, temperature_c, humidity_pct) * 1e3
    assert computed == pytest.approx(table_db_per_km, rel=0.005)  # table has 3 significant digits


# ISO 9613-2:1996 Table 2: octave bands 63 Hz ... 8 kHz (exact midbands), dB/km, one decimal.
ISO_9613_2_TABLE_2 = {
    (10.0, 70.0): [0.1, 0.4, 1.0, 1.9, 3.7, 9.7, 32.8, 117.0],
    (20.0, 70.0): [0.1, 0.3, 1.1, 2.8, 5.0, 9.0, 22.9, 76.6],
    (30.0, 70.0): [0.1, 0.3, 1.0, 3.1, 7.4, 12.7, 23.1, 59.3],
    (15.0, 20.0): [0.3, 0.6, 1.2, 2.7, 8.2, 28.2, 88.8, 202.0],
    (15.0, 50.0): [0.1, 0.5, 1.2, 2.2, 4.2, 10.8, 36.2, 129.0],
    (15.0, 80.0): [0.1, 0.3, 1.1, 2.4, 4.1, 8.3, 23.7, 82.8],
}


@pytest.mark.parametrize("condition", list(ISO_9613_2_TABLE_2))
def test_air_absorption_matches_iso_9613_2_table_2(condition):
    temperature_c, humidity_pct = condition
    frequencies = [exact_midband_hz(n) for n in (-12, -9, -6, -3, 0, 3, 6, 9)]
    computed = air_absorption_db_per_m(np.array(frequencies), temperature_c, humidity_pct) * 1e3
    table = np.array(ISO_9613_2_TABLE_2[condition])
    # one-decimal rounding, and 3 significant digits for entries above 100
    assert np.all(np.abs(computed - table) <= 0.06 + 0.005 * table), (computed.round(2), table)


def test_air_absorption_in_the_chirp_band():
    # Ultrasonic ranging literature quotes about 1.3 dB/m at 40 kHz in room air.
    assert 1.1 < air_absorption_db_per_m(40_000.0, 20.0, 50.0) < 1.5
    alpha = air_absorption_db_per_m(np.array([19e3, 25e3, 32e3]), 20.0, 50.0)
    assert np.all(np.diff(alpha) > 0) and 0.3 < alpha[0] < alpha[-1] < 1.2
    # pyroomacoustics' unit: intensity exp(-m d)  <=>  10 log10(e) m dB per metre
    m = air_absorption_energy_per_m(32e3, 20.0, 50.0)
    assert 10 * np.log10(np.exp(m)) == pytest.approx(alpha[-1], rel=1e-12)
    with pytest.raises(RoomInputError, match="relative_humidity_pct"):
        air_absorption_db_per_m(32e3, 20.0, 130.0)


# --------------------------------------------------------------------------------------
# materials
# --------------------------------------------------------------------------------------


def test_material_library_reaches_32_khz_plausibly():
    assert OCTAVE_BANDS_HZ[-2:] == (16000.0, 32000.0)
    for name, material in MATERIALS.items():
        a = material.absorption_coefficients
        assert a.shape == (9,) and np.all((a >= 0) & (a < 1)), name
        if MATERIAL_KINDS[name] == "porous":
            assert a[8] >= a[7] >= a[6] and a[8] >= 0.75, name
        else:
            assert a[6] <= a[7] <= a[8] <= 0.3, name
    assert get_material("carpet_thin").absorption[32000.0] > 5 * get_material("concrete").absorption[32000.0]


def test_material_rejects_bad_input():
    with pytest.raises(RoomInputError, match="lacks bands"):
        Material("x", {125.0: 0.1})
    with pytest.raises(RoomInputError, match=r"absorption\[32000 Hz\]"):
        Material("x", {**{b: 0.1 for b in OCTAVE_BANDS_HZ}, 32000.0: 1.2})
    with pytest.raises(RoomInputError, match="not in the library"):
        get_material("unobtainium")


# --------------------------------------------------------------------------------------
# pyroomacoustics: bands, arrival times, high-band absorption, air absorption
# --------------------------------------------------------------------------------------


def test_pyroomacoustics_uses_nine_bands_up_to_32_khz():
    room = ShoeboxRoom([6.0, 5.0, 3.0], "carpet_thin")
    pra_room = room.to_pyroomacoustics(FS_HZ, max_order=1, temperature_c=25.0, relative_humidity_pct=40.0)
    np.testing.assert_allclose(pra_room.octave_bands.centers, OCTAVE_BANDS_HZ)
    np.testing.assert_allclose(pra_room.walls[0].absorption, get_material("carpet_thin").absorption_coefficients, rtol=1e-6)
    np.testing.assert_allclose(pra_room.air_absorption, air_absorption_energy_per_m(np.array(OCTAVE_BANDS_HZ), 25.0, 40.0))
    assert pra_room.c == pytest.approx(speed_of_sound_m_s(25.0))


def _peak_near(rir: np.ndarray, expected_sample: float, half_window: int = 6) -> int:
    lo = int(round(expected_sample)) - half_window
    return lo + int(np.argmax(np.abs(rir[lo : lo + 2 * half_window + 1])))


def test_shoebox_direct_and_floor_reflection_arrive_at_image_source_times():
    dims = np.array([6.0, 5.0, 3.0])
    absorbing = flat_material("absorber", 0.9)
    materials = {name: absorbing for name in ("west", "east", "south", "north", "ceiling")}
    materials["floor"] = get_material("concrete")
    room = ShoeboxRoom(dims, materials)
    source, mic = np.array([1.3, 1.7, 1.5]), np.array([4.1, 3.2, 1.1])
    pra_room = room.to_pyroomacoustics(FS_HZ, max_order=1, temperature_c=20.0)
    pra_room.add_source(source)
    pra_room.add_microphone(mic)
    pra_room.compute_rir()
    rir = pra_room.rir[0][0]
    c = speed_of_sound_m_s(20.0)

    floor_image = source * [1, 1, -1]
    images = {"direct": source, "floor": floor_image}
    others = [source * [-1, 1, 1], source * [1, -1, 1], 2 * dims * [1, 0, 0] - source * [1, -1, -1],
              2 * dims * [0, 1, 0] - source * [-1, 1, -1], 2 * dims * [0, 0, 1] - source * [-1, -1, 1]]
    arrivals = {k: np.linalg.norm(v - mic) / c * FS_HZ + PRA_DELAY_SAMPLES for k, v in images.items()}
    other_arrivals = [np.linalg.norm(v - mic) / c * FS_HZ + PRA_DELAY_SAMPLES for v in others]
    for expected in arrivals.values():  # the geometry keeps the two paths well apart from the others
        assert min(abs(expected - o) for o in other_arrivals) > 20
    for name, expected in arrivals.items():
        assert abs(_peak_near(rir, expected) - expected) <= 1.0, name
    # pyroomacoustics' first-order image across the floor is the analytic mirror image
    found = pra_room.sources[0].images.T
    assert np.min(np.linalg.norm(found - floor_image, axis=1)) < 1e-5


def _band_energy(signal: np.ndarray, band_hz) -> float:
    sos = scipy.signal.butter(6, band_hz, btype="bandpass", fs=FS_HZ, output="sos")
    return float(np.sum(scipy.signal.sosfiltfilt(sos, signal) ** 2))


def test_absorption_in_the_32_khz_band_is_applied():
    """Walls absorbing strongly only in the 32 kHz band: the reverberant energy relative to the
    direct sound must drop far more in that band than in the 4 kHz band."""
    absorption = {band: 0.02 for band in OCTAVE_BANDS_HZ}
    absorption[32000.0] = 0.95
    room = ShoeboxRoom([5.0, 4.0, 3.0], Material("ultrasonic_absorber", absorption))
    pra_room = room.to_pyroomacoustics(FS_HZ, max_order=3, air_absorption=False)
    source, mic = np.array([1.2, 1.1, 1.4]), np.array([3.6, 2.7, 1.2])
    pra_room.add_source(source)
    pra_room.add_microphone(mic)
    pra_room.compute_rir()
    rir = pra_room.rir[0][0]
    split = int(round(np.linalg.norm(source - mic) / pra_room.c * FS_HZ)) + PRA_DELAY_SAMPLES + 48
    ratio = {}
    for name, band in (("4k", (3000.0, 5300.0)), ("32k", (27000.0, 38000.0))):
        ratio[name] = _band_energy(rir[split:], band) / _band_energy(rir[:split], band)
    # one reflection keeps 5 % of the energy at 32 kHz and 98 % at 4 kHz
    assert ratio["32k"] < 0.2 * ratio["4k"], ratio


def test_air_absorption_attenuates_the_direct_path_by_iso_amount():
    room = ShoeboxRoom([12.0, 6.0, 3.0], "concrete")
    source, mic = np.array([1.0, 3.0, 1.5]), np.array([9.0, 3.0, 1.5])
    energies = {}
    for air in (True, False):
        pra_room = room.to_pyroomacoustics(FS_HZ, max_order=0, temperature_c=20.0, relative_humidity_pct=50.0, air_absorption=air)
        pra_room.add_source(source)
        pra_room.add_microphone(mic)
        pra_room.compute_rir()
        energies[air] = _band_energy(pra_room.rir[0][0], (28000.0, 36000.0))
    measured_db = 10 * np.log10(energies[False] / energies[True])
    expected_db = air_absorption_db_per_m(32000.0, 20.0, 50.0) * 8.0  # ~8.1 dB over 8 m
    assert measured_db == pytest.approx(expected_db, abs=0.5)


def test_polyhedral_box_gives_the_shoebox_first_reflections():
    dims = np.array([6.0, 5.0, 3.0])
    mesh = trimesh.creation.box(extents=dims)
    mesh.apply_translation(dims / 2)
    material = get_material("gypsum_board")
    poly = PolyhedralRoom.from_trimesh(mesh, material)
    box = ShoeboxRoom(dims, material)
    assert len(poly.surfaces) == 6 and poly.volume_m3 == pytest.approx(90.0)
    np.testing.assert_allclose(sorted(map(tuple, poly.floor_polygon_m)), sorted(map(tuple, box.floor_polygon_m)))
    source, mic = np.array([1.3, 1.7, 1.5]), np.array([4.1, 3.2, 1.1])
    rirs, images = [], []
    for room in (box, poly):
        pra_room = room.to_pyroomacoustics(FS_HZ, max_order=1)
        pra_room.add_source(source)
        pra_room.add_microphone(mic)
        pra_room.compute_rir()
        rirs.append(pra_room.rir[0][0])
        images.append(np.array(sorted(map(tuple, np.round(pra_room.sources[0].images.T, 4)))))
    assert type(box.to_pyroomacoustics(FS_HZ, 1)).__name__ == "ShoeBox"
    np.testing.assert_allclose(images[0], images[1], atol=1e-3)
    assert len(images[0]) == 7
    n = min(len(r) for r in rirs)
    assert np.max(np.abs(rirs[0][:n] - rirs[1][:n])) < 1e-3 * np.max(np.abs(rirs[0]))


# --------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------


def test_l_shaped_room_geometry():
    room = PolyhedralRoom.from_floor_polygon([[0, 0], [6, 0], [6, 3], [3, 3], [3, 6], [0, 6]], 3.0)
    assert room.volume_m3 == pytest.approx(27.0 * 3.0)
    assert room.mesh.is_watertight
    np.testing.assert_array_equal(room.contains([[1, 5, 1], [5, 1, 1], [4.5, 4.5, 1], [1, 1, 3.5]]), [True, True, False, False])
    hits = room.segment_hits_walls([[5.5, 1.0, 1.0], [1.0, 1.0, 1.0]], [[1.0, 5.5, 1.0], [5.0, 1.0, 1.0]])
    np.testing.assert_array_equal(hits, [True, False])  # the first cuts across the missing corner
    assert abs(room.signed_distance_to_shell_m([[1.0, 5.0, 1.0]])[0] - 1.0) < 1e-6


def test_furniture_blocks_points_and_segments():
    table = make_table([2.0, 2.0], 0.0, (1.2, 0.8), 0.75)
    seat = make_seat([4.0, 3.0], np.pi / 2, seat_height_m=0.45)
    room = ShoeboxRoom([6.0, 5.0, 3.0], "painted_plaster", (table, seat))
    assert seat.seat_height_m == pytest.approx(0.45)
    above, below = seat.seat_point_m + [0, 0, 0.02], seat.seat_point_m - [0, 0, 0.02]
    np.testing.assert_array_equal(room.contains([above, below, [2.0, 2.0, 0.73], [2.0, 2.0, 0.5]]), [True, False, False, True])
    hits = room.segment_hits_walls([[2.0, 2.0, 0.5], [0.5, 0.5, 0.5]], [[2.0, 2.0, 1.5], [0.5, 0.5, 1.5]])
    np.testing.assert_array_equal(hits, [True, False])
    # every furniture face has its normal pointing into the furniture (out of the air)
    for surface in room.furniture_surfaces():
        probe = surface.polygon_m.mean(axis=0) + 0.01 * surface.normal
        assert room.inside_furniture(probe)[0], surface.name
    with pytest.raises(RoomGeometryError, match="furniture"):
        ShoeboxRoom([6.0, 5.0, 3.0], "painted_plaster", (make_shelf([0.1, 2.0], 0.0, (0.8, 0.4), 1.8),))


# --------------------------------------------------------------------------------------
# rigs and validation
# --------------------------------------------------------------------------------------


def test_colocated_and_separated_rigs():
    positions = np.array([[0.5, 1.0, 1.5], [5.5, 1.0, 1.2], [5.5, 4.0, 1.8], [0.5, 4.0, 0.9]])
    rig = colocated_rig(positions)
    np.testing.assert_array_equal(rig.speaker_positions_m, rig.microphone_positions_m)
    pairs = rig.pairs()
    assert pairs.shape == (16, 2)
    assert {tuple(p) for p in pairs} == {(s, m) for s in range(4) for m in range(4)}
    np.testing.assert_array_equal(rig.colocated_pairs(), [[0, 0], [1, 1], [2, 2], [3, 3]])
    assert np.sum(rig.pair_distances_m() == 0) == 4
    separated = separated_rig(positions[:3], positions[3:] + 0.1)
    assert separated.pairs().shape == (3, 2) and not separated.colocated
    with pytest.raises(RoomInputError, match="colocated"):
        type(rig)(positions, positions + 0.1, colocated=True)


def test_transducer_outside_room_is_named():
    room = ShoeboxRoom([6.0, 5.0, 3.0])
    positions = np.array([[0.5, 1.0, 1.5], [5.5, 1.0, 1.2], [7.1, 4.0, 1.8], [0.5, 4.0, 0.9]])
    with pytest.raises(RoomGeometryError, match=r"speaker_positions_m\[2\] = \(7\.100, 4\.000, 1\.800\).*outside"):
        colocated_rig(positions).validate_in(room)
    room_with_table = room.with_furniture([make_table([2.0, 2.0])])
    inside_table = separated_rig(positions[:2], [[2.0, 2.0, 0.74]])
    with pytest.raises(RoomGeometryError, match=r"microphone_positions_m\[0\].*furniture"):
        inside_table.validate_in(room_with_table)


def test_body_through_wall_or_furniture_is_rejected():
    seat = make_seat([3.0, 2.5], 0.0, seat_height_m=0.45)
    room = ShoeboxRoom([6.0, 5.0, 3.0], "painted_plaster", (seat,))
    standing = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.8], [1.2, 1.0, 1.0]])
    validate_body_inside(room, standing)  # feet on the floor are fine
    through_wall = standing + [5.3, 0.0, 0.0]  # x up to 6.5 m in a 6 m room
    with pytest.raises(RoomGeometryError, match="body_vertices_m.*room shell"):
        validate_body_inside(room, through_wall)
    sitting = seat.seat_point_m + np.array([[0.0, 0.0, -0.01], [0.0, 0.0, 0.8]])
    validate_body_inside(room, sitting)  # pressing 1 cm into the cushion is contact
    with pytest.raises(RoomGeometryError, match="furniture"):
        validate_body_inside(room, seat.seat_point_m + np.array([[0.0, 0.0, -0.15]]))


def test_bad_room_inputs_raise_before_work():
    with pytest.raises(RoomInputError, match="dimensions_m"):
        ShoeboxRoom([6.0, -5.0, 3.0])
    with pytest.raises(RoomInputError, match="materials keys"):
        ShoeboxRoom([6.0, 5.0, 3.0], {"floor": "concrete"})
    with pytest.raises(RoomInputError, match="min_floor_side_m"):
        RoomSamplerConfig(min_floor_side_m=1.0)
    with pytest.raises(RoomInputError, match="not a closed surface"):
        open_mesh = trimesh.creation.box(extents=[3, 3, 3])
        open_mesh.update_faces(np.arange(len(open_mesh.faces)) > 1)
        PolyhedralRoom.from_trimesh(open_mesh)


# --------------------------------------------------------------------------------------
# camera
# --------------------------------------------------------------------------------------


def test_camera_projection_follows_opencv_convention():
    camera = Camera()  # identity pose: camera frame == world frame
    pixels, depth = camera.project(np.array([[0.5, 0.2, 2.0]]))
    np.testing.assert_allclose(pixels[0], [914 * 0.25 + 957, 914 * 0.1 + 547])
    assert depth[0] == 2.0
    eye, target = np.array([0.05, 2.5, 1.5]), np.array([4.0, 2.5, 1.0])
    looking = Camera.look_at(eye, target)
    centre, _ = looking.project(target[None])
    np.testing.assert_allclose(centre[0], [957, 547], atol=1e-6)
    (above, right), _ = looking.project(np.array([target + [0, 0, 0.5], target + [0, -0.5, 0]]))
    assert above[1] < 547 and right[0] > 957  # z up is image up; looking along +x, -y is to the right
    np.testing.assert_allclose(looking.camera_to_world(looking.world_to_camera(target)), target)
    assert not looking.in_view(eye - [1.0, 0, 0])  # behind the camera


# --------------------------------------------------------------------------------------
# sampler
# --------------------------------------------------------------------------------------


def _describe(scene):
    return (
        scene.room.dimensions_m.tolist(),
        {k: v.name for k, v in scene.room.materials.items()},
        [(f.kind, [b.center_m.tolist() for b in f.boxes]) for f in scene.room.furniture],
        scene.rig.speaker_positions_m.tolist(),
        scene.rig.microphone_positions_m.tolist(),
        scene.camera.cam_to_world.tolist(),
        scene.temperature_c,
        scene.relative_humidity_pct,
    )


def test_sampler_is_deterministic_and_defaults_to_large_floors():
    sampler = RoomSampler()
    first = sampler.sample(np.random.default_rng(7))
    np.random.seed(123)  # global numpy state must not matter
    second = sampler.sample(np.random.default_rng(7))
    assert _describe(first) == _describe(second)
    assert _describe(first) != _describe(sampler.sample(np.random.default_rng(8)))
    for seed in range(6):
        scene = sampler.sample(np.random.default_rng(seed))
        lx, ly, lz = scene.room.dimensions_m
        assert min(lx, ly) >= 5.0 and 2.4 <= lz <= 4.0
        assert scene.rig.n_speakers == 4 and scene.rig.n_microphones == 4
        assert sum(f.kind == "seat" for f in scene.room.furniture) >= 1
        assert scene.speed_of_sound_m_s == pytest.approx(speed_of_sound_m_s(scene.temperature_c))
        for positions in (scene.rig.speaker_positions_m, scene.rig.microphone_positions_m):
            assert np.all(scene.room.contains(positions))
            assert np.all((positions[:, 2] >= 0.7) & (positions[:, 2] <= 2.2 + 1e-9))
        if scene.rig.colocated:
            np.testing.assert_array_equal(scene.rig.speaker_positions_m, scene.rig.microphone_positions_m)


@pytest.mark.parametrize("config", [RoomSamplerConfig(), RoomSamplerConfig(min_floor_side_m=3.0, max_floor_side_m=4.0)])
def test_sampled_camera_sees_a_tall_person_and_the_seat(config):
    sampler = RoomSampler(config)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        scene = sampler.sample(rng)
        assert max(scene.room.dimensions_m[:2]) <= config.max_floor_side_m
        radius = 0.25
        for _ in range(5):
            x, y = scene.sample_body_position(rng, footprint_radius_m=radius)
            assert scene.room.horizontal_clearance_m([x, y])[0] >= radius
            assert scene.room.furniture_clearance_m([x, y])[0] >= radius
            head_and_feet = np.array([[x, y, 1.9], [x, y, 0.0]])
            assert np.all(scene.camera.in_view(head_and_feet)), (seed, x, y)
            # no wall, shelf or table hides the person (the seat in the body region may hide the feet)
            without_seat = scene.room.with_furniture([f for f in scene.room.furniture if f.kind != "seat"])
            assert not without_seat.segment_hits_walls(np.repeat(scene.camera.position_m[None], 2, 0), head_and_feet + [0, 0, 0.05]).any()
        seat = scene.seat_position_m
        assert np.all(scene.camera.in_view(np.array([seat, seat + [0, 0, 0.9]])))
        assert scene.room.contains(scene.camera.position_m)[0]


def test_sampled_rig_placement_on_furniture_and_separated():
    room = ShoeboxRoom([7.0, 6.0, 3.0], "painted_plaster", (make_shelf([3.5, 0.2], 0.0, (1.0, 0.38), 1.2), make_table([1.5, 4.5], 0.3)))
    rig = sample_rig(room, np.random.default_rng(0), 3, 5, colocated=False, around_xy_m=[3.5, 3.0], mounts=("shelf", "table"))
    assert rig.n_speakers == 3 and rig.n_microphones == 5 and not rig.colocated
    for positions, mounts in ((rig.speaker_positions_m, rig.speaker_mounts), (rig.microphone_positions_m, rig.microphone_mounts)):
        for p, mount in zip(positions, mounts):
            expected_top = 1.2 if mount == "shelf" else 0.75
            assert p[2] == pytest.approx(expected_top + 0.08)
    everything = np.concatenate([rig.speaker_positions_m, rig.microphone_positions_m])
    gaps = np.linalg.norm(everything[:, None] - everything[None], axis=2) + np.eye(8) * 10
    assert gaps.min() >= 0.3
