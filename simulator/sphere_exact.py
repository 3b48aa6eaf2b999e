"""Exact scattering of a point source by a rigid (sound-hard) sphere: the reference solution.

Convention (the same as ``body_echo``): time dependence exp(+j omega t), a unit point source's
free field is exp(-j k d) / (4 pi d) (impulse response delta(t - d / c) / (4 pi d)), and the
outgoing spherical Hankel function is h_n = h_n^(2) = j_n - j y_n.

Derivation. With the sphere (radius a) centred at the origin, the source at r_s and the
receiver at r_r (both outside), gamma the angle between them seen from the centre, the addition
theorem expands the incident field for a < r < r_s as

    p_i(r) = -(j k / 4 pi) sum_n (2n + 1) j_n(k r) h_n(k r_s) P_n(cos gamma).

The scattered field is outgoing, p_s = -(j k / 4 pi) sum_n (2n + 1) A_n h_n(k r) h_n(k r_s) P_n,
and the rigid boundary condition d(p_i + p_s)/dr = 0 at r = a gives A_n = -j_n'(ka) / h_n'(ka):

    p_s(r_r) = (j k / 4 pi) sum_n (2n + 1) [j_n'(ka) / h_n'(ka)] h_n(k r_s) h_n(k r_r) P_n(cos gamma),

symmetric in r_s and r_r (reciprocity). Limits (checked in tests/test_validate.py):
* Rayleigh, ka << 1, far field: p_s = -(k^2 a^3 / 3)(1 - 1.5 cos theta) exp(-j k (r_s + r_r)) /
  (4 pi r_s r_r), theta the scattering angle (pi - gamma).
* Geometric optics, ka >> 1, monostatic at distance d from the centre: the specular echo is
  a / (2 d) times a spherical wave from the virtual image, amplitude a / (8 pi d (d - a)) at delay
  2 (d - a) / c (convex mirror of radius a), plus creeping waves delayed by (2 + pi) a / c.

The series is summed to n_max = ka + 4 (ka)^(1/3) + 10 terms (beyond it j_n'(ka)/h_n'(ka) decays
super-exponentially); scipy's spherical Bessel functions are accurate there (the README gives
the check against mpmath).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.special import spherical_jn, spherical_yn

from .body_echo import output_lowpass
from .errors import SimulationInputError
from .signals import band_window

__all__ = ["n_terms", "scattered_pressure", "scattered_impulse_response", "free_field_pressure"]


def n_terms(ka: float) -> int:
    """Number of series terms (highest order + 1) needed for size parameter ``ka``."""
    ka = float(ka)
    return int(np.ceil(ka + 4.0 * np.cbrt(ka) + 10.0)) + 1


def _point(name: str, value) -> np.ndarray:
    point = np.asarray(value, dtype=float)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise SimulationInputError(f"{name} = {value!r}; give a finite (3,) position in metres.")
    return point


def _geometry(radius_m, source_m, receiver_m, centre_m):
    if not np.isscalar(radius_m) or not np.isfinite(radius_m) or radius_m <= 0:
        raise SimulationInputError(f"radius_m = {radius_m!r}; give a positive number of metres, e.g. 0.1.")
    centre = _point("centre_m", centre_m)
    rel_s = _point("source_m", source_m) - centre
    rel_r = _point("receiver_m", receiver_m) - centre
    r_s, r_r = np.linalg.norm(rel_s), np.linalg.norm(rel_r)
    if r_s < radius_m:
        raise SimulationInputError(
            f"source_m is {r_s:.4g} m from the centre, inside the sphere (radius_m = {radius_m}); move it out."
        )
    if r_r < radius_m:
        raise SimulationInputError(
            f"receiver_m is {r_r:.4g} m from the centre, inside the sphere (radius_m = {radius_m}); move it out."
        )
    cos_gamma = float(np.clip(rel_s @ rel_r / (r_s * r_r), -1.0, 1.0))
    return float(r_s), float(r_r), cos_gamma


def _legendre(n_max: int, x: float) -> np.ndarray:
    """P_0(x) .. P_{n_max - 1}(x) by the (stable) three-term recurrence."""
    p = np.empty(n_max)
    p[0] = 1.0
    if n_max > 1:
        p[1] = x
    for n in range(1, n_max - 1):
        p[n + 1] = ((2 * n + 1) * x * p[n] - n * p[n - 1]) / (n + 1)
    return p


def _hankel2(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    return spherical_jn(n, x) - 1j * spherical_yn(n, x)


def free_field_pressure(frequencies_hz, source_m, receiver_m, speed_of_sound_m_s: float = 343.0) -> np.ndarray:
    """exp(-j k d) / (4 pi d): free-field response of a unit point source. (Fq,) complex."""
    f = np.asarray(frequencies_hz, dtype=float)
    d = np.linalg.norm(_point("receiver_m", receiver_m) - _point("source_m", source_m))
    return np.exp(-2j * np.pi * f * d / speed_of_sound_m_s) / (4 * np.pi * d)


def scattered_pressure(
    frequencies_hz,
    radius_m: float,
    source_m,
    receiver_m,
    *,
    centre_m=(0.0, 0.0, 0.0),
    speed_of_sound_m_s: float = 343.0,
    n_max: int | None = None,
) -> np.ndarray:
    """Field scattered by a rigid sphere at ``receiver_m`` for a unit point source at ``source_m``.

    Args:
        frequencies_hz: (Fq,) frequencies, Hz (>= 0; 0 gives 0).
        radius_m: sphere radius a.
        source_m, receiver_m, centre_m: (3,) positions, metres (source and receiver outside).
        speed_of_sound_m_s: c.
        n_max: number of terms; default ``n_terms(k_max a)``.
    Returns:
        (Fq,) complex frequency response, same normalisation as free_field_pressure.
    """
    f = np.atleast_1d(np.asarray(frequencies_hz, dtype=float))
    if f.ndim != 1 or not np.all(np.isfinite(f)) or np.any(f < 0):
        raise SimulationInputError("frequencies_hz is not a 1-D array of finite frequencies >= 0 Hz; give one.")
    if not np.isfinite(speed_of_sound_m_s) or speed_of_sound_m_s <= 0:
        raise SimulationInputError(f"speed_of_sound_m_s = {speed_of_sound_m_s!r}; give a positive speed, e.g. 343.")
    r_s, r_r, cos_gamma = _geometry(radius_m, source_m, receiver_m, centre_m)
    k = 2 * np.pi * f / speed_of_sound_m_s
    out = np.zeros(len(f), dtype=complex)
    nonzero = k > 0
    if not np.any(nonzero):
        return out
    k = k[nonzero]
    n_max = n_terms(k.max() * radius_m) if n_max is None else int(n_max)
    n = np.arange(n_max)[None, :]
    ka = k[:, None] * radius_m
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        jp = spherical_jn(n, ka, derivative=True)
        yp = spherical_yn(n, ka, derivative=True)
        # j_n'/h_n' = 1 / (1 - j q), q = y_n'/j_n', written to stay finite for |q| -> inf
        q = yp / jp
        big = np.abs(q) > 1e150
        inv_q = 1.0 / q
        ratio = np.where(big, inv_q * inv_q, 1.0 / (1.0 + q * q)) + 1j * np.where(big, inv_q, q / (1.0 + q * q))
        terms = ratio * _hankel2(n, k[:, None] * r_s) * _hankel2(n, k[:, None] * r_r)
        terms = np.where(np.isfinite(terms), terms, 0.0)  # n >> ka: the ratio underflows to 0
    weights = (2 * np.arange(n_max) + 1) * _legendre(n_max, cos_gamma)
    out[nonzero] = 1j * k / (4 * np.pi) * (terms @ weights)
    return out


def scattered_impulse_response(
    radius_m: float,
    source_m,
    receiver_m,
    n_samples: int,
    sample_rate_hz: float = 96_000.0,
    *,
    band_hz: tuple[float, float] | None = None,
    transition_hz: float = 1000.0,
    centre_m=(0.0, 0.0, 0.0),
    speed_of_sound_m_s: float = 343.0,
    n_fft: int | None = None,
) -> np.ndarray:
    """Band-limited impulse response of the scattered field, t = 0 at emission.

    The spectrum is sampled on the rfft grid of ``n_fft`` points (default: next fast length
    >= 2 * n_samples, so that the response must have decayed by then) and weighted by
    ``band_window(f, band_hz, transition_hz)``, or, with ``band_hz=None``, by the same
    low-pass as ``body_impulse_responses`` (so the two are directly comparable).

    Returns:
        (n_samples,) float64; DTFT = scattered_pressure(f) * window(f).
    """
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise SimulationInputError(f"n_samples = {n_samples!r}; give a positive integer number of samples.")
    n_fft = scipy.fft.next_fast_len(2 * int(n_samples), real=True) if n_fft is None else int(n_fft)
    if n_fft < n_samples:
        raise SimulationInputError(f"n_fft = {n_fft} is shorter than n_samples = {n_samples}; give n_fft >= n_samples.")
    f_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    window = output_lowpass(f_hz, sample_rate_hz) if band_hz is None else band_window(f_hz, band_hz, transition_hz)
    spectrum = np.zeros(len(f_hz), dtype=complex)
    used = window > 0
    spectrum[used] = window[used] * scattered_pressure(
        f_hz[used], radius_m, source_m, receiver_m, centre_m=centre_m, speed_of_sound_m_s=speed_of_sound_m_s
    )
    return np.fft.irfft(spectrum, n_fft)[: int(n_samples)]
