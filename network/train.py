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
``last.pt`` (after every epoch), ``best.pt`` (the epoch ``--select`` keeps: the lowest validation MPJPE, or under
``--lr-schedule cosine`` the final epoch), ``log.csv`` (one row per epoch; ``best`` is 1 where best.pt was written),
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

Checkpoints: :mod:`network.checkpoints` (weights only; ``docs/checkpoint_format.md``); they record the
options (:class:`network.train_config.TrainConfig`) as plain data.

Optimiser. Adam, learning rate 1e-3, by default: the paper's SGD (learning rate 1, momentum 0.9) collapsed to
flat heatmaps in this project's runs (README, "Optimiser"); ``--optimizer sgd`` (learning rate 1 unless ``--lr``)
is the paper's setting. Gradients are clipped to norm ``--grad-clip`` (10).
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
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.cli import run_command
from core.errors import TargetMissedError
from core.outputs import atomic_write, write_json
from core.progress import progress as show_progress
from network.checkpoints import (   # noqa: F401 - re-exported: users import these from network.train
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    LEGACY_SAFE_GLOBALS,
    CheckpointError,
    DamagedCheckpointError,
    check_config,
    checkpoint_state,
    config_differences,
    load_checkpoint,
    load_model,
    load_weights,
    plain_data,
    save_checkpoint,
    seen_pair_counts,
    trained_pair_counts,
)
from network.commands import UsageError, claim_run_dir, one_line_worker_errors
from network.config import DEFAULT_CONFIG, NetworkConfig, get_config
from network.data import (
    REAL_DATA_HELP,
    batch_to_device,
    model_inputs,
    pair_counts,
    real_dataset,
)
from network.distributed import Dist as _Dist
from network.distributed import loader as _loader
from network.inference import autocast, predict, resolve_device
from network.lifters import build_lifter, on_device, training_loss
from network.train_config import DEFAULT_REAL, DEFAULT_SYNTH, TrainConfig, add_arguments, checked, selection  # noqa: F401
from network.train_data import choose_environments, split_tail, synthetic_sets

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "DamagedCheckpointError",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainingError",
    "config_differences",
    "load_checkpoint",
    "load_model",
    "main",
    "plain_data",
    "predict",
    "resolve_device",
    "run",
    "save_checkpoint",
    "train_phase",
]

WRITER = "network.train"
INTERRUPTED = "the last completed epoch is in last.pt; continue with --resume"
SYNTH_HELP = ("make the synthetic store first:\n    python -m simulator.generate --rooms 500\n"
              "(writes data/synth.zarr; --out elsewhere and pass --synth PATH)")
LOG_FIELDS = ("phase", "epoch", "steps", "train_loss", "val_loss", "val_mpjpe_cm", "lr", "seconds", "best")


class TrainingError(TargetMissedError):
    """Training cannot go on (the message says why); the last good checkpoint is kept."""


class NonFiniteLossError(TrainingError):
    """The loss or the gradients became NaN/inf."""


# ---------------------------------------------------------------------------------------------------------
# Training of one phase, step by step
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


@dataclass
class _Phase:
    """One phase's training state, handed from step to step."""

    name: str
    config: NetworkConfig
    args: TrainConfig
    out_dir: Path
    dist: _Dist
    epochs: int
    amp: bool
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    net: torch.nn.Module | None = None      # the model, wrapped for DDP under torchrun
    writer: object | None = None            # TensorBoard, on the main process
    start_epoch: int = 0
    best: float = float("inf")
    steps: int = 0

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def progress(self) -> bool:
        return self.dist.main and not self.args.no_progress


def _start_phase(phase: str, config: NetworkConfig, args: TrainConfig, out_dir: Path, dist: _Dist,
                 init_state: dict | None) -> _Phase:
    """Seed, build the model and optimiser, and continue ``out_dir/last.pt`` (``--resume``) or start from
    ``init_state``."""
    device = dist.device
    epochs = args.epochs if phase == "pretrain" else (args.finetune_epochs or args.epochs)
    amp = args.amp == "on" or (args.amp == "auto" and device.type == "cuda")
    torch.manual_seed(args.seed + dist.rank)
    model = on_device(build_lifter(config), device)
    if args.compile:
        model.compile_convolutions()
    run = _Phase(phase, config, args, out_dir, dist, epochs, amp, model, _optimizer(args, model))
    if run.last_path.exists():
        _resume(run)
    elif init_state is not None:
        load_weights(model, init_state, init_state["path"])
    return run


