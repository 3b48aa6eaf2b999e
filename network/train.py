"""Train PoseKernelLifter: pretrain on a synthetic store, fine-tune on real captures (paper section 5).

    python -m network.train --pretrain synth --finetune real            # both phases, defaults below
    python -m network.train --pretrain synth --synth data/synth.zarr --config small --epochs 20 --out runs/small
    python -m network.train --finetune real --real PoseKernel/ --init runs/small/pretrain/best.pt \\
        --finetune-environments environment1 environment2 environment3 environment4 \\
        --test-environments environment5 environment6
    torchrun --nproc_per_node 4 -m network.train --pretrain synth ...  # DDP, one process per GPU

Data. ``--synth`` (default ``data/synth.zarr``, made by ``python -m simulator.generate --rooms 500``): its
``train`` split trains, its ``val`` split picks ``best.pt`` (the train split when the store has no val
frames, with a warning). ``--real DIR`` (default ``data/PoseKernel``; the PoseKernel dataset layout or raw
capture folders, see :func:`network.data.real_dataset`): ``--finetune-environments`` train (the last ``--val-fraction`` of each
environment's frames validate), ``--test-environments`` are never read here and are recorded in the
checkpoint for ``python -m network.evaluate --split test``. They must be disjoint. Defaults: with neither
given and >= 3 environments, the last two environments are the test set (the paper: 4 train, 2 test).

Outputs: each phase writes ``OUT/<phase>/`` (``OUT`` = ``--out``, default ``runs/<config>``):
``last.pt`` (after every epoch), ``best.pt`` (lowest validation MPJPE), ``log.csv`` (one row per epoch),
``tb/`` (TensorBoard: loss per step, loss and MPJPE per epoch), and ``OUT/run.json`` (the arguments).
A run whose ``last.pt`` exists refuses to start again unless ``--resume`` continues it (from the epoch after
the one saved, up to ``--epochs``); when both phases are asked and pretraining is complete, ``--resume``
goes on with fine-tuning, initialised from ``OUT/pretrain/best.pt``.

Safety. ``--out`` is claimed before any work: a new or empty folder, or a run folder this command made
(``.posekernel-output.json``, or ``run.json`` from before that marker); anything else is refused. Every
number is checked first, with the flag named. The epoch's ``log.csv`` row is written before its checkpoint;
checkpoints are written to a temporary file and renamed (``core.outputs.atomic_write``): an interrupted save
never leaves a truncated ``last.pt``, and a full disk is reported as such. A NaN/inf loss or gradient stops
training with an error before the optimiser step, so the previous ``last.pt`` stays the last good one. A
checkpoint made with another network configuration than ``--config`` is refused with the differing fields
named (without ``--config`` the checkpoint's configuration is used).

Checkpoints. Tensors and plain data only, loaded with ``torch.load(weights_only=True)``: no code in a file
runs. Their keys, types and versions are in ``docs/checkpoint_format.md``; :func:`load_checkpoint` refuses
anything else with :class:`CheckpointError` (:class:`DamagedCheckpointError` for a truncated or damaged file).

Optimiser. Adam, learning rate 1e-3, by default: measured on the small-scale store (300 frames, config
'small'), SGD with the paper's learning rate 1 and momentum 0.9 collapsed to flat heatmaps (validation
MPJPE 265 cm after one epoch, 277 cm after six), while Adam, with the prediction heads starting at zero
(``network.model``), reaches 30 cm after one epoch and 21 cm after six (experiments/results/small) —
:func:`network.heatmaps.heatmap_loss` averages over ~10^4-10^5 mostly-zero voxels, and Adam is blind to
that scale. ``--optimizer sgd`` (learning rate 1 unless ``--lr``) is the paper's setting. Gradients are
clipped to norm ``--grad-clip`` (10).
``--lr-schedule cosine`` anneals to 0 over ``--epochs`` (stateless, so resuming keeps it).

Device. ``--device auto`` takes the GPU when there is one; on a GPU the forward pass runs under
``torch.autocast`` in bfloat16 (``--amp off`` disables it; the encodings stay float32 inside the model).
Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains on its ``LOCAL_RANK`` GPU with a
``DistributedSampler``; rank 0 writes logs and checkpoints.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import pickle
import re
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path, PosixPath, PurePosixPath

import numpy as np
import torch

from core.checks import check_finite_array, check_number, check_whole
from core.cli import run_command
from core.errors import DamagedDataError, InputError, PoseKernelError, TargetMissedError
from core.outputs import OUTPUT_MARKER, atomic_write, claim_output_dir, write_json
from network.config import CONFIGS, NetworkConfig, get_config
from network.data import (
    REAL_DATA_HELP,
    SynthFrames,
    batch_to_device,
    collate,
    list_environments,
    model_inputs,
    pair_counts,
    real_dataset,
)
from network.heatmaps import gaussian_targets, heatmap_loss, soft_argmax_joints
from network.model import PoseKernelLifter

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "DamagedCheckpointError",
    "NonFiniteLossError",
    "TrainingError",
    "config_differences",
    "load_checkpoint",
    "load_model",
    "main",
    "plain_data",
    "predict",
    "resolve_device",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "posekernel-lifter-checkpoint"
CHECKPOINT_VERSION = 2     # 2: plain data only (1 held torch's TorchVersion, maybe an argparse.Namespace)
WRITER = "network.train"
INTERRUPTED = "the last completed epoch is in last.pt; continue with --resume"
# Checkpoints of version 1 hold torch.__version__ (a str subclass) and may hold the others; unpickling
# any of them only builds a string or an attribute container, nothing runs.
LEGACY_SAFE_GLOBALS = [torch.torch_version.TorchVersion, argparse.Namespace, PosixPath, PurePosixPath]
DEFAULT_SYNTH = "data/synth.zarr"
DEFAULT_REAL = "data/PoseKernel"
SYNTH_HELP = ("make the synthetic store first:\n    python -m simulator.generate --rooms 500\n"
              "(writes data/synth.zarr; --out elsewhere and pass --synth PATH)")
LOG_FIELDS = ("phase", "epoch", "steps", "train_loss", "val_loss", "val_mpjpe_cm", "lr", "seconds", "best")


class TrainingError(TargetMissedError):
    """Training cannot go on (the message says why); the last good checkpoint is kept."""


class NonFiniteLossError(TrainingError):
    """The loss or the gradients became NaN/inf."""


class CheckpointError(InputError):
    """A checkpoint is missing, not ours, or made with another network configuration."""


class DamagedCheckpointError(CheckpointError, DamagedDataError):
    """A checkpoint file is truncated or damaged (an interrupted copy or download)."""


class UsageError(InputError):
    """Bad command-line arguments or missing data (exit code 2)."""


# ---------------------------------------------------------------------------------------------------------
# Checkpoints
def config_differences(a: NetworkConfig, b: NetworkConfig, ignore=("name",)) -> list[str]:
    """Fields where two configurations differ, as 'field: a != b' strings (``name`` ignored)."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: {da.get(k)!r} != {db.get(k)!r}" for k in sorted(set(da) | set(db))
            if k not in ignore and da.get(k) != db.get(k)]


