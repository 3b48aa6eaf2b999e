"""The coarse-to-fine lifter and the encoding pieces it stands on, each against a closed form:

* anti-aliased audio encoding: a point reflector's delay shell keeps >= 0.7 of its peak at the voxel
  nearest to it, at every preset resolution (and without the anti-aliasing it does not at 11 cm);
* pair statistics and the lifter are invariant to the order and count of pairs, padding included;
* soft-argmax decoding returns the centre of a Gaussian volume;
* a ray tube lies on its keypoint's viewing ray (or, for an untrusted keypoint, on the ray through the
  coarse joint), centred at the coarse joint's depth; the coarse context it reads is exact at voxel centres;
* the network learns on exact synthetic frames; checkpoints of the other architecture are refused.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from network.coarse_fine import CoarseToFineLifter, DepthSearch, JointRefiner, joint_l1_loss, soft_argmax_points
from network.config import CONFIGS, get_config
from network.lifters import build_lifter, training_loss
from network.model import synthetic_batch
from pipeline.grid import voxel_centers_camera
from pipeline.spatial_encoding import antialiased_envelope, kernel_envelope, pair_statistics, spatial_encoding
from simulator.signals import ChirpPlan, band_window

FS = 96_000.0
SPEED = 343.0


def band_limited_echo(delay_s: float, band_hz, samples: int = 4800) -> np.ndarray:
    """A unit reflector's pose kernel: an impulse at ``delay_s`` seen through one speaker's band."""
    freqs = np.fft.rfftfreq(samples, 1 / FS)
    spectrum = np.exp(-2j * np.pi * freqs * delay_s) * band_window(freqs, band_hz, 500.0)
    return np.fft.irfft(spectrum, samples)


def shell_value_at_nearest_voxel(config, point_m, speaker_m, mic_m, band_hz, antialias: bool) -> float:
    """Encoded value at the voxel nearest a reflector, over the envelope's peak."""
    delay = (np.linalg.norm(point_m - speaker_m) + np.linalg.norm(point_m - mic_m)) / SPEED
    envelope = kernel_envelope(torch.tensor(band_limited_echo(delay, band_hz))[None, None])
    peak = float(envelope.max())
    if antialias:
        envelope = antialiased_envelope(envelope, config.voxel_size_m, SPEED, FS)
    pose = torch.eye(4, dtype=torch.float64)[None]
    pose[0, :3, 3] = torch.tensor(config.grid_center_m) - torch.tensor(config.extent_m) / 2
    centers = voxel_centers_camera(pose, config.grid_shape, config.voxel_size_m)
    nearest = torch.linalg.vector_norm(centers - torch.tensor(point_m), dim=-1).argmin()
    center = centers.reshape(-1, 3)[nearest][None, None, None, None]
    value = spatial_encoding(envelope, torch.tensor(speaker_m)[None, None], torch.tensor(mic_m)[None, None],
                             center, SPEED, FS)
    return float(value.reshape(-1)[0]) / peak


def _reflectors(config, count: int, seed: int):
    rng = np.random.default_rng(seed)
    half = np.array(config.extent_m) / 2 - config.voxel_size_m
    bands = ChirpPlan().speaker_bands_hz()
    for k in range(count):
        point = np.array(config.grid_center_m) + rng.uniform(-half, half)
        speaker = rng.uniform([-1.5, -0.5, -0.2], [1.5, 0.5, 0.2])
        mic = speaker + (0.0 if k % 2 else 1.0) * rng.uniform(-1.0, 1.0, 3)   # co-located and separated pairs
        yield point, speaker, mic, tuple(bands[k % len(bands)])


@pytest.mark.parametrize("preset", sorted(CONFIGS))
def test_antialiased_shell_keeps_its_peak_at_the_nearest_voxel(preset):
    config = get_config(preset)
    values = [shell_value_at_nearest_voxel(config, *reflector, antialias=True)
              for reflector in _reflectors(config, 40, seed=1)]
    assert min(values) >= 0.7, (preset, min(values))


