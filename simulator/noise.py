"""Recording noise beyond white sensor noise: coloured ambient noise, tonal interferers, impulsive events.

Conventions
-----------
* A recording is one chirp period of n_samples at sample_rate_hz, (n_channels, n_samples), in the
  recordings' pressure units (those of ``RoomSimulator``). Noise is generated for exactly one period.
* The **band** (default the chirps' 19-32 kHz) is where the SNR is defined and measured: the in-band
  power of x is the power of x brick-wall band-passed to [low, high] (rFFT bins f_k = k fs / N with
  low <= f_k <= high), by Parseval P_band = (2 / N^2) sum_band |X_k|^2 (weight 1, not 2, for a Nyquist bin).
* **SNR** (drawn once per room): reference_power over the ambient noise's in-band power, where
  reference_power is the power of the chirps heard 1 m from their speakers in free field
  (``RoomSimulator.reference_power``), so P_n = reference_power / 10^(snr_db / 10). Unlike
  ``SimulationConfig.snr_db``, which sets the *total* power of white noise, this one counts only the
  band: white noise of the same total power is 10 log10((fs / 2) / B) = +5.67 dB quieter in band
  (19-32 kHz at 96 kHz), so ``SimulationConfig(snr_db=x)`` is ``snr_db = x + 5.67`` here with slope 0.
* Tone and impulse levels are in dB over P_n (the ambient in-band power), so they follow the SNR.
* **The empty room** is recorded for longer than a frame and averaged, as ``pipeline.raw_captures`` averages every
  whole period of a user's empty.wav: its noise is the mean of P = ``empty_room_periods`` consecutive periods
  (``render_noise(..., periods=P)``), rendered in one period's cost and exact in distribution: the ambient noise
  of consecutive periods is independent (its correlation time is far below 100 ms), so the mean is the same
  Gaussian process at P_n / P; a tone's mean over P periods is the same tone times
  c = (1 / P) sum_k exp(j 2 pi f T k) (|c| = 1 where f T is whole, 0 where f T P is whole and f T is not); the
  bursts of P periods, Poisson(r P T) of them, each at 1 / P of its amplitude, land at their onsets modulo T.
  A frame's recording is one period (P = 1).

Components (summed by :func:`render_noise`; channels are microphones)
--------------------------------------------------------------------
* **Ambient** (HVAC, electronics, the microphone's self-noise), independent per channel: white
  Gaussian noise shaped in the rFFT domain to the one-sided PSD S(f) = c max(f, f_c)^alpha,
  alpha = slope_db_per_octave / (10 log10 2) (slope / 3.0103: a doubling of f changes S by slope dB),
  flat below the corner f_c (``low_corner_hz``; a -6 dB/octave f^-2 law would diverge at DC), 0 at DC.
  For white w, E|W_k|^2 = N in every bin, so E P_band = sum_band w_k g_k^2 / N with g the bin gains
  (w_k = 2; 1 at DC and Nyquist); c makes E P_band = P_n exactly. The realised value scatters by
  ~1 / sqrt(n_in-band bins): 2.8 % for one 100 ms channel (1301 bins). Gaussian, stationary, circular.
* **Tones** (ultrasonic sensors, switching supplies): A sin(2 pi f t + phi), phi uniform per channel,
  power A^2 / 2 = P_n 10^(L / 10). f need not be a multiple of 1 / period: a real frame cut from a
  continuous capture is not periodic in the tone either.
* **Impulses** (clicks, keys, footsteps): Poisson events, rate r per second (count ~ Poisson(r T)),
  onsets uniform on the period's samples and shared by all channels (one acoustic event; the
  milliseconds between microphones are neglected), each a burst a exp(-t / tau) w(t) with w white
  Gaussian, independent per channel, truncated at 8 tau (energy left e^-16) and wrapped around the
  period. Level L: in-band power at onset P_n 10^(L / 10); the expected spectrum of a white carrier
  times any envelope is flat, so a^2 = P_n 10^(L / 10) (fs / 2) / B.

Example::

    draw = NoiseModel().draw(rng)                                     # per room; draw.to_dict() to store
    noise = render_noise(draw, 16, 9600, 96_000.0, simulator.reference_power, rng)   # per recording
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from core.checks import check_finite_array, check_number, check_whole
from simulator.errors import SimulationInputError

__all__ = ["DB_PER_OCTAVE_PER_POWER_EXPONENT", "IMPULSE_TAIL_DECAYS", "MAX_AVERAGED_PERIODS", "NoiseDraw", "NoiseModel",
           "ambient_noise", "impulse_noise", "render_noise", "tone_noise"]

#: 10 log10(2) = 3.0103 dB per octave for each unit of the PSD's power-law exponent alpha.
DB_PER_OCTAVE_PER_POWER_EXPONENT = 10 * np.log10(2.0)
#: A burst is cut after this many decay times (energy left exp(-2 * 8) = 1.1e-7).
IMPULSE_TAIL_DECAYS = 8
#: The most periods an averaged recording (the empty room) may span.
MAX_AVERAGED_PERIODS = 10_000
_ERROR = SimulationInputError


def _pair(name: str, value, low: float, high: float, *, whole: bool = False, low_open: bool = False):
    """A (min, max) range, each end in [low, high] (``low_open``: (low, high]), min <= max."""
    array = check_finite_array(name, value, shape=(2,), error=_ERROR)
    if whole:
        ends = tuple(check_whole(f"{name}[{i}]", v, int(low), int(high), error=_ERROR)
                     for i, v in enumerate(np.asarray(value).tolist()))
    else:
        ends = tuple(check_number(f"{name}[{i}]", float(v), low, high, low_open=low_open, error=_ERROR)
                     for i, v in enumerate(array))
    if ends[0] > ends[1]:
        raise _ERROR(f"{name} = {tuple(value)!r}: give (min, max) with min <= max, e.g. {ends[::-1]}")
    return ends


@dataclass(frozen=True)
class NoiseModel:
    """Ranges that each room's noise is drawn from (uniformly; counts uniformly over the integers).

    Attributes (allowed values in brackets):
        snr_db_range: in-band SNR, dB [-20, 100]: reference_power over the ambient in-band power.
        spectral_slope_db_per_octave_range: ambient PSD slope, dB per octave [-12, 12]; 0 is white,
            -3.01 pink (1/f), -6.02 brown (1/f^2).
        low_corner_hz: the ambient PSD is flat below this, Hz (0, 1e5]; fixed, not drawn.
        tone_count_range: number of tonal interferers [0, 8].
        tone_frequency_range_hz: their frequencies, Hz (0, 1e6]; must lie below Nyquist when rendered.
        tone_level_db_range: each tone's power A^2 / 2 over the ambient in-band power, dB [-60, 60].
        impulse_rate_per_s_range: mean impulsive events per second [0, 1000].
        impulse_decay_s_range: e-folding time of a burst's amplitude, s (0, 0.05].
        impulse_level_db_range: a burst's in-band power at onset over the ambient in-band power, dB [-60, 80].
        empty_room_periods: periods the empty room's recording averages [1, 10000]; fixed, not drawn. 10 (one
            second of empty room) by default; 1 is a single period, as noisy as a frame (stores before 2026-12-03).
    """

    snr_db_range: tuple[float, float] = (10.0, 40.0)
    spectral_slope_db_per_octave_range: tuple[float, float] = (-6.0, 0.0)
    low_corner_hz: float = 1000.0
    tone_count_range: tuple[int, int] = (0, 2)
    tone_frequency_range_hz: tuple[float, float] = (19_000.0, 32_000.0)
    tone_level_db_range: tuple[float, float] = (0.0, 20.0)
    impulse_rate_per_s_range: tuple[float, float] = (0.0, 2.0)
    impulse_decay_s_range: tuple[float, float] = (0.0005, 0.005)
    impulse_level_db_range: tuple[float, float] = (10.0, 30.0)
    empty_room_periods: int = 10

    def __post_init__(self) -> None:
        # Checked where the model is built, so that a generator refuses it before any work.
        limits = {"snr_db_range": (-20.0, 100.0), "spectral_slope_db_per_octave_range": (-12.0, 12.0),
                  "tone_count_range": (0, 8), "tone_frequency_range_hz": (0.0, 1e6),
                  "tone_level_db_range": (-60.0, 60.0), "impulse_rate_per_s_range": (0.0, 1000.0),
                  "impulse_decay_s_range": (0.0, 0.05), "impulse_level_db_range": (-60.0, 80.0)}
        for name, (low, high) in limits.items():
            object.__setattr__(self, name, _pair(f"NoiseModel.{name}", getattr(self, name), low, high,
                                                 whole=name == "tone_count_range",
                                                 low_open=name in ("tone_frequency_range_hz", "impulse_decay_s_range")))
        object.__setattr__(self, "low_corner_hz", check_number("NoiseModel.low_corner_hz", self.low_corner_hz,
                                                               0.0, 1e5, low_open=True, error=_ERROR))
        object.__setattr__(self, "empty_room_periods", check_whole(
            "NoiseModel.empty_room_periods", self.empty_room_periods, 1, MAX_AVERAGED_PERIODS, error=_ERROR))

    def draw(self, rng: np.random.Generator) -> "NoiseDraw":
        """One room's noise parameters; the same generator state gives the same draw."""
        n_tones = int(rng.integers(self.tone_count_range[0], self.tone_count_range[1] + 1))
        return NoiseDraw(
            snr_db=float(rng.uniform(*self.snr_db_range)),
            spectral_slope_db_per_octave=float(rng.uniform(*self.spectral_slope_db_per_octave_range)),
            low_corner_hz=self.low_corner_hz,
            tone_frequencies_hz=tuple(float(f) for f in rng.uniform(*self.tone_frequency_range_hz, n_tones)),
            tone_levels_db=tuple(float(v) for v in rng.uniform(*self.tone_level_db_range, n_tones)),
            impulse_rate_per_s=float(rng.uniform(*self.impulse_rate_per_s_range)),
            impulse_decay_s=float(rng.uniform(*self.impulse_decay_s_range)),
            impulse_level_db=float(rng.uniform(*self.impulse_level_db_range)),
            empty_room_periods=self.empty_room_periods)


