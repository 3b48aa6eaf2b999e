"""Evaluation that can be trusted: room-bootstrap intervals on every cell, the too-few-rooms path, the
methods beside ours (geometric baseline, population-mean prior, co-located pairs by geometry) and claim
verdicts from intervals. Every expected value is worked out by hand or from the same resamples."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from experiments import claims as cl
from network import evaluate as ev
from network.baselines import canonical_skeleton, geometric_baseline, population_mean_stature
from network.bootstrap import MIN_ROOMS, Interval, room_resamples
from network.config import get_config
from network.inference import colocated_pairs, mask_colocated_only, run_methods
from network.model import synthetic_batch
from pipeline.grid import camera_to_voxel


def _room_offset_case(room_errors_cm, frames_per_room=3):
    """Frames whose every joint is off by the room's error (cm) along x; rooms numbered 10, 11, ..."""
    rooms = np.repeat(np.arange(10, 10 + len(room_errors_cm)), frames_per_room)
    truth = np.zeros((len(rooms), 15, 3))
    pred = truth.copy()
    pred[..., 0] = np.repeat(np.asarray(room_errors_cm, float), frames_per_room)[:, None] / 100.0
    return pred, truth, rooms


# -- intervals on the evaluation's cells ------------------------------------------------------------------
def test_every_cell_carries_the_interval_of_resampled_rooms():
    # Room r (r = 1..6 cm): every joint of every frame off by r cm. Equal frame counts, so a resample's MPJPE
    # is the mean of the 6 drawn room errors and its PCK@3 the share of drawn rooms with error <= 3.
    errors = np.arange(1.0, 7.0)
    pred, truth, rooms = _room_offset_case(errors)
    cells = ev.metric_intervals(pred, truth, None, rooms, thresholds_cm=(3,), resamples=2000, seed=0)
    draws = room_resamples(6, 2000, seed=0)                     # the same resamples the evaluation draws
    expected_mean = np.percentile(errors[draws].mean(1), [2.5, 97.5])
    expected_pck = np.percentile((errors[draws] <= 3).mean(1), [2.5, 97.5])
    for group in ev.GROUPS:
        mpjpe = cells["mpjpe_cm"]["all"][group]
        assert mpjpe.estimate == pytest.approx(3.5) and mpjpe.rooms == 6
        assert (mpjpe.low, mpjpe.high) == pytest.approx(tuple(expected_mean))
        pck = cells["pck"]["all"][3][group]
        assert pck.estimate == pytest.approx(0.5)
        assert (pck.low, pck.high) == pytest.approx(tuple(expected_pck))
    assert 1.0 < expected_mean[0] < 3.5 < expected_mean[1] < 6.0          # a real spread, not a point
    median = cells["median_cm"]["all"]["Mean"]
    p90 = cells["p90_cm"]["all"]["Mean"]
    # 270 joint errors, 45 of each room's value: the 90th percentile (position 0.9 x 269 = 242.1) is in room 6's
    assert median.estimate == pytest.approx(3.5) and p90.estimate == pytest.approx(6.0)
    assert 1.0 <= median.low <= median.high <= 6.0 and p90.high <= 6.0
    # the tables print "estimate [low, high]"
    results = {"ours": {"mpjpe_cm": ev.mpjpe_by_group(pred, truth, np.zeros(len(rooms), bool)),
                        "pck": ev.pck_by_group(pred, truth, (3,), np.zeros(len(rooms), bool)),
                        "intervals": ev.metric_intervals(pred, truth, np.zeros(len(rooms), bool), rooms, (3,))}}
    text = ev.format_tables(results, (3,))
    adult = results["ours"]["intervals"]["mpjpe_cm"]["adult"]["Mean"]
    assert f"– / {adult.estimate:.1f} [{adult.low:.1f}, {adult.high:.1f}]" in text
    assert "## Table 3. Median and 90th percentile" in text


def test_an_evaluation_with_too_few_rooms_reports_estimates_without_intervals():
    pred, truth, rooms = _room_offset_case([2.0, 4.0, 6.0])
    assert MIN_ROOMS > 3
    cells = ev.metric_intervals(pred, truth, None, rooms, thresholds_cm=(10,))
    mean = cells["mpjpe_cm"]["all"]["Mean"]
    assert mean.estimate == pytest.approx(4.0) and not mean.has_bounds and "3 rooms" in mean.note
    assert not cells["pck"]["all"][10]["Head"].has_bounds
    note = ev.rooms_note(rooms)
    assert "only 3 room(s)" in note and f"at least {MIN_ROOMS}" in note
    assert ev.rooms_note(np.arange(MIN_ROOMS)) == ""
    results = {"ours": {"mpjpe_cm": {}, "pck": {}, "intervals": ev.metric_intervals(
        pred, truth, np.zeros(9, bool), rooms, (10,))}}
    assert "| " + " | ".join(["– / 4.0"] * 9) + " |" in ev.format_tables(results, (10,))


