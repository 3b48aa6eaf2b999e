"""experiments.error_sources: the decomposition against hand-built errors, and the command on a real store with a
refined coarse-to-fine checkpoint (every stage reported, bad arguments refused before any work)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from experiments.error_sources import error_sources, main
from network.coarse_fine import CoarseToFineLifter
from network.config import get_config
from tests.checkpoint_files import tiny_state
from tests.cli_harness import assert_refused, call_main, snapshot
from network import train as tr


def _body(seed=0, frames=3):
    rng = np.random.default_rng(seed)
    centre = np.array([0.3, -0.2, 3.5]) + rng.normal(0, 0.3, (frames, 1, 3))
    return centre + rng.normal(0, 0.3, (frames, 15, 3))


def test_a_whole_body_shift_along_the_sight_line_is_a_global_depth_error():
    truth = _body()
    # every joint moved 10 cm further along its own line of sight
    pred = truth * (1.0 + 0.10 / np.linalg.norm(truth, axis=-1, keepdims=True))
    out = error_sources(pred, truth)
    assert out["mpjpe_cm"] == pytest.approx(10.0)
    assert out["along_sight_cm"] == pytest.approx(10.0) and out["across_sight_cm"] == pytest.approx(0.0, abs=1e-9)
    assert out["mean_depth_error_cm"] == pytest.approx(10.0)
    assert out["mean_depth_error_percentiles_cm"]["50"] == pytest.approx(10.0)


def test_a_rigid_translation_is_all_global_and_a_zero_mean_change_is_all_body_relative():
    truth = _body(1)
    shifted = truth + np.array([0.03, 0.0, 0.04])          # 5 cm, the same for every joint
    out = error_sources(shifted, truth)
    assert out["global_offset_cm"] == pytest.approx(5.0) and out["body_relative_cm"] == pytest.approx(0.0, abs=1e-9)
    assert out["mpjpe_cm"] == pytest.approx(5.0)
    moved = truth.copy()
    moved[:, 0, 0] += 0.14                                   # one joint 14 cm right, the others 1 cm left
    moved[:, 1:, 0] -= 0.01
    out = error_sources(moved, truth)
    assert out["global_offset_cm"] == pytest.approx(0.0, abs=1e-9)
    assert out["body_relative_cm"] == pytest.approx(100 * (0.14 + 14 * 0.01) / 15)


def test_unknown_joints_are_left_out():
    truth = _body(2)
    pred = truth + np.array([0.0, 0.0, 0.02])
    truth[:, 3] = np.nan
    pred[:, 3] = 100.0                                       # a wild guess at an unknown joint counts for nothing
    assert error_sources(pred, truth)["mpjpe_cm"] == pytest.approx(2.0)


def test_the_command_reports_every_stage_of_a_refined_model(tiny_store, tmp_path):
    config = get_config("c2f_tiny", refine_joints=True, depth_search=True, kernel_samples=2400, name="refined_tiny")
    torch.manual_seed(0)
    model = CoarseToFineLifter(config)
    checkpoint = tmp_path / "refined.pt"
    tr.save_checkpoint(checkpoint, tiny_state(config=config.to_dict(), model=model.state_dict(),
                                              optimizer=torch.optim.Adam(model.parameters()).state_dict()))
    out = tmp_path / "sources.json"
    assert main([str(checkpoint), "--data", str(tiny_store), "--split", "train", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["stages"]) == {"coarse", "searched", "fine", "final"} and report["frames"] > 0
    # untrained, the refiner returns the fine joints
    assert report["stages"]["final"]["mpjpe_cm"] == pytest.approx(report["stages"]["fine"]["mpjpe_cm"])
    assert sum(v["frames"] for v in report["final_by_activity"].values()) == report["frames"]


def test_bad_arguments_are_refused_before_any_work(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    assert_refused(call_main("experiments.error_sources", ["a.pt", "--data", str(tmp_path / "none.zarr"), "--json",
                                                           str(tmp_path / "out.txt")]), "unsupported file type")
    assert_refused(call_main("experiments.error_sources", [str(tmp_path / "a.pt"), "--data", str(tmp_path)]),
                   "a.pt", "no checkpoint")
    assert snapshot(tmp_path) == before
