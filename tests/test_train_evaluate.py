"""network.data / network.train / network.evaluate: metrics against hand-computed numbers, the training CLI on
a tiny synthetic store and a tiny PoseKernel-layout folder (pretrain, resume, fine-tune, NaN guard, config
mismatch, missing data) and the evaluation CLI's files. Config "tiny" throughout."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bodies.joints import JOINT_INDEX
from network import evaluate as ev
from network import train as tr
from network.config import get_config
from network.data import DataError, RealFrames, SynthFrames, collate, real_dataset, synthetic_frame
from tests.helpers import gnd49

REPO = Path(__file__).resolve().parents[1]
TINY = get_config("tiny")
FAST = ["--config", "tiny", "--batch-size", "4", "--workers", "0", "--no-progress"]


# -- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tiny_store):
    """The session's tiny store (tests/conftest.py): 2 rooms x 2 frames; only read here."""
    return tiny_store


@pytest.fixture(scope="module")
def pretrained(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pre"
    rc = tr.main(["--pretrain", "synth", "--synth", str(store), "--epochs", "1", "--out", str(out)] + FAST)
    assert rc == 0
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def log_rows(path: Path) -> list[dict]:
    import csv

    with open(path) as handle:
        return list(csv.DictReader(handle))


# -- metrics (pure, hand-computed) ---------------------------------------------------------------------------
def test_mpjpe_and_pck_by_group_match_hand_computed_values():
    truth = np.zeros((3, 15, 3))
    pred = np.zeros((3, 15, 3))
    # frame 0, a minor: head 3 cm off, right wrist (3, 4, 0) cm = 5 cm, left wrist 1 cm; the rest exact
    pred[0, JOINT_INDEX["head"]] = [0.03, 0, 0]
    pred[0, JOINT_INDEX["r_wrist"]] = [0.03, 0.04, 0]
    pred[0, JOINT_INDEX["l_wrist"]] = [0, 0, -0.01]
    # frames 1 and 2, adults: every joint 10 cm (frame 1) and 30 cm (frame 2) off along y
    pred[1, :, 1] = 0.10
    pred[2, :, 1] = 0.30
    is_minor = np.array([True, False, False])
    m = ev.mpjpe_by_group(pred, truth, is_minor)
    assert list(m["minor"]) == ["Head", "Neck", "Hand", "Elbow", "Shoulder", "Hip", "Knee", "Foot", "Mean"]
    assert m["minor"]["Head"] == pytest.approx(3.0)
    assert m["minor"]["Hand"] == pytest.approx(3.0)          # (5 + 1) / 2
    assert m["minor"]["Neck"] == pytest.approx(0.0)
    assert m["minor"]["Mean"] == pytest.approx(9.0 / 15)     # (3 + 5 + 1) / 15 joints
    for group in ev.GROUPS:
        assert m["adult"][group] == pytest.approx(20.0)      # (10 + 30) / 2
    p = ev.pck_by_group(pred, truth, [2, 10, 20], is_minor)
    assert p["minor"][2]["Head"] == 0.0 and p["minor"][2]["Hand"] == 0.5 and p["minor"][2]["Neck"] == 1.0
    assert p["minor"][2]["Mean"] == pytest.approx(13 / 15)       # head and right wrist miss
    assert p["minor"][10]["Mean"] == 1.0
    assert p["adult"][10]["Knee"] == 0.5                     # exactly 10 cm counts as correct
    assert p["adult"][2]["Foot"] == 0.0 and p["adult"][20]["Mean"] == 0.5


def test_metrics_skip_unknown_truth_and_report_nan_for_an_empty_population():
    truth = np.zeros((2, 15, 3))
    truth[1, JOINT_INDEX["head"]] = np.nan
    pred = np.full((2, 15, 3), 0.0)
    pred[:, JOINT_INDEX["head"]] = [0, 0, 0.04]
    m = ev.mpjpe_by_group(pred, truth, np.array([False, False]))
    assert m["adult"]["Head"] == pytest.approx(4.0)          # frame 1's head has no truth: left out
    assert np.isnan(m["minor"]["Head"]) and np.isnan(m["minor"]["Mean"])
    p = ev.pck_by_group(pred, truth, (10,), np.array([False, False]))
    assert np.isnan(p["minor"][10]["Mean"]) and p["adult"][10]["Head"] == 1.0
    with pytest.raises(ValueError, match="must both be"):
        ev.mpjpe_by_group(pred[:, :14], truth[:, :14], None)


def test_tables_have_the_papers_layout():
    pred, truth = np.zeros((2, 15, 3)), np.zeros((2, 15, 3))
    pred[1, :, 0] = 0.05
    is_minor = np.array([True, False])
    results = {"ours": {"mpjpe_cm": ev.mpjpe_by_group(pred, truth, is_minor),
                        "pck": ev.pck_by_group(pred, truth, (10, 20, 30, 40), is_minor)}}
    text = ev.format_tables(results)
    lines = text.splitlines()
    assert "## Table 1. MPJPE (cm, lower is better), minors / adults" in lines
    assert "| Method | Head | Neck | Hand | Elbow | Shoulder | Hip | Knee | Foot | Mean |" in lines
    assert "| Ours (Vis.+Audio, all pairs) | " + " | ".join(["0.00 / 5.00"] * 9) + " |" in lines
    assert "| Method | t | Head | Neck | Hand | Elbow | Shoulder | Hip | Knee | Foot | Mean |" in lines
    assert sum(line.startswith("| Ours") and " cm | " in line for line in lines) == 4
    assert "| Ours (Vis.+Audio, all pairs) | 10 cm | " + " | ".join(["1.000 / 1.000"] * 9) + " |" in lines


def test_ablation_pair_masks():
    pairs = torch.tensor([[[s, m] for s in range(2) for m in range(2)]])     # (1, 4, 2): 00 01 10 11
    # microphone i 2 cm above speaker i: (0, 0) and (1, 1) are co-located, (0, 1) and (1, 0) are 1 m apart
    speakers = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    geometry = {"speaker_pos": speakers, "mic_pos": speakers + torch.tensor([0.0, -0.02, 0.0])}
    batch = {"pair_index": pairs, "pair_mask": torch.tensor([[True, True, True, True]]), **geometry}
    assert ev.mask_half_pairs(batch)["pair_mask"].tolist() == [[True, True, False, False]]
    assert ev.mask_colocated_only(batch)["pair_mask"].tolist() == [[True, False, False, True]]
    padded = {"pair_index": pairs, "pair_mask": torch.tensor([[True, True, True, False]]), **geometry}
    assert ev.mask_half_pairs(padded)["pair_mask"].tolist() == [[True, True, False, False]]   # ceil(3 / 2)
    assert ev.mask_colocated_only(padded)["pair_mask"].tolist() == [[True, False, False, False]]


# -- data adapters ---------------------------------------------------------------------------------------------
def test_store_and_real_frames_collate_with_a_pair_mask(store, posekernel_root):
    synth = SynthFrames(store, TINY, split="train")
    real = real_dataset(posekernel_root, TINY, environments=["environment2"], detector=None)
    assert len(synth) == 4 and len(real) == 2
    a, b = synth[0], real[0]
    assert a["kernels"].shape == (16, TINY.kernel_samples) and b["kernels"].shape == (4, TINY.kernel_samples)
    # normalised after the crop: the median over pairs of each kernel's RMS is 1
    assert np.median(b["kernels"].double().pow(2).mean(-1).sqrt().numpy()) == pytest.approx(1.0, rel=1e-5)
    batch = collate([a, b])
    assert batch["kernels"].shape == (2, 16, TINY.kernel_samples)
    assert batch["pair_mask"].sum(1).tolist() == [16, 4]
    assert batch["grid_to_camera"].shape == (2, 4, 4) and batch["speed_of_sound"].shape == (2,)
    assert float(batch["kernels"][1, 4:].abs().sum()) == 0.0
    # both grids are centred at the config's point in front of the camera, level with it (up = -y)
    from pipeline.grid import VoxelGrid

    for k in (0, 1):
        grid = VoxelGrid(TINY.grid_shape, TINY.voxel_size_m, batch["grid_to_camera"][k].double().numpy())
        np.testing.assert_allclose(grid.center_camera_m, TINY.grid_center_m, atol=1e-6)
        np.testing.assert_allclose(grid.up_camera, [0.0, -1.0, 0.0], atol=1e-6)
    # "floor" placement stands the synthetic grid on the room's floor instead
    floor_cfg = TINY.replace(grid_placement="floor")
    item = synth.store[0]
    floor_grid = VoxelGrid(TINY.grid_shape, TINY.voxel_size_m,
                           SynthFrames(store, floor_cfg, split="train")[0]["grid_to_camera"].double().numpy())
    cam_to_world = np.asarray(item["cam_to_world"], float)
    corner_world = cam_to_world @ np.r_[floor_grid.voxel_to_camera(np.array([-0.5, -0.5, -0.5])), 1.0]
    assert corner_world[2] == pytest.approx(0.0, abs=1e-6)      # bottom face on the floor (z = 0)
    heatmaps = tr.build_lifter(TINY)(tr.model_inputs(batch))
    assert heatmaps[-1].shape == (2, 15) + TINY.grid_shape


def test_data_errors_are_clear(store, posekernel_root, tmp_path):
    item = SynthFrames(store, TINY, split="train").store[0]
    item["kernels"][0, 5] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        synthetic_frame(item, TINY)
    with pytest.raises(DataError, match="sample_rate_hz"):
        SynthFrames(store, TINY.replace(sample_rate_hz=48000.0), split="train")
    with pytest.raises(DataError, match="python -m simulator.generate"):
        SynthFrames(tmp_path / "nothing.zarr", TINY)
    with pytest.raises(DataError, match=r"environment9.*do not exist"):
        real_dataset(posekernel_root, TINY, environments=["environment9"])
    with pytest.raises(DataError, match="raw_capture_format"):
        real_dataset(tmp_path, TINY)
    assert isinstance(real_dataset(posekernel_root, TINY), RealFrames)


def raw_capture(folder: Path, n_speakers: int, n_microphones: int, frames: int = 2) -> Path:
    """A raw capture (docs/raw_capture_format.md) with a synthetic echo: the empty room is every speaker's
    chirp at every microphone, each frame adds a delayed copy and a little noise."""
    from bodies.joints import from_frankmocap49
    from pipeline.real_captures import CaptureCalibration, project_keypoints, write_raw_capture
    from simulator.signals import ChirpPlan

    plan = ChirpPlan(n_speakers=n_speakers)
    rng = np.random.default_rng(n_speakers)
    speakers = np.c_[np.linspace(-1.5, 1.5, n_speakers), np.zeros(n_speakers), np.ones(n_speakers)]
    microphones = np.c_[np.linspace(-1.4, 1.4, n_microphones), np.full(n_microphones, 0.1), np.ones(n_microphones)]
    K = np.array([[914.0, 0, 957.0], [0, 914.0, 547.0], [0, 0, 1]])
    empty = np.repeat(plan.chirps().sum(0)[None], n_microphones, axis=0)
    recordings = np.stack([empty + 0.01 * np.roll(empty, 300 + 50 * f, axis=1)
                           + 1e-4 * rng.standard_normal(empty.shape) for f in range(frames)])
    joints = np.stack([from_frankmocap49(gnd49(f, 1)) for f in range(frames)])
    keypoints = np.stack([project_keypoints(j, K, (1920, 1080)) for j in joints])
    calibration = CaptureCalibration(speaker_positions_m=speakers, microphone_positions_m=microphones, intrinsics=K,
                                     image_size_px=(1920, 1080), chirp_plan=plan, environment_name=folder.name)
    return write_raw_capture(folder, recordings, empty, calibration, keypoints, joints)


def test_raw_capture_folders_are_recognised_and_fine_tuned_on(pretrained, tmp_path):
    root = tmp_path / "captures"
    raw_capture(root / "kitchen", 2, 2)
    raw_capture(root / "office", 3, 2)
    frames = real_dataset(root, TINY)
    assert frames.environments == ["kitchen", "office"] and len(frames) == 4
    batch = collate([frames[i] for i in range(4)])
    assert batch["pair_mask"].sum(1).tolist() == [4, 4, 6, 6]       # 2 x 2 and 3 x 2 rigs in one batch
    assert [frames.environment_of(i) for i in range(4)] == ["kitchen", "kitchen", "office", "office"]
    single = real_dataset(root / "kitchen", TINY)
    assert single.environments == ["kitchen"] and len(single) == 2
    out = tmp_path / "ft"
    assert tr.main(["--finetune", "real", "--real", str(root), "--init", str(pretrained / "pretrain" / "best.pt"),
                    "--test-environments", "office", "--epochs", "1", "--out", str(out)] + FAST) == 0
    state = tr.load_checkpoint(out / "finetune" / "last.pt")
    assert state["data"]["finetune_environments"] == ["kitchen"] and state["data"]["test_environments"] == ["office"]


# -- training CLI ----------------------------------------------------------------------------------------------
def test_pretrain_writes_checkpoints_log_and_tensorboard(pretrained):
    phase = pretrained / "pretrain"
    for name in ("last.pt", "best.pt", "log.csv"):
        assert (phase / name).is_file()
    assert any((phase / "tb").iterdir())
    rows = log_rows(phase / "log.csv")
    assert len(rows) == 1 and rows[0]["epoch"] == "1" and float(rows[0]["val_mpjpe_cm"]) > 0
    state = tr.load_checkpoint(phase / "last.pt")
    assert state["epoch"] == 1 and state["config"]["name"] == "tiny" and state["phase"] == "pretrain"
    assert not list(phase.glob(".*tmp*"))               # no temporary file left behind
    raw = torch.load(phase / "last.pt", weights_only=True)          # tensors and plain data only
    assert json.loads(json.dumps(raw["args"])) == raw["args"] and raw["args"]["out"] == str(pretrained)
    assert json.loads((pretrained / "run.json").read_text())["config_resolved"]["grid_shape"] == [16, 16, 12]


def test_resume_continues_from_the_saved_epoch(pretrained, store, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(pretrained, out)
    args = ["--pretrain", "synth", "--synth", str(store), "--out", str(out)] + FAST
    assert tr.main(args + ["--epochs", "2"]) == 2                       # refuses to overwrite without --resume
    assert "--resume" in capsys.readouterr().err
    assert tr.main(args + ["--epochs", "2", "--resume"]) == 0
    assert "resuming" in capsys.readouterr().out
    rows = log_rows(out / "pretrain" / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert int(rows[1]["steps"]) == 2                                   # 1 step per epoch, counted on
    assert tr.load_checkpoint(out / "pretrain" / "last.pt")["epoch"] == 2
    assert tr.main(args + ["--epochs", "2", "--resume"]) == 0           # already complete: nothing to do
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("flags, kept_epoch", [([], 2), (["--lr-schedule", "cosine"], 3),
                                                (["--lr-schedule", "cosine", "--select", "val"], 2),
                                                (["--select", "last"], 3)])
def test_best_pt_keeps_the_epoch_select_names(store, tmp_path, monkeypatch, flags, kept_epoch):
    """--select: best.pt is the epoch of lowest validation MPJPE ('val', auto with a constant rate) or the final
    epoch ('last', auto under cosine); the log's best column marks where best.pt was written. The validation
    figures are scripted (30, 10, 20 cm) so the two rules pick different epochs."""
    scripted = iter([(30.0, 1.0), (10.0, 1.0), (20.0, 1.0)])
    monkeypatch.setattr(tr, "_validate", lambda run, loader: next(scripted))
    out = tmp_path / "run"
    assert tr.main(["--pretrain", "synth", "--synth", str(store), "--epochs", "3", "--out", str(out)] + FAST
                   + flags) == 0
    best = tr.load_checkpoint(out / "pretrain" / "best.pt")
    assert best["epoch"] == kept_epoch
    kept = [int(r["epoch"]) for r in log_rows(out / "pretrain" / "log.csv") if r["best"] == "1"]
    assert kept == ([1, 2] if kept_epoch == 2 else [1, 2, 3])
    assert best["args"]["select"] == ("val" if kept_epoch == 2 else "last")     # recorded resolved


def test_shuffle_rooms_trains_on_every_frame_in_room_blocks(store, tmp_path, monkeypatch):
    """--shuffle rooms: the training loader draws its order from a RoomBlockSampler (every training frame once
    per epoch, the epoch's own order) and training runs as with the default order."""
    from pipeline.store_dataset import RoomBlockSampler

    orders = []
    original = RoomBlockSampler.__iter__

    def recording(self):
        order = list(original(self))
        orders.append((self.epoch, order))
        return iter(order)

    monkeypatch.setattr(RoomBlockSampler, "__iter__", recording)
    out = tmp_path / "rooms"
    assert tr.main(["--pretrain", "synth", "--synth", str(store), "--epochs", "2", "--out", str(out),
                    "--shuffle", "rooms"] + FAST) == 0
    n_train = len(SynthFrames(store, TINY, split="train"))
    assert [epoch for epoch, _ in orders] == [0, 1]
    assert all(sorted(order) == list(range(n_train)) for _, order in orders)
    assert len(log_rows(out / "pretrain" / "log.csv")) == 2


def test_a_full_disk_while_saving_keeps_the_last_checkpoint_and_the_log_row(pretrained, store, tmp_path,
                                                                           monkeypatch, capsys):
    from tests.checkpoint_files import full_disk_for

    out = tmp_path / "run"
    shutil.copytree(pretrained, out)
    before = sha(out / "pretrain" / "last.pt")
    args = ["--pretrain", "synth", "--synth", str(store), "--out", str(out), "--epochs", "2", "--resume"] + FAST
    full_disk_for(monkeypatch, ".last.pt.tmp")
    assert tr.main(args) == 2
    monkeypatch.undo()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "disk is full" in errors[0] and "last.pt" in errors[0]
    assert sha(out / "pretrain" / "last.pt") == before                  # the last good checkpoint
    assert [r["epoch"] for r in log_rows(out / "pretrain" / "log.csv")] == ["1", "2"]   # epoch 2's numbers kept
    assert not list((out / "pretrain").glob(".*tmp*"))
    # space freed: the same command trains epoch 2 again, and its row replaces the first one
    assert tr.main(args) == 0
    assert [r["epoch"] for r in log_rows(out / "pretrain" / "log.csv")] == ["1", "2"]
    assert tr.load_checkpoint(out / "pretrain" / "last.pt")["epoch"] == 2


def test_a_run_folder_and_checkpoint_from_before_this_version_resume(pretrained, store, tmp_path):
    """A run made before output markers and weights-only checkpoints: run.json without "written_by", a
    version-1 last.pt (torch's TorchVersion, the arguments as an argparse.Namespace holding a path)."""
    import argparse

    out = tmp_path / "old"
    shutil.copytree(pretrained, out)
    (out / ".posekernel-output.json").unlink()
    info = json.loads((out / "run.json").read_text())
    del info["written_by"]
    (out / "run.json").write_text(json.dumps(info, indent=2))
    state = tr.load_checkpoint(out / "pretrain" / "last.pt")
    for key in ("config_obj", "path"):
        del state[key]
    state.update(version=1, torch_version=torch.__version__,
                 args=argparse.Namespace(**{**state["args"], "out": Path(state["args"]["out"])}))
    torch.save(state, out / "pretrain" / "last.pt")
    assert tr.main(["--pretrain", "synth", "--synth", str(store), "--out", str(out), "--epochs", "2",
                    "--resume"] + FAST) == 0
    resumed = tr.load_checkpoint(out / "pretrain" / "last.pt")
    assert resumed["epoch"] == 2 and resumed["version"] == tr.CHECKPOINT_VERSION
    assert (out / ".posekernel-output.json").exists()
    torch.load(out / "pretrain" / "last.pt", weights_only=True)         # now plain data: no allow-list needed


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(pretrained, store, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    shutil.copytree(pretrained, out)
    before = sha(out / "pretrain" / "last.pt")
    monkeypatch.setattr(tr, "training_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    rc = tr.main(["--pretrain", "synth", "--synth", str(store), "--out", str(out), "--epochs", "2", "--resume"] + FAST)
    assert rc == 1
    err = capsys.readouterr().err
    assert "NaN/inf" in err and "last good checkpoint" in err
    assert sha(out / "pretrain" / "last.pt") == before
    assert len(log_rows(out / "pretrain" / "log.csv")) == 1


def test_finetune_on_posekernel_layout_from_init(pretrained, posekernel_root, tmp_path, capsys):
    out = tmp_path / "ft"
    init = pretrained / "pretrain" / "best.pt"
    base = ["--finetune", "real", "--real", str(posekernel_root), "--init", str(init), "--epochs", "1",
            "--out", str(out)] + FAST
    assert tr.main(base + ["--finetune-environments", "environment1", "environment2",
                           "--test-environments", "environment2"]) == 2
    assert "overlap" in capsys.readouterr().err
    assert tr.main(base + ["--finetune-environments", "environment1", "environment2",
                           "--test-environments", "environment3"]) == 0
    # pretraining drew pair subsets of 2 to 16 pairs, so the 4-pair rig is no change worth a note
    assert "speaker-microphone pairs" not in capsys.readouterr().err
    state = tr.load_checkpoint(out / "finetune" / "best.pt")
    assert state["data"]["pair_counts"] == list(range(2, 17))
    # the fine-tuned model is evaluated on the held-out 4-pair environment without complaint
    assert ev.main(["--checkpoint", str(out / "finetune" / "best.pt"), "--data", str(posekernel_root),
                    "--split", "test", "--methods", "ours", "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    assert state["data"]["test_environments"] == ["environment3"]
    assert state["data"]["finetune_environments"] == ["environment1", "environment2"]
    assert len(log_rows(out / "finetune" / "log.csv")) == 1
    # a checkpoint of another configuration is refused, naming the fields
    assert tr.main(["--finetune", "real", "--real", str(posekernel_root), "--init", str(init), "--out",
                    str(tmp_path / "x"), "--config", "small", "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "grid_shape" in err and "voxel_size_m" in err and "stages" in err
    with pytest.raises(tr.CheckpointError, match="channels"):
        tr.load_model(init, config=get_config("small"))


def test_missing_data_messages(tmp_path, capsys):
    assert tr.main(["--pretrain", "synth", "--synth", str(tmp_path / "none.zarr")] + FAST) == 2
    assert "python -m simulator.generate --rooms 500" in capsys.readouterr().err
    assert tr.main(["--finetune", "real", "--init", "x.pt", "--real", str(tmp_path / "none")] + FAST) == 2
    err = capsys.readouterr().err
    assert "PoseKernel" in err and "docs/raw_capture_format.md" in err and "--real" in err


def test_command_as_typed_explains_missing_data(tmp_path):
    result = subprocess.run([sys.executable, "-m", "network.train", "--pretrain", "synth", "--finetune", "real"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stderr
    assert "data/synth.zarr" in result.stderr and "python -m simulator.generate --rooms 500" in result.stderr
    (tmp_path / "data" / "synth.zarr").mkdir(parents=True)   # a store is there, the real data is not: fail fast
    result = subprocess.run([sys.executable, "-m", "network.train", "--pretrain", "synth", "--finetune", "real"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and "data/PoseKernel" in result.stderr and "saic-ny.github.io" in result.stderr


# -- evaluation CLI --------------------------------------------------------------------------------------------
def test_evaluate_writes_metrics_tables_and_picture(pretrained, store, posekernel_root, tmp_path, capsys):
    ckpt = pretrained / "pretrain" / "best.pt"
    out = tmp_path / "results"
    assert ev.main(["--checkpoint", str(ckpt), "--data", str(store), "--split", "all", "--out", str(out),
                    "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames"] == 4 and metrics["minors"] + metrics["adults"] == 4
    assert set(metrics["methods"]) == {"ours", "vision_avg_height", "vision_mean_stature", "geometric",
                                       "vision_half_pairs", "colocated_only"}
    assert metrics["rooms"] == 2 and "at least 5" in metrics["intervals_note"]     # too few rooms: no intervals
    assert metrics["methods"]["ours"]["intervals"]["mpjpe_cm"]["adult"]["Mean"]["low"] is None
    assert "at least 5" in (out / "tables.md").read_text()
    ours = metrics["methods"]["ours"]
    assert set(ours["mpjpe_cm"]) == {"minor", "adult"} and list(ours["mpjpe_cm"]["adult"]) == list(ev.GROUPS)
    assert set(ours["pck"]["adult"]) == {"10", "20", "30", "40"}
    tables = (out / "tables.md").read_text()
    assert "## Table 1. MPJPE" in tables and "## Table 2. PCK@t" in tables
    assert "| Method | Head | Neck | Hand | Elbow | Shoulder | Hip | Knee | Foot | Mean |" in tables
    assert (out / "skeletons.png").stat().st_size > 1000
    # real data: the held-out environment. Pretraining with pair subsets records every count it drew...
    assert tr.load_checkpoint(ckpt)["data"]["pair_counts"] == list(range(2, 17))
    assert ev.main(["--checkpoint", str(ckpt), "--data", str(posekernel_root), "--environments", "environment3",
                    "--methods", "ours", "--out", str(tmp_path / "real4"), "--no-progress"]) == 0
    # ... and a model that saw only 16-pair rigs (as with --no-augment) is refused on 4 pairs, with the fix...
    state = torch.load(ckpt, weights_only=True)
    state["data"]["pair_counts"] = [16]
    ckpt = tmp_path / "sixteen.pt"
    torch.save(state, ckpt)
    real_args = ["--checkpoint", str(ckpt), "--data", str(posekernel_root), "--environments", "environment3",
                 "--methods", "ours", "vision_avg_height", "--out", str(tmp_path / "real"), "--no-progress"]
    capsys.readouterr()
    assert ev.main(real_args) == 2
    err = capsys.readouterr().err
    assert "[16]" in err and "[4]" in err and "--finetune real" in err and "--any-pair-count" in err
    assert not (tmp_path / "real" / "metrics.json").exists()
    # ... unless asked for; audio_only needs its checkpoint
    assert ev.main(real_args + ["--any-pair-count"]) == 0
    real = json.loads((tmp_path / "real" / "metrics.json").read_text())
    assert real["frames"] == 2 and real["environments"] == ["environment3"]
    assert real["methods"]["ours"]["mpjpe_cm"]["minor"]["Mean"] is None        # no minors there: null
    capsys.readouterr()
    assert ev.main(["--checkpoint", str(ckpt), "--data", str(store), "--methods", "audio_only",
                    "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "--audio-checkpoint" in capsys.readouterr().err
    assert ev.main(["--checkpoint", str(ckpt), "--data", str(store), "--methods", "vision_learned",
                    "--out", str(tmp_path / "v"), "--no-progress"]) == 2
    assert "--vision-checkpoint" in capsys.readouterr().err
    assert ev.main(["--checkpoint", str(ckpt), "--data", str(store), "--methods", "vision_learned", "--vision-checkpoint",
                    str(ckpt), "--out", str(tmp_path / "v"), "--no-progress"]) == 2     # ours uses audio: refused
    assert "use_audio=True" in capsys.readouterr().err and not (tmp_path / "v" / "metrics.json").exists()


def test_torchrun_splits_the_epoch_over_processes(store, tmp_path):
    """DistributedDataParallel on the CPU (gloo): two processes share each epoch's frames."""
    n_train = len(SynthFrames(store, TINY, split="train"))
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "network.train", "--pretrain", "synth", "--synth", str(store), "--epochs", "1",
               "--device", "cpu", "--out", str(out), "--config", "tiny", "--batch-size", "1", "--workers", "0",
               "--no-progress"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = log_rows(out / "pretrain" / "log.csv")
    assert len(rows) == 1                                  # one writer: rank 0
    assert int(rows[0]["steps"]) == -(-n_train // 2)       # each process took half the frames
    assert tr.load_checkpoint(out / "pretrain" / "last.pt")["epoch"] == 1
