"""What each realism effect costs a trained network: paired test stores, one effect at a time.

    python -m experiments.realism_ablation \\
        --checkpoint realistic=experiments/results/small/runs/ours/pretrain/best.pt \\
        --checkpoint ideal=experiments/results/small_ideal/runs/ours/pretrain/best.pt \\
        --out experiments/results/realism/effects

Steps:

1. **Stores.** One test-only store per variant under ``OUT/data`` (``--rooms`` rooms x ``--frames-per-room``
   frames, seed ``--seed``), all of the same rooms, people and detections (each effect draws from a stream of its
   own): ``ideal``; ``only <effect>`` for each effect of :data:`simulator.realism.REALISM_EFFECTS` (the realistic
   preset ``--without-effects`` every other one); ``realistic`` (all of them); ``realistic without noise``. A store
   already there is resumed by the generator (same arguments), so a second run only evaluates.
2. **Errors.** Every checkpoint predicts every frame of every store; a frame's error is its mean joint error (cm).
3. **Table.** Per variant and checkpoint: mean MPJPE with its 95 % room-bootstrap interval, and the cost of the
   variant: its difference from the ideal store on the same frames (a paired bootstrap: the same rooms resampled for
   both). An effect costs something only when the interval of its difference excludes 0.

Writes ``OUT/effects.json``, ``OUT/effects.md`` and ``OUT/effects.png`` (the costs with their intervals). Exit 2
for a bad argument or checkpoint, named, before any store is generated.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from core.checks import check_whole
from core.cli import run_command
from core.errors import InputError
from core.outputs import atomic_write, claim_output_dir, png_metadata, write_json
from simulator.realism import REALISM_EFFECTS

__all__ = ["VARIANTS", "main", "variant_configs"]

WRITER = "experiments.realism_ablation"
#: (name, realism preset, effects left out) of each store, in the table's order.
VARIANTS = (("ideal", "ideal", ()),
            *((f"only {name}", "realistic", tuple(e for e in REALISM_EFFECTS if e != name)) for name in REALISM_EFFECTS),
            ("realistic without noise", "realistic", ("noise",)),
            ("realistic", "realistic", ()))


def variant_configs(rooms: int, frames_per_room: int, seed: int, max_order: int, kernel_samples: int,
                    minor_fraction: float) -> dict:
    """{variant name: GenerationConfig} of test-only stores (split 0 / 0 / 1) that differ only in their sound."""
    from simulator.generation_config import GenerationConfig

    common = dict(rooms=rooms, frames_per_room=frames_per_room, seed=seed, max_order=max_order,
                  kernel_samples=kernel_samples, minor_fraction=minor_fraction, split=(0.0, 0.0, 1.0))
    return {name: GenerationConfig(**common, realism=realism, without_effects=without)
            for name, realism, without in VARIANTS}


def _store_path(out: Path, name: str) -> Path:
    return out / "data" / (name.replace(" ", "_") + ".zarr")


def _frame_errors(model, store: Path, config, batch_size: int) -> dict:
    """Per-frame mean joint error (cm) and room id of every frame of ``store``."""
    import torch

    from network.data import SynthFrames, collate
    from network.evaluate import joint_errors_cm
    from network.inference import predict

    frames = SynthFrames(str(store), config, split="test")
    loader = torch.utils.data.DataLoader(frames, batch_size=batch_size, shuffle=False, collate_fn=collate)
    result = predict(model, loader, torch.device("cpu"), amp=False)
    return {"errors_cm": joint_errors_cm(result["pred"], result["truth"]).mean(axis=1), "rooms": result["room_id"]}


def cost_rows(errors: dict, resamples: int = 2000) -> list[dict]:
    """One row per (checkpoint, variant): mean MPJPE and its paired difference from the ideal store, with 95 %
    room-bootstrap intervals. ``errors``: {checkpoint: {variant: {'errors_cm', 'rooms'}}}, 'ideal' among the
    variants, every variant on the same frames in the same order."""
    from network.bootstrap import paired_room_bootstrap, room_bootstrap

    rows = []
    for checkpoint, by_variant in errors.items():
        ideal = by_variant["ideal"]
        for variant, values in by_variant.items():
            if not np.array_equal(values["rooms"], ideal["rooms"]):
                raise InputError(f"variant {variant!r}: its frames are not the ideal store's; regenerate OUT/data")
            mpjpe = room_bootstrap(values["errors_cm"], values["rooms"], resamples=resamples)
            cost = paired_room_bootstrap(values["errors_cm"], ideal["errors_cm"], values["rooms"], resamples=resamples)
            rows.append({"checkpoint": checkpoint, "variant": variant, "frames": len(values["errors_cm"]),
                         "rooms": int(len(np.unique(values["rooms"]))), "mpjpe_cm": mpjpe.to_dict(),
                         "cost_cm": cost.to_dict(), "costs": bool(cost.excludes(0.0) and cost.estimate > 0)})
    return rows


def markdown(rows: list[dict], header: str) -> str:
    from network.bootstrap import Interval

    checkpoints = list(dict.fromkeys(r["checkpoint"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    cell = {(r["checkpoint"], r["variant"]): r for r in rows}
    head = "| store | " + " | ".join(f"{c}: MPJPE, cm | {c}: cost vs ideal, cm" for c in checkpoints) + " |"
    lines = [header, "", head, "|" + " --- |" * (1 + 2 * len(checkpoints))]
    for v in variants:
        cells = []
        for c in checkpoints:
            r = cell[(c, v)]
            mpjpe, cost = Interval(**r["mpjpe_cm"]), Interval(**r["cost_cm"])
            cells += [mpjpe.format(1), "–" if v == "ideal" else cost.format(1) + (" **costs**" if r["costs"] else "")]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checkpoints = list(dict.fromkeys(r["checkpoint"] for r in rows))
    variants = [v for v in dict.fromkeys(r["variant"] for r in rows) if v != "ideal"]
    cell = {(r["checkpoint"], r["variant"]): r["cost_cm"] for r in rows}
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(variants) + 1.4))
    height = 0.8 / len(checkpoints)
    for k, c in enumerate(checkpoints):
        y = np.arange(len(variants)) + (k - (len(checkpoints) - 1) / 2) * height
        est = np.array([cell[(c, v)]["estimate"] for v in variants])
        low = np.array([cell[(c, v)]["low"] for v in variants])
        high = np.array([cell[(c, v)]["high"] for v in variants])
        ax.barh(y, est, height=height, label=f"model trained on {c} data")
        ax.errorbar(est, y, xerr=[est - low, high - est], fmt="none", ecolor="k", capsize=2, lw=0.8)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_yticks(np.arange(len(variants)), variants)
    ax.invert_yaxis()
    ax.set_xlabel("cost: MPJPE on the store minus on the ideal store, cm\n(the same frames; 95 % room-bootstrap interval)")
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110, metadata=png_metadata(WRITER)))
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.realism_ablation", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH",
                   help="a model to evaluate and the name the table gives it (repeat)")
    p.add_argument("--out", required=True, help="folder for effects.json, effects.md, effects.png and data/")
    p.add_argument("--rooms", type=int, default=25, help="test rooms per store (>= 25 for intervals)")
    p.add_argument("--frames-per-room", type=int, default=4)
    p.add_argument("--seed", type=int, default=1000, help="the stores' seed (other rooms than the training stores')")
    p.add_argument("--max-order", type=int, default=6)
    p.add_argument("--kernel-samples", type=int, default=4800)
    p.add_argument("--minor-fraction", type=float, default=0.4)
    p.add_argument("--workers", type=int, default=None, help="generation's Ray workers (default: all CPUs)")
    p.add_argument("--batch-size", type=int, default=4)
    return p


def _checkpoints(items: list[str]) -> dict:
    """{name: (model, state)}, every checkpoint loaded (weights only) before any work."""
    from network.checkpoints import load_model, resolve_checkpoint

    models = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--checkpoint {item!r}: give NAME=PATH, e.g. realistic=runs/ours/pretrain/best.pt")
        if name in models:
            raise InputError(f"--checkpoint {item!r}: the name {name!r} is given twice; give each model its own")
        models[name] = load_model(str(resolve_checkpoint(path)), device="cpu")
    return models


def run(args) -> int:
    from simulator.generation_run import generate

    check_whole("--batch-size", args.batch_size, 1)
    configs = variant_configs(args.rooms, args.frames_per_room, args.seed, args.max_order, args.kernel_samples,
                              args.minor_fraction)
    models = _checkpoints(args.checkpoint)
    out = claim_output_dir(args.out, "--out", WRITER)
    seconds = {}
    for name, config in configs.items():
        started = time.time()
        generate(config, str(_store_path(out, name)), workers=args.workers, progress=False)
        seconds[name] = round(time.time() - started, 1)
        print(f"{WRITER}: store {name!r} ready ({seconds[name]} s)", file=sys.stderr)
    errors = {name: {variant: _frame_errors(model, _store_path(out, variant), state["config_obj"], args.batch_size)
                     for variant in configs}
              for name, (model, state) in models.items()}
    rows = cost_rows(errors)
    header = (f"# What each realism effect costs\n\n{args.rooms} test rooms x {args.frames_per_room} frames (seed "
              f"{args.seed}), the same rooms, people and detections in every store; `only X`: the realistic preset "
              f"without every other effect. Cells: mean MPJPE and its difference from the ideal store on the same "
              f"frames, each with a 95 % room-bootstrap interval; **costs**: the difference's interval lies above 0. "
              f"Command: `python -m {WRITER} " + " ".join(args.argv) + "`")
    write_json(out / "effects.json", {"rows": rows, "generation_seconds": seconds,
                                      "checkpoints": {item.partition("=")[0]: item.partition("=")[2]
                                                      for item in args.checkpoint},
                                      "stores": {name: config.identity() for name, config in configs.items()}}, WRITER)
    table = markdown(rows, header)
    atomic_write(out / "effects.md", lambda handle: handle.write(table.encode()))
    plot(rows, out / "effects.png")
    print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return run_command(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
