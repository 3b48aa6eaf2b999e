"""The training configuration: one dataclass from which ``python -m network.train``'s options are built.

:class:`TrainConfig` holds every option of the command (help text, default, type and choices in each field's
metadata); :func:`add_arguments` turns its fields into argparse options in field order, and
:func:`checked` validates the numbers before any work. Checkpoints store it as plain data
(``dataclasses.asdict``); :meth:`TrainConfig.from_dict` reads that back, also from older checkpoints.
Public names: ``__all__``.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field

from core.checks import check_finite_array, check_number, check_whole
from network.checkpoints import resolve_checkpoint
from network.commands import UsageError
from network.config import CONFIGS, DEFAULT_CONFIG
from network.inference import resolve_device

__all__ = ["DEFAULT_REAL", "DEFAULT_SYNTH", "TrainConfig", "add_arguments", "checked", "default_lr", "selection"]

DEFAULT_SYNTH = "data/synth.zarr"
DEFAULT_REAL = "data/PoseKernel"


def _option(default, help: str | None = None, **argparse_kwargs):
    """A dataclass field whose metadata holds its command-line option (help, choices, nargs, metavar)."""
    return field(default=default, metadata=dict(argparse_kwargs, help=help))


@dataclass
class TrainConfig:
    """Every option of ``python -m network.train`` (the field ``x_y`` is the flag ``--x-y``)."""

    pretrain: str | None = _option(None, "pretrain on the synthetic store (--synth)", choices=["synth"])
    finetune: str | None = _option(None, "fine-tune on real captures (--real)", choices=["real"])
    synth: str = _option(DEFAULT_SYNTH, f"synthetic Zarr store (default {DEFAULT_SYNTH})")
    real: str = _option(DEFAULT_REAL, f"real captures: PoseKernel dataset root or raw capture folder(s) "
                                      f"(default {DEFAULT_REAL})")
    finetune_environments: list[str] | None = _option(
        None, "environments (or raw capture folders) to fine-tune on (default: all but the test ones)",
        nargs="+", metavar="ENV")
    test_environments: list[str] | None = _option(
        None, "held-out environments, never trained on (default: the last two when there are >= 3)",
        nargs="+", metavar="ENV")
    val_fraction: float = _option(
        0.1, "last fraction of each fine-tuning environment's frames used to validate (default 0.1)")
    grid_center: list[float] | None = _option(
        None, "real data: the voxel grid's centre in the camera frame, m (default: the config's grid_center_m, "
              "0 0.2 3.5)", nargs=3, metavar=("X", "Y", "Z"))
    init: str | None = _option(None, "checkpoint to start from (needed by --finetune without --pretrain); "
                                     "'pretrained': the model shipped in network/pretrained")
    config: str | None = _option(None, "network preset (default: the checkpoint's with --init/--resume, else "
                                       f"{DEFAULT_CONFIG!r}; 'paper' is the paper's network)", choices=sorted(CONFIGS))
    no_vision: bool = _option(False, "train the audio-only ablation (use_vision=False)")
    no_audio: bool = _option(False, "train the vision-only ablation (use_audio=False)")
    epochs: int = _option(70, "epochs of pretraining (and fine-tuning; default 70)")
    finetune_epochs: int | None = _option(None, "epochs of fine-tuning (default --epochs)")
    max_steps: int = _option(0, "stop each epoch after this many steps (0: whole epoch)")
    batch_size: int = _option(8, "frames per batch per process (default 8)")
    optimizer: str = _option("adam", "adam (default) or sgd (the paper's; collapsed to flat heatmaps in our "
                                     "small-scale run)", choices=["sgd", "adam"])
    lr: float | None = _option(None, "learning rate (default 1e-3 for Adam, 1.0 for SGD)")
    momentum: float = _option(0.9)
    weight_decay: float = _option(0.0)
    grad_clip: float = _option(10.0, "clip the gradient norm (0: off)")
    lr_schedule: str = _option("constant", choices=["constant", "cosine"])
    select: str = _option("auto", "which epoch best.pt keeps: 'val' the lowest validation MPJPE, 'last' the final "
                                  "epoch; 'auto' (default) is 'last' with --lr-schedule cosine (annealed, where the "
                                  "minimum over a small validation set picks noise), else 'val'",
                          choices=["auto", "val", "last"])
    device: str = _option("auto", "auto (GPU if available), cpu or cuda")
    amp: str = _option("auto", "bf16 autocast (auto: on GPU)", choices=["auto", "on", "off"])
    compile: bool = _option(False, "torch.compile the convolution stacks (H200, paper grid: 1.3x training "
                                   "samples/s; the first steps pay the compilation)")
    workers: int = _option(2, "DataLoader worker processes (default 2)")
    augment: bool = _option(True, "augment the synthetic training frames (pair subsets, redrawn 2D detections, "
                                  "kernel gain and noise jitter, mirroring; network.augment); --no-augment: off. "
                                  "Validation, evaluation and real captures are never augmented")
    in_memory: bool = _option(False, "read the synthetic store's frames into memory once (stores that fit in RAM)")
    shuffle: str = _option("frames", "order of the synthetic training frames: 'frames' (default) shuffles them all; "
                                     "'rooms' shuffles rooms in blocks of 8 and the frames within each block, so a "
                                     "room's chunk is decoded once per epoch (several times faster reading from a "
                                     "store: experiments.bench_loader)", choices=["frames", "rooms"])
    out: str | None = _option(None, "run folder (default runs/<config>)")
    resume: bool = _option(False, "continue the run in --out from its last.pt")
    seed: int = _option(0)
    no_progress: bool = _option(False, "no progress bars (a log file gets a plain line every 10 s otherwise)")

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The configuration a checkpoint's ``args`` (plain data) records. Keys that are not fields (written
        by another version) are left out, and fields it lacks take their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(data or {}).items() if k in names})


def selection(config: TrainConfig) -> str:
    """What ``best.pt`` keeps, ``--select`` resolved: "val" (the epoch of lowest validation MPJPE) or "last".

    ``auto`` is "last" under a cosine schedule: the run ends annealed, and the minimum over epochs of a validation
    MPJPE measured on a few rooms is the epoch whose noise was luckiest (README, "Which epoch to keep")."""
    if config.select != "auto":
        return config.select
    return "last" if config.lr_schedule == "cosine" else "val"


def default_lr(optimizer: str) -> float:
    """The learning rate when ``--lr`` is not given: Adam's 1e-3, the paper's 1.0 for SGD."""
    return 1e-3 if optimizer == "adam" else 1.0


def _value_type(annotation):
    """The type argparse converts a field's values to, from its annotation (``int | None`` -> int,
    ``list[str] | None`` -> str)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return annotation


