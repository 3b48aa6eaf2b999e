"""network.predict with the shipped model: a raw capture without ground truth and a PoseKernel environment given
directly, the files it writes, its refusals; the "pretrained" checkpoint name in network.predict, network.evaluate
and network.train --init, and the shipped file's sha256 check."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bodies.joints import JOINT_NAMES
from core.errors import DamagedDataError
from network import checkpoints
from network import predict as pr
from network.checkpoints import resolve_checkpoint
from tests.helpers import gnd49

SHIPPED = Path(pr.__file__).resolve().parent / "pretrained" / "c2f_small_realistic.pt"
REPO = Path(__file__).resolve().parents[1]


def raw_capture_without_truth(folder: Path, frames: int = 3) -> Path:
    """A raw capture (docs/raw_capture_format.md) of 2 speakers x 2 microphones and no joints3d.npy: the empty
    room is every speaker's chirp at every microphone, each frame adds a delayed copy and a little noise."""
    from bodies.joints import from_frankmocap49
    from pipeline.real_captures import CaptureCalibration, project_keypoints, write_raw_capture
    from simulator.signals import ChirpPlan

    plan = ChirpPlan(n_speakers=2)
    rng = np.random.default_rng(0)
    speakers = np.array([[-1.5, 0.0, 1.0], [1.5, 0.0, 1.0]])
    microphones = np.array([[-1.4, 0.1, 1.0], [1.4, 0.1, 1.0]])
    K = np.array([[914.0, 0, 957.0], [0, 914.0, 547.0], [0, 0, 1]])
    empty = np.repeat(plan.chirps().sum(0)[None], len(microphones), axis=0)
    recordings = np.stack([empty + 0.01 * np.roll(empty, 300 + 50 * f, axis=1)
                           + 1e-4 * rng.standard_normal(empty.shape) for f in range(frames)])
    keypoints = np.stack([project_keypoints(from_frankmocap49(gnd49(f, 1)), K, (1920, 1080)) for f in range(frames)])
    calibration = CaptureCalibration(speaker_positions_m=speakers, microphone_positions_m=microphones, intrinsics=K,
                                     image_size_px=(1920, 1080), chirp_plan=plan, environment_name=folder.name)
    return write_raw_capture(folder, recordings, empty, calibration, keypoints)


@pytest.fixture(scope="module")
def raw_prediction(tmp_path_factory):
    """network.predict on a raw capture without ground truth: (exit code, output folder)."""
    base = tmp_path_factory.mktemp("predict")
    capture = raw_capture_without_truth(base / "kitchen")
    out = base / "out"
    return pr.main(["--capture", str(capture), "--out", str(out), "--device", "cpu", "--no-progress"]), out


def frame_files(out: Path) -> list[Path]:
    return sorted(out.glob("frame_*.json"))


