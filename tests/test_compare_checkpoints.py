"""experiments.compare_checkpoints: the verdict comes from the paired room-bootstrap interval, and bad
arguments are refused with one line, exit 2, nothing written."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from experiments.compare_checkpoints import compare
from tests.cli_harness import assert_refused, call_main, snapshot


def _result(errors_cm, rooms, config):
    return {"mpjpe_cm": np.asarray(errors_cm, float), "room_id": np.asarray(rooms), "index": np.arange(len(rooms)),
            "config": config}


def test_the_verdict_follows_the_paired_interval():
    rooms = np.repeat(np.arange(8), 4)
    difficulty = np.random.default_rng(0).uniform(10, 40, 8)[rooms]
    a = _result(difficulty, rooms, "a")
    assert compare(a, _result(difficulty * 0.8, rooms, "b"))["verdict"] == "B is better"
    assert compare(a, _result(difficulty * 1.2, rooms, "b"))["verdict"] == "A is better"
    noisy = difficulty * np.random.default_rng(1).uniform(0.7, 1.3, len(rooms))
    assert compare(a, _result(noisy, rooms, "b"))["verdict"] == "cannot tell them apart"
    assert compare(_result([1.0, 2.0], [0, 1], "a"), _result([1.0, 2.0], [0, 1], "b"))["verdict"] == \
        "too few rooms to tell"
    other = dict(_result(difficulty, rooms, "b"), index=np.arange(len(rooms)) + 1)
    with pytest.raises(InputError, match="different frames"):
        compare(a, other)


@pytest.mark.parametrize("extra, words", [
    (["--batch-size", "0"], "--batch-size"),
    (["--json", "{dir}"], "is a folder"),
    (["--json", "{dir}/out.txt"], "unsupported file type"),
])
def test_bad_arguments_are_refused_before_any_work(tmp_path, extra, words):
    (tmp_path / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    argv = ["a.pt", "b.pt", "--data", str(tmp_path / "none.zarr")] + [e.format(dir=tmp_path) for e in extra]
    assert_refused(call_main("experiments.compare_checkpoints", argv), words)
    assert snapshot(tmp_path) == before


def test_a_missing_checkpoint_is_named(tmp_path):
    assert_refused(call_main("experiments.compare_checkpoints",
                             [str(tmp_path / "a.pt"), "b.pt", "--data", str(tmp_path)]), "a.pt", "no checkpoint")