@dataclass(frozen=True)
class NoiseDraw:
    """One room's drawn noise parameters (meanings as in :class:`NoiseModel`, one value per range)."""

    snr_db: float
    spectral_slope_db_per_octave: float = 0.0
    low_corner_hz: float = 1000.0
    tone_frequencies_hz: tuple[float, ...] = ()
    tone_levels_db: tuple[float, ...] = ()
    impulse_rate_per_s: float = 0.0
    impulse_decay_s: float = 0.001
    impulse_level_db: float = 0.0
    empty_room_periods: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "empty_room_periods":
                object.__setattr__(self, f.name, check_whole(f"NoiseDraw.{f.name}", value, 1, MAX_AVERAGED_PERIODS,
                                                             error=_ERROR))
            elif f.name.startswith("tone_"):
                object.__setattr__(self, f.name, tuple(float(v) for v in check_finite_array(
                    f"NoiseDraw.{f.name}", value, shape=(None,), error=_ERROR)))
            else:
                low = 0.0 if f.name in ("low_corner_hz", "impulse_rate_per_s", "impulse_decay_s") else None
                object.__setattr__(self, f.name, check_number(
                    f"NoiseDraw.{f.name}", value, low, low_open=f.name != "impulse_rate_per_s", error=_ERROR))
        if len(self.tone_frequencies_hz) != len(self.tone_levels_db) or min(self.tone_frequencies_hz, default=1) <= 0:
            raise _ERROR(f"NoiseDraw.tone_frequencies_hz = {self.tone_frequencies_hz!r}: give one positive "
                         f"frequency per entry of tone_levels_db ({len(self.tone_levels_db)})")

    def to_dict(self) -> dict:
        """Plain numbers and lists (JSON-ready); ``NoiseDraw(**d)`` reads it back (a dict without
        ``empty_room_periods``, from a store before it, as 1)."""
        return {f.name: list(getattr(self, f.name)) if f.name.startswith("tone_") else
                int(getattr(self, f.name)) if f.name == "empty_room_periods" else float(getattr(self, f.name))
                for f in fields(self)}


