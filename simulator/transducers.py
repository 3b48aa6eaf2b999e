"""Real transducers: per-device frequency responses and an uncalibrated latency.

A real rig's speakers and microphones are not flat: each has a resonance somewhere in the band, a
slope, its own sensitivity, and the capture chain adds a latency nobody calibrated. A pose kernel
of a point reflector is then not a delta but

    k_sm(t) = a delta(t - tau) (*) g_speaker_s(t) (*) g_microphone_m(t),

and an uncalibrated latency L = L_s + L_m moves every echo by L, i.e. biases the range of a
monostatic pair by c L / 2 (3.4 cm for 0.2 ms).

Model (one device, continuous time, s = j 2 pi f)
-------------------------------------------------
    G(s) = 10^(gain_db / 20) * P(s) * T(s) * exp(-s latency_s)

* P, the resonance: a second-order peaking section, u = s / (2 pi f0),
  P = (u^2 + u A^2 / Q + 1) / (u^2 + u / Q + 1), A^2 = 10^(resonance_gain_db / 20).
  Q is the quality factor of its pole pair; |P(f0)| = A^2 exactly, P -> 1 at DC and far above f0.
  Poles and zeros lie in the left half-plane: P is minimum phase (causal, causally invertible).
* T, the tilt |T| ~ (f / 25 kHz)^(tilt_db_per_octave / 6.02). The ideal power law (j f / f_ref)^alpha
  is causal but unbounded at DC, so it is realised as a cascade of 11 first-order shelves, zeros an
  octave apart from 1 kHz to 1.02 MHz, each pole 2^alpha above its zero (a "pinking" filter): rational,
  minimum phase, flat outside 1 kHz-1 MHz (DC gain <= 34 dB at the steepest accepted tilt). Against
  the power law, normalised to 1 at 25 kHz: within 0.04 dB over 10-48 kHz and 0.006 dB over 19-32 kHz
  for |tilt| <= 6 dB/octave; its group delay stays under 0.4 us (0.04 sample at 96 kHz) over 19-32 kHz,
  the phase being the power law's constant alpha pi / 2 to that accuracy.
* the latency is a pure delay.

The responses are continuous-time, like the simulator's impulse responses: evaluated on a frame's
rFFT grid they give the band-limited discrete response (see ``simulator.body_echo``).

Example::

    devices = TransducerModel().draw(np.random.default_rng(0), n_devices=4)
    gains = frequency_response(devices, np.fft.rfftfreq(9600, 1 / 96_000))   # (4, 4801) complex
    store["speaker_responses"] = devices.to_dict()
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from core.checks import check_finite_array, check_number
from simulator.errors import SimulationInputError

__all__ = ["TILT_REFERENCE_HZ", "DeviceResponses", "TransducerModel", "frequency_response", "group_delay_s"]

#: The tilt is 0 dB here (the middle of the 19-32 kHz chirps): ``gain_db`` is the gain at 25 kHz
#: apart from the resonance.
TILT_REFERENCE_HZ = 25_000.0
#: Zeros of the tilt's shelf cascade, an octave apart (see the module docstring).
_TILT_ZEROS_HZ = 1_000.0 * 2.0 ** np.arange(11)
_DB_PER_OCTAVE_PER_EXPONENT = 20.0 * np.log10(2.0)   # 6.02 dB per octave for |H| ~ f

#: Accepted values (inclusive) of every drawn quantity: a range outside these is a typo.
_LIMITS = {
    "resonance_hz_range": (1_000.0, 100_000.0, "Hz"),
    "q_range": (0.5, 30.0, ""),
    "resonance_gain_db_range": (-20.0, 20.0, "dB"),
    "tilt_db_per_octave_range": (-6.0, 6.0, "dB/octave"),
    "latency_s_range": (0.0, 0.01, "s"),
}


@dataclass(frozen=True)
class TransducerModel:
    """Ranges from which every device's response is drawn (uniformly, independently per device).

    Attributes:
        resonance_hz_range: resonance frequency f0, Hz (accepted within 1-100 kHz).
        q_range: quality factor of the resonance's pole pair (accepted within 0.5-30).
        resonance_gain_db_range: gain at f0 over the off-resonance level, dB (accepted within +-20;
            0 dB: no resonance, negative: a dip).
        tilt_db_per_octave_range: slope of the magnitude, dB per octave (accepted within +-6).
        gain_spread_db: each device's gain at 25 kHz is drawn in [-spread, +spread] dB (0-20).
        latency_s_range: uncalibrated latency of each device, seconds (accepted within 0-10 ms).
    """

    resonance_hz_range: tuple[float, float] = (20_000.0, 30_000.0)
    q_range: tuple[float, float] = (2.0, 8.0)
    resonance_gain_db_range: tuple[float, float] = (3.0, 12.0)
    tilt_db_per_octave_range: tuple[float, float] = (-3.0, 3.0)
    gain_spread_db: float = 3.0
    latency_s_range: tuple[float, float] = (0.0, 2e-4)

    def __post_init__(self) -> None:
        for name, (low, high, unit) in _LIMITS.items():
            value = getattr(self, name)
            pair = check_finite_array(name, value, error=SimulationInputError).ravel()
            if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
                raise SimulationInputError(
                    f"{name} = {value!r}: give (low, high) with {low:g} <= low <= high <= {high:g} {unit}".rstrip())
            object.__setattr__(self, name, (float(pair[0]), float(pair[1])))
        object.__setattr__(self, "gain_spread_db", check_number("gain_spread_db", self.gain_spread_db, 0.0, 20.0,
                                                                error=SimulationInputError))

    def draw(self, rng: np.random.Generator, n_devices: int) -> "DeviceResponses":
        """``n_devices`` devices' parameters, each drawn uniformly within its range."""
        if not isinstance(rng, np.random.Generator):
            raise SimulationInputError(f"rng = {rng!r}: pass a numpy.random.Generator, e.g. "
                                       "np.random.default_rng(0)")
        if isinstance(n_devices, bool) or not isinstance(n_devices, (int, np.integer)) or n_devices < 1:
            raise SimulationInputError(f"n_devices = {n_devices!r}: give a whole number >= 1")
        spread = self.gain_spread_db
        return DeviceResponses(
            resonance_hz=rng.uniform(*self.resonance_hz_range, n_devices),
            q=rng.uniform(*self.q_range, n_devices),
            resonance_gain_db=rng.uniform(*self.resonance_gain_db_range, n_devices),
            tilt_db_per_octave=rng.uniform(*self.tilt_db_per_octave_range, n_devices),
            gain_db=rng.uniform(-spread, spread, n_devices),
            latency_s=rng.uniform(*self.latency_s_range, n_devices),
        )


