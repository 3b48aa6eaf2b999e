"""Metric 3D poses from a capture: a trained PoseKernelLifter (by default the shipped one) on every frame.

    python -m network.predict --capture my_rig/ --out poses/
    python -m network.predict --capture PoseKernel/environment3 --out poses/ --checkpoint runs/x/finetune/best.pt

``--capture`` is a raw capture folder (``calibration.json``, recordings and keypoints:
``docs/raw_capture_format.md``), a folder of such captures, a PoseKernel dataset root or one of its
``environmentN`` folders. Ground truth is optional: a raw capture's ``joints3d.npy``; a PoseKernel frame's
``gnd.npy``, which a frame of your own may replace by ``keypoints.json``, the 2D detections of its image
(:mod:`pipeline.posekernel_layout`: the layout holds no images, so without either there is nothing to lift).

Writes to ``--out`` (a new or empty folder, or one this command made; claimed before any work):

* ``frame_000000.json``, ... -- the 15 joints by name, camera frame (x right, y down, z forward), metres,
  each with its confidence and spread (below) and the 2D keypoint it was lifted from; with ground truth
  also the true joint and its error in cm;
* ``predictions.json`` -- every frame, the checkpoint, capture and device, and the frames per second;
* ``contact_sheet.png`` -- up to 8 frames: the 3D skeleton (truth in black when known), the pair kernels
  and the 2D keypoints in image coordinates;
* ``view_000000.html`` and ``view_000000.glb`` (``--views N``: the first N frames, default 1) -- the rig, the
  camera and the predicted (and true) skeletons to turn around: a self-contained page and a GLB for 3D tools.

Confidence of a joint: the share of the model's final probability volume for it that lies within
:data:`CONFIDENCE_RADIUS_M` (10 cm) of the joint it returned, in [0, 1] (:func:`joint_confidence`). For the
coarse-to-fine model that volume is the fine stage's softmax along the joint's ray, for the paper's network
the last heatmap (negative values clipped). It says how peaked the model's own belief is, not how likely
the joint is within 10 cm of the truth: it is not calibrated, and the fine stage cannot see a coarse
estimate that put its tube in the wrong place. Measured with the shipped model on 48 frames of unseen
synthetic rooms (720 joints), its rank correlation with the joint's error was -0.05 (the coarse volume's
mass and either volume's spread did no better): read it as the model's belief, not as a forecast of its
error. ``spread_cm`` is that volume's standard deviation about the joint.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bodies.joints import JOINT_NAMES, SKELETON_EDGE_INDICES
from core.checks import check_finite_array, check_whole
from core.cli import run_command
from core.errors import InputError
from core.outputs import atomic_write, claim_output_dir, png_metadata, write_json
from core.progress import progress
from network.checkpoints import PRETRAINED_NAME, load_model, resolve_checkpoint, trained_pair_counts
from network.coarse_fine import LifterOutput
from network.data import DataError, RealFrames, batch_to_device, collate, model_inputs, pair_counts, real_dataset
from network.inference import autocast, resolve_device
from network.lifters import predicted_joints
from pipeline.grid import voxel_centers_camera

__all__ = ["CONFIDENCE_RADIUS_M", "Prediction", "PredictionError", "build_parser", "joint_confidence", "main",
           "open_capture", "predict_capture", "predict_frames"]

WRITER = "network.predict"
CONFIDENCE_RADIUS_M = 0.10
SHEET_FRAMES = 8
CAPTURE_HELP = ("give a raw capture folder (calibration.json, docs/raw_capture_format.md), a folder of them, "
                "a PoseKernel dataset root or one of its environmentN folders")


class PredictionError(InputError):
    """Bad arguments or capture for a prediction (exit code 2)."""


@dataclass
class Prediction:
    """What :func:`predict_capture` returns (N frames, J = 15 joints, camera frame, metres).

    Attributes:
        joints_m: (N, J, 3) predicted joints.
        confidence: (N, J) in [0, 1]: share of the joint's final probability volume within 10 cm of it.
        spread_cm: (N, J) standard deviation of that volume about the joint, cm.
        joint_names: the J names (``bodies.JOINT_NAMES``).
        truth_m: (N, J, 3) ground truth, or None when the capture has none.
        frames_per_s: frames / (seconds building frames + seconds in the network).
        frame_index: (N,) each frame's index in its capture.
        environment: (N,) each frame's environment or capture folder name ("" for given frames).
        keypoints2d: (N, J, 3) the 2D input (u, v, confidence), pixels.
        seconds_reading, seconds_network: where the time went (frames built from files / forward passes).
    """

    joints_m: np.ndarray
    confidence: np.ndarray
    spread_cm: np.ndarray
    joint_names: tuple[str, ...]
    truth_m: np.ndarray | None
    frames_per_s: float
    frame_index: np.ndarray
    environment: list[str]
    keypoints2d: np.ndarray
    seconds_reading: float
    seconds_network: float

    def errors_cm(self) -> np.ndarray | None:
        """(N, J) distance of each joint to its truth, cm (NaN where the truth is not finite); None without truth."""
        if self.truth_m is None:
            return None
        return np.linalg.norm(self.joints_m - self.truth_m, axis=-1) * 100.0


# ---------------------------------------------------------------------------------------------------------
# Step 1: the capture as network frames
def open_capture(path, config, grid_center_m: Sequence[float] | None = None) -> RealFrames:
    """Every frame of the capture at ``path`` (see the module doc), checked (PredictionError naming
    ``--capture`` otherwise). A PoseKernel ``environmentN`` folder given directly is read from its parent."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise PredictionError(f"--capture {path}: no folder there; {CAPTURE_HELP}")
    root, environments = path, None
    if (path / "audio_sensor_loc.npy").is_file():        # one environment of the PoseKernel layout
        root, environments = path.parent, [path.name]
    try:
        return real_dataset(root, config, environments=environments, grid_center_m=grid_center_m)
    except DataError as err:
        raise type(err)(f"--capture {path}: {err}") from None


