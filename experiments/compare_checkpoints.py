"""Which of two trained models is more accurate on the same frames, with a room-bootstrap interval.

    python -m experiments.compare_checkpoints --data data/synth.zarr --split test A.pt B.pt [--json out.json]

Both checkpoints predict the same frames (each on its own grid and encodings); the per-frame MPJPE of
B over that of A is compared by :func:`network.bootstrap.paired_room_bootstrap` (rooms resampled, the
same rooms for both). "B is better" holds only when the interval of mean(B) / mean(A) lies below 1,
"A is better" when it lies above 1; otherwise the data cannot tell them apart. This is the test a new
architecture or configuration must pass before it becomes a default.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from core.checks import check_whole
from core.cli import run_command
from core.errors import InputError
from core.outputs import claim_output_file, write_json
from network.bootstrap import paired_room_bootstrap, room_bootstrap
from network.checkpoints import load_model
from network.data import SynthFrames, collate
from network.inference import predict

WRITER = "experiments.compare_checkpoints"


def frame_mpjpe_cm(checkpoint: str, data: str, split: str, batch_size: int) -> dict:
    """Per-frame MPJPE (cm), room ids and frame indices of ``checkpoint`` on ``data``'s ``split``."""
    import torch

    model, state = load_model(checkpoint)
    frames = SynthFrames(data, state["config_obj"], split=split)
    loader = torch.utils.data.DataLoader(frames, batch_size=batch_size, collate_fn=collate)
    result = predict(model, loader, torch.device("cpu"), amp=False)
    error = np.linalg.norm(result["pred"] - result["truth"], axis=-1) * 100.0
    return {"mpjpe_cm": np.nanmean(error, axis=1), "room_id": result["room_id"], "index": result["index"],
            "config": state["config_obj"].name}


def compare(a: dict, b: dict, resamples: int = 2000) -> dict:
    """The paired comparison of two :func:`frame_mpjpe_cm` results on the same frames."""
    if not np.array_equal(a["index"], b["index"]):
        raise InputError("the two checkpoints read different frames of the store (their configurations select "
                         "different frames); compare checkpoints trained for the same data")
    ratio = paired_room_bootstrap(b["mpjpe_cm"], a["mpjpe_cm"], a["room_id"], compare=lambda x, y: x / y,
                                  resamples=resamples)
    verdict = ("B is better" if ratio.high < 1 else "A is better" if ratio.low > 1 else
               "cannot tell them apart" if ratio.has_bounds else "too few rooms to tell")
    return {"a": {"config": a["config"], "mpjpe_cm": room_bootstrap(a["mpjpe_cm"], a["room_id"]).to_dict()},
            "b": {"config": b["config"], "mpjpe_cm": room_bootstrap(b["mpjpe_cm"], b["room_id"]).to_dict()},
            "ratio_b_over_a": ratio.to_dict(), "verdict": verdict, "frames": int(len(a["index"])),
            "rooms": int(len(np.unique(a["room_id"])))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.compare_checkpoints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="checkpoint A (e.g. the current default)")
    parser.add_argument("b", help="checkpoint B (e.g. the candidate)")
    parser.add_argument("--data", required=True, help="synthetic store")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--json", default=None, help="also write the comparison here")
    args = parser.parse_args(argv)

    def work() -> int:
        check_whole("--batch-size", args.batch_size, minimum=1)
        if args.json:
            claim_output_file(args.json, "--json", WRITER, (".json",))
        a = frame_mpjpe_cm(args.a, args.data, args.split, args.batch_size)
        b = frame_mpjpe_cm(args.b, args.data, args.split, args.batch_size)
        result = compare(a, b)
        print(json.dumps(result, indent=2))
        if args.json:
            write_json(args.json, {"a_checkpoint": args.a, "b_checkpoint": args.b, "data": args.data, **result}, WRITER)
        return 0

    return run_command(work)


if __name__ == "__main__":
    sys.exit(main())