def test_without_antialiasing_a_coarse_grid_steps_over_the_shell():
    config = get_config("small")       # 11 cm voxels
    values = [shell_value_at_nearest_voxel(config, *reflector, antialias=False)
              for reflector in _reflectors(config, 40, seed=1)]
    assert min(values) < 0.3


@pytest.mark.parametrize("preset", ["small", "c2f_small"])
def test_both_networks_read_the_antialiased_shell_when_configured(preset):
    """The networks' own audio read-out keeps the shell's peak at the nearest voxel, and only with the field on."""
    from network.model import PoseKernelLifter

    on = get_config(preset)
    point, speaker, mic, band = next(r for r in _reflectors(on, 40, seed=1)
                                     if shell_value_at_nearest_voxel(on, *r, antialias=False) < 0.5)
    delay = (np.linalg.norm(point - speaker) + np.linalg.norm(point - mic)) / SPEED
    kernel = torch.tensor(band_limited_echo(delay, band), dtype=torch.float32)[None, None]
    peak = float(kernel_envelope(kernel).max())
    batch = {"kernels": kernel, "pair_index": torch.zeros(1, 1, 2, dtype=torch.long),
             "speaker_pos": torch.tensor(speaker, dtype=torch.float32)[None, None],
             "mic_pos": torch.tensor(mic, dtype=torch.float32)[None, None],
             "speed_of_sound": torch.tensor([SPEED], dtype=torch.float32)}
    pose = torch.eye(4, dtype=torch.float64)[None]
    pose[0, :3, 3] = torch.tensor(on.grid_center_m) - torch.tensor(on.extent_m) / 2
    centers = voxel_centers_camera(pose, on.grid_shape, on.voxel_size_m)
    nearest = centers.reshape(-1, 3)[torch.linalg.vector_norm(centers - torch.tensor(point), dim=-1).argmin()]
    center = nearest.float().reshape(1, 1, 1, 1, 3)
    values = {}
    for flag in (True, False):
        config = on.replace(antialias_encoding=flag)
        if config.arch == "paper":
            values[flag] = float(PoseKernelLifter(config).audio_encoding(batch, center).max()) / peak
        else:
            model = CoarseToFineLifter(config)
            envelopes = model._envelopes(batch, config.voxel_size_m)
            values[flag] = float(spatial_encoding(envelopes, batch["speaker_pos"], batch["mic_pos"], center, SPEED,
                                                  FS).max()) / peak
    assert values[True] >= 0.7 > values[False] + 0.2, values


def test_antialiasing_window_is_the_largest_delay_step_within_a_voxel():
    # A single-sample spike widened by max-pooling spans exactly 2 * ceil(sqrt(3) a / c * fs) + 1 samples.
    spike = torch.zeros(1, 1, 400)
    spike[..., 200] = 1.0
    for voxel in (0.05, 0.11, 0.22):
        half = math.ceil(math.sqrt(3) * voxel / SPEED * FS)
        widened = antialiased_envelope(spike, voxel, SPEED, FS)
        assert int(widened.sum()) == 2 * half + 1
        assert float(widened[..., 200 - half]) == 1.0 and float(widened[..., 200 - half - 1]) == 0.0


def test_pair_statistics_by_hand_and_invariant_to_order_and_padding():
    enc = torch.tensor([[[1.0], [3.0], [100.0]]])          # (B=1, P=3, N=1); the third pair is padding
    mask = torch.tensor([[True, True, False]])
    stats = pair_statistics(enc, mask, log_floor=0.0)[0, :, 0]
    assert stats.tolist() == pytest.approx([3.0, 2.0, 1.0, math.log(3.0) / 2])
    rng = torch.Generator().manual_seed(0)
    enc = torch.rand(2, 6, 4, 5, 3, generator=rng)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    a = pair_statistics(enc, mask)
    b = pair_statistics(enc[:, order], mask[:, order])
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(pair_statistics(enc[1:, :4], mask[1:, :4]), a[1:], atol=1e-6)


