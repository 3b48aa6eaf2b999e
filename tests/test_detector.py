"""2D detector model (noise, misses, swaps, confidences), mesh-based occlusion, and the OpenPose /
COCO keypoint readers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from bodies import Subject
from bodies.joints import JOINT_INDEX, JOINT_NAMES, LEFT_RIGHT_PAIRS
from simulator.detector import DetectorConfig, DetectorInputError, DetectorModel, occluded_joints
from pipeline.keypoint_formats import KeypointFileError, read_coco_json, read_openpose_json
from rooms.camera import Camera

K = np.array([[914.0, 0.0, 957.0], [0.0, 914.0, 547.0], [0.0, 0.0, 1.0]])
IMAGE_SIZE = (1920, 1080)
QUIET = dict(miss_prob=0.0, occluded_miss_prob=0.0, swap_prob=0.0)


def standing_joints(depth_m: float) -> np.ndarray:
    """(15, 3) a rough upright skeleton facing the camera at ``depth_m``, camera frame (y down)."""
    offsets = {
        "pelvis": (0, 0.0), "neck": (0, -0.5), "head": (0, -0.7),
        "r_shoulder": (-0.18, -0.48), "r_elbow": (-0.22, -0.2), "r_wrist": (-0.24, 0.05),
        "l_shoulder": (0.18, -0.48), "l_elbow": (0.22, -0.2), "l_wrist": (0.24, 0.05),
        "r_hip": (-0.1, 0.02), "r_knee": (-0.11, 0.45), "r_ankle": (-0.12, 0.85),
        "l_hip": (0.1, 0.02), "l_knee": (0.11, 0.45), "l_ankle": (0.12, 0.85),
    }
    return np.array([[x, y, depth_m] for x, y in (offsets[n] for n in JOINT_NAMES)])


def project(joints: np.ndarray, k=K) -> np.ndarray:
    p = joints @ k.T
    return p[:, :2] / p[:, 2:]


def pixel_errors(detector, joints, rng, trials, image_size=IMAGE_SIZE, k=K, occluded=None) -> np.ndarray:
    truth = project(joints, k)
    return np.stack([detector.detect(joints, k, image_size, rng, occluded)[:, :2] - truth for _ in range(trials)])


def test_pixel_noise_matches_the_configured_sigma():
    config = DetectorConfig(**QUIET)
    detector = DetectorModel(config)
    rng = np.random.default_rng(0)
    trials = 600  # 600 x 15 x 2 samples: the std is known to ~1.2 %
    for depth, image_size, k in [(3.0, IMAGE_SIZE, K), (5.0, IMAGE_SIZE, K), (3.0, (736, 414), K * [[0.383], [0.383], [1]])]:
        joints = standing_joints(depth)
        errors = pixel_errors(detector, joints, rng, trials, image_size, k)
        # formula: 1.5 px at the 368 px detector input, scaled to the image, +15 % per metre beyond 3 m
        scale = min(1.0, 368 / image_size[1])
        expected = 1.5 / scale * (1 + 0.15 * (depth - 3.0))
        assert config.noise_sigma_px(depth, image_size[1]) == pytest.approx(expected)
        assert errors.std() == pytest.approx(expected, rel=0.05)
        assert abs(errors.mean()) < 4 * expected / np.sqrt(errors.size)
    # occluded joints are noisier by the configured factor
    occluded = np.zeros(15, bool)
    occluded[[JOINT_INDEX["l_wrist"], JOINT_INDEX["l_elbow"]]] = True
    errors = pixel_errors(detector, standing_joints(3.0), rng, trials, occluded=occluded)
    sigma = 1.5 / (368 / 1080)
    assert errors[:, occluded].std() == pytest.approx(2.5 * sigma, rel=0.08)
    assert errors[:, ~occluded].std() == pytest.approx(sigma, rel=0.05)


def test_misses_and_swaps_happen_at_the_configured_rates():
    detector = DetectorModel(DetectorConfig(noise_px_at_input=0.0, miss_prob=0.1, swap_prob=0.2, occluded_miss_prob=0.0))
    rng = np.random.default_rng(1)
    joints = standing_joints(3.0)
    truth = project(joints)
    trials = 1500
    missed = swapped = 0
    for _ in range(trials):
        keypoints = detector.detect(joints, K, IMAGE_SIZE, rng)
        missed += int(np.sum(keypoints[:, 2] == 0))
        for left, right in LEFT_RIGHT_PAIRS:
            a, b = JOINT_INDEX[left], JOINT_INDEX[right]
            if keypoints[a, 2] > 0 and np.allclose(keypoints[a, :2], truth[b]):
                swapped += 1
    n_joints = trials * 15
    assert missed / n_joints == pytest.approx(0.1, abs=4 * np.sqrt(0.09 / n_joints))
    # a swap is seen when the pair is swapped and the moved joint was not missed
    n_pairs = trials * len(LEFT_RIGHT_PAIRS)
    p_seen = 0.2 * 0.9
    assert swapped / n_pairs == pytest.approx(p_seen, abs=4 * np.sqrt(p_seen * (1 - p_seen) / n_pairs))


def test_confidence_model_outside_image_and_behind_camera():
    detector = DetectorModel(DetectorConfig(**QUIET))
    rng = np.random.default_rng(2)
    joints = standing_joints(3.0)
    occluded = np.zeros(15, bool)
    occluded[JOINT_INDEX["r_knee"]] = True
    confidences = np.stack([detector.detect(joints, K, IMAGE_SIZE, rng, occluded)[:, 2] for _ in range(300)])
    # at the reference depth (3 m) and away from the border: the configured means, std 0.08
    assert confidences[:, ~occluded].mean() == pytest.approx(0.8, abs=0.01)
    assert confidences[:, occluded].mean() == pytest.approx(0.4, abs=0.02)
    assert confidences[:, ~occluded].std() == pytest.approx(0.08, rel=0.1)
    assert np.all((confidences >= 0.05) & (confidences <= 1.0))

    exact = DetectorModel(DetectorConfig(noise_px_at_input=0.0, **QUIET))
    shifted = joints + [3.0, 0.0, 0.0]  # the left arm leaves the image on the right
    keypoints = exact.detect(shifted, K, IMAGE_SIZE, rng)
    u = project(shifted)[:, 0]
    outside = u > 1919.5
    assert outside[JOINT_INDEX["l_wrist"]] and not outside[JOINT_INDEX["r_wrist"]]
    assert np.all(keypoints[outside, 2] == 0) and np.all(keypoints[~outside, 2] > 0)
    behind = joints * [1, 1, -1]
    assert np.all(detector.detect(behind, K, IMAGE_SIZE, rng) == 0)


def test_detector_is_deterministic_given_the_rng():
    detector = DetectorModel()
    joints = standing_joints(3.5)
    first = detector.detect(joints, K, IMAGE_SIZE, np.random.default_rng(7))
    again = detector.detect(joints, K, IMAGE_SIZE, np.random.default_rng(7))
    other = detector.detect(joints, K, IMAGE_SIZE, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    with pytest.raises(DetectorInputError, match="joints_camera_m"):
        detector.detect(joints[:14], K, IMAGE_SIZE, np.random.default_rng(0))
    with pytest.raises(DetectorInputError, match="swap_prob"):
        DetectorConfig(swap_prob=1.5)


# ----------------------------------------------------------------------------------------------
# Occlusion


def test_occlusion_by_a_sphere_in_front():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    vertices = sphere.vertices + [0.0, 0.0, 3.0]
    joints = np.tile([5.0, 0.0, 3.0], (15, 1))  # far to the side: no ray hits the sphere
    joints[0] = [0.0, 0.0, 3.5]   # behind the sphere
    joints[1] = [0.0, 0.0, 3.0]   # at its centre: the surface is 0.3 m in front
    joints[2] = [0.0, 0.0, 2.8]   # 0.1 m inside its front surface: its own "limb"
    joints[3] = [0.0, 0.0, 2.5]   # in front of the sphere
    joints[4] = [0.5, 0.0, 4.0]   # behind, but its ray passes 0.37 m from the centre: misses
    occluded = occluded_joints(vertices, sphere.faces, joints, thickness_m=0.12)
    assert occluded.tolist() == [True, True, False, False, False] + [False] * 10


@pytest.mark.parametrize("heading_rad, far_side", [(0.0, "l"), (np.pi, "r")])
def test_far_arm_and_leg_are_hidden_behind_the_torso(anny_sampler, heading_rad, far_side):
    """A body seen from its side: the camera at -y looks along +y; heading 0 faces +x, so the
    body's left side (+y) is away from the camera."""
    subject = Subject(age_years=30, sex="male", stature_m=1.75)
    camera = Camera.look_at([0.0, -3.0, 1.2], [0.0, 0.0, 1.0])
    body = anny_sampler.pose(subject, {}, "standing", heading_rad=heading_rad)
    occluded = occluded_joints(camera.world_to_camera(body.vertices), body.faces,
                               camera.world_to_camera(body.joints))
    near_side = "r" if far_side == "l" else "l"
    for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        assert occluded[JOINT_INDEX[f"{far_side}_{part}"]], f"{far_side}_{part} should be hidden"
        assert not occluded[JOINT_INDEX[f"{near_side}_{part}"]], f"{near_side}_{part} should be visible"
    assert not occluded[JOINT_INDEX["head"]] and not occluded[JOINT_INDEX["neck"]]


