"""simulator.clothing: regions of a body's surface, drawn outfits, and the dressed surface's echo."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import trimesh

from bodies import Subject
from bodies.joints import JOINT_INDEX, JOINT_NAMES
from simulator.body_echo import body_impulse_responses
from simulator.clothing import _BONES, REGIONS, ClothingDraw, ClothingModel, dress, facet_regions, vertex_normals
from simulator.errors import SimulationInputError

FS, C = 96_000.0, 343.0


def _uniform(reflection: float, offset_m: float) -> ClothingDraw:
    return ClothingDraw("long", "trousers", (reflection,) * len(REGIONS), (offset_m,) * len(REGIONS))


def _sphere(radius_m: float):
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=radius_m)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def _monostatic_echo(vertices, faces, reflection) -> np.ndarray:
    tx, rx = np.array([[2.0, 0.0, 0.0]]), np.array([[2.0, 0.0, 0.02]])
    return body_impulse_responses(trimesh.Trimesh(vertices, faces, process=False), tx, rx, 2048, sample_rate_hz=FS,
                                  speed_of_sound_m_s=C, reflection_coefficient=reflection).impulse_responses[0]


def _peak_samples(response: np.ndarray) -> float:
    """Sub-sample time of the band-limited envelope's peak (32x upsampled)."""
    fine = np.abs(scipy.signal.hilbert(scipy.signal.resample(response, 32 * len(response))))
    return np.argmax(fine) / 32


def test_an_offset_garment_moves_a_spheres_echo_to_the_larger_spheres_delay():
    """Every vertex of a sphere of radius a moved out by d: the surface is the sphere of radius a + d, whose
    monostatic specular echo arrives 2 d / c earlier (closed form) with the textile's coefficient as its gain."""
    a, d = 0.15, 0.02
    vertices, faces = _sphere(a)
    joints = np.zeros((15, 3))
    dressed, reflection = dress(vertices, faces, joints, _uniform(0.7, d))
    np.testing.assert_allclose(np.linalg.norm(dressed, axis=1), a + d, atol=2e-4)     # radial normals
    assert np.all(reflection == 0.7)
    bare = _monostatic_echo(vertices, faces, 1.0)
    clothed = _monostatic_echo(dressed, faces, reflection)
    larger = _monostatic_echo(*_sphere(a + d), 1.0)
    assert _peak_samples(bare) - _peak_samples(clothed) == pytest.approx(2 * d / C * FS, abs=0.1)
    assert _peak_samples(clothed) == pytest.approx(_peak_samples(larger), abs=0.05)
    np.testing.assert_allclose(clothed, 0.7 * larger, atol=0.01 * np.abs(larger).max())
    undressed, _ = dress(vertices, faces, joints, _uniform(0.7, 0.0))
    np.testing.assert_array_equal(undressed, vertices)


def test_a_regions_coefficient_changes_the_echo_only_at_that_regions_delays(anny_sampler):
    """A body whose hands are dressed in an absorber (R = 0): the echo loses exactly what arrives within the hand
    facets' path delays (|tx - p| + |p - rx|) / c, plus the band-limited pulse's width, and nothing elsewhere."""
    body = anny_sampler.sample(np.random.default_rng(2), Subject(30, "male", 1.75), activity="standing",
                               heading_rad=0.0)
    vertices, faces, joints = body.vertices.astype(float), body.faces, body.joints
    centre = vertices.mean(axis=0)
    tx = centre + np.array([[2.5, 0.3, 0.2]])
    rx = tx + np.array([[0.0, 0.0, 0.02]])
    bare = ClothingDraw("long", "trousers", (1.0,) * len(REGIONS), (0.0,) * len(REGIONS))
    gloves = ClothingDraw("long", "trousers", tuple(0.0 if r == "hands" else 1.0 for r in REGIONS), (0.0,) * 8)

    def echo(draw):
        v, reflection = dress(vertices, faces, joints, draw)
        return body_impulse_responses(trimesh.Trimesh(v, faces, process=False), tx, rx, 4096, sample_rate_hz=FS,
                                      speed_of_sound_m_s=C, reflection_coefficient=reflection).impulse_responses[0]

    lost = echo(bare) - echo(gloves)
    hands = facet_regions(vertices, faces, joints) == REGIONS.index("hands")
    centroids = vertices[faces].mean(axis=1)[hands]
    delays = (np.linalg.norm(centroids - tx, axis=1) + np.linalg.norm(centroids - rx, axis=1)) / C * FS
    pulse = 64                                                   # the output low-pass's half-length and more
    inside = np.zeros(len(lost), bool)
    inside[int(delays.min()) - pulse:int(delays.max()) + pulse] = True
    assert np.abs(lost[inside]).max() > 0.01 * np.abs(echo(bare)).max()      # the hands do echo
    assert np.abs(lost[~inside]).max() < 1e-3 * np.abs(lost).max()         # (the pulse's far tails: 3e-5)


