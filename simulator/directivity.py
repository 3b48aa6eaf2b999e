"""Directivity of speakers and microphones: patterns, orientations and per-path gains.

Conventions (shared with ``simulator.body_echo`` and ``simulator.room_response``)
-------------------------------------------------------------------------------
* A transducer has a pattern and an *aim*, a unit vector in the room frame (the piston's axis,
  the cardioid's front). A path leaves a speaker, or reaches a microphone, along a *direction*
  u: the unit vector from the transducer towards the path's next (speaker) or previous
  (microphone) point. theta is the angle between aim and u, cos theta = aim . u.
* Gains are real amplitude (pressure) factors multiplying a path's frequency response
  H(f) = exp(-j k d) / (4 pi d), the free-field monopole of ``body_echo``; 1 on the axis.
  They are real, so zero-phase: they change no arrival time. A negative gain (a piston's side
  lobe, a hypercardioid's rear lobe) is a polarity inversion, as in pyroomacoustics.
* Image sources: the image of a speaker across a wall of unit normal n radiates like the speaker
  with its aim mirrored, a' = a - 2 (a . n) n (``mirror_orientation``); for a path of any order
  mirror once per wall hit (in a shoebox, once per odd count of hits on each axis). The image's
  gain towards the microphone, a' . u_image, equals the real speaker's gain along the path's
  first leg, a . u_first, because mirroring keeps dot products. A microphone needs no mirroring:
  the path reaches it from the direction of the image source. pyroomacoustics' ISM does the
  same with the first leg (checked in ``tests/test_directivity.py``).

Patterns
--------
* ``Omni``: 1 everywhere.
* ``Cardioid(p)``: the first-order family g = p + (1 - p) cos theta, frequency independent:
  p = 1 omni, 0.75 subcardioid, 0.5 cardioid (null at 180 deg), 0.25 hypercardioid (null at
  109.5 deg, rear lobe -6 dB, inverted), 0 figure-eight. Same as pyroomacoustics'
  ``CardioidFamily(orientation, p)``.
* ``Piston(radius_m)``: a rigid circular piston of radius a in an infinite rigid baffle, far
  field (distance >> k a^2 / 2, the Rayleigh distance: 0.26 m for a = 3 cm at 32 kHz). Its
  pressure directivity is

      D(theta, f) = 2 J1(x) / x,   x = k a sin theta,   k = 2 pi f / c,

  1 on axis; first null at x = 3.8317, -6 dB at x = 2.2118 (half amplitude, -6.02 dB, at 2.2151),
  -3 dB at x = 1.6163. Near x = 0 the
  series 1 - x^2 / 8 + x^4 / 192 is used below |x| < 1e-4 (error < 1e-19). Behind the baffle
  (theta > 90 deg) the infinite baffle lets nothing through; a tweeter in a small box does leak
  some sound backwards, so the gain there is ``rear_gain`` (default 0, frequency independent).
  D is even in theta and smooth in f: in time it is a semicircle of half-width a sin theta / c
  (<= 8.4 samples at 96 kHz for a = 3 cm), so ``gain_fir`` needs only a few dozen taps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np
import scipy.optimize
import scipy.special

from core.checks import check_choice, check_finite_array, check_number

from .errors import SimulationInputError

__all__ = [
    "DEFAULT_AIM_JITTER_DEG",
    "DEFAULT_SPEED_OF_SOUND_M_S",
    "TWEETER_RADIUS_RANGE_M",
    "Cardioid",
    "Omni",
    "Pattern",
    "Piston",
    "Transducer",
    "gain",
    "gain_fir",
    "half_angle_deg",
    "jittered_aim",
    "mirror_orientation",
    "sample_device",
    "spectrum_weights",
    "unit_vector",
]

#: Speed of sound in dry air at 20 deg C, m/s (callers pass the scene's own, e.g. RoomAcoustics').
DEFAULT_SPEED_OF_SOUND_M_S = 343.0
#: Radii of the tweeters ``sample_device`` draws (uniformly), metres.
TWEETER_RADIUS_RANGE_M = (0.008, 0.03)
#: Angular jitter of a sampled device's aim around its nominal aim, degrees (cone half-angle).
DEFAULT_AIM_JITTER_DEG = 15.0
#: Below this |x| the piston uses its series (2 J1(x) / x = 1 - x^2/8 + x^4/192 - ...).
_SERIES_X = 1e-4
#: Piston: where 2 J1(x) / x has its first null (first zero of J1).
_FIRST_NULL_X = 3.8317059702075125


@dataclass(frozen=True)
class Omni:
    """Omnidirectional: gain 1 in every direction and at every frequency."""


@dataclass(frozen=True)
class Cardioid:
    """First-order family, g(theta) = p + (1 - p) cos theta (see the module docstring).

    p: in [0, 1]; 0.5 cardioid, 0.25 hypercardioid, 1 omni, 0 figure-eight.
    """

    p: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "p", check_number("Cardioid.p", self.p, 0.0, 1.0, error=SimulationInputError))


@dataclass(frozen=True)
class Piston:
    """Baffled circular piston, D = 2 J1(k a sin theta) / (k a sin theta) in front, ``rear_gain`` behind.

    radius_m: a, metres, in (0, 1] (tweeters 0.008-0.03).
    rear_gain: gain for theta > 90 deg, in [0, 1]; 0 is the infinite baffle.
    """

    radius_m: float
    rear_gain: float = 0.0

    def __post_init__(self):
        radius = check_number("Piston.radius_m", self.radius_m, 0.0, 1.0, low_open=True, error=SimulationInputError)
        rear = check_number("Piston.rear_gain", self.rear_gain, 0.0, 1.0, error=SimulationInputError)
        object.__setattr__(self, "radius_m", radius)
        object.__setattr__(self, "rear_gain", rear)


Pattern = Union[Omni, Cardioid, Piston]


def unit_vector(name: str, vector) -> np.ndarray:
    """``vector`` (3,) scaled to unit length, or SimulationInputError naming ``name``."""
    v = check_finite_array(name, vector, (3,), error=SimulationInputError)
    norm = float(np.linalg.norm(v))
    if norm < 1e-12:
        raise SimulationInputError(f"{name} = {v.tolist()} has no direction: give a non-zero 3-vector.")
    return v / norm


@dataclass(frozen=True, eq=False)
class Transducer:
    """A speaker or microphone's pattern and unit aim (room frame); the aim is normalised here."""

    pattern: Pattern
    aim: np.ndarray

    def __post_init__(self):
        _check_pattern(self.pattern)
        object.__setattr__(self, "aim", unit_vector("Transducer.aim", self.aim))

    def mirrored(self, wall_normal) -> "Transducer":
        """The image's transducer across a wall of normal ``wall_normal`` (aim mirrored)."""
        return Transducer(self.pattern, mirror_orientation(self.aim, wall_normal))


