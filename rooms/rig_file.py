"""Rig files: a user's own speakers, microphones and camera, known in the camera frame.

``python -m simulator.generate --rig-file FILE`` simulates such a rig, carried by its camera, in
sampled rooms (:class:`rooms.rig.CameraRig`, ``RoomSamplerConfig.camera_rig``). FILE is

* a raw capture's ``calibration.json`` (``docs/raw_capture_format.md``): ``speakers_m``,
  ``microphones_m`` and the camera's ``intrinsics`` and ``image_size_px``; or
* a PoseKernel environment's ``audio_sensor_loc.npy``: (pairs, 3) co-located speaker/microphone
  positions (the camera is the dataset's, the room sampler's default Azure Kinect colour camera).

:func:`read_rig_file` reads and checks the file whole before anything else happens; an error is one
line naming the file, the field and the fix (:class:`RigFileError`). :meth:`RigFile.to_dict` is the
file's content as a generator records it in its store, and :meth:`RigFile.from_dict` reads that back
with the same checks.

This module also holds the typed reads of ``calibration.json`` (:class:`CalibrationFields`) and the
steps that read its format, positions and camera: ``pipeline.capture_calibration`` reads a raw
capture's calibration with them, so a rig file and a raw capture are held to the same rules (numbers
are JSON numbers, arrays have their shape, values are finite, unknown fields are refused).
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np

from core.checks import check_finite_array, check_number, check_whole
from core.errors import InputError
from core.npy_files import npy_header, read_npy

from .errors import RoomInputError
from .rig import CameraRig

__all__ = ["CALIBRATION_FIELDS", "CAMERA_FIELDS", "RAW_FORMAT_NAME", "RAW_FORMAT_VERSION", "RIG_FILE_KINDS",
           "CalibrationFields", "RigFile", "RigFileError", "read_calibration_camera", "read_calibration_format",
           "read_calibration_positions", "read_rig_file"]

RAW_FORMAT_NAME = "posekernel-raw-capture"
RAW_FORMAT_VERSION = 1

#: The fields of calibration.json (docs/raw_capture_format.md) and of its "camera" object.
CALIBRATION_FIELDS = ("format", "version", "sample_rate_hz", "speed_of_sound_m_s", "temperature_c", "speakers_m",
                      "microphones_m", "pairs", "camera", "chirp_plan", "recording", "environment", "subject",
                      "activity", "notes")
CAMERA_FIELDS = ("intrinsics", "image_size_px", "cam_to_world")

#: What a rig file can be: a raw capture's calibration.json, or a PoseKernel environment's audio_sensor_loc.npy.
RIG_FILE_KINDS = ("calibration", "audio_sensor_loc")
_WHAT_TO_GIVE = ("give a raw capture's calibration.json (docs/raw_capture_format.md) or a PoseKernel environment's "
                 "audio_sensor_loc.npy")


class RigFileError(RoomInputError):
    """A rig file is missing, unreadable or malformed; the message names the file, the field and the fix."""


# -- typed reads of calibration.json --------------------------------------------------------------------------
def _json_text(value) -> str:
    """A value as the user typed it in JSON (``"abc"``, ``null``, ``false``), shortened."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_json_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_tree(value, depth: int) -> bool:
    """True for ``depth`` levels of JSON lists ending in JSON numbers (not strings, booleans or null)."""
    if depth == 0:
        return _is_json_number(value)
    return isinstance(value, list) and all(_number_tree(item, depth - 1) for item in value)


