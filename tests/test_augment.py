"""Training augmentation (network.augment): each augmentation against what it must preserve, and the
synthetic training set's per-epoch draws, in-memory reading and command-line switches."""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
import torch

from bodies.joints import FLIP_PERMUTATION, JOINT_NAMES
from network.augment import (Augmentation, AugmentationError, _choose_pairs, augment_frame, colocated_pairs,
                             frame_rngs, grid_is_mirror_symmetric, jitter_kernels, mirror_frame, redraw_keypoints,
                             subset_pairs)
from network.config import get_config
from network.data import SynthFrames, collate, synthetic_frame
from simulator.detector import DetectorConfig, DetectorModel

CONFIG = get_config("tiny")
WIDTH, HEIGHT = 1920, 1080
# a camera whose principal point is off-centre and with a skew, so that both must be mirrored
K = np.array([[914.0, 2.0, 941.0], [0.0, 914.0, 547.0], [0.0, 0.0, 1.0]])
EXACT = DetectorModel(DetectorConfig(noise_px_at_input=0.0, miss_prob=0.0, occluded_miss_prob=0.0, swap_prob=0.0,
                                     confidence_std=0.0))


def project(joints, k):
    p = np.asarray(joints, float) @ np.asarray(k, float).T
    return p[:, :2] / p[:, 2:]


def make_frame(seed=0, mic_order=(2, 0, 3, 1), grid_center=None):
    """4 speakers x 4 microphones; microphone mic_order[s] sits 1 cm from speaker s (co-located pairs are
    (s, mic_order[s]), not (s, s)); a random body 3.5 m in front; keypoints the exact projections."""
    rng = np.random.default_rng(seed)
    speakers = np.array([[-1.0, 0.3, 0.0], [1.0, 0.3, 0.0], [-0.6, -0.4, 0.1], [0.7, -0.2, 0.05]])
    mics = np.zeros((4, 3))
    mics[list(mic_order)] = speakers + [0.01, 0.0, 0.0]
    joints = np.column_stack([rng.uniform(-0.4, 0.5, 15), rng.uniform(-0.6, 0.9, 15), rng.uniform(3.2, 3.8, 15)])
    keypoints = np.column_stack([project(joints, K), np.ones(15)])
    pair_index = np.array([(s, m) for s in range(4) for m in range(4)])
    item = {"kernels": rng.standard_normal((16, CONFIG.kernel_samples)), "pair_index": pair_index,
            "speaker_pos": speakers, "mic_pos": mics, "keypoints2d": keypoints, "intrinsics": K,
            "speed_of_sound": 343.0, "cam_to_world": np.eye(4), "joints3d": joints, "is_minor": False,
            "room_id": 3, "index": 7}
    config = CONFIG if grid_center is None else dataclasses.replace(CONFIG, grid_center_m=grid_center)
    return synthetic_frame(item, config)


def delays_m(frame):
    """(P, 15) path length speaker -> joint -> microphone of every pair and joint, metres."""
    s = frame["speaker_pos"].numpy()[frame["pair_index"][:, 0].numpy()]
    m = frame["mic_pos"].numpy()[frame["pair_index"][:, 1].numpy()]
    j = frame["joints3d"].numpy()
    return np.linalg.norm(s[:, None] - j[None], axis=-1) + np.linalg.norm(j[None] - m[:, None], axis=-1)