def test_regions_of_a_posed_body_lie_where_its_joints_are(anny_sampler):
    rng = np.random.default_rng(4)
    body = anny_sampler.sample(rng, Subject(30, "female", 1.65), activity="standing")
    vertices, faces, joints = body.vertices.astype(float), body.faces, body.joints
    regions = facet_regions(vertices, faces, joints)
    centroids = vertices[faces].mean(axis=1)

    def region_near(point):
        return REGIONS[regions[np.argmin(np.linalg.norm(centroids - point, axis=1))]]

    j = {name: joints[i] for name, i in JOINT_INDEX.items()}
    for side in ("r", "l"):
        assert region_near((j[f"{side}_shoulder"] + j[f"{side}_elbow"]) / 2) == "upper_arms"
        assert region_near((j[f"{side}_elbow"] + j[f"{side}_wrist"]) / 2) == "forearms"
        assert region_near((j[f"{side}_hip"] + j[f"{side}_knee"]) / 2) == "thighs"
        assert region_near((j[f"{side}_knee"] + j[f"{side}_ankle"]) / 2) == "shins"
        beyond_wrist = j[f"{side}_wrist"] + 0.08 * (j[f"{side}_wrist"] - j[f"{side}_elbow"]) / np.linalg.norm(
            j[f"{side}_wrist"] - j[f"{side}_elbow"])
        assert region_near(beyond_wrist) == "hands"
    assert region_near((j["pelvis"] + j["neck"]) / 2) == "torso"
    assert region_near(j["head"]) == "head"
    assert REGIONS[regions[np.argmin(centroids[:, 2])]] == "feet"            # the sole
    areas = trimesh.Trimesh(vertices, faces, process=False).area_faces
    share = {name: areas[regions == i].sum() / areas.sum() for i, name in enumerate(REGIONS)}
    assert 0.2 < share["torso"] < 0.5 and 0.03 < share["head"] < 0.15 and 0.01 < share["hands"] < 0.08
    # outward normals: moving every vertex 1 mm along its normal grows the volume by area x 1 mm (first order)
    grown = trimesh.Trimesh(vertices + 1e-3 * vertex_normals(vertices, faces), faces, process=False)
    body_mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert (grown.volume - body_mesh.volume) == pytest.approx(1e-3 * body_mesh.area, rel=0.05)


def test_drawn_outfits_cover_what_their_garments_cover():
    model = ClothingModel()
    draws = [model.draw(np.random.default_rng(seed)) for seed in range(300)]
    assert {d.sleeves for d in draws} == {"sleeveless", "short", "long"} and {d.bottom for d in draws} == {
        "shorts", "trousers"}
    r = {name: i for i, name in enumerate(REGIONS)}
    for d in draws:
        refl, off = d.region_reflection, d.region_offset_m
        assert refl[r["head"]] == refl[r["hands"]] and off[r["head"]] == 0.0 and 0.97 <= refl[r["head"]] <= 1.0
        assert 0.6 <= refl[r["torso"]] <= 0.95 and 0.0 <= off[r["torso"]] <= 0.02
        assert (refl[r["forearms"]] == refl[r["torso"]]) == (d.sleeves == "long")
        assert (refl[r["upper_arms"]] == refl[r["torso"]]) == (d.sleeves != "sleeveless")
        assert (off[r["shins"]] == off[r["thighs"]]) == (d.bottom == "trousers") or off[r["thighs"]] == 0.0
        assert 0.85 <= refl[r["feet"]] <= 1.0 and off[r["feet"]] == 0.0
    assert model.draw(np.random.default_rng(7)) == model.draw(np.random.default_rng(7))
    assert set(draws[0].to_dict()["region_reflection"]) == set(REGIONS)