def _resume(run: _Phase) -> None:
    """Load the weights, optimiser state and counters of ``last.pt`` into ``run``."""
    last_path = run.last_path
    if not run.args.resume:
        raise UsageError(f"{last_path} exists: pass --resume to continue that run, or choose another --out")
    state = load_checkpoint(last_path, map_location=run.device)
    check_config(last_path, state["config_obj"], run.config)
    load_weights(run.model, state, last_path)
    if state.get("optimizer") and state.get("optimizer_name") == run.args.optimizer:
        try:
            run.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, TypeError) as err:
            raise CheckpointError(f"{last_path}: its optimiser state does not fit this model ({err}); "
                                  f"train into another --out") from None
    run.start_epoch, run.best, run.steps = int(state["epoch"]), float(state.get("best_val_mpjpe_cm", float("inf"))), \
        int(state.get("steps", 0))
    if run.dist.main:
        print(f"[{run.name}] resuming {last_path} after epoch {run.start_epoch} (best val MPJPE {run.best:.2f} cm)")


def _wrap_for_ddp(run: _Phase) -> torch.nn.Module:
    if not run.dist.enabled:
        return run.model
    return torch.nn.parallel.DistributedDataParallel(
        run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None,
        find_unused_parameters=not run.config.use_audio)


def _open_writer(run: _Phase, n_train: int, n_val: int):
    """The phase's TensorBoard writer (main process only), after announcing the phase."""
    if not run.dist.main:
        return None
    run.out_dir.mkdir(parents=True, exist_ok=True)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run.out_dir / "tb"))
    print(f"[{run.name}] {n_train} training frames, {n_val} validation frames, config "
          f"{run.config.name!r}, device {run.device}{' (bf16 autocast)' if run.amp else ''}, "
          f"epochs {run.start_epoch + 1}..{run.epochs}")
    return writer


def _train_step(run: _Phase, batch: dict, epoch: int) -> float:
    """One optimiser step; NonFiniteLossError before the step when the loss or the gradients are NaN/inf."""
    config, dist = run.config, run.dist
    batch = batch_to_device(batch, run.device)
    with autocast(run.device, run.amp):
        output = run.net(model_inputs(batch))
    loss = training_loss(config, output, batch)
    value = float(loss.detach())
    bad = dist.sum([0.0 if math.isfinite(value) else 1.0])[0]
    if bad:
        raise NonFiniteLossError(
            f"[{run.name}] the loss became {value} (NaN/inf) at epoch {epoch + 1}, step {run.steps + 1} "
            f"(frames {batch['index'].tolist()}); training stopped before the optimiser step, "
            f"{run.last_path} is the last good checkpoint. Lower --lr, check the data, then --resume")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(),
                                          run.args.grad_clip if run.args.grad_clip > 0 else float("inf"))
    if dist.sum([0.0 if bool(torch.isfinite(norm)) else 1.0])[0]:
        raise NonFiniteLossError(
            f"[{run.name}] the gradients became NaN/inf at epoch {epoch + 1}, step {run.steps + 1}; training "
            f"stopped before the optimiser step, {run.last_path} is the last good checkpoint")
    run.optimizer.step()
    run.steps += 1
    return value


def _train_epoch(run: _Phase, loader, epoch: int) -> float:
    """One epoch of training steps (at most ``--max-steps``); the mean training loss over every process."""
    run.net.train()
    total, count = 0.0, 0
    bar = show_progress(loader, desc=f"{run.name} {epoch + 1}/{run.epochs}", enabled=run.progress, leave=False)
    for batch in bar:
        value = _train_step(run, batch, epoch)
        total, count = total + value, count + 1
        if run.writer is not None:
            run.writer.add_scalar(f"{run.name}/train_loss_step", value, run.steps)
        bar.set_postfix(loss=f"{value:.3g}")
        if run.args.max_steps and count >= run.args.max_steps:
            break
    train_loss = run.dist.sum([total, count])
    return train_loss[0] / max(train_loss[1], 1)