# ---------------------------------------------------------------------------------------------------------
# Step 2: the network on every frame
def joint_confidence(model, output, batch: dict, joints_m: torch.Tensor,
                     fine_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, J) confidence in [0, 1] and (B, J) spread (cm) of each joint (see the module doc).

    Args:
        model: the lifter; output: its output on ``batch``; joints_m: (B, J, 3) the decoded joints.
        fine_logits: (B * J, 1, *S) the coarse-to-fine model's fine-stage logits (read by a forward hook
            on ``model.fine``); unused for the paper's network.
    """
    config = model.config
    b, j = joints_m.shape[:2]
    if isinstance(output, LifterOutput):
        points = model.fine_points(batch, output.fine_centers).reshape(b, j, -1, 3).float()
        weights = torch.softmax(fine_logits.reshape(b, j, -1).float(), dim=-1)
    else:
        heatmap = output[-1].float().clamp_min(0).reshape(b, j, -1)
        # A heatmap with no positive value has no belief to measure: confidence 0, spread NaN (JSON null).
        total = heatmap.sum(-1, keepdim=True)
        weights = torch.where(total > 0, heatmap / total.clamp_min(1e-30), torch.nan)
        points = voxel_centers_camera(batch["grid_to_camera"].float(), config.grid_shape,
                                      config.voxel_size_m).reshape(b, 1, -1, 3)
    distance_m = torch.linalg.vector_norm(points - joints_m[:, :, None].float(), dim=-1)
    confidence = torch.nan_to_num((weights * (distance_m <= CONFIDENCE_RADIUS_M)).sum(-1)).clamp(0.0, 1.0)
    spread_cm = (weights * distance_m**2).sum(-1).sqrt() * 100.0
    return confidence, spread_cm


def _synchronize(device: torch.device) -> None:
    """Wait for the GPU, so that the time of a step is its own (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def predict_frames(model, frames, device, batch_size: int = 4, show_progress: bool = False) -> Prediction:
    """Run ``model`` on ``frames`` (a dataset or list of :mod:`network.data` frame dicts), in order."""
    fine_logits = []
    hook = model.fine.register_forward_hook(lambda m, i, out: fine_logits.append(out)) \
        if hasattr(model, "fine") else None
    out = {k: [] for k in ("joints", "confidence", "spread", "truth", "index", "keypoints2d")}
    seconds_reading = seconds_network = 0.0
    starts = range(0, len(frames), batch_size)
    try:
        for start in progress(starts, desc="predict", unit="batch", enabled=show_progress):
            tic = time.perf_counter()
            batch = batch_to_device(collate([frames[i] for i in range(start, min(start + batch_size, len(frames)))]),
                                    device)
            _synchronize(device)
            toc = time.perf_counter()
            fine_logits.clear()
            with autocast(device, amp=True):
                output = model(model_inputs(batch))
            joints = predicted_joints(model.config, output, batch)
            confidence, spread = joint_confidence(model, output, batch, joints, fine_logits[-1] if fine_logits else None)
            for key, value in (("joints", joints), ("confidence", confidence), ("spread", spread),
                               ("truth", batch["joints3d"]), ("index", batch["index"]),
                               ("keypoints2d", batch["keypoints2d"])):
                out[key].append(value.cpu().double().numpy() if value.is_floating_point() else value.cpu().numpy())
            _synchronize(device)
            seconds_reading += toc - tic
            seconds_network += time.perf_counter() - toc
    finally:
        if hook is not None:
            hook.remove()
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    truth = arrays["truth"] if np.isfinite(arrays["truth"]).any() else None
    environment_of = getattr(frames, "environment_of", lambda i: "")
    return Prediction(joints_m=arrays["joints"], confidence=arrays["confidence"], spread_cm=arrays["spread"],
                      joint_names=tuple(JOINT_NAMES), truth_m=truth,
                      frames_per_s=len(frames) / max(seconds_reading + seconds_network, 1e-9),
                      frame_index=arrays["index"].astype(int), environment=[environment_of(i) for i in range(len(frames))],
                      keypoints2d=arrays["keypoints2d"], seconds_reading=seconds_reading,
                      seconds_network=seconds_network)


def predict_capture(capture, checkpoint: str = PRETRAINED_NAME, device: str = "auto", batch_size: int = 4,
                    grid_center_m: Sequence[float] | None = None, max_frames: int | None = None) -> Prediction:
    """Metric 3D joints of every frame of ``capture``: a capture folder (see the module doc) or a list of
    :mod:`network.data` frame dicts built for the checkpoint's configuration.

    ``checkpoint``: "pretrained" (the shipped model) or a checkpoint path; ``grid_center_m``: the voxel
    grid's centre in the camera frame (default the checkpoint's configuration's; given frames carry their
    grid already); ``max_frames``: the first N. ``frames_per_s`` includes the first batch's warm-up.
    """
    batch_size, max_frames, grid_center_m = _checked(batch_size, max_frames, grid_center_m)
    model, _, frames, dev = _prepare(capture, checkpoint, device, grid_center_m)
    return predict_frames(model, _first(frames, max_frames), dev, batch_size)


def _checked(batch_size, max_frames, grid_center_m) -> tuple:
    """The numbers of a prediction, checked (PredictionError naming the flag) and converted."""
    batch_size = check_whole("--batch-size", batch_size, 1, error=PredictionError)
    if max_frames is not None:
        max_frames = check_whole("--max-frames", max_frames, 1, error=PredictionError)
    if grid_center_m is not None:
        grid_center_m = check_finite_array("--grid-center", grid_center_m, (3,), error=PredictionError).tolist()
    return batch_size, max_frames, grid_center_m


def _prepare(capture, checkpoint, device, grid_center_m):
    """(model, checkpoint state, frames, device): everything checked and loaded, nothing predicted yet."""
    dev = resolve_device(device)
    model, state = load_model(resolve_checkpoint(checkpoint), device=dev)
    if isinstance(capture, (str, Path)):
        frames = open_capture(capture, state["config_obj"], grid_center_m)
    else:
        frames = list(capture)
        if not frames:
            raise PredictionError("capture: an empty list of frames; give at least one frame")
    return model, state, frames, dev


def _first(frames, count: int | None):
    """The first ``count`` frames (all for None)."""
    if count is None:
        return frames
    count = min(count, len(frames))
    return frames.subset(range(count)) if isinstance(frames, RealFrames) else frames[:count]


# ---------------------------------------------------------------------------------------------------------
# Step 3: the files
def _rounded(values, digits: int):
    """JSON numbers without float32 noise (0.01 mm for positions in metres, 0.001 cm for errors, ...);
    a NaN becomes None (JSON null)."""
    array = np.round(np.asarray(values, dtype=float), digits)
    return None if array.ndim == 0 and not np.isfinite(array) else array.tolist()


def _frame_record(prediction: Prediction, i: int) -> dict:
    """One frame's JSON: every joint by name with its position, confidence, spread, 2D keypoint (and truth)."""
    errors = prediction.errors_cm()
    joints = {}
    for j, name in enumerate(prediction.joint_names):
        joint = {"position_m": _rounded(prediction.joints_m[i, j], 5),
                 "confidence": _rounded(prediction.confidence[i, j], 4),
                 "spread_cm": _rounded(prediction.spread_cm[i, j], 2),
                 "keypoint_uvc": _rounded(prediction.keypoints2d[i, j], 3)}
        if errors is not None and np.isfinite(errors[i, j]):
            joint["truth_m"] = _rounded(prediction.truth_m[i, j], 5)
            joint["error_cm"] = _rounded(errors[i, j], 3)
        joints[name] = joint
    record = {"frame": i, "frame_index": int(prediction.frame_index[i]), "environment": prediction.environment[i],
              "frame_of_reference": "camera (x right, y down, z forward), metres", "joints": joints}
    if errors is not None and np.isfinite(errors[i]).any():
        record["mpjpe_cm"] = _rounded(np.nanmean(errors[i]), 3)
    return record


def _write_frames(out_dir: Path, prediction: Prediction) -> list[str]:
    names = []
    for i in range(len(prediction.joints_m)):
        names.append(f"frame_{i:06d}.json")
        write_json(out_dir / names[-1], _frame_record(prediction, i), WRITER)
    return names


def _write_summary(out_dir: Path, prediction: Prediction, capture_info: dict, files: list[str]) -> dict:
    errors = prediction.errors_cm()
    summary = {
        **capture_info, "frames": len(prediction.joints_m), "joint_names": list(prediction.joint_names),
        "frames_per_s": prediction.frames_per_s, "seconds_reading": prediction.seconds_reading,
        "seconds_network": prediction.seconds_network,
        "confidence": f"share of the joint's final probability volume within {CONFIDENCE_RADIUS_M * 100:g} cm of "
                      f"the joint (not calibrated; network/predict.py says how it is made and how far to trust it)",
        "mpjpe_cm": None if errors is None or not np.isfinite(errors).any() else float(np.nanmean(errors)),
        "predictions": [{"file": name, **_frame_record(prediction, i)} for i, name in enumerate(files)],
    }
    write_json(out_dir / "predictions.json", summary, WRITER)
    return summary


def _write_contact_sheet(path: Path, prediction: Prediction, frames, image_size_px, sample_rate_hz: float) -> None:
    """Up to :data:`SHEET_FRAMES` frames, one row each: 3D skeleton, pair kernels, 2D keypoints."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(prediction.joints_m)
    chosen = np.unique(np.linspace(0, n - 1, min(SHEET_FRAMES, n)).round().astype(int))
    fig = plt.figure(figsize=(12, 3.2 * len(chosen)))
    width, height = image_size_px
    for row, i in enumerate(chosen):
        ax = fig.add_subplot(len(chosen), 3, 3 * row + 1, projection="3d")
        skeletons = [("predicted", prediction.joints_m[i], "tab:red")]
        if prediction.truth_m is not None and np.isfinite(prediction.truth_m[i]).all():
            skeletons.append(("truth", prediction.truth_m[i], "black"))
        for label, joints, colour in skeletons:
            x, depth, up = joints[:, 0], joints[:, 2], -joints[:, 1]        # camera frame -> x right, depth, up
            for e, (a, b) in enumerate(SKELETON_EDGE_INDICES):
                ax.plot([x[a], x[b]], [depth[a], depth[b]], [up[a], up[b]], color=colour, label=label if e == 0 else None)
        shown = np.concatenate([joints for _, joints, _ in skeletons])
        ax.set_box_aspect(np.maximum(np.ptp(shown[:, [0, 2, 1]], axis=0), 0.05))     # metres at one scale
        ax.set_xlabel("x (m)")
        ax.set_ylabel("depth z (m)")
        ax.set_zlabel("up -y (m)")
        ax.set_title(f"frame {i} ({prediction.environment[i] or 'given'} #{prediction.frame_index[i]})", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")

        ax = fig.add_subplot(len(chosen), 3, 3 * row + 2)
        frame = frames[int(i)]
        kernels = np.abs(frame["kernels"].numpy())
        # Block maxima: an echo is a few samples wide and would vanish when thousands of samples share a pixel.
        block = max(1, kernels.shape[1] // 200)      # about a column per pixel of the panel
        kernels = kernels[:, :kernels.shape[1] // block * block].reshape(len(kernels), -1, block).max(-1)
        kernels = kernels / np.maximum(kernels.max(axis=1, keepdims=True), 1e-12)
        range_m = kernels.shape[1] * block / sample_rate_hz * float(frame["speed_of_sound"]) / 2
        ax.imshow(kernels, aspect="auto", cmap="magma", interpolation="nearest", extent=(0, range_m, len(kernels), 0))
        ax.set_xlabel("half the round-trip path (m)")
        ax.set_yticks(np.arange(len(kernels)) + 0.5, [str(k) for k in range(len(kernels))], fontsize=6)
        ax.set_ylabel("pair")
        ax.set_title("|pair kernels| (each row scaled to its peak)", fontsize=9)

        ax = fig.add_subplot(len(chosen), 3, 3 * row + 3)
        u, v, c = prediction.keypoints2d[i].T
        for a, b in SKELETON_EDGE_INDICES:
            if c[a] > 0 and c[b] > 0:
                ax.plot([u[a], u[b]], [v[a], v[b]], color="tab:blue", lw=1)
        ax.scatter(u[c > 0], v[c > 0], c=c[c > 0], cmap="viridis", vmin=0, vmax=1, s=12)
        ax.set_xlim(0, max(width, float(u.max())))      # the config's image, or wider if a keypoint lies outside
        ax.set_ylim(max(height, float(v.max())), 0)
        ax.set_aspect("equal")
        ax.set_xlabel("u (px)")
        ax.set_ylabel("v (px)")
        ax.set_title("2D keypoints (colour: confidence)", fontsize=9)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, dpi=80, format="png", metadata=png_metadata(WRITER))
    plt.close(fig)
    atomic_write(path, lambda handle: handle.write(image.getvalue()))


def _write_views(out_dir: Path, prediction: Prediction, frames, image_size_px, count: int) -> list[str]:
    """``view_000000.html`` and ``.glb``, ... for the first ``count`` frames: the rig, the camera's frustum and
    the predicted (and true) skeletons in the camera frame, to turn around (:mod:`simulator.views`)."""
    from simulator.views import SceneView, write_scene_glb, write_scene_html

    written = []
    for i in range(min(count, len(prediction.joints_m))):
        frame = frames[i]
        skeletons = {"predicted": prediction.joints_m[i]}
        if prediction.truth_m is not None and np.isfinite(prediction.truth_m[i]).all():
            skeletons["true"] = prediction.truth_m[i]
        where = prediction.environment[i] or "frames"
        view = SceneView(frame_name="camera", speakers_m=np.asarray(frame["speaker_pos"], dtype=float),
                         microphones_m=np.asarray(frame["mic_pos"], dtype=float), camera_to_frame=np.eye(4),
                         intrinsics=np.asarray(frame["intrinsics"], dtype=float), image_size_px=image_size_px,
                         skeletons=skeletons, title=f"{where}, frame {int(prediction.frame_index[i])}")
        for suffix, write in ((".html", write_scene_html), (".glb", write_scene_glb)):
            name = f"view_{i:06d}{suffix}"
            write(out_dir / name, view, WRITER, flag="--out")
            written.append(name)
    return written


# ---------------------------------------------------------------------------------------------------------
# The command
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m network.predict", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--capture", required=True, help="raw capture folder(s), PoseKernel root or environmentN folder")
    p.add_argument("--out", required=True, help="folder for frame_*.json, predictions.json, contact_sheet.png")
    p.add_argument("--checkpoint", default=PRETRAINED_NAME,
                   help="'pretrained' (default: the model shipped in network/pretrained) or a checkpoint path")
    p.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--grid-center", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="voxel grid centre, camera frame, m (default: the checkpoint configuration's)")
    p.add_argument("--max-frames", type=int, default=None, help="predict only the first N frames")
    p.add_argument("--views", type=int, default=1, metavar="N",
                   help="write an interactive HTML page and a GLB of the first N frames (default 1; 0: none)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    batch_size, max_frames, grid_center = _checked(args.batch_size, args.max_frames, args.grid_center)
    check_whole("--views", args.views, 0, error=PredictionError)
    capture = Path(args.capture)
    model, state, frames, device = _prepare(capture, args.checkpoint, args.device, grid_center)
    frames = _first(frames, max_frames)
    seen, counts = trained_pair_counts(state), pair_counts(frames)
    if seen and not set(counts) <= set(seen):
        print(f"note: the model trained on {seen} speaker-microphone pairs and this capture has {counts}; "
              f"fine-tune it on this rig for its best accuracy", file=sys.stderr)
    out_dir = claim_output_dir(args.out, "--out", WRITER)

    prediction = predict_frames(model, frames, device, batch_size, show_progress=not args.no_progress)
    capture_info = {"capture": str(capture), "checkpoint": args.checkpoint, "checkpoint_path": state["path"],
                    "config": state["config_obj"].name, "device": str(device), "batch_size": batch_size,
                    "grid_center_m": list(frames.grid_center_m)}
    files = _write_frames(out_dir, prediction)
    _write_summary(out_dir, prediction, capture_info, files)
    config = state["config_obj"]
    _write_contact_sheet(out_dir / "contact_sheet.png", prediction, frames, config.image_size_px, config.sample_rate_hz)
    views = _write_views(out_dir, prediction, frames, config.image_size_px, args.views)
    print(f"{len(files)} frames at {prediction.frames_per_s:.2f} frames/s on {device} (reading "
          f"{prediction.seconds_reading:.2f} s, network {prediction.seconds_network:.2f} s); wrote {out_dir}/"
          f"frame_*.json, predictions.json, contact_sheet.png" + (", view_*.html, view_*.glb" if views else ""))
    return 0


def main(argv=None) -> int:
    """Command-line entry; returns the exit code (0 done, 2 bad input, 130 interrupted)."""
    return run_command(lambda: _main(argv), interrupted="nothing is lost: run the same command again")


if __name__ == "__main__":
    sys.exit(main())
