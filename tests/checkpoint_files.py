"""Checkpoint files for the tests, good and bad: a tiny model's checkpoint as network.train writes it, files
that would run code when unpickled, files that are not checkpoints, and a disk that fills up mid-write."""
from __future__ import annotations

import builtins
import errno
import io
import os
import pathlib
import pickle
import zipfile
from pathlib import Path

import torch

from network import train as tr
from network.config import get_config
from network.model import PoseKernelLifter

TINY = get_config("tiny")


def tiny_state(**changes) -> dict:
    """A version-2 checkpoint dict of an untrained tiny model, as network.train writes it."""
    torch.manual_seed(0)
    model = PoseKernelLifter(TINY)
    state = {
        "format": tr.CHECKPOINT_FORMAT, "version": tr.CHECKPOINT_VERSION, "phase": "pretrain", "epoch": 1,
        "epochs": 1, "steps": 1, "config": TINY.to_dict(), "model": model.state_dict(),
        "optimizer": torch.optim.Adam(model.parameters()).state_dict(), "optimizer_name": "adam",
        "best_val_mpjpe_cm": 50.0, "val_mpjpe_cm": 50.0, "val_loss": 0.01, "train_loss": 0.01,
        "data": {"source": "synth", "path": "synth.zarr", "pair_counts": [4, 16]},
        "args": {"epochs": 1, "out": "runs/tiny", "grid_center": None}, "torch_version": str(torch.__version__),
        "saved_at": "2024-01-01T00:00:00",
    }
    state.update(changes)
    return state


def write_tiny_checkpoint(path: Path, **changes) -> Path:
    tr.save_checkpoint(path, tiny_state(**changes))
    return path


class TouchOnLoad:
    """Unpickling this creates ``marker``: what a crafted checkpoint could do (and worse)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class SystemOnLoad(TouchOnLoad):
    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def write_malicious(path: Path, marker: Path, kind: str = "touch") -> Path:
    """A file that runs code when unpickled. kind: 'touch' / 'system' (torch's zip format, with our keys
    around the payload), 'legacy' (torch's pre-1.6 format), 'pickle' (a bare pickle)."""
    payload = SystemOnLoad(marker) if kind == "system" else TouchOnLoad(marker)
    state = {"format": tr.CHECKPOINT_FORMAT, "version": tr.CHECKPOINT_VERSION, "payload": payload}
    if kind == "pickle":
        path.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, path, _use_new_zipfile_serialization=kind != "legacy")
    return path


def write_bad_file(path: Path, kind: str) -> Path:
    """Files that are not checkpoints: 'empty', 'truncated' (half of a real one), 'random', 'text',
    'zip' (a zip archive of something else), 'tensor' (a PyTorch file holding a bare tensor)."""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        buffer = io.BytesIO()
        torch.save(tiny_state(), buffer)
        path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 16)
    elif kind == "text":
        path.write_text("epoch,loss\n1,0.5\n")
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes/readme.txt", "not a checkpoint")
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    else:
        raise ValueError(kind)
    return path


class DiskFull(io.FileIO):
    """A file on a full disk: half of each write lands, then ENOSPC."""

    def write(self, data):
        super().write(bytes(data)[:max(1, len(data) // 2)])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def full_disk_for(monkeypatch, name: str) -> None:
    """Every file opened for writing whose name contains ``name`` is on a full disk."""
    real_open = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        if name in os.fspath(file) and ("w" in mode or "a" in mode):
            return DiskFull(file, "w")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


