"""Voxel grid placement, spatial encoding of pose kernels (eq. 5-7) and visual encoding (eq. 9),
checked against geometry: ellipsoids of equal delay, back-projected rays, Gaussian fall-off."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from pipeline.grid import (GridInputError, VoxelGrid, camera_to_voxel, stack_grid_poses, voxel_centers_camera,
                           voxel_to_camera)
from pipeline.spatial_encoding import EncodingInputError, kernel_envelope, spatial_encoding
from pipeline.visual_encoding import keypoint_heatmaps, visual_encoding
from rooms.camera import Camera

SAMPLE_RATE_HZ = 96_000.0
SPEED_M_S = 343.0
VOXEL_M = 0.05
SMALL_SHAPE = (24, 24, 16)


# ----------------------------------------------------------------------------------------------
# Grid


def test_grid_from_camera_pose_stands_on_floor_in_front_of_camera():
    camera = Camera.look_at([1.0, 2.0, 1.6], [2.0, 5.0, 0.9])  # tilted down, looking along +x+3y
    grid = VoxelGrid.from_camera_pose(camera.cam_to_world, floor_z_m=0.0, center_distance_m=3.5)
    centers_world = camera.camera_to_world(grid.centers_camera(dtype=torch.float64).numpy())

    assert grid.shape == (70, 70, 50) and grid.voxel_size_m == 0.05
    # bottom layer of voxel centres half a voxel above the floor, top layer 2.5 m - half a voxel
    np.testing.assert_allclose(centers_world[..., 0, 2], 0.025, atol=1e-9)
    np.testing.assert_allclose(centers_world[..., -1, 2], 2.475, atol=1e-9)
    # axis 2 is gravity's opposite, axes 0/1 are horizontal
    np.testing.assert_allclose(centers_world[0, 0, 1] - centers_world[0, 0, 0], [0, 0, 0.05], atol=1e-9)
    assert abs(centers_world[1, 0, 0, 2] - centers_world[0, 0, 0, 2]) < 1e-9
    assert abs(centers_world[0, 1, 0, 2] - centers_world[0, 0, 0, 2]) < 1e-9
    # axis 1 runs along the horizontal viewing direction, axis 0 to the camera's right
    view = np.array([1.0, 3.0]) / np.hypot(1.0, 3.0)
    step1 = (centers_world[0, 1, 0] - centers_world[0, 0, 0])[:2] / 0.05
    step0 = (centers_world[1, 0, 0] - centers_world[0, 0, 0])[:2] / 0.05
    np.testing.assert_allclose(step1, view, atol=1e-9)
    np.testing.assert_allclose(step0, [view[1], -view[0]], atol=1e-9)  # right of the view, z up
    # horizontal centre 3.5 m ahead of the camera on its viewing direction
    center_xy = centers_world[..., :2].reshape(-1, 2).mean(0)
    np.testing.assert_allclose(center_xy, np.array([1.0, 2.0]) + 3.5 * view, atol=1e-9)
    # the camera's image x axis projects onto grid axis 0 (camera right = grid right)
    assert grid.grid_to_camera[:3, 0] @ np.array([1.0, 0.0, 0.0]) > 0.99


def test_grid_from_camera_pose_with_explicit_centre_and_floor():
    camera = Camera.look_at([0.0, 0.0, 1.2], [0.0, 4.0, 1.0])
    grid = VoxelGrid.from_camera_pose(camera.cam_to_world, floor_z_m=-0.3, center_xy_world_m=(0.5, 3.0),
                                      shape=(10, 12, 8), voxel_size_m=0.1)
    centers_world = camera.camera_to_world(grid.centers_camera(dtype=torch.float64).numpy())
    np.testing.assert_allclose(centers_world[..., :2].reshape(-1, 2).mean(0), [0.5, 3.0], atol=1e-9)
    np.testing.assert_allclose(centers_world[..., 0, 2], -0.25, atol=1e-9)
    np.testing.assert_allclose(grid.extent_m, [1.0, 1.2, 0.8])


def test_grid_rejects_camera_looking_straight_down_and_bad_shape():
    pose = np.eye(4)
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0])  # optical axis = -z of the room
    with pytest.raises(GridInputError, match="straight up or down"):
        VoxelGrid.from_camera_pose(pose)
    with pytest.raises(GridInputError, match="shape"):
        VoxelGrid(shape=(70, 70))
    with pytest.raises(GridInputError, match="voxel_size_m"):
        VoxelGrid(voxel_size_m=-1)


def test_grid_centered_at_level_camera():
    grid = VoxelGrid.centered_at([0.2, 0.1, 3.0], shape=SMALL_SHAPE)
    centers = grid.centers_camera(dtype=torch.float64).numpy()
    np.testing.assert_allclose(centers.reshape(-1, 3).mean(0), [0.2, 0.1, 3.0], atol=1e-9)
    np.testing.assert_allclose(grid.center_camera_m, [0.2, 0.1, 3.0], atol=1e-12)
    # axis 0 = camera +x, axis 1 = camera +z (forward), axis 2 = up = camera -y
    np.testing.assert_allclose(centers[1, 0, 0] - centers[0, 0, 0], [0.05, 0, 0], atol=1e-12)
    np.testing.assert_allclose(centers[0, 1, 0] - centers[0, 0, 0], [0, 0, 0.05], atol=1e-12)
    np.testing.assert_allclose(centers[0, 0, 1] - centers[0, 0, 0], [0, -0.05, 0], atol=1e-12)


def test_voxel_coordinates_round_trip_and_index_centres():
    camera = Camera.look_at([1.0, 2.0, 1.6], [2.0, 5.0, 0.9])
    grid = VoxelGrid.from_camera_pose(camera.cam_to_world, shape=SMALL_SHAPE)
    centers = grid.centers_camera(dtype=torch.float64)
    # each voxel centre maps to its own integer index
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SMALL_SHAPE], indexing="ij"), -1)
    np.testing.assert_allclose(grid.camera_to_voxel(centers.numpy()), ijk, atol=1e-9)
    # round trip on arbitrary points, torch and numpy
    points = torch.tensor(np.random.default_rng(0).uniform(-2, 4, (50, 3)))
    np.testing.assert_allclose(grid.voxel_to_camera(grid.camera_to_voxel(points)), points, atol=1e-9)
    # room-frame points: a point on the floor under the grid centre is at index k = -0.5
    world_point = camera.camera_to_world(grid.center_camera_m) * np.array([1, 1, 0])
    coords = grid.world_to_voxel(world_point, camera.cam_to_world)
    np.testing.assert_allclose(coords, [11.5, 11.5, -0.5], atol=1e-9)
    assert grid.contains(centers.numpy()).all()
    assert not grid.contains(np.array([[0.0, 0.0, 0.0]]))[0]


def test_batched_grid_helpers_match_per_grid():
    grids = [VoxelGrid.centered_at([0.0, 0.0, 3.0], shape=SMALL_SHAPE),
             VoxelGrid.centered_at([0.5, -0.2, 2.0], up_camera=(0, -1, 0.2), shape=SMALL_SHAPE)]
    poses = stack_grid_poses(grids, dtype=torch.float64)
    centers = voxel_centers_camera(poses, SMALL_SHAPE, VOXEL_M)
    assert centers.shape == (2, *SMALL_SHAPE, 3)
    for b, grid in enumerate(grids):
        torch.testing.assert_close(centers[b], grid.centers_camera(dtype=torch.float64))
    coords = camera_to_voxel(centers.reshape(2, -1, 3), poses, VOXEL_M)
    torch.testing.assert_close(voxel_to_camera(coords, poses, VOXEL_M), centers.reshape(2, -1, 3))
    with pytest.raises(GridInputError, match="one grid layout"):
        stack_grid_poses([grids[0], VoxelGrid(shape=(4, 4, 4))])


# ----------------------------------------------------------------------------------------------
# Spatial encoding


def gaussian_tone(num_samples: int, delay_s: float, sigma_s: float, carrier_hz: float = 25_000.0,
                  amplitude: float = 1.0) -> np.ndarray:
    """The echo of a point reflector: a Gaussian-enveloped 25 kHz tone centred at ``delay_s``."""
    t = np.arange(num_samples) / SAMPLE_RATE_HZ
    return amplitude * np.exp(-0.5 * ((t - delay_s) / sigma_s) ** 2) * np.cos(2 * np.pi * carrier_hz * (t - delay_s))


def path_length_m(speaker, mic, points) -> np.ndarray:
    return np.linalg.norm(points - speaker, axis=-1) + np.linalg.norm(points - mic, axis=-1)


def normal_distance_to_shell_m(speaker, mic, points, shell_path_m) -> np.ndarray:
    """First-order distance from points to the ellipsoid {|s-X| + |m-X| = shell_path_m}."""
    d = path_length_m(speaker, mic, points)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
    gradient = np.linalg.norm(unit(points - speaker) + unit(points - mic), axis=-1)
    return np.abs(d - shell_path_m) / gradient


def test_kernel_envelope_is_the_analytic_signal_magnitude():
    rng = np.random.default_rng(1)
    kernels = rng.standard_normal((2, 3, 301))
    np.testing.assert_allclose(kernel_envelope(torch.tensor(kernels)).numpy(),
                               np.abs(scipy.signal.hilbert(kernels, axis=-1)), atol=1e-10)
    # a Gaussian-enveloped tone has that Gaussian as its envelope
    tone = gaussian_tone(1024, delay_s=5e-3, sigma_s=3e-4, amplitude=0.7)
    t = np.arange(1024) / SAMPLE_RATE_HZ
    expected = 0.7 * np.exp(-0.5 * ((t - 5e-3) / 3e-4) ** 2)
    envelope = kernel_envelope(torch.tensor(tone)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(envelope, expected, atol=2e-3)


@pytest.mark.parametrize("co_located", [True, False])
def test_point_reflector_encoding_peaks_on_its_ellipsoid(co_located):
    grid = VoxelGrid.centered_at([0.1, 0.0, 2.5], shape=SMALL_SHAPE)
    centers = grid.centers_camera(dtype=torch.float64)  # (X, Y, Z, 3)
    points = centers.numpy()
    speaker = np.array([-0.6, -0.4, 0.0])
    mic = speaker.copy() if co_located else np.array([0.7, 0.3, 0.1])
    reflector = np.array([0.23, 0.17, 2.61])  # not a voxel centre
    shell_path = path_length_m(speaker, mic, reflector)
    sigma_s = VOXEL_M / SPEED_M_S  # a 5 cm spread of path length
    kernel = gaussian_tone(2048, shell_path / SPEED_M_S, sigma_s)

    envelope = kernel_envelope(torch.tensor(kernel)[None, None])
    spk, mc = torch.tensor(speaker)[None, None], torch.tensor(mic)[None, None]
    speed = torch.tensor([SPEED_M_S], dtype=torch.float64)
    encoding = spatial_encoding(envelope, spk, mc, centers[None], speed, SAMPLE_RATE_HZ)[0, 0].numpy()
    assert encoding.shape == SMALL_SHAPE

    # analytic: a Gaussian in the path-length difference from the reflector's ellipsoid
    path = path_length_m(speaker, mic, points)
    expected = np.exp(-0.5 * ((path - shell_path) / VOXEL_M) ** 2)
    np.testing.assert_allclose(encoding, expected, atol=0.01)

    distance = normal_distance_to_shell_m(speaker, mic, points, shell_path)
    peak = encoding.max()
    assert peak > 0.97
    argmax = np.unravel_index(encoding.argmax(), SMALL_SHAPE)
    assert distance[argmax] <= VOXEL_M / 2  # the maximum lies on the shell through the reflector
    on_shell = np.abs(path - shell_path) <= 0.1 * VOXEL_M
    assert on_shell.sum() > 20 and encoding[on_shell].min() > 0.95 * peak
    assert encoding[distance > 4 * VOXEL_M].max() < 0.02 * peak
    if co_located:  # the shell is a sphere around the transducer
        radius = np.linalg.norm(points - speaker, axis=-1)
        np.testing.assert_allclose(radius[encoding > 0.99 * peak], np.linalg.norm(reflector - speaker), atol=VOXEL_M / 2)

    # read at the reflector itself, the encoding is the peak
    at_reflector = spatial_encoding(envelope, spk, mc, torch.tensor(reflector).reshape(1, 1, 1, 1, 3), speed,
                                    SAMPLE_RATE_HZ)
    assert float(at_reflector) > 0.99


def four_pair_scene(speed_m_s: float, reflector, co_located: bool):
    """Kernels of one point reflector heard by four co-located pairs, or by three speakers x two
    microphones (six pairs), all around the camera. (Two speakers x two microphones would not do:
    the four path sums r_s1 + r_m1 + r_s2 + r_m2 = r_s1 + r_m2 + r_s2 + r_m1 are dependent, and three
    ellipsoids cross at more than one point.)"""
    transducers = np.array([[-1.0, -0.5, 0.0], [1.0, -0.4, 0.1], [-0.8, 0.6, 0.2], [0.9, 0.5, -0.1],
                            [0.0, -0.7, 0.05]])
    if co_located:
        pair_speakers, pair_mics = transducers[:4], transducers[:4]
    else:
        spk, mic = transducers[[0, 1, 4]], transducers[2:4]
        pair_speakers = np.repeat(spk, len(mic), axis=0)
        pair_mics = np.tile(mic, (len(spk), 1))
    kernels = np.stack([
        gaussian_tone(2048, path_length_m(s, m, reflector) / speed_m_s, VOXEL_M / speed_m_s)
        for s, m in zip(pair_speakers, pair_mics)
    ])
    return kernels, pair_speakers, pair_mics


@pytest.mark.parametrize("co_located", [True, False])
def test_several_pairs_localise_the_reflector(co_located):
    grid = VoxelGrid.centered_at([0.0, 0.0, 2.4], shape=SMALL_SHAPE)
    centers = grid.centers_camera(dtype=torch.float64)
    reflectors = np.array([[0.13, -0.21, 2.27], [-0.31, 0.08, 2.66]])
    speeds = np.array([343.0, 351.0])  # two frames, two air temperatures
    scenes = [four_pair_scene(v, x, co_located) for v, x in zip(speeds, reflectors)]
    kernels = torch.tensor(np.stack([s[0] for s in scenes]))
    speakers = torch.tensor(np.stack([s[1] for s in scenes]))
    mics = torch.tensor(np.stack([s[2] for s in scenes]))

    encoding = spatial_encoding(kernel_envelope(kernels), speakers, mics, centers[None],
                                torch.tensor(speeds), SAMPLE_RATE_HZ)
    assert encoding.shape == (2, 4 if co_located else 6, *SMALL_SHAPE)
    product = encoding.prod(dim=1).numpy()
    for b in range(2):
        argmax = np.unravel_index(product[b].argmax(), SMALL_SHAPE)
        assert np.linalg.norm(centers[argmax].numpy() - reflectors[b]) <= np.sqrt(3) * VOXEL_M
        # analytically, the product of Gaussians in path length peaks where the squared path-length
        # residuals of all pairs are smallest
        residual = sum((path_length_m(s, m, centers.numpy()) - path_length_m(s, m, reflectors[b])) ** 2
                       for s, m in zip(scenes[b][1], scenes[b][2]))
        assert argmax == np.unravel_index(residual.argmin(), SMALL_SHAPE)
        # max-pooling over pairs keeps every shell: the reflector's voxel is at the pooled maximum
        pooled = encoding[b].amax(dim=0).numpy()
        nearest = np.unravel_index(np.linalg.norm(centers.numpy() - reflectors[b], axis=-1).argmin(), SMALL_SHAPE)
        assert pooled[nearest] > 0.8 * pooled.max()


def test_delays_beyond_the_kernel_give_zero_and_chunking_changes_nothing():
    grid = VoxelGrid.centered_at([0.0, 0.0, 2.0], shape=(12, 12, 8))
    centers = grid.centers_camera(dtype=torch.float64)
    num_samples = 1100  # 1100 / 96 kHz * 343 m/s = 3.93 m of path
    rng = np.random.default_rng(3)
    envelopes = torch.tensor(rng.uniform(0.5, 1.0, (1, 3, num_samples)))
    speakers = torch.tensor([[[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [-0.3, 0.1, 0.0]]])
    mics = torch.tensor([[[0.0, 0.0, 0.0], [-0.3, 0.0, 0.0], [0.5, 0.1, 0.0]]])
    encoding = spatial_encoding(envelopes, speakers, mics, centers[None], SPEED_M_S, SAMPLE_RATE_HZ)
    path = np.stack([path_length_m(s, m, centers.numpy()) for s, m in zip(speakers[0].numpy(), mics[0].numpy())])
    beyond = path / SPEED_M_S * SAMPLE_RATE_HZ > num_samples - 1
    assert beyond.any() and (~beyond).any()
    assert torch.all(encoding[0][torch.tensor(beyond)] == 0)
    assert torch.all(encoding[0][torch.tensor(~beyond)] >= 0.5)
    chunked = spatial_encoding(envelopes, speakers, mics, centers[None], SPEED_M_S, SAMPLE_RATE_HZ,
                               max_chunk_elements=1)
    torch.testing.assert_close(chunked, encoding)


def test_spatial_encoding_gradients_match_finite_differences():
    envelopes = torch.rand(1, 2, 64, dtype=torch.float64, requires_grad=True)
    speakers = torch.tensor([[[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]]], dtype=torch.float64, requires_grad=True)
    mics = torch.tensor([[[0.05, 0.0, 0.0], [0.1, 0.0, 0.0]]], dtype=torch.float64)
    points = torch.tensor([[0.03, 0.02, 0.11], [0.0, 0.05, 0.14], [-0.02, 0.0, 0.09]], dtype=torch.float64)
    points = points.reshape(1, 3, 1, 1, 3)
    fn = lambda env, spk: spatial_encoding(env, spk, mics, points, torch.tensor([SPEED_M_S], dtype=torch.float64),
                                           SAMPLE_RATE_HZ)
    assert torch.autograd.gradcheck(fn, (envelopes, speakers), eps=1e-7, atol=1e-5)


def test_spatial_encoding_rejects_mismatched_shapes():
    envelopes = torch.zeros(2, 4, 100)
    centers = torch.zeros(1, 2, 2, 2, 3)
    with pytest.raises(EncodingInputError, match="speaker_pos_m"):
        spatial_encoding(envelopes, torch.zeros(2, 3, 3), torch.zeros(2, 4, 3), centers, 343.0, SAMPLE_RATE_HZ)
    with pytest.raises(EncodingInputError, match="voxel_centers_m"):
        spatial_encoding(envelopes, torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), torch.zeros(3, 2, 2, 2, 3), 343.0,
                         SAMPLE_RATE_HZ)
    with pytest.raises(EncodingInputError, match="speed_of_sound"):
        spatial_encoding(envelopes, torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), centers, torch.tensor([343.0, 0.0]),
                         SAMPLE_RATE_HZ)


# ----------------------------------------------------------------------------------------------
# Visual encoding

IMAGE_SIZE = (640, 480)
INTRINSICS = np.array([[500.0, 0.0, 322.0], [0.0, 520.0, 236.0], [0.0, 0.0, 1.0]])


def project(points, k=INTRINSICS):
    p = points @ k.T
    return p[..., :2] / p[..., 2:]


def test_keypoint_heatmaps_are_confidence_weighted_gaussians():
    keypoints = torch.tensor([[[101.5, 57.5, 0.8], [300.2, 200.7, 1.0], [10.0, 10.0, 0.0]]])
    heatmaps = keypoint_heatmaps(keypoints, IMAGE_SIZE, sigma_px=6.0, stride=4).numpy()
    assert heatmaps.shape == (1, 3, 120, 160)
    # keypoint 0 sits at the centre of cell (14, 25): u = 25 * 4 + 1.5, v = 14 * 4 + 1.5
    assert heatmaps[0, 0].max() == pytest.approx(0.8) and heatmaps[0, 0, 14, 25] == pytest.approx(0.8)
    rows, cols = np.mgrid[:120, :160]
    u, v = cols * 4 + 1.5, rows * 4 + 1.5
    expected = 1.0 * np.exp(-((u - 300.2) ** 2 + (v - 200.7) ** 2) / (2 * 6.0 ** 2))
    np.testing.assert_allclose(heatmaps[0, 1], expected, atol=1e-5)
    assert np.all(heatmaps[0, 2] == 0)


def bilinear_error_bound(sigma_px: float, stride: int) -> float:
    """Largest error of bilinear interpolation between samples h = stride apart of a unit Gaussian
    of width sigma: h^2 / 8 * max|f''| per axis, max|f''| = 1 / sigma^2, two axes."""
    return 2 * stride ** 2 / (8 * sigma_px ** 2)


def test_visual_encoding_is_constant_along_the_back_projected_ray():
    sigma_px, stride, confidence = 8.0, 4, 0.9
    keypoint = np.array([301.3, 207.9])
    heatmaps = keypoint_heatmaps(torch.tensor([[[*keypoint, confidence]]]), IMAGE_SIZE, sigma_px, stride)
    ray = np.linalg.solve(INTRINSICS, np.r_[keypoint, 1.0])
    on_ray = ray * np.array([0.5, 1.0, 2.3, 4.0, 7.7])[:, None]
    # points whose projection is 8 px (one sigma) and 16 px from the keypoint, at several depths
    off_pixels = keypoint + np.array([[8.0, 0.0], [0.0, -8.0], [16.0, 0.0], [-11.3, 11.3], [2.0, 1.0]])
    depths = np.array([1.0, 3.0, 2.0, 5.0, 0.7])
    off_ray = np.linalg.solve(INTRINSICS, np.c_[off_pixels, np.ones(5)].T).T * depths[:, None]
    behind = -on_ray[:2]  # behind the camera, but on the ray's line
    outside = np.array([[5.0, 0.0, 1.0], [0.0, -3.0, 1.0]])  # project far outside the image
    points = np.concatenate([on_ray, off_ray, behind, outside])
    encoding = visual_encoding(heatmaps, torch.tensor(INTRINSICS)[None], torch.tensor(points)[None, :, None, None],
                               IMAGE_SIZE, stride)[0, 0, :, 0, 0].numpy()
    on, off = encoding[:5], encoding[5:10]
    tolerance = confidence * bilinear_error_bound(sigma_px, stride)
    np.testing.assert_allclose(on, on[0], rtol=1e-9)  # the same value all along the ray ...
    assert on[0] == pytest.approx(confidence, abs=tolerance) and np.all(off < on[0])  # ... and the largest
    offset = np.linalg.norm(off_pixels - keypoint, axis=1)
    np.testing.assert_allclose(off, confidence * np.exp(-offset ** 2 / (2 * sigma_px ** 2)), atol=tolerance)
    assert np.all(encoding[10:] == 0)


def test_visual_encoding_on_a_grid_follows_the_gaussian_of_the_projection():
    grid = VoxelGrid.centered_at([0.1, 0.2, 3.0], shape=SMALL_SHAPE)
    centers = grid.centers_camera(dtype=torch.float64)
    joints = np.array([[0.15, 0.12, 2.9], [-0.3, 0.4, 3.4]])
    keypoints = np.c_[project(joints), [1.0, 0.0]]  # the second joint has confidence 0
    sigma_px, stride = 12.0, 4
    heatmaps = keypoint_heatmaps(torch.tensor(keypoints)[None], IMAGE_SIZE, sigma_px, stride)
    encoding = visual_encoding(heatmaps, torch.tensor(INTRINSICS)[None], centers[None], IMAGE_SIZE, stride)[0].numpy()
    assert encoding.shape == (2, *SMALL_SHAPE)
    pixel_offset = np.linalg.norm(project(centers.numpy()) - keypoints[0, :2], axis=-1)
    np.testing.assert_allclose(encoding[0], np.exp(-pixel_offset ** 2 / (2 * sigma_px ** 2)),
                               atol=bilinear_error_bound(sigma_px, stride))
    # the maximal voxels are those the keypoint's ray passes through
    ray = np.linalg.solve(INTRINSICS, np.r_[keypoints[0, :2], 1.0])
    ray /= np.linalg.norm(ray)
    points = centers.numpy()
    distance_to_ray = np.linalg.norm(points - (points @ ray)[..., None] * ray, axis=-1)
    assert distance_to_ray[np.unravel_index(encoding[0].argmax(), SMALL_SHAPE)] < VOXEL_M
    assert np.all(encoding[1] == 0)


def test_visual_encoding_batched_and_on_a_device():
    device = torch.device("cpu")
    grid = VoxelGrid.centered_at([0.0, 0.0, 2.5], shape=(8, 8, 6))
    centers = grid.centers_camera(device=device, dtype=torch.float32)
    k2 = INTRINSICS.copy()
    k2[0, 0] = k2[1, 1] = 700.0
    intrinsics = torch.tensor(np.stack([INTRINSICS, k2]), dtype=torch.float32, device=device)
    joints = np.array([[[0.05, 0.02, 2.4]], [[-0.1, 0.1, 2.6]]])
    keypoints = np.stack([np.c_[project(joints[0], INTRINSICS), [1.0]], np.c_[project(joints[1], k2), [0.5]]])
    sigma_px, stride = 10.0, 4
    heatmaps = keypoint_heatmaps(torch.tensor(keypoints, dtype=torch.float32, device=device), IMAGE_SIZE,
                                 sigma_px, stride)
    encoding = visual_encoding(heatmaps, intrinsics, centers[None], IMAGE_SIZE, stride)
    assert encoding.device == device and encoding.dtype == torch.float32 and encoding.shape == (2, 1, 8, 8, 6)
    for b, k in enumerate((INTRINSICS, k2)):
        offset = np.linalg.norm(project(centers.double().numpy(), k) - keypoints[b, 0, :2], axis=-1)
        np.testing.assert_allclose(encoding[b, 0].numpy(),
                                   keypoints[b, 0, 2] * np.exp(-offset ** 2 / (2 * sigma_px ** 2)),
                                   atol=bilinear_error_bound(sigma_px, stride))
    with pytest.raises(EncodingInputError, match="stride"):
        visual_encoding(heatmaps, intrinsics, centers[None], IMAGE_SIZE, 8)


def test_indexed_spatial_encoding_equals_the_per_pair_one():
    """Distances per transducer shared by its pairs give the per-pair encoding exactly (float64), padded pairs
    included (their indices are clamped into range)."""
    from pipeline.spatial_encoding import spatial_encoding, spatial_encoding_indexed

    g = torch.Generator().manual_seed(0)
    batch, speakers, mics = 2, 3, 4
    speaker_pos = torch.rand(batch, speakers, 3, generator=g, dtype=torch.float64) * 2 - 1
    mic_pos = torch.rand(batch, mics, 3, generator=g, dtype=torch.float64) * 2 - 1
    index = torch.tensor([[0, 0], [0, 3], [2, 1], [1, 2], [2, 3], [5, 9]])[None].expand(batch, -1, -1)  # last: padding
    envelopes = torch.rand(batch, index.shape[1], 3000, generator=g, dtype=torch.float64)
    points = torch.rand(batch, 4, 5, 6, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([-1.0, -1.0, 1.5],
                                                                                                  dtype=torch.float64)
    clamped = torch.stack([index[..., 0].clamp(max=speakers - 1), index[..., 1].clamp(max=mics - 1)], -1)
    speaker = torch.gather(speaker_pos, 1, clamped[..., :1].expand(-1, -1, 3))
    mic = torch.gather(mic_pos, 1, clamped[..., 1:].expand(-1, -1, 3))
    speed = torch.tensor([343.0, 350.0], dtype=torch.float64)
    expected = spatial_encoding(envelopes, speaker, mic, points, speed, 96_000.0, start_time_s=1e-4)
    got = spatial_encoding_indexed(envelopes, index, speaker_pos, mic_pos, points, speed, 96_000.0, start_time_s=1e-4,
                                   max_chunk_elements=500)          # several chunks of pairs
    assert got.shape == expected.shape == (batch, 6, 4, 5, 6)
    assert torch.allclose(got, expected, atol=1e-9)
