"""network model half: config, PoseKernelLifter, heatmaps (targets, loss, sub-voxel decoding), the
average-height baseline. Tiny grids only (CPU, < 60 s in all)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from network.baselines import (
    AverageHeightLifter,
    canonical_skeleton,
    lift_average_height,
)
from network.config import CONFIGS, NetworkConfig, NetworkConfigError, get_config
from network.heatmaps import (
    gaussian_targets,
    heatmap_loss,
    soft_argmax_joints,
    soft_argmax_voxel,
)
from network.model import (
    ModelInputError,
    PoseKernelLifter,
    count_parameters,
    synthetic_batch,
)
from pipeline.grid import VoxelGrid, camera_to_voxel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return get_config("tiny")


@pytest.fixture(scope="module")
def example(tiny):
    return synthetic_batch(tiny, batch_size=2, num_pairs=4, seed=1)


def _model(config, seed=0):
    """A model whose prediction heads are random (they start at zero), so every input shows in the output."""
    torch.manual_seed(seed)
    model = PoseKernelLifter(config).eval()
    with torch.no_grad():
        for stage in model.stages:
            torch.nn.init.normal_(stage[-1].weight, std=0.1)
            torch.nn.init.normal_(stage[-1].bias, std=0.1)
    return model


def test_prediction_heads_start_silent(tiny, example):
    batch, joints = example
    torch.manual_seed(0)
    model = PoseKernelLifter(tiny).eval()
    with torch.no_grad():
        outputs = model(batch)
    assert all(float(out.abs().max()) == 0.0 for out in outputs)
    # ... but they learn: one step moves them off zero.
    targets = gaussian_targets(joints, batch["grid_to_camera"], tiny.grid_shape, tiny.voxel_size_m)
    loss = heatmap_loss(model.train()(batch), targets)
    loss.backward()
    assert float(model.stages[0][-1].weight.grad.abs().max()) > 0


def _clone(batch):
    return {k: v.clone() for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------- config


def test_config_defaults_are_the_paper():
    c = NetworkConfig()
    assert c.grid_shape == (70, 70, 50) and c.voxel_size_m == 0.05 and c.stages == 6
    assert c.channels == 32 and c.audio_channels == 16 and c.kernel_samples == 4800
    assert c.sample_rate_hz == 96000.0 and c.image_size_px == (1920, 1080) and c.name == "paper"
    assert np.allclose(c.extent_m, (3.5, 3.5, 2.5))
    assert get_config("paper") == c
    for name, preset in CONFIGS.items():
        assert preset.name == name
        assert NetworkConfig.from_dict(preset.to_dict()) == preset
        assert 3.4 <= preset.extent_m[0] <= 3.6


def test_config_errors():
    with pytest.raises(NetworkConfigError, match="unknown network configuration 'huge'"):
        get_config("huge")
    with pytest.raises(NetworkConfigError, match="grid_shape"):
        NetworkConfig(grid_shape=(70, 70))
    with pytest.raises(NetworkConfigError, match="grid_shape"):
        NetworkConfig(grid_shape=(70, 0, 50))
    with pytest.raises(NetworkConfigError, match="voxel_size_m"):
        NetworkConfig(voxel_size_m=-0.05)
    with pytest.raises(NetworkConfigError, match="stages"):
        NetworkConfig(stages=0)
    with pytest.raises(NetworkConfigError, match="both False"):
        NetworkConfig(use_audio=False, use_vision=False)
    with pytest.raises(NetworkConfigError, match="norm"):
        NetworkConfig(norm="layer")
    with pytest.raises(NetworkConfigError, match="unknown NetworkConfig field"):
        NetworkConfig.from_dict({"grid_shap": [1, 2, 3]})
    assert get_config("tiny", stages=3).stages == 3
    assert CONFIGS["tiny"].stages == 2  # presets are not modified


# ---------------------------------------------------------------------------------------------- model


def test_forward_shapes_per_stage(tiny, example):
    batch, _ = example
    model = _model(tiny)
    outputs = model(batch)
    assert len(outputs) == tiny.stages
    for out in outputs:
        assert out.shape == (2, 15, *tiny.grid_shape)
        assert torch.isfinite(out).all()
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) > 0
    assert count_parameters(PoseKernelLifter(get_config("small"))) > count_parameters(model)


def test_batchnorm_variant_and_input_errors(tiny, example):
    batch, _ = example
    model = PoseKernelLifter(tiny.replace(norm="batch"))
    assert model(batch)[-1].shape == (2, 15, *tiny.grid_shape)
    broken = _clone(batch)
    del broken["intrinsics"]
    with pytest.raises(ModelInputError, match="intrinsics"):
        model(broken)
    broken = _clone(batch)
    broken["keypoints2d"] = broken["keypoints2d"][:, :14]
    with pytest.raises(ModelInputError, match="keypoints2d"):
        model(broken)


def test_encodings_on_input_device(tiny, example):
    batch, joints = example
    model = _model(tiny)
    audio = model.audio_encoding(batch)
    visual = model.visual_encoding(batch)
    assert audio.device == batch["kernels"].device and audio.shape == (2, 4, *tiny.grid_shape)
    assert visual.device == batch["kernels"].device and visual.shape == (2, 15, *tiny.grid_shape)
    # A point reflector's echo lights up its own voxel more than the grid on average.
    coords = camera_to_voxel(joints, batch["grid_to_camera"], tiny.voxel_size_m).round().long()
    at_joints = audio[0, 0][coords[0, :, 0], coords[0, :, 1], coords[0, :, 2]]
    assert at_joints.mean() > 3 * audio[0, 0].mean()
    # The visual cone of each joint passes through the joint's neighbourhood.
    for j in range(15):
        x, y, z = coords[0, j].tolist()
        near = visual[0, j, max(x - 1, 0):x + 2, max(y - 1, 0):y + 2, max(z - 1, 0):z + 2]
        assert near.max() > 0.25 * visual[0, j].max() > 0


def test_pair_permutation_and_masked_pairs_change_nothing(tiny, example):
    batch, _ = example
    model = _model(tiny)
    with torch.no_grad():
        reference = model(batch)[-1]
        permuted = _clone(batch)
        order = torch.tensor([2, 0, 3, 1])
        for key in ("kernels", "pair_index", "pair_mask"):
            permuted[key] = permuted[key][:, order]
        assert torch.allclose(model(permuted)[-1], reference, atol=1e-6)
        # Shuffle the transducers too: pair_index follows.
        moved = _clone(batch)
        perm = torch.tensor([3, 1, 0, 2])
        moved["speaker_pos"] = batch["speaker_pos"][:, perm]
        moved["mic_pos"] = batch["mic_pos"][:, perm]
        moved["pair_index"] = torch.argsort(perm)[batch["pair_index"]]
        assert torch.allclose(model(moved)[-1], reference, atol=1e-6)
        # Two dummy pairs of garbage, masked out (one with an out-of-range index).
        padded = _clone(batch)
        padded["kernels"] = torch.cat([batch["kernels"], 5 * torch.randn(2, 2, batch["kernels"].shape[-1])], 1)
        padded["pair_index"] = torch.cat([batch["pair_index"], torch.tensor([[[0, 1], [-1, 9]]] * 2)], 1)
        padded["pair_mask"] = torch.cat([batch["pair_mask"], torch.zeros(2, 2, dtype=torch.bool)], 1)
        assert torch.allclose(model(padded)[-1], reference, atol=1e-6)
        # Variable pair counts in one batch: frame 1 loses a pair, frame 0 is unchanged.
        fewer = _clone(batch)
        fewer["pair_mask"][1, 3] = False
        out = model(fewer)[-1]
        assert torch.allclose(out[0], reference[0], atol=1e-6)
        assert not torch.allclose(out[1], reference[1], atol=1e-6)
        # Without pair_mask every pair counts.
        unmasked = _clone(batch)
        del unmasked["pair_mask"]
        assert torch.allclose(model(unmasked)[-1], reference, atol=1e-6)


def test_long_kernels_are_cropped(tiny, example):
    batch, _ = example
    model = _model(tiny)
    longer = _clone(batch)
    longer["kernels"] = torch.cat([batch["kernels"], torch.randn(2, 4, 300)], -1)
    with torch.no_grad():
        assert torch.allclose(model(longer)[-1], model(batch)[-1], atol=1e-6)


def test_audio_and_vision_switches(tiny, example):
    batch, _ = example
    silent = _clone(batch)
    silent["kernels"] = torch.zeros_like(batch["kernels"])
    blind = _clone(batch)
    blind["keypoints2d"] = batch["keypoints2d"] + torch.tensor([60.0, -40.0, 0.0])
    with torch.no_grad():
        both = _model(tiny)
        assert not torch.allclose(both(silent)[-1], both(batch)[-1], atol=1e-5)
        assert not torch.allclose(both(blind)[-1], both(batch)[-1], atol=1e-5)
        vision_only = _model(tiny.replace(use_audio=False))
        assert torch.allclose(vision_only(silent)[-1], vision_only(batch)[-1])
        assert not torch.allclose(vision_only(blind)[-1], vision_only(batch)[-1], atol=1e-5)
        audio_only = _model(tiny.replace(use_vision=False))
        assert torch.allclose(audio_only(blind)[-1], audio_only(batch)[-1])
        assert not torch.allclose(audio_only(silent)[-1], audio_only(batch)[-1], atol=1e-5)


def test_overfits_one_example(tiny):
    batch, joints = synthetic_batch(tiny, batch_size=1, num_pairs=4, seed=3)
    targets, mask = gaussian_targets(joints, batch["grid_to_camera"], tiny.grid_shape, tiny.voxel_size_m,
                                     tiny.target_sigma_voxels, return_mask=True)
    assert mask.all()
    torch.manual_seed(0)
    model = PoseKernelLifter(tiny).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = heatmap_loss(model(batch), targets, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses


# ---------------------------------------------------------------------------------------------- heatmaps


def _grid(shape=(16, 16, 12), voxel=0.22):
    return VoxelGrid.centered_at([0.1, 0.2, 3.0], shape=shape, voxel_size_m=voxel)


def test_gaussian_targets_peak_and_mask():
    grid = _grid()
    pose = grid.pose_tensor()[None]
    centre = torch.tensor(grid.center_camera_m, dtype=torch.float32)
    on_voxel = grid.voxel_to_camera(torch.tensor([[5.0, 7.0, 3.0]]))[0]
    joints = torch.stack([on_voxel, centre, centre + torch.tensor([5.0, 0, 0]), torch.tensor([float("nan")] * 3)])[None]
    targets, mask = gaussian_targets(joints, pose, grid.shape, grid.voxel_size_m, 1.5, return_mask=True)
    assert targets.shape == (1, 4, *grid.shape) and mask.tolist() == [[True, True, False, False]]
    assert torch.isclose(targets[0, 0, 5, 7, 3], torch.tensor(1.0)) and targets[0, 0].max() <= 1.0
    assert targets[0, 0, 6, 7, 3] == pytest.approx(math.exp(-0.5 / 1.5 ** 2), rel=1e-5)
    assert targets[0, 2].abs().max() == 0 and targets[0, 3].abs().max() == 0
    assert torch.equal(gaussian_targets(joints, pose, grid.shape, grid.voxel_size_m, 1.5), targets)


def test_soft_argmax_is_sub_voxel():
    grid = _grid()
    pose = grid.pose_tensor()[None]
    generator = torch.Generator().manual_seed(0)
    coords = torch.rand(1, 15, 3, generator=generator) * (torch.tensor(grid.shape) - 5) + 2  # off-grid points
    joints = grid.voxel_to_camera(coords)
    targets = gaussian_targets(joints, pose, grid.shape, grid.voxel_size_m, 1.5)
    decoded = soft_argmax_joints(targets, pose, grid.voxel_size_m)
    error_voxels = (decoded - joints).norm(dim=-1) / grid.voxel_size_m
    assert error_voxels.max() < 0.1
    argmax_error = (coords - coords.round()).norm(dim=-1)
    assert argmax_error.max() > 0.3  # what plain argmax would lose
    # Noisy heatmaps still decode within a fraction of a voxel; a flat one falls back without NaN.
    noisy = targets + 0.02 * torch.randn(targets.shape, generator=generator)
    assert ((soft_argmax_joints(noisy, pose, grid.voxel_size_m) - joints).norm(dim=-1) / grid.voxel_size_m).max() < 0.3
    flat = soft_argmax_voxel(torch.zeros(1, 2, 5, 5, 5))
    assert torch.isfinite(flat).all()


def test_heatmap_loss_sums_stages_and_masks():
    torch.manual_seed(0)
    targets = torch.rand(2, 15, 4, 4, 3)
    assert heatmap_loss([targets, targets], targets) == 0
    wrong = targets + 1.0
    assert heatmap_loss([wrong], targets) == pytest.approx(1.0)
    assert heatmap_loss([wrong, wrong, targets], targets) == pytest.approx(2.0)
    mask = torch.ones(2, 15, dtype=torch.bool)
    mask[0, 3] = False
    bad = targets.clone()
    bad[0, 3] += 100
    assert heatmap_loss([bad], targets, mask) == 0
    assert heatmap_loss([bad], targets) > 0


# ---------------------------------------------------------------------------------------------- baseline


def _project(joints, focal=1000.0, size=(1920, 1080)):
    k = torch.tensor([[focal, 0, (size[0] - 1) / 2], [0, focal, (size[1] - 1) / 2], [0, 0, 1.0]], dtype=torch.float64)
    uvw = joints @ k.T
    kp = torch.cat([uvw[..., :2] / uvw[..., 2:], torch.ones_like(uvw[..., :1])], -1)
    return kp, k.expand(joints.shape[0], 3, 3)


def test_average_height_baseline_scale():
    depth = 3.0
    statures = [1.1, 1.45, 1.7, 1.9]
    joints = torch.stack([torch.tensor(canonical_skeleton(h)) + torch.tensor([0.2, 1.1, depth]) for h in statures])
    keypoints, k = _project(joints)
    lifted = lift_average_height(keypoints, k)
    assert lifted.shape == (4, 15, 3)
    ratio = lifted[:, :, 2].mean(1) / depth
    assert torch.allclose(ratio, torch.tensor([1.7 / h for h in statures], dtype=ratio.dtype), rtol=1e-6)
    error = (lifted - joints).norm(dim=-1).mean(1)
    assert error[2] < 1e-6  # the average stature is lifted exactly
    assert error[0] > error[1] > error[2] and error[3] > error[2]
    assert torch.equal(AverageHeightLifter()({"keypoints2d": keypoints, "intrinsics": k}), lifted)
    # A missing knee/ankle leaves the other leg to measure; nothing visible gives NaN.
    partial = keypoints.clone()
    partial[:, 10, 2] = 0
    assert torch.allclose(lift_average_height(partial, k), lifted)
    partial[:, :, 2] = 0
    assert torch.isnan(lift_average_height(partial, k)).all()
    with pytest.raises(ValueError):
        lift_average_height(keypoints[:, :14], k)


def test_average_height_lifter_puts_missed_joints_on_the_body_not_at_pixel_zero():
    from network.baselines import lift_average_height
    from network.model import synthetic_batch
    from network.config import get_config

    batch, joints = synthetic_batch(get_config("tiny"), batch_size=1, num_pairs=4, seed=0)
    keypoints = batch["keypoints2d"].clone()
    keypoints[0, 5] = 0.0  # the detector missed the right wrist: (0, 0) pixels, confidence 0
    lifted = lift_average_height(keypoints, batch["intrinsics"])
    others = torch.cat([lifted[0, :5], lifted[0, 6:]])
    assert torch.isfinite(lifted).all()
    assert torch.linalg.vector_norm(lifted[0, 5] - others.mean(0)) < 0.5


def test_compiled_convolutions_give_the_same_heatmaps_and_checkpoint_keys(tiny, example):
    batch, _ = example
    model = _model(tiny)
    keys = list(model.state_dict())
    with torch.no_grad():
        eager = model(batch)[-1]
        compiled = model.compile_convolutions()(batch)[-1]
    assert list(model.state_dict()) == keys              # checkpoints load with or without compilation
    assert torch.allclose(compiled, eager, atol=1e-4)


def test_network_benchmark_runs_and_splits_a_training_step(tiny):
    from experiments.bench_network import bench_breakdown, bench_case

    device = torch.device("cpu")
    case = bench_case(tiny, device, pairs=2, infer_batch=1, train_batch=1, repeats=1, amp=False)
    assert case["infer_fps"] > 0 and case["train_samples_per_s"] > 0 and case["parameters"] == count_parameters(
        PoseKernelLifter(tiny))
    parts = bench_breakdown(tiny, device, pairs=2, batch_size=1, repeats=1, amp=False)
    assert all(parts[k] > 0 for k in ("encodings_s", "audio_stack_fwd_bwd_s", "fusion_and_stages_fwd_bwd_s"))
