"""The empty room drifts: its recording is made at another moment, in slightly warmer or colder air.

Eq. 4 subtracts an empty-room recording from every frame. Made minutes apart, the two hear air whose
temperature differs by dT, so the speed of sound differs (0.59 m/s per K at 20 C) and every path of
length L arrives at L / c1 instead of L / c0: 5 m of path moves by 1.2 samples at 96 kHz for dT = 0.5 K.
Of a path of amplitude a = 1 / (4 pi L) the subtraction leaves

    |residual(f)| = a |1 - exp(-j 2 pi f L (1 / c1 - 1 / c0))|,

and a room's paths dwarf a body's echo (a co-located pair's 2 cm direct path by ~70 dB).

* :class:`DriftModel` draws dT (default within +-0.5 K).
* :func:`stretch_impulse_responses` moves every delay L / c_from to L / c_to, amplitudes kept:
  H_to(f) = H_from(a f), a = c_from / c_to, evaluated by a chirp-z transform (the DTFT at a f_k).
* :func:`drifted_empty_room` gives a recorder the empty room at T + dT by stretching its responses;
  :func:`resynthesized_empty_room` re-synthesises a ``RoomAcoustics``' paths at c1 instead.
* :func:`stretch_to_speed`, the drift-aware deconvolution's step, brings an empty-room recording to
  the frame's speed of sound before it is subtracted.

Error bounds of the stretch (a - 1 = -8.5e-4 for dT = +0.5 K at 20 C)
------------------------------------------------------------------------
* Delays are moved exactly; each path's spectral shape (wall damping, air absorption, band limit) is
  read at a f instead of f: a relative error |a - 1| |d ln A / d ln f| < 1.3e-3 (0.01 dB) over 19-32
  kHz for a 10 m path at dT = 0.5 K; the band limit's roll-off (38.4-48 kHz) moves by 33 Hz.
* The window keeps its length T: for a > 1 the paths of the last (a - 1) T samples leave it, for
  a < 1 paths from beyond T are missing from the last (1 - a) T samples (late reverberation).
* The stretch assumes band-limited responses. The simulator's are cut at t = 0, which clips the
  band-limited pre-tail of a path arriving within 48 samples (a co-located pair's 2 cm direct path):
  the cut then rings when stretched (:func:`resynthesized_empty_room` keeps the simulator's cut).
* Stretch then un-stretch returns a band-limited response to ~1e-9 (float64 chirp-z).
* Air absorption's own temperature dependence is neglected: within 10-30 C at 50 % RH, 0.5 K changes
  it by at most 0.02 dB/m (0.2 dB over 10 m of path), at 20 C by at most 0.008 dB/m (0.08 dB over
  10 m) even at fixed absolute humidity -- against a delay shift of one sample per 4 m of path.

Not modelled: an object or a door moved between the recordings (image sources must be recomputed).

Measured (6 x 7 x 3 m shoebox, order 4, a 15 cm sphere, dT = +-0.5 K, exact re-synthesised drift; kernel
error |deconvolved - true| / |true|, no noise): co-located rig 0.0014 without drift, 19.1 with it, 0.14
after :func:`stretch_to_speed` (0.016 if the room keeps its pre-tails, circularly); separated rig 0.0013,
10.6, 0.010. At 40 dB SNR (floor 0.098 / 0.068) the drift-aware step leaves 0.17 / 0.068.

Example::

    delta_k = DriftModel().draw(rng)
    empty = fold_into_period(drifted_empty_room(acoustics.impulse_responses, scene.temperature_c,
                                                delta_k, 96_000.0), period)
    aligned = stretch_to_speed(empty_recordings, c_empty_m_s, c_frame_m_s, 96_000.0, chirps, bands_hz)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal

from core.checks import check_finite_array, check_number, check_whole
from rooms.air import speed_of_sound_m_s
from simulator.errors import SimulationInputError

__all__ = ["MAX_TEMPERATURE_DRIFT_K", "DriftModel", "drift_speeds", "drifted_empty_room", "resynthesized_empty_room",
           "stretch_impulse_responses", "stretch_to_speed"]

#: Accepted temperature drifts, K: beyond this a stretch is not the right model (the room changed).
MAX_TEMPERATURE_DRIFT_K = 10.0
_SPEED_RANGE_M_S = (250.0, 450.0)    # accepted speeds of sound (air from -90 to +150 C)
_TEMPERATURE_RANGE_C = (-40.0, 60.0)  # as rooms.air
_PAD_SAMPLES = 128                   # zero padding after a stretched response (band limit: 48 samples)
_ERROR = SimulationInputError


@dataclass(frozen=True)
class DriftModel:
    """How the air changes between a frame and its empty-room recording.

    Attributes:
        temperature_drift_k_range: (low, high) K; dT = T_empty - T_frame is drawn uniformly in it
            (accepted within +-10 K).
    """

    temperature_drift_k_range: tuple[float, float] = (-0.5, 0.5)

    def __post_init__(self) -> None:
        name, value, limit = "temperature_drift_k_range", self.temperature_drift_k_range, MAX_TEMPERATURE_DRIFT_K
        pair = check_finite_array(name, value, error=_ERROR).ravel()
        if len(pair) != 2 or not -limit <= pair[0] <= pair[1] <= limit:
            raise _ERROR(f"{name} = {value!r}: give (low, high) with -{limit:g} <= low <= high <= {limit:g} K")
        object.__setattr__(self, name, (float(pair[0]), float(pair[1])))

    def draw(self, rng: np.random.Generator) -> float:
        """One temperature drift dT, K."""
        if not isinstance(rng, np.random.Generator):
            raise _ERROR(f"rng = {rng!r}: pass a numpy.random.Generator, e.g. np.random.default_rng(0)")
        return float(rng.uniform(*self.temperature_drift_k_range))


def _checked(responses, name: str, speed_from_m_s, speed_to_m_s, sample_rate_hz) -> tuple[np.ndarray, float]:
    """(responses as a float array, scale a = c_from / c_to), or SimulationInputError naming the argument."""
    array = check_finite_array(name, responses, error=_ERROR)
    if array.ndim < 1 or array.shape[-1] < 2:
        raise _ERROR(f"{name} has shape {array.shape}: give (..., T) signals with T >= 2 samples")
    speeds = [check_number(label, value, *_SPEED_RANGE_M_S, error=_ERROR)
              for label, value in (("speed_from_m_s", speed_from_m_s), ("speed_to_m_s", speed_to_m_s))]
    check_number("sample_rate_hz", sample_rate_hz, 0.0, low_open=True, error=_ERROR)
    return array, speeds[0] / speeds[1]


def _stretch(flat: np.ndarray, scale: float, origin_samples: float, n_fft: int) -> np.ndarray:
    """(P, n_fft) responses with spectra X(scale f) exp(j 2 pi (scale - 1) f origin): time scaled by
    ``scale`` about sample ``origin_samples``, path amplitudes kept; bins whose scale f passes Nyquist
    are zero (the simulator's responses vanish there)."""
    bins = np.arange(n_fft // 2 + 1)
    spectra = scipy.signal.czt(flat, m=len(bins), w=np.exp(-2j * np.pi * scale / n_fft), a=1.0, axis=-1)
    spectra[..., bins * scale > n_fft / 2] = 0.0
    if origin_samples:
        spectra *= np.exp(2j * np.pi * (scale - 1.0) * bins * origin_samples / n_fft)
    return np.fft.irfft(spectra, n_fft, axis=-1)


def stretch_impulse_responses(responses, speed_from_m_s: float, speed_to_m_s: float,
                              sample_rate_hz: float) -> np.ndarray:
    """(..., T) impulse responses (t = 0 at emission) heard at ``speed_from_m_s``, as heard at ``speed_to_m_s``.

    Every path's delay L / c_from becomes L / c_to, its amplitude kept: H_to(f) = H_from(a f), a = c_from /
    c_to, on a zero-padded FFT grid, then cut to T (error bounds: module docstring). Equal speeds return
    a copy, bit for bit. ``sample_rate_hz`` is only checked: the stretch is the same at any rate.
    """
    array, scale = _checked(responses, "responses", speed_from_m_s, speed_to_m_s, sample_rate_hz)
    if scale == 1.0:
        return array.copy()
    T = array.shape[-1]
    n_fft = scipy.fft.next_fast_len(int(np.ceil(max(scale, 1.0) * T)) + _PAD_SAMPLES, real=True)
    return _stretch(array.reshape(-1, T), scale, 0.0, n_fft)[:, :T].reshape(array.shape)


def drift_speeds(temperature_c, temperature_drift_k) -> tuple[float, float]:
    """(c0, c1) m/s of the air at ``temperature_c`` and ``temperature_c + temperature_drift_k``."""
    temperature_c = check_number("temperature_c", temperature_c, *_TEMPERATURE_RANGE_C, error=_ERROR)
    limit = MAX_TEMPERATURE_DRIFT_K
    drift_k = check_number("temperature_drift_k", temperature_drift_k, -limit, limit, error=_ERROR)
    check_number("temperature_c + temperature_drift_k", temperature_c + drift_k, *_TEMPERATURE_RANGE_C, error=_ERROR)
    return speed_of_sound_m_s(temperature_c), speed_of_sound_m_s(temperature_c + drift_k)


def drifted_empty_room(impulse_responses, temperature_c: float, temperature_drift_k: float,
                       sample_rate_hz: float) -> np.ndarray:
    """The empty room's (..., T) responses at ``temperature_c`` + ``temperature_drift_k`` (K), by stretching.

    ``impulse_responses`` (t = 0 at emission) are those at ``temperature_c``, best before folding into a
    period (``RoomAcoustics.impulse_responses``): a folded response's late paths would be retimed as if
    they had arrived within the period. Delays L / c0 become L / c1 (``rooms.air.speed_of_sound_m_s``);
    amplitudes and air absorption are kept (bounds in the module docstring). dT = 0 returns a copy, bit
    for bit.
    """
    speed_from_m_s, speed_to_m_s = drift_speeds(temperature_c, temperature_drift_k)
    return stretch_impulse_responses(impulse_responses, speed_from_m_s, speed_to_m_s, sample_rate_hz)


def resynthesized_empty_room(acoustics, temperature_drift_k: float, path_indices=None) -> np.ndarray:
    """(S, M, T) the empty room of a ``RoomAcoustics`` with every path re-synthesised at c(T + dT).

    Exact delays L / c1 with the paths' amplitudes at the original temperature, by the same synthesis
    as ``acoustics.impulse_responses`` (which dT = 0 returns, copied bit for bit). ``path_indices``: only
    those paths (default: all; dT = 0 then synthesises them at c0).
    """
    c0_m_s, c1_m_s = drift_speeds(acoustics.temperature_c, temperature_drift_k)
    if c0_m_s == c1_m_s and path_indices is None:
        return np.array(acoustics.impulse_responses, copy=True)
    paths = dataclasses.replace(acoustics.paths, delay_s=acoustics.paths.length_m / c1_m_s)
    moved = dataclasses.replace(acoustics, paths=paths, speed_of_sound_m_s=c1_m_s)
    return moved.path_impulse_responses(np.arange(paths.n_paths) if path_indices is None else path_indices)


def _band_partition(frequencies_hz: np.ndarray, bands_hz: np.ndarray) -> np.ndarray:
    """(S, F) windows summing to 1 over the bands and the gaps between them: 1 on band s, a raised cosine
    from 1 to 0 across each gap to a neighbour (and across as wide a gap outside the outer edges)."""
    f, (lows, highs) = np.abs(frequencies_hz), bands_hz.T
    gaps = lows[1:] - highs[:-1] if len(bands_hz) > 1 else np.array([500.0])
    below = np.maximum(np.concatenate([gaps[:1], gaps]), 1e-9)[: len(lows), None]     # gap under band s
    above = np.maximum(np.concatenate([gaps, gaps[-1:]]), 1e-9)[: len(lows), None]    # gap over band s
    rise = np.clip((f - lows[:, None]) / below + 1.0, 0.0, 1.0)
    fall = np.clip((highs[:, None] - f) / above + 1.0, 0.0, 1.0)
    return 0.25 * (1 - np.cos(np.pi * rise)) * (1 - np.cos(np.pi * fall))


def _strongest_arrival(spectra: np.ndarray, shapes: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(delay_samples, amplitude), each (S, M): the strongest arrival of band-limited responses whose
    (S, M, K) spectra are a delta seen through the (S, K) band shapes, plus the rest (envelope peak,
    then three weighted least-squares fits of the phase slope, then the amplitude's projection)."""
    analytic = np.zeros(spectra.shape[:-1] + (n_samples,), complex)
    analytic[..., : spectra.shape[-1]] = 2 * spectra
    lag = np.argmax(np.abs(np.fft.ifft(analytic, axis=-1)), axis=-1).astype(float)
    lag = np.where(lag > n_samples / 2, lag - n_samples, lag)
    omega = 2 * np.pi * np.arange(spectra.shape[-1]) / n_samples
    weight = shapes[:, None] * np.abs(spectra)
    for _ in range(3):
        aligned = spectra * np.exp(1j * omega * lag[..., None])
        polarity = np.where(np.real(np.sum(weight * aligned, -1, keepdims=True)) < 0, -1.0, 1.0)
        phase = np.angle(aligned * polarity)                    # a delta's phase is -omega lag, no offset
        lag = lag - np.sum(weight * omega * phase, -1) / np.maximum(np.sum(weight * omega**2, -1), 1e-300)
    aligned = spectra * np.exp(1j * omega * lag[..., None])
    return lag, np.real(np.sum(shapes[:, None] * aligned, -1)) / np.maximum(np.sum(shapes**2, -1), 1e-300)[:, None]


def stretch_to_speed(empty_recordings, speed_empty_m_s: float, speed_frame_m_s: float, sample_rate_hz: float,
                     chirps, bands_hz, *, regularization: float = 1e-6, strongest_arrivals: int = 1,
                     guard_samples: int | None = None) -> np.ndarray:
    """(M, T) one period of an empty-room recording made at ``speed_empty_m_s``, as if made at ``speed_frame_m_s``.

    Args:
        empty_recordings: (M, T) one period of the steady state, t = 0 at emission
            (``simulator.deconvolution.estimate_emission_offset`` finds it in an unsynchronised one).
        speed_empty_m_s, speed_frame_m_s: speeds of sound of the empty room's air and the frame's.
        sample_rate_hz: of the recordings. chirps: (S, T) one period of each speaker; bands_hz: (S, 2).
        regularization: lambda of the division by each chirp, relative to its peak power.
        strongest_arrivals: arrivals per pair moved as broadband deltas (see below); 0 for none.
        guard_samples: the period's last samples taken as negative times (pre-tails), default T // 8.

    A recording is sum_s chirp_s (*) h_sm; stretching it whole would stretch the chirps too (their
    100 ms sweep retimed by up to (a - 1) 100 ms, 8 samples at 0.5 K, each frequency moved by
    (a - 1) f). So the strongest arrivals of each pair (its direct path) are located, removed from
    the recording through their own chirp at every frequency, and put back at a times their delay;
    the rest is deconvolved per speaker (H_sm = W_s E_m / C_s, W_s: band s widened across the guard
    gaps), stretched about t = 0 (:func:`stretch_impulse_responses`), folded back into the period and
    convolved with its chirp again. Limits: a speaker's leak into a neighbour's band is retimed with the
    neighbour's chirp, which is why the strongest paths (a co-located pair's, ~70 dB above a body's
    echo) are moved as deltas; paths from beyond one period (over 34 m of air) are retimed as if within
    it; noise is stretched too; transducers' group delays are scaled by a (0.02 sample for 0.2 ms).
    Equal speeds return a copy, bit for bit.
    """
    empty, scale = _checked(empty_recordings, "empty_recordings", speed_empty_m_s, speed_frame_m_s, sample_rate_hz)
    chirps = check_finite_array("chirps", chirps, error=_ERROR)
    if empty.ndim != 2 or chirps.ndim != 2 or chirps.shape[1] != empty.shape[1]:
        raise _ERROR(f"empty_recordings {empty.shape} and chirps {chirps.shape}: give (M, T) and (S, T), "
                     "one period each")
    bands = check_finite_array("bands_hz", bands_hz, shape=(len(chirps), 2), error=_ERROR)
    if not (np.all(bands[:, 0] < bands[:, 1]) and np.all(bands[1:, 0] >= bands[:-1, 1]) and bands[0, 0] > 0):
        raise _ERROR(f"bands_hz = {bands.tolist()}: give disjoint (low, high) bands in increasing order, "
                     "e.g. ChirpPlan.speaker_bands_hz()")
    check_number("regularization", regularization, 0.0, low_open=True, error=_ERROR)
    n_arrivals = check_whole("strongest_arrivals", strongest_arrivals, 0, 8, error=_ERROR)
    T = empty.shape[1]
    guard = T // 8 if guard_samples is None else check_whole("guard_samples", guard_samples, 0, T // 2, error=_ERROR)
    if scale == 1.0:
        return empty.copy()
    chirp_spectra, spectra = np.fft.rfft(chirps, axis=-1), np.fft.rfft(empty, axis=-1)       # (S, K), (M, K)
    power = np.abs(chirp_spectra) ** 2
    windows = _band_partition(np.fft.rfftfreq(T, 1.0 / sample_rate_hz), bands)
    inverse = windows * np.conj(chirp_spectra) / (power + regularization * power.max(axis=-1, keepdims=True))
    shapes = windows * power / (power + regularization * power.max(axis=-1, keepdims=True))  # of a delta
    omega = 2 * np.pi * np.arange(spectra.shape[-1]) / T                                   # rad / sample
    removed = np.zeros((len(chirps),) + spectra.shape, complex)                          # (S, M, K)
    moved = np.zeros_like(removed)
    for _ in range(n_arrivals):
        rest = spectra - np.einsum("sk,smk->mk", chirp_spectra, removed)
        lag, amplitude = _strongest_arrival(inverse[:, None] * rest[None], shapes, T)
        removed += amplitude[..., None] * np.exp(-1j * omega * lag[..., None])
        moved += amplitude[..., None] * np.exp(-1j * omega * scale * lag[..., None])
    rest = spectra - np.einsum("sk,smk->mk", chirp_spectra, removed)
    responses = np.fft.irfft(inverse[:, None] * rest[None], T, axis=-1)                   # (S, M, T)
    shifted = np.roll(responses, guard, axis=-1).reshape(-1, T)                           # t = 0 at sample guard
    stretched = _stretch(shifted, scale, float(guard), 2 * T)                             # (S M, 2 T)
    folded = np.roll(stretched.reshape(-1, 2, T).sum(axis=1), -guard, axis=-1).reshape(responses.shape)
    total = np.fft.rfft(folded, axis=-1) + moved
    return np.fft.irfft(np.einsum("sk,smk->mk", chirp_spectra, total), T, axis=-1)
