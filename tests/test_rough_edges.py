"""Rough edges a new user met (issue 16, item 4): Ray's token-authentication notice on every local start,
and ``network.evaluate --config`` refused although ``network.train`` takes it. (Progress bars in log
files: ``tests/test_progress.py``.)"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.progress import INTERVAL_ENV
from simulator import generation_run
from simulator.generation_config import GenerationConfig
from tests.checkpoint_files import write_tiny_checkpoint
from tests.cli_harness import assert_refused, call_main, snapshot

REPO = Path(__file__).resolve().parents[1]
TOKEN_NOTICE = "Token authentication is enabled"


# -- Ray: a local run is quiet about token authentication ------------------------------------------------------
def test_a_local_generation_starts_ray_without_the_token_notice(tmp_path):
    """One room on one local Ray worker, output to a file as in a batch job: no token notice, and its
    progress as plain lines."""
    log = tmp_path / "generate.log"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", INTERVAL_ENV: "0"}
    env.pop("RAY_AUTH_MODE", None)         # Ray's default: the notice comes when the mode is not set
    with open(log, "wb") as handle:
        code = subprocess.run(
            [sys.executable, "-m", "simulator.generate", "--rooms", "1", "--frames-per-room", "1", "--max-order", "1",
             "--kernel-samples", "2400", "--workers", "1", "--out", str(tmp_path / "s.zarr")],
            cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, timeout=600,
        ).returncode
    text = log.read_bytes().decode()
    assert code == 0, text[-3000:]
    assert TOKEN_NOTICE not in text and "RAY_AUTH_MODE" not in text, text[-3000:]
    assert "\r" not in text
    assert any(line.startswith("rooms: 1/1 room (100%)") for line in text.splitlines()), text[-3000:]


def test_only_the_token_notice_is_dropped_and_only_while_a_local_instance_starts():
    # A handler on the logger itself: once Ray has been started in this process its loggers stop propagating
    # to the root logger (where pytest's caplog listens).
    logger = logging.getLogger(generation_run._RAY_TOKEN_LOGGER)
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler, level = Keep(level=logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with generation_run._quiet_local_token_auth():
            logger.warning("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to "
                           "opt out.")
            logger.warning("Token authentication is disabled for this Ray cluster.")
        logger.warning("Token authentication is enabled for this Ray cluster (after the start).")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records == [
        "Token authentication is disabled for this Ray cluster.",
        "Token authentication is enabled for this Ray cluster (after the start)."]
    assert not logger.filters


@pytest.mark.parametrize("address, quiet", [(None, True), ("local", True), ("10.0.0.1:6379", False)])
def test_an_existing_cluster_is_left_as_it_is(monkeypatch, tmp_path, address, quiet):
    """The notice is dropped for a new local instance only; ``--address HOST:PORT`` starts Ray untouched."""
    import ray

    class Started(Exception):
        pass

    seen = {}

    def init(*args, **kwargs):
        seen["filtered"] = bool(logging.getLogger(generation_run._RAY_TOKEN_LOGGER).filters)
        seen["address"] = kwargs.get("address")
        raise Started

    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(Started):
        generation_run._run_rooms(GenerationConfig(), str(tmp_path / "s.zarr"), [0], 1, address, progress=False)
    assert seen == {"filtered": quiet, "address": address}
    assert not logging.getLogger(generation_run._RAY_TOKEN_LOGGER).filters


# -- network.evaluate --config -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("rough_edges") / "tiny.pt", data={
        "source": "real", "pair_counts": [4], "finetune_environments": ["environment1"],
        "test_environments": ["environment3"]})


def _evaluate_argv(checkpoint, data, out) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--data", str(data), "--environments", "environment3",
            "--methods", "ours", "vision_avg_height", "--out", str(out), "--no-progress"]


def test_evaluate_accepts_the_checkpoints_own_config(tiny_checkpoint, posekernel_root, tmp_path):
    outcome = call_main("network.evaluate", _evaluate_argv(tiny_checkpoint, posekernel_root, tmp_path / "r")
                        + ["--config", "tiny"])
    assert outcome.code == 0, outcome.stderr[-3000:]
    assert (tmp_path / "r" / "metrics.json").exists()


def test_evaluate_refuses_another_config_naming_the_fields(tiny_checkpoint, posekernel_root, tmp_path):
    before = snapshot(tiny_checkpoint.parent, posekernel_root)
    outcome = call_main("network.evaluate", _evaluate_argv(tiny_checkpoint, posekernel_root, tmp_path / "r")
                        + ["--config", "small"])
    assert_refused(outcome, "--config small", "tiny.pt", "'tiny'", "channels", "grid_shape", "stages",
                   "configuration from the checkpoint", "leave --config out")
    assert snapshot(tiny_checkpoint.parent, posekernel_root) == before
    assert not (tmp_path / "r").exists()
