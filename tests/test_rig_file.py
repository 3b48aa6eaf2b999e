"""simulator.generate --rig-file: the user's own rig and camera, fixed in the camera frame, in sampled rooms.

The rig files are written here in their real formats: a raw capture's calibration.json as
docs/raw_capture_format.md documents it, and a PoseKernel environment's audio_sensor_loc.npy ((pairs, 3)
co-located pairs, camera frame, m; pipeline/posekernel_layout.py). A store generated from either keeps the
file's speaker and microphone positions in the camera frame, to float32 precision; a bad file is refused
before any work with exit 2 and one line naming the file and the field; the configuration records the
rig's content, so a store round-trips, verifies, repairs, and refuses to resume with another rig.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.cli_harness import assert_refused, call_main, snapshot

# Generation kept cheap: image sources to order 1, half-period kernels, one frame per room.
QUICK = ["--frames-per-room", "1", "--max-order", "1", "--kernel-samples", "2400", "--workers", "0", "--quiet"]

# A separated rig of 3 speakers and 4 microphones (the format's example, one speaker fewer), with its own camera.
SPEAKERS = [[-1.52, 0.31, 2.10], [1.48, 0.25, 2.05], [-0.95, 0.40, 4.60]]
MICROPHONES = [[-1.52, 0.29, 2.10], [1.48, 0.23, 2.05], [-0.95, 0.38, 4.60], [1.10, 0.33, 4.75]]
INTRINSICS = [[600.0, 0.0, 640.0], [0.0, 600.0, 360.0], [0.0, 0.0, 1.0]]
IMAGE_SIZE = [1280, 720]
# A PoseKernel environment's co-located pairs (float32, as numpy saves them from a float32 array).
SENSORS = np.array([[-1.5, 0.2, 1.0], [1.5, 0.3, 1.2], [-1.0, -0.4, 4.5], [1.2, -0.3, 4.8]], dtype=np.float32)
AZURE_KINECT = [[914.0, 0.0, 957.0], [0.0, 914.0, 547.0], [0.0, 0.0, 1.0]]


def calibration(speakers=SPEAKERS, microphones=MICROPHONES, intrinsics=INTRINSICS, size=IMAGE_SIZE) -> dict:
    """calibration.json exactly as docs/raw_capture_format.md shows it."""
    return {
        "format": "posekernel-raw-capture", "version": 1, "sample_rate_hz": 96000.0, "speed_of_sound_m_s": 343.2,
        "speakers_m": speakers, "microphones_m": microphones, "pairs": None,
        "camera": {"intrinsics": intrinsics, "image_size_px": size,
                   "cam_to_world": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]},
        "chirp_plan": {"band_hz": [19000.0, 32000.0], "n_speakers": len(speakers), "duration_s": 0.1,
                       "sample_rate_hz": 96000.0, "taper_s": 0.005, "guard_hz": 250.0},
        "recording": {"file": "recording.wav", "first_sample": 0, "empty_file": "empty.wav", "empty_first_sample": 0,
                      "wav_full_scale": 1.0},
        "environment": {"id": 3, "name": "living_room"},
        "subject": {"height_m": 1.74, "is_minor": False, "age_years": 31},
        "activity": "standing",
    }


def write_calibration(folder: Path, data: dict | None = None, name: str = "calibration.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(calibration() if data is None else data, indent=2))   # NaN is written as NaN
    return path


def write_sensors(folder: Path, positions=SENSORS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "audio_sensor_loc.npy"
    np.save(path, positions)
    return path


def arrays(store) -> dict[str, np.ndarray]:
    root = zarr.open_group(str(store), mode="r")
    return {name: np.asarray(root[name][:]) for name in root.array_keys()}


@pytest.fixture(scope="module")
def stores(tmp_path_factory, anny_model):
    """Two stores made by the command: 2 rooms of the calibration rig, 1 room x 2 frames of the PoseKernel rig."""
    import simulator.generation_run as generation_run

    folder = tmp_path_factory.mktemp("rig_file")
    made = {"calibration": (write_calibration(folder / "capture"), folder / "calibration.zarr", ["--rooms", "2"]),
            "sensors": (write_sensors(folder / "environment1"), folder / "sensors.zarr",
                        ["--rooms", "1", "--frames-per-room", "2", "--seed", "3"])}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generation_run, "_BODY_MODEL", anny_model)   # --workers 0 runs in this process
        for rig_file, out, extra in made.values():
            outcome = call_main("simulator.generate", QUICK + extra + ["--rig-file", str(rig_file), "--out", str(out)])
            assert outcome.code == 0, outcome.stderr[-3000:]
    return made


def _in_room(store: dict) -> np.ndarray:
    """Every stored transducer carried back to its room frame by the frame's cam_to_world: (F, S + M, 3)."""
    cam_to_world = store["cam_to_world"].astype(float)
    points = np.concatenate([store["speaker_pos"], store["mic_pos"]], axis=1).astype(float)
    return np.einsum("fij,fkj->fki", cam_to_world[:, :3, :3], points) + cam_to_world[:, None, :3, 3]


