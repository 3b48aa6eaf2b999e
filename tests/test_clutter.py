"""Furniture in the room response (simulator.clutter), against closed forms and pyroomacoustics."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from rooms import ShoeboxRoom, flat_material, get_material
from rooms.furniture import Box, Furniture, make_seat, make_shelf, make_table
from rooms.polygons import segments_hit_triangles
from simulator.body_echo import FacetMesh
from simulator.clutter import (
    _inside_polygon,
    _plane_distance,
    body_blocked_paths,
    body_shadow_correction,
    compute_clutter,
    facets_hidden_by_furniture,
    furniture_reflections,
    segments_blocked_by_boxes,
    furniture_faces,
)
from simulator.directivity import DirectivityModel
from simulator.errors import SimulationInputError
from simulator.room_response import compute_room_acoustics

# short windows at low order on purpose: the checks look at the first arrivals only
pytestmark = pytest.mark.filterwarnings("ignore:max_order = .* is too low:RuntimeWarning")

FS = 96_000.0
T = 2048
DIMS = np.array([5.0, 4.0, 3.0])
R_SEAT = 0.8  # flat material: the same pressure reflection factor in every band
SEAT_MATERIAL = flat_material("seat_flat", 1.0 - R_SEAT**2)
SEAT = Furniture("seat", (Box([2.0, 2.0, 0.225], [0.5, 0.5, 0.45]),), SEAT_MATERIAL)
SEAT_TOP_Z = 0.45
# Both above the seat's footprint: only its top can reflect between them.
SPEAKER = np.array([1.9, 1.95, 1.5])
MIC = np.array([2.1, 2.05, 1.2])
# The band limit's peak: a band-limited delta of area a peaks at 0.9 a (flat to 0.4 fs, raised cosine to fs / 2).
PEAK_FRACTION = 0.9


def _acoustics(room, speakers, mics, max_order=1, air=False, directivity=None, include_furniture=False):
    return compute_room_acoustics(room, np.atleast_2d(speakers), np.atleast_2d(mics), n_samples=T, max_order=max_order,
                                  air_absorption=air, directivity=directivity, include_furniture=include_furniture)


def _peak(h, expected_sample, up=32):
    """(position in samples, value) of the band-limited peak of h near expected_sample (FFT interpolation)."""
    fine = np.fft.irfft(np.fft.rfft(h), len(h) * up) * up
    lo, hi = int((expected_sample - 4) * up), int((expected_sample + 4) * up)
    i = lo + int(np.argmax(np.abs(fine[lo:hi])))
    return i / up, fine[i]


def _sphere(center, radius, subdivisions=3):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    mesh.apply_translation(center)
    return FacetMesh.from_trimesh(mesh)


@pytest.fixture(scope="module")
def seat_room():
    return ShoeboxRoom(DIMS, materials="painted_plaster", furniture=(SEAT,))


@pytest.fixture(scope="module")
def seat_case(seat_room):
    acoustics = _acoustics(seat_room, SPEAKER, MIC, max_order=2)
    return acoustics, compute_clutter(seat_room, acoustics, air_absorption=False)


def test_seat_echo_arrives_at_the_image_delay_with_amplitude_r_over_4_pi_l(seat_case):
    acoustics, clutter = seat_case
    c = acoustics.speed_of_sound_m_s
    image = SPEAKER * [1, 1, -1] + [0, 0, 2 * SEAT_TOP_Z]  # speaker mirrored in the plane z = 0.45
    length = np.linalg.norm(image - MIC)
    assert clutter.paths.n_paths == 1
    assert clutter.faces.names[clutter.paths.face[0]].endswith("/top")
    np.testing.assert_allclose(clutter.paths.length_m[0], length, rtol=1e-12)
    position, value = _peak(clutter.reflection_impulse_responses[0, 0], length / c * FS)
    assert abs(position - length / c * FS) < 0.1
    expected = PEAK_FRACTION * R_SEAT / (4 * np.pi * length)
    assert value == pytest.approx(expected, rel=0.01)
    # the reflection is part of the empty room: clutter = reflections + shadow
    np.testing.assert_array_equal(clutter.impulse_responses,
                                  clutter.reflection_impulse_responses + clutter.shadow_impulse_responses)


@pytest.mark.parametrize("mic_x, expected", [(1.98, 0), (2.02, 1)])
def test_specular_point_outside_the_face_gives_no_path(seat_room, mic_x, expected):
    # equal heights: the specular point is the midpoint, x = 1.74 (1 cm outside the top) or 1.76 (inside)
    speaker, mic = np.array([1.5, 2.0, 1.0]), np.array([mic_x, 2.0, 1.0])
    paths = furniture_reflections(seat_room, speaker[None], mic[None])
    on_top = [paths.faces.names[k].endswith("/top") for k in paths.face]
    assert sum(on_top) == expected
    if expected:
        np.testing.assert_allclose(paths.specular_m[on_top.index(True)], [(1.5 + mic_x) / 2, 2.0, SEAT_TOP_Z])


def test_box_between_speaker_and_microphone_removes_their_direct_path():
    shelf = Furniture("shelf", (Box([2.5, 2.0, 0.75], [0.3, 1.0, 1.5]),), flat_material("shelf_flat", 0.1))
    room = ShoeboxRoom(DIMS, materials="painted_plaster", furniture=(shelf,))
    speaker, mic = np.array([1.0, 2.0, 1.0]), np.array([4.0, 2.0, 1.0])
    acoustics = _acoustics(room, speaker, mic, max_order=2)
    direct = np.flatnonzero(acoustics.paths.order == 0)
    only_direct = compute_clutter(room, acoustics, air_absorption=False, shadow_max_order=0)
    np.testing.assert_array_equal(only_direct.room_paths_blocked, acoustics.paths.order == 0)
    np.testing.assert_allclose(only_direct.shadow_impulse_responses, -acoustics.path_impulse_responses(direct),
                               rtol=0, atol=1e-14)
    # every order: the paths blocked are exactly those with a leg crossing the shelf's faces
    clutter = compute_clutter(room, acoustics, air_absorption=False)
    paths = acoustics.paths
    triangles = np.concatenate([s.triangles_m for s in room.furniture_surfaces()])
    crossing = segments_hit_triangles(paths.leg_start_m, paths.leg_end_m, triangles)
    by_triangles = np.zeros(paths.n_paths, dtype=bool)
    by_triangles[paths.leg_path[crossing]] = True
    np.testing.assert_array_equal(clutter.room_paths_blocked, by_triangles)
    assert clutter.room_paths_blocked.sum() > 1  # the floor and ceiling paths at least go through it too


def test_reflection_behind_another_box_is_blocked():
    seat = make_seat([2.0, 2.0], 0.0, seat_height_m=0.45, backrest_height_m=0.9, material=SEAT_MATERIAL)
    room = ShoeboxRoom(DIMS, materials="painted_plaster", furniture=(seat,))
    # behind the backrest and in front of the seat, equal heights: the way down to the seat top crosses the backrest
    speaker, mic = np.array([1.5, 2.0, 0.7]), np.array([2.6, 2.0, 0.7])

    def on_seat_top(paths):
        return [paths.faces.names[k] for k in paths.face].count("seat_0/box0/top")

    assert on_seat_top(furniture_reflections(room, speaker[None], mic[None], blocking=False)) == 1
    assert on_seat_top(furniture_reflections(room, speaker[None], mic[None])) == 0


def test_body_in_front_of_the_seat_removes_exactly_the_seat_echo(seat_case):
    acoustics, clutter = seat_case
    specular = clutter.paths.specular_m[0]
    on_leg = _sphere((SPEAKER + specular) / 2, 0.08)
    room_mask, furniture_mask = body_blocked_paths(acoustics, clutter, on_leg)
    np.testing.assert_array_equal(furniture_mask, [True])
    assert not room_mask[acoustics.paths.order == 0].any()  # the direct path stays
    correction = body_shadow_correction(acoustics, clutter, on_leg)
    furniture_part = correction - acoustics.path_impulse_responses(np.flatnonzero(room_mask), -1.0)
    np.testing.assert_allclose(furniture_part, -clutter.reflection_impulse_responses, rtol=0, atol=1e-14)
    # in-band folded correction (the recorder's), and a body off both legs blocks nothing of the furniture
    folded = body_shadow_correction(acoustics, clutter, on_leg, period=1024)
    assert folded.shape == (1, 1, 1024)
    aside = _sphere([1.0, 1.0, 1.0], 0.08)
    assert not body_blocked_paths(acoustics, clutter, aside)[1].any()


def test_body_shadow_does_not_remove_what_furniture_already_removed(seat_case):
    acoustics, clutter = seat_case
    blocked_by_seat = np.flatnonzero(clutter.room_paths_blocked)
    assert len(blocked_by_seat)  # e.g. the floor reflection under the seat
    # a body around the seat's bottom blocks those paths too, but they are gone already
    around = trimesh.creation.box(extents=[0.8, 0.8, 0.3])
    around.apply_translation([2.0, 2.0, 0.16])
    room_mask, _ = body_blocked_paths(acoustics, clutter, around)
    assert acoustics.blocked_paths(around)[blocked_by_seat].any()
    assert not room_mask[blocked_by_seat].any()


def test_transducer_5_cm_above_a_table_hears_the_table():
    r = 0.9
    table = make_table([2.5, 2.0], top_size_m=(1.2, 0.7), height_m=0.75, material=flat_material("top", 1 - r**2))
    room = ShoeboxRoom(DIMS, materials="painted_plaster", furniture=(table,))
    speaker, mic = np.array([2.5, 2.0, 0.80]), np.array([2.53, 2.0, 0.80])  # co-located, 3 cm apart
    acoustics = _acoustics(room, speaker, mic)
    clutter = compute_clutter(room, acoustics, air_absorption=False)
    length = np.hypot(2 * 0.05, 0.03)
    assert clutter.paths.n_paths == 1 and clutter.faces.names[clutter.paths.face[0]] == "table_0/box0/top"
    np.testing.assert_allclose(clutter.paths.length_m, [length], rtol=1e-12)
    c = acoustics.speed_of_sound_m_s
    position, value = _peak(clutter.reflection_impulse_responses[0, 0], length / c * FS)
    assert abs(position - length / c * FS) < 0.1
    assert value == pytest.approx(PEAK_FRACTION * r / (4 * np.pi * length), rel=0.01)


def test_room_without_furniture_has_no_clutter():
    room = ShoeboxRoom(DIMS, materials="painted_plaster")
    acoustics = _acoustics(room, SPEAKER, MIC)
    clutter = compute_clutter(room, acoustics)
    assert clutter.paths.n_paths == 0 and clutter.faces.n_faces == 0
    assert not clutter.impulse_responses.any() and not clutter.room_paths_blocked.any()
    body = _sphere([3.0, 3.0, 1.3], 0.2)
    np.testing.assert_array_equal(body_shadow_correction(acoustics, clutter, body), acoustics.shadow_correction(body))
    paths = clutter.first_order_images().body_paths(body, tx_offset=1, rx_offset=1)
    assert len(paths.tx_positions_m) == len(paths.rx_positions_m) == len(paths.pairs) == 0


@pytest.mark.parametrize("directivity", [False, True])
def test_walls_plus_clutter_equal_pyroomacoustics_with_furniture_at_order_1(directivity):
    """The general image-source model with the furniture as walls (visibility-checked), order 1: the
    same paths (direct and first-order wall paths the seat does not block, the seat's reflections)."""
    seat = Furniture("seat", (Box([2.0, 2.0, 0.25], [0.6, 0.5, 0.5], 0.4),), get_material("upholstery_leather"))
    table = make_table([3.6, 2.4], yaw_rad=-0.3)
    room = ShoeboxRoom(DIMS, materials="brick", furniture=(seat, table))
    speakers = np.array([[1.2, 1.4, 1.1], [4.2, 2.4, 0.83]])  # the second 8 cm above the table
    mics = np.array([[2.6, 1.6, 0.3], [1.8, 2.9, 1.6], [4.3, 2.4, 0.86]])
    draw = DirectivityModel().draw(np.random.default_rng(3), speakers, mics, [2.5, 2.0, 1.0]) if directivity else None
    reference = _acoustics(room, speakers, mics, air=True, directivity=draw, include_furniture=True)
    walls = _acoustics(room, speakers, mics, air=True, directivity=draw)
    clutter = compute_clutter(room, walls, directivity=draw)
    assert clutter.paths.n_paths >= 2 and clutter.room_paths_blocked.any()
    # path by path: the reference's paths are the unblocked wall paths plus the furniture's reflections
    kept_walls = np.flatnonzero(~clutter.room_paths_blocked)
    ours = [(walls.paths, i) for i in kept_walls]
    ours += [(clutter.reflections.paths, i) for i in range(clutter.paths.n_paths)]
    theirs = reference.paths
    assert len(ours) == theirs.n_paths
    unmatched = set(range(theirs.n_paths))
    for paths, i in ours:
        same_pair = np.flatnonzero(theirs.pair == paths.pair[i])
        j = same_pair[np.argmin(np.linalg.norm(theirs.image_m[same_pair] - paths.image_m[i], axis=1))]
        # pyroomacoustics holds wall corners in float32: its images move by up to ~3e-6 m
        np.testing.assert_allclose(paths.image_m[i], theirs.image_m[j], atol=1e-5)
        np.testing.assert_allclose(paths.band_amplitudes[i], theirs.band_amplitudes[j], rtol=0,
                                   atol=1e-5 * np.abs(theirs.band_amplitudes[j]).max())
        unmatched.discard(int(j))
    assert not unmatched
    # and so the responses (3e-6 m is 1e-3 sample of delay: a relative change of ~3e-3 on a steep flank)
    scale = np.abs(reference.impulse_responses).max()
    np.testing.assert_allclose(walls.impulse_responses + clutter.impulse_responses, reference.impulse_responses,
                               rtol=0, atol=3e-3 * scale)


def test_box_slab_test_agrees_with_triangle_crossings():
    rng = np.random.default_rng(0)
    box = Box([2.0, 2.0, 0.6], [0.9, 0.4, 1.2], 0.7)
    room = ShoeboxRoom(DIMS, furniture=(Furniture("thing", (box,), get_material("wood_16mm")),))
    faces = furniture_faces(room)
    starts = rng.uniform([1.0, 1.0, 0.0], [3.0, 3.0, 1.5], (4000, 3))
    ends = rng.uniform([1.0, 1.0, 0.0], [3.0, 3.0, 1.5], (4000, 3))
    outside = ~box.contains(starts) & ~box.contains(ends)
    starts, ends = starts[outside], ends[outside]
    triangles = np.concatenate([s.triangles_m for s in room.furniture_surfaces()])
    expected = segments_hit_triangles(starts, ends, triangles)
    got = segments_blocked_by_boxes(starts, ends, faces)
    assert expected.sum() > 100
    np.testing.assert_array_equal(got, expected)


def test_body_lit_through_a_large_table_is_the_image_lit_body():
    """Over a table top wider than the whole cone, the speaker's image lights the body exactly where it
    would in free space; a speaker right above the body sees the table under it only through the body."""
    table = make_table([2.5, 2.0], top_size_m=(3.0, 3.0), height_m=0.45, material=flat_material("t", 0.19))
    room = ShoeboxRoom(DIMS, materials="painted_plaster", furniture=(table,))
    speakers = np.array([[0.5, 2.0, 2.5], [2.0, 2.0, 2.0]])
    mics = np.array([[4.0, 1.0, 1.8]])
    acoustics = _acoustics(room, speakers, mics)
    clutter = compute_clutter(room, acoustics)
    body = _sphere([2.0, 2.0, 0.8], 0.1)
    images = clutter.first_order_images()
    top = clutter.faces.names.index("table_0/box0/top")
    paths = images.body_paths(body, tx_offset=2, rx_offset=1)
    # the oblique speaker: every facet its image lights (all above the top) is reached
    image = images.speaker_images_m[0, top]
    lit = body.lit_facets(image[None])[0]
    assert lit.any()
    row = np.flatnonzero((paths.tx_speaker == 0) & (paths.tx_face == top))
    assert len(row) == 1
    np.testing.assert_array_equal(paths.tx_lit[row[0]], lit)
    np.testing.assert_allclose(paths.tx_positions_m[row[0]], [0.5, 2.0, 0.9 - 2.5])
    # the speaker above: its image lights the body's underside, but the way down to the table is the body's
    assert body.lit_facets(images.speaker_images_m[1, top][None]).any()
    assert not ((paths.tx_speaker == 1) & (paths.tx_face == top)).any()
    # pairs: speaker image -> body -> microphone 0, speaker s -> body -> microphone image, gain = R of the face
    first = paths.pairs[:, 0] >= 2
    assert np.all(paths.pairs[first, 1] == 0) and np.all(paths.pairs[~first, 1] >= 1)
    np.testing.assert_allclose(paths.gains[paths.channels == 0][:1], [images.face_reflection[top]])
    assert images.face_reflection[top] == pytest.approx(0.9, abs=1e-12)


def test_body_part_hidden_from_the_reflection_point_is_not_lit():
    """Two spheres over a large table, one in front of the other as seen from the speaker's image: the
    facets the front one hides are not lit through the table, exactly as in free space from the image."""
    table = make_table([2.5, 2.0], top_size_m=(3.0, 3.0), height_m=0.45, material=flat_material("t", 0.19))
    room = ShoeboxRoom(DIMS, materials="painted_plaster", furniture=(table,))
    acoustics = _acoustics(room, np.array([0.5, 2.0, 2.5]), np.array([4.0, 1.0, 1.8]))
    images = compute_clutter(room, acoustics).first_order_images()
    top = images.faces.names.index("table_0/box0/top")
    image = images.speaker_images_m[0, top]
    back = np.array([2.0, 2.0, 0.8])
    front = back + 0.25 * (image - back) / np.linalg.norm(image - back)
    parts = [trimesh.creation.icosphere(subdivisions=3, radius=r).apply_translation(c)
             for c, r in ((back, 0.1), (front, 0.07))]
    body = FacetMesh.from_trimesh(trimesh.util.concatenate(parts))
    lit = body.lit_facets(image[None])[0]
    back_faces = np.arange(body.n_faces) < len(parts[0].faces)
    facing_image = np.einsum("fd,fd->f", image - body.centroids_m, body.normals) > 0
    assert (back_faces & facing_image & ~lit).sum() > 10  # the front sphere hides part of the back one
    reached = images.reaching(body, acoustics.speaker_positions_m, [top])[0]
    # every facet reached is lit from the image (none of the hidden ones); a few lit ones stay dark because the
    # way from the speaker down to their reflection point runs through the front sphere
    assert not (reached & ~lit).any()
    assert reached.sum() >= 0.95 * lit.sum()


def test_furniture_hides_body_facets_from_a_transducer():
    # a shelf 1 m tall between a speaker 1 m high and a sphere centred 1 m high: a straight line from the
    # speaker enters the shelf's slab x = 1.9-2.1 below its top exactly when it ends below z = 1
    shelf = Furniture("shelf", (Box([2.0, 2.0, 0.5], [0.2, 2.0, 1.0]),), get_material("wood_16mm"))
    room = ShoeboxRoom(DIMS, furniture=(shelf,))
    body = _sphere([3.0, 2.0, 1.0], 0.2)
    hidden = facets_hidden_by_furniture(furniture_faces(room), body, [[1.0, 2.0, 1.0], [1.0, 2.0, 2.0]])
    z = body.centroids_m[:, 2]
    clear = np.abs(z - 1.0) > 1e-5
    np.testing.assert_array_equal(hidden[0][clear], (z < 1.0)[clear])
    assert not hidden[1].any()  # from 2 m up, the shelf hides nothing of it


def test_bad_inputs_are_refused(seat_room):
    furnished = _acoustics(seat_room, SPEAKER, MIC, include_furniture=True)
    with pytest.raises(SimulationInputError, match="include_furniture"):
        compute_clutter(seat_room, furnished)
    walls = _acoustics(seat_room, SPEAKER, MIC)
    with pytest.raises(SimulationInputError, match="shadow_max_order"):
        compute_clutter(seat_room, walls, shadow_max_order=-1)
    with pytest.raises(SimulationInputError, match="acoustics"):
        compute_clutter(seat_room, "walls")
    other = _acoustics(seat_room, SPEAKER + [0.1, 0, 0], MIC)
    with pytest.raises(SimulationInputError, match="other room acoustics"):
        body_shadow_correction(other, compute_clutter(seat_room, walls), _sphere([1, 1, 1], 0.1))


# --------------------------------------------------------------------------------------
# same answers: the culled, batched per-frame functions against plain references
# --------------------------------------------------------------------------------------


def _reference_segments_blocked(starts, ends, faces, tolerance_m=1e-6):
    """segments_blocked_by_boxes without its culls: every box's sphere and slab test on every segment."""
    blocked = np.zeros(len(starts), dtype=bool)
    for center, half, rotation in zip(faces.box_centers_m, faces.box_half_sizes_m, faces.box_rotations):
        d = ends - starts
        dd = np.einsum("nd,nd->n", d, d)
        t = np.clip(np.einsum("nd,nd->n", center - starts, d) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
        near = np.flatnonzero(~blocked & (np.linalg.norm(starts + t[:, None] * d - center, axis=1)
                                          < np.linalg.norm(half)))
        s, e = (starts[near] - center) @ rotation, (ends[near] - center) @ rotation
        h = half - tolerance_m
        t0, t1 = np.zeros(len(near)), np.ones(len(near))
        for axis in range(3):
            ds, ss = (e - s)[:, axis], s[:, axis]
            parallel = np.abs(ds) < 1e-15
            with np.errstate(divide="ignore", invalid="ignore"):
                ta, tb = (-h[axis] - ss) / ds, (h[axis] - ss) / ds
            inner = np.abs(ss) < h[axis]
            t0 = np.maximum(t0, np.where(parallel, np.where(inner, -np.inf, np.inf), np.minimum(ta, tb)))
            t1 = np.minimum(t1, np.where(parallel, np.where(inner, np.inf, -np.inf), np.maximum(ta, tb)))
        blocked[near[t0 < t1]] = True
    return blocked


def _reference_reaching(images, mesh, points, face_index):
    """FurnitureImages.reaching as first written: every facet of every (point, face) pair tested, no culls."""
    faces, centroids = images.faces, mesh.centroids_m
    out = np.zeros((len(points), mesh.n_faces), dtype=bool)
    h_c = _plane_distance(faces, centroids)
    for i, (p, k) in enumerate(zip(points, face_index)):
        n = faces.normals[k]
        h_p = float(faces.polygons_m[k, 0] @ n - p @ n)
        if h_p <= 1e-6:
            continue
        image = p + 2.0 * h_p * n
        f = np.flatnonzero(h_c[:, k] > 1e-6)
        f = f[np.einsum("fd,fd->f", image - centroids[f], mesh.normals[f]) > 0]
        t = h_c[f, k] / (h_c[f, k] + h_p)
        x = centroids[f] + t[:, None] * (image - centroids[f])
        inside = _inside_polygon(faces.polygons_m[k], n, x)
        f, x = f[inside], x[inside]
        start = np.broadcast_to(p, x.shape)
        f, x = (a[~(_reference_segments_blocked(start, x, faces) | _reference_segments_blocked(x, centroids[f], faces))]
                for a in (f, x))
        if len(f) == 0:
            continue
        to_facet = centroids[f] - x
        hit = mesh.intersector.intersects_first(x, to_facet / np.linalg.norm(to_facet, axis=1, keepdims=True))
        f, x = f[hit == f], x[hit == f]
        for facet, spec in zip(f, x):   # one ray at a time: the leg p -> specular point clear of the body
            leg = spec - p
            length = np.linalg.norm(leg)
            _, _, where = mesh.intersector.intersects_id(p[None], (leg / length)[None], multiple_hits=False,
                                                         return_locations=True)
            out[i, facet] = not (len(where) and np.linalg.norm(where[0] - p) < length - 1e-6)
    return out


@pytest.fixture(scope="module")
def furnished_scene():
    """A body of two spheres (a torso on a seat, a head above it) among a seat, a table and a shelf, and
    transducers around them: high, low, beside and under the furniture's tops."""
    room = ShoeboxRoom(DIMS, materials="painted_plaster", furniture=(
        make_seat([2.0, 2.0], facing_yaw_rad=0.3), make_table([3.2, 2.2], top_size_m=(1.0, 0.8)),
        make_shelf([4.5, 1.0], yaw_rad=0.2)))
    speakers = np.array([[0.5, 2.0, 2.5], [3.2, 2.2, 0.5], [2.0, 3.5, 1.0], [4.0, 0.8, 1.9]])
    mics = np.array([[4.0, 1.0, 1.8], [1.0, 0.5, 0.3], [3.4, 2.0, 1.2]])
    clutter = compute_clutter(room, _acoustics(room, speakers, mics))
    parts = [trimesh.creation.icosphere(subdivisions=3, radius=r).apply_translation(c)
             for c, r in (([2.0, 2.0, 0.75], 0.25), ([2.05, 1.95, 1.15], 0.12))]
    return room, clutter, FacetMesh.from_trimesh(trimesh.util.concatenate(parts)), speakers, mics


def test_box_culls_keep_every_blocked_segment(furnished_scene):
    room, clutter, body, speakers, mics = furnished_scene
    rng = np.random.default_rng(1)
    starts = rng.uniform([0.1, 0.1, 0.1], DIMS - 0.1, (3000, 3))
    ends = np.r_[rng.uniform([0.1, 0.1, 0.1], DIMS - 0.1, (2000, 3)), body.centroids_m[:1000]]
    expected = _reference_segments_blocked(starts, ends, clutter.faces)
    assert 100 < expected.sum() < len(expected) - 100
    np.testing.assert_array_equal(segments_blocked_by_boxes(starts, ends, clutter.faces), expected)
    # one segment at a time, the segments' bounding box is as tight as it gets: short segments near the boxes'
    # corners and edges, where a box's bounding sphere and the segment's box only just overlap
    corners = np.array([c + rotation @ (half * sign) for c, half, rotation in zip(
        clutter.faces.box_centers_m, clutter.faces.box_half_sizes_m, clutter.faces.box_rotations)
        for sign in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T])
    near_starts = corners[rng.integers(len(corners), size=600)] + rng.normal(0.0, 0.05, (600, 3))
    near_ends = near_starts + rng.normal(0.0, 0.05, (600, 3))
    expected = _reference_segments_blocked(near_starts, near_ends, clutter.faces)
    assert expected.sum() > 20
    got = [segments_blocked_by_boxes(a[None], b[None], clutter.faces)[0] for a, b in zip(near_starts, near_ends)]
    np.testing.assert_array_equal(got, expected)


def test_hidden_facets_are_those_of_the_plain_segment_test(furnished_scene):
    room, clutter, body, speakers, mics = furnished_scene
    points = np.vstack([speakers, mics])
    expected = np.array([_reference_segments_blocked(np.broadcast_to(p, body.centroids_m.shape), body.centroids_m,
                                                     clutter.faces) for p in points])
    assert expected.any(axis=1).sum() >= 2 and (~expected).any(axis=1).all()
    np.testing.assert_array_equal(facets_hidden_by_furniture(clutter.faces, body, points), expected)


def test_reaching_is_the_plain_per_facet_test(furnished_scene):
    """Same facets reached as testing every facet of every (transducer, face) pair and casting the legs' rays
    one at a time: the culls (body cubes outside a face's pyramid, boxes far from the segments) and the
    batched ray casts drop nothing and add nothing."""
    room, clutter, body, speakers, mics = furnished_scene
    images = clutter.first_order_images()
    s_of, k_of = np.nonzero(images.speaker_valid)
    m_of, j_of = np.nonzero(images.microphone_valid)
    points, face_index = np.vstack([speakers[s_of], mics[m_of]]), np.r_[k_of, j_of]
    expected = _reference_reaching(images, body, points, face_index)
    got = images.reaching(body, points, face_index)
    assert expected.any(axis=1).sum() >= 4 and expected.sum() > 200  # several faces reach the body
    np.testing.assert_array_equal(got, expected)
    paths = images.body_paths(body, tx_offset=len(speakers), rx_offset=len(mics))
    np.testing.assert_array_equal(np.vstack([paths.tx_lit, paths.rx_lit]), expected[expected.any(axis=1)])