def test_mirror_keeps_every_delay_and_projects_the_mirrored_joints():
    frame = make_frame()
    occluded = np.zeros(15, bool)
    occluded[JOINT_NAMES.index("l_wrist")] = True
    mirrored, flipped = mirror_frame(frame, WIDTH, occluded)
    # the mirrored joint j is the original joint FLIP_PERMUTATION[j]: same path lengths, bit for bit
    np.testing.assert_array_equal(delays_m(mirrored), delays_m(frame)[:, FLIP_PERMUTATION])
    assert torch.equal(mirrored["kernels"], frame["kernels"])
    assert flipped[JOINT_NAMES.index("r_wrist")] and flipped.sum() == 1
    # x negated, left and right swapped
    l_wrist, r_wrist = JOINT_NAMES.index("l_wrist"), JOINT_NAMES.index("r_wrist")
    assert mirrored["joints3d"][r_wrist, 0] == -frame["joints3d"][l_wrist, 0]
    # mirrored keypoints = projections of the mirrored joints through the mirrored camera
    k = mirrored["intrinsics"].numpy().astype(float)
    assert k[0, 2] == pytest.approx(WIDTH - 1 - 941.0) and k[0, 1] == pytest.approx(-2.0)
    expected = project(mirrored["joints3d"].numpy(), k)
    np.testing.assert_allclose(mirrored["keypoints2d"][:, :2].numpy(), expected, atol=2e-3)
    # and so does the detector model with its noise off, drawing from the mirrored frame
    redrawn = redraw_keypoints(mirrored, EXACT, (WIDTH, HEIGHT), np.random.default_rng(0), flipped)
    np.testing.assert_allclose(redrawn["keypoints2d"][:, :2].numpy(), mirrored["keypoints2d"][:, :2].numpy(),
                               atol=2e-3)
    # mirroring twice gives the frame back; a missed keypoint stays (0, 0, 0)
    frame["keypoints2d"][0] = 0.0
    twice, _ = mirror_frame(mirror_frame(frame, WIDTH)[0], WIDTH)
    for key in ("joints3d", "keypoints2d", "speaker_pos", "mic_pos", "intrinsics"):
        torch.testing.assert_close(twice[key], frame[key])
    assert torch.all(mirror_frame(frame, WIDTH)[0]["keypoints2d"][0] == 0)


def test_mirroring_only_on_a_mirror_symmetric_grid():
    centred, shifted = make_frame(), make_frame(grid_center=(0.3, 0.2, 3.5))
    assert grid_is_mirror_symmetric(centred["grid_to_camera"], CONFIG.grid_shape, CONFIG.voxel_size_m)
    assert not grid_is_mirror_symmetric(shifted["grid_to_camera"], CONFIG.grid_shape, CONFIG.voxel_size_m)
    only_mirror = Augmentation(pair_subset_prob=0.0, redraw_keypoints=False, gain_jitter_db=0.0, noise_prob=0.0,
                               mirror_prob=1.0)
    args = ((WIDTH, HEIGHT), CONFIG.grid_shape, CONFIG.voxel_size_m)
    out = augment_frame(centred, only_mirror, frame_rngs(0, 0, 7), *args)
    assert torch.equal(out["joints3d"], mirror_frame(centred, WIDTH)[0]["joints3d"])
    out = augment_frame(shifted, only_mirror, frame_rngs(0, 0, 7), *args)
    assert torch.equal(out["joints3d"], shifted["joints3d"])


def test_colocated_pairs_are_found_by_geometry():
    frame = make_frame(mic_order=(2, 0, 3, 1))
    found = colocated_pairs(frame)
    pairs = {tuple(p) for p in frame["pair_index"][torch.from_numpy(found)].tolist()}
    assert pairs == {(0, 2), (1, 0), (2, 3), (3, 1)}      # not the equal-index pairs (0, 0), (1, 1), ...
    assert not colocated_pairs(frame, distance_m=0.005).any()


def test_pair_subsets_keep_present_pairs_and_exactly_the_colocated_ones():
    frame = make_frame()
    colocated = colocated_pairs(frame)
    aug = Augmentation(pair_subset_prob=1.0, colocated_share=0.3, min_pairs=2)
    rows = [tuple(p) for p in frame["pair_index"].tolist()]
    counts, colocated_seen = set(), 0
    for seed in range(300):
        keep = _choose_pairs(frame, aug, np.random.default_rng(seed))
        out = subset_pairs(frame, keep)
        kept_rows = [tuple(p) for p in out["pair_index"].tolist()]
        assert set(kept_rows) <= set(rows) and len(set(kept_rows)) == len(kept_rows) >= 2
        # the kept kernels are the originals, renormalised by one factor over the kept pairs
        original = frame["kernels"][torch.from_numpy(keep)]
        ratio = (out["kernels"] / original).numpy()
        np.testing.assert_allclose(ratio, ratio[0, 0], rtol=1e-4)
        colocated_seen += bool(np.array_equal(keep, colocated))
        counts.add(len(kept_rows))
    assert colocated_seen >= 60                    # ~0.3 x 300 = 90
    assert {2, 16} <= counts                       # as few as 2, as many as all
    batch = collate([subset_pairs(frame, colocated), frame])
    assert batch["pair_mask"].sum(dim=1).tolist() == [4, 16]
    assert _choose_pairs(frame, Augmentation(pair_subset_prob=0.0), np.random.default_rng(0)) is None