@pytest.mark.parametrize("heading_rad", [-np.pi / 2, np.pi / 2])
@pytest.mark.parametrize("subject", [Subject(age_years=30, sex="male", stature_m=1.75, weight=0.7),
                                     Subject(age_years=9, sex="female", stature_m=1.3)], ids=["adult", "child"])
def test_nothing_hidden_from_the_front_or_back(anny_sampler, heading_rad, subject):
    """The torso is thick: seen from the front, the pelvis joint lies ~0.14 m and the hips ~0.12 m
    behind the belly's surface, and they are not hidden."""
    camera = Camera.look_at([0.0, -3.0, 1.2], [0.0, 0.0, 0.8])
    body = anny_sampler.pose(subject, {}, "standing", heading_rad=heading_rad)
    occluded = occluded_joints(camera.world_to_camera(body.vertices), body.faces,
                               camera.world_to_camera(body.joints))
    assert not occluded.any(), [n for n, o in zip(JOINT_NAMES, occluded) if o]


# ----------------------------------------------------------------------------------------------
# Keypoint files


def body25(points: dict[int, tuple[float, float, float]]) -> list[float]:
    flat = np.zeros((25, 3))
    for i, p in points.items():
        flat[i] = p
    return flat.ravel().tolist()


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def test_openpose_reader_maps_body25_and_picks_the_most_confident_person(tmp_path):
    rng = np.random.default_rng(0)
    confident = {i: (100 + 10 * i, 200 + 5 * i, 0.9) for i in range(25)}
    confident[17], confident[18] = (300.0, 100.0, 0.8), (340.0, 104.0, 0.7)  # ears
    faint = {i: (float(rng.uniform(0, 600)), float(rng.uniform(0, 400)), 0.2) for i in range(25)}
    path = write_json(tmp_path / "frame_keypoints.json",
                      {"version": 1.3, "people": [{"pose_keypoints_2d": body25(faint)},
                                                  {"pose_keypoints_2d": body25(confident)}]})
    keypoints = read_openpose_json(path)
    assert keypoints.shape == (15, 3)
    expect = {"neck": 1, "pelvis": 8, "r_shoulder": 2, "r_wrist": 4, "l_elbow": 6, "r_hip": 9, "l_ankle": 14}
    for name, i in expect.items():
        np.testing.assert_allclose(keypoints[JOINT_INDEX[name]], confident[i])
    np.testing.assert_allclose(keypoints[JOINT_INDEX["head"]], [320.0, 102.0, 0.7])  # midpoint of the ears

    # no ears: eyes; no eyes either: nose. No MidHip: midpoint of the hips.
    person = dict(confident)
    person[17] = person[18] = (0.0, 0.0, 0.0)
    person[8] = (0.0, 0.0, 0.0)
    path = write_json(tmp_path / "b.json", {"people": [{"pose_keypoints_2d": body25(person)}]})
    keypoints = read_openpose_json(path)
    np.testing.assert_allclose(keypoints[JOINT_INDEX["head"]], [(250 + 260) / 2, (275 + 280) / 2, 0.9])
    np.testing.assert_allclose(keypoints[JOINT_INDEX["pelvis"]], [(190 + 220) / 2, (245 + 260) / 2, 0.9])
    person[15] = (0.0, 0.0, 0.0)
    path = write_json(tmp_path / "c.json", {"people": [{"pose_keypoints_2d": body25(person)}]})
    np.testing.assert_allclose(read_openpose_json(path)[JOINT_INDEX["head"]], confident[0])