def add_arguments(parser: argparse.ArgumentParser, config_class=TrainConfig) -> argparse.ArgumentParser:
    """One ``--flag`` per field of ``config_class``, in field order: booleans are switches (``--x-y`` sets a
    field ``x_y`` that defaults to False; ``--no-x-y`` clears one that defaults to True), the others take
    values of the field's type; help, choices, nargs and metavar come from the field's metadata."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        flag = "--" + f.name.replace("_", "-")
        kwargs = {k: v for k, v in f.metadata.items() if v is not None}
        value_type = _value_type(hints[f.name])
        if value_type is bool and f.default is True:
            parser.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false", **kwargs)
        elif value_type is bool:
            parser.add_argument(flag, action="store_true", **kwargs)
        else:
            parser.add_argument(flag, type=value_type, default=f.default, **kwargs)
    return parser


def checked(config: TrainConfig) -> TrainConfig:
    """Every number of the configuration checked before any work (UsageError naming the flag), converted;
    ``lr`` None becomes :func:`default_lr` of the optimiser, and ``init`` the file it names
    (:func:`network.checkpoints.resolve_checkpoint`: "pretrained" is the shipped model)."""
    values = {"epochs": check_whole("--epochs", config.epochs, 1, error=UsageError)}
    if config.finetune_epochs is not None:
        values["finetune_epochs"] = check_whole("--finetune-epochs", config.finetune_epochs, 1, error=UsageError)
    values["max_steps"] = check_whole("--max-steps", config.max_steps, 0, error=UsageError)   # 0: the whole epoch
    values["batch_size"] = check_whole("--batch-size", config.batch_size, 1, error=UsageError)
    values["workers"] = check_whole("--workers", config.workers, 0, error=UsageError)
    values["seed"] = check_whole("--seed", config.seed, 0, 2**32 - 1, error=UsageError)   # numpy's seed range
    lr = default_lr(config.optimizer) if config.lr is None else config.lr
    values["lr"] = check_number("--lr", lr, 0, low_open=True, error=UsageError)
    values["momentum"] = check_number("--momentum", config.momentum, 0, 1, high_open=True, error=UsageError)
    values["weight_decay"] = check_number("--weight-decay", config.weight_decay, 0, error=UsageError)
    values["grad_clip"] = check_number("--grad-clip", config.grad_clip, 0, error=UsageError)       # 0: off
    values["val_fraction"] = check_number("--val-fraction", config.val_fraction, 0, 1, high_open=True,
                                          error=UsageError)
    values["select"] = selection(config)
    if config.grid_center is not None:
        values["grid_center"] = check_finite_array("--grid-center", config.grid_center, (3,),
                                                   error=UsageError).tolist()
    if config.init is not None:
        values["init"] = str(resolve_checkpoint(config.init))     # "pretrained": the shipped model
    resolve_device(config.device)
    return dataclasses.replace(config, **values)