def test_gain_jitter_keeps_each_kernel_shape_and_noise_has_its_snr():
    frame = make_frame()
    kernels = frame["kernels"]
    gain_db = np.linspace(-3, 3, 16)
    out = jitter_kernels(kernels, gain_db, None, np.random.default_rng(0)).numpy().astype(float)
    ratio = out / kernels.numpy()
    # each pair: its kernel times one factor; between pairs, the drawn gains (a global gain is normalised away)
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(ratio.shape[1], axis=1), rtol=1e-4)
    np.testing.assert_allclose(20 * np.log10(ratio[:, 0] / ratio[0, 0]), gain_db - gain_db[0], atol=1e-4)
    same = jitter_kernels(kernels, np.full(16, 2.5), None, np.random.default_rng(0))
    torch.testing.assert_close(same, kernels)
    # white noise at 20 dB below the kernels' RMS
    noisy = jitter_kernels(kernels, np.zeros(16), 20.0, np.random.default_rng(1)).numpy().astype(float)
    clean = kernels.numpy().astype(float)
    # undo the renormalisation with the least-squares factor, then measure the added noise
    factor = np.sum(noisy * clean) / np.sum(clean * clean)
    residual = noisy / factor - clean
    assert np.sqrt(np.mean(residual ** 2)) / np.sqrt(np.mean(clean ** 2)) == pytest.approx(0.1, rel=0.03)


def test_augmentation_config_is_checked():
    with pytest.raises(AugmentationError, match="mirror_prob"):
        Augmentation(mirror_prob=1.5)
    with pytest.raises(AugmentationError, match="min_pairs"):
        Augmentation(min_pairs=0)


def test_training_frames_redraw_per_epoch_and_read_the_same_from_memory(tiny_store):
    aug = Augmentation(pair_subset_prob=0.0, gain_jitter_db=0.0, noise_prob=0.0, mirror_prob=0.0)
    streamed = SynthFrames(tiny_store, CONFIG, split=None, augmentation=aug, seed=4)
    memory = SynthFrames(tiny_store, CONFIG, split=None, augmentation=aug, seed=4, in_memory=True)
    plain = SynthFrames(tiny_store, CONFIG, split=None)
    first = streamed[1]["keypoints2d"]
    assert torch.equal(streamed[1]["keypoints2d"], first)          # same (epoch, frame): same draw
    assert torch.equal(memory[1]["keypoints2d"], first)            # whichever way the frame is read
    streamed.set_epoch(1)
    assert not torch.equal(streamed[1]["keypoints2d"][:, :2], first[:, :2])   # a new epoch: a new draw
    assert not torch.equal(plain[1]["keypoints2d"][:, :2], first[:, :2])      # not the stored draw
    # redrawn keypoints scatter around the projections of the stored joints (a few pixels, misses aside)
    frame = plain[1]
    detected = first[:, 2] > 0
    truth = project(frame["joints3d"].numpy(), frame["intrinsics"].numpy())
    assert np.median(np.abs(first[detected, :2].numpy() - truth[detected.numpy()])) < 20
    # in memory, without augmentation: every key equal to the frame read from the store
    unaugmented = SynthFrames(tiny_store, CONFIG, split=None, in_memory=True)
    for i in range(len(plain)):
        a, b = plain[i], unaugmented[i]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_empty_split_reads_into_memory_as_no_frames(tiny_store):
    import zarr

    splits = np.asarray(zarr.open_group(str(tiny_store), mode="r")["split"][:])
    empty = next(name for code, name in enumerate(("train", "val", "test")) if not np.any(splits == code))
    frames = SynthFrames(tiny_store, CONFIG, split=empty, in_memory=True)
    assert len(frames) == 0 and all(len(v) == 0 for v in frames.memory.values())


def test_train_flags_switch_augmentation_and_memory():
    from network.train_config import TrainConfig, add_arguments

    parser = add_arguments(argparse.ArgumentParser())
    defaults = parser.parse_args([])
    assert defaults.augment is True and defaults.in_memory is False
    flipped = parser.parse_args(["--no-augment", "--in-memory"])
    assert flipped.augment is False and flipped.in_memory is True
    assert TrainConfig(**vars(flipped)).augment is False
    assert TrainConfig.from_dict({}).augment is True       # checkpoints from before keep the default


def test_checkpoints_record_the_pair_counts_that_subsets_draw():
    from network.augment import Augmentation

    assert Augmentation().pair_counts([16]) == list(range(2, 17))
    assert Augmentation(min_pairs=4).pair_counts([4, 6]) == [4, 5, 6]
    assert Augmentation(pair_subset_prob=0.0).pair_counts([16]) == [16]