def test_openpose_reader_errors_and_outside_keypoints(tmp_path):
    with pytest.raises(KeypointFileError, match=r"bad\.json.*pose_keypoints_2d"):
        read_openpose_json(write_json(tmp_path / "bad.json", {"people": [{"pose_keypoints_2d": [1, 2, 3]}]}))
    with pytest.raises(KeypointFileError, match=r"nopeople\.json.*people"):
        read_openpose_json(write_json(tmp_path / "nopeople.json", {"persons": []}))
    with pytest.raises(KeypointFileError, match="not valid JSON"):
        (tmp_path / "broken.json").write_text("{")
        read_openpose_json(tmp_path / "broken.json")
    with pytest.warns(UserWarning, match="no person"):
        assert np.all(read_openpose_json(write_json(tmp_path / "empty.json", {"people": []})) == 0)
    points = {i: (100.0, 100.0, 0.9) for i in range(25)}
    points[4] = (700.0, 100.0, 0.9)  # right wrist beyond a 640-pixel-wide image
    path = write_json(tmp_path / "out.json", {"people": [{"pose_keypoints_2d": body25(points)}]})
    with pytest.warns(UserWarning, match="r_wrist"):
        keypoints = read_openpose_json(path, image_size_px=(640, 480))
    assert keypoints[JOINT_INDEX["r_wrist"], 2] == 0 and keypoints[JOINT_INDEX["l_wrist"], 2] == 0.9