def _bin_weights(n_samples: int) -> np.ndarray:
    """Parseval weights of the rFFT bins: mean(x^2) = sum_k weight_k |X_k|^2 / N^2 (2, but 1 at DC and Nyquist)."""
    weights = np.full(n_samples // 2 + 1, 2.0)
    weights[0] = 1.0
    if n_samples % 2 == 0:
        weights[-1] = 1.0
    return weights


def _band_bins(n_samples: int, sample_rate_hz: float, band_hz) -> np.ndarray:
    """Boolean mask of the rFFT bins with low <= f_k <= high."""
    band = check_finite_array("band_hz", band_hz, shape=(2,), error=_ERROR)
    if not 0 < band[0] < band[1] <= sample_rate_hz / 2:
        raise _ERROR(f"band_hz = {tuple(band)!r}: give 0 < low < high <= Nyquist ({sample_rate_hz / 2:g} Hz), "
                     f"e.g. (19000, 32000)")
    f = np.fft.rfftfreq(n_samples, 1.0 / sample_rate_hz)
    mask = (f >= band[0]) & (f <= band[1])
    if not mask.any():
        raise _ERROR(f"band_hz = {tuple(band)!r} holds no frequency bin of a {n_samples}-sample period; widen it")
    return mask


def ambient_noise(n_channels: int, n_samples: int, sample_rate_hz: float, power_in_band: float,
                  slope_db_per_octave: float, band_hz, low_corner_hz: float, rng: np.random.Generator) -> np.ndarray:
    """(n_channels, n_samples) Gaussian noise, PSD c max(f, f_c)^alpha, expected in-band power ``power_in_band``.

    Like :func:`tone_noise` and :func:`impulse_noise` a building block of :func:`render_noise`, which checks
    the scalar arguments."""
    in_band = _band_bins(n_samples, sample_rate_hz, band_hz)
    f = np.fft.rfftfreq(n_samples, 1.0 / sample_rate_hz)
    alpha = slope_db_per_octave / DB_PER_OCTAVE_PER_POWER_EXPONENT
    # Gains relative to the band's lowest bin (keeps f^alpha near 1 for any alpha), DC removed.
    gains = np.sqrt((np.maximum(f, low_corner_hz) / f[in_band][0]) ** alpha)
    gains[0] = 0.0
    weights = _bin_weights(n_samples)[in_band]
    gains *= np.sqrt(power_in_band / (np.sum(weights * gains[in_band] ** 2) / n_samples))  # E P_band = power_in_band
    white = rng.standard_normal((n_channels, n_samples))
    return np.fft.irfft(np.fft.rfft(white, axis=-1) * gains, n_samples, axis=-1)


def tone_noise(n_channels: int, n_samples: int, sample_rate_hz: float, frequencies_hz, powers,
               rng: np.random.Generator, periods: int = 1) -> np.ndarray:
    """(n_channels, n_samples) sum of sqrt(2 P) sin(2 pi f n / fs + phi), phi uniform per tone and channel;
    with ``periods`` > 1 their mean over that many consecutive periods (each tone times |c|, phase + arg c)."""
    t_s = np.arange(n_samples) / sample_rate_hz
    out = np.zeros((n_channels, n_samples))
    for frequency_hz, power in zip(frequencies_hz, powers):
        if not 0 < frequency_hz < sample_rate_hz / 2:
            raise _ERROR(f"tone frequency {frequency_hz:g} Hz must lie in (0, Nyquist = {sample_rate_hz / 2:g} Hz); "
                         f"lower NoiseModel.tone_frequency_range_hz or raise the sample rate")
        phases = rng.uniform(0.0, 2 * np.pi, (n_channels, 1))
        mean = np.mean(np.exp(2j * np.pi * frequency_hz * n_samples / sample_rate_hz * np.arange(periods)))
        out += np.abs(mean) * np.sqrt(2.0 * power) * np.sin(2 * np.pi * frequency_hz * t_s + phases + np.angle(mean))
    return out


def impulse_noise(n_channels: int, n_samples: int, sample_rate_hz: float, rate_per_s: float, decay_s: float,
                  onset_power_in_band: float, band_hz, rng: np.random.Generator, periods: int = 1) -> np.ndarray:
    """(n_channels, n_samples) Poisson bursts a exp(-t / tau) w(t), onsets shared by the channels; with
    ``periods`` > 1 the mean of that many periods (Poisson(r P T) bursts at a / P).

    Expected in-band power (per channel): r T * onset_power_in_band * sum_n exp(-2 n / (tau fs)) / N,
    the sum over the burst's IMPULSE_TAIL_DECAYS * tau fs samples (capped at N); divided by P for a mean.
    """
    in_band = _band_bins(n_samples, sample_rate_hz, band_hz)
    out = np.zeros((n_channels, n_samples))
    count = int(rng.poisson(rate_per_s * periods * n_samples / sample_rate_hz))
    if count == 0:
        return out
    band_fraction = np.sum(_bin_weights(n_samples)[in_band]) / n_samples  # white noise's in-band share, ~2B / fs
    length = int(min(n_samples, np.ceil(IMPULSE_TAIL_DECAYS * decay_s * sample_rate_hz)))
    envelope = (np.sqrt(onset_power_in_band / band_fraction) / periods
                * np.exp(-np.arange(length) / (decay_s * sample_rate_hz)))
    for onset in rng.integers(0, n_samples, count):
        index = (onset + np.arange(length)) % n_samples     # circular: a burst late in the period wraps
        out[:, index] += envelope * rng.standard_normal((n_channels, length))
    return out


def render_noise(draw: NoiseDraw, n_channels: int, n_samples: int, sample_rate_hz: float, reference_power: float,
                 rng: np.random.Generator, band_hz=(19_000.0, 32_000.0), periods: int = 1) -> np.ndarray:
    """(n_channels, n_samples) float64 noise of one recording: ambient + tones + impulses (module docstring).

    reference_power: the chirps' power 1 m from their speakers in free field (``RoomSimulator.reference_power``);
    the ambient in-band power is reference_power / 10^(snr_db / 10). periods: the recording is the mean of that
    many consecutive periods (the empty room: ``draw.empty_room_periods``). The rng is drawn in a fixed order,
    the same for any ``periods``.
    """
    n_channels = check_whole("n_channels", n_channels, 1, error=_ERROR)
    n_samples = check_whole("n_samples", n_samples, 2, error=_ERROR)
    sample_rate_hz = check_number("sample_rate_hz", sample_rate_hz, 0.0, low_open=True, error=_ERROR)
    reference_power = check_number("reference_power", reference_power, 0.0, low_open=True, error=_ERROR)
    if not isinstance(draw, NoiseDraw):
        raise _ERROR(f"draw = {draw!r}: pass a simulator.noise.NoiseDraw, e.g. NoiseModel().draw(rng)")
    if draw.low_corner_hz >= sample_rate_hz / 2:
        raise _ERROR(f"low_corner_hz = {draw.low_corner_hz:g} must be below Nyquist ({sample_rate_hz / 2:g} Hz)")
    periods = check_whole("periods", periods, 1, MAX_AVERAGED_PERIODS, error=_ERROR)
    ambient_power = reference_power / 10 ** (draw.snr_db / 10)
    noise = ambient_noise(n_channels, n_samples, sample_rate_hz, ambient_power / periods,
                          draw.spectral_slope_db_per_octave, band_hz, draw.low_corner_hz, rng)
    noise += tone_noise(n_channels, n_samples, sample_rate_hz, draw.tone_frequencies_hz,
                        ambient_power * 10 ** (np.asarray(draw.tone_levels_db) / 10), rng, periods)
    noise += impulse_noise(n_channels, n_samples, sample_rate_hz, draw.impulse_rate_per_s, draw.impulse_decay_s,
                           ambient_power * 10 ** (draw.impulse_level_db / 10), band_hz, rng, periods)
    return noise