def _validate(run: _Phase, loader) -> tuple[float, float]:
    """(validation MPJPE in cm, validation loss) over every process's frames."""
    result = predict(run.net, loader, run.device, run.amp, progress=run.progress, desc=f"{run.name} val")
    err = np.linalg.norm(result["pred"] - result["truth"], axis=-1)
    finite = np.isfinite(err)
    val_sum, val_n, vloss_sum, vloss_n = run.dist.sum([float(err[finite].sum()), float(finite.sum()),
                                                       0.0 if math.isnan(result["loss"]) else result["loss"],
                                                       0.0 if math.isnan(result["loss"]) else 1.0])
    val_mpjpe = val_sum / val_n * 100 if val_n else float("nan")
    val_loss = vloss_sum / vloss_n if vloss_n else float("nan")
    return val_mpjpe, val_loss


def _record_epoch(run: _Phase, epoch: int, numbers: dict, keep: bool, data_info: dict) -> None:
    """The epoch's log row, then its checkpoints (last.pt; best.pt when ``keep``: a new lowest validation MPJPE, or
    every epoch with ``--select last``), TensorBoard and a line."""
    # The log row first: a save that fails (a full disk) must not lose the epoch's numbers.
    train_loss, val_loss, val_mpjpe, lr = (numbers[k] for k in ("train_loss", "val_loss", "val_mpjpe", "lr"))
    seconds = time.time() - numbers["started"]
    _append_log(run.out_dir / "log.csv", {
        "phase": run.name, "epoch": epoch + 1, "steps": run.steps, "train_loss": f"{train_loss:.6g}",
        "val_loss": f"{val_loss:.6g}", "val_mpjpe_cm": f"{val_mpjpe:.4f}", "lr": f"{lr:.6g}",
        "seconds": f"{seconds:.2f}", "best": int(keep)})
    state = checkpoint_state(
        phase=run.name, epoch=epoch + 1, epochs=run.epochs, steps=run.steps, config=run.config, model=run.model,
        optimizer=run.optimizer, optimizer_name=run.args.optimizer, best=run.best, val_mpjpe=val_mpjpe,
        val_loss=val_loss, train_loss=train_loss, data_info=data_info, args=run.args)
    save_checkpoint(run.last_path, state)
    if keep or not run.best_path.exists():
        save_checkpoint(run.best_path, state)
    for name, value in (("train_loss", train_loss), ("val_loss", val_loss), ("val_mpjpe_cm", val_mpjpe), ("lr", lr)):
        run.writer.add_scalar(f"{run.name}/{name}", value, epoch + 1)
    run.writer.flush()
    print(f"[{run.name}] epoch {epoch + 1}/{run.epochs}: train loss {train_loss:.4g}, val loss {val_loss:.4g}, "
          f"val MPJPE {val_mpjpe:.2f} cm{' (kept as best.pt)' if keep else ''}, {seconds:.1f} s")


def _run_epoch(run: _Phase, epoch: int, train_loader, val_loader, data_info: dict) -> None:
    """Train, validate, check the weights and (main process) record one epoch."""
    started = time.time()
    lr = _lr_at(run.args, epoch, run.epochs)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    getattr(train_loader.sampler, "set_epoch", lambda e: None)(epoch)     # DistributedSampler, RoomBlockSampler
    # Augmented frames draw from (seed, epoch, frame): a new draw every epoch, the same on any worker.
    getattr(train_loader.dataset, "set_epoch", lambda e: None)(epoch)
    train_loss = _train_epoch(run, train_loader, epoch)
    val_mpjpe, val_loss = _validate(run, val_loader)
    if not all(torch.isfinite(p).all() for p in run.model.parameters()):
        raise NonFiniteLossError(f"[{run.name}] the weights became NaN/inf at epoch {epoch + 1}; not saved, "
                                 f"{run.last_path} is the last good checkpoint")
    improved = math.isfinite(val_mpjpe) and val_mpjpe < run.best
    run.best = val_mpjpe if improved else run.best
    keep = improved or selection(run.args) == "last"
    if run.dist.main:
        numbers = {"train_loss": train_loss, "val_loss": val_loss, "val_mpjpe": val_mpjpe, "lr": lr, "started": started}
        _record_epoch(run, epoch, numbers, keep, data_info)
    run.dist.barrier()