def coco17(points: dict[int, tuple[float, float, float]]) -> list[float]:
    flat = np.zeros((17, 3))
    for i, p in points.items():
        flat[i] = p
    return flat.ravel().tolist()


def test_coco_annotation_reader(tmp_path):
    person = {i: (50.0 + 10 * i, 80.0 + 4 * i, 2) for i in range(17)}
    person[9] = (140.0, 116.0, 1)   # left wrist labelled but hidden
    person[10] = (0.0, 0.0, 0)      # right wrist not labelled
    other = {i: (300.0, 300.0, 1) for i in range(17)}
    data = {"images": [{"id": 7, "width": 640, "height": 480}],
            "annotations": [{"image_id": 7, "keypoints": coco17(other)}, {"image_id": 7, "keypoints": coco17(person)}]}
    keypoints = read_coco_json(write_json(tmp_path / "ann.json", data))
    np.testing.assert_allclose(keypoints[JOINT_INDEX["l_shoulder"]], [100.0, 100.0, 1.0])
    np.testing.assert_allclose(keypoints[JOINT_INDEX["r_ankle"]], [210.0, 144.0, 1.0])
    np.testing.assert_allclose(keypoints[JOINT_INDEX["l_wrist"]], [140.0, 116.0, 0.5])
    np.testing.assert_allclose(keypoints[JOINT_INDEX["r_wrist"]], 0.0)
    np.testing.assert_allclose(keypoints[JOINT_INDEX["neck"]], [(100 + 110) / 2, (100 + 104) / 2, 1.0])
    np.testing.assert_allclose(keypoints[JOINT_INDEX["pelvis"]], [(160 + 170) / 2, (124 + 128) / 2, 1.0])
    np.testing.assert_allclose(keypoints[JOINT_INDEX["head"]], [(80 + 90) / 2, (92 + 96) / 2, 1.0])  # ears

    data["annotations"][1]["keypoints"][2] = 5  # visibility flag of the nose
    with pytest.raises(KeypointFileError, match=r"ann\.json.*annotations\[1\]\.keypoints.*0, 1 or 2"):
        read_coco_json(write_json(tmp_path / "ann.json", data))


def test_coco_results_reader_needs_an_image_id_for_several_images(tmp_path):
    person = {i: (50.0 + 10 * i, 80.0 + 4 * i, 0.6) for i in range(17)}
    results = [{"image_id": 1, "category_id": 1, "keypoints": coco17(person), "score": 0.9},
               {"image_id": 2, "category_id": 1, "keypoints": coco17({i: (1.0, 1.0, 0.3) for i in range(17)}),
                "score": 0.5}]
    path = write_json(tmp_path / "results.json", results)
    with pytest.raises(KeypointFileError, match="image_id="):
        read_coco_json(path)
    keypoints = read_coco_json(path, image_id=1)
    np.testing.assert_allclose(keypoints[JOINT_INDEX["r_knee"]], [190.0, 136.0, 0.6])
    with pytest.raises(KeypointFileError, match="image_id=3"):
        read_coco_json(path, image_id=3)