class CalibrationFields:
    """Typed reads of ``calibration.json``: each checks one field and raises one line naming the file, the
    field as the user wrote it (``camera.intrinsics``), its value in JSON and the fix.

    ``error``: the class raised (``pipeline.capture_files.CaptureFormatError`` for a raw capture,
    :class:`RigFileError` for a rig file).
    """

    def __init__(self, path, error: type[InputError] = RigFileError):
        self.path = path
        self.error = error

    def fail(self, name: str, value, fix: str) -> NoReturn:
        raise self.error(f"{self.path}: field {name} = {_json_text(value)}: {fix}")

    def conflict(self, name: str, value, text: str) -> NoReturn:
        """A well-typed value that contradicts another field."""
        raise self.error(f"{self.path}: field {name} = {_json_text(value)} {text}")

    def missing(self, name: str, fix: str) -> NoReturn:
        raise self.error(f"{self.path}: field {name} is missing; {fix} (docs/raw_capture_format.md)")

    def required(self, mapping: dict, key: str, fix: str, prefix: str = ""):
        if key not in mapping:
            self.missing(prefix + key, fix)
        return mapping[key]

    def known(self, prefix: str, mapping: dict, names: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"did you mean {prefix}{close[0]}? " if close else ""
                raise self.error(f"{self.path}: field {prefix}{key} is not part of the format; {hint}"
                                 f"the fields are {', '.join(prefix + n for n in names)} "
                                 f"(docs/raw_capture_format.md)")

    def section(self, data: dict, key: str, names: tuple[str, ...], required: bool = False) -> dict:
        """A nested object (``camera``, ``recording``, ...); absent is {} unless required."""
        if key not in data:
            if not required:
                return {}
            self.missing(key, f"give an object with {', '.join(names)}")
        value = data[key]
        if not isinstance(value, dict):
            self.fail(key, value, f"give an object with the fields {', '.join(names)}")
        self.known(key + ".", value, names)
        return value

    def number(self, name: str, value, fix: str, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
        if not _is_json_number(value):
            self.fail(name, value, fix + " (a JSON number, not a string)" if isinstance(value, str) else fix)
        try:
            return check_number(f"{self.path}: field {name}", value, low, high, low_open=low_open,
                                high_open=high_open, error=self.error)
        except self.error as err:
            raise self.error(f"{err}; {fix}") from None

    def whole(self, name: str, value, fix: str, minimum: int | None = None, maximum: int | None = None) -> int:
        if not _is_json_number(value):
            self.fail(name, value, fix + " (a JSON number, not a string)" if isinstance(value, str) else fix)
        try:
            return check_whole(f"{self.path}: field {name}", value, minimum, maximum, error=self.error)
        except self.error as err:
            raise self.error(f"{err}; {fix}") from None

    def boolean(self, name: str, value) -> bool:
        if not isinstance(value, bool):
            self.fail(name, value, "give true or false (JSON booleans, without quotes)")
        return value

    def text(self, name: str, value, fix: str) -> str:
        if not isinstance(value, str):
            self.fail(name, value, fix)
        return value

    def choice(self, name: str, value, choices: tuple, why: str) -> None:
        if not isinstance(value, str) or value not in choices:
            self.fail(name, value, f"give {' or '.join(json.dumps(c) for c in choices)} ({why})")

    def array(self, name: str, value, shape: tuple, fix: str) -> np.ndarray:
        """Nested JSON lists of numbers of ``shape`` (None: any length >= 1 on that axis), finite."""
        if not _number_tree(value, len(shape)):
            self.fail(name, value, fix)
        try:
            array = check_finite_array(f"{self.path}: field {name}", value, shape, error=self.error)
        except self.error as err:
            raise self.error(f"{err}; {fix}") from None
        if array.size == 0:
            self.fail(name, value, fix)
        return array


def read_calibration_format(read: CalibrationFields, data: dict) -> None:
    """``format`` and ``version``, when given, must be this format's."""
    if "format" in data:
        read.choice("format", data["format"], (RAW_FORMAT_NAME,), "this reader reads raw captures")
    if "version" in data and read.whole("version", data["version"], "give the format version, 1") != \
            RAW_FORMAT_VERSION:
        read.fail("version", data["version"], f"this reader reads version {RAW_FORMAT_VERSION}")


def read_calibration_positions(read: CalibrationFields, data: dict) -> tuple[np.ndarray, np.ndarray]:
    """(S, 3) ``speakers_m`` and (M, 3) ``microphones_m``, camera frame, m."""
    positions = "give a list of [x, y, z] positions in metres, camera frame"
    speakers = read.array("speakers_m", read.required(data, "speakers_m", positions), (None, 3), positions)
    microphones = read.array("microphones_m", read.required(data, "microphones_m", positions), (None, 3),
                             positions)
    return speakers, microphones


def read_calibration_camera(read: CalibrationFields, data: dict) -> dict:
    """``camera``: intrinsics (3, 3), image_size_px (width, height) and cam_to_world (4, 4) (identity if absent)."""
    camera = read.section(data, "camera", CAMERA_FIELDS, required=True)
    intrinsics_fix = "give [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels"
    intrinsics = read.array("camera.intrinsics", read.required(camera, "intrinsics", intrinsics_fix, "camera."),
                            (3, 3), intrinsics_fix)
    if not np.allclose(intrinsics[2], [0, 0, 1]) or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
        read.fail("camera.intrinsics", camera["intrinsics"], intrinsics_fix + " (fx, fy > 0)")
    size_fix = "give [width, height] in pixels, e.g. [1920, 1080]"
    size_value = read.required(camera, "image_size_px", size_fix, "camera.")
    if not isinstance(size_value, list) or len(size_value) != 2:
        read.fail("camera.image_size_px", size_value, size_fix)
    size = tuple(read.whole(f"camera.image_size_px[{i}]", v, size_fix, minimum=1) for i, v in enumerate(size_value))
    pose = np.eye(4)
    pose_fix = "give a 4 x 4 rigid transform [[R, t], [0, 0, 0, 1]] (R a rotation), or leave it out"
    if camera.get("cam_to_world") is not None:
        pose = read.array("camera.cam_to_world", camera["cam_to_world"], (4, 4), pose_fix)
        rotation = pose[:3, :3]
        if not np.allclose(pose[3], [0, 0, 0, 1]) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) \
                or np.linalg.det(rotation) < 0:
            read.fail("camera.cam_to_world", camera["cam_to_world"], pose_fix)
    return {"intrinsics": intrinsics, "image_size_px": size, "cam_to_world": pose}


# -- rig files ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RigFile:
    """The rig (and camera) a rig file gives.

    Attributes:
        kind: "calibration" (a raw capture's calibration.json) or "audio_sensor_loc" (a PoseKernel
            environment's audio_sensor_loc.npy: co-located pairs).
        rig: speakers and microphones in the camera frame, exactly the file's numbers.
        intrinsics: (3, 3) camera matrix as nested tuples (pixels); None when the file has no camera.
        image_size_px: (width, height) in pixels; None when the file has no camera.
        source: where it was read from; only for messages (not compared, not in :meth:`to_dict`:
            the same rig copied elsewhere is the same data).
    """

    kind: str
    rig: CameraRig
    intrinsics: tuple[tuple[float, float, float], ...] | None = None
    image_size_px: tuple[int, int] | None = None
    source: str = field(default="rig file", compare=False)

    def __post_init__(self):
        if self.kind not in RIG_FILE_KINDS:
            raise RigFileError(f"{self.source}: kind = {self.kind!r}; give one of {', '.join(RIG_FILE_KINDS)}")
        if not isinstance(self.rig, CameraRig):
            raise RigFileError(f"{self.source}: rig = {self.rig!r}; give a rooms.rig.CameraRig")
        if (self.intrinsics is None) != (self.image_size_px is None):
            raise RigFileError(f"{self.source}: give the camera's intrinsics and image_size_px together, or neither")
        if self.intrinsics is not None:
            k = np.asarray(self.intrinsics, dtype=float)
            object.__setattr__(self, "intrinsics", tuple(tuple(row) for row in k.tolist()))
            object.__setattr__(self, "image_size_px", tuple(int(v) for v in self.image_size_px))
        if self.kind == "audio_sensor_loc" and (not self.rig.colocated or self.intrinsics is not None):
            raise RigFileError(f"{self.source}: an audio_sensor_loc rig has co-located pairs and no camera")

    def to_dict(self) -> dict:
        """JSON form (the store's record of the rig): kind, speakers_m, microphones_m and, when the file
        has one, camera {intrinsics, image_size_px}, under calibration.json's names."""
        data = {"kind": self.kind, "speakers_m": [list(p) for p in self.rig.speaker_positions_m],
                "microphones_m": [list(p) for p in self.rig.microphone_positions_m]}
        if self.intrinsics is not None:
            data["camera"] = {"intrinsics": [list(row) for row in self.intrinsics],
                              "image_size_px": list(self.image_size_px)}
        return data

    @classmethod
    def from_dict(cls, data, source: str = "rig_file") -> "RigFile":
        """The rig of a :meth:`to_dict` dict, checked by the typed reads of calibration.json (errors name
        ``source``)."""
        read = CalibrationFields(source, RigFileError)
        if not isinstance(data, dict):
            raise RigFileError(f"{source}: holds {_json_text(data)}; expected an object with kind, speakers_m, "
                               f"microphones_m and, for a calibration, camera")
        read.known("", data, ("kind", "speakers_m", "microphones_m", "camera"))
        kind = read.required(data, "kind", f"give one of {', '.join(RIG_FILE_KINDS)}")
        read.choice("kind", kind, RIG_FILE_KINDS, "what the rig was read from")
        speakers, microphones = read_calibration_positions(read, data)
        rig = CameraRig(speakers, microphones)
        if kind == "audio_sensor_loc":
            if "camera" in data:
                read.fail("camera", data["camera"], "an audio_sensor_loc rig has no camera; leave it out")
            if not rig.colocated:
                read.conflict("microphones_m", data["microphones_m"],
                              "differs from speakers_m: an audio_sensor_loc rig has co-located pairs")
            return cls(kind, rig, source=str(source))
        camera = read_calibration_camera(read, data)
        return cls(kind, rig, camera["intrinsics"], camera["image_size_px"], source=str(source))


def read_rig_file(path) -> RigFile:
    """Read and check a rig file: a ``.npy`` file is a PoseKernel ``audio_sensor_loc.npy``, anything else a
    raw capture's ``calibration.json``. Raises :class:`RigFileError` (one line: file, field, fix)."""
    path = Path(os.fspath(path)).expanduser()
    if path.is_dir():
        inside = [name for name in ("calibration.json", "audio_sensor_loc.npy") if (path / name).is_file()]
        hint = f"give {path / inside[0]}" if inside else _WHAT_TO_GIVE
        raise RigFileError(f"{path}: is a folder, not a rig file; {hint}")
    if not path.is_file():
        raise RigFileError(f"{path}: no such file; {_WHAT_TO_GIVE}")
    try:
        with open(path, "rb") as handle:
            is_npy = handle.read(6) == b"\x93NUMPY"
    except OSError as err:
        raise RigFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    if is_npy or path.suffix.lower() == ".npy":
        return _read_sensor_locations(path)
    return _read_calibration(path)


def _read_calibration(path: Path) -> RigFile:
    """The speakers, microphones and camera of a raw capture's calibration.json, checked as the raw-capture
    reader checks them (its other fields describe a recording and are not read here)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RigFileError(f"{path}: not valid JSON ({err}); {_WHAT_TO_GIVE}") from None
    except OSError as err:
        raise RigFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not isinstance(data, dict):
        raise RigFileError(f"{path}: holds a JSON {type(data).__name__}; expected an object with the fields of "
                           f"docs/raw_capture_format.md")
    read = CalibrationFields(path, RigFileError)
    read.known("", data, CALIBRATION_FIELDS)
    read_calibration_format(read, data)
    speakers, microphones = read_calibration_positions(read, data)
    camera = read_calibration_camera(read, data)
    return RigFile("calibration", CameraRig(speakers, microphones), camera["intrinsics"], camera["image_size_px"],
                   source=str(path))


def _read_sensor_locations(path: Path) -> RigFile:
    """A PoseKernel audio_sensor_loc.npy: (pairs, 3) finite numbers, read without unpickling anything.

    The header is checked first (shape, a numeric dtype, the bytes it announces are on disk), as the
    PoseKernel dataset reader does (:mod:`core.npy_files`).
    """
    fix = "give (pairs, 3) positions of co-located speaker/microphone pairs in metres, camera frame"
    what = "speaker/microphone positions"
    shape, _ = npy_header(path, what, fix, RigFileError, RigFileError)
    if len(shape) != 2 or shape[0] < 1 or shape[1] != 3:
        raise RigFileError(f"{path}: has shape {tuple(shape)}; expected (pairs, 3): {fix}")
    positions = read_npy(path, what, fix, RigFileError, RigFileError)
    return RigFile("audio_sensor_loc", CameraRig(positions, positions), source=str(path))