def test_a_calibration_rig_is_stored_as_the_file_gives_it(stores):
    rig_file, out, _ = stores["calibration"]
    store = arrays(out)
    F = 2
    for f in range(F):   # every frame: the file's numbers, camera frame, to float32 precision
        np.testing.assert_array_equal(store["speaker_pos"][f], np.float32(SPEAKERS))
        np.testing.assert_array_equal(store["mic_pos"][f], np.float32(MICROPHONES))
        np.testing.assert_array_equal(store["intrinsics"][f], np.float32(INTRINSICS))   # the file's camera
    assert store["kernels"].shape == (F, 3 * 4, 2400) and store["room_impulse_responses"].shape[1:3] == (3, 4)
    np.testing.assert_array_equal(store["pair_index"][0], [(s, m) for s in range(3) for m in range(4)])
    assert not store["room_colocated"].any()
    root = zarr.open_group(str(out), mode="r")
    assert root.attrs["image_size_px"] == IMAGE_SIZE
    assert root.attrs["chirp_plan"]["n_speakers"] == 3          # one sub-band per speaker of the rig
    recorded = root.attrs["generator_config"]
    assert recorded["rig"] == "separated"
    assert recorded["rig_file"] == {"kind": "calibration", "speakers_m": SPEAKERS, "microphones_m": MICROPHONES,
                                    "camera": {"intrinsics": INTRINSICS, "image_size_px": IMAGE_SIZE}}
    assert str(rig_file) not in json.dumps(recorded)             # the content, not the path
    # the rig moved with the camera: another place in each room, inside the room, clear of its walls
    world = _in_room(store)
    assert not np.allclose(world[0], world[1], atol=0.05)
    dims = store["room_dimensions_m"][store["room_id"]]
    assert ((world > 0.04) & (world < dims[:, None, :] - 0.04)).all()
    # the person is in front of the camera and in view
    assert (store["joints3d"][..., 2] > 0.5).all() and (store["keypoints2d"][..., 2] > 0).any()


def test_an_audio_sensor_loc_rig_is_stored_as_the_file_gives_it(stores):
    rig_file, out, _ = stores["sensors"]
    store = arrays(out)
    for f in range(2):   # co-located pairs: a microphone at its speaker's number, as the PoseKernel dataset reads it
        np.testing.assert_array_equal(store["speaker_pos"][f], SENSORS)
        np.testing.assert_array_equal(store["mic_pos"][f], SENSORS)
        np.testing.assert_array_equal(store["intrinsics"][f], np.float32(AZURE_KINECT))   # the dataset's camera
    assert store["room_colocated"].all()
    assert store["kernels"].shape == (2, 16, 2400)
    assert np.isfinite(store["kernels"].astype(float)).all() and (store["kernel_scale"] > 0).all()
    recorded = zarr.open_group(str(out), mode="r").attrs["generator_config"]
    assert recorded["rig"] == "co-located"
    assert recorded["rig_file"] == {"kind": "audio_sensor_loc", "speakers_m": SENSORS.astype(float).tolist(),
                                    "microphones_m": SENSORS.astype(float).tolist()}