def mirror_orientation(aim, wall_normal) -> np.ndarray:
    """Aim of an image source across a wall: a - 2 (a . n) n, n the unit wall normal (either sign).

    aim: (3,) or (N, 3); returns the same shape, unit if ``aim`` is. An involution: mirroring twice
    across the same wall gives ``aim`` back.
    """
    n = unit_vector("wall_normal", wall_normal)
    a = np.asarray(aim, dtype=float)
    if a.shape[-1:] != (3,) or not np.all(np.isfinite(a)):
        raise SimulationInputError(f"aim has shape {a.shape}: give finite (3,) or (N, 3) vectors.")
    return a - 2.0 * (a @ n)[..., None] * n


def gain(pattern: Pattern, aim, directions, frequencies_hz,
         speed_of_sound_m_s: float = DEFAULT_SPEED_OF_SOUND_M_S) -> np.ndarray:
    """Amplitude gains (N, F) of a transducer aimed along ``aim`` towards ``directions`` at ``frequencies_hz``.

    directions: (N, 3) from the transducer along each path (normalised here; zero rows refused).
    frequencies_hz: scalar or (F,), >= 0. Omni and cardioid gains are broadcast over F.
    """
    _check_pattern(pattern)
    a = unit_vector("aim", aim)
    u = check_finite_array("directions", directions, (None, 3), error=SimulationInputError)
    norms = np.linalg.norm(u, axis=1)
    if np.any(norms < 1e-12):
        raise SimulationInputError(f"directions[{int(np.argmin(norms))}] is zero: give non-zero direction vectors.")
    f = np.atleast_1d(check_finite_array("frequencies_hz", frequencies_hz, error=SimulationInputError))
    if f.ndim != 1 or np.any(f < 0):
        raise SimulationInputError("frequencies_hz must be a scalar or a 1-D array of frequencies >= 0 Hz.")
    c = check_number("speed_of_sound_m_s", speed_of_sound_m_s, 0.0, low_open=True, error=SimulationInputError)
    cos_theta = np.clip((u @ a) / norms, -1.0, 1.0)
    return _gain_of_cos(pattern, cos_theta, f, c)