def plain_data(value):
    """``value`` as JSON types (dict with str keys, list, str, int, float, bool, None): paths become
    strings, tuples lists, an ``argparse.Namespace`` its dict; anything else its ``str``."""
    if isinstance(value, argparse.Namespace):
        value = vars(value)
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


def load_model(path, config: NetworkConfig | None = None, device="cpu") -> tuple[PoseKernelLifter, dict]:
    """The model stored in a checkpoint, in eval mode on ``device``; errors when ``config`` differs."""
    state = load_checkpoint(path)
    check_config(path, state["config_obj"], config)
    model = PoseKernelLifter(state["config_obj"])
    load_weights(model, state, path)
    return model.to(device).eval(), state


# ---------------------------------------------------------------------------------------------------------
# Devices, distribution
def resolve_device(name: str = "auto") -> torch.device:
    """'auto': the (local-rank) GPU when available, else the CPU; 'cuda' fails clearly without one."""
    if name not in ("auto", "cpu", "cuda") and not name.startswith("cuda:"):
        raise UsageError(f"--device {name!r}: choose auto, cpu or cuda")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if name == "auto":
            return torch.device("cpu")
        raise UsageError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    if name.startswith("cuda:"):
        return torch.device(name)
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


class _Dist:
    """torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK) or a single process."""

    def __init__(self, device_name: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled:
            import torch.distributed as dist

            if torch.cuda.is_available() and device_name != "cpu":
                torch.cuda.set_device(self.local_rank)
                self.device = torch.device("cuda", self.local_rank)
                backend = "nccl"
            else:
                self.device, backend = torch.device("cpu"), "gloo"
            if not dist.is_initialized():
                dist.init_process_group(backend=backend)
        else:
            self.device = resolve_device(device_name)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if (amp and device.type == "cuda") else nullcontext()


def _loader(dataset, batch_size: int, shuffle: bool, workers: int, dist: _Dist, seed: int, drop_last=False):
    sampler = None
    if dist.enabled:
        sampler = torch.utils.data.distributed.DistributedSampler(dataset, num_replicas=dist.world, rank=dist.rank,
                                                                  shuffle=shuffle, seed=seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=workers, collate_fn=collate, drop_last=drop_last, generator=generator,
        pin_memory=dist.device.type == "cuda", persistent_workers=False)


# ---------------------------------------------------------------------------------------------------------
# Inference (shared with network.evaluate)
@torch.no_grad()
def predict(model, loader, device, amp: bool = True, transform=None, progress: bool = False, desc: str = "predict"):
    """Decode every frame of ``loader``: dict of numpy arrays ``pred`` (N, 15, 3) m, ``truth``, ``is_minor``,
    ``keypoints2d``, ``intrinsics``, ``index``, ``room_id``, and ``loss`` (mean heatmap loss per batch).

    ``transform(batch) -> batch`` edits a batch first (e.g. masks pairs for an ablation).
    """
    from tqdm import tqdm

    module = model.module if hasattr(model, "module") else model
    cfg = module.config
    model.eval()
    out = {k: [] for k in ("pred", "truth", "is_minor", "keypoints2d", "intrinsics", "index", "room_id")}
    losses = []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        if transform is not None:
            batch = transform(batch)
        batch = batch_to_device(batch, device)
        with _autocast(device, amp):
            heatmaps = model(model_inputs(batch))
        heatmaps = [h.float() for h in heatmaps]
        joints = batch["joints3d"]
        if torch.isfinite(joints).all():
            targets, mask = gaussian_targets(joints, batch["grid_to_camera"], cfg.grid_shape, cfg.voxel_size_m,
                                             cfg.target_sigma_voxels, return_mask=True)
            losses.append(float(heatmap_loss(heatmaps, targets, mask)))
        pred = soft_argmax_joints(heatmaps[-1], batch["grid_to_camera"], cfg.voxel_size_m)
        out["pred"].append(pred.cpu().double().numpy())
        out["truth"].append(joints.cpu().double().numpy())
        for key in ("is_minor", "keypoints2d", "intrinsics", "index", "room_id"):
            out[key].append(batch[key].cpu().numpy())
    result = {k: (np.concatenate(v) if v else np.zeros((0,))) for k, v in out.items()}
    result["loss"] = float(np.mean(losses)) if losses else float("nan")
    return result


def _mpjpe_cm(pred: np.ndarray, truth: np.ndarray) -> float:
    err = np.linalg.norm(pred - truth, axis=-1)
    err = err[np.isfinite(err)]
    return float(err.mean() * 100) if err.size else float("nan")


# ---------------------------------------------------------------------------------------------------------
# Training of one phase
def _lr_at(args, epoch: int, epochs: int) -> float:
    if args.lr_schedule == "cosine":
        return args.lr * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    return args.lr


def _optimizer(args, model):
    if args.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)