def test_a_rig_file_store_resumes_only_with_the_same_rig(stores, tmp_path):
    rig_file, out, extra = stores["calibration"]
    before = snapshot(out)
    # the same rig copied elsewhere: the same data, nothing left to do
    same = write_calibration(tmp_path / "elsewhere")
    outcome = call_main("simulator.generate", QUICK + extra + ["--rig-file", str(same), "--out", str(out)])
    assert outcome.code == 0, outcome.stderr[-2000:]
    assert json.loads(outcome.stdout)["rooms_done"] == 2
    # a microphone moved by a millimetre: another rig, refused, the store untouched
    moved = calibration(microphones=[MICROPHONES[0], MICROPHONES[1], MICROPHONES[2], [1.10, 0.33, 4.751]])
    other = write_calibration(tmp_path / "other", moved)
    outcome = call_main("simulator.generate", QUICK + extra + ["--rig-file", str(other), "--out", str(out)])
    assert_refused(outcome, "--out", "rig_file")
    # no rig file at all: refused too
    outcome = call_main("simulator.generate", QUICK + extra + ["--out", str(out)])
    assert_refused(outcome, "--out", "rig_file")
    assert snapshot(out) == before


def test_a_rig_file_store_verifies_and_repairs_without_the_file(stores, tmp_path, anny_model, monkeypatch):
    import shutil

    import simulator.generation_run as generation_run

    monkeypatch.setattr(generation_run, "_BODY_MODEL", anny_model)
    rig_file, out, _ = stores["sensors"]
    copy = tmp_path / "copy.zarr"
    shutil.copytree(out, copy)
    assert call_main("simulator.generate", ["--verify", str(copy), "--quiet"]).code == 0
    root = zarr.open_group(str(copy), mode="r")
    chunk = copy / "mic_pos" / root["mic_pos"].metadata.encode_chunk_key((0, 0, 0))
    chunk.unlink()
    assert call_main("simulator.generate", ["--verify", str(copy), "--quiet"]).code == 1
    away = rig_file.with_name("moved_away.npy")
    rig_file.rename(away)   # the store knows its rig: the file is not needed
    try:
        outcome = call_main("simulator.generate", ["--repair", str(copy), "--workers", "0", "--quiet"])
    finally:
        away.rename(rig_file)
    assert outcome.code == 0, outcome.stderr[-2000:]
    repaired, original = arrays(copy), arrays(out)
    for name in original:   # regenerated from the recorded rig: the same arrays
        np.testing.assert_array_equal(repaired[name], original[name], err_msg=name)


# -- bad files: refused before any work, exit 2, one line naming the file and the field ----------------------
def _calibration_with(change):
    def write(folder: Path) -> Path:
        data = calibration()
        change(data)
        return write_calibration(folder, data)
    return write


def _sensors_with(positions):
    return lambda folder: write_sensors(folder, positions)


def _text_file(name: str, text: str):
    def write(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
        return folder / name
    return write


def _object_npy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "audio_sensor_loc.npy"
    np.save(path, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    return path


def _truncated_npy(folder: Path) -> Path:
    path = write_sensors(folder)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])
    return path


def _set(key, value, inner=None):
    def change(data):
        if inner is None:
            data[key] = value
        else:
            data[key][inner] = value
    return change


