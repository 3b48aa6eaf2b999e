"""Raw captures from a user's own rig (``docs/raw_capture_format.md``): :class:`RawCapture` reads one,
:func:`write_raw_capture` writes one (from the simulator, for tests and demos).

A capture folder holds continuous multichannel WAV recordings with and without the person,
``calibration.json`` (:mod:`pipeline.capture_calibration`) and OpenPose keypoints; each frame is
deconvolved by :func:`simulator.deconvolution.deconvolve`.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from bodies.joints import JOINT_NAMES
from core.checks import check_finite_array, check_whole
from pipeline.capture_calibration import (
    CALIBRATION_FILE, EMPTY_FILE, JOINTS3D_FILE, KEYPOINTS_DIR, RECORDING_FILE, CaptureCalibration,
)
from pipeline.capture_files import NUM_JOINTS, CaptureFormatError, joints15, joints_shape_ok, npy_header, read_npy
from pipeline.sample import Sample
from pipeline.wav_io import LEVEL_RATIO_LIMIT, Wav, check_wav_pair, format_name, open_wav, wav_signals
from simulator.deconvolution import (
    DEFAULT_BAND_TAPER_HZ, DEFAULT_KERNEL_SAMPLES, DEFAULT_REGULARIZATION, deconvolve, estimate_emission_offset,
    fractional_shift, normalize_kernels,
)

__all__ = ["BODY25_SLOT", "RawCapture", "write_raw_capture"]

# OpenPose BODY_25 slot of each of our joints, for writing (the head goes to the nose slot; ears and eyes
# are left undetected, so pipeline.keypoint_formats reads it back from the nose).
BODY25_SLOT = {"pelvis": 8, "neck": 1, "head": 0, "r_shoulder": 2, "r_elbow": 3, "r_wrist": 4, "l_shoulder": 5,
               "l_elbow": 6, "l_wrist": 7, "r_hip": 9, "r_knee": 10, "r_ankle": 11, "l_hip": 12, "l_knee": 13,
               "l_ankle": 14}


def _calibration_json(path: Path) -> dict:
    """The JSON object of ``calibration.json``; a missing, unreadable or non-object file is refused."""
    if not path.is_file():
        raise CaptureFormatError(f"{path}: missing; a raw capture folder needs calibration.json "
                                 f"(docs/raw_capture_format.md)")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CaptureFormatError(f"{path}: not valid JSON ({err}); fix it in a text editor "
                                 f"(docs/raw_capture_format.md shows an example)") from None
    except OSError as err:
        raise CaptureFormatError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not isinstance(data, dict):
        raise CaptureFormatError(f"{path}: holds a JSON {type(data).__name__}; expected an object with the "
                                 f"fields of docs/raw_capture_format.md")
    return data


class RawCapture:
    """A raw capture folder (``docs/raw_capture_format.md``) as a sequence of :class:`Sample`.

    Frame f is samples [first_sample + f N, first_sample + (f + 1) N) of recording.wav, N = the chirp
    period; the empty room is the average of all whole periods of empty.wav from empty_first_sample
    (estimated from the direct paths when null). Each frame is deconvolved against it
    (:func:`simulator.deconvolution.deconvolve`, with alignment), the calibration's pairs are kept, and
    the kernels are normalised (:func:`simulator.deconvolution.normalize_kernels`).

    Opening the folder reads and checks everything (calibration, both WAVs and their agreement, every
    frame's keypoint file, joints3d.npy), so ``capture[i]`` reads no file and cannot fail on one.

    Args:
        folder: the capture folder.
        kernel_samples, regularization, align, band_taper_hz: passed to ``deconvolve``.
    Raises:
        CaptureFormatError: a file is missing or breaks the format (the message names the file, the
        field and the fix); DamagedCaptureError: a file is cut short or unreadable.
    """

    def __init__(self, folder, *, kernel_samples: int = DEFAULT_KERNEL_SAMPLES,
                 regularization: float = DEFAULT_REGULARIZATION, align: bool = True,
                 band_taper_hz: float = DEFAULT_BAND_TAPER_HZ):
        self.folder = Path(folder)
        path = self.folder / CALIBRATION_FILE
        self.calibration = calibration = CaptureCalibration.from_json(_calibration_json(path), path)
        plan = calibration.chirp_plan
        self.period = N = plan.n_samples
        kernel_samples = check_whole("kernel_samples", kernel_samples, 1, N, error=CaptureFormatError)
        self.deconvolution = dict(kernel_samples=kernel_samples, regularization=regularization, align=align,
                                  band_taper_hz=band_taper_hz)
        self.chirps = plan.chirps()
        self.bands_hz = plan.speaker_bands_hz()
        recording_wav = open_wav(self.folder / RECORDING_FILE, "the recording with the person")
        empty_wav = open_wav(self.folder / EMPTY_FILE, "the empty room's recording")
        check_wav_pair(recording_wav, empty_wav, calibration, path)
        self.recording = wav_signals(recording_wav, calibration.wav_full_scale, calibration.first_sample + N)
        self.n_frames = (self.recording.shape[1] - calibration.first_sample) // N
        empty_start = calibration.empty_first_sample
        empty = wav_signals(empty_wav, calibration.wav_full_scale, int(np.ceil(empty_start or 0)) + N)
        self.empty, self.empty_offset_samples = self._average_empty_room(empty, band_taper_hz)
        self._check_levels(recording_wav, empty_wav, path)
        self.joints3d = self._read_joints3d()
        self._keypoints = self._read_all_keypoints()

    def _average_empty_room(self, empty: np.ndarray, band_taper_hz: float) -> tuple[np.ndarray, float]:
        """(M, N) the mean of every whole chirp period of empty.wav from empty_first_sample, shifted so that
        period starts at the emission, and that shift in samples (estimated from the direct paths when the
        calibration leaves it null)."""
        calibration, N = self.calibration, self.period
        empty_start = calibration.empty_first_sample
        start = int(np.floor(empty_start or 0))
        periods = (empty.shape[1] - start) // N
        average = empty[:, start:start + periods * N].reshape(empty.shape[0], periods, N).mean(axis=1)
        if empty_start is None:
            offset_samples = estimate_emission_offset(
                average, self.chirps, self.bands_hz, calibration.sample_rate_hz,
                calibration.speaker_positions_m, calibration.microphone_positions_m, calibration.speed_of_sound_m_s,
                band_taper_hz=band_taper_hz)
        else:
            offset_samples = float(empty_start) - start    # a fractional first sample
        if offset_samples:
            average = fractional_shift(average, -offset_samples)
        return average, offset_samples

    def _check_levels(self, recording_wav: Wav, empty_wav: Wav, calibration_path: Path) -> None:
        """Refuse a recording and an empty room on different scales (LEVEL_RATIO_LIMIT): subtracting them
        would leave the direct paths in every kernel."""
        first = self.calibration.first_sample
        frames = self.recording[:, first:first + self.n_frames * self.period]
        ratio = float(np.median(np.sqrt(np.mean(frames**2, axis=1) / np.mean(self.empty**2, axis=1))))
        if not 1 / LEVEL_RATIO_LIMIT <= ratio <= LEVEL_RATIO_LIMIT:
            raise CaptureFormatError(
                f"{recording_wav.path} ({format_name(recording_wav.samples.dtype)}) is {ratio:.3g} times as loud as "
                f"{empty_wav.path} ({format_name(empty_wav.samples.dtype)}), median over the microphones, after "
                f"scaling both to full scale x {calibration_path.name}'s recording.wav_full_scale; the empty room is "
                f"subtracted from every frame, so record both with the same gain and store them on one scale "
                f"(re-export both in one sample format)")

    def _read_joints3d(self) -> np.ndarray | None:
        """(F, 15, 3) ground truth from the optional joints3d.npy, or None without it."""
        path = self.folder / JOINTS3D_FILE
        if not path.exists():
            return None
        fix = (f"save one (15 or 49, 3) pose per frame of recording.wav in metres with numpy.save, or move "
               f"{JOINTS3D_FILE} out of the folder (it is optional)")
        shape, _ = npy_header(path, "3D joints per frame, camera frame, m", fix)
        if not joints_shape_ok(shape, per_frame=True):
            raise CaptureFormatError(f"{path}: has shape {shape}; expected (frames, 49, 3) in FrankMocap's order or "
                                     f"(frames, 15, 3); {fix}")
        if shape[0] < self.n_frames:
            raise CaptureFormatError(f"{path}: holds {shape[0]} poses but recording.wav has {self.n_frames} frames; "
                                     f"give one (15 or 49, 3) pose per frame")
        joints = read_npy(path, "3D joints per frame, camera frame, m", fix)
        return joints15(joints, path, "joints3d", per_frame=True, fix=fix)

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def frame_recordings(self, index: int) -> np.ndarray:
        """(M, N) the microphones during frame ``index``."""
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside [0, {self.n_frames}) of {self.folder / RECORDING_FILE}")
        start = self.calibration.first_sample + index * self.period
        return self.recording[:, start:start + self.period]

    def kernels(self, index: int) -> np.ndarray:
        """(S, M, K) pose kernels of frame ``index`` (deconvolved, not normalised)."""
        return deconvolve(self.frame_recordings(index), self.empty, self.chirps, self.bands_hz,
                          self.calibration.sample_rate_hz, **self.deconvolution)

    def keypoints_path(self, index: int) -> Path:
        return self.folder / KEYPOINTS_DIR / f"{index:06d}_keypoints.json"

    def keypoints(self, index: int) -> np.ndarray:
        """(15, 3) (u, v, confidence) of frame ``index``, as read from its file when the capture was opened."""
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside [0, {self.n_frames}) of {self.folder / RECORDING_FILE}")
        return self._keypoints[index].copy()

    def _read_all_keypoints(self) -> np.ndarray:
        """(F, 15, 3) of every frame's OpenPose BODY_25 file, read now so a bad file is refused before any work.

        Keypoints outside the image get confidence 0, with one warning for the whole capture (a detector
        cannot see them, and one stray joint should not discard a frame); when most of a frame's confident
        keypoints are outside, the calibration's image size or intrinsics are wrong and the read fails.
        """
        from pipeline.keypoint_formats import KeypointFileError, read_openpose_json

        width, height = self.calibration.image_size_px
        all_keypoints = np.zeros((self.n_frames, NUM_JOINTS, 3))
        outside_frames: list[tuple[Path, list[str]]] = []
        for index in range(self.n_frames):
            path = self.keypoints_path(index)
            if not path.is_file():
                raise CaptureFormatError(f"{path}: missing; every frame of recording.wav ({self.n_frames} here) needs "
                                         f"an OpenPose BODY_25 file named <frame:06d>_keypoints.json in "
                                         f"{KEYPOINTS_DIR}/")
            try:
                keypoints = read_openpose_json(path)
            except KeypointFileError as err:
                raise CaptureFormatError(str(err)) from None
            u, v, confidence = keypoints.T
            detected = confidence > 0
            outside = detected & ((u < -0.5) | (u > width - 0.5) | (v < -0.5) | (v > height - 0.5))
            if outside.sum() > 0.5 * max(detected.sum(), 1):
                raise CaptureFormatError(
                    f"{path}: {int(outside.sum())} of {int(detected.sum())} keypoints (pose_keypoints_2d) lie outside "
                    f"the {width} x {height} image of calibration.json's camera.image_size_px; the image size or the "
                    f"keypoints' resolution is wrong")
            if outside.any():
                outside_frames.append((path, [JOINT_NAMES[i] for i in np.flatnonzero(outside)]))
                keypoints[outside, 2] = 0.0
            all_keypoints[index] = keypoints
        if outside_frames:
            path, names = outside_frames[0]
            more = f" (and in {len(outside_frames) - 1} more frames)" if len(outside_frames) > 1 else ""
            warnings.warn(f"{path}: keypoints {names} (pose_keypoints_2d) lie outside the {width} x {height} "
                          f"image{more}; their confidence is set to 0", stacklevel=3)
        return all_keypoints

    def __getitem__(self, index: int) -> Sample:
        cal = self.calibration
        kernels = self.kernels(index)
        pairs = cal.pair_index
        normalized, scale = normalize_kernels(kernels[pairs[:, 0], pairs[:, 1]])
        joints = self.joints3d[index] if self.joints3d is not None else np.full((NUM_JOINTS, 3), np.nan)
        return Sample(
            kernels=normalized, kernel_scale=float(scale), pair_index=pairs, speaker_pos=cal.speaker_positions_m,
            mic_pos=cal.microphone_positions_m, joints3d=joints, keypoints2d=self.keypoints(index),
            intrinsics=cal.intrinsics, image_size=cal.image_size_px, cam_to_world=cal.cam_to_world,
            sample_rate_hz=cal.sample_rate_hz, speed_of_sound=cal.speed_of_sound_m_s, room_id=cal.environment_id,
            room_name=cal.environment_name, frame_id=f"{index:06d}",
            height=np.nan if cal.height_m is None else cal.height_m, is_minor=cal.is_minor,
            age_years=np.nan if cal.age_years is None else cal.age_years, activity=cal.activity,
            source=f"{self.folder / RECORDING_FILE} frame {index}",
        )


def write_raw_capture(folder, recordings: np.ndarray, empty_recordings: np.ndarray,
                      calibration: CaptureCalibration, keypoints: np.ndarray | None = None,
                      joints3d: np.ndarray | None = None, *, wav_format: str = "float32") -> Path:
    """Write a raw capture folder (``docs/raw_capture_format.md``), e.g. from the simulator.

    Args:
        folder: created if needed; refused when it already holds a capture file (nothing is overwritten).
        recordings: (F, M, N) one chirp period per frame, t = 0 at emission (``Recording.recordings``);
            written back to back into recording.wav (frame f at sample first_sample + f N).
        empty_recordings: (M, N) or (E, M, N) empty-room periods, written back to back into empty.wav.
        calibration: positions in the camera frame, camera, chirp plan, subject. Its first_sample
            zero-samples are written before frame 0, and empty_first_sample (an integer, or None for
            0) before the empty room's first period. wav_full_scale is set here for int WAVs.
        keypoints: optional (F, 15, 3) (u, v, confidence), written as OpenPose BODY_25 JSON files.
        joints3d: optional (F, 15, 3) ground truth, camera frame, m -> joints3d.npy.
        wav_format: "float32" (values as they are, wav_full_scale = 1) or "int16" (PCM = value /
            wav_full_scale x 32768, scaled so the peak of both files is 0.99 of full scale;
            wav_full_scale records the factor).

    Returns:
        the folder.
    """
    folder = Path(folder)
    existing = [name for name in (CALIBRATION_FILE, RECORDING_FILE, EMPTY_FILE, KEYPOINTS_DIR, JOINTS3D_FILE)
                if (folder / name).exists()]
    if existing:
        raise CaptureFormatError(f"{folder}: already holds {', '.join(existing)}; write_raw_capture writes new "
                                 f"captures only, choose a new folder")
    recordings = np.asarray(recordings, dtype=float)
    empty = np.asarray(empty_recordings, dtype=float)
    empty = empty[None] if empty.ndim == 2 else empty
    N = calibration.chirp_plan.n_samples
    M = len(calibration.microphone_positions_m)
    if recordings.ndim != 3 or recordings.shape[1:] != (M, N):
        raise CaptureFormatError(f"recordings has shape {recordings.shape}; expected (F, M, N) = (F, {M}, {N})")
    if empty.ndim != 3 or empty.shape[1:] != (M, N):
        raise CaptureFormatError(f"empty_recordings has shape {empty.shape}; expected (M, N) or (E, M, N) "
                                 f"with (M, N) = ({M}, {N})")
    check_finite_array("recordings", recordings, error=CaptureFormatError)
    check_finite_array("empty_recordings", empty, error=CaptureFormatError)
    empty_lead = calibration.empty_first_sample
    if empty_lead is not None:
        empty_lead = check_whole("calibration.empty_first_sample", empty_lead, minimum=0, error=CaptureFormatError)
    lead = np.zeros((M, calibration.first_sample))
    signal = np.concatenate([lead] + list(recordings), axis=1)                      # (M, first + F N)
    empty_signal = np.concatenate([np.zeros((M, int(empty_lead or 0)))] + list(empty), axis=1)
    to_wav = _wav_encoder(calibration, wav_format, signal, empty_signal)
    rate = int(round(calibration.sample_rate_hz))
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.wavfile.write(folder / RECORDING_FILE, rate, to_wav(signal))
    scipy.io.wavfile.write(folder / EMPTY_FILE, rate, to_wav(empty_signal))
    (folder / CALIBRATION_FILE).write_text(json.dumps(calibration.to_json(), indent=2))
    if keypoints is not None:
        _write_keypoints(folder, keypoints, len(recordings))
    if joints3d is not None:
        joints3d = np.asarray(joints3d, dtype=float)
        if joints3d.shape != (len(recordings), NUM_JOINTS, 3):
            raise CaptureFormatError(f"joints3d has shape {joints3d.shape}; expected ({len(recordings)}, 15, 3)")
        np.save(folder / JOINTS3D_FILE, joints3d)
    return folder


def _wav_encoder(calibration: CaptureCalibration, wav_format: str, signal: np.ndarray, empty_signal: np.ndarray):
    """``(M, N) signal -> (N, M) WAV samples`` for ``wav_format``; sets ``calibration.wav_full_scale`` to match."""
    if wav_format == "float32":
        calibration.wav_full_scale = 1.0
        return lambda x: x.T.astype(np.float32)
    if wav_format == "int16":
        peak = max(np.abs(signal).max(), np.abs(empty_signal).max())
        calibration.wav_full_scale = float(peak / 0.99) if peak > 0 else 1.0
        return lambda x: np.clip(np.round(x.T / calibration.wav_full_scale * 32768), -32768, 32767).astype(np.int16)
    raise CaptureFormatError(f"wav_format = {wav_format!r}: use 'float32' or 'int16'")


def _write_keypoints(folder: Path, keypoints: np.ndarray, n_frames: int) -> None:
    """(F, 15, 3) (u, v, confidence) -> one OpenPose BODY_25 JSON file per frame in ``folder/keypoints``."""
    keypoints = np.asarray(keypoints, dtype=float)
    if keypoints.shape != (n_frames, NUM_JOINTS, 3):
        raise CaptureFormatError(f"keypoints has shape {keypoints.shape}; expected (F, 15, 3) = ({n_frames}, 15, 3)")
    (folder / KEYPOINTS_DIR).mkdir(exist_ok=True)
    for f, frame in enumerate(keypoints):
        body25 = np.zeros((25, 3))
        for j, name in enumerate(JOINT_NAMES):
            body25[BODY25_SLOT[name]] = frame[j]
        person = {"person_id": [-1], "pose_keypoints_2d": body25.ravel().round(3).tolist()}
        (folder / KEYPOINTS_DIR / f"{f:06d}_keypoints.json").write_text(
            json.dumps({"version": 1.3, "people": [person]}))