def test_confidence_is_independent_of_the_drawn_error():
    """A detector does not know its error: over 2,000 draws the confidence and the realised pixel error
    are uncorrelated (the former model, 0.05 off per sigma of error, gave r = -0.38)."""
    detector = DetectorModel(DetectorConfig(**QUIET))
    rng = np.random.default_rng(11)
    joints = standing_joints(3.0)
    truth = project(joints)
    draws = np.stack([detector.detect(joints, K, IMAGE_SIZE, rng) for _ in range(2000)])   # (2000, 15, 3)
    error_px = np.linalg.norm(draws[..., :2] - truth, axis=-1)
    # per joint, so that differences between joints' mean confidences do not enter; then pooled
    centred_error = error_px - error_px.mean(axis=0)
    centred_confidence = draws[..., 2] - draws[..., 2].mean(axis=0)
    r = np.sum(centred_error * centred_confidence) / np.sqrt(np.sum(centred_error ** 2) * np.sum(centred_confidence ** 2))
    assert abs(r) < 0.05


def test_confidence_falls_with_depth_and_near_the_border():
    """Closed form of the mean: 0.8 - 0.03 per metre beyond 3 m - 0.2 x (how far into the 5 % border band)."""
    config = DetectorConfig(**QUIET)
    occluded = np.zeros(3, bool)
    # centre at 3 m; centre at 5 m; at 3 m, u halfway into the 96 px band on the left
    uv = np.array([[960.0, 540.0], [960.0, 540.0], [-0.5 + 48.0, 540.0]])
    mean = config.mean_confidence(np.array([3.0, 5.0, 3.0]), uv, IMAGE_SIZE, occluded)
    np.testing.assert_allclose(mean, [0.8, 0.8 - 0.06, 0.8 - 0.1])
    # nearer than the reference gains nothing; the bottom border (v) counts as the left one (u) does
    mean = config.mean_confidence(np.array([2.0, 3.0]), np.array([[960.0, 540.0], [960.0, 1079.5 - 27.0]]),
                                  IMAGE_SIZE, [False, True])
    np.testing.assert_allclose(mean, [0.8, 0.4 - 0.1])
    # and the detector draws around that mean
    detector = DetectorModel(config)
    rng = np.random.default_rng(5)
    joints = standing_joints(5.0)
    confidences = np.stack([detector.detect(joints, K, IMAGE_SIZE, rng)[:, 2] for _ in range(400)])
    assert confidences.mean() == pytest.approx(0.74, abs=0.01)


@pytest.mark.parametrize("activity, heading_rad", [("standing", 0.3), ("sitting", 2.0), ("reaching", -1.2)])
def test_first_hits_are_embrees_first_hits(anny_sampler, activity, heading_rad):
    """The occlusion rays' first hits (every ray against every triangle, float64) against trimesh's Embree
    ray caster (float32) on posed Anny bodies: the same rays hit, at the same distance to Embree's precision,
    so the occlusion flags are the same. Rays through the body and rays past it are both checked."""
    import trimesh

    from simulator.detector import first_hit_distances

    rng = np.random.default_rng(7)
    camera = Camera.look_at([0.4, -3.0, 1.3], [0.0, 0.0, 0.9])
    body = anny_sampler.pose(Subject(age_years=35, sex="female", stature_m=1.68), {}, activity,
                             heading_rad=heading_rad)
    vertices = camera.world_to_camera(body.vertices)
    targets = np.vstack([camera.world_to_camera(body.joints),
                         # facet centroids (a ray aimed exactly at a vertex or an edge is a tie either may break)
                         camera.world_to_camera(body.vertices[body.faces[rng.choice(len(body.faces), 200)]].mean(1)),
                         rng.normal([0.0, 0.0, 3.0], 0.6, size=(100, 3))])      # many of these miss the body
    directions = targets / np.linalg.norm(targets, axis=1, keepdims=True)
    ours = first_hit_distances(vertices, body.faces.astype(np.int64), directions)
    locations, ray_index, _ = trimesh.Trimesh(vertices, body.faces, process=False).ray.intersects_location(
        np.zeros_like(directions), directions, multiple_hits=False)
    embree = np.full(len(directions), np.inf)
    np.minimum.at(embree, ray_index, np.linalg.norm(locations, axis=1))
    hit = np.isfinite(embree)
    assert 0.2 < hit.mean() < 1.0                        # both kinds of ray are there
    assert np.array_equal(np.isfinite(ours), hit)
    np.testing.assert_allclose(ours[hit], embree[hit], atol=1e-5)
