"""simulator.generate: Ray fans rooms out, one Zarr store, resumable, deterministic; and the
PyTorch dataset that reads it. Real Ray (local and a `ray start --head` cluster), real Zarr."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from simulator.generate import GenerationConfig, GenerationError, RoomGenerator, generate, room_split

SMALL = dict(rooms=3, frames_per_room=2, max_order=2, kernel_samples=2400, seed=5, realism="ideal")
SMALL_ARGS = ["--rooms", "3", "--frames-per-room", "2", "--max-order", "2", "--kernel-samples", "2400", "--seed", "5",
              "--realism", "ideal"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small dataset generated once with 2 local Ray workers."""
    out = str(tmp_path_factory.mktemp("gen") / "synth.zarr")
    summary = generate(GenerationConfig(**SMALL), out, workers=2, progress=False)
    return out, summary


def _arrays(url):
    root = zarr.open_group(url, mode="r")
    return {name: np.asarray(root[name][:]) for name in root.array_keys()}


def test_store_follows_the_contract_and_reads_with_plain_zarr(store):
    out, summary = store
    assert summary["rooms_done"] == 3 and summary["frames"] == 6
    assert summary["minors"] + summary["adults"] == 6 and sum(summary["activities"].values()) == 6
    root = zarr.open_group("file://" + os.path.abspath(out), mode="r")  # an fsspec URL
    F, P, S, M = 6, 16, 4, 4
    expected = {"kernels": (F, P, 2400), "pair_index": (F, P, 2), "speaker_pos": (F, S, 3), "mic_pos": (F, M, 3),
                "joints3d": (F, 15, 3), "keypoints2d": (F, 15, 3), "intrinsics": (F, 3, 3),
                "cam_to_world": (F, 4, 4), "room_id": (F,), "split": (F,), "height": (F,), "is_minor": (F,),
                "activity": (F,), "room_impulse_responses": (3, S, M, 9600)}
    for name, shape in expected.items():
        assert root[name].shape == shape, name
    assert root["kernels"].dtype == np.float16
    attrs = root.attrs
    assert attrs["format"] == "posekernel-synthetic" and attrs["sample_rate_hz"] == 96000
    assert len(attrs["joint_names"]) == 15 and attrs["seed"] == 5
    assert attrs["generator_config"]["rooms"] == 3
    # one room, one chunk: frames of a room share its id and its split
    room_id, split = root["room_id"][:], root["split"][:]
    np.testing.assert_array_equal(room_id, [0, 0, 1, 1, 2, 2])
    for r in range(3):
        assert (split[room_id == r] == room_split(GenerationConfig(**SMALL), r)).all()
    assert root["kernels"].chunks[0] == 2
    # camera frame: joints in front of the camera, detections near their projections
    joints, keypoints, K = root["joints3d"][:], root["keypoints2d"][:], root["intrinsics"][:]
    assert (joints[..., 2] > 0.5).all()
    uv = np.einsum("fij,fkj->fki", K, joints)
    uv = uv[..., :2] / uv[..., 2:]
    confident = keypoints[..., 2] > 0.5
    assert np.median(np.linalg.norm(keypoints[..., :2] - uv, axis=-1)[confident]) < 15.0
    # transducers lie in the room: back in the room frame, above the floor
    cam_to_world = root["cam_to_world"][:]
    world = np.einsum("fij,fkj->fki", cam_to_world[:, :3, :3], root["speaker_pos"][:]) + cam_to_world[:, None, :3, 3]
    assert (world[..., 2] > 0.3).all()


def test_kernels_in_float16_lose_little(store):
    """The stored float16 kernels against the same room simulated again in float64."""
    out, _ = store
    root = zarr.open_group(out, mode="r")
    room = 1
    again = RoomGenerator(GenerationConfig(**SMALL)).simulate(room)["frames"]
    stored = np.asarray(root["kernels"][2:4], dtype=np.float64)
    exact = again["kernels"]
    error = np.linalg.norm(stored - exact) / np.linalg.norm(exact)
    assert error < 1e-3  # float16 keeps ~3 decimal digits of the normalised kernels
    np.testing.assert_allclose(root["kernel_scale"][2:4], again["kernel_scale"], rtol=1e-6)
    np.testing.assert_allclose(root["joints3d"][2:4], again["joints3d"], atol=1e-5)


