"""Where a coarse-to-fine model's error goes: the whole body's distance or the body about it, along the lines of
sight or across them, coarse stage or fine, by activity.

    python -m experiments.error_sources CHECKPOINT --data STORE [--split test] [--json out.json]

For every frame and joint (camera frame, metres) with prediction p and truth t:

* MPJPE: |p - t|, meaned over joints and frames.
* global offset: |mean_j p - mean_j t|, the error of the body's mean joint (where the whole body is);
  body-relative: |(p - mean_j p) - (t - mean_j t)|, the error of the pose about it.
* along / across the line of sight: the components of p - t along t / |t| (depth, what the delays measure) and
  perpendicular to it (what the 2D keypoints pin).
* mean-depth error: mean_j |p| - mean_j |t| (signed; its percentiles), and its magnitude by activity.

Each is reported for the coarse stage, the coarse joints moved by the depth search (a model with ``depth_search``),
the fine stage and the final joints (the fine stage's, or the refined ones of a model with ``refine_joints``). The
paper's network has no stages: its joints are reported as "final".
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from core.cli import run_command
from core.outputs import claim_output_file, write_json

WRITER = "experiments.error_sources"


def error_sources(pred: np.ndarray, truth: np.ndarray) -> dict:
    """The decomposition of the module docstring, in cm, for (N, J, 3) predictions and truth (NaN truth: unknown)."""
    pred, truth = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    known = np.isfinite(truth).all(-1)
    pred = np.where(known[..., None], pred, np.nan)
    truth = np.where(known[..., None], truth, np.nan)
    diff = pred - truth
    mean_p, mean_t = np.nanmean(pred, axis=1, keepdims=True), np.nanmean(truth, axis=1, keepdims=True)
    axis = truth / np.linalg.norm(truth, axis=-1, keepdims=True)
    along = (diff * axis).sum(-1)
    across = np.linalg.norm(diff - along[..., None] * axis, axis=-1)
    depth = np.nanmean(np.linalg.norm(pred, axis=-1), axis=1) - np.nanmean(np.linalg.norm(truth, axis=-1), axis=1)
    errors = np.linalg.norm(diff, axis=-1)
    cm = lambda x: float(100.0 * np.nanmean(x))     # noqa: E731
    return {"mpjpe_cm": cm(errors), "median_cm": float(100.0 * np.nanmedian(errors)),
            "global_offset_cm": cm(np.linalg.norm(mean_p - mean_t, axis=-1)),
            "body_relative_cm": cm(np.linalg.norm((pred - mean_p) - (truth - mean_t), axis=-1)),
            "along_sight_cm": cm(np.abs(along)), "across_sight_cm": cm(across),
            "mean_depth_error_cm": cm(np.abs(depth)),
            "mean_depth_error_percentiles_cm": {str(q): float(100.0 * np.nanpercentile(depth, q))
                                                for q in (5, 25, 50, 75, 95)}}


def stage_predictions(checkpoint: str, data: str, split: str, batch_size: int = 8) -> dict:
    """(N, J, 3) joints of each stage ("coarse", "searched" where the model searches depth, "fine", "final"; only
    "final" for the paper's network), the truth,
    and the frames' store indices, from ``checkpoint`` on ``data``'s ``split``."""
    import torch

    from network.checkpoints import load_model
    from network.coarse_fine import LifterOutput
    from network.data import SynthFrames, collate
    from network.lifters import predicted_joints

    model, state = load_model(checkpoint)
    model.eval()
    config = state["config_obj"]
    loader = torch.utils.data.DataLoader(SynthFrames(data, config, split=split), batch_size=batch_size,
                                         collate_fn=collate)
    rows = {"final": [], "coarse": [], "searched": [], "fine": [], "truth": [], "index": []}
    with torch.no_grad():
        for batch in loader:
            out = model(batch)
            rows["final"].append(predicted_joints(config, out, batch).numpy())
            if isinstance(out, LifterOutput):
                rows["coarse"].append(out.coarse_joints.float().numpy())
                if out.searched_joints is not None:
                    rows["searched"].append(out.searched_joints.float().numpy())
                rows["fine"].append((out.joints if out.fine_joints is None else out.fine_joints).float().numpy())
            rows["truth"].append(batch["joints3d"].float().numpy())
            rows["index"].append(batch["index"].numpy())
    return {k: np.concatenate(v) for k, v in rows.items() if v}


def report(checkpoint: str, data: str, split: str = "test") -> dict:
    """:func:`error_sources` of every stage, and the final joints' by activity."""
    import zarr

    pred = stage_predictions(checkpoint, data, split)
    out = {"checkpoint": checkpoint, "data": data, "split": split, "frames": int(len(pred["truth"])),
           "stages": {k: error_sources(pred[k], pred["truth"]) for k in ("coarse", "searched", "fine", "final")
                      if k in pred}}
    group = zarr.open_group(data, mode="r")
    if "activity" in group:
        activity = np.asarray(group["activity"][:])[pred["index"]]
        names = list(group.attrs.get("activity_labels", []))
        out["final_by_activity"] = {
            (names[a] if 0 <= a < len(names) else str(a)): dict(frames=int((activity == a).sum()), **{
                k: v for k, v in error_sources(pred["final"][activity == a], pred["truth"][activity == a]).items()
                if k in ("mpjpe_cm", "global_offset_cm", "body_relative_cm", "mean_depth_error_cm")})
            for a in sorted(set(activity.tolist()))}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.error_sources", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a trained model (best.pt)")
    parser.add_argument("--data", required=True, help="synthetic store")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)

    def work() -> int:
        if args.json:
            claim_output_file(args.json, "--json", WRITER, (".json",))
        result = report(args.checkpoint, args.data, args.split)
        print(json.dumps(result, indent=2))
        if args.json:
            write_json(args.json, result, WRITER)
        return 0

    return run_command(work)


if __name__ == "__main__":
    sys.exit(main())