def spectrum_weights(pattern: Pattern, aim, directions, n_fft: int, sample_rate_hz: float,
                     speed_of_sound_m_s: float = DEFAULT_SPEED_OF_SOUND_M_S) -> np.ndarray:
    """Complex weights (N, n_fft // 2 + 1) on ``np.fft.rfftfreq(n_fft, 1 / fs)``: multiply into a path's rFFT.

    Exact at each bin (real, zero-phase). The caller's spectrum must be that of a length-n_fft
    (circular) signal; the weighted path then picks up the (non-causal, <= a / c) piston spread.
    """
    f = np.fft.rfftfreq(_check_count("n_fft", n_fft, 2), 1.0 / _check_rate(sample_rate_hz))
    return gain(pattern, aim, directions, f, speed_of_sound_m_s).astype(complex)


def gain_fir(pattern: Pattern, aim, directions, n_taps: int, sample_rate_hz: float,
             speed_of_sound_m_s: float = DEFAULT_SPEED_OF_SOUND_M_S) -> np.ndarray:
    """Linear-phase FIRs (N, n_taps), delay (n_taps - 1) / 2 samples, whose response is the gain.

    n_taps: odd, >= 1. Designed by sampling the gain on a 4096-point rFFT grid up to Nyquist and
    truncating the zero-phase response to +-(n_taps - 1) / 2 samples, unwindowed. The piston's
    response is a semicircle of half-width a sin theta / c plus tails from the kink of the sampled
    gain at Nyquist: for a <= 3 cm at 96 kHz the 19-32 kHz error is below 7e-4 in absolute gain
    (-63 dB re the axis) with 33 taps, 1.2e-3 with 25 (measured over 0-90 deg; the test checks 33).
    """
    n_taps = _check_count("n_taps", n_taps, 1)
    if n_taps % 2 == 0:
        raise SimulationInputError(f"n_taps = {n_taps}: give an odd number of taps (linear phase, integer delay).")
    n_grid = max(4096, 2 * n_taps)
    half = (n_taps - 1) // 2
    zero_phase = np.fft.irfft(spectrum_weights(pattern, aim, directions, n_grid, sample_rate_hz,
                                               speed_of_sound_m_s).real, n_grid, axis=1)
    return np.roll(zero_phase, half, axis=1)[:, :n_taps]


def half_angle_deg(pattern: Pattern, frequency_hz: float, level_db: float = -6.0,
                   speed_of_sound_m_s: float = DEFAULT_SPEED_OF_SOUND_M_S) -> float:
    """Off-axis angle (degrees) where the gain first falls to ``level_db`` (< 0), by brentq.

    Searched from the axis to the piston's first null (or 90 deg) or to 180 deg for a cardioid;
    SimulationInputError when the gain does not fall that low there (an omni, a small ka).
    Accurate to 1e-10 deg (brentq's tolerance).
    """
    _check_pattern(pattern)
    f = check_number("frequency_hz", frequency_hz, 0.0, error=SimulationInputError)
    level = check_number("level_db", level_db, high=0.0, high_open=True, error=SimulationInputError)
    c = check_number("speed_of_sound_m_s", speed_of_sound_m_s, 0.0, low_open=True, error=SimulationInputError)
    target = 10.0 ** (level / 20.0)
    end = math.pi
    if isinstance(pattern, Piston):
        ka = 2.0 * math.pi * f / c * pattern.radius_m
        end = math.asin(_FIRST_NULL_X / ka) if ka > _FIRST_NULL_X else math.pi / 2
    excess = lambda theta: float(_gain_of_cos(pattern, np.array([math.cos(theta)]), np.array([f]), c)[0, 0]) - target
    if isinstance(pattern, Omni) or excess(end) > 0:
        raise SimulationInputError(
            f"level_db = {level:g}: {pattern!r} at {f:g} Hz does not fall that low within {math.degrees(end):.1f} deg; "
            "give a higher level (closer to 0 dB), a higher frequency or a more directive pattern.")
    return math.degrees(scipy.optimize.brentq(excess, 0.0, end, xtol=1e-12))