def test_any_number_of_workers_gives_the_same_arrays(store, tmp_path, anny_model):
    """2 Ray workers against --workers 0 (this process, no Ray); 1 Ray worker is the resume test's."""
    out, _ = store
    other = str(tmp_path / "in_process.zarr")
    generate(GenerationConfig(**SMALL), other, workers=0, progress=False, body_model=anny_model)
    a, b = _arrays(out), _arrays(other)
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_killed_run_resumes_without_rewriting_finished_rooms(store, tmp_path):
    out = str(tmp_path / "killed.zarr")
    cmd = [sys.executable, "-m", "simulator.generate", *SMALL_ARGS, "--out", out, "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    done = np.zeros(3, bool)
    while time.time() < deadline:
        try:
            done = np.asarray(zarr.open_group(out, mode="r")["room_done"][:])
        except Exception:  # noqa: BLE001 - the store is still being created
            pass
        if done.sum() >= 1:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the run and its Ray processes
    proc.wait()
    assert 1 <= done.sum() < 3, "the run must be killed between rooms"
    time.sleep(2)
    finished = np.flatnonzero(np.asarray(zarr.open_group(out, mode="r")["room_done"][:]))
    chunk_files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in Path(out, "kernels").rglob("*")
                   if p.is_file() and p.name.isdigit() is False and p.parts[-3:-2] != ()}
    # resume with the same arguments
    assert subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600).returncode == 0
    resumed = _arrays(out)
    assert resumed["room_done"].all()
    for path, (mtime, data) in chunk_files.items():
        chunk_room = int(path.parts[-3]) if path.parts[-3].isdigit() else None
        if chunk_room is not None and chunk_room in finished:
            assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data, path
    reference = _arrays(store[0])
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)


def test_other_arguments_on_an_existing_store_are_refused(store):
    out, _ = store
    with pytest.raises(GenerationError, match="seed"):
        generate(GenerationConfig(**(SMALL | {"seed": 6})), out, workers=1, progress=False)