def _append_log(path: Path, row: dict) -> None:
    """Add an epoch's row to ``log.csv``, rewriting the file atomically (never a half-written line).

    Rows of the same phase from this epoch on are dropped first: they were logged by a run whose
    checkpoint save then failed, and ``--resume`` trains those epochs again.
    """
    rows = []
    if path.exists():
        with open(path, newline="") as handle:
            rows = [r for r in csv.DictReader(handle)
                    if not (r.get("phase") == row["phase"] and str(r.get("epoch", "")).isdigit()
                            and int(r["epoch"]) >= int(row["epoch"]))]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=LOG_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows + [row])
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))


def train_phase(phase: str, config: NetworkConfig, train_set, val_set, args, out_dir: Path, dist: _Dist,
                init_state: dict | None, data_info: dict) -> Path:
    """Train one phase into ``out_dir``; returns the path of its best checkpoint."""
    from tqdm import tqdm

    device = dist.device
    epochs = args.epochs if phase == "pretrain" else (args.finetune_epochs or args.epochs)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    amp = args.amp == "on" or (args.amp == "auto" and device.type == "cuda")
    torch.manual_seed(args.seed + dist.rank)

    model = PoseKernelLifter(config).to(device)
    if args.compile:
        model.compile_convolutions()
    optimizer = _optimizer(args, model)
    start_epoch, best, steps = 0, float("inf"), 0
    if last_path.exists():
        if not args.resume:
            raise UsageError(f"{last_path} exists: pass --resume to continue that run, or choose another --out")
        state = load_checkpoint(last_path, map_location=device)
        check_config(last_path, state["config_obj"], config)
        load_weights(model, state, last_path)
        if state.get("optimizer") and state.get("optimizer_name") == args.optimizer:
            try:
                optimizer.load_state_dict(state["optimizer"])
            except (KeyError, ValueError, TypeError) as err:
                raise CheckpointError(f"{last_path}: its optimiser state does not fit this model ({err}); "
                                      f"train into another --out") from None
        start_epoch, best, steps = int(state["epoch"]), float(state.get("best_val_mpjpe_cm", float("inf"))), \
            int(state.get("steps", 0))
        if dist.main:
            print(f"[{phase}] resuming {last_path} after epoch {start_epoch} (best val MPJPE {best:.2f} cm)")
    elif init_state is not None:
        load_weights(model, init_state, init_state["path"])
    if start_epoch >= epochs:
        if dist.main:
            print(f"[{phase}] already trained for {start_epoch} >= --epochs {epochs} epochs; nothing to do")
        return best_path if best_path.exists() else last_path

    net = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=not config.use_audio)
    train_loader = _loader(train_set, args.batch_size, True, args.workers, dist, args.seed, drop_last=False)
    val_loader = _loader(val_set, args.batch_size, False, args.workers, dist, args.seed)
    writer = None
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tb"))
        print(f"[{phase}] {len(train_set)} training frames, {len(val_set)} validation frames, config "
              f"{config.name!r}, device {device}{' (bf16 autocast)' if amp else ''}, epochs {start_epoch + 1}..{epochs}")
    progress = dist.main and not args.no_progress
    try:
        for epoch in range(start_epoch, epochs):
            started = time.time()
            lr = _lr_at(args, epoch, epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if dist.enabled:
                train_loader.sampler.set_epoch(epoch)
            net.train()
            total, count = 0.0, 0
            bar = tqdm(train_loader, desc=f"{phase} {epoch + 1}/{epochs}", disable=not progress, leave=False)
            for batch in bar:
                batch = batch_to_device(batch, device)
                with _autocast(device, amp):
                    heatmaps = net(model_inputs(batch))
                targets, mask = gaussian_targets(batch["joints3d"], batch["grid_to_camera"], config.grid_shape,
                                                 config.voxel_size_m, config.target_sigma_voxels, return_mask=True)
                loss = heatmap_loss(heatmaps, targets, mask)
                value = float(loss.detach())
                bad = dist.sum([0.0 if math.isfinite(value) else 1.0])[0]
                if bad:
                    raise NonFiniteLossError(
                        f"[{phase}] the loss became {value} (NaN/inf) at epoch {epoch + 1}, step {steps + 1} "
                        f"(frames {batch['index'].tolist()}); training stopped before the optimiser step, "
                        f"{last_path} is the last good checkpoint. Lower --lr, check the data, then --resume")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                      args.grad_clip if args.grad_clip > 0 else float("inf"))
                if dist.sum([0.0 if bool(torch.isfinite(norm)) else 1.0])[0]:
                    raise NonFiniteLossError(
                        f"[{phase}] the gradients became NaN/inf at epoch {epoch + 1}, step {steps + 1}; training "
                        f"stopped before the optimiser step, {last_path} is the last good checkpoint")
                optimizer.step()
                steps += 1
                total, count = total + value, count + 1
                if writer is not None:
                    writer.add_scalar(f"{phase}/train_loss_step", value, steps)
                bar.set_postfix(loss=f"{value:.3g}")
                if args.max_steps and count >= args.max_steps:
                    break
            train_loss = dist.sum([total, count])
            train_loss = train_loss[0] / max(train_loss[1], 1)
            result = predict(net, val_loader, device, amp, progress=progress, desc=f"{phase} val")
            err = np.linalg.norm(result["pred"] - result["truth"], axis=-1)
            finite = np.isfinite(err)
            val_sum, val_n, vloss_sum, vloss_n = dist.sum([float(err[finite].sum()), float(finite.sum()),
                                                           0.0 if math.isnan(result["loss"]) else result["loss"],
                                                           0.0 if math.isnan(result["loss"]) else 1.0])
            val_mpjpe = val_sum / val_n * 100 if val_n else float("nan")
            val_loss = vloss_sum / vloss_n if vloss_n else float("nan")
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise NonFiniteLossError(f"[{phase}] the weights became NaN/inf at epoch {epoch + 1}; not saved, "
                                         f"{last_path} is the last good checkpoint")
            improved = math.isfinite(val_mpjpe) and val_mpjpe < best
            best = val_mpjpe if improved else best
            if dist.main:
                # The log row first: a save that fails (a full disk) must not lose the epoch's numbers.
                seconds = time.time() - started
                _append_log(out_dir / "log.csv", {
                    "phase": phase, "epoch": epoch + 1, "steps": steps, "train_loss": f"{train_loss:.6g}",
                    "val_loss": f"{val_loss:.6g}", "val_mpjpe_cm": f"{val_mpjpe:.4f}", "lr": f"{lr:.6g}",
                    "seconds": f"{seconds:.2f}", "best": int(improved)})
                state = {
                    "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "phase": phase, "epoch": epoch + 1,
                    "epochs": epochs, "steps": steps, "config": config.to_dict(), "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "optimizer_name": args.optimizer,
                    "best_val_mpjpe_cm": float(best), "val_mpjpe_cm": float(val_mpjpe), "val_loss": float(val_loss),
                    "train_loss": float(train_loss), "data": plain_data(data_info), "args": plain_data(vars(args)),
                    "torch_version": str(torch.__version__), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
                save_checkpoint(last_path, state)
                if improved or not best_path.exists():
                    save_checkpoint(best_path, state)
                writer.add_scalar(f"{phase}/train_loss", train_loss, epoch + 1)
                writer.add_scalar(f"{phase}/val_loss", val_loss, epoch + 1)
                writer.add_scalar(f"{phase}/val_mpjpe_cm", val_mpjpe, epoch + 1)
                writer.add_scalar(f"{phase}/lr", lr, epoch + 1)
                writer.flush()
                print(f"[{phase}] epoch {epoch + 1}/{epochs}: train loss {train_loss:.4g}, val loss {val_loss:.4g}, "
                      f"val MPJPE {val_mpjpe:.2f} cm{' (best)' if improved else ''}, {seconds:.1f} s")
            dist.barrier()
    finally:
        if writer is not None:
            writer.close()
    return best_path


# ---------------------------------------------------------------------------------------------------------
# Command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m network.train", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Phases: --pretrain synth (synthetic store) and/or --finetune real (real captures). "
               "See the module docstring (python -c 'import network.train; help(network.train)').")
    p.add_argument("--pretrain", choices=["synth"], help="pretrain on the synthetic store (--synth)")
    p.add_argument("--finetune", choices=["real"], help="fine-tune on real captures (--real)")
    p.add_argument("--synth", default=DEFAULT_SYNTH, help=f"synthetic Zarr store (default {DEFAULT_SYNTH})")
    p.add_argument("--real", default=DEFAULT_REAL,
                   help=f"real captures: PoseKernel dataset root or raw capture folder(s) (default {DEFAULT_REAL})")
    p.add_argument("--finetune-environments", nargs="+", default=None, metavar="ENV",
                   help="environments (or raw capture folders) to fine-tune on (default: all but the test ones)")
    p.add_argument("--test-environments", nargs="+", default=None, metavar="ENV",
                   help="held-out environments, never trained on (default: the last two when there are >= 3)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="last fraction of each fine-tuning environment's frames used to validate (default 0.1)")
    p.add_argument("--grid-center", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="real data: the voxel grid's centre in the camera frame, m (default: the config's grid_center_m, 0 0.2 3.5)")
    p.add_argument("--init", default=None, help="checkpoint to start from (needed by --finetune without --pretrain)")
    p.add_argument("--config", choices=sorted(CONFIGS), default=None,
                   help="network size (default: the checkpoint's with --init/--resume, else 'paper')")
    p.add_argument("--no-vision", action="store_true", help="train the audio-only ablation (use_vision=False)")
    p.add_argument("--no-audio", action="store_true", help="train the vision-only ablation (use_audio=False)")
    p.add_argument("--epochs", type=int, default=70, help="epochs of pretraining (and fine-tuning; default 70)")
    p.add_argument("--finetune-epochs", type=int, default=None, help="epochs of fine-tuning (default --epochs)")
    p.add_argument("--max-steps", type=int, default=0, help="stop each epoch after this many steps (0: whole epoch)")
    p.add_argument("--batch-size", type=int, default=8, help="frames per batch per process (default 8)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="adam",
                   help="adam (default) or sgd (the paper's; collapsed to flat heatmaps in our small-scale run)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3 for Adam, 1.0 for SGD)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=10.0, help="clip the gradient norm (0: off)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant")
    p.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")
    p.add_argument("--amp", choices=["auto", "on", "off"], default="auto", help="bf16 autocast (auto: on GPU)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the convolution stacks (H200, paper grid: 1.3x training samples/s; "
                        "the first steps pay the compilation)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default 2)")
    p.add_argument("--out", default=None, help="run folder (default runs/<config>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return p


def _choose_environments(real: str, finetune, test) -> tuple[list[str], list[str]]:
    try:
        available = list_environments(real)
    except OSError as err:
        raise UsageError(f"--real {real}: {err}") from None
    if not available:
        raise UsageError(f"--real {real}: no environments found; {REAL_DATA_HELP}")
    for flag, names in (("--finetune-environments", finetune), ("--test-environments", test)):
        unknown = sorted(set(names or ()) - set(available))
        if unknown:
            raise UsageError(f"{flag}: {unknown} not in {real} (it has {available})")
    if finetune is not None and test is not None:
        overlap = sorted(set(finetune) & set(test))
        if overlap:
            raise UsageError(f"--finetune-environments and --test-environments overlap in {overlap}: the test "
                             f"environments must never be trained on")
    if finetune is None and test is None:
        test = available[-2:] if len(available) >= 3 else []
        if not test:
            print(f"warning: {real} has only {available}; no environment is held out for testing", file=sys.stderr)
    if finetune is None:
        finetune = [e for e in available if e not in set(test)]
    if test is None:
        test = [e for e in available if e not in set(finetune)]
    if not finetune:
        raise UsageError("no environment left to fine-tune on; give --finetune-environments")
    return list(finetune), list(test)


def trained_pair_counts(state: dict | None) -> list[int]:
    """Speaker-microphone pair counts a checkpoint's model trained on ([] when not recorded)."""
    return list(((state or {}).get("data") or {}).get("pair_counts") or [])


def _seen_pairs(init_state: dict | None, counts: list[int]) -> list[int]:
    """Pair counts a model has trained on: those of its initialisation and of this phase's data."""
    return sorted(set(trained_pair_counts(init_state)) | set(int(c) for c in counts))


def _split_tail(frames, fraction: float) -> tuple[list[int], list[int]]:
    """Per environment, the last ``fraction`` of frames (at least one when it has >= 2) validate."""
    by_env: dict[str, list[int]] = {}
    for i in range(len(frames)):
        by_env.setdefault(frames.environment_of(i), []).append(i)
    train, val = [], []
    for positions in by_env.values():
        n_val = int(round(fraction * len(positions)))
        if fraction > 0 and len(positions) >= 2:
            n_val = max(1, n_val)
        n_val = min(n_val, len(positions) - 1)
        train += positions[:len(positions) - n_val]
        val += positions[len(positions) - n_val:]
    return train, val


def _resolve_config(args, sources: list[Path]) -> NetworkConfig:
    requested = None
    if args.config is not None:
        overrides = {}
        if args.no_vision:
            overrides["use_vision"] = False
        if args.no_audio:
            overrides["use_audio"] = False
        requested = get_config(args.config, **overrides)
    for path in sources:
        if path.exists():
            state = load_checkpoint(path)
            check_config(path, state["config_obj"], requested)
            if requested is None:
                cfg = state["config_obj"]
                for flag, field in (("no_vision", "use_vision"), ("no_audio", "use_audio")):
                    if getattr(args, flag) and getattr(cfg, field):
                        raise CheckpointError(f"{path} was trained with {field}=True; --{flag.replace('_', '-')} "
                                              f"cannot change that (train a new model with --config)")
                return cfg
    if requested is None:
        overrides = {k: False for flag, k in (("no_vision", "use_vision"), ("no_audio", "use_audio")) if getattr(args, flag)}
        requested = get_config("paper", **overrides)
    return requested


def check_args(args) -> None:
    """Every number of the command line, checked before any work (UsageError naming the flag)."""
    args.epochs = check_whole("--epochs", args.epochs, 1, error=UsageError)
    if args.finetune_epochs is not None:
        args.finetune_epochs = check_whole("--finetune-epochs", args.finetune_epochs, 1, error=UsageError)
    args.max_steps = check_whole("--max-steps", args.max_steps, 0, error=UsageError)   # 0: the whole epoch
    args.batch_size = check_whole("--batch-size", args.batch_size, 1, error=UsageError)
    args.workers = check_whole("--workers", args.workers, 0, error=UsageError)
    args.seed = check_whole("--seed", args.seed, 0, 2**32 - 1, error=UsageError)   # numpy's seed range
    args.lr = check_number("--lr", args.lr, 0, low_open=True, error=UsageError)
    args.momentum = check_number("--momentum", args.momentum, 0, 1, high_open=True, error=UsageError)
    args.weight_decay = check_number("--weight-decay", args.weight_decay, 0, error=UsageError)
    args.grad_clip = check_number("--grad-clip", args.grad_clip, 0, error=UsageError)       # 0: off
    args.val_fraction = check_number("--val-fraction", args.val_fraction, 0, 1, high_open=True, error=UsageError)
    if args.grid_center is not None:
        args.grid_center = check_finite_array("--grid-center", args.grid_center, (3,), error=UsageError).tolist()
    resolve_device(args.device)


def claim_run_dir(path, flag: str, writer: str, made_before: Callable[[Path], bool]) -> Path:
    """``core.outputs.claim_output_dir``, also accepting a folder this command made before folders got
    their marker (``made_before(path)`` recognises its files); such a folder gets the marker now."""
    path = Path(path).expanduser()
    if path.is_dir() and not (path / OUTPUT_MARKER).exists() and made_before(path):
        try:
            write_json(path / OUTPUT_MARKER, {"created": "before output markers", "adopted": time.strftime(
                "%Y-%m-%dT%H:%M:%S")}, writer)
        except OSError as err:
            raise InputError(f"{flag} {path}: cannot write there ({err.strerror or err}); "
                             f"choose a writable folder") from None
    return claim_output_dir(path, flag, writer)


def _made_by_old_train(path: Path) -> bool:
    """A run folder of network.train from before output markers: run.json (its arguments) and phase folders."""
    try:
        if not {p.name for p in path.iterdir()} <= {"run.json", "pretrain", "finetune"}:
            return False
        info = plain_data(json.loads((path / "run.json").read_text()))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "config_resolved" in info and ("pretrain" in info or "finetune" in info)


def one_line_worker_errors(work: Callable[[], int | None]) -> Callable[[], int | None]:
    """``work`` with a project error raised in a DataLoader worker given back its own message.

    torch re-raises a worker's exception in the main process as the same class with the worker's whole
    traceback as its message; the user should see the one line the error was made with.
    """
    def wrapped():
        try:
            return work()
        except PoseKernelError as err:
            text = str(err)
            if "Original Traceback" not in text:
                raise
            kind = type(err)
            name = f"{kind.__module__}.{kind.__qualname__}: "
            at = text.rfind(name)
            message = text[at + len(name):].strip() if at >= 0 else text.strip().splitlines()[-1]
            raise kind(message) from None
    return wrapped


def _synthetic_sets(args, config: NetworkConfig):
    """The store's (train, val) frames; val is the train split, with a warning, when the store has none."""
    train_set = SynthFrames(args.synth, config, split="train")
    if len(train_set) == 0:
        raise UsageError(f"--synth {args.synth}: no finished training frames (split 'train'); generate more rooms")
    val_set = SynthFrames(args.synth, config, split="val")
    if len(val_set) == 0:
        print(f"warning: {args.synth} has no 'val' frames; validating on the training frames", file=sys.stderr)
        val_set = train_set
    return train_set, val_set


def run(args) -> None:
    """Train the phases ``args`` asks for; every input and ``--out`` is checked before any work."""
    phases = [p for p, on in (("pretrain", args.pretrain), ("finetune", args.finetune)) if on]
    if not phases:
        raise UsageError("nothing to do: give --pretrain synth and/or --finetune real")
    check_args(args)
    out = Path(args.out or f"runs/{args.config or 'paper'}")
    # Fail fast on missing data, before anything is built.
    if "pretrain" in phases:
        synth = args.synth.removeprefix("file://")
        if "://" not in synth and not Path(synth).exists():
            raise UsageError(f"--synth {args.synth}: no synthetic store there; {SYNTH_HELP}")
    finetune_envs = test_envs = None
    if "finetune" in phases:
        if not Path(args.real).is_dir():
            raise UsageError(f"--real {args.real}: no folder there; {REAL_DATA_HELP}")
        finetune_envs, test_envs = _choose_environments(args.real, args.finetune_environments, args.test_environments)
        if "pretrain" not in phases and args.init is None and not (out / "finetune" / "last.pt").exists():
            raise UsageError("--finetune real without --pretrain needs --init CHECKPOINT (e.g. "
                             "runs/NAME/pretrain/best.pt)")
    if args.init is not None and not Path(args.init).is_file():
        raise UsageError(f"--init {args.init}: no checkpoint there")
    if not args.resume:
        for phase in phases:
            if (out / phase / "last.pt").exists():
                raise UsageError(f"{out / phase / 'last.pt'} exists: pass --resume to continue that run, or choose "
                                 f"another --out")

    sources = [out / phases[0] / "last.pt"] + ([Path(args.init)] if args.init else []) + \
              ([out / "finetune" / "last.pt"] if len(phases) > 1 else [])
    config = _resolve_config(args, sources)
    # Every checkpoint this run will read is read now (weights only) and checked, before --out is claimed:
    # a bad fine-tuning last.pt must not surface after hours of pretraining.
    init_state = None
    for path in dict.fromkeys(sources):
        if path.is_file():
            state = load_checkpoint(path)
            check_config(path, state["config_obj"], config)
            load_weights(PoseKernelLifter(config), state, path)
            if args.init is not None and path == Path(args.init):
                init_state = state
    # The data are opened (and their every frame checked) before --out is claimed: a refused run leaves nothing.
    synth_sets = _synthetic_sets(args, config) if "pretrain" in phases else None
    real_frames = real_dataset(args.real, config, environments=finetune_envs, grid_center_m=args.grid_center,
                               seed=args.seed, require_ground_truth=True) if "finetune" in phases else None
    if int(os.environ.get("RANK", "0")) == 0:     # one process of a torchrun claims and writes
        claim_run_dir(out, "--out", WRITER, _made_by_old_train)

    dist = _Dist(args.device)
    try:
        if dist.main:
            info = dict(plain_data(vars(args)), config_resolved=config.to_dict(),
                        finetune_environments_resolved=finetune_envs, test_environments_resolved=test_envs,
                        world_size=dist.world)
            write_json(out / "run.json", info, WRITER)
        for phase in phases:
            if phase == "pretrain":
                train_set, val_set = synth_sets
                info = {"source": "synth", "path": str(args.synth), "train_split": "train",
                        "val_split": "val" if val_set is not train_set else "train",
                        "pair_counts": _seen_pairs(init_state, pair_counts(train_set))}
                best = train_phase("pretrain", config, train_set, val_set, args, out / "pretrain", dist, init_state, info)
                init_state = load_checkpoint(best if best.exists() else out / "pretrain" / "last.pt")
            else:
                frames = real_frames
                train_idx, val_idx = _split_tail(frames, args.val_fraction)
                train_set = frames.subset(train_idx)
                val_set = frames.subset(val_idx) if val_idx else train_set
                if not val_idx:
                    print("warning: no validation frames (--val-fraction 0 or one frame per environment); "
                          "validating on the training frames", file=sys.stderr)
                counts = pair_counts(frames)
                before = trained_pair_counts(init_state)
                if dist.main and before and not set(counts) <= set(before):
                    print(f"note: the model was trained on frames of {before} speaker-microphone pairs and these "
                          f"captures have {counts}; the max-pool over pairs takes any count and fine-tuning adapts "
                          f"the model to this rig", file=sys.stderr)
                info = {"source": "real", "path": str(args.real), "finetune_environments": finetune_envs,
                        "test_environments": test_envs, "grid_center_m": list(frames.grid_center_m),
                        "val_fraction": args.val_fraction, "pair_counts": _seen_pairs(init_state, counts)}
                train_phase("finetune", config, train_set, val_set, args, out / "finetune", dist, init_state, info)
    finally:
        dist.close()


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    if args.lr is None:
        args.lr = 1e-3 if args.optimizer == "adam" else 1.0
    run(args)
    return 0


def main(argv=None) -> int:
    """Command-line entry; returns the exit code (0 done, 1 training failed, 2 bad input / missing data,
    130 interrupted)."""
    return run_command(one_line_worker_errors(lambda: _main(argv)), interrupted=INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