def jittered_aim(rng: np.random.Generator, nominal_aim, jitter_deg: float) -> np.ndarray:
    """A unit aim drawn uniformly (by solid angle) on the cap of half-angle ``jitter_deg`` about ``nominal_aim``.

    The angle theta from the axis has cos theta uniform in [cos jitter, 1], the azimuth uniform.
    """
    axis = unit_vector("nominal_aim", nominal_aim)
    jitter = check_number("jitter_deg", jitter_deg, 0.0, 180.0, error=SimulationInputError)
    cos_theta = 1.0 - rng.uniform() * (1.0 - math.cos(math.radians(jitter)))  # uniform in [cos j, 1]
    phi = rng.uniform(0.0, 2.0 * math.pi)
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    sin_theta = math.sqrt(max(0.0, 1.0 - cos_theta * cos_theta))
    v = cos_theta * axis + sin_theta * (math.cos(phi) * e1 + math.sin(phi) * e2)
    return v / np.linalg.norm(v)


def sample_device(rng: np.random.Generator, kind: str, nominal_aim,
                  jitter_deg: float = DEFAULT_AIM_JITTER_DEG) -> Transducer:
    """A plausible device aimed near ``nominal_aim`` (into the room), within ``jitter_deg`` of it.

    kind "speaker": a tweeter, ``Piston`` of radius uniform in ``TWEETER_RADIUS_RANGE_M``.
    kind "microphone": ``Omni`` (MEMS capsules of phones and smart speakers) with probability 1/2,
    else ``Cardioid(p)`` with p uniform in [0.25, 0.75] (hypercardioid to subcardioid).
    """
    check_choice("kind", kind, ("speaker", "microphone"), error=SimulationInputError)
    if kind == "speaker":
        pattern = Piston(float(rng.uniform(*TWEETER_RADIUS_RANGE_M)))
    else:
        pattern = Omni() if rng.uniform() < 0.5 else Cardioid(float(rng.uniform(0.25, 0.75)))
    return Transducer(pattern, jittered_aim(rng, nominal_aim, jitter_deg))


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _gain_of_cos(pattern: Pattern, cos_theta: np.ndarray, f_hz: np.ndarray, c: float) -> np.ndarray:
    """Gains (N, F) for cos theta (N,) in [-1, 1] and frequencies (F,); inputs already checked."""
    if isinstance(pattern, Omni):
        return np.ones((len(cos_theta), len(f_hz)))
    if isinstance(pattern, Cardioid):
        return np.repeat((pattern.p + (1.0 - pattern.p) * cos_theta)[:, None], len(f_hz), axis=1)
    sin_theta = np.sqrt(np.clip(1.0 - cos_theta**2, 0.0, 1.0))
    x = (2.0 * np.pi * f_hz / c * pattern.radius_m)[None, :] * sin_theta[:, None]
    small = np.abs(x) < _SERIES_X
    safe_x = np.where(small, 1.0, x)
    x2 = x * x
    d = np.where(small, 1.0 - x2 / 8.0 + x2 * x2 / 192.0, 2.0 * scipy.special.j1(safe_x) / safe_x)
    return np.where((cos_theta < 0.0)[:, None], pattern.rear_gain, d)


def _check_pattern(pattern) -> None:
    if not isinstance(pattern, (Omni, Cardioid, Piston)):
        raise SimulationInputError(
            f"pattern is a {type(pattern).__name__}; pass simulator.directivity.Omni(), Cardioid(p) or "
            "Piston(radius_m).")


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SimulationInputError(f"{name} = {value!r}: give a whole number >= {minimum}.")
    return int(value)


def _check_rate(sample_rate_hz) -> float:
    return check_number("sample_rate_hz", sample_rate_hz, 0.0, low_open=True, error=SimulationInputError)
