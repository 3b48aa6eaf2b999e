"""Checkpoints of PoseKernelLifter: their format, weights-only saving and loading, and the checks on them.

A checkpoint holds tensors and plain data only and is read with ``torch.load(weights_only=True)``: no code
in a file runs. Its keys, types and versions are in ``docs/checkpoint_format.md``; :func:`load_checkpoint`
refuses anything else with :class:`CheckpointError` (:class:`DamagedCheckpointError` for a truncated or
damaged file). Public names: ``__all__``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import pickle
import re
import time
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path, PosixPath, PurePosixPath

import numpy as np
import torch

from core.errors import DamagedDataError, InputError
from core.outputs import atomic_write
from network.config import NetworkConfig
from network.lifters import build_lifter, on_device

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "DamagedCheckpointError",
    "LEGACY_SAFE_GLOBALS",
    "PRETRAINED_DIR",
    "PRETRAINED_NAME",
    "check_config",
    "checkpoint_state",
    "config_differences",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "plain_data",
    "resolve_checkpoint",
    "save_checkpoint",
    "seen_pair_counts",
    "trained_pair_counts",
]

CHECKPOINT_FORMAT = "posekernel-lifter-checkpoint"
CHECKPOINT_VERSION = 2     # 2: plain data only (1 held torch's TorchVersion, maybe an argparse.Namespace)
# Checkpoints of version 1 hold torch.__version__ (a str subclass) and may hold the others; unpickling
# any of them only builds a string or an attribute container, nothing runs.
LEGACY_SAFE_GLOBALS = [torch.torch_version.TorchVersion, argparse.Namespace, PosixPath, PurePosixPath]

# The model shipped with the package (network/pretrained/: the file and its model_card.json, which records
# its sha256, how it was trained and how accurate it is). "--checkpoint pretrained" names it.
PRETRAINED_NAME = "pretrained"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
MODEL_CARD_FILE = "model_card.json"


class CheckpointError(InputError):
    """A checkpoint is missing, not ours, or made with another network configuration."""


class DamagedCheckpointError(CheckpointError, DamagedDataError):
    """A checkpoint file is truncated or damaged (an interrupted copy or download)."""


def config_differences(a: NetworkConfig, b: NetworkConfig, ignore=("name",)) -> list[str]:
    """Fields where two configurations differ, as 'field: a != b' strings (``name`` ignored)."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: {da.get(k)!r} != {db.get(k)!r}" for k in sorted(set(da) | set(db))
            if k not in ignore and da.get(k) != db.get(k)]