def test_soft_argmax_returns_the_centre_of_a_gaussian_volume():
    # A Gaussian in log space (logits -|x - mu|^2 / 2 s^2) sampled on a fine grid far from the edges: its
    # softmax is the discrete Gaussian, whose mean is mu to within the grid's aliasing (tiny for s >= 1 voxel).
    axis = torch.arange(30, dtype=torch.float64) * 0.02
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)[None, None]   # (1, 1, 30, 30, 30, 3)
    for mu, sigma in (((0.301, 0.287, 0.312), 0.03), ((0.25, 0.35, 0.3), 0.05)):
        logits = -((points - torch.tensor(mu)) ** 2).sum(-1) / (2 * sigma**2)
        estimate = soft_argmax_points(logits[:, 0][:, None].expand(1, 2, -1, -1, -1), points)
        assert torch.allclose(estimate, torch.tensor(mu, dtype=torch.float32).expand(1, 2, 3), atol=1e-5)


def test_l1_loss_ignores_unknown_joints():
    truth = torch.zeros(1, 15, 3)
    truth[0, 3] = float("nan")
    pred = torch.full((1, 15, 3), 0.1)
    assert float(joint_l1_loss(pred, truth)) == pytest.approx(0.1)


CUBE_TINY = get_config("c2f_tiny", fine_shape="cube", fine_cube=6, name="cube_tiny")
REFINED_TINY = get_config("c2f_tiny", refine_joints=True, name="refined_tiny")
SEARCHED_TINY = get_config("c2f_tiny", depth_search=True, name="searched_tiny")


@pytest.mark.parametrize("config", [CUBE_TINY, get_config("c2f_tiny"), REFINED_TINY, SEARCHED_TINY],
                         ids=["cube", "ray", "refined", "searched"])
def test_the_lifter_is_invariant_to_pair_order_and_padding(config):
    torch.manual_seed(0)
    model = CoarseToFineLifter(config).eval()
    for p in model.parameters():        # random heads, so the output depends on the inputs
        torch.nn.init.normal_(p, std=0.1)
    batch, _ = synthetic_batch(config, batch_size=1, num_pairs=5, seed=3)
    order = torch.tensor([4, 2, 0, 3, 1])
    shuffled = {**batch, "pair_index": batch["pair_index"][:, order], "kernels": batch["kernels"][:, order]}
    padded = {**batch, "kernels": torch.cat([batch["kernels"], batch["kernels"][:, :2] * 7], 1),
              "pair_index": torch.cat([batch["pair_index"], batch["pair_index"][:, :2]], 1),
              "pair_mask": torch.tensor([[True] * 5 + [False] * 2])}
    with torch.no_grad():
        reference = model(batch).joints
        assert torch.allclose(model(shuffled).joints, reference, atol=1e-5)
        assert torch.allclose(model(padded).joints, reference, atol=1e-5)
        two = {**batch, "pair_mask": torch.tensor([[True, True, False, False, False]])}
        assert torch.isfinite(model(two).joints).all()


@pytest.mark.parametrize("config", [CUBE_TINY, get_config("c2f_tiny"), REFINED_TINY, SEARCHED_TINY],
                         ids=["cube", "ray", "refined", "searched"])
