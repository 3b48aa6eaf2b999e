"""Damaged real captures, one row each: refused when the capture is opened, with one line naming the file,
the field (or frame) and the fix, the error class the callers rely on, and the capture left byte for byte
as it was.

Each row copies a small valid capture (written once per session in the real formats: a raw capture of
docs/raw_capture_format.md, and the PoseKernel dataset layout) and damages one thing. The last rows run
``python -m network.evaluate`` and ``python -m network.train --finetune real`` on damaged captures and
check what a user sees: exit 2 and one ``error:`` line.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from core.errors import DamagedDataError, InputError
from network.config import get_config
from network.data import DamagedRealDataError, DataError, real_dataset
from pipeline.real_captures import (
    CaptureCalibration, CaptureFormatError, DamagedCaptureError, PoseKernelDataset, RawCapture, project_keypoints,
    write_raw_capture,
)
from simulator.signals import ChirpPlan
from tests.cli_harness import assert_refused, call_main, run_module, snapshot
from tests.helpers import gnd49, write_posekernel_layout

TINY = get_config("tiny")
K = np.array([[914.0, 0, 957.0], [0, 914.0, 547.0], [0, 0, 1]])
FRAMES = 2


# -- valid captures ----------------------------------------------------------------------------------------
def write_valid_raw_capture(folder: Path, plan: ChirpPlan = ChirpPlan(n_speakers=2)) -> Path:
    """2 speakers x 2 microphones, 2 frames: the empty room is every chirp at every microphone (peak 0.4 of
    full scale), each frame adds a delayed copy (the "echo") and a little noise; keypoints and joints of a
    standing pose."""
    from bodies.joints import from_frankmocap49

    rng = np.random.default_rng(0)
    speakers = np.array([[-1.5, 0.0, 1.0], [1.5, 0.0, 1.0]])
    microphones = np.array([[-1.4, 0.1, 1.0], [1.4, 0.1, 1.0]])
    empty = 0.2 * np.repeat(plan.chirps().sum(0)[None], len(microphones), axis=0)
    recordings = np.stack([empty + 0.01 * np.roll(empty, 300 + 50 * f, axis=1)
                           + 1e-4 * rng.standard_normal(empty.shape) for f in range(FRAMES)])
    joints = np.stack([from_frankmocap49(gnd49(f, 1)) for f in range(FRAMES)])
    keypoints = np.stack([project_keypoints(j, K, (1920, 1080)) for j in joints])
    calibration = CaptureCalibration(speaker_positions_m=speakers, microphone_positions_m=microphones, intrinsics=K,
                                     image_size_px=(1920, 1080), chirp_plan=plan, environment_id=3,
                                     environment_name="lab", height_m=1.74, is_minor=False, age_years=31.0,
                                     activity="standing")
    return write_raw_capture(folder, recordings, empty, calibration, keypoints, joints)


def write_valid_posekernel(root: Path) -> Path:
    """The PoseKernel layout: environment1 and environment2, 2 frames each (a point reflector at the pelvis)."""
    frames = [str(frame) for frame in range(FRAMES)]
    return write_posekernel_layout(root, {"environment1": frames, "environment2": frames})


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    base = tmp_path_factory.mktemp("capture-templates")
    return {"raw": write_valid_raw_capture(base / "raw"), "posekernel": write_valid_posekernel(base / "PoseKernel")}


def copy_of(templates, kind: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(templates[kind], tmp_path / kind))


# -- ways to damage a capture ------------------------------------------------------------------------------
def calibration_edit(change):
    """Rewrite calibration.json with ``change(data)`` applied (Python's json writes NaN as NaN, as some tools do)."""
    def damage(folder: Path) -> None:
        path = folder / "calibration.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return damage


def setter(*keys_and_value):
    """``setter("subject", "is_minor", "false")`` -> data["subject"]["is_minor"] = "false"."""
    *keys, last, value = keys_and_value

    def change(data: dict) -> None:
        for key in keys:
            data = data[key]
        data[last] = value
    return change


def remover(*keys):
    def change(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        del data[keys[-1]]
    return change


def write_bytes(relative: str, content: bytes):
    return lambda folder: (folder / relative).write_bytes(content)


def truncate(relative: str, keep_bytes: int):
    def damage(folder: Path) -> None:
        path = folder / relative
        path.write_bytes(path.read_bytes()[:keep_bytes])
    return damage


def unlink(relative: str):
    return lambda folder: (folder / relative).unlink()


def save_npy(relative: str, make, allow_pickle: bool = False):
    """np.save(folder / relative, make(old array or None))."""
    def damage(folder: Path) -> None:
        path = folder / relative
        old = np.load(path) if path.exists() and not allow_pickle else None
        np.save(path, make(old), allow_pickle=allow_pickle)
    return damage


def wav_edit(name: str, change):
    """Rewrite a WAV with ``change(rate, samples) -> (rate, samples)``."""
    def damage(folder: Path) -> None:
        rate, samples = scipy.io.wavfile.read(folder / name)
        scipy.io.wavfile.write(folder / name, *change(rate, samples.copy()))
    return damage


def set_channel(samples, channel, value):
    samples[:, channel] = value
    return samples


def int16_at_quarter_scale(folder: Path) -> None:
    """recording.wav as 16-bit PCM at 1/4 of the float values, calibration saying full scale = 4: the
    recording alone is read right, but the float empty room is then multiplied by 4 too."""
    rate, samples = scipy.io.wavfile.read(folder / "recording.wav")
    scipy.io.wavfile.write(folder / "recording.wav", rate, np.round(samples / 4 * 32768).astype(np.int16))
    calibration_edit(setter("recording", "wav_full_scale", 4.0))(folder)


def keypoints_edit(frame: int, change):
    """Rewrite keypoints/<frame>_keypoints.json with ``change(data)`` applied."""
    def damage(folder: Path) -> None:
        path = folder / "keypoints" / f"{frame:06d}_keypoints.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return damage


def keypoint_value(index: int, value):
    def change(data: dict) -> None:
        data["people"][0]["pose_keypoints_2d"][index] = value
    return change


def one_line(error: Exception, words) -> None:
    text = str(error)
    assert "\n" not in text, text
    for word in words:
        assert word.lower() in text.lower(), (word, text)


# -- raw captures: calibration.json, the WAVs, keypoints, joints3d.npy ---------------------------------------
CAL = "calibration.json"
RAW_ROWS = [
    # calibration.json: every field typed as JSON types it
    pytest.param(calibration_edit(setter("speakers_m", "abc")), CaptureFormatError,
                 [CAL, 'field speakers_m = "abc"', "[x, y, z] positions in metres"], id="speakers_m-string"),
    pytest.param(calibration_edit(setter("speakers_m", None)), CaptureFormatError,
                 [CAL, "field speakers_m = null", "[x, y, z]"], id="speakers_m-null"),
    pytest.param(calibration_edit(setter("speakers_m", [["-1.5", "0", "1"], ["1.5", "0", "1"]])), CaptureFormatError,
                 [CAL, "field speakers_m", '"-1.5"', "[x, y, z]"], id="speakers_m-string-numbers"),
    pytest.param(calibration_edit(setter("speakers_m", [[-1.5, 0.0], [1.5, 0.0]])), CaptureFormatError,
                 [CAL, "field speakers_m", "shape (2, 2)", "[x, y, z]"], id="speakers_m-2d-points"),
    pytest.param(calibration_edit(setter("speakers_m", [[float("nan"), 0.0, 1.0], [1.5, 0.0, 1.0]])),
                 CaptureFormatError, [CAL, "field speakers_m", "NaN"], id="speakers_m-nan"),
    pytest.param(calibration_edit(setter("microphones_m", [[True, 0, 1], [1, 0, 1]])), CaptureFormatError,
                 [CAL, "field microphones_m", "true"], id="microphones_m-boolean"),
    pytest.param(calibration_edit(remover("microphones_m")), CaptureFormatError,
                 [CAL, "field microphones_m is missing"], id="microphones_m-missing"),
    pytest.param(calibration_edit(setter("sample_rate_hz", "96k")), CaptureFormatError,
                 [CAL, 'field sample_rate_hz = "96k"', "not a string"], id="sample_rate_hz-96k"),
    pytest.param(calibration_edit(setter("sample_rate_hz", None)), CaptureFormatError,
                 [CAL, "field sample_rate_hz = null", "sample rate in Hz"], id="sample_rate_hz-null"),
    pytest.param(calibration_edit(setter("speed_of_sound_m_s", "343")), CaptureFormatError,
                 [CAL, 'field speed_of_sound_m_s = "343"', "m/s"], id="speed-string"),
    pytest.param(calibration_edit(setter("speed_of_sound_m_s", float("nan"))), CaptureFormatError,
                 [CAL, "field speed_of_sound_m_s", "finite", "m/s"], id="speed-nan"),
    pytest.param(calibration_edit(setter("speed_of_sound_m_s", 34320)), CaptureFormatError,
                 [CAL, "field speed_of_sound_m_s = 34320", "about 343"], id="speed-out-of-range"),
    pytest.param(calibration_edit(lambda c: (c.pop("speed_of_sound_m_s"), c.update(temperature_c="21"))),
                 CaptureFormatError, [CAL, 'field temperature_c = "21"', "degrees Celsius"], id="temperature-string"),
    pytest.param(calibration_edit(setter("pairs", "all")), CaptureFormatError,
                 [CAL, 'field pairs = "all"', "[speaker, microphone]"], id="pairs-string"),
    pytest.param(calibration_edit(setter("pairs", [[0, 0.5]])), CaptureFormatError,
                 [CAL, "field pairs[0][1] = 0.5", "whole number"], id="pairs-fraction"),
    pytest.param(calibration_edit(setter("pairs", [[0, 1], [0, 1]])), CaptureFormatError,
                 [CAL, "field pairs", "each once"], id="pairs-twice"),
    pytest.param(calibration_edit(setter("camera", [])), CaptureFormatError,
                 [CAL, "field camera = []", "object"], id="camera-list"),
    pytest.param(calibration_edit(setter("camera", "intrinsics", [[914.0, 0, 957.0], [0, 914.0, 547.0]])),
                 CaptureFormatError, [CAL, "field camera.intrinsics", "[[fx, 0, cx]"], id="intrinsics-2x3"),
    pytest.param(calibration_edit(setter("camera", "image_size_px", ["1920", "1080"])), CaptureFormatError,
                 [CAL, 'field camera.image_size_px[0] = "1920"', "[width, height]"], id="image_size-strings"),
    pytest.param(calibration_edit(setter("camera", "cam_to_world", "identity")), CaptureFormatError,
                 [CAL, 'field camera.cam_to_world = "identity"', "4 x 4"], id="cam_to_world-string"),
    pytest.param(calibration_edit(setter("camera", "cam_to_world", (2 * np.eye(4)).tolist())), CaptureFormatError,
                 [CAL, "field camera.cam_to_world", "rotation"], id="cam_to_world-not-rigid"),
    pytest.param(calibration_edit(setter("chirp_plan", "n_speakers", "2")), CaptureFormatError,
                 [CAL, 'field chirp_plan.n_speakers = "2"', "number of speakers"], id="n_speakers-string"),
    pytest.param(calibration_edit(setter("chirp_plan", "n_speakers", 2.5)), CaptureFormatError,
                 [CAL, "field chirp_plan.n_speakers = 2.5", "whole number"], id="n_speakers-fraction"),
    pytest.param(calibration_edit(setter("chirp_plan", "duration_s", None)), CaptureFormatError,
                 [CAL, "field chirp_plan.duration_s = null", "seconds"], id="duration-null"),
    pytest.param(calibration_edit(setter("chirp_plan", "band_hz", [19000])), CaptureFormatError,
                 [CAL, "field chirp_plan.band_hz", "[low, high]"], id="band-one-number"),
    pytest.param(calibration_edit(setter("chirp_plan", "durationn_s", 0.1)), CaptureFormatError,
                 [CAL, "field chirp_plan.durationn_s is not part of the format", "did you mean chirp_plan.duration_s"],
                 id="chirp_plan-misspelt"),
    pytest.param(calibration_edit(setter("recording", "first_sample", "0")), CaptureFormatError,
                 [CAL, 'field recording.first_sample = "0"', "sample of recording.wav"], id="first_sample-string"),
    pytest.param(calibration_edit(setter("recording", "first_sample", -5)), CaptureFormatError,
                 [CAL, "field recording.first_sample = -5", ">= 0"], id="first_sample-negative"),
    pytest.param(calibration_edit(setter("recording", "empty_first_sample", "auto")), CaptureFormatError,
                 [CAL, 'field recording.empty_first_sample = "auto"', "or null"], id="empty_first_sample-string"),
    pytest.param(calibration_edit(setter("recording", "wav_full_scale", 0)), CaptureFormatError,
                 [CAL, "field recording.wav_full_scale = 0", "> 0"], id="full_scale-zero"),
    pytest.param(calibration_edit(setter("recording", "file", "take1.wav")), CaptureFormatError,
                 [CAL, 'field recording.file = "take1.wav"', '"recording.wav"'], id="recording-file-renamed"),
    pytest.param(calibration_edit(setter("environment", "id", "3")), CaptureFormatError,
                 [CAL, 'field environment.id = "3"', "room's number"], id="environment-id-string"),
    pytest.param(calibration_edit(setter("environment", "name", 3)), CaptureFormatError,
                 [CAL, "field environment.name = 3", "string"], id="environment-name-number"),
    pytest.param(calibration_edit(setter("subject", "is_minor", "false")), CaptureFormatError,
                 [CAL, 'field subject.is_minor = "false"', "true or false", "without quotes"], id="is_minor-string"),
    pytest.param(calibration_edit(setter("subject", "is_minor", 0)), CaptureFormatError,
                 [CAL, "field subject.is_minor = 0", "true or false"], id="is_minor-zero"),
    pytest.param(calibration_edit(setter("subject", "age_years", 12)), CaptureFormatError,
                 [CAL, "field subject.is_minor = false", "age_years = 12", "agree"], id="is_minor-disagrees-with-age"),
    pytest.param(calibration_edit(setter("subject", "height_m", "1.74")), CaptureFormatError,
                 [CAL, 'field subject.height_m = "1.74"', "metres"], id="height-string"),
    pytest.param(calibration_edit(setter("subject", "height_m", 174)), CaptureFormatError,
                 [CAL, "field subject.height_m = 174", "metres"], id="height-centimetres"),
    pytest.param(calibration_edit(setter("subject", "age_years", "31")), CaptureFormatError,
                 [CAL, 'field subject.age_years = "31"', "years"], id="age-string"),
    pytest.param(calibration_edit(setter("activity", 5)), CaptureFormatError,
                 [CAL, "field activity = 5", "string"], id="activity-number"),
    pytest.param(calibration_edit(setter("version", "1")), CaptureFormatError,
                 [CAL, 'field version = "1"', "format version"], id="version-string"),
    pytest.param(calibration_edit(setter("speed_of_sound", 343.0)), CaptureFormatError,
                 [CAL, "field speed_of_sound is not part of the format", "did you mean speed_of_sound_m_s"],
                 id="top-level-misspelt"),
    pytest.param(write_bytes(CAL, b"[1, 2, 3]"), CaptureFormatError, [CAL, "JSON list", "object"], id="json-list"),
    pytest.param(write_bytes(CAL, b'{"speakers_m": [[0, 0, 1]],'), CaptureFormatError, [CAL, "not valid JSON"],
                 id="json-cut-short"),
    pytest.param(write_bytes(CAL, b"\xff\xfe\x00\x01binary"), CaptureFormatError, [CAL, "not valid JSON"],
                 id="json-binary"),
    pytest.param(unlink(CAL), CaptureFormatError, [CAL, "missing"], id="calibration-missing"),
    # the WAV pair
    pytest.param(wav_edit("recording.wav", lambda r, d: (48_000, d)), CaptureFormatError,
                 ["recording.wav is sampled at 48000 Hz", "empty.wav at 96000 Hz"], id="wav-pair-rates"),
    pytest.param(wav_edit("empty.wav", lambda r, d: (r, d[:, :1])), CaptureFormatError,
                 ["recording.wav has 2 channels", "empty.wav has 1"], id="wav-pair-channels"),
    pytest.param(int16_at_quarter_scale, CaptureFormatError,
                 ["recording.wav (16-bit PCM)", "times as loud as", "empty.wav (32-bit float)", "wav_full_scale"],
                 id="wav-pair-scales"),
    pytest.param(lambda f: [wav_edit(n, lambda r, d: (48_000, d))(f) for n in ("recording.wav", "empty.wav")],
                 CaptureFormatError, ["recording.wav: sample rate is 48000 Hz", "sample_rate_hz is 96000"],
                 id="wav-rate-vs-calibration"),
    pytest.param(wav_edit("recording.wav", lambda r, d: (r, set_channel(d, 1, np.nan))), CaptureFormatError,
                 ["recording.wav: channel 1 holds NaN"], id="wav-nan"),
    pytest.param(wav_edit("empty.wav", lambda r, d: (r, set_channel(d, 0, 0.0))), CaptureFormatError,
                 ["empty.wav: channel(s) [0] are silent"], id="wav-silent-channel"),
    pytest.param(truncate("recording.wav", 50_000), DamagedCaptureError, ["recording.wav: truncated", "cut short"],
                 id="wav-cut-short"),
    pytest.param(write_bytes("empty.wav", b"not a wav file at all"), DamagedCaptureError,
                 ["empty.wav: not a readable WAV"], id="wav-not-a-wav"),
    pytest.param(unlink("recording.wav"), CaptureFormatError, ["recording.wav: missing"], id="wav-missing"),
    # keypoint files
    pytest.param(unlink("keypoints/000001_keypoints.json"), CaptureFormatError,
                 ["000001_keypoints.json: missing"], id="keypoints-missing"),
    pytest.param(write_bytes("keypoints/000001_keypoints.json", b'{"people": [{"pose_keypoints_2d": [1, 2'),
                 CaptureFormatError, ["000001_keypoints.json", "not valid JSON"], id="keypoints-cut-short"),
    pytest.param(keypoints_edit(1, keypoint_value(0, "957.0")), CaptureFormatError,
                 ["000001_keypoints.json", 'pose_keypoints_2d[0] = "957.0"', "numbers"], id="keypoints-string"),
    pytest.param(keypoints_edit(0, keypoint_value(5, True)), CaptureFormatError,
                 ["000000_keypoints.json", "pose_keypoints_2d[5] = true"], id="keypoints-boolean"),
    pytest.param(keypoints_edit(0, keypoint_value(2, None)), CaptureFormatError,
                 ["000000_keypoints.json", "pose_keypoints_2d[2] = null"], id="keypoints-null"),
    pytest.param(keypoints_edit(0, keypoint_value(3, float("nan"))), CaptureFormatError,
                 ["000000_keypoints.json", "pose_keypoints_2d[3] = NaN", "finite"], id="keypoints-nan"),
    pytest.param(keypoints_edit(0, lambda d: d["people"][0].update(pose_keypoints_2d=[1.0] * 20)), CaptureFormatError,
                 ["000000_keypoints.json", "pose_keypoints_2d holds 20 values", "75 numbers"], id="keypoints-short"),
    pytest.param(keypoints_edit(0, lambda d: d.update(people={"0": []})), CaptureFormatError,
                 ["000000_keypoints.json", '"people" list'], id="keypoints-people-not-a-list"),
    # joints3d.npy (optional ground truth)
    pytest.param(truncate("joints3d.npy", 200), DamagedCaptureError, ["joints3d.npy: truncated"],
                 id="joints3d-cut-short"),
    pytest.param(save_npy("joints3d.npy", lambda old: np.zeros((FRAMES, 24, 3))), CaptureFormatError,
                 ["joints3d.npy: has shape (2, 24, 3)", "(frames, 49, 3)"], id="joints3d-shape"),
    pytest.param(save_npy("joints3d.npy", lambda old: old[:1]), CaptureFormatError,
                 ["joints3d.npy: holds 1 poses", "2 frames"], id="joints3d-too-few"),
    pytest.param(save_npy("joints3d.npy", lambda old: np.where(np.arange(15)[:, None] == 4, np.nan, old)),
                 CaptureFormatError, ["joints3d.npy: contains NaN"], id="joints3d-nan"),
    pytest.param(save_npy("joints3d.npy", lambda old: old * 1000), CaptureFormatError,
                 ["joints3d.npy", "millimetres"], id="joints3d-millimetres"),
    pytest.param(save_npy("joints3d.npy", lambda old: np.array([None] * 3, dtype=object), allow_pickle=True),
                 CaptureFormatError, ["joints3d.npy: holds object values", "numbers"], id="joints3d-pickled-objects"),
]


@pytest.mark.parametrize("damage, error, words", RAW_ROWS)
def test_a_damaged_raw_capture_is_refused_when_opened(templates, tmp_path, damage, error, words):
    folder = copy_of(templates, "raw", tmp_path)
    damage(folder)
    before = snapshot(folder)
    with pytest.raises(InputError) as caught:
        RawCapture(folder)
    assert type(caught.value) is error, (type(caught.value), str(caught.value))
    one_line(caught.value, words)
    assert snapshot(folder) == before


# -- the PoseKernel layout -----------------------------------------------------------------------------------
FRAME = "environment1/1/"
RIR, GND, SENSORS_FILE = FRAME + "rir.npy", FRAME + "gnd.npy", "environment1/audio_sensor_loc.npy"
RECOPY = "re-copy frame 1 of environment1"
POSEKERNEL_ROWS = [
    pytest.param(unlink(RIR), CaptureFormatError, [RIR + ": missing", RECOPY], id="rir-missing"),
    pytest.param(truncate(RIR, 300), DamagedCaptureError, [RIR + ": truncated", "cut short", RECOPY],
                 id="rir-cut-short"),
    pytest.param(write_bytes(RIR, b""), DamagedCaptureError, [RIR + ": not a readable .npy", RECOPY], id="rir-empty"),
    pytest.param(write_bytes(RIR, b"0.1 0.2 0.3\n"), DamagedCaptureError, [RIR + ": not a readable .npy"],
                 id="rir-text"),
    pytest.param(save_npy(RIR, lambda old: old[:3]), CaptureFormatError, [RIR + ": has shape (3, 2400)", "(4, T)",
                                                                          RECOPY], id="rir-three-pairs"),
    pytest.param(save_npy(RIR, lambda old: old.T), CaptureFormatError, [RIR + ": has shape (2400, 4)", "transposed"],
                 id="rir-transposed"),
    pytest.param(save_npy(RIR, lambda old: old.ravel()), CaptureFormatError, [RIR + ": has shape (9600,)"],
                 id="rir-flat"),
    pytest.param(save_npy(RIR, lambda old: old.astype(complex)), CaptureFormatError,
                 [RIR + ": holds complex128 values", "numbers"], id="rir-complex"),
    pytest.param(save_npy(RIR, lambda old: np.full((4, 10), "abc")), CaptureFormatError,
                 [RIR + ": holds <U3 values"], id="rir-strings"),
    pytest.param(save_npy(RIR, lambda old: np.array([{"rir": 1}], dtype=object), allow_pickle=True),
                 CaptureFormatError, [RIR + ": holds object values"], id="rir-pickled-objects"),
    pytest.param(save_npy(RIR, lambda old: np.where(np.arange(2400) == 7, np.nan, old)), CaptureFormatError,
                 [RIR + ": contains NaN", "index (0, 7)"], id="rir-nan"),
    pytest.param(save_npy(RIR, lambda old: old * (np.arange(4) != 2)[:, None]), CaptureFormatError,
                 [RIR + ": row(s) [2] are all zero"], id="rir-silent-pair"),
    pytest.param(unlink(GND), CaptureFormatError, [GND + ": missing", RECOPY], id="gnd-missing"),
    pytest.param(truncate(GND, 150), DamagedCaptureError, [GND + ": truncated"], id="gnd-cut-short"),
    pytest.param(save_npy(GND, lambda old: old[:24]), CaptureFormatError, [GND + ": has shape (24, 3)", "(49, 3)"],
                 id="gnd-shape"),
    pytest.param(save_npy(GND, lambda old: np.stack([old, old])), CaptureFormatError,
                 [GND + ": has shape (2, 49, 3)", "one pose"], id="gnd-two-poses"),
    pytest.param(save_npy(GND, lambda old: np.where(np.arange(49)[:, None] == 39, np.inf, old)), CaptureFormatError,
                 [GND + ": contains NaN/inf", "index (39, 0)"], id="gnd-inf"),
    pytest.param(save_npy(GND, lambda old: old * 1000), CaptureFormatError, [GND, "millimetres"],
                 id="gnd-millimetres"),
    pytest.param(save_npy(SENSORS_FILE, lambda old: old[:, :2]), CaptureFormatError,
                 [SENSORS_FILE + ": has shape (4, 2)", "(pairs, 3)"], id="sensors-2d"),
    pytest.param(truncate(SENSORS_FILE, 140), DamagedCaptureError, [SENSORS_FILE + ": truncated"],
                 id="sensors-cut-short"),
]


@pytest.mark.parametrize("damage, error, words", POSEKERNEL_ROWS)
def test_a_damaged_posekernel_frame_is_refused_when_opened(templates, tmp_path, damage, error, words):
    root = copy_of(templates, "posekernel", tmp_path)
    damage(root)
    before = snapshot(root)
    with pytest.raises(InputError) as caught:
        PoseKernelDataset(root, detector=None)
    assert type(caught.value) is error, (type(caught.value), str(caught.value))
    one_line(caught.value, words)
    # the network's loader reports the same line, damage still recognisable as damage
    with pytest.raises(DataError) as through_network:
        real_dataset(root, TINY, detector=None)
    assert str(through_network.value) == str(caught.value)
    assert type(through_network.value) is (DamagedRealDataError if error is DamagedCaptureError else DataError)
    assert isinstance(through_network.value, DamagedDataError) == (error is DamagedCaptureError)
    assert snapshot(root) == before


def test_hidden_folders_are_not_frames_and_a_good_capture_reads(templates, tmp_path):
    """The control rows: the templates read without complaint, and a notebook's .ipynb_checkpoints in an
    environment folder is not taken for a broken frame."""
    root = copy_of(templates, "posekernel", tmp_path)
    (root / "environment1" / ".ipynb_checkpoints").mkdir()
    assert len(PoseKernelDataset(root, detector=None)) == 2 * FRAMES
    capture = RawCapture(templates["raw"])
    assert len(capture) == FRAMES and capture.calibration.is_minor is False
    assert capture[1].keypoints2d.shape == (15, 3)


def test_data_at_another_rate_than_the_network_is_refused_before_any_frame_is_read(templates, tmp_path):
    """Delays are read as distances at the config's rate: a 48 kHz capture (or a 48 kHz config for the
    96 kHz PoseKernel dataset) is refused when the data set is built, not in the middle of an epoch."""
    raw = write_valid_raw_capture(tmp_path / "raw48k", ChirpPlan(n_speakers=2, band_hz=(15_000.0, 23_000.0),
                                                                 sample_rate_hz=48_000.0))
    with pytest.raises(DataError, match=r"raw48k/calibration\.json: kernels are sampled at 48000 Hz.*96000 Hz"):
        real_dataset(raw, TINY)
    with pytest.raises(DataError, match=r"PoseKernel.*recorded at 96 kHz.*expects sample_rate_hz = 48000 Hz"):
        real_dataset(templates["posekernel"], TINY.replace(sample_rate_hz=48_000.0), detector=None)


# -- the command lines ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained "tiny" model saved as network.train saves one (no training needed to test refusals)."""
    import torch

    from network import train as tr
    from network.model import PoseKernelLifter

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.pt"
    tr.save_checkpoint(path, {"format": tr.CHECKPOINT_FORMAT, "version": tr.CHECKPOINT_VERSION, "phase": "pretrain",
                              "epoch": 1, "config": TINY.to_dict(), "model": PoseKernelLifter(TINY).state_dict(),
                              "data": {"source": "synth", "pair_counts": [4]}})
    return path


def evaluate_argv(ckpt, data, out):
    return ["--checkpoint", str(ckpt), "--data", str(data), "--split", "all", "--out", str(out), "--no-progress",
            "--device", "cpu"]


def finetune_argv(ckpt, data, out):
    return ["--finetune", "real", "--real", str(data), "--init", str(ckpt), "--out", str(out), "--epochs", "1",
            "--config", "tiny", "--batch-size", "2", "--workers", "0", "--no-progress", "--device", "cpu"]


CLI_ROWS = [
    pytest.param("network.evaluate", evaluate_argv, "raw", calibration_edit(setter("subject", "is_minor", "false")),
                 [CAL, 'subject.is_minor = "false"', "true or false"], id="evaluate-raw-is_minor-string"),
    pytest.param("network.evaluate", evaluate_argv, "posekernel", truncate(RIR, 300),
                 [RIR + ": truncated", RECOPY], id="evaluate-posekernel-rir-cut-short"),
    pytest.param("network.train", finetune_argv, "posekernel", save_npy(GND, lambda old: old[:24]),
                 [GND + ": has shape (24, 3)"], id="finetune-posekernel-gnd-shape"),
    pytest.param("network.train", finetune_argv, "raw", calibration_edit(setter("speakers_m", "abc")),
                 [CAL, 'speakers_m = "abc"', "[x, y, z]"], id="finetune-raw-speakers_m-string"),
]


@pytest.mark.parametrize("module, argv, kind, damage, words", CLI_ROWS)
def test_a_command_refuses_a_damaged_capture_with_one_line(templates, checkpoint, tmp_path, module, argv, kind,
                                                         damage, words):
    data = copy_of(templates, kind, tmp_path)
    damage(data)
    before = snapshot(data, checkpoint)
    outcome = call_main(module, argv(checkpoint, data, tmp_path / "out"))
    assert_refused(outcome, *words)
    assert snapshot(data, checkpoint) == before


def test_as_typed_evaluate_refuses_a_damaged_capture(templates, checkpoint, tmp_path):
    """The same as a user runs it: a separate process, exit 2, one line, no traceback."""
    data = copy_of(templates, "raw", tmp_path)
    calibration_edit(setter("sample_rate_hz", "96k"))(data)
    before = snapshot(data)
    outcome = run_module("network.evaluate", evaluate_argv(checkpoint, data, tmp_path / "out"), cwd=tmp_path,
                         timeout=300)
    assert_refused(outcome, CAL, 'sample_rate_hz = "96k"')
    assert snapshot(data) == before