def _room_blocks(train_set, args: TrainConfig, dist: _Dist):
    """``--shuffle rooms`` on a synthetic store in one process: a RoomBlockSampler; otherwise None."""
    store = getattr(train_set, "store", None)
    if args.shuffle != "rooms" or store is None:
        return None
    if dist.enabled:
        if dist.main:
            print("note: --shuffle rooms is for one process; under torchrun every frame is shuffled", file=sys.stderr)
        return None
    from pipeline.store_dataset import RoomBlockSampler

    return RoomBlockSampler(store.frames, store.frames_per_room, block_rooms=store.cached_rooms, seed=args.seed,
                            batch_size=args.batch_size, loader_workers=args.workers)


def train_phase(phase: str, config: NetworkConfig, train_set, val_set, args: TrainConfig, out_dir: Path,
                dist: _Dist, init_state: dict | None, data_info: dict) -> Path:
    """Train one phase into ``out_dir``; returns the path of its best checkpoint."""
    run = _start_phase(phase, config, args, out_dir, dist, init_state)
    if run.start_epoch >= run.epochs:
        if dist.main:
            print(f"[{phase}] already trained for {run.start_epoch} >= --epochs {run.epochs} epochs; nothing to do")
        return run.best_path if run.best_path.exists() else run.last_path
    run.net = _wrap_for_ddp(run)
    train_loader = _loader(train_set, args.batch_size, True, args.workers, dist, args.seed, drop_last=False,
                           sampler=_room_blocks(train_set, args, dist))
    val_loader = _loader(val_set, args.batch_size, False, args.workers, dist, args.seed)
    run.writer = _open_writer(run, len(train_set), len(val_set))
    try:
        for epoch in range(run.start_epoch, run.epochs):
            _run_epoch(run, epoch, train_loader, val_loader, data_info)
    finally:
        if run.writer is not None:
            run.writer.close()
    return run.best_path


# ---------------------------------------------------------------------------------------------------------
# Command line
def build_parser() -> argparse.ArgumentParser:
    """The command's options: one per field of :class:`TrainConfig`."""
    p = argparse.ArgumentParser(
        prog="python -m network.train", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Phases: --pretrain synth (synthetic store) and/or --finetune real (real captures). "
               "See the module docstring (python -c 'import network.train; help(network.train)').")
    return add_arguments(p, TrainConfig)


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
        requested = get_config(DEFAULT_CONFIG, **overrides)
    return requested


def _made_by_old_train(path: Path) -> bool:
    """A run folder of network.train from before output markers: run.json (its arguments) and phase folders."""
    try:
        if not {p.name for p in path.iterdir()} <= {"run.json", "pretrain", "finetune"}:
            return False
        info = plain_data(json.loads((path / "run.json").read_text()))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "config_resolved" in info and ("pretrain" in info or "finetune" in info)


def _check_inputs(args: TrainConfig, phases: list[str], out: Path) -> tuple[list[str] | None, list[str] | None]:
    """Fail fast on missing data, before anything is built; returns the (fine-tuning, test) environments."""
    if "pretrain" in phases:
        synth = args.synth.removeprefix("file://")
        if "://" not in synth and not Path(synth).exists():
            raise UsageError(f"--synth {args.synth}: no synthetic store there; {SYNTH_HELP}")
    finetune_envs = test_envs = None
    if "finetune" in phases:
        if not Path(args.real).is_dir():
            raise UsageError(f"--real {args.real}: no folder there; {REAL_DATA_HELP}")
        finetune_envs, test_envs = choose_environments(args.real, args.finetune_environments, args.test_environments)
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
    return finetune_envs, test_envs


def _read_checkpoints(args: TrainConfig, sources: list[Path], config: NetworkConfig) -> dict | None:
    """Every checkpoint this run will read, read now (weights only) and checked, before --out is claimed: a bad
    fine-tuning last.pt must not surface after hours of pretraining. Returns ``--init``'s state (or None)."""
    init_state = None
    for path in dict.fromkeys(sources):
        if path.is_file():
            state = load_checkpoint(path)
            check_config(path, state["config_obj"], config)
            load_weights(build_lifter(config), state, path)
            if args.init is not None and path == Path(args.init):
                init_state = state
    return init_state


