"""Which frames a training run reads: the synthetic store's train / val splits, the real captures'
environments (fine-tuning vs held-out test) and the validation tail of each environment.

Public names: ``__all__``.
"""
from __future__ import annotations

import sys

from network.commands import UsageError
from network.augment import Augmentation
from network.config import NetworkConfig
from network.data import REAL_DATA_HELP, SynthFrames, list_environments

__all__ = ["choose_environments", "split_tail", "synthetic_sets"]


def choose_environments(real: str, finetune, test) -> tuple[list[str], list[str]]:
    """The (fine-tuning, test) environments of ``--real``: as given, or by default the last two of >= 3 held out."""
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


def split_tail(frames, fraction: float) -> tuple[list[int], list[int]]:
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


def synthetic_sets(args, config: NetworkConfig):
    """The store's (train, val) frames; val is the train split, with a warning, when the store has none.

    The training frames are augmented (:class:`network.augment.Augmentation` defaults, drawn per (``--seed``,
    epoch, frame); ``SynthFrames.set_epoch`` picks the epoch) unless ``args.augment`` is False; validation
    frames never are. ``args.in_memory`` reads both sets into memory once.
    """
    augmentation = Augmentation() if getattr(args, "augment", True) else None
    in_memory, seed = bool(getattr(args, "in_memory", False)), int(getattr(args, "seed", 0))
    train_set = SynthFrames(args.synth, config, split="train", augmentation=augmentation, in_memory=in_memory,
                            seed=seed)
    if len(train_set) == 0:
        raise UsageError(f"--synth {args.synth}: no finished training frames (split 'train'); generate more rooms")
    val_set = SynthFrames(args.synth, config, split="val", in_memory=in_memory)
    if len(val_set) == 0:
        print(f"warning: {args.synth} has no 'val' frames; validating on the training frames", file=sys.stderr)
        val_set = train_set if augmentation is None else SynthFrames(args.synth, config, split="train",
                                                                      in_memory=in_memory)
    return train_set, val_set