def test_a_ray_cluster_started_with_ray_start(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(["ray", "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=180)
    try:
        out = str(tmp_path / "cluster.zarr")
        summary = generate(GenerationConfig(**(SMALL | {"rooms": 1})), out, address=f"127.0.0.1:{port}",
                           progress=False)
        assert summary["rooms_done"] == 1 and summary["frames"] == 2
    finally:
        subprocess.run(["ray", "stop", "--force"], capture_output=True, timeout=120)


@pytest.mark.parametrize("field, value", [("rooms", 0), ("frames_per_room", -2), ("rig", "stacked"),
                                          ("split", (0.5, 0.5, 0.5)), ("activities", ("flying",)),
                                          ("kernel_dtype", "int8"), ("seed", -1), ("snr_db", float("nan")),
                                          ("kernel_samples", 20000), ("split", (float("nan"),) * 3),
                                          ("rooms", 10**12), ("max_order", 10**4), ("rooms", 2.5)])
def test_bad_arguments_fail_before_work(field, value):
    """(every command-line form, and that nothing is written, in tests/test_bad_input_generate.py)"""
    with pytest.raises(GenerationError, match=field.replace("_", "-")):
        GenerationConfig(**{field: value})


def test_ctrl_c_says_what_is_stored_and_the_same_command_resumes(tmp_path, anny_model, monkeypatch):
    """Ctrl-C during room 1: one line, exit 130, room 0 kept; the same command then finishes the store.

    (Through Ray the KeyboardInterrupt reaches the same handler from ``ray.wait``; this runs the rooms
    in this process, --workers 0, to stay fast.)"""
    import simulator.generate as gen
    import simulator.generation_run as generation_run
    from tests.cli_harness import call_main

    monkeypatch.setattr(generation_run, "_BODY_MODEL", anny_model)
    simulate = gen.RoomGenerator.simulate

    def interrupted_in_room_1(self, room):
        if room == 1:
            raise KeyboardInterrupt
        return simulate(self, room)

    monkeypatch.setattr(gen.RoomGenerator, "simulate", interrupted_in_room_1)
    out = tmp_path / "synth.zarr"
    argv = ["--rooms", "2", "--frames-per-room", "1", "--max-order", "1", "--kernel-samples", "2400",
            "--workers", "0", "--out", str(out), "--quiet"]
    outcome = call_main("simulator.generate", argv)
    assert outcome.code == 130 and "Traceback" not in outcome.stderr, outcome.stderr
    lines = [line for line in outcome.stderr.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1, outcome.stderr
    assert f"1 of 2 rooms are stored in {out}" in lines[0] and "same command again to resume" in lines[0]
    assert zarr.open_group(out, mode="r")["room_done"][:].tolist() == [True, False]
    monkeypatch.setattr(gen.RoomGenerator, "simulate", simulate)
    assert call_main("simulator.generate", argv).code == 0
    assert zarr.open_group(out, mode="r")["room_done"][:].all()


def test_unwritable_output_and_unreachable_cluster_fail_before_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(GenerationError, match="cannot write"):
        generate(GenerationConfig(**SMALL), str(blocker / "synth.zarr"), progress=False)
    with pytest.raises(GenerationError, match="no Ray head"):
        generate(GenerationConfig(**SMALL), str(tmp_path / "x.zarr"), address="127.0.0.1:1", progress=False)
    assert not (tmp_path / "x.zarr").exists()
    from simulator.generate import main

    assert main(["--rooms", "0", "--out", str(tmp_path / "y.zarr")]) == 2


def test_dataset_filters_and_loads_with_workers(store):
    import torch

    from pipeline.store_dataset import StoreFormatError, SyntheticStoreDataset

    out, _ = store
    everything = SyntheticStoreDataset(out, split=None)
    assert len(everything) == 6
    item = everything[0]
    assert item["kernels"].shape == (16, 2400) and item["joints3d"].shape == (15, 3)
    minors = SyntheticStoreDataset(out, split=None, minors=True)
    adults = SyntheticStoreDataset(out, split=None, minors=False)
    assert len(minors) + len(adults) == 6 and all(minors[i]["is_minor"] for i in range(len(minors)))
    room = SyntheticStoreDataset(out, split=None, rooms=[1])
    assert sorted(int(room[i]["room_id"]) for i in range(len(room))) == [1, 1]
    splits = sum(len(SyntheticStoreDataset(out, split=s)) for s in ("train", "val", "test"))
    assert splits == 6
    loader = torch.utils.data.DataLoader(everything, batch_size=3, shuffle=True, num_workers=2)
    seen = torch.cat([batch["index"] for batch in loader])
    assert sorted(seen.tolist()) == list(range(6))
    with pytest.raises(StoreFormatError, match="no Zarr store"):
        SyntheticStoreDataset(out + ".missing")


def test_realistic_preset_changes_only_the_recordings_and_records_its_draws(store, tmp_path, anny_model):
    """--realism realistic: the same rooms, people and detections as the ideal store (its effects draw from a
    stream of their own), other kernels and (directivity) other empty-room responses; every room's drawn effects
    (noise, devices, directivity, the empty room's drift) are kept in the store; the
    preset is part of the store's identity (an ideal run on it is refused)."""
    out, _ = store
    real = str(tmp_path / "realistic.zarr")
    config = GenerationConfig(**(SMALL | {"realism": "realistic"}))
    generate(config, real, workers=0, progress=False, body_model=anny_model)
    ideal, realistic = _arrays(out), _arrays(real)
    for name in ("joints3d", "keypoints2d", "speaker_pos", "mic_pos", "activity"):
        np.testing.assert_array_equal(ideal[name], realistic[name], err_msg=name)
    assert not np.allclose(ideal["kernels"], realistic["kernels"])
    assert not np.allclose(ideal["room_impulse_responses"], realistic["room_impulse_responses"])   # directivity
    root = zarr.open_group(real, mode="r")
    for r in range(3):
        draws = dict(root["room_realism"][str(r)].attrs)
        assert 10.0 <= draws["noise"]["snr_db"] <= 40.0
        assert len(draws["devices"]["latency_s"]) == 8           # 4 speakers then 4 microphones
        assert set(draws) == {"noise", "devices", "directivity", "drift", "clothing"}     # (motion: per frame)
        assert abs(draws["drift"]["temperature_drift_k"]) <= 0.5
    assert root.attrs["generator_config"]["realism"] == "realistic"
    assert "room_realism" not in zarr.open_group(out, mode="r")     # ideal stores are as before
    with pytest.raises(GenerationError, match="realism"):
        generate(GenerationConfig(**SMALL), real, workers=0, progress=False, body_model=anny_model)


def test_without_effects_leaves_out_exactly_the_named_effects_and_is_part_of_the_identity(store, tmp_path, anny_model):
    """--without-effects (ablations): the realistic preset without the named effects draws the others, keeps the
    ideal store's rooms, people and detections, records the choice, and a run without it on that store is refused
    naming the field. Unknown names, an ideal preset and every effect are refused before any work."""
    from simulator.generate import build_parser, config_from_args
    from simulator.realism import REALISM_EFFECTS

    out, _ = store
    ablated = str(tmp_path / "without_noise.zarr")
    config = GenerationConfig(**(SMALL | {"realism": "realistic", "without_effects": ("motion", "noise")}))
    assert config.without_effects == ("noise", "motion")                 # the preset's order
    assert config.simulation.noise is None and config.simulation.motion is None
    assert config.simulation.devices is not None and config.simulation.clutter
    generate(config, ablated, workers=0, progress=False, body_model=anny_model)
    ideal, arrays = _arrays(out), _arrays(ablated)
    for name in ("joints3d", "keypoints2d", "activity"):
        np.testing.assert_array_equal(ideal[name], arrays[name], err_msg=name)
    root = zarr.open_group(ablated, mode="r")
    assert set(root["room_realism"]["0"].attrs) == {"devices", "directivity", "drift", "clothing"}
    assert root.attrs["generator_config"]["without_effects"] == ["noise", "motion"]
    assert "without_effects" not in GenerationConfig(**SMALL).identity()   # stores from before the flag resume
    with pytest.raises(GenerationError, match="without_effects differ"):
        generate(GenerationConfig(**(SMALL | {"realism": "realistic"})), ablated, workers=0, progress=False,
                 body_model=anny_model)
    args = build_parser().parse_args(SMALL_ARGS[:-1] + ["realistic", "--without-effects", "noise", "drift"])
    assert config_from_args(args).without_effects == ("noise", "drift")
    for values, message in (({"without_effects": ("nois",)}, "choose from noise"),
                            ({"realism": "ideal", "without_effects": ("noise",)}, "--realism realistic"),
                            ({"realism": "realistic", "without_effects": REALISM_EFFECTS}, "--realism ideal")):
        with pytest.raises(GenerationError, match=message):
            GenerationConfig(**(SMALL | values))


def test_realistic_is_the_default_and_stores_from_before_the_presets_resume_as_ideal(tmp_path):
    """The generator's default preset is realistic (issue 14). A store that records no ``realism`` (written before
    the presets, or an ideal store of the versions that left the key out) is ideal: it resumes with --realism ideal,
    is refused by a default (realistic) run naming the field, and is repaired as ideal."""
    from simulator.generation_repair import recorded_config
    from simulator.generation_store import open_or_create_store

    assert GenerationConfig().realism == "realistic" and GenerationConfig().simulation.drift is not None
    assert GenerationConfig().identity()["realism"] == "realistic"
    old = dict(rooms=1, frames_per_room=1, max_order=1)
    out = str(tmp_path / "old.zarr")
    open_or_create_store(out, GenerationConfig(**old, realism="ideal"))
    root = zarr.open_group(out, mode="r+")
    recorded = dict(root.attrs["generator_config"])
    assert recorded.pop("realism") == "ideal"
    root.attrs["generator_config"] = recorded                         # as a store of the earlier versions
    open_or_create_store(out, GenerationConfig(**old, realism="ideal"))          # resumes
    with pytest.raises(GenerationError, match="realism"):
        open_or_create_store(out, GenerationConfig(**old))
    assert recorded_config(zarr.open_group(out, mode="r"), out, "--repair").realism == "ideal"


def test_the_summary_reports_the_store_write_throughput(tmp_path, anny_model):
    """A fresh store's summary gives the bytes written per second of store writes (bench_generate reports it for a
    cluster writing through an fsspec URL); a file:// URL is written like a path."""
    out = "file://" + str(tmp_path / "url.zarr")
    summary = generate(GenerationConfig(**(SMALL | {"rooms": 1, "frames_per_room": 1})), out, workers=0,
                       progress=False, body_model=anny_model)
    assert summary["rooms_done"] == 1 and summary["store_write_mb_per_s"] > 0
    assert (tmp_path / "url.zarr").is_dir()


def test_a_realistic_store_of_single_period_empty_rooms_is_not_resumed_with_averaged_ones(tmp_path):
    """Stores before NoiseModel.empty_room_periods recorded rooms whose empty room was one period (their noise draws
    have no such key); this version averages 10, and resuming such a store would mix the two: refused, naming the
    field. A store of the same averaging, or an ideal one, passes."""
    from simulator.generation_store import _check_same_empty_room

    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    realistic, ideal = GenerationConfig(rooms=1, realism="realistic"), GenerationConfig(rooms=1, realism="ideal")
    _check_same_empty_room(root, realistic, "s.zarr")                   # no room written yet
    room = root.require_group("room_realism").require_group("0")
    room.attrs["noise"] = {"snr_db": 20.0}                              # as written before the field existed
    with pytest.raises(GenerationError, match="empty_room_periods") as caught:
        _check_same_empty_room(root, realistic, "s.zarr")
    assert "\n" not in str(caught.value) and "another --out" in str(caught.value)
    _check_same_empty_room(root, ideal, "s.zarr")
    room.attrs["noise"] = {"snr_db": 20.0, "empty_room_periods": realistic.simulation.noise.empty_room_periods}
    _check_same_empty_room(root, realistic, "s.zarr")