@pytest.mark.parametrize("field, value", [
    ("garment_reflection_range", (0.9, 0.5)), ("skin_reflection_range", (0.9, 1.2)),
    ("garment_offset_m_range", (0.0, 0.5)), ("sleeve_probabilities", (0.5, 0.5, 0.5)),
    ("trousers_probability", 1.5), ("shoe_reflection_range", "hard"),
])
def test_bad_clothing_models_are_refused_naming_the_field(field, value):
    with pytest.raises(SimulationInputError, match=field):
        ClothingModel(**{field: value})


def test_bad_dress_arguments_are_refused():
    vertices, faces = _sphere(0.1)
    with pytest.raises(SimulationInputError, match="draw"):
        dress(vertices, faces, np.zeros((15, 3)), "jeans")
    with pytest.raises(SimulationInputError, match="joints_m"):
        dress(vertices, faces, np.zeros((14, 3)), _uniform(0.9, 0.0))
    with pytest.raises(SimulationInputError, match="rng"):
        ClothingModel().draw(3)


def _reference_dress(vertices, faces, joints, draw):
    """dress() as first written: a nearest-bone scan with boolean updates, np.add.at and np.maximum.at."""
    centroids = vertices[faces].mean(axis=1)
    distance, region = np.full(len(faces), np.inf), np.zeros(len(faces), dtype=np.int64)
    for a_name, b_name, inside, beyond in _BONES:
        a, b = joints[JOINT_INDEX[a_name]], joints[JOINT_INDEX[b_name]]
        axis = b - a
        t = (centroids - a) @ axis / float(axis @ axis)
        d = np.linalg.norm(centroids - (a + np.clip(t, 0.0, 1.0)[:, None] * axis), axis=1)
        closer = d < distance
        distance[closer] = d[closer]
        region[closer] = np.where(t[closer] > 1.0, REGIONS.index(beyond), REGIONS.index(inside))
    cross = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], cross)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = normals / np.where(length > 0, length, 1.0)
    facet_offset = np.asarray(draw.region_offset_m)[region]
    offset = np.zeros(len(vertices))
    for k in range(3):
        np.maximum.at(offset, faces[:, k], facet_offset)
    return region, normals, vertices + offset[:, None] * normals, np.asarray(draw.region_reflection)[region]


def test_dress_is_the_plain_computation_bit_for_bit():
    """A lumpy closed mesh, a scattered skeleton and drawn outfits (several garment offsets): the same regions,
    normals, vertices and coefficients as the plain nearest-bone scan and np.add.at / np.maximum.at, bit for bit."""
    rng = np.random.default_rng(5)
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    vertices = np.asarray(mesh.vertices) * [0.6, 0.4, 2.0] * rng.uniform(0.9, 1.1, (len(mesh.vertices), 1))
    faces = np.asarray(mesh.faces)
    joints = rng.uniform([-0.25, -0.15, -0.8], [0.25, 0.15, 0.8], (len(JOINT_NAMES), 3))
    for seed in range(4):
        draw = ClothingModel(garment_offset_m_range=(0.005, 0.02)).draw(np.random.default_rng(seed))
        region, normals, dressed, reflection = _reference_dress(vertices, faces, joints, draw)
        assert len(np.unique(region)) >= 5
        np.testing.assert_array_equal(facet_regions(vertices, faces, joints), region)
        np.testing.assert_array_equal(vertex_normals(vertices, faces), normals)
        got_vertices, got_reflection = dress(vertices, faces, joints, draw)
        np.testing.assert_array_equal(got_vertices, dressed)
        np.testing.assert_array_equal(got_reflection, reflection)
