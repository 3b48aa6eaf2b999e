"""network.train's checkpoints (docs/checkpoint_format.md): weights-only loading that never runs code from a
file, damaged and foreign files refused with the right error class, version-1 checkpoints still read, and an
atomic save that reports a full disk and keeps the previous file. No training here: the checkpoints are made
from a freshly built "tiny" model, so every test takes well under a second."""
from __future__ import annotations

import argparse
import pathlib

import pytest
import torch

from core.errors import DamagedDataError, InputError
from network import train as tr
from network.config import get_config
from network.model import PoseKernelLifter
from tests.checkpoint_files import (
    full_disk_for, tiny_state, write_bad_file, write_malicious, write_tiny_checkpoint,
)

TINY = get_config("tiny")


# -- no code runs from a file --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["touch", "system", "legacy", "pickle"])
def test_a_checkpoint_that_would_run_code_is_refused_before_it_runs(tmp_path, kind):
    marker = tmp_path / "PWNED"
    path = write_malicious(tmp_path / "evil.pt", marker, kind)
    if kind != "pickle":       # the file is really dangerous: the old loader (weights_only=False) ran it
        torch.load(write_malicious(tmp_path / "probe.pt", tmp_path / "probe", kind), weights_only=False)
        assert (tmp_path / "probe").exists()
    for load in (tr.load_checkpoint, tr.load_model):
        with pytest.raises(tr.CheckpointError, match="evil.pt") as info:
            load(path)
        assert not marker.exists()
        assert "\n" not in str(info.value)
    if kind != "pickle":       # a bare pickle is not even a PyTorch file
        assert "would run code" in str(info.value)


# -- damaged and foreign files --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, damaged, words", [
    ("empty", True, "damaged or truncated"),
    ("truncated", True, "truncated"),
    ("random", False, "not a PyTorch checkpoint"),
    ("text", False, "not a PyTorch checkpoint"),
    ("zip", False, "zip archive but not a PyTorch checkpoint"),
    ("tensor", False, "not a posekernel-lifter-checkpoint"),
])
def test_damaged_and_foreign_files_are_named(tmp_path, kind, damaged, words):
    path = write_bad_file(tmp_path / "model.pt", kind)
    with pytest.raises(tr.CheckpointError) as info:
        tr.load_checkpoint(path)
    assert isinstance(info.value, DamagedDataError) == damaged and isinstance(info.value, InputError)
    assert words in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("changes, words", [
    ({"version": 99}, "newer than this code reads"),
    ({"version": "2"}, "format version"),
    ({"model": "weights"}, "'model' entry"),
    ({"model": {}}, "'model' entry"),
    ({"epoch": None}, "'epoch' entry"),
    ({"steps": 1.5}, "'steps' entry is a float"),
    ({"data": [1, 2]}, "'data' entry is a list"),
    ({"config": {"grid_shape": [16, 16]}}, "network configuration cannot be read"),
    ({"config": {**TINY.to_dict(), "colour": "red"}}, "network configuration cannot be read"),
    ({"config": get_config("small").to_dict()}, "do not fit its network configuration"),
])
def test_wrong_entries_are_named(tmp_path, changes, words):
    path = write_tiny_checkpoint(tmp_path / "model.pt", **changes)
    with pytest.raises(tr.CheckpointError, match=words):
        tr.load_model(path)


def test_non_finite_weights_are_damage(tmp_path):
    state = tiny_state()
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = torch.full_like(state["model"][name], float("nan"))
    tr.save_checkpoint(tmp_path / "nan.pt", state)
    with pytest.raises(tr.DamagedCheckpointError, match=name):
        tr.load_model(tmp_path / "nan.pt")