BAD_FILES = [
    # (writes the file into a folder and returns its path; words the error line must hold)
    (_calibration_with(lambda d: d.pop("speakers_m")), ["calibration.json", "speakers_m", "missing"]),
    (_calibration_with(lambda d: d.pop("camera")), ["calibration.json", "camera", "missing"]),
    (_calibration_with(_set("microphones_m", [[-1.5, 0.3], [1.5, 0.2]])), ["calibration.json", "microphones_m",
                                                                            "shape"]),
    (_calibration_with(_set("speakers_m", [[float("nan"), 0.3, 2.0], [1.5, 0.2, 2.0]])),
     ["calibration.json", "speakers_m", "NaN"]),
    (_calibration_with(_set("speakers_m", [["-1.5", "0.3", "2.0"]])), ["calibration.json", "speakers_m"]),
    (_calibration_with(_set("microphones_m", "[[0, 0, 1]]")), ["calibration.json", "microphones_m"]),
    (_calibration_with(_set("camera", ["1920", "1080"], "image_size_px")), ["calibration.json",
                                                                             "camera.image_size_px"]),
    (_calibration_with(_set("camera", [[914.0, 0, 957.0], [0, 914.0, 547.0]], "intrinsics")),
     ["calibration.json", "camera.intrinsics"]),
    (_calibration_with(_set("camera", [[0.0, 0, 957.0], [0, 914.0, 547.0], [0, 0, 1]], "intrinsics")),
     ["calibration.json", "camera.intrinsics"]),
    (_calibration_with(_set("speakerz_m", [[0.0, 0.0, 1.0]])), ["calibration.json", "speakerz_m", "speakers_m"]),
    (_calibration_with(_set("format", "posekernel-synthetic")), ["calibration.json", "format"]),
    (_calibration_with(_set("version", "1")), ["calibration.json", "version"]),
    (_text_file("calibration.json", "{\"speakers_m\": [[0, 0, 1]],"), ["calibration.json", "not valid JSON"]),
    (_text_file("calibration.json", "[1, 2, 3]"), ["calibration.json", "object"]),
    (_sensors_with(SENSORS[:, :2]), ["audio_sensor_loc.npy", "shape (4, 2)"]),
    (_sensors_with(SENSORS.ravel()), ["audio_sensor_loc.npy", "shape (12,)"]),
    (_sensors_with(np.where(np.eye(4, 3) > 0, np.nan, SENSORS)), ["audio_sensor_loc.npy", "NaN"]),
    (_sensors_with(np.array([["a", "b", "c"]])), ["audio_sensor_loc.npy", "numbers"]),
    (_object_npy, ["audio_sensor_loc.npy", "object"]),
    (_truncated_npy, ["audio_sensor_loc.npy", "truncated"]),
    (_sensors_with(1000 * SENSORS), ["audio_sensor_loc.npy", "metres"]),                  # millimetres
    (_sensors_with(SENSORS + [0.0, 6.0, 0.0]), ["audio_sensor_loc.npy", "could not fit"]),   # 6 m below the camera
    (lambda folder: folder / "nothing_here.json", ["nothing_here.json", "no such file"]),
    (lambda folder: write_calibration(folder).parent, ["is a folder", "calibration.json"]),
]


def _everything_under(root: Path) -> dict[str, str]:
    return snapshot(root) | {str(p): "folder" for p in root.rglob("*") if p.is_dir()}


@pytest.mark.parametrize("write, words", BAD_FILES, ids=[" ".join(w[:2]) + f" {i}" for i, (_, w) in
                                                          enumerate(BAD_FILES)])
def test_a_bad_rig_file_is_refused_before_anything_is_written(tmp_path, write, words):
    rig_file = write(tmp_path / "rig")
    out = tmp_path / "deep" / "new.zarr"
    before = _everything_under(tmp_path)
    outcome = call_main("simulator.generate", ["--rooms", "1"] + QUICK + ["--rig-file", str(rig_file),
                                                                          "--out", str(out)])
    assert_refused(outcome, "--rig-file", *words)
    assert not (tmp_path / "deep").exists()
    assert _everything_under(tmp_path) == before


def test_rig_and_rig_file_must_agree(tmp_path):
    rig_file = write_calibration(tmp_path / "rig")
    out = tmp_path / "new.zarr"
    outcome = call_main("simulator.generate", ["--rooms", "1"] + QUICK + ["--rig", "co-located", "--rig-file",
                                                                          str(rig_file), "--out", str(out)])
    assert_refused(outcome, "--rig co-located", "separated")
    assert not out.exists()
    # --verify and --repair read the rig the store recorded: a rig file there is refused
    outcome = call_main("simulator.generate", ["--verify", str(out), "--rig-file", str(rig_file)])
    assert_refused(outcome, "--rig-file", "--verify")


