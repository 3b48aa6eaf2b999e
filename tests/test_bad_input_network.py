"""Bad input to network.train and network.evaluate, one row each: every row must be refused before any work
with exit code 2 and one line naming the flag or file, leave every file on disk as it was and create
nothing -- above all, a checkpoint that would run code must not run it.

Both commands start from an argument list that works (checked by the two control tests), and each row
changes one thing. The workspace (checkpoints, bad files, output folders) is built once for the module
and snapshotted around every row.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from core.outputs import OUTPUT_MARKER
from network import data as network_data
from network import train as tr
from tests.cli_harness import assert_refused, call_main, snapshot
from tests.checkpoint_files import write_bad_file, write_malicious, write_tiny_checkpoint

MARKER = "PWNED"      # created by the malicious checkpoints if their code ever runs
BAD_FILES = ("empty", "truncated", "random", "text", "zip", "tensor")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, posekernel_root):  # noqa: F811
    """Every file the rows point at. ``{ro}`` is a folder that cannot be written (for root, who may write
    anywhere chmod forbids, a path under /sys)."""
    ws = tmp_path_factory.mktemp("bad_input_network")
    real_data = {"source": "real", "pair_counts": [4], "finetune_environments": ["environment1"],
                 "test_environments": ["environment3"]}
    write_tiny_checkpoint(ws / "good.pt", data=real_data)
    write_tiny_checkpoint(ws / "newer.pt", version=99)
    write_tiny_checkpoint(ws / "mismatch.pt", config=tr.get_config("small").to_dict())
    for kind in BAD_FILES:
        write_bad_file(ws / f"{kind}.pt", kind)
    for kind in ("touch", "system", "legacy", "pickle"):
        write_malicious(ws / f"evil_{kind}.pt", ws / MARKER, kind)
    (ws / "synth.zarr").mkdir()
    (ws / "a_file.txt").write_text("the user's notes\n")
    (ws / "foreign").mkdir()
    (ws / "foreign" / "thesis.tex").write_text("\\documentclass{article}\n")
    for name, writer, last in (("run_done", "network.train", "good.pt"),
                               ("run_evil", "network.train", "evil_touch.pt"),
                               ("run_truncated", "network.train", "truncated.pt"),
                               ("evaluated", "network.evaluate", None)):
        (ws / name).mkdir()
        (ws / name / OUTPUT_MARKER).write_text(json.dumps({"written_by": writer}))
        if last:
            (ws / name / "finetune").mkdir()
            shutil.copy(ws / last, ws / name / "finetune" / "last.pt")
    read_only = ws / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):       # root ignores the mode bits
        read_only = Path("/sys/posekernel-read-only/out")
        assert not read_only.parent.exists()
    yield {"ws": ws, "real": posekernel_root, "ro": read_only}
    (ws / "read_only").chmod(0o755)


def _argv(template: list[str], places: dict) -> list[str]:
    return [item.format(**places) for item in template]


def _refused(module: str, base: list[str], row: list[str], words: list[str], places: dict, code: int = 2):
    roots = [places["ws"], places["real"]]
    before = snapshot(*roots)
    outcome = call_main(module, _argv(base + row, places))
    assert_refused(outcome, *[_argv([w], places)[0] for w in words], code=code)
    assert snapshot(*roots) == before                     # nothing changed, nothing new
    assert not (places["ws"] / MARKER).exists()           # no code ran from a file


# -- network.evaluate ------------------------------------------------------------------------------------------
EVALUATE = ["--checkpoint", "{ws}/good.pt", "--data", "{real}", "--environments", "environment3",
            "--methods", "ours", "vision_avg_height", "--out", "{ws}/results", "--no-progress"]

EVALUATE_ROWS = [
    # numbers
    (["--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["--batch-size", "-3"], ["--batch-size"]),
    (["--workers", "-1"], ["--workers", ">= 0"]),
    (["--max-frames", "-1"], ["--max-frames"]),
    (["--max-frames", "0"], ["--max-frames"]),
    (["--grid-center", "nan", "0", "3"], ["--grid-center", "finite"]),
    (["--grid-center", "0", "inf", "3"], ["--grid-center"]),
    (["--batch-size", "two"], ["--batch-size"]),                         # argparse
    (["--device", "tpu"], ["--device"]),
    (["--split", "everything"], ["--split"]),
    # paths
    (["--out", "{ws}/a_file.txt"], ["--out", "a_file.txt", "is a file"]),
    (["--out", "{ro}"], ["--out", "cannot write"]),
    (["--out", "{ws}/foreign"], ["--out", "foreign", "did not create"]),
    (["--out", "{ws}/run_done"], ["--out", "network.train"]),
    (["--data", "{ws}/nothing"], ["--data", "nothing"]),
    # checkpoints
    (["--checkpoint", "{ws}/nothing.pt"], ["nothing.pt", "no checkpoint"]),
    (["--checkpoint", "{ws}/foreign"], ["foreign", "is a folder"]),
    (["--checkpoint", "{ws}/empty.pt"], ["empty.pt", "damaged or truncated"]),
    (["--checkpoint", "{ws}/truncated.pt"], ["truncated.pt", "truncated"]),
    (["--checkpoint", "{ws}/random.pt"], ["random.pt", "not a PyTorch checkpoint"]),
    (["--checkpoint", "{ws}/text.pt"], ["text.pt", "not a PyTorch checkpoint"]),
    (["--checkpoint", "{ws}/zip.pt"], ["zip.pt", "not a PyTorch checkpoint"]),
    (["--checkpoint", "{ws}/tensor.pt"], ["tensor.pt", "not a posekernel-lifter-checkpoint"]),
    (["--checkpoint", "{ws}/newer.pt"], ["newer.pt", "update the code"]),
    (["--checkpoint", "{ws}/mismatch.pt"], ["mismatch.pt", "do not fit"]),
    (["--checkpoint", "{ws}/evil_touch.pt"], ["evil_touch.pt", "would run code"]),
    (["--checkpoint", "{ws}/evil_system.pt"], ["evil_system.pt", "would run code"]),
    (["--checkpoint", "{ws}/evil_legacy.pt"], ["evil_legacy.pt", "would run code"]),
    (["--checkpoint", "{ws}/evil_pickle.pt"], ["evil_pickle.pt", "not a PyTorch checkpoint"]),
    (["--methods", "audio_only", "--audio-checkpoint", "{ws}/evil_touch.pt"], ["evil_touch.pt", "would run code"]),
]


@pytest.mark.parametrize("row, words", EVALUATE_ROWS, ids=[" ".join(r[0]) for r in EVALUATE_ROWS])
def test_evaluate_refuses(workspace, row, words):
    _refused("network.evaluate", EVALUATE, row, words, workspace)


def test_evaluate_control_run_and_rerun(workspace, tmp_path):
    """The base arguments work (so each row fails for its own reason), and the same --out is reused."""
    argv = _argv(EVALUATE, workspace)
    argv[argv.index("--out") + 1] = str(tmp_path / "results")
    for _ in range(2):
        outcome = call_main("network.evaluate", argv)
        assert outcome.code == 0, outcome.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == sorted(
        [OUTPUT_MARKER, "metrics.json", "skeletons.png", "tables.md"])
    assert json.loads((tmp_path / "results" / "metrics.json").read_text())["written_by"] == "network.evaluate"


def test_evaluate_accepts_its_output_folder_from_before_markers(workspace, tmp_path):
    argv = _argv(EVALUATE, workspace)
    out = tmp_path / "old_results"
    argv[argv.index("--out") + 1] = str(out)
    assert call_main("network.evaluate", argv).code == 0
    (out / OUTPUT_MARKER).unlink()
    metrics = json.loads((out / "metrics.json").read_text())
    del metrics["written_by"]
    (out / "metrics.json").write_text(json.dumps(metrics))
    outcome = call_main("network.evaluate", argv)
    assert outcome.code == 0, outcome.stderr[-2000:]
    assert (out / OUTPUT_MARKER).exists()


def test_a_data_error_in_a_loader_worker_is_one_line(workspace, tmp_path, monkeypatch):
    """torch re-raises a worker's exception with the worker's traceback as its message: still one line."""
    def corrupt(self, i):
        raise network_data.DataError(f"frame {i}: kernels contain NaN/inf; the frame is corrupt")

    monkeypatch.setattr(network_data.RealFrames, "__getitem__", corrupt)    # inherited by the forked worker
    argv = _argv(EVALUATE, workspace) + ["--workers", "1", "--out", str(tmp_path / "results")]
    outcome = call_main("network.evaluate", argv)
    assert_refused(outcome, "kernels contain NaN/inf")
    assert "Original Traceback" not in outcome.stderr


# -- network.train ---------------------------------------------------------------------------------------------
TRAIN = ["--finetune", "real", "--real", "{real}", "--init", "{ws}/good.pt", "--config", "tiny", "--epochs", "1",
         "--batch-size", "2", "--workers", "0", "--no-progress", "--out", "{ws}/run_new"]

TRAIN_ROWS = [
    # numbers
    (["--epochs", "0"], ["--epochs", ">= 1"]),
    (["--epochs", "-2"], ["--epochs"]),
    (["--epochs", "x"], ["--epochs"]),                                   # argparse
    (["--finetune-epochs", "0"], ["--finetune-epochs"]),
    (["--max-steps", "-1"], ["--max-steps", ">= 0"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--workers", "-1"], ["--workers"]),
    (["--lr", "nan"], ["--lr", "finite"]),
    (["--lr", "inf"], ["--lr", "finite"]),
    (["--lr", "0"], ["--lr", "> 0"]),
    (["--lr", "-0.001"], ["--lr"]),
    (["--momentum", "1.5"], ["--momentum"]),
    (["--weight-decay", "-1"], ["--weight-decay"]),
    (["--grad-clip", "nan"], ["--grad-clip"]),
    (["--grad-clip", "-1"], ["--grad-clip"]),
    (["--val-fraction", "1"], ["--val-fraction"]),
    (["--val-fraction", "nan"], ["--val-fraction"]),
    (["--seed", "-1"], ["--seed"]),
    (["--grid-center", "nan", "0", "3"], ["--grid-center", "finite"]),
    (["--device", "tpu"], ["--device"]),
    # paths
    (["--out", "{ws}/a_file.txt"], ["--out", "a_file.txt", "is a file"]),
    (["--out", "{ro}"], ["--out", "cannot write"]),
    (["--out", "{ws}/foreign"], ["--out", "foreign", "did not create"]),
    (["--out", "{ws}/evaluated"], ["--out", "network.evaluate"]),
    (["--out", "{ws}/run_done"], ["run_done/finetune/last.pt", "--resume"]),
    (["--real", "{ws}/nothing"], ["--real", "nothing"]),
    (["--init", "{ws}/nothing.pt"], ["--init", "nothing.pt"]),
    # checkpoints: --init
    *[(["--init", f"{{ws}}/{kind}.pt"], [f"{kind}.pt", words]) for kind, words in (
        ("empty", "damaged or truncated"), ("truncated", "truncated"), ("random", "not a PyTorch checkpoint"),
        ("text", "not a PyTorch checkpoint"), ("zip", "not a PyTorch checkpoint"),
        ("tensor", "not a posekernel-lifter-checkpoint"), ("newer", "update the code"),
        ("evil_touch", "would run code"), ("evil_system", "would run code"), ("evil_legacy", "would run code"),
        ("evil_pickle", "not a PyTorch checkpoint"))],
    (["--init", "{ws}/mismatch.pt"], ["mismatch.pt", "grid_shape"]),                   # another --config
    (["--init", "{ws}/mismatch.pt", "--config", "small"], ["mismatch.pt", "do not fit"]),
    # checkpoints: --resume
    (["--out", "{ws}/run_evil", "--resume"], ["run_evil/finetune/last.pt", "would run code"]),
    (["--out", "{ws}/run_truncated", "--resume"], ["run_truncated/finetune/last.pt", "truncated"]),
]


@pytest.mark.parametrize("row, words", TRAIN_ROWS, ids=[" ".join(r[0]) for r in TRAIN_ROWS])
def test_train_refuses(workspace, row, words):
    _refused("network.train", TRAIN, row, words, workspace)


def test_train_control_run(workspace, tmp_path):
    """The base arguments work, so each row above fails for its own reason."""
    argv = _argv(TRAIN, workspace)
    argv[argv.index("--out") + 1] = str(tmp_path / "run")
    outcome = call_main("network.train", argv)
    assert outcome.code == 0, outcome.stderr[-2000:]
    assert tr.load_checkpoint(tmp_path / "run" / "finetune" / "last.pt")["epoch"] == 1
    assert json.loads((tmp_path / "run" / "run.json").read_text())["written_by"] == "network.train"


def test_train_ctrl_c_says_how_to_resume(workspace, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "train_phase", interrupted)
    argv = _argv(TRAIN, workspace)
    argv[argv.index("--out") + 1] = str(tmp_path / "run")
    outcome = call_main("network.train", argv)
    assert outcome.code == 130 and "--resume" in outcome.stderr and "Traceback" not in outcome.stderr
