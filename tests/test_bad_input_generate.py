"""simulator.generate refuses every bad argument and output before any work, changing nothing.

Each row is a command line a user could type. The refusal must come in the first seconds (main runs
in this process: no Ray starts, no room is simulated), exit 2, say in one line which flag is at fault,
and leave the disk as it was: every file byte for byte, and nothing new created.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.cli_harness import assert_refused, call_main, run_module, snapshot

# fast arguments, so that a row that is wrongly accepted fails quickly instead of simulating for minutes
QUICK = ["--rooms", "1", "--frames-per-room", "1", "--max-order", "1", "--workers", "1", "--quiet"]


def everything_under(root: Path) -> dict[str, str]:
    """Every path under ``root``: files with their hash, folders marked as such."""
    files = snapshot(root)
    folders = {str(p): "folder" for p in root.rglob("*") if p.is_dir()}
    return files | folders


ARGUMENT_ROWS = [
    # (argv, words the error line must contain)
    (["--seed", "-1"], ["--seed"]),
    (["--seed", "99999999999999999999999"], ["--seed"]),
    (["--snr-db", "nan"], ["--snr-db", "finite"]),
    (["--snr-db", "inf"], ["--snr-db", "finite"]),
    (["--kernel-samples", "20000"], ["--kernel-samples", "9600"]),
    (["--kernel-samples", "0"], ["--kernel-samples"]),
    (["--split", "nan", "nan", "nan"], ["--split"]),
    (["--split", "0.5", "0.5", "0.5"], ["--split", "summing to 1"]),
    (["--split", "-0.5", "0.75", "0.75"], ["--split"]),
    (["--split", "inf", "0", "0"], ["--split"]),
    (["--rooms", "1000000000000"], ["--rooms"]),
    (["--rooms", "0"], ["--rooms"]),
    (["--rooms", "1000000", "--frames-per-room", "20"], ["--rooms", "--frames-per-room", "at most"]),
    (["--rooms", "abc"], ["--rooms"]),
    (["--frames-per-room", "-2"], ["--frames-per-room"]),
    (["--subjects-per-room", "0"], ["--subjects-per-room"]),
    (["--subjects-per-room", "5000"], ["--subjects-per-room"]),
    (["--workers", "-1"], ["--workers"]),
    (["--workers", "0", "--address", "127.0.0.1:1"], ["--workers 0", "--address"]),
    (["--address", "nohost"], ["--address"]),
    (["--address", "127.0.0.1:1"], ["--address", "no ray head"]),
    (["--max-order", "-1"], ["--max-order"]),
    (["--max-order", "1000"], ["--max-order", "50"]),
    (["--minor-fraction", "1.5"], ["--minor-fraction"]),
    (["--minor-fraction", "nan"], ["--minor-fraction"]),
    (["--min-floor-m", "2"], ["--min-floor-m"]),
    (["--min-floor-m", "8", "--max-floor-m", "6"], ["--max-floor-m", "--min-floor-m"]),
    (["--max-floor-m", "inf"], ["--max-floor-m"]),
    (["--clock-offset-max-samples", "-1"], ["--clock-offset-max-samples"]),
    (["--clock-offset-max-samples", "nan"], ["--clock-offset-max-samples"]),
    (["--clock-offset-max-samples", "500"], ["--clock-offset-max-samples"]),  # SimulationConfig's own limit
    (["--activities", "flying"], ["--activities", "flying"]),
    (["--rig", "stacked"], ["--rig"]),
    (["--kernel-dtype", "int8"], ["--kernel-dtype"]),
    (["--verify", "STORE", "--rooms", "3"], ["--rooms", "--verify"]),
    (["--repair", "STORE", "--seed", "3"], ["--seed", "--repair"]),
    (["--verify", "STORE", "--repair", "STORE"], ["--repair", "--verify"]),
]


@pytest.mark.parametrize("argv, words", ARGUMENT_ROWS, ids=[" ".join(r[0]) for r in ARGUMENT_ROWS])
def test_a_bad_argument_is_refused_before_anything_is_written(tmp_path, argv, words):
    (tmp_path / "keep.txt").write_text("the user's file")
    out = tmp_path / "deep" / "new.zarr"
    if "STORE" in argv:   # --verify / --repair take no generation flags: only the row's own
        argv = [str(tmp_path / "store.zarr") if a == "STORE" else a for a in argv]
    else:
        argv = QUICK + ["--out", str(out)] + argv
    before = everything_under(tmp_path)
    outcome = call_main("simulator.generate", argv, cwd=tmp_path)
    assert_refused(outcome, *words)
    assert everything_under(tmp_path) == before          # nothing changed, no folder made


def _non_store_folder(tmp: Path) -> Path:
    """The issue's reproduction: a user's folder with notes and a nested PoseKernel download."""
    folder = tmp / "data"
    (folder / "PoseKernel" / "environment1" / "0").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    np.save(folder / "PoseKernel" / "environment1" / "0" / "rir.npy", np.arange(12.0).reshape(4, 3))
    return folder


def _a_file(tmp: Path) -> Path:
    path = tmp / "synth.zarr"
    path.write_text("a file where the store would go")
    return path


def _below_a_file(tmp: Path) -> Path:
    _a_file(tmp)
    return tmp / "synth.zarr" / "inner.zarr"


def _foreign_zarr_store(tmp: Path) -> Path:
    root = zarr.open_group(tmp / "theirs.zarr", mode="w-", attributes={"project": "someone else's"})
    root.create_array("x", shape=(4,), dtype="float32", fill_value=0)[:] = np.arange(4.0)
    return tmp / "theirs.zarr"


def _version_1_store(tmp: Path) -> Path:
    from simulator.generate import GenerationConfig, open_or_create_store

    out = tmp / "v1.zarr"
    open_or_create_store(str(out), GenerationConfig(rooms=1, frames_per_room=1, max_order=1))
    root = zarr.open_group(out, mode="r+")
    root.attrs["format_version"] = 1
    return out


def _store_of_other_arguments(tmp: Path) -> Path:
    from simulator.generate import GenerationConfig, open_or_create_store

    out = tmp / "seed7.zarr"
    open_or_create_store(str(out), GenerationConfig(rooms=1, frames_per_room=1, max_order=1, seed=7))
    return out


def _unwritable_folder(tmp: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder / "synth.zarr"
    if not Path("/sys").is_dir():   # root writes anywhere but a read-only file system
        pytest.skip("running as root without /sys: no unwritable folder to try")
    return Path("/sys/posekernel-test/synth.zarr")


OUTPUT_ROWS = [
    (_non_store_folder, ["--out", "not a Zarr store", "notes.txt"]),
    (_a_file, ["--out", "is a file"]),
    (_below_a_file, ["--out", "cannot write"]),
    (_foreign_zarr_store, ["--out", "not a posekernel-synthetic"]),
    (_version_1_store, ["--out", "format version 1"]),
    (_store_of_other_arguments, ["--out", "seed"]),
    (_unwritable_folder, ["--out", "cannot write"]),
]


@pytest.mark.parametrize("make, words", OUTPUT_ROWS, ids=[r[0].__name__.strip("_") for r in OUTPUT_ROWS])
def test_an_output_that_is_not_ours_is_refused_and_left_as_it_was(tmp_path, make, words):
    out = make(tmp_path)
    before = everything_under(tmp_path)
    outcome = call_main("simulator.generate", QUICK + ["--out", str(out)], cwd=tmp_path)
    assert_refused(outcome, *words)
    assert everything_under(tmp_path) == before
    if str(out).startswith("/sys/"):
        assert not out.parent.exists()


@pytest.mark.parametrize("flag", ["--verify", "--repair"])
@pytest.mark.parametrize("make, words", [(_non_store_folder, ["not a Zarr store"]), (_a_file, ["is a file"]),
                                         (_foreign_zarr_store, ["not a posekernel-synthetic"]),
                                         (lambda tmp: tmp / "nothing.zarr", ["no store there"])],
                         ids=["non-store folder", "file", "foreign store", "nothing"])
def test_verify_and_repair_refuse_what_is_not_a_store(tmp_path, flag, make, words):
    target = make(tmp_path)
    before = everything_under(tmp_path)
    outcome = call_main("simulator.generate", [flag, str(target), "--quiet"], cwd=tmp_path)
    assert_refused(outcome, flag, *words)
    assert everything_under(tmp_path) == before


def test_the_issue_reproduction_no_longer_deletes_the_folder(tmp_path):
    """Exactly the reported command, as a separate process: the folder's files survive byte for byte."""
    folder = _non_store_folder(tmp_path)
    before = everything_under(tmp_path)
    outcome = run_module("simulator.generate", ["--rooms", "1", "--frames-per-room", "1", "--workers", "1",
                                                "--max-order", "1", "--out", str(folder), "--quiet"], timeout=300)
    assert_refused(outcome, "--out", str(folder), "not a Zarr store")
    assert everything_under(tmp_path) == before


def test_after_a_refusal_the_corrected_command_is_accepted(tmp_path):
    """A refused command leaves no store behind that would block the corrected one."""
    from simulator.generate import GenerationConfig, open_or_create_store

    out = tmp_path / "synth.zarr"
    assert_refused(call_main("simulator.generate", QUICK + ["--seed", "-1", "--out", str(out)]), "--seed")
    assert not out.exists()
    root, todo = open_or_create_store(str(out), GenerationConfig(rooms=1, frames_per_room=1, max_order=1, seed=1))
    assert list(todo) == [0] and root.attrs["seed"] == 1
