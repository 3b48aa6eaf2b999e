"""Body echo (time-domain physical optics): normalisation, delays, hidden surfaces, API."""

import numpy as np
import pytest
import scipy.fft
import trimesh

from simulator.body_echo import (
    FacetMesh,
    body_impulse_responses,
    output_lowpass,
    point_impulse_response,
)
from simulator.errors import SimulationInputError
from simulator.signals import band_window

FS = 96_000.0
C = 343.0
BAND = (19_000.0, 32_000.0)


def square(centre, half_size, normal):
    """Square of two triangles, counter-clockwise seen from the side ``normal`` points to."""
    normal = np.asarray(normal, float) / np.linalg.norm(normal)
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    corners = [np.asarray(centre, float) + half_size * (a * u + b * v) for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    vertices = np.array(corners)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    # make sure the winding gives the requested normal
    if np.cross(vertices[1] - vertices[0], vertices[2] - vertices[0]) @ normal < 0:
        faces = faces[:, ::-1].copy()
    return vertices, faces


def merge(*parts):
    vertices, faces, offset = [], [], 0
    for v, f in parts:
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    return FacetMesh(np.vstack(vertices), np.vstack(faces), open_surface=True)  # squares are open plates


def band_analytic(ir, n_fft):
    """Analytic signal of ``ir`` restricted to 19-32 kHz: (len(ir),) complex."""
    f_hz = np.fft.rfftfreq(n_fft, 1 / FS)
    spectrum = scipy.fft.rfft(ir, n_fft) * band_window(f_hz, BAND, 1_000.0)
    full = np.zeros(n_fft, complex)
    full[: len(spectrum)] = 2 * spectrum
    return np.fft.ifft(full)[: len(ir)]


def band_analytic_of_spectrum(spectrum_fn, n_samples, n_fft):
    f_hz = np.fft.rfftfreq(n_fft, 1 / FS)
    spectrum = spectrum_fn(f_hz) * band_window(f_hz, BAND, 1_000.0)
    full = np.zeros(n_fft, complex)
    full[: len(spectrum)] = 2 * spectrum
    return np.fft.ifft(full)[:n_samples]


def test_large_flat_facet_gives_the_image_source():
    """A 2 x 2 m square at 1 m, normal to the line of sight: echo = image source in band."""
    mesh = merge(square((0, 0, 0), 1.0, (0, 0, 1)))
    s = np.array([0.05, -0.02, 1.0])
    r = np.array([-0.1, 0.08, 1.1])
    n_samples = 1500
    echo = body_impulse_responses(mesh, s, r, n_samples, reflection_coefficient=1.0)
    path_m = np.linalg.norm(s * [1, 1, -1] - r)
    n_fft = 4096
    model = band_analytic(echo.impulse_responses[0], n_fft)
    image = band_analytic_of_spectrum(
        lambda f: np.exp(-2j * np.pi * f * path_m / C) / (4 * np.pi * path_m), n_samples, n_fft
    )
    peak = int(np.argmax(np.abs(image)))
    gate = slice(peak - 24, peak + 25)
    energy_db = 10 * np.log10(np.sum(np.abs(model[gate]) ** 2) / np.sum(np.abs(image[gate]) ** 2))
    assert abs(energy_db) < 0.05
    assert abs(int(np.argmax(np.abs(model))) - path_m / C * FS) <= 1.0
    # waveform, not only energy: the specular part matches sample by sample
    assert np.max(np.abs(model[gate] - image[gate])) < 0.03 * np.max(np.abs(image))


def test_small_facet_matches_the_point_scatterer_formula():
    """A 4 mm facet is much smaller than a Fresnel zone: H = jk/(16 pi^2) A (cos_s + cos_r) e^{-jkL}/(R_s R_r)."""
    p = np.array([0.3, -0.2, 0.1])
    s = np.array([1.2, 0.4, 1.0])
    r = np.array([-0.5, 0.9, 1.3])
    normal = (s - p) / np.linalg.norm(s - p) + (r - p) / np.linalg.norm(r - p) + np.array([0.2, -0.1, 0.0])
    normal /= np.linalg.norm(normal)
    half = 0.002
    mesh = merge(square(p, half, normal))
    area = (2 * half) ** 2
    r_s, r_r = np.linalg.norm(s - p), np.linalg.norm(r - p)
    cosines = normal @ (s - p) / r_s + normal @ (r - p) / r_r
    n_samples = 1200
    echo = body_impulse_responses(mesh, s, r, n_samples, reflection_coefficient=1.0)
    delay_s = (r_s + r_r) / C

    def point_formula(f_hz):
        k = 2 * np.pi * f_hz / C
        return 1j * k / (16 * np.pi**2) * area * cosines * np.exp(-1j * k * (r_s + r_r)) / (r_s * r_r)

    n_fft = 4096
    model = band_analytic(echo.impulse_responses[0], n_fft)
    reference = band_analytic_of_spectrum(point_formula, n_samples, n_fft)
    assert np.max(np.abs(model - reference)) < 0.01 * np.max(np.abs(reference))
    # arrival time of the specular echo = (|s - p| + |r - p|) / c within one sample
    assert abs(np.argmax(np.abs(model)) - delay_s * FS) <= 1.0
    # over the full output band (up to 48 kHz) a 0.5 mm facet is a point: the response is the
    # band-limited derivative of a delta (the documented low-pass definition)
    tiny_half = 0.00025
    tiny = body_impulse_responses(merge(square(p, tiny_half, normal)), s, r, n_samples, reflection_coefficient=1.0)
    f_hz = np.fft.rfftfreq(n_fft, 1 / FS)
    scale = (2 * tiny_half) ** 2 / area
    expected = np.fft.irfft(scale * point_formula(f_hz) * output_lowpass(f_hz, FS), n_fft)[:n_samples]
    # (tolerance: aliasing of the 8x oversampled grid is ~(f / 8 fs)^2, -50 dB at 38 kHz)
    np.testing.assert_allclose(tiny.impulse_responses[0], expected, atol=5e-3 * np.abs(expected).max())


def test_facet_hidden_behind_another_is_excluded():
    s = np.array([0.0, 0.0, 2.0])
    front = square((0, 0, 1.0), 0.5, (0, 0, 1))
    back = square((0.05, 0, 0.5), 0.2, (0, 0, 1))  # entirely in the shadow of the front square
    both = body_impulse_responses(merge(front, back), s, s, 2000, reflection_coefficient=1.0)
    front_only = body_impulse_responses(merge(front), s, s, 2000, reflection_coefficient=1.0)
    back_only = body_impulse_responses(merge(back), s, s, 2000, reflection_coefficient=1.0)
    assert np.abs(back_only.impulse_responses).max() > 0.1 * np.abs(front_only.impulse_responses).max()
    np.testing.assert_array_equal(both.impulse_responses, front_only.impulse_responses)
    assert both.n_lit_facets[0] == 2


def test_visibility_requires_both_transmitter_and_receiver():
    target = square((0, 0, 0), 0.05, (0, 0, 1))
    s = np.array([-1.0, 0.0, 1.0])
    r = np.array([1.0, 0.0, 1.0])
    # occluder between the target and r, facing r but turned away from s: lit by s? no
    occluder = square((0.5, 0.0, 0.5), 0.15, (1, 0, 1))
    open_view = body_impulse_responses(merge(target), s, r, 1500, reflection_coefficient=1.0)
    assert np.abs(open_view.impulse_responses).max() > 0
    blocked_rx = body_impulse_responses(merge(target, occluder), s, r, 1500, reflection_coefficient=1.0)
    assert np.all(blocked_rx.impulse_responses == 0)
    blocked_tx = body_impulse_responses(merge(target, occluder), r, s, 1500, reflection_coefficient=1.0)
    assert np.all(blocked_tx.impulse_responses == 0)
    # a receiver behind the target's plane: the facet does not face it
    behind = body_impulse_responses(merge(target), s, np.array([1.0, 0.0, -1.0]), 1500)
    assert np.all(behind.impulse_responses == 0)


def test_linear_in_reflection_coefficient():
    mesh = FacetMesh.from_trimesh(trimesh.creation.icosphere(subdivisions=3, radius=0.2))
    s = np.array([[1.0, 0.2, 0.1], [0.3, 1.4, -0.2]])
    r = np.array([[0.9, -0.3, 0.4]])
    full = body_impulse_responses(mesh, s, r, 1500, reflection_coefficient=1.0).impulse_responses
    half = body_impulse_responses(mesh, s, r, 1500, reflection_coefficient=0.5).impulse_responses
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-15)
    per_facet = np.full(mesh.n_faces, 0.5)
    per_facet[: mesh.n_faces // 2] = 0.0
    first_half_off = body_impulse_responses(mesh, s, r, 1500, reflection_coefficient=per_facet).impulse_responses
    other = per_facet.copy()
    other[: mesh.n_faces // 2] = 0.5
    other[mesh.n_faces // 2 :] = 0.0
    second_half_off = body_impulse_responses(mesh, s, r, 1500, reflection_coefficient=other).impulse_responses
    np.testing.assert_allclose(first_half_off + second_half_off, half, atol=1e-12 * np.abs(full).max())


def test_pairs_channels_and_gains():
    mesh = FacetMesh.from_trimesh(trimesh.creation.icosphere(subdivisions=3, radius=0.2))
    tx = np.array([[1.0, 0.0, 0.0], [0.0, 1.5, 0.0]])
    rx = np.array([[1.1, 0.1, 0.0], [0.2, 1.2, 0.3], [-1.0, 0.5, 0.2]])
    all_pairs = body_impulse_responses(mesh, tx, rx, 1200)
    assert all_pairs.impulse_responses.shape == (6, 1200)
    np.testing.assert_array_equal(all_pairs.pairs, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    single = body_impulse_responses(mesh, tx[1], rx[2], 1200)
    # equal up to the band-limiting kernel's tails beyond the (call-dependent) FFT window: < 1e-4
    tails = 1e-4 * np.abs(single.impulse_responses).max()
    np.testing.assert_allclose(all_pairs.impulse_responses[5], single.impulse_responses[0], atol=tails)
    summed = body_impulse_responses(
        mesh, tx, rx, 1200, pairs=np.array([[0, 0], [1, 2], [1, 1]]), channels=np.array([1, 1, 0]),
        pair_gains=np.array([1.0, -0.5, 2.0]),
    )
    expected = all_pairs.impulse_responses[0] - 0.5 * all_pairs.impulse_responses[5]
    np.testing.assert_allclose(summed.impulse_responses[1], expected, atol=tails)
    np.testing.assert_allclose(summed.impulse_responses[0], 2 * all_pairs.impulse_responses[4], atol=2 * tails)


def test_oversampling_has_converged_in_band():
    mesh = FacetMesh.from_trimesh(trimesh.creation.icosphere(subdivisions=4, radius=0.15))
    s, r = np.array([1.0, 0.0, 0.0]), np.array([0.6, 0.9, 0.1])
    n_fft = 4096
    coarse = band_analytic(body_impulse_responses(mesh, s, r, 1200, oversampling=8).impulse_responses[0], n_fft)
    fine = band_analytic(body_impulse_responses(mesh, s, r, 1200, oversampling=32).impulse_responses[0], n_fft)
    assert np.max(np.abs(coarse - fine)) < 10 ** (-40 / 20) * np.max(np.abs(fine))


def test_direct_path_normalisation_matches_pyroomacoustics_convention():
    distance_m = 2.345
    ir = point_impulse_response([distance_m / C], [1 / (4 * np.pi * distance_m)], 2048, FS)
    assert ir.sum() == pytest.approx(1 / (4 * np.pi * distance_m), rel=1e-6)
    assert abs(np.argmax(ir) - distance_m / C * FS) <= 0.5


def test_echo_outside_the_output_window_is_dropped_cleanly():
    mesh = merge(square((0, 0, 0), 0.3, (0, 0, 1)))
    s = np.array([0.0, 0.0, 3.0])  # echo at 6 m -> 1679 samples
    short = body_impulse_responses(mesh, s, s, 1000)
    assert np.all(short.impulse_responses == 0) or np.abs(short.impulse_responses).max() < 1e-9
    long = body_impulse_responses(mesh, s, s, 2000)
    assert abs(np.argmax(np.abs(long.impulse_responses[0])) - 6.0 / C * FS) <= 2


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"tx_positions_m": np.zeros((2, 2))}, "tx_positions_m"),
        ({"rx_positions_m": [[np.nan, 0, 0]]}, "rx_positions_m"),
        ({"n_samples": 0}, "n_samples"),
        ({"sample_rate_hz": -1.0}, "sample_rate_hz"),
        ({"speed_of_sound_m_s": 0.0}, "speed_of_sound_m_s"),
        ({"reflection_coefficient": 1.5}, "reflection_coefficient"),
        ({"reflection_coefficient": np.ones(3)}, "reflection_coefficient"),
        ({"pairs": np.array([[0, 5]])}, "pairs"),
        ({"channels": np.array([0, 1])}, "channels"),
        ({"pair_gains": np.ones(3)}, "pair_gains"),
        ({"oversampling": 2}, "oversampling"),
        ({"lit": np.ones((1, 2), bool)}, "lit"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(kwargs, field):
    mesh = merge(square((0, 0, 0), 0.3, (0, 0, 1)))
    arguments = {"tx_positions_m": [[0, 0, 1.0]], "rx_positions_m": [[0, 0.1, 1.0]], "n_samples": 1000}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=field):
        body_impulse_responses(mesh, **arguments)


def test_bad_mesh_is_rejected():
    with pytest.raises(ValueError, match="faces"):
        FacetMesh(np.zeros((3, 3)), np.array([[0, 1, 3]]))
    with pytest.raises(ValueError, match="vertices_m"):
        FacetMesh(np.zeros((3, 2)), np.array([[0, 1, 2]]))


# -- meshes the model cannot handle: refused, never a silent all-zero echo ----------------------
SOURCE = np.array([1.0, 0.2, 0.1])
RECEIVER = np.array([0.9, -0.3, 0.4])


def sphere(radius=0.2):
    return trimesh.creation.icosphere(subdivisions=3, radius=radius)


def test_a_closed_sphere_gives_its_specular_echo():
    echo = body_impulse_responses(sphere(), SOURCE, SOURCE, 1500, reflection_coefficient=1.0)
    envelope = np.abs(band_analytic(echo.impulse_responses[0], 4096))
    # monostatic: the specular point is the nearest one, 2 (d - a) of path
    arrival = 2 * (np.linalg.norm(SOURCE) - 0.2) / C * FS
    assert abs(np.argmax(envelope) - arrival) <= 1.0
    assert echo.n_lit_facets[0] > 0


@pytest.mark.parametrize("removed", [1, 5])
def test_an_open_mesh_is_refused_with_its_boundary_edges_counted(removed):
    closed = sphere()
    holed = trimesh.Trimesh(closed.vertices, closed.faces[removed:], process=False)
    assert not holed.is_watertight
    # the boundary: edges of exactly one face (trimesh's own count)
    _, uses = np.unique(holed.edges_sorted, axis=0, return_counts=True)
    boundary = int(np.sum(uses == 1))
    assert boundary >= 3
    with pytest.raises(SimulationInputError,
                       match=rf"mesh is open \({boundary} boundary edges\).*fill_holes.*open_surface=True"):
        body_impulse_responses(holed, SOURCE, RECEIVER, 1500)
    # declared a thin open surface, it is modelled (it still reflects)
    echo = body_impulse_responses(FacetMesh.from_trimesh(holed, open_surface=True), SOURCE, RECEIVER, 1500)
    assert np.abs(echo.impulse_responses).max() > 0


def test_an_inside_out_mesh_is_refused():
    flipped = trimesh.Trimesh(sphere().vertices, sphere().faces[:, ::-1], process=False)
    assert flipped.volume < 0
    with pytest.raises(SimulationInputError, match=r"mesh is inside out \(negative signed volume.*flip its faces"):
        body_impulse_responses(flipped, SOURCE, RECEIVER, 1500)


def test_a_mesh_wound_inconsistently_is_refused():
    faces = sphere().faces.copy()
    faces[7] = faces[7, ::-1]
    with pytest.raises(SimulationInputError, match=r"wound inconsistently \(3 edges.*fix_winding"):
        FacetMesh(sphere().vertices, faces)


def test_a_transducer_inside_the_mesh_is_refused_by_name_and_index():
    mesh = FacetMesh.from_trimesh(sphere())
    inside = r"tx_positions_m\[0\] = \(0\.000, 0\.000, 0\.000\) lies inside the body mesh: move it outside"
    with pytest.raises(SimulationInputError, match=inside):
        body_impulse_responses(mesh, [0.0, 0.0, 0.0], RECEIVER, 1500)
    # inside the bounding box but outside the sphere (a corner of the box) is fine
    corner = np.array([0.18, 0.18, 0.0])
    assert np.linalg.norm(corner) > 0.2
    with pytest.raises(SimulationInputError, match=r"rx_positions_m\[1\].*inside the body mesh"):
        body_impulse_responses(mesh, SOURCE, [corner, [0.0, 0.05, 0.02]], 1500)
    assert np.abs(body_impulse_responses(mesh, SOURCE, corner, 1500).impulse_responses).max() > 0


def test_patches_group_the_facets_whose_centroids_share_a_cube():
    """FacetMesh.patches labels facets as a row-wise unique of their centroid cells would (the definition),
    and the patched visibility lights, per patch, every facing facet of a patch whose representative is seen."""
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.3)
    facets = FacetMesh(np.asarray(mesh.vertices) + [1.0, 2.0, 1.0], np.asarray(mesh.faces))
    for size_m in (0.025, 0.07, 1.0):
        cells = np.floor(facets.centroids_m / size_m).astype(np.int64)
        _, expected = np.unique(cells, axis=0, return_inverse=True)
        np.testing.assert_array_equal(facets.patches(size_m), expected.ravel())
    position = np.array([[1.0, 0.5, 1.0]])
    exact, patched = facets.lit_facets(position)[0], facets.lit_facets(position, patch_size_m=0.07)[0]
    facing = np.einsum("ij,ij->i", facets.centroids_m - position[0], facets.normals) < 0
    assert not (patched & ~facing).any()                      # only facing facets are lit
    labels = facets.patches(0.07)
    for patch in np.unique(labels[patched]):                   # a lit patch lights all its facing facets
        assert patched[facing & (labels == patch)].all()
    # a convex sphere hides nothing from outside: both tests light exactly the facing facets
    np.testing.assert_array_equal(exact, facing)
    np.testing.assert_array_equal(patched, facing)


# -- visibility: the batched FacetMesh.lit_facets gives the answers of a plain loop, bit for bit --
def reference_lit_facets(mesh, positions, patch_size_m=None):
    """The plain definition, one position at a time (the implementation before batching): the facing test
    per position, one ray per facing facet (or per patch: its facing facet of lowest index)."""
    positions = np.atleast_2d(np.asarray(positions, float))
    lit = np.zeros((len(positions), mesh.n_faces), dtype=bool)
    patch = None if patch_size_m is None else mesh.patches(patch_size_m)
    for i, p in enumerate(positions):
        to_facet = mesh.centroids_m - p
        facing = np.einsum("ij,ij->i", to_facet, mesh.normals) < 0
        if not facing.any():
            continue
        cast = np.flatnonzero(facing)
        if patch is not None:
            _, first = np.unique(patch[cast], return_index=True)
            cast = cast[first]
        directions = to_facet[cast]
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        hit = mesh.intersector.intersects_first(np.broadcast_to(p, directions.shape), directions)
        seen = cast[hit == cast]
        if patch is None:
            lit[i, seen] = True
        else:
            visible_patch = np.zeros(patch.max() + 1, dtype=bool)
            visible_patch[patch[seen]] = True
            lit[i] = facing & visible_patch[patch]
    return lit


def posed_body_like_mesh() -> FacetMesh:
    """An ellipsoid, a sphere and a box (a torso, a head, an arm against the torso), room frame: parts hide
    each other, and the box's faces are axis aligned (exact zeros in the facing test from their planes)."""
    torso = trimesh.creation.icosphere(subdivisions=4, radius=0.25)
    torso.apply_transform(np.diag([0.8, 0.6, 2.4, 1.0]))
    head = trimesh.creation.icosphere(subdivisions=3, radius=0.11)
    head.apply_translation([0.0, 0.0, 0.75])
    arm = trimesh.creation.box(extents=[0.1, 0.1, 0.6])
    arm.apply_translation([0.0, -0.2, 0.1])
    body = trimesh.util.concatenate([torso, head, arm])
    return FacetMesh(np.asarray(body.vertices) + [2.0, 1.5, 1.0], np.asarray(body.faces))


def visibility_positions(mesh: FacetMesh, rng) -> np.ndarray:
    """Transducer-like points around the mesh, wall-image-like far points, and points on facets' planes
    (where the facing test's sign is decided by rounding: the batched test's exact fallback)."""
    centre = mesh.centroids_m.mean(axis=0)
    directions = rng.normal(size=(40, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    near = centre + directions * rng.uniform(0.6, 3.0, size=(40, 1))
    far = centre + directions[:20] * rng.uniform(4.0, 12.0, size=(20, 1))
    facets = rng.choice(mesh.n_faces, 30, replace=False)
    in_plane = np.cross(mesh.normals[facets], rng.normal(size=(30, 3)))
    on_planes = mesh.centroids_m[facets] + in_plane * (1.5 / np.linalg.norm(in_plane, axis=1, keepdims=True))
    box_plane = np.array([[2.05, 0.2, 1.1], [2.05, -0.2, 1.4], [3.0, 1.25, 1.1]])   # the arm's x and y faces' planes
    return np.vstack([near, far, on_planes, box_plane])


def test_facing_is_the_per_position_einsum_bit_for_bit():
    mesh = posed_body_like_mesh()
    positions = visibility_positions(mesh, np.random.default_rng(0))
    expected = np.stack([np.einsum("ij,ij->i", mesh.centroids_m - p, mesh.normals) < 0 for p in positions])
    np.testing.assert_array_equal(mesh.facing(positions), expected)
    # the fallback is exercised: some facets lie (nearly) in a position's plane
    scores = np.stack([np.einsum("ij,ij->i", mesh.centroids_m - p, mesh.normals) for p in positions])
    assert np.any(np.abs(scores) < 1e-14)


@pytest.mark.parametrize("patch_size_m", [None, 0.025, 0.07])
def test_lit_facets_equals_the_per_position_loop(patch_size_m):
    mesh = posed_body_like_mesh()
    positions = visibility_positions(mesh, np.random.default_rng(1))
    expected = reference_lit_facets(mesh, positions, patch_size_m)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(mesh.lit_facets(positions, patch_size_m), expected)
    # several blocks of positions (one Embree call each) and a single position give the same rows
    import simulator.body_echo as body_echo

    copies = body_echo._LIT_BLOCK_POSITIONS // len(positions) + 2
    many = np.vstack([positions] * copies)
    np.testing.assert_array_equal(mesh.lit_facets(many, patch_size_m), np.vstack([expected] * copies))
    np.testing.assert_array_equal(mesh.lit_facets(positions[3], patch_size_m), expected[3:4])


def test_lit_facets_of_a_posed_body_equal_the_per_position_loop(anny_sampler):
    from bodies import Subject

    body = anny_sampler.pose(Subject(age_years=30, sex="male", stature_m=1.75), {}, "standing", heading_rad=0.4)
    mesh = FacetMesh(body.vertices.astype(float) + [2.0, 1.5, 0.0], body.faces)
    positions = visibility_positions(mesh, np.random.default_rng(2))[::2]
    for patch_size_m in (None, 0.025):
        np.testing.assert_array_equal(mesh.lit_facets(positions, patch_size_m),
                                      reference_lit_facets(mesh, positions, patch_size_m))


def test_nothing_faces_a_position_gives_an_empty_mask():
    mesh = merge(square([0.0, 0.0, 0.0], 0.1, [0.0, 0.0, 1.0]))
    np.testing.assert_array_equal(mesh.lit_facets([[0.0, 0.0, -1.0]], 0.05), np.zeros((1, 2), bool))
    np.testing.assert_array_equal(mesh.lit_facets([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]), [[False, False], [True, True]])


def reference_slab_boxes(mesh, n_slabs, eps):
    """The plain per-slab loop (what simulator.room_acoustics computed before FacetMesh.slab_boxes)."""
    triangles = mesh.vertices_m[mesh.faces]
    face_lo, face_hi = triangles.min(axis=1), triangles.max(axis=1)
    lo, hi = face_lo.min(axis=0) - eps, face_hi.max(axis=0) + eps
    edges = np.linspace(lo[2], hi[2], n_slabs + 1)
    slab_lo, slab_hi = [], []
    for z0, z1 in zip(edges[:-1], edges[1:]):
        sel = (face_hi[:, 2] >= z0) & (face_lo[:, 2] <= z1)
        if not sel.any():
            continue
        a, b = face_lo[sel].min(axis=0) - eps, face_hi[sel].max(axis=0) + eps
        a[2], b[2] = max(a[2], z0 - eps), min(b[2], z1 + eps)
        slab_lo.append(a)
        slab_hi.append(b)
    return lo, hi, np.array(slab_lo), np.array(slab_hi)


@pytest.mark.parametrize("n_slabs", [1, 8, 40])
def test_slab_boxes_equal_the_per_slab_loop(n_slabs):
    """FacetMesh.slab_boxes (cached, for the shadowing's pruning) gives the per-slab loop's numbers; with 40
    slabs on the small sphere some slabs hold no face centre and many faces reach two slabs."""
    flat = merge(square([0.0, 0.0, 1.0], 0.1, [0.0, 0.0, 1.0]))   # every face in one z plane
    for mesh in (posed_body_like_mesh(), flat, FacetMesh.from_trimesh(sphere())):
        expected = reference_slab_boxes(mesh, n_slabs, 1e-6)
        for _ in range(2):   # computed, then from the cache
            got = mesh.slab_boxes(n_slabs, 1e-6)
            for g, e in zip(got, expected):
                assert g.dtype == e.dtype and g.shape == e.shape
                np.testing.assert_array_equal(g, e)
            got[2][:] = 0.0   # the caller's copy: the cache is untouched


def test_the_closed_mesh_check_remembers_only_closed_topologies():
    closed = sphere()
    FacetMesh.from_trimesh(closed)
    FacetMesh.from_trimesh(closed)   # the same faces: remembered as closed
    faces = np.array(closed.faces)
    faces[7] = faces[7, ::-1]
    for _ in range(2):   # a defect found each time, never remembered
        with pytest.raises(SimulationInputError, match="wound inconsistently"):
            FacetMesh(closed.vertices, faces)
    with pytest.raises(SimulationInputError, match="mesh is open"):   # same faces, one fewer: a different topology
        FacetMesh(closed.vertices, closed.faces[1:])