# -- the command on both capture formats ---------------------------------------------------------------------
def test_raw_capture_without_truth_gives_named_finite_joints_with_confidences(raw_prediction):
    rc, out = raw_prediction
    assert rc == 0
    files = frame_files(out)
    assert [f.name for f in files] == ["frame_000000.json", "frame_000001.json", "frame_000002.json"]
    for f in files:
        record = json.loads(f.read_text())
        assert record["written_by"] == "network.predict"
        assert list(record["joints"]) == list(JOINT_NAMES)
        for joint in record["joints"].values():
            assert len(joint["position_m"]) == 3 and np.all(np.isfinite(joint["position_m"]))
            assert 0.0 <= joint["confidence"] <= 1.0
            assert "truth_m" not in joint and "error_cm" not in joint      # no joints3d.npy: no truth
        assert "mpjpe_cm" not in record
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["checkpoint"] == "pretrained" and Path(summary["checkpoint_path"]) == SHIPPED
    assert summary["frames"] == 3 and summary["frames_per_s"] > 0 and summary["mpjpe_cm"] is None
    assert summary["device"] == "cpu" and summary["capture"].endswith("kitchen")
    # the people stand about 3 m in front of the camera: the grid's default centre is 3.5 m away
    depths = [j["position_m"][2] for j in json.loads(files[0].read_text())["joints"].values()]
    assert 1.0 < np.median(depths) < 6.0
    assert (out / "contact_sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_views_to_turn_around_hold_the_rig_camera_and_skeletons(raw_prediction, posekernel_root, tmp_path):
    """view_000000.html (self-contained plotly page) and .glb (y up): the capture's rig, the camera and the
    predicted skeleton; with ground truth the true skeleton too; --views 0 writes none."""
    import trimesh

    rc, out = raw_prediction
    page = (out / "view_000000.html").read_text()
    assert '<meta name="generator" content="posekernel network.predict">' in page and "<script src=\"http" not in page
    for trace in ("speakers", "microphones", "camera", "skeleton: predicted"):
        assert f'"name":"{trace}"' in page, trace
    assert "skeleton: true" not in page and not (out / "view_000001.html").exists()
    names = set(trimesh.load(out / "view_000000.glb", force="scene").geometry)
    assert {"speakers", "microphones", "camera"} <= names and any(n.startswith("skeleton: predicted") for n in names)
    with_truth = tmp_path / "truth"
    assert pr.main(["--capture", str(posekernel_root / "environment2"), "--out", str(with_truth), "--device", "cpu",
                    "--views", "2", "--no-progress"]) == 0
    assert "skeleton: true" in (with_truth / "view_000001.html").read_text()
    none = tmp_path / "none"
    assert pr.main(["--capture", str(posekernel_root / "environment2"), "--out", str(none), "--device", "cpu",
                    "--views", "0", "--max-frames", "1", "--no-progress"]) == 0
    assert not list(none.glob("view_*"))


def test_posekernel_environment_folder_given_directly_reports_errors_against_truth(posekernel_root, tmp_path):
    out = tmp_path / "out"
    assert pr.main(["--capture", str(posekernel_root / "environment2"), "--out", str(out), "--device", "cpu",
                    "--max-frames", "1", "--no-progress"]) == 0
    (only,) = frame_files(out)
    record = json.loads(only.read_text())
    assert record["environment"] == "environment2"
    for joint in record["joints"].values():
        assert len(joint["truth_m"]) == 3 and joint["error_cm"] >= 0
    assert (out / "contact_sheet.png").exists()


def test_errors_with_ground_truth_equal_a_hand_computation(posekernel_root):
    from bodies.joints import from_frankmocap49

    prediction = pr.predict_capture(posekernel_root / "environment1", device="cpu", max_frames=2)
    truth = np.stack([from_frankmocap49(gnd49(f, 1)) for f in range(2)])     # what the layout's gnd.npy holds
    np.testing.assert_allclose(prediction.truth_m, truth, atol=1e-6)
    assert prediction.joints_m.shape == (2, 15, 3) and prediction.confidence.shape == (2, 15)
    by_hand = np.sqrt(((prediction.joints_m - truth) ** 2).sum(-1)) * 100
    np.testing.assert_allclose(prediction.errors_cm(), by_hand, atol=1e-4)
    record = pr._frame_record(prediction, 1)
    np.testing.assert_allclose([record["joints"][n]["error_cm"] for n in JOINT_NAMES], by_hand[1], atol=1e-3)
    assert record["mpjpe_cm"] == pytest.approx(by_hand[1].mean(), abs=1e-3)


def test_api_takes_frames_already_built(posekernel_root):
    from network.config import get_config
    from network.data import real_dataset

    config = checkpoints.load_checkpoint(SHIPPED)["config_obj"]
    assert config.name == "c2f_small" and config == get_config("c2f_small")
    dataset = real_dataset(posekernel_root, config, environments=["environment1"])
    frames = [dataset[i] for i in range(2)]
    from_frames = pr.predict_capture(frames, device="cpu", batch_size=1)
    from_folder = pr.predict_capture(posekernel_root / "environment1", device="cpu", max_frames=2)
    np.testing.assert_allclose(from_frames.joints_m, from_folder.joints_m, atol=1e-5)
    assert np.all((from_frames.confidence >= 0) & (from_frames.confidence <= 1))


# -- confidence ----------------------------------------------------------------------------------------------
def test_confidence_is_the_mass_within_10_cm():
    """A stand-in for the coarse-to-fine model: 4 fine points along x, logits putting 1/2, 1/4, 1/4, 0 on them."""
    import torch

    from network.coarse_fine import LifterOutput

    class Tubes:
        config = None

        @staticmethod
        def fine_points(batch, centers):
            return torch.tensor([[0.0, 0, 0], [0.05, 0, 0], [0.2, 0, 0], [1.0, 0, 0]]).reshape(1, 1, 4, 3)

    logits = torch.log(torch.tensor([0.5, 0.25, 0.25, 1e-30])).reshape(1, 1, 4)
    output = LifterOutput(joints=None, coarse_joints=None, coarse_logits=None, fine_centers=torch.zeros(1, 1, 3))
    confidence, spread = pr.joint_confidence(Tubes(), output, {}, torch.zeros(1, 1, 3), logits)
    assert float(confidence) == pytest.approx(0.75)                  # the points at 0 and 5 cm
    assert float(spread) == pytest.approx(100 * np.sqrt(0.25 * 0.05**2 + 0.25 * 0.2**2), rel=1e-5)


def test_confidence_of_the_papers_network_is_the_heatmap_mass_within_10_cm():
    import torch

    from network.config import get_config
    from pipeline.grid import VoxelGrid, voxel_centers_camera

    config = get_config("tiny")
    assert config.arch == "paper"
    grid = VoxelGrid.centered_at(config.grid_center_m, shape=config.grid_shape, voxel_size_m=config.voxel_size_m)
    batch = {"grid_to_camera": grid.pose_tensor(dtype=torch.float32)[None]}
    centers = voxel_centers_camera(batch["grid_to_camera"], config.grid_shape, config.voxel_size_m)[0]
    heatmap = torch.zeros(1, 15, *config.grid_shape)
    heatmap[0, :, 5, 5, 5] = 3.0                 # at the joint
    heatmap[0, :, 0, 0, 0] = 1.0                 # far from it
    heatmap[0, :, 9, 9, 9] = -2.0                # negative values are no belief
    heatmap[0, 14] = -1.0                        # no positive value at all
    joints = centers[5, 5, 5].expand(1, 15, 3)
    confidence, spread = pr.joint_confidence(type("Net", (), {"config": config})(), [heatmap], batch, joints)
    far_cm = 100 * float(torch.linalg.vector_norm(centers[0, 0, 0] - centers[5, 5, 5]))
    np.testing.assert_allclose(confidence[0, :14].numpy(), 0.75)
    np.testing.assert_allclose(spread[0, :14].numpy(), np.sqrt(0.25 * far_cm**2), rtol=1e-5)
    assert float(confidence[0, 14]) == 0.0 and np.isnan(float(spread[0, 14]))


# -- refusals ------------------------------------------------------------------------------------------------
def test_foreign_output_folder_is_refused_before_any_work(posekernel_root, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert pr.main(["--capture", str(posekernel_root / "environment1"), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "did not create" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_bad_capture_path_is_refused_in_one_line_naming_the_flag(tmp_path, capsys):
    assert pr.main(["--capture", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--capture" in err and "raw capture" in err
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert pr.main(["--capture", str(empty), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: --capture {empty}")


def test_posekernel_frames_without_gnd_are_lifted_from_their_keypoints_json(posekernel_root, tmp_path, capsys):
    """A PoseKernel-layout folder of one's own without ground truth: each frame's keypoints.json (OpenPose
    BODY_25) gives the 2D detections; a frame with neither gnd.npy nor keypoints.json is refused naming both."""
    import json

    from pipeline.posekernel_layout import PoseKernelDataset

    environment = tmp_path / "environment1"
    shutil.copytree(posekernel_root / "environment1", environment)
    projected = PoseKernelDataset(tmp_path, detector=None, environments=["environment1"])
    frames = sorted(p for p in environment.iterdir() if p.is_dir())
    for i, frame in enumerate(frames):
        keypoints = projected[i].keypoints2d
        body25 = np.zeros((25, 3))
        body25[[8, 1, 0, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]] = keypoints   # the head as the nose
        (frame / "keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": body25.ravel().tolist()}]}))
        (frame / "gnd.npy").unlink()
    dataset = PoseKernelDataset(tmp_path, environments=["environment1"])
    assert np.isnan(dataset[0].joints3d).all()
    np.testing.assert_allclose(dataset[0].keypoints2d, projected[0].keypoints2d)
    out = tmp_path / "out"
    assert pr.main(["--capture", str(environment), "--out", str(out)]) == 0
    frame = json.loads((out / "frame_000000.json").read_text())
    assert len(frame["joints"]) == 15 and "truth_m" not in json.dumps(frame) and "mpjpe_cm" not in frame
    assert all(np.isfinite(j["position_m"]).all() for j in frame["joints"].values())
    # neither file: refused before any work, naming both
    (frames[0] / "keypoints.json").unlink()
    assert pr.main(["--capture", str(environment), "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--capture" in err and "gnd.npy: missing" in err and "keypoints.json" in err
    assert not (tmp_path / "out2").exists()


def test_bad_numbers_are_refused_naming_the_flag(posekernel_root, tmp_path, capsys):
    base = ["--capture", str(posekernel_root), "--out", str(tmp_path / "out")]
    for extra, flag in ((["--batch-size", "0"], "--batch-size"), (["--max-frames", "0"], "--max-frames"),
                        (["--grid-center", "0", "nan", "3"], "--grid-center"), (["--device", "tpu"], "--device"),
                        (["--views", "-1"], "--views")):
        assert pr.main(base + extra) == 2
        assert flag in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- the shipped model ---------------------------------------------------------------------------------------
def test_pretrained_resolves_to_the_shipped_file_and_its_card_matches():
    assert resolve_checkpoint("pretrained") == SHIPPED
    assert resolve_checkpoint("runs/x/best.pt") == Path("runs/x/best.pt")
    card = json.loads((SHIPPED.parent / "model_card.json").read_text())
    assert card["file"] == SHIPPED.name
    # the card's accuracy is the committed small-scale result it names, not a number typed in
    targets = json.loads((REPO / "experiments/results/small/metrics.json").read_text())["targets"]
    for population, key in (("minors", "mpjpe_minors_cm"), ("adults", "mpjpe_adults_cm")):
        interval = targets[key]["interval"]
        assert card["accuracy"]["mpjpe_cm"][population] == {k: round(interval[k], 1) for k in ("estimate", "low", "high")}
    assert card["accuracy"]["hands_cm"] == round(targets["hands_cm"]["interval"]["estimate"], 1)
    assert "--realism realistic" in card["training"]["data_command"]


def test_damaged_shipped_model_is_refused_naming_the_file(tmp_path, monkeypatch):
    copy = tmp_path / "pretrained"
    shutil.copytree(SHIPPED.parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(checkpoints, "PRETRAINED_DIR", copy)
    assert resolve_checkpoint("pretrained") == copy / SHIPPED.name        # an intact copy passes
    data = bytearray((copy / SHIPPED.name).read_bytes())
    data[len(data) // 2] ^= 0xFF                                          # one flipped byte
    (copy / SHIPPED.name).write_bytes(bytes(data))
    with pytest.raises(DamagedDataError, match=re.escape(str(copy / SHIPPED.name))):
        resolve_checkpoint("pretrained")


def test_evaluate_and_train_accept_the_pretrained_name(posekernel_root, tmp_path, capsys):
    from network import evaluate as ev
    from network import train as tr
    from network.train_config import TrainConfig, checked

    out = tmp_path / "ev"
    assert ev.main(["--checkpoint", "pretrained", "--data", str(posekernel_root), "--split", "all",
                    "--environments", "environment1", "--methods", "ours", "--max-frames", "1", "--out", str(out),
                    "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert Path(metrics["checkpoint"]) == SHIPPED and metrics["config"]["name"] == "c2f_small"
    assert checked(TrainConfig(finetune="real", init="pretrained")).init == str(SHIPPED)
    run = tmp_path / "run"       # one step of fine-tuning from the shipped model
    assert tr.main(["--finetune", "real", "--real", str(posekernel_root), "--init", "pretrained",
                    "--finetune-environments", "environment1", "--test-environments", "environment3",
                    "--epochs", "1", "--max-steps", "1", "--batch-size", "2", "--workers", "0", "--out", str(run),
                    "--no-progress"]) == 0, capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["init"] == str(SHIPPED)
    assert checkpoints.load_checkpoint(run / "finetune" / "last.pt")["config_obj"].name == "c2f_small"
