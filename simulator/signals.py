"""Transmitted signals: frequency-division-multiplexed linear chirps (paper section 4).

The 19-32 kHz band is split into one contiguous sub-band per speaker, separated by a guard
interval, and every speaker plays a linear up-chirp sweeping its own sub-band for
``duration_s`` (100 ms, i.e. 10 frames per second). The chirp edges are tapered with a
raised-cosine (Tukey) window of ``taper_s`` seconds on each side, which keeps the spectrum
of each chirp inside its sub-band (> 99 % of the energy) so that a microphone can separate
the speakers with a band-pass filter (or by deconvolution restricted to the band).

Example::

    plan = ChirpPlan()                      # 4 speakers, 19-32 kHz, 100 ms at 96 kHz
    x = plan.chirps()                       # (4, 9600) float64, peak amplitude 1
    lo_hz, hi_hz = plan.speaker_band_hz(2)  # sub-band of speaker 2
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from core.checks import check_finite_array, check_number, check_whole
from simulator.errors import SimulationInputError

__all__ = ["MAX_DURATION_S", "MAX_SAMPLE_RATE_HZ", "ChirpPlan", "band_window", "tukey_window"]

#: Longest chirp period accepted: a frame is one period and is held in memory per speaker and
#: microphone, so a typo (100 instead of 0.1) must fail where the plan is built.
MAX_DURATION_S = 10.0
#: Highest sample rate accepted (the paper's capture runs at 96 kHz).
MAX_SAMPLE_RATE_HZ = 1_000_000.0


def tukey_window(n_samples: int, taper_samples: float) -> np.ndarray:
    """Raised-cosine (Tukey) window with ``taper_samples`` of cosine ramp on each side.

    Returns an array of shape ``(n_samples,)`` that is 1 in the middle and rises from 0
    as ``0.5 * (1 - cos(pi * n / taper_samples))`` over the first ``taper_samples``
    samples (mirrored at the end). ``taper_samples = 0`` gives a rectangular window.
    """
    n = np.arange(n_samples, dtype=float)
    window = np.ones(n_samples)
    if taper_samples <= 0:
        return window
    ramp = np.minimum(n, n_samples - 1 - n)  # distance to the nearest edge, samples
    inside = ramp < taper_samples
    window[inside] = 0.5 * (1.0 - np.cos(np.pi * ramp[inside] / taper_samples))
    return window


def band_window(frequencies_hz: np.ndarray, band_hz: tuple[float, float], transition_hz: float) -> np.ndarray:
    """Spectral band-pass gain: 1 inside ``band_hz``, raised-cosine roll-off to 0 over
    ``transition_hz`` outside each edge, 0 beyond. Same shape as ``frequencies_hz``."""
    low_hz, high_hz = band_hz
    if not 0 <= low_hz < high_hz:
        raise SimulationInputError(f"band_hz = {band_hz!r} must satisfy 0 <= low < high (Hz).")
    if not transition_hz > 0:
        raise SimulationInputError(f"transition_hz = {transition_hz!r} must be > 0 Hz, e.g. 1000.")
    f = np.abs(np.asarray(frequencies_hz, dtype=float))
    # distance outside the band, in units of the transition width (0 inside the band)
    outside = np.maximum(low_hz - f, f - high_hz).clip(min=0.0) / transition_hz
    return np.where(outside < 1.0, 0.5 * (1.0 + np.cos(np.pi * np.minimum(outside, 1.0))), 0.0)


@dataclass(frozen=True)
class ChirpPlan:
    """Frequency-division multiplexing plan for ``n_speakers`` linear chirps.

    Attributes:
        band_hz: (low, high) band shared by all speakers, Hz. Must lie in (0, Nyquist].
        n_speakers: number of speakers S; the band is cut into S equal sub-bands.
        duration_s: length of each chirp (one frame), seconds.
        sample_rate_hz: sampling rate, Hz.
        taper_s: raised-cosine taper at each end of a chirp, seconds (0 for none).
        guard_hz: gap between neighbouring sub-bands, Hz (>= 0; sub-bands are disjoint).
    """

    band_hz: tuple[float, float] = (19_000.0, 32_000.0)
    n_speakers: int = 4
    duration_s: float = 0.1
    sample_rate_hz: float = 96_000.0
    taper_s: float = 0.005
    guard_hz: float = 250.0

    def __post_init__(self) -> None:
        # Every field is checked here, so that a bad plan fails where it is built (a generator
        # validates its arguments up front), never later inside a worker.
        error = SimulationInputError
        band = check_finite_array("band_hz", self.band_hz, error=error).ravel()
        if len(band) != 2:
            raise error(f"band_hz = {self.band_hz!r} must be a pair (low_hz, high_hz).")
        object.__setattr__(self, "band_hz", (float(band[0]), float(band[1])))
        low_hz, high_hz = self.band_hz
        object.__setattr__(self, "n_speakers", check_whole("n_speakers", self.n_speakers, 1, error=error))
        object.__setattr__(self, "sample_rate_hz", check_number(
            "sample_rate_hz", self.sample_rate_hz, 0.0, MAX_SAMPLE_RATE_HZ, low_open=True, error=error))
        object.__setattr__(self, "duration_s", check_number(
            "duration_s", self.duration_s, 0.0, MAX_DURATION_S, low_open=True, error=error))
        object.__setattr__(self, "taper_s", check_number("taper_s", self.taper_s, 0.0, error=error))
        object.__setattr__(self, "guard_hz", check_number("guard_hz", self.guard_hz, error=error))
        if round(self.duration_s * self.sample_rate_hz) < 2:
            raise error(
                f"duration_s = {self.duration_s!r} is shorter than two samples at "
                f"sample_rate_hz = {self.sample_rate_hz:g}; lengthen the chirp."
            )
        if not 0 < low_hz < high_hz:
            raise error(
                f"band_hz = {self.band_hz!r} must satisfy 0 < low < high (Hz), e.g. (19000, 32000)."
            )
        nyquist_hz = self.sample_rate_hz / 2
        if high_hz > nyquist_hz:
            raise error(
                f"band_hz = {self.band_hz!r} reaches above the Nyquist frequency "
                f"{nyquist_hz:g} Hz of sample_rate_hz = {self.sample_rate_hz:g}; lower band_hz[1] "
                f"or raise sample_rate_hz to at least {2 * high_hz:g}."
            )
        if self.guard_hz < 0:
            raise error(
                f"guard_hz = {self.guard_hz!r} must be >= 0: a negative guard makes the "
                f"speakers' sub-bands overlap."
            )
        if self.subband_width_hz <= 0:
            raise error(
                f"guard_hz = {self.guard_hz:g} leaves no room for {self.n_speakers} sub-bands in "
                f"band_hz = {self.band_hz!r}; reduce guard_hz below "
                f"{(high_hz - low_hz) / max(self.n_speakers - 1, 1):g} Hz or use fewer speakers."
            )
        if self.taper_s > self.duration_s / 2:
            raise error(
                f"taper_s = {self.taper_s!r} must lie in [0, duration_s / 2 = {self.duration_s / 2:g}] s."
            )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The plan's fields, in the order :meth:`to_dict` writes them."""
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict:
        """JSON form: every field, ``band_hz`` as a list; :meth:`from_dict` reads it back."""
        return {name: list(value) if name == "band_hz" else value
                for name, value in ((name, getattr(self, name)) for name in self.field_names())}

    @classmethod
    def from_dict(cls, data: dict) -> "ChirpPlan":
        """The plan of a :meth:`to_dict` dict (missing fields take their defaults; unknown ones are refused)."""
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise SimulationInputError(f"chirp_plan: unknown field(s) {', '.join(unknown)}; give only "
                                       f"{', '.join(cls.field_names())}")
        return cls(**{name: tuple(value) if name == "band_hz" else value for name, value in data.items()})

    @property
    def n_samples(self) -> int:
        """Samples per chirp, ``round(duration_s * sample_rate_hz)``."""
        return int(round(self.duration_s * self.sample_rate_hz))

    @property
    def subband_width_hz(self) -> float:
        """Width of each speaker's sub-band, Hz."""
        low_hz, high_hz = self.band_hz
        return (high_hz - low_hz - (self.n_speakers - 1) * self.guard_hz) / self.n_speakers

    def speaker_band_hz(self, speaker: int) -> tuple[float, float]:
        """(low, high) sub-band of speaker ``speaker`` (0-based), Hz; speaker 0 is lowest."""
        speaker = check_whole("speaker", speaker, 0, self.n_speakers - 1, error=SimulationInputError)
        low_hz = self.band_hz[0] + int(speaker) * (self.subband_width_hz + self.guard_hz)
        return (low_hz, low_hz + self.subband_width_hz)

    def speaker_bands_hz(self) -> np.ndarray:
        """All sub-bands, shape (S, 2), Hz."""
        return np.array([self.speaker_band_hz(i) for i in range(self.n_speakers)])

    def times_s(self) -> np.ndarray:
        """Sample times of a chirp, shape (N,), seconds from the chirp's start."""
        return np.arange(self.n_samples) / self.sample_rate_hz

    def chirps(self) -> np.ndarray:
        """Tapered linear up-chirps, one per speaker: float64 array of shape (S, N).

        Row i sweeps ``speaker_band_hz(i)`` linearly over ``duration_s``:
        x_i(t) = w(t) sin(2 pi (f0 t + (f1 - f0) t^2 / (2 T))), peak amplitude 1.
        """
        t_s = self.times_s()
        sweep_s = self.n_samples / self.sample_rate_hz
        window = tukey_window(self.n_samples, self.taper_s * self.sample_rate_hz)
        bands = self.speaker_bands_hz()
        f0_hz, f1_hz = bands[:, :1], bands[:, 1:]
        phase = 2 * np.pi * (f0_hz * t_s + (f1_hz - f0_hz) * t_s**2 / (2 * sweep_s))
        return window * np.sin(phase)

    def chirp_at(self, speaker: int, times_s: np.ndarray) -> np.ndarray:
        """Speaker ``speaker``'s chirp at arbitrary times, repeated every period: same shape as ``times_s``.

        The continuous form of row ``speaker`` of :meth:`chirps` (equal to it, to rounding, at
        t = n / fs), periodic with period n_samples / fs, as the speakers play it continuously:
        x(t) = w(t) sin(2 pi (f0 t + (f1 - f0) t^2 / (2 T))) for t taken modulo the period, with the
        taper w of :func:`tukey_window` evaluated at the fractional sample t fs (0 between the
        period's last sample and the next period's first). Used to evaluate a chirp warped in time
        (the echo of a moving reflector, :mod:`simulator.motion_echo`).
        """
        speaker = check_whole("speaker", speaker, 0, self.n_speakers - 1, error=SimulationInputError)
        sweep_s = self.n_samples / self.sample_rate_hz
        t_s = np.mod(np.asarray(times_s, dtype=float), sweep_s)
        taper_samples = self.taper_s * self.sample_rate_hz
        if taper_samples > 0:
            position = t_s * self.sample_rate_hz
            ramp = np.maximum(np.minimum(position, self.n_samples - 1 - position), 0.0)
            window = np.where(ramp < taper_samples, 0.5 * (1.0 - np.cos(np.pi * ramp / taper_samples)), 1.0)
        else:
            window = np.ones_like(t_s)
        f0_hz, f1_hz = self.speaker_band_hz(speaker)
        return window * np.sin(2 * np.pi * (f0_hz * t_s + (f1_hz - f0_hz) * t_s**2 / (2 * sweep_s)))

    def instantaneous_frequency_hz(self) -> np.ndarray:
        """Instantaneous frequency of each chirp, shape (S, N), Hz."""
        bands = self.speaker_bands_hz()
        sweep_s = self.n_samples / self.sample_rate_hz
        return bands[:, :1] + (bands[:, 1:] - bands[:, :1]) * self.times_s() / sweep_s