@dataclass(frozen=True, eq=False)
class DeviceResponses:
    """Drawn parameters of D devices, each an array of shape (D,) (see :class:`TransducerModel`)."""

    resonance_hz: np.ndarray
    q: np.ndarray
    resonance_gain_db: np.ndarray
    tilt_db_per_octave: np.ndarray
    gain_db: np.ndarray
    latency_s: np.ndarray

    def __post_init__(self) -> None:
        names = [f.name for f in fields(self)]
        arrays = [check_finite_array(name, getattr(self, name), error=SimulationInputError).ravel()
                  for name in names]
        if len({len(a) for a in arrays}) != 1 or len(arrays[0]) == 0:
            raise SimulationInputError(f"DeviceResponses: {', '.join(names)} must be non-empty and of one length "
                                       f"(one value per device); got lengths {[len(a) for a in arrays]}")
        for name, array in zip(names, arrays):
            object.__setattr__(self, name, array)
        high = _LIMITS["tilt_db_per_octave_range"][1]
        for name, ok, fix in (("resonance_hz", self.resonance_hz > 0, "> 0 Hz"), ("q", self.q > 0, "> 0"),
                              ("latency_s", self.latency_s >= 0, ">= 0 s (a device cannot answer early)"),
                              ("tilt_db_per_octave", np.abs(self.tilt_db_per_octave) <= high, f"within +-{high:g}")):
            if not ok.all():
                raise SimulationInputError(f"{name} = {float(getattr(self, name)[~ok][0]):g}: give values {fix}")

    @property
    def n_devices(self) -> int:
        """D, the number of devices."""
        return len(self.q)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists of floats per field (for a store's attributes); :meth:`from_dict` reads it back."""
        return {f.name: [float(v) for v in getattr(self, f.name)] for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "DeviceResponses":
        """The devices of a :meth:`to_dict` dict; a missing or unknown field is refused."""
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise SimulationInputError(f"DeviceResponses: got fields {sorted(data)}; give exactly {sorted(names)}")
        return cls(**{name: np.asarray(value, float) for name, value in data.items()})


def _log_response_and_derivative(devices: DeviceResponses, frequencies_hz) -> tuple[np.ndarray, np.ndarray]:
    """(D, F) ln G(j 2 pi f) without the latency, and d ln G / ds (seconds), at s = j 2 pi f."""
    f = check_finite_array("frequencies_hz", frequencies_hz, error=SimulationInputError)
    s = 2j * np.pi * np.atleast_1d(f).ravel()[None, :]                           # (1, F) rad/s
    omega0 = 2 * np.pi * devices.resonance_hz[:, None]
    q, a2 = devices.q[:, None], 10.0 ** (devices.resonance_gain_db[:, None] / 20.0)
    numerator = s**2 + s * omega0 * a2 / q + omega0**2
    denominator = s**2 + s * omega0 / q + omega0**2
    log_gain = np.log(numerator / denominator) + devices.gain_db[:, None] / 20.0 * np.log(10.0)
    derivative = (2 * s + omega0 * a2 / q) / numerator - (2 * s + omega0 / q) / denominator
    # Tilt: zeros z_k, poles z_k 2^alpha, normalised to |T| = 1 at TILT_REFERENCE_HZ.
    alpha = devices.tilt_db_per_octave[:, None, None] / _DB_PER_OCTAVE_PER_EXPONENT
    zeros = 2 * np.pi * _TILT_ZEROS_HZ
    poles = zeros * 2.0 ** alpha                                                  # (D, 1, K)
    s3, s_ref = s[..., None], 2j * np.pi * TILT_REFERENCE_HZ
    log_gain = log_gain + np.sum(np.log((s3 + zeros) / (s3 + poles)), -1) \
        - np.sum(np.log(np.abs((s_ref + zeros) / (s_ref + poles))), -1)
    derivative = derivative + np.sum(1.0 / (s3 + zeros) - 1.0 / (s3 + poles), -1)
    return log_gain, derivative


def frequency_response(devices: DeviceResponses, frequencies_hz) -> np.ndarray:
    """(D, F) complex responses G_d(f) of every device, latency included (see the module docstring).

    ``frequencies_hz``: (F,) any real frequencies; G(-f) = conj(G(f)), so an rFFT grid (e.g.
    ``np.fft.rfftfreq(T, 1 / fs)``) gives real impulse responses.
    """
    if not isinstance(devices, DeviceResponses):
        raise SimulationInputError(f"devices is a {type(devices).__name__}; pass TransducerModel().draw(...)")
    log_gain, _ = _log_response_and_derivative(devices, frequencies_hz)
    f = np.atleast_1d(np.asarray(frequencies_hz, float)).ravel()
    return np.exp(log_gain - 2j * np.pi * f[None, :] * devices.latency_s[:, None])


def group_delay_s(devices: DeviceResponses, frequencies_hz) -> np.ndarray:
    """(D, F) group delay -d(phase)/d(omega) of every device, seconds, latency included.

    Computed in closed form from the poles and zeros, -Re(d ln G / ds) at s = j 2 pi f.
    """
    if not isinstance(devices, DeviceResponses):
        raise SimulationInputError(f"devices is a {type(devices).__name__}; pass TransducerModel().draw(...)")
    _, derivative = _log_response_and_derivative(devices, frequencies_hz)
    return -derivative.real + devices.latency_s[:, None]
