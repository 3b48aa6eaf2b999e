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

In the recorder
---------------
``DirectivityModel`` (``SimulationConfig.directivity``) draws a room's devices once
(``DirectivityModel.draw`` -> ``DirectivityDraw``, stored with ``to_dict``): pistons for speakers, omni or
cardioid-family microphones, each aimed from its position at the body region's centre with jitter. The room
response multiplies every image path by ``path_gains`` at its synthesis nodes (``simulator.room_response``);
the body echo multiplies every facet by both gains towards its centroid at the speaker's sub-band centre, and
the body-room multipath's wall images carry mirrored aims (``simulator.recording.RoomSimulator.body_response``).
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
    "DEFAULT_AIM_HEIGHT_M",
    "DEFAULT_AIM_JITTER_DEG",
    "DEFAULT_SPEED_OF_SOUND_M_S",
    "TWEETER_RADIUS_RANGE_M",
    "Cardioid",
    "DirectivityDraw",
    "DirectivityModel",
    "Omni",
    "Pattern",
    "Piston",
    "Transducer",
    "gain",
    "gain_fir",
    "gains_towards_points",
    "half_angle_deg",
    "jittered_aim",
    "mirror_orientation",
    "path_gains",
    "pattern_from_dict",
    "pattern_to_dict",
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
#: Height (m) of the point a room's devices are aimed at, above the centre of its body region (a torso).
DEFAULT_AIM_HEIGHT_M = 1.0
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
    norms = _row_norms(u)
    if np.any(norms < 1e-12):
        raise SimulationInputError(f"directions[{int(np.argmin(norms))}] is zero: give non-zero direction vectors.")
    f = np.atleast_1d(check_finite_array("frequencies_hz", frequencies_hz, error=SimulationInputError))
    if f.ndim != 1 or np.any(f < 0):
        raise SimulationInputError("frequencies_hz must be a scalar or a 1-D array of frequencies >= 0 Hz.")
    c = check_number("speed_of_sound_m_s", speed_of_sound_m_s, 0.0, low_open=True, error=SimulationInputError)
    cos_theta = np.clip((u @ a) / norms, -1.0, 1.0)
    return _gain_of_cos(pattern, cos_theta, f, c)


def gains_towards_points(devices, positions_m, points_m, frequencies_hz,
                         speed_of_sound_m_s: float = DEFAULT_SPEED_OF_SOUND_M_S, where=None) -> np.ndarray:
    """(N, P) gain of transducer ``devices[i]`` at ``positions_m[i]`` (N, 3) towards every point (P, 3), each at
    its own frequency ``frequencies_hz[i]`` (N,): row i is ``gain(pattern, aim, points - position, f_i)[:, 0]``
    (omni rows are 1), e.g. every source's and receiver's gain towards a body's facet centroids.

    where: optional (N, P) bool; only those entries are computed, the others are 1 (e.g. the facets each
    position lights: the gains of unlit facets are never used). The entries computed are the same as with
    ``where=None``, bit for bit (checked in ``tests/test_directivity.py``).

    One call for all N rows: the arguments are checked once and the rows share their work arrays, which
    saves most of what N calls of :func:`gain` spend outside the patterns' own arithmetic.
    """
    devices = tuple(devices)
    if not all(isinstance(d, Transducer) for d in devices):
        raise SimulationInputError("devices: give a sequence of simulator.directivity.Transducer")
    positions = check_finite_array("positions_m", positions_m, (len(devices), 3), error=SimulationInputError)
    points = check_finite_array("points_m", points_m, (None, 3), error=SimulationInputError)
    f = check_finite_array("frequencies_hz", frequencies_hz, (len(devices),), error=SimulationInputError)
    if np.any(f < 0):
        raise SimulationInputError("frequencies_hz must be >= 0 Hz.")
    c = check_number("speed_of_sound_m_s", speed_of_sound_m_s, 0.0, low_open=True, error=SimulationInputError)
    if where is not None:
        where = np.asarray(where)
        if where.shape != (len(devices), len(points)) or where.dtype != bool:
            raise SimulationInputError(f"where has shape {where.shape} and dtype {where.dtype}: give a "
                                       f"({len(devices)}, {len(points)}) bool array, or None (every entry).")
    out = np.ones((len(devices), len(points)))
    buffer = np.empty_like(points)
    for i, (device, position) in enumerate(zip(devices, positions)):
        if isinstance(device.pattern, Omni):
            continue
        if where is None:
            u = np.subtract(points, position, out=buffer)
        else:
            columns = np.flatnonzero(where[i])
            u = points[columns] - position
        norms = _row_norms(u)
        if np.any(norms < 1e-12):
            raise SimulationInputError(f"positions_m[{i}] coincides with a point of points_m: a direction needs "
                                       "two distinct points.")
        aim = device.aim / np.linalg.norm(device.aim)  # as gain() (unit_vector): the same last bit
        g = _gain_of_cos(device.pattern, np.clip((u @ aim) / norms, -1.0, 1.0), f[i:i + 1], c)[:, 0]
        if where is None:
            out[i] = g
        else:
            out[i, columns] = g
    return out


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