# -- the configuration holds and records the rig's content ----------------------------------------------------
def test_the_config_round_trips_with_the_rig(tmp_path):
    from rooms.rig import CameraRig
    from rooms.rig_file import RigFile, read_rig_file
    from simulator.generate import GenerationConfig, GenerationError

    path = write_calibration(tmp_path / "capture")
    config = GenerationConfig(rig_file=str(path), rooms=3, frames_per_room=1)
    assert config.rig_file == read_rig_file(path) and config.rig == "separated"
    assert config.room_sampler.camera_rig == CameraRig(SPEAKERS, MICROPHONES)
    assert (config.room_sampler.n_speakers, config.room_sampler.n_microphones) == (3, 4)
    assert config.room_sampler.camera_intrinsics == tuple(map(tuple, INTRINSICS))
    assert config.room_sampler.image_size_px == tuple(IMAGE_SIZE)
    assert config.simulation.chirp_plan.n_speakers == 3
    # the store's record: JSON, the content and no path; built back it is the same configuration
    recorded = json.loads(json.dumps(config.identity()))
    assert recorded["rig_file"] == config.rig_file.to_dict()
    again = GenerationConfig(**recorded)
    assert again == config and again.identity() == config.identity()
    assert again.room_sampler == config.room_sampler and again.simulation == config.simulation
    assert RigFile.from_dict(config.rig_file.to_dict()) == config.rig_file
    # the same for the PoseKernel layout, whose camera is the default one
    sensors = GenerationConfig(rig_file=write_sensors(tmp_path / "environment1"))
    assert sensors.rig == "co-located" and sensors.room_sampler.camera_rig.colocated
    assert sensors.room_sampler.camera_intrinsics == GenerationConfig().room_sampler.camera_intrinsics
    assert GenerationConfig(**json.loads(json.dumps(sensors.identity()))) == sensors
    assert not any("." in key for key in sensors.identity())   # a 4-pair rig changes no held default
    # a store written without a rig file records none (and so resumes as before)
    assert "rig_file" not in GenerationConfig().identity()
    # a damaged record is refused with the field named
    tampered = dict(recorded, rig_file=dict(recorded["rig_file"], speakers_m=[[0.0, "x", 1.0]]))
    with pytest.raises(GenerationError, match=r"--rig-file: rig_file \(recorded\): field speakers_m"):
        GenerationConfig(**tampered)


def test_the_room_sampler_carries_the_rig_with_its_camera():
    from rooms import RoomSampler, RoomSamplerConfig
    from rooms.rig import CameraRig
    from rooms.sampler import CAMERA_RIG_CLEARANCE_M, CAMERA_RIG_WALL_MARGIN_M

    rig = CameraRig(SPEAKERS, MICROPHONES)
    sampler = RoomSampler(RoomSamplerConfig(camera_rig=rig, n_speakers=3, n_microphones=4,
                                            camera_intrinsics=tuple(map(tuple, INTRINSICS)),
                                            image_size_px=tuple(IMAGE_SIZE)))
    for seed in range(6):
        scene = sampler.sample(np.random.default_rng(seed))
        np.testing.assert_allclose(scene.camera.world_to_camera(scene.rig.speaker_positions_m), SPEAKERS, atol=1e-12)
        np.testing.assert_allclose(scene.camera.world_to_camera(scene.rig.microphone_positions_m), MICROPHONES,
                                   atol=1e-12)
        np.testing.assert_array_equal(scene.camera.intrinsics, INTRINSICS)
        points = np.vstack([scene.rig.speaker_positions_m, scene.rig.microphone_positions_m])
        assert (scene.room.signed_distance_to_shell_m(points) >= CAMERA_RIG_WALL_MARGIN_M).all()
        assert scene.room.contains(points).all()
        region = scene.body_region
        outside = np.maximum(np.maximum(region.xy_min_m - points[:, :2], points[:, :2] - region.xy_max_m), 0)
        assert (np.linalg.norm(outside, axis=1) >= CAMERA_RIG_CLEARANCE_M).all()
    with pytest.raises(ValueError, match="camera_rig has 3 speakers"):
        RoomSamplerConfig(camera_rig=rig)
