"""``calibration.json`` of a raw capture (``docs/raw_capture_format.md``): :class:`CaptureCalibration`.

Parsing reads every field as JSON types it, one group of fields per step (format, positions, chirp
plan, speed of sound, camera, pairs, recording, environment, subject), in the order of the format's
page, so the first error a user meets is the first field that is wrong.

The typed reads and the steps for the format, the positions and the camera live in
:mod:`rooms.rig_file`, where ``python -m simulator.generate --rig-file`` reads a calibration.json
with them too; here they raise :class:`pipeline.capture_files.CaptureFormatError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.capture_files import CaptureFormatError
from rooms.rig_file import (
    CALIBRATION_FIELDS as _CALIBRATION_FIELDS, RAW_FORMAT_NAME, RAW_FORMAT_VERSION, CalibrationFields,
    read_calibration_camera as _read_camera, read_calibration_format as _read_format,
    read_calibration_positions as _read_positions,
)
from simulator.signals import ChirpPlan

__all__ = ["CALIBRATION_FILE", "EMPTY_FILE", "JOINTS3D_FILE", "KEYPOINTS_DIR", "RAW_FORMAT_NAME", "RAW_FORMAT_VERSION",
           "RECORDING_FILE", "CaptureCalibration"]

CALIBRATION_FILE = "calibration.json"
RECORDING_FILE = "recording.wav"
EMPTY_FILE = "empty.wav"
KEYPOINTS_DIR = "keypoints"
JOINTS3D_FILE = "joints3d.npy"


@dataclass
class CaptureCalibration:
    """Everything ``calibration.json`` holds (see ``docs/raw_capture_format.md``).

    Attributes:
        speaker_positions_m: (S, 3) camera frame, m; speaker s plays chirp_plan's chirp s.
        microphone_positions_m: (M, 3) camera frame, m; channel m of every WAV is microphone m.
        intrinsics: (3, 3) camera matrix, pixels. image_size_px: (width, height).
        chirp_plan: the emitted chirps (band, speakers, duration = one frame period, rate, taper, guard).
        speed_of_sound_m_s: of the air during the capture.
        cam_to_world: (4, 4) camera pose in a room frame (identity if none).
        pairs: (P, 2) (speaker, microphone) kernels to keep; None = every speaker with every microphone.
        first_sample: sample of recording.wav at which frame 0's chirp period starts (its emission).
        empty_first_sample: the same for empty.wav; None = estimate it from the direct paths
            (:func:`simulator.deconvolution.estimate_emission_offset`).
        wav_full_scale: the physical value of a WAV's full scale: samples are first brought to [-1, 1)
            (:func:`wav_to_full_scale`: integer PCM divided by 2^(bits - 1), float as is), then
            multiplied by it; recording.wav and empty.wav share it.
        environment_id, environment_name: which room.
        height_m, is_minor, age_years, activity: the subject (optional).
    """

    speaker_positions_m: np.ndarray
    microphone_positions_m: np.ndarray
    intrinsics: np.ndarray
    image_size_px: tuple[int, int]
    chirp_plan: ChirpPlan = field(default_factory=ChirpPlan)
    speed_of_sound_m_s: float = 343.2
    cam_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))
    pairs: np.ndarray | None = None
    first_sample: int = 0
    empty_first_sample: int | float | None = 0
    wav_full_scale: float = 1.0
    environment_id: int = 0
    environment_name: str = ""
    height_m: float | None = None
    is_minor: bool = False
    age_years: float | None = None
    activity: str = ""

    @property
    def sample_rate_hz(self) -> float:
        return float(self.chirp_plan.sample_rate_hz)

    @property
    def pair_index(self) -> np.ndarray:
        if self.pairs is not None:
            return np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        S, M = len(self.speaker_positions_m), len(self.microphone_positions_m)
        return np.array([(s, m) for s in range(S) for m in range(M)], dtype=np.int64)

    def to_json(self) -> dict:
        plan = self.chirp_plan
        return {
            "format": RAW_FORMAT_NAME, "version": RAW_FORMAT_VERSION,
            "sample_rate_hz": plan.sample_rate_hz,
            "speed_of_sound_m_s": float(self.speed_of_sound_m_s),
            "speakers_m": np.asarray(self.speaker_positions_m, float).tolist(),
            "microphones_m": np.asarray(self.microphone_positions_m, float).tolist(),
            "pairs": None if self.pairs is None else self.pair_index.tolist(),
            "camera": {"intrinsics": np.asarray(self.intrinsics, float).tolist(),
                       "image_size_px": [int(v) for v in self.image_size_px],
                       "cam_to_world": np.asarray(self.cam_to_world, float).tolist()},
            "chirp_plan": plan.to_dict(),
            "recording": {"file": RECORDING_FILE, "first_sample": int(self.first_sample),
                          "empty_file": EMPTY_FILE, "empty_first_sample": self.empty_first_sample,
                          "wav_full_scale": float(self.wav_full_scale)},
            "environment": {"id": int(self.environment_id), "name": self.environment_name},
            "subject": {"height_m": self.height_m, "is_minor": bool(self.is_minor), "age_years": self.age_years},
            "activity": self.activity,
        }
    @classmethod
    def from_json(cls, data: dict, path: Path | str = CALIBRATION_FILE) -> "CaptureCalibration":
        """Parse and check ``calibration.json``'s content; errors name ``path``, the field and the fix.

        Every field is typed as JSON types it: numbers are JSON numbers (``"96k"`` and ``"343"`` are
        refused, not converted), booleans are ``true`` / ``false`` (``"false"`` is refused, not read as
        true), arrays have their shape, and unknown fields are refused (a misspelt optional field would
        otherwise be ignored without a word).
        """
        read = _CalibrationFields(path)
        read.known("", data, _CALIBRATION_FIELDS)
        _read_format(read, data)
        speakers, microphones = _read_positions(read, data)
        plan = _read_chirp_plan(read, data, len(speakers))
        speed = _read_speed_of_sound(read, data)
        camera = _read_camera(read, data)
        pairs = _read_pairs(read, data, len(speakers), len(microphones))
        recording = _read_recording(read, data)
        environment = _read_environment(read, data)
        subject = _read_subject(read, data)
        activity = ""
        if data.get("activity") is not None:
            activity = read.text("activity", data["activity"], 'give the activity as a string, e.g. "standing"')
        return cls(speaker_positions_m=speakers, microphone_positions_m=microphones, chirp_plan=plan,
                   speed_of_sound_m_s=speed, pairs=pairs, activity=activity, **camera, **recording, **environment,
                   **subject)


# -- the steps of CaptureCalibration.from_json, one per group of fields ------------------------------------------
def _read_chirp_plan(read: _CalibrationFields, data: dict, n_speakers: int) -> ChirpPlan:
    """The chirp plan, checked against the top-level sample_rate_hz and the number of speakers."""
    plan_data = read.section(data, "chirp_plan", _CHIRP_PLAN_FIELDS, required=True)
    plan_args = {}
    if "band_hz" in plan_data:
        plan_args["band_hz"] = tuple(read.array("chirp_plan.band_hz", plan_data["band_hz"], (2,),
                                                "give [low, high] in Hz, e.g. [19000, 32000]"))
    if "n_speakers" in plan_data:
        plan_args["n_speakers"] = read.whole("chirp_plan.n_speakers", plan_data["n_speakers"],
                                             "give the number of speakers", minimum=1)
    for key, zero_allowed, fix in (("duration_s", False, "give one chirp period in seconds, e.g. 0.1"),
                                   ("sample_rate_hz", False, "give the sample rate in Hz, e.g. 96000"),
                                   ("taper_s", True, "give the taper in seconds, e.g. 0.005 (0 for none)"),
                                   ("guard_hz", True, "give the gap between sub-bands in Hz, e.g. 250")):
        if key in plan_data:
            plan_args[key] = read.number(f"chirp_plan.{key}", plan_data[key], fix,
                                         low=0.0, low_open=not zero_allowed)
    try:
        plan = ChirpPlan(**plan_args)
    except (TypeError, ValueError) as err:
        raise CaptureFormatError(f"{read.path}: field chirp_plan is invalid: {err}") from None
    if "sample_rate_hz" in data:
        rate = read.number("sample_rate_hz", data["sample_rate_hz"], "give the sample rate in Hz, e.g. 96000",
                           low=0.0, low_open=True)
        if rate != plan.sample_rate_hz:
            read.conflict("sample_rate_hz", data["sample_rate_hz"],
                          f"differs from chirp_plan.sample_rate_hz = {plan.sample_rate_hz:g}; make them equal")
    if plan.n_speakers != n_speakers:
        read.conflict("chirp_plan.n_speakers", plan.n_speakers,
                      f"but speakers_m lists {n_speakers} speakers; make them agree")
    return plan


def _read_speed_of_sound(read: _CalibrationFields, data: dict) -> float:
    """speed_of_sound_m_s, or the speed at temperature_c (speed_of_sound_m_s wins when both are given)."""
    speed_fix = "give the speed of sound in air in m/s (about 343), or temperature_c instead"
    if "temperature_c" in data:
        from rooms.air import speed_of_sound_m_s

        temperature = read.number("temperature_c", data["temperature_c"],
                                  "give the air temperature in degrees Celsius, e.g. 21.5", low=-50.0, high=60.0)
        speed = float(speed_of_sound_m_s(temperature))
    if "speed_of_sound_m_s" in data:
        speed = read.number("speed_of_sound_m_s", data["speed_of_sound_m_s"], speed_fix, low=300.0, high=380.0,
                            low_open=True, high_open=True)
    elif "temperature_c" not in data:
        read.missing("speed_of_sound_m_s", speed_fix)
    return speed


def _read_pairs(read: _CalibrationFields, data: dict, n_speakers: int, n_microphones: int) -> np.ndarray | None:
    """(P, 2) (speaker, microphone) pairs, each once; None (absent or null) for every pair."""
    pairs_fix = (f"give a list of [speaker, microphone] index pairs below ({n_speakers}, {n_microphones}), "
                 f"each once, or null for all")
    if data.get("pairs") is None:
        return None
    value = data["pairs"]
    if not isinstance(value, list) or not value or \
            any(not isinstance(pair, list) or len(pair) != 2 for pair in value):
        read.fail("pairs", value, pairs_fix)
    pairs = np.array([[read.whole(f"pairs[{i}][{j}]", index, pairs_fix, minimum=0,
                                  maximum=(n_speakers, n_microphones)[j] - 1)
                       for j, index in enumerate(pair)] for i, pair in enumerate(value)], dtype=np.int64)
    if len({tuple(pair) for pair in pairs.tolist()}) != len(pairs):
        read.fail("pairs", value, pairs_fix)
    return pairs


def _read_recording(read: _CalibrationFields, data: dict) -> dict:
    """first_sample, empty_first_sample (an int when whole, None: estimate it) and wav_full_scale."""
    recording = read.section(data, "recording", _RECORDING_FIELDS)
    for key, expected in (("file", RECORDING_FILE), ("empty_file", EMPTY_FILE)):
        if key in recording:
            read.choice(f"recording.{key}", recording[key], (expected,), "the format's file names are fixed")
    first = 0
    if "first_sample" in recording:
        first = read.whole("recording.first_sample", recording["first_sample"],
                           "give the sample of recording.wav where frame 0's chirp period starts", minimum=0)
    empty_first = 0
    if "empty_first_sample" in recording:
        empty_first = recording["empty_first_sample"]
        if empty_first is not None:
            empty_first = read.number("recording.empty_first_sample", empty_first,
                                      "give the sample of empty.wav where a chirp period starts (>= 0), or null "
                                      "to find it from the direct paths", low=0.0)
            empty_first = int(empty_first) if float(empty_first).is_integer() else empty_first
    full_scale = 1.0
    if "wav_full_scale" in recording:
        full_scale = read.number("recording.wav_full_scale", recording["wav_full_scale"],
                                 "give the physical value of the WAVs' full scale (> 0), 1 if unknown",
                                 low=0.0, low_open=True)
    return {"first_sample": first, "empty_first_sample": empty_first, "wav_full_scale": full_scale}


def _read_environment(read: _CalibrationFields, data: dict) -> dict:
    environment = read.section(data, "environment", _ENVIRONMENT_FIELDS)
    environment_id = 0
    if "id" in environment:
        environment_id = read.whole("environment.id", environment["id"], "give the room's number, e.g. 3",
                                    minimum=0)
    environment_name = ""
    if "name" in environment:
        environment_name = read.text("environment.name", environment["name"], "give the room's name as a string")
    return {"environment_id": environment_id, "environment_name": environment_name}


def _read_subject(read: _CalibrationFields, data: dict) -> dict:
    """height_m, age_years (None when absent) and is_minor (from age_years when not given; must agree)."""
    subject = read.section(data, "subject", _SUBJECT_FIELDS)
    height = age = None
    if subject.get("height_m") is not None:
        height = read.number("subject.height_m", subject["height_m"],
                             "give the subject's height in metres, e.g. 1.74 (or null)", low=0.3, high=2.6)
    if subject.get("age_years") is not None:
        age = read.number("subject.age_years", subject["age_years"], "give the subject's age in years (or null)",
                          low=0.0, high=130.0)
    is_minor = False
    if subject.get("is_minor") is not None:
        is_minor = read.boolean("subject.is_minor", subject["is_minor"])
        if age is not None and is_minor != (age < 18):
            read.conflict("subject.is_minor", subject["is_minor"],
                          f"but subject.age_years = {age:g}; make them agree (is_minor is true under 18)")
    elif age is not None:
        is_minor = age < 18
    return {"height_m": height, "age_years": age, "is_minor": is_minor}


_CHIRP_PLAN_FIELDS = ChirpPlan.field_names()
_RECORDING_FIELDS = ("file", "first_sample", "empty_file", "empty_first_sample", "wav_full_scale")
_ENVIRONMENT_FIELDS = ("id", "name")
_SUBJECT_FIELDS = ("height_m", "is_minor", "age_years")


class _CalibrationFields(CalibrationFields):
    """Typed reads of a raw capture's ``calibration.json`` (:class:`rooms.rig_file.CalibrationFields`),
    raising :class:`CaptureFormatError`."""

    def __init__(self, path):
        super().__init__(path, CaptureFormatError)