def pattern_to_dict(pattern: Pattern) -> dict:
    """Plain data of a pattern: {"kind": "omni"}, {"kind": "cardioid", "p"} or
    {"kind": "piston", "radius_m", "rear_gain"}."""
    _check_pattern(pattern)
    if isinstance(pattern, Omni):
        return {"kind": "omni"}
    if isinstance(pattern, Cardioid):
        return {"kind": "cardioid", "p": float(pattern.p)}
    return {"kind": "piston", "radius_m": float(pattern.radius_m), "rear_gain": float(pattern.rear_gain)}


def pattern_from_dict(data: dict) -> Pattern:
    """The pattern of a :func:`pattern_to_dict` dict."""
    kind = check_choice("pattern kind", dict(data).get("kind"), ("omni", "cardioid", "piston"),
                        error=SimulationInputError)
    if kind == "omni":
        return Omni()
    if kind == "cardioid":
        return Cardioid(data["p"])
    return Piston(data["radius_m"], data.get("rear_gain", 0.0))


@dataclass(frozen=True, eq=False)
class DirectivityDraw:
    """One room's drawn devices: a :class:`Transducer` per speaker and per microphone (room frame)."""

    speakers: tuple[Transducer, ...]
    microphones: tuple[Transducer, ...]

    def __post_init__(self):
        for name in ("speakers", "microphones"):
            devices = tuple(getattr(self, name))
            if not all(isinstance(d, Transducer) for d in devices):
                raise SimulationInputError(
                    f"DirectivityDraw.{name}: give a sequence of simulator.directivity.Transducer")
            object.__setattr__(self, name, devices)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready) for a store: per device its pattern (:func:`pattern_to_dict`) and aim."""
        return {name: [{"pattern": pattern_to_dict(d.pattern), "aim": [float(v) for v in d.aim]}
                       for d in getattr(self, name)] for name in ("speakers", "microphones")}

    @classmethod
    def from_dict(cls, data: dict) -> "DirectivityDraw":
        """The draw of a :meth:`to_dict` dict."""
        return cls(*(tuple(Transducer(pattern_from_dict(d["pattern"]), d["aim"]) for d in data[name])
                     for name in ("speakers", "microphones")))


@dataclass(frozen=True)
class DirectivityModel:
    """How a room's speakers and microphones are drawn: patterns and aims (:meth:`draw`, once per room).

    Every device is aimed from its position towards a point of the room (``toward_m`` of :meth:`draw`;
    the recorder passes the centre of the room's body region, ``DEFAULT_AIM_HEIGHT_M`` above the floor),
    then jittered uniformly on the cap of half-angle ``jitter_deg`` about that nominal aim
    (:func:`jittered_aim`): a rig set up by hand to face where people are, not to the degree.

    Attributes:
        speaker_radius_range_m: speakers are baffled pistons (tweeters) of radius drawn uniformly here.
        speaker_rear_gain: the pistons' gain behind their baffle (0: infinite baffle).
        microphone_omni_probability: a microphone is omni with this probability (MEMS capsules), else
            ``Cardioid(p)`` with p drawn uniformly in ``microphone_p_range``.
        microphone_p_range: cardioid-family p of directional microphones (0.25 hyper- to 0.75 subcardioid).
        jitter_deg: half-angle of the cone of aims around the nominal aim.
        speaker_pattern, microphone_pattern: a fixed pattern for every speaker (microphone) instead of the
            drawn ones (a rig whose devices are known); only the aims are drawn then.

    The defaults draw exactly what :func:`sample_device` draws, in the same order (per speaker, then per
    microphone: the pattern, then the aim).
    """

    speaker_radius_range_m: tuple[float, float] = TWEETER_RADIUS_RANGE_M
    speaker_rear_gain: float = 0.0
    microphone_omni_probability: float = 0.5
    microphone_p_range: tuple[float, float] = (0.25, 0.75)
    jitter_deg: float = DEFAULT_AIM_JITTER_DEG
    speaker_pattern: Pattern | None = None
    microphone_pattern: Pattern | None = None

    def __post_init__(self):
        def pair(name, low, high, low_open=False):
            value = check_finite_array(f"DirectivityModel.{name}", getattr(self, name), error=SimulationInputError)
            value = value.ravel()
            if len(value) != 2 or not (low < value[0] if low_open else low <= value[0]) or \
                    not value[0] <= value[1] <= high:
                raise SimulationInputError(f"DirectivityModel.{name} = {getattr(self, name)!r}: give (low, high) with "
                                           f"{low:g} {'<' if low_open else '<='} low <= high <= {high:g}")
            object.__setattr__(self, name, (float(value[0]), float(value[1])))

        pair("speaker_radius_range_m", 0.0, 1.0, low_open=True)
        pair("microphone_p_range", 0.0, 1.0)
        for name, high in (("speaker_rear_gain", 1.0), ("microphone_omni_probability", 1.0), ("jitter_deg", 180.0)):
            object.__setattr__(self, name, check_number(f"DirectivityModel.{name}", getattr(self, name), 0.0, high,
                                                        error=SimulationInputError))
        for name in ("speaker_pattern", "microphone_pattern"):
            if getattr(self, name) is not None:
                try:
                    _check_pattern(getattr(self, name))
                except SimulationInputError:
                    raise SimulationInputError(f"DirectivityModel.{name} = {getattr(self, name)!r}: pass Omni(), "
                                               "Cardioid(p), Piston(radius_m) or None (drawn)") from None

    def draw(self, rng: np.random.Generator, speaker_positions_m, microphone_positions_m, toward_m) -> DirectivityDraw:
        """Per speaker and per microphone a :class:`Transducer` aimed from its position near ``toward_m`` (3,)."""
        if not isinstance(rng, np.random.Generator):
            raise SimulationInputError(f"rng = {rng!r}: pass a numpy.random.Generator, e.g. np.random.default_rng(0)")
        toward = check_finite_array("toward_m", toward_m, (3,), error=SimulationInputError)
        devices = {}
        for kind, name, positions in (("speaker", "speaker_positions_m", speaker_positions_m),
                                      ("microphone", "microphone_positions_m", microphone_positions_m)):
            points = check_finite_array(name, positions, (None, 3), error=SimulationInputError)
            drawn = []
            for i, point in enumerate(points):
                if float(np.linalg.norm(toward - point)) < 1e-6:
                    raise SimulationInputError(f"{name}[{i}] = {point.tolist()} is the point devices are aimed at "
                                               f"(toward_m): aim them at a point away from every device")
                drawn.append(Transducer(self._pattern(rng, kind), jittered_aim(rng, toward - point, self.jitter_deg)))
            devices[kind] = tuple(drawn)
        return DirectivityDraw(devices["speaker"], devices["microphone"])

    def _pattern(self, rng: np.random.Generator, kind: str) -> Pattern:
        if kind == "speaker":
            if self.speaker_pattern is not None:
                return self.speaker_pattern
            return Piston(float(rng.uniform(*self.speaker_radius_range_m)), self.speaker_rear_gain)
        if self.microphone_pattern is not None:
            return self.microphone_pattern
        if rng.uniform() < self.microphone_omni_probability:
            return Omni()
        return Cardioid(float(rng.uniform(*self.microphone_p_range)))


def path_gains(speaker: Transducer | None, microphone: Transducer | None, departures, arrivals, frequencies_hz,
               speed_of_sound_m_s: float = DEFAULT_SPEED_OF_SOUND_M_S) -> np.ndarray:
    """(K, F) gains g_speaker(departure) * g_microphone(arrival) of K paths at ``frequencies_hz`` (F,).

    departures: (K, 3) direction in which each path leaves the speaker (its first leg; for an image source,
    the real speaker's direction, see the module docstring). arrivals: (K, 3) direction from the microphone
    towards where each path comes from (its image source). None: an omni device (gain 1).
    """
    f = np.atleast_1d(np.asarray(frequencies_hz, dtype=float))
    out = np.ones((len(np.asarray(departures)), len(f)))
    for device, directions in ((speaker, departures), (microphone, arrivals)):
        if device is not None and not isinstance(device.pattern, Omni) and len(out):
            out = out * gain(device.pattern, device.aim, directions, f, speed_of_sound_m_s)
    return out


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _row_norms(v: np.ndarray) -> np.ndarray:
    """(N,) Euclidean norms of the rows of v (N, 3): bit for bit ``np.linalg.norm(v, axis=1)``.

    The same products summed in the same order ((x^2 + y^2) + z^2, numpy's order for a length-3 axis),
    written out because numpy's strided reduction over an axis of length 3 is several times slower.
    """
    return np.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1] + v[:, 2] * v[:, 2])


def _gain_of_cos(pattern: Pattern, cos_theta: np.ndarray, f_hz: np.ndarray, c: float) -> np.ndarray:
    """Gains (N, F) for cos theta (N,) in [-1, 1] and frequencies (F,); inputs already checked."""
    if isinstance(pattern, Omni):
        return np.ones((len(cos_theta), len(f_hz)))
    if isinstance(pattern, Cardioid):
        return np.repeat((pattern.p + (1.0 - pattern.p) * cos_theta)[:, None], len(f_hz), axis=1)
    # Behind the baffle the gain is rear_gain: D (whose Bessel function is most of the cost) is evaluated in
    # front only, element by element the same arithmetic as over every direction.
    front = np.flatnonzero(cos_theta >= 0.0)
    all_front = len(front) == len(cos_theta)
    sin_theta = np.sqrt(np.clip(1.0 - (cos_theta if all_front else cos_theta[front]) ** 2, 0.0, 1.0))
    x = (2.0 * np.pi * f_hz / c * pattern.radius_m)[None, :] * sin_theta[:, None]
    small = np.abs(x) < _SERIES_X
    if small.any():  # near the axis (or f = 0): the series, as 0 / 0 has no value
        d = np.empty_like(x)
        x2 = x[small] * x[small]
        d[small] = 1.0 - x2 / 8.0 + x2 * x2 / 192.0
        large = x[~small]
        d[~small] = 2.0 * scipy.special.j1(large) / large
    else:  # j1 on a flat array: twice as fast as on an (N, 1) one
        flat = x.ravel()
        d = (2.0 * scipy.special.j1(flat) / flat).reshape(x.shape)
    if all_front:
        return d
    out = np.full((len(cos_theta), len(f_hz)), float(pattern.rear_gain))
    out[front] = d
    return out


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