def test_the_lifter_learns_exact_frames(config):
    torch.manual_seed(0)
    model = build_lifter(config)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    batch, joints = synthetic_batch(config, batch_size=2, num_pairs=4, seed=0)
    batch["joints3d"] = joints
    with torch.no_grad():
        before = float((model(batch).joints - joints).norm(dim=-1).mean())
    for _ in range(60):
        loss = training_loss(config, model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float((model(batch).joints - joints).norm(dim=-1).mean())
    assert after < 0.5 * before, (before, after)


def test_an_untrained_refiner_returns_the_fine_joints_and_learns_a_depth_offset():
    torch.manual_seed(0)
    model = CoarseToFineLifter(REFINED_TINY).eval()
    batch, joints = synthetic_batch(REFINED_TINY, batch_size=2, num_pairs=4, seed=1)
    with torch.no_grad():
        out = model(batch)
    assert out.fine_joints is not None and torch.equal(out.joints, out.fine_joints)
    # trained alone on fine joints that are all 10 cm too far along their lines of sight, it learns to pull them in
    refiner = JointRefiner(hidden=32)
    truth = joints.float()
    far = truth * (1.0 + 0.10 / truth.norm(dim=-1, keepdim=True))
    spread, confidence = torch.full(truth.shape[:2], 0.05), torch.ones(truth.shape[:2])
    optimizer = torch.optim.Adam(refiner.parameters(), 1e-2)
    for _ in range(200):
        loss = joint_l1_loss(refiner(far, far, spread, confidence), truth)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        moved = refiner(far, far, spread, confidence)
    assert float((moved - truth).norm(dim=-1).mean()) < 0.02          # from 10 cm
    # it moves joints only along their lines of sight: the direction from the camera is kept
    directions = torch.nn.functional.normalize
    assert torch.allclose(directions(moved, dim=-1), directions(far, dim=-1), atol=1e-5)


def test_an_untrained_depth_search_moves_nothing_and_it_learns_where_a_profile_peaks():
    torch.manual_seed(0)
    searched = CoarseToFineLifter(SEARCHED_TINY).eval()
    plain = CoarseToFineLifter(get_config("c2f_tiny")).eval()
    plain.load_state_dict({k: v for k, v in searched.state_dict().items() if not k.startswith("depth_search.")})
    batch, _ = synthetic_batch(SEARCHED_TINY, batch_size=2, num_pairs=4, seed=2)
    with torch.no_grad():
        a, b = searched(batch), plain(batch)
    assert torch.allclose(a.joints, b.joints, atol=1e-5)
    # the searched joints are the coarse joints on their lines of sight (offset 0): at the coarse joints' depths
    axis, depth = searched.sight_lines(batch["keypoints2d"].float(), batch["intrinsics"].float(), a.coarse_joints)
    assert torch.allclose((a.searched_joints * axis).sum(-1), depth, atol=1e-5)
    # trained alone, it reads the offset off profiles that peak there (every joint's at the same step)
    torch.manual_seed(1)
    search = DepthSearch(8)
    steps = (torch.arange(16.0) - 7.5) * 0.02
    optimizer = torch.optim.Adam(search.parameters(), 1e-2)
    grid = torch.arange(16.0)

    def draw(n):
        peak = torch.randint(2, 14, (n,))
        bump = torch.exp(-0.5 * (grid[None] - peak[:, None].float()) ** 2)            # (n, D)
        profiles = bump[:, None, :].expand(-1, 15 * 4, -1) + 0.05 * torch.randn(n, 15 * 4, 16)
        return profiles, steps[peak]

    for _ in range(300):
        profiles, truth = draw(16)
        loss = (search(profiles, steps) - truth).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    profiles, truth = draw(64)
    with torch.no_grad():
        assert float((search(profiles, steps) - truth).abs().mean()) < 0.02        # within a step (from ~0.06 m)


def test_depth_search_needs_tubes_and_the_vision_only_ablation_keeps_the_coarse_joints():
    with pytest.raises(Exception, match="depth_search"):
        get_config("c2f_tiny", fine_shape="cube", depth_search=True)
    vision_only = CoarseToFineLifter(SEARCHED_TINY.replace(use_audio=False)).eval()
    assert vision_only.depth_search is None
    batch, _ = synthetic_batch(SEARCHED_TINY, batch_size=1, num_pairs=4, seed=4)
    with torch.no_grad():
        out = vision_only(batch)
    assert out.searched_joints is None and torch.isfinite(out.joints).all()


def test_the_refiners_depth_spread_is_the_standard_deviation_along_the_axis():
    # two equally likely points 0.3 m apart along the axis (and 1 m apart across it, which must not count)
    points = torch.tensor([[[[0.0, 0.0, 3.0], [1.0, 0.0, 3.3]]]])        # (B=1, J=1, N=2, 3)
    logits = torch.zeros(1, 1, 2)
    axis = torch.tensor([[[0.0, 0.0, 1.0]]])
    assert float(JointRefiner.depth_spread(logits, points, axis)) == pytest.approx(0.15)
    # weights 0.8 / 0.2: sqrt(0.8 * 0.2) * 0.3
    logits = torch.log(torch.tensor([[[0.8, 0.2]]]))
    assert float(JointRefiner.depth_spread(logits, points, axis)) == pytest.approx(0.4 * 0.3, rel=1e-5)


def test_a_checkpoint_of_the_other_architecture_is_refused(tmp_path):
    from network.checkpoints import CheckpointError, check_config

    with pytest.raises(CheckpointError, match="arch"):
        check_config(tmp_path / "c.pt", get_config("c2f_tiny"), get_config("tiny"))


def test_a_ray_tube_follows_its_keypoints_viewing_ray():
    from network.coarse_fine import RAY_MIN_CONFIDENCE

    config = get_config("c2f_tiny", fine_shape="ray", ray_samples=9, fine_cube=5, fine_voxel_m=0.02)
    model = CoarseToFineLifter(config)
    focal, cx, cy = 900.0, 960.0, 540.0
    intrinsics = torch.tensor([[[focal, 0, cx], [0, focal, cy], [0, 0, 1.0]]])
    rng = np.random.default_rng(0)
    centers = torch.tensor(rng.uniform([-1, -1, 2.5], [1, 1, 4.5], (1, 15, 3)), dtype=torch.float32)
    keypoints = torch.tensor(np.c_[rng.uniform([200, 100], [1700, 1000], (15, 2)), np.ones(15)][None],
                             dtype=torch.float32)
    keypoints[0, 3, 2] = RAY_MIN_CONFIDENCE / 2            # low confidence: not trusted
    keypoints[0, 4, :2] = float("nan")                      # not found
    tubes = model.ray_tubes(keypoints, intrinsics, centers)
    assert tubes.shape == (1, 15, 9, 5, 5, 3)
    axis_points = tubes[0, :, :, 2, 2]                      # (J, D, 3): the tube's centre line
    for j in range(15):
        line = axis_points[j].double()
        direction = (line[-1] - line[0]) / torch.linalg.vector_norm(line[-1] - line[0])
        # the centre line is a ray from the camera's centre: every point is a multiple of the direction
        assert torch.allclose(torch.linalg.cross(line, direction.expand_as(line)), torch.zeros_like(line), atol=1e-5)
        if j in (3, 4):                                      # untrusted: the ray through the coarse joint
            assert torch.allclose(line[4], centers[0, j].double(), atol=1e-5)
            continue
        u = cx + focal * line[:, 0] / line[:, 2]
        v = cy + focal * line[:, 1] / line[:, 2]
        assert torch.allclose(u, keypoints[0, j, 0].double().expand_as(u), atol=1e-2)
        assert torch.allclose(v, keypoints[0, j, 1].double().expand_as(v), atol=1e-2)
        # centred at the coarse joint's depth along the ray; 9 steps of 2 cm
        assert float(line[4] @ direction) == pytest.approx(float(centers[0, j].double() @ direction), abs=1e-5)
        assert float(torch.linalg.vector_norm(line[8] - line[0])) == pytest.approx(0.16, abs=1e-5)
        # across: two orthogonal 2 cm steps, perpendicular to the ray
        across = tubes[0, j, 4, 3, 2].double() - tubes[0, j, 4, 2, 2].double()
        down = tubes[0, j, 4, 2, 3].double() - tubes[0, j, 4, 2, 2].double()
        assert float(across.norm()) == pytest.approx(0.02, abs=1e-6) and float(down.norm()) == pytest.approx(0.02, abs=1e-6)
        assert abs(float(across @ direction)) < 1e-6 and abs(float(down @ direction)) < 1e-6
        assert abs(float(across @ down)) < 1e-6


def test_coarse_context_is_the_log_probability_at_voxel_centres_and_linear_between():
    config = get_config("c2f_tiny")
    logits = torch.randn(1, 15, *config.grid_shape)
    pose = torch.eye(4)[None]
    pose[0, :3, 3] = torch.tensor([-1.0, -1.2, 2.0])
    centers = voxel_centers_camera(pose, config.grid_shape, config.voxel_size_m)
    a, b = centers[0, 3, 4, 5], centers[0, 4, 4, 5]
    points = torch.stack([a, b, (a + b) / 2])[None, None].expand(1, 15, 3, 3).contiguous()
    context = CoarseToFineLifter.coarse_context(logits, points, {"grid_to_camera": pose}, config.voxel_size_m)
    assert context.shape == (1, 15, 15, 3)
    log_p = torch.log_softmax(logits.reshape(1, 15, -1), -1).reshape(logits.shape)
    for j in (0, 7):             # every joint's fine points read every joint's volume
        assert torch.allclose(context[0, j, :, 0], log_p[0, :, 3, 4, 5], atol=1e-5)
        assert torch.allclose(context[0, j, :, 1], log_p[0, :, 4, 4, 5], atol=1e-5)
        assert torch.allclose(context[0, j, :, 2], (log_p[0, :, 3, 4, 5] + log_p[0, :, 4, 4, 5]) / 2, atol=1e-5)


def test_the_cpu_convolution_shortcut_equals_torchs_convolution_with_gradients():
    """_Conv3d routes small-channel CPU convolutions through oneDNN: same values and gradients as nn.Conv3d."""
    from network.coarse_fine import _Conv3d

    torch.manual_seed(0)
    for in_channels, kernel, padding in ((16, 3, 1), (5, 1, 0)):
        fast = _Conv3d(in_channels, 8, kernel, padding=padding, bias=True)
        plain = torch.nn.Conv3d(in_channels, 8, kernel, padding=padding, bias=True)
        plain.load_state_dict(fast.state_dict())
        x = torch.randn(2, in_channels, 9, 7, 5)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = fast(xa), plain(xb)
        assert torch.allclose(ya, yb, atol=1e-5)
        (ya ** 2).sum().backward()
        (yb ** 2).sum().backward()
        assert torch.allclose(xa.grad, xb.grad, atol=1e-4)
        assert torch.allclose(fast.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-3)
        assert torch.allclose(fast.bias.grad, plain.bias.grad, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", ["c2f_tiny", "tiny"])
def test_on_a_cpu_the_network_runs_channels_last_with_the_same_outputs_and_gradients(name):
    """``on_device`` puts every 3D convolution's weights in channels-last order on a CPU (oneDNN's faster layout);
    the joints and the weights' gradients equal the contiguous network's up to the order of roundings."""
    from network.lifters import on_device, predicted_joints

    config = get_config(name)
    batch, joints = synthetic_batch(config, batch_size=2, num_pairs=4, seed=3)
    batch["joints3d"] = joints
    torch.manual_seed(0)
    plain = build_lifter(config)
    fast = on_device(build_lifter(config), "cpu")
    fast.load_state_dict(plain.state_dict())
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last_3d) for m in convs)
    outputs = []
    for model in (plain, fast):
        model.train()
        model.zero_grad()
        output = model(batch)
        training_loss(config, output, batch).backward()
        outputs.append((predicted_joints(config, output, batch).detach(),
                        torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])))
    (joints_a, grads_a), (joints_b, grads_b) = outputs
    torch.testing.assert_close(joints_b, joints_a, rtol=0, atol=1e-5)
    torch.testing.assert_close(grads_b, grads_a, rtol=1e-3, atol=1e-6 * float(grads_a.abs().max()))
