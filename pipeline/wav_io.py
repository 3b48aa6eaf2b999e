"""The WAV files of a raw capture: read as stored, checked, and brought to physical units.

:func:`wav_to_full_scale` is the one rule for every sample format; the private helpers open a file
(refusing one cut short), check that recording.wav and empty.wav agree with each other and with the
calibration, and return (M, N) float64 signals.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from pipeline.capture_calibration import CaptureCalibration
from pipeline.capture_files import CaptureFormatError, DamagedCaptureError

__all__ = ["LEVEL_RATIO_LIMIT", "Wav", "check_wav_pair", "format_name", "open_wav", "wav_signals", "wav_to_full_scale"]

# recording.wav and empty.wav are subtracted from each other after scaling: their levels (median over the
# microphones, the direct paths dominate both) may differ by at most this factor. A person shadows a few
# direct paths by a few dB; a factor of 2 is a gain or format mix-up, whose kernels would be garbage.
LEVEL_RATIO_LIMIT = 2.0


def wav_to_full_scale(samples: np.ndarray) -> np.ndarray:
    """WAV samples as scipy reads them -> float64 in full-scale units, integer PCM in [-1, 1).

    Integer PCM is divided by 2^(bits - 1): int16 / 32768, int32 / 2^31 (24-bit files arrive as
    int32, left-aligned, so they scale the same way); 8-bit PCM is unsigned with its zero at 128:
    (x - 128) / 128. Float samples are left as they are (a float WAV's full scale is 1.0).

    Raises:
        TypeError: another sample type.
    """
    samples = np.asarray(samples)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float64) - 128.0) / 128.0
    if samples.dtype.kind == "i":
        return samples.astype(np.float64) / float(2 ** (8 * samples.dtype.itemsize - 1))
    if samples.dtype.kind == "f":
        return samples.astype(np.float64)
    raise TypeError(f"WAV samples of type {samples.dtype} are not supported")


def format_name(dtype: np.dtype) -> str:
    if dtype.kind == "f":
        return f"{8 * dtype.itemsize}-bit float"
    return f"{8 * dtype.itemsize}-bit PCM" + (" (or 24-bit)" if dtype == np.int32 else "")


@dataclass
class Wav:
    path: Path
    rate_hz: int
    samples: np.ndarray        # (N, channels) as stored in the file

    @property
    def channels(self) -> int:
        return self.samples.shape[1]


def open_wav(path: Path, role: str) -> Wav:
    """A capture WAV as stored; missing, cut short or unreadable files are refused naming the file."""
    if not path.is_file():
        raise CaptureFormatError(f"{path}: missing ({role}); see docs/raw_capture_format.md")
    with open(path, "rb") as handle:
        header = handle.read(8)
    size = path.stat().st_size
    if len(header) == 8 and header[:4] == b"RIFF" and size < int.from_bytes(header[4:8], "little") + 8:
        raise DamagedCaptureError(f"{path}: truncated -- {size} bytes on disk but its RIFF header announces "
                                  f"{int.from_bytes(header[4:8], 'little') + 8}; the file was cut short, copy it again")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate, samples = scipy.io.wavfile.read(path)
        except Exception as err:  # noqa: BLE001 - struct/ValueError from a broken header
            raise DamagedCaptureError(f"{path}: not a readable WAV file ({type(err).__name__}: {err}); "
                                      f"re-export it as PCM or IEEE-float WAV") from None
    for warning in caught:
        if "EOF" in str(warning.message) or "premature" in str(warning.message).lower():
            raise DamagedCaptureError(f"{path}: truncated -- {warning.message}; the file was cut short, copy it "
                                      f"again")
    return Wav(path, int(rate), samples.reshape(len(samples), -1))


def check_wav_pair(recording: Wav, empty: Wav, calibration: CaptureCalibration, calibration_path: Path) -> None:
    """The two WAVs agree with each other (naming both files), then with the calibration."""
    rate_hz = calibration.sample_rate_hz
    if recording.rate_hz != empty.rate_hz:
        raise CaptureFormatError(f"{recording.path} is sampled at {recording.rate_hz} Hz but {empty.path} at "
                                 f"{empty.rate_hz} Hz; the empty room is subtracted sample by sample, so record both "
                                 f"at {calibration_path.name}'s sample_rate_hz = {rate_hz:g} Hz")
    if recording.channels != empty.channels:
        raise CaptureFormatError(f"{recording.path} has {recording.channels} channels but {empty.path} has "
                                 f"{empty.channels}; both need one channel per microphone of "
                                 f"{calibration_path.name}'s microphones_m, in the same order")
    microphones = len(calibration.microphone_positions_m)
    for wav in (recording, empty):
        if wav.rate_hz != rate_hz:
            raise CaptureFormatError(f"{wav.path}: sample rate is {wav.rate_hz} Hz but {calibration_path.name}'s "
                                     f"sample_rate_hz is {rate_hz:g} Hz; record at that rate (or fix the calibration)")
        if wav.channels != microphones:
            raise CaptureFormatError(f"{wav.path}: has {wav.channels} channels but {calibration_path.name}'s "
                                     f"microphones_m lists {microphones} microphones (channel m = microphone m)")


def wav_signals(wav: Wav, full_scale: float, min_samples: int) -> np.ndarray:
    """(M, N) float64 physical signals of a capture WAV: full-scale units x ``full_scale``, checked."""
    path, samples = wav.path, wav.samples
    try:
        signals = wav_to_full_scale(samples).T * full_scale
    except TypeError:
        raise CaptureFormatError(f"{path}: sample format {samples.dtype} is not supported; re-export it as 8-, 16-, "
                                 f"24- or 32-bit PCM or 32-bit float") from None
    if samples.dtype.kind in "iu":
        limits = np.iinfo(samples.dtype)
        clipped = np.mean((samples >= limits.max) | (samples <= limits.min), axis=0)
        for m in np.flatnonzero(clipped > 1e-4):
            warnings.warn(f"{path}: channel {m} is clipped on {100 * clipped[m]:.2f} % of its samples; "
                          f"lower the recording gain", stacklevel=3)
    bad = ~np.isfinite(signals)
    if bad.any():
        m, t = np.argwhere(bad)[0]
        raise CaptureFormatError(f"{path}: channel {m} holds NaN/inf (first at sample {t}); re-export the recording")
    if signals.shape[1] < min_samples:
        raise CaptureFormatError(f"{path}: truncated -- {signals.shape[1]} samples, but one chirp period from the "
                                 f"recording's first sample needs {min_samples} (chirp_plan.duration_s x "
                                 f"sample_rate_hz + first sample)")
    rms = np.sqrt(np.mean(signals**2, axis=1))
    silent = np.flatnonzero(rms <= 1e-6 * max(rms.max(), 1e-300))
    if rms.max() == 0 or len(silent):
        raise CaptureFormatError(f"{path}: channel(s) {silent.tolist()} are silent (microphone(s) "
                                 f"{silent.tolist()} recorded nothing); check the cables and the channel order")
    return signals