def _trained_counts(frames) -> list[int]:
    """Pair counts of ``frames`` as training sees them: with the subsets their augmentation draws."""
    counts = pair_counts(frames)
    base = frames.dataset if isinstance(frames, torch.utils.data.Subset) else frames
    augmentation = getattr(base, "augmentation", None)
    return counts if augmentation is None else augmentation.pair_counts(counts)


def _pretrain(args: TrainConfig, config: NetworkConfig, synth_sets, out: Path, dist: _Dist,
              init_state: dict | None) -> dict:
    """The pretraining phase; returns its best checkpoint's state (the fine-tuning's initialisation)."""
    train_set, val_set = synth_sets
    info = {"source": "synth", "path": str(args.synth), "train_split": "train",
            "val_split": "val" if val_set is not train_set else "train",
            "pair_counts": seen_pair_counts(init_state, _trained_counts(train_set))}
    best = train_phase("pretrain", config, train_set, val_set, args, out / "pretrain", dist, init_state, info)
    return load_checkpoint(best if best.exists() else out / "pretrain" / "last.pt")


def _finetune(args: TrainConfig, config: NetworkConfig, frames, out: Path, dist: _Dist, init_state: dict | None,
              environments: tuple[list[str], list[str]]) -> None:
    """The fine-tuning phase on real captures (the last ``--val-fraction`` of each environment validates)."""
    finetune_envs, test_envs = environments
    train_idx, val_idx = split_tail(frames, args.val_fraction)
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
            "val_fraction": args.val_fraction, "pair_counts": seen_pair_counts(init_state, counts)}
    train_phase("finetune", config, train_set, val_set, args, out / "finetune", dist, init_state, info)


def run(args: TrainConfig) -> None:
    """Train the phases ``args`` asks for; every input and ``--out`` is checked before any work.

    ``args``: a :class:`TrainConfig` (an ``argparse.Namespace`` of the same fields is converted).
    """
    if not isinstance(args, TrainConfig):
        args = TrainConfig(**vars(args))
    phases = [p for p, on in (("pretrain", args.pretrain), ("finetune", args.finetune)) if on]
    if not phases:
        raise UsageError("nothing to do: give --pretrain synth and/or --finetune real")
    args = checked(args)
    out = Path(args.out or f"runs/{args.config or DEFAULT_CONFIG}")
    finetune_envs, test_envs = _check_inputs(args, phases, out)
    sources = [out / phases[0] / "last.pt"] + ([Path(args.init)] if args.init else []) + \
              ([out / "finetune" / "last.pt"] if len(phases) > 1 else [])
    config = _resolve_config(args, sources)
    init_state = _read_checkpoints(args, sources, config)
    # The data are opened (and their every frame checked) before --out is claimed: a refused run leaves nothing.
    synth_sets = synthetic_sets(args, config) if "pretrain" in phases else None
    real_frames = real_dataset(args.real, config, environments=finetune_envs, grid_center_m=args.grid_center,
                               seed=args.seed, require_ground_truth=True) if "finetune" in phases else None
    if int(os.environ.get("RANK", "0")) == 0:     # one process of a torchrun claims and writes
        claim_run_dir(out, "--out", WRITER, _made_by_old_train)

    dist = _Dist(args.device)
    try:
        if dist.main:
            info = dict(plain_data(args), config_resolved=config.to_dict(),
                        finetune_environments_resolved=finetune_envs, test_environments_resolved=test_envs,
                        world_size=dist.world)
            write_json(out / "run.json", info, WRITER)
        for phase in phases:
            if phase == "pretrain":
                init_state = _pretrain(args, config, synth_sets, out, dist, init_state)
            else:
                _finetune(args, config, real_frames, out, dist, init_state, (finetune_envs, test_envs))
    finally:
        dist.close()


def _main(argv) -> int:
    run(TrainConfig(**vars(build_parser().parse_args(argv))))
    return 0


def main(argv=None) -> int:
    """Command-line entry; returns the exit code (0 done, 1 training failed, 2 bad input / missing data,
    130 interrupted)."""
    return run_command(one_line_worker_errors(lambda: _main(argv)), interrupted=INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