def plain_data(value):
    """``value`` as JSON types (dict with str keys, list, str, int, float, bool, None): paths become
    strings, tuples lists, an ``argparse.Namespace`` or a dataclass (``network.train_config.TrainConfig``)
    its dict; anything else its ``str``."""
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def save_checkpoint(path, state: dict) -> None:
    """Write ``state`` atomically (``core.outputs.atomic_write``): the previous file stays until the new one
    is complete, and a full disk raises InputError saying so.

    The checkpoint is serialised in memory first: torch's zip writer turns a failed write into an
    "unexpected pos" RuntimeError that no longer says the disk is full, while a plain write keeps the
    OSError (ENOSPC) for ``atomic_write`` to report.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: handle.write(data))


def _read_checkpoint(path: Path, map_location):
    """``torch.load(weights_only=True)`` with each way of failing named: missing, damaged, not a checkpoint,
    or a file that asks to run code on loading (refused before anything runs)."""
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give a checkpoint file (best.pt or last.pt)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror or err})") from None
    damaged = "copy it again or use another checkpoint (see docs/checkpoint_format.md)"
    if size == 0:
        raise DamagedCheckpointError(f"{path}: is empty (0 bytes): the file is damaged or truncated; {damaged}")
    is_zip = head == b"PK\x03\x04"      # torch.save's format is a zip archive
    if is_zip and not zipfile.is_zipfile(path):
        raise DamagedCheckpointError(f"{path}: is truncated or damaged (the end of the archive is missing, as after "
                                     f"an interrupted copy or download); {damaged}")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(LEGACY_SAFE_GLOBALS):
            warnings.simplefilter("ignore")     # torch warns about pickle protocols before refusing
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:   # noqa: BLE001 - every failure is classified below
        text = str(err)
        code = re.search(r"GLOBAL ([\w.]+)", text) if isinstance(err, pickle.UnpicklingError) else None
        if code:
            raise CheckpointError(
                f"{path}: refused: loading it would run code ({code.group(1)}), and a {CHECKPOINT_FORMAT} holds only "
                f"tensors and plain data (docs/checkpoint_format.md); do not load this file anywhere unless you "
                f"trust its source") from None
        if is_zip:
            try:
                with zipfile.ZipFile(path) as archive:
                    ours = any(name.endswith("/data.pkl") for name in archive.namelist())
            except (OSError, zipfile.BadZipFile):
                ours = True
            if not ours:
                raise CheckpointError(f"{path}: is a zip archive but not a PyTorch checkpoint; give a best.pt or "
                                      f"last.pt written by python -m network.train") from None
            first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
            raise DamagedCheckpointError(f"{path}: is damaged ({first[:120]}); {damaged}") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({type(err).__name__}); give a best.pt or last.pt "
                              f"written by python -m network.train") from None


# Optional entries of a checkpoint and the types they must have (docs/checkpoint_format.md).
_ENTRY_TYPES = {
    "phase": (str,), "epochs": (int,), "steps": (int,), "optimizer": (dict, type(None)), "optimizer_name": (str,),
    "best_val_mpjpe_cm": (int, float), "val_mpjpe_cm": (int, float), "val_loss": (int, float),
    "train_loss": (int, float), "data": (dict, type(None)), "args": (dict, argparse.Namespace),
    "torch_version": (str,), "saved_at": (str,),
}


def _check_format(path: Path, state) -> dict:
    """The checkpoint's dict with ``args`` and ``data`` as plain data, or CheckpointError naming the entry."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: a PyTorch file, but not a {CHECKPOINT_FORMAT} written by python -m "
                              f"network.train (docs/checkpoint_format.md)")
    version = state.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: its format version {version!r} is not a version of {CHECKPOINT_FORMAT}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: format version {version} is newer than this code reads "
                              f"({CHECKPOINT_VERSION}); update the code")
    model = state.get("model")
    if not isinstance(model, Mapping) or not model or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()):
        raise CheckpointError(f"{path}: its 'model' entry is not a dict of named tensors (docs/checkpoint_format.md)")
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"{path}: its 'epoch' entry {epoch!r} is not a whole number >= 0")
    for key, types in _ENTRY_TYPES.items():
        value = state.get(key)
        if key in state and (isinstance(value, bool) or not isinstance(value, types)):
            raise CheckpointError(f"{path}: its {key!r} entry is a {type(value).__name__}, not "
                                  f"{' or '.join(t.__name__ for t in types)} (docs/checkpoint_format.md)")
    state = dict(state)
    state["args"] = plain_data(state.get("args") or {})
    state["data"] = plain_data(state.get("data") or {})
    if "torch_version" in state:
        state["torch_version"] = str(state["torch_version"])
    try:
        state["config_obj"] = NetworkConfig.from_dict(state.get("config"))
    except (InputError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its network configuration cannot be read ({err})") from None
    return state


def resolve_checkpoint(name_or_path) -> Path:
    """The checkpoint file that ``--checkpoint`` / ``--init`` names.

    ``"pretrained"`` is the shipped model (:data:`PRETRAINED_DIR`), returned only after its sha256 matched
    its model card's (a file of that name in the working directory is ``./pretrained``); anything else is
    a path, returned as it is (:func:`load_checkpoint` checks the file).
    Raises DamagedCheckpointError (a DamagedDataError) naming the file when the shipped model or its card
    is missing or changed.
    """
    if str(name_or_path) != PRETRAINED_NAME:
        return Path(name_or_path)
    card_path = PRETRAINED_DIR / MODEL_CARD_FILE
    reinstall = "reinstall posekernel (pip install --force-reinstall .) or give --checkpoint PATH"
    try:
        card = json.loads(card_path.read_text())
        path, expected = PRETRAINED_DIR / card["file"], str(card["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DamagedCheckpointError(f"{card_path}: the shipped model's card cannot be read "
                                     f"({type(err).__name__}: {err}); {reinstall}") from None
    if not path.is_file():
        raise DamagedCheckpointError(f"{path}: the shipped model is missing; {reinstall}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise DamagedCheckpointError(f"{path}: the shipped model is damaged (sha256 {digest[:16]}... differs from "
                                     f"{expected[:16]}... in {card_path.name}); {reinstall}")
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint written by this module, weights only (no code in the file runs).

    Returns the checkpoint's dict (docs/checkpoint_format.md) with ``args`` and ``data`` as plain data, and
    two entries added here: ``config_obj``, its :class:`NetworkConfig`, and ``path``, where it was read.
    Raises CheckpointError when the file is missing, not a checkpoint, asks to run code or has a wrong entry;
    DamagedCheckpointError when it is truncated or damaged.
    """
    path = Path(path)
    state = _check_format(path, _read_checkpoint(path, map_location))
    state["path"] = str(path)
    return state


def load_weights(module: torch.nn.Module, state: dict, path) -> None:
    """Load a checkpoint's weights into ``module``; CheckpointError when they do not fit or are not finite."""
    bad = [k for k, v in state["model"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise DamagedCheckpointError(f"{path}: weights {bad[:3]} hold NaN/inf; the file is damaged, use another "
                                     f"checkpoint")
    try:
        module.load_state_dict(state["model"])
    except (RuntimeError, KeyError, ValueError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        raise CheckpointError(f"{path}: its weights do not fit its network configuration ({text[:200]})") from None


def check_config(path, checkpoint_config: NetworkConfig, config: NetworkConfig | None) -> None:
    """CheckpointError naming the differing fields when ``config`` is given and differs."""
    if config is None:
        return
    diffs = config_differences(config, checkpoint_config)
    if diffs:
        raise CheckpointError(
            f"{path} was made with network configuration {checkpoint_config.name!r}, which differs from the "
            f"requested {config.name!r} in: " + "; ".join(diffs) + ". Use the checkpoint's configuration (leave "
            "--config out) or train a new model")


def load_model(path, config: NetworkConfig | None = None, device="cpu") -> tuple[torch.nn.Module, dict]:
    """The model stored in a checkpoint, in eval mode on ``device``; errors when ``config`` differs."""
    state = load_checkpoint(path)
    check_config(path, state["config_obj"], config)
    model = build_lifter(state["config_obj"])
    load_weights(model, state, path)
    return on_device(model, device).eval(), state




def trained_pair_counts(state: dict | None) -> list[int]:
    """Speaker-microphone pair counts a checkpoint's model trained on ([] when not recorded)."""
    return list(((state or {}).get("data") or {}).get("pair_counts") or [])


def seen_pair_counts(init_state: dict | None, counts: list[int]) -> list[int]:
    """Pair counts a model has trained on: those of its initialisation and of this phase's data."""
    return sorted(set(trained_pair_counts(init_state)) | set(int(c) for c in counts))


def checkpoint_state(*, phase: str, epoch: int, epochs: int, steps: int, config: NetworkConfig, model, optimizer,
                     optimizer_name: str, best: float, val_mpjpe: float, val_loss: float, train_loss: float,
                     data_info: dict, args) -> dict:
    """The dict :func:`save_checkpoint` writes at the end of an epoch (docs/checkpoint_format.md);
    ``args`` (the training configuration) and ``data_info`` are stored as plain data."""
    return {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "phase": phase, "epoch": epoch,
        "epochs": epochs, "steps": steps, "config": config.to_dict(), "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "optimizer_name": optimizer_name,
        "best_val_mpjpe_cm": float(best), "val_mpjpe_cm": float(val_mpjpe), "val_loss": float(val_loss),
        "train_loss": float(train_loss), "data": plain_data(data_info), "args": plain_data(args),
        "torch_version": str(torch.__version__), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