# -- methods beside ours ----------------------------------------------------------------------------------
def test_the_geometric_baseline_lands_within_a_voxel_on_exact_frames():
    config = get_config("tiny")
    batch, joints = synthetic_batch(config, batch_size=3, num_pairs=4, seed=1)
    pred = geometric_baseline(batch, config)
    truth_voxel = camera_to_voxel(joints, batch["grid_to_camera"], config.voxel_size_m).round()
    pred_voxel = camera_to_voxel(pred, batch["grid_to_camera"], config.voxel_size_m)
    assert torch.allclose(pred_voxel, pred_voxel.round(), atol=1e-3)       # it answers voxel centres
    assert (truth_voxel - pred_voxel.round()).abs().amax().item() <= 1     # every joint: its voxel or a neighbour
    # without sound the arg-max has only the rays: it cannot find depth
    mute = dict(batch, pair_mask=torch.zeros_like(batch["pair_mask"]))
    assert (geometric_baseline(mute, config) - joints).norm(dim=-1).mean() > (pred - joints).norm(dim=-1).mean()


def test_the_population_mean_stature_prior(tiny_store):
    import zarr

    root = zarr.open_group(str(tiny_store), mode="r")
    heights, split = np.asarray(root["height"][:], float), np.asarray(root["split"][:])
    mean_m, note = population_mean_stature(tiny_store)
    assert mean_m == pytest.approx(heights[split == 0].mean()) and "train" in note
    fallback, note = population_mean_stature("/nonexistent/captures")
    assert fallback == 1.7 and "1.7" in note
    # A flat body of that stature at 3 m is lifted exactly with the prior, and 1.7 / stature too far by the 1.7 m one.
    body = canonical_skeleton(1.45) + np.array([0.0, 1.2, 3.0])
    k = np.array([[1000.0, 0, 960], [0, 1000.0, 540], [0, 0, 1]])
    uv = body @ k.T
    reference = {"keypoints2d": np.concatenate([uv[:, :2] / uv[:, 2:], np.ones((15, 1))], 1)[None],
                 "intrinsics": k[None]}
    pred = run_methods(["vision_mean_stature", "vision_avg_height"], reference, None, "cpu", False,
                       mean_stature_m=1.45)
    assert np.abs(pred["vision_mean_stature"][0] - body).max() < 1e-6
    assert pred["vision_avg_height"][0, :, 2] == pytest.approx(3.0 * 1.7 / 1.45)


def test_colocated_pairs_are_chosen_by_geometry_not_by_index():
    pairs = torch.tensor([[s, m] for s in range(2) for m in range(2)])[None].expand(2, 4, 2)   # 00 01 10 11
    speakers = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    colocated_mics = speakers + torch.tensor([0.0, -0.02, 0.0])                # 2 cm above its speaker
    separated_mics = torch.tensor([[0.0, 0.0, 2.5], [-1.5, 0.3, 0.0]])          # mic i metres from speaker i
    batch = {"pair_index": pairs, "pair_mask": torch.ones(2, 4, dtype=torch.bool),
             "speaker_pos": speakers[None].expand(2, 2, 3), "mic_pos": torch.stack([colocated_mics, separated_mics])}
    kept = mask_colocated_only(batch)["pair_mask"].tolist()
    assert kept[0] == [True, False, False, True]             # exactly the co-located pairs
    assert kept[1] == [False, False, False, False]           # equal indices, far apart: none kept
    assert colocated_pairs(batch).sum(1).tolist() == [2, 0]
    # synthetic_batch's transducers are co-located (distance 0): every pair kept
    exact, _ = synthetic_batch(get_config("tiny"), batch_size=1, num_pairs=3)
    assert colocated_pairs(exact).tolist() == [[True, True, True]]


# -- claims from intervals --------------------------------------------------------------------------------
def test_verdicts_come_from_where_the_interval_lies():
    assert cl.verdict_above(Interval(3.0, 2.5, 3.5, 0.95, 9), 2.0) == cl.HOLDS
    assert cl.verdict_above(Interval(1.5, 1.2, 1.8, 0.95, 9), 2.0) == cl.FAILS
    assert cl.verdict_above(Interval(2.1, 1.8, 2.4, 0.95, 9), 2.0) == cl.UNDETERMINED
    assert cl.verdict_above(Interval(3.0, math.nan, math.nan, 0.95, 3), 2.0) == cl.UNDETERMINED
    assert cl.verdict_below(Interval(1.1, 1.0, 1.2, 0.95, 9), 1.25) == cl.HOLDS
    assert cl.combine(cl.HOLDS, cl.UNDETERMINED) == cl.UNDETERMINED and cl.combine(cl.HOLDS, cl.FAILS) == cl.FAILS


def test_claim_one_holds_fails_or_is_undecided_by_its_ratio_interval():
    rng = np.random.default_rng(0)
    rooms = np.repeat(np.arange(8), 5)
    ours = rng.uniform(5, 30, 8)[rooms]                      # rooms differ a lot in difficulty
    held = cl.claim_ours_beats_vision(ours, 3.0 * ours, rooms, resamples=300)
    assert held["verdict"] == cl.HOLDS
    assert held["intervals"]["ratio_vision_over_ours"]["low"] == pytest.approx(3.0)
    assert "3.00 [3.00, 3.00]" in held["evidence"]
    assert cl.claim_ours_beats_vision(ours, 1.5 * ours, rooms, resamples=300)["verdict"] == cl.FAILS
    # the ratio is 1.5 in half the rooms and 2.5 in the others: the interval straddles 2
    straddle = np.where(rooms % 2 == 0, 1.5, 2.5) * 10.0
    assert cl.claim_ours_beats_vision(np.full(40, 10.0), straddle, rooms, resamples=300)["verdict"] == cl.UNDETERMINED
    few = np.repeat(np.arange(3), 5)
    assert cl.claim_ours_beats_vision(ours[:15], 3 * ours[:15], few)["verdict"] == cl.UNDETERMINED