# -- what is written is plain data; what was written before still loads --------------------------------------
def test_a_saved_checkpoint_loads_weights_only_without_any_allow_list(tmp_path):
    path = write_tiny_checkpoint(tmp_path / "model.pt", args=tr.plain_data(
        argparse.Namespace(out=pathlib.Path("runs/x"), grid_center=(0.0, 0.2, 3.5), lr=1e-3)))
    raw = torch.load(path, weights_only=True)          # no safe_globals: nothing but plain data and tensors
    assert raw["args"] == {"out": "runs/x", "grid_center": [0.0, 0.2, 3.5], "lr": 1e-3}
    model, state = tr.load_model(path)
    assert state["epoch"] == 1 and state["config_obj"] == TINY and state["path"] == str(path)
    for key, value in tiny_state()["model"].items():
        assert torch.equal(model.state_dict()[key], value)


def test_a_version_1_checkpoint_still_loads(tmp_path):
    """As the code before the weights-only loader wrote it: torch.save of the dict, torch's TorchVersion,
    the arguments possibly an argparse.Namespace holding paths."""
    for args in (argparse.Namespace(out=pathlib.PosixPath("runs/old"), synth="data/synth.zarr", lr=1e-3),
                 {"out": pathlib.PosixPath("runs/old"), "synth": "data/synth.zarr", "lr": 1e-3}):
        old = tiny_state(version=1, args=args, torch_version=torch.__version__)
        assert type(old["torch_version"]) is not str                 # torch.torch_version.TorchVersion
        torch.save(old, tmp_path / "old.pt")
        with pytest.raises(Exception):
            torch.load(tmp_path / "old.pt", weights_only=True)      # needs the allow-list
        model, state = tr.load_model(tmp_path / "old.pt")
        assert state["version"] == 1 and state["args"] == {"out": "runs/old", "synth": "data/synth.zarr", "lr": 1e-3}
        assert type(state["torch_version"]) is str
        assert all(torch.equal(model.state_dict()[k], v) for k, v in old["model"].items())


def test_checkpoints_record_the_training_configuration_as_plain_data_that_round_trips(tmp_path):
    """network.train stores its TrainConfig with dataclasses.asdict: JSON types only, read back into the same
    TrainConfig; older checkpoints' args (a dict or Namespace with fewer or other keys) still give one."""
    import dataclasses
    import json

    from network import checkpoints
    from network.train_config import TrainConfig, checked

    config = checked(TrainConfig(pretrain="synth", synth=str(tmp_path / "s.zarr"), config="tiny", epochs=3,
                                 grid_center=(0.1, 0.2, 3.0), finetune_environments=["environment1"]))
    model = PoseKernelLifter(TINY)
    state = checkpoints.checkpoint_state(
        phase="pretrain", epoch=1, epochs=3, steps=2, config=TINY, model=model,
        optimizer=torch.optim.Adam(model.parameters()), optimizer_name=config.optimizer, best=1.0, val_mpjpe=1.0,
        val_loss=0.1, train_loss=0.1, data_info={"source": "synth", "path": tmp_path / "s.zarr"}, args=config)
    assert state["args"] == dataclasses.asdict(config)
    assert json.loads(json.dumps(state["args"])) == state["args"]         # plain JSON types
    checkpoints.save_checkpoint(tmp_path / "last.pt", state)
    raw = torch.load(tmp_path / "last.pt", weights_only=True)             # no allow-list needed
    assert TrainConfig.from_dict(raw["args"]) == config
    assert TrainConfig.from_dict(tr.load_checkpoint(tmp_path / "last.pt")["args"]) == config
    assert tr.load_checkpoint is checkpoints.load_checkpoint              # the old import path still works
    old = TrainConfig.from_dict(tr.plain_data(argparse.Namespace(out=pathlib.Path("runs/x"), lr=1e-3, gone=1)))
    assert old == TrainConfig(out="runs/x", lr=1e-3)


# -- saving -------------------------------------------------------------------------------------------------------
def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch):
    path = write_tiny_checkpoint(tmp_path / "last.pt", epoch=1)
    before = path.read_bytes()
    full_disk_for(monkeypatch, ".last.pt.tmp")
    with pytest.raises(InputError, match="the disk is full"):
        tr.save_checkpoint(path, tiny_state(epoch=2))
    monkeypatch.undo()
    assert path.read_bytes() == before and tr.load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]      # no temporary file left
