"""Air: speed of sound and atmospheric absorption (ISO 9613-1:1993).

At the ultrasonic frequencies of the chirps (19-32 kHz) air absorbs about 0.4-1 dB
per metre, i.e. 4-10 dB over a 10 m echo path, so it must be modelled. ISO 9613-1
gives the pure-tone attenuation coefficient from the oxygen and nitrogen
vibrational relaxation frequencies and the classical (viscous/thermal) loss; its
formulas hold up to ultrasonic frequencies (the standard states their use for
acoustical scale modelling).

Units: temperature in degrees Celsius, relative humidity in percent, pressure in
kilopascal, frequency in hertz.
"""

from __future__ import annotations

import numpy as np

from .errors import RoomInputError

#: Reference atmospheric pressure p_r of ISO 9613-1, kPa.
REFERENCE_PRESSURE_KPA = 101.325
#: Reference air temperature T_0 of ISO 9613-1, kelvin (20 degrees C).
REFERENCE_TEMPERATURE_K = 293.15
#: Triple-point isotherm temperature T_01 of ISO 9613-1 (Annex B), kelvin.
TRIPLE_POINT_TEMPERATURE_K = 273.16
#: 0 degrees C in kelvin.
ZERO_CELSIUS_K = 273.15
#: Decibels per neper of amplitude: 20 log10(e).
DB_PER_NEPER = 20.0 / np.log(10.0)

# Ranges inside which the inputs are accepted (ISO 9613-1 tabulates -20..50 C,
# 10..100 % RH; we allow a slightly wider, still physical, temperature range).
_TEMPERATURE_RANGE_C = (-40.0, 60.0)
_HUMIDITY_RANGE_PCT = (0.0, 100.0)
_PRESSURE_RANGE_KPA = (50.0, 120.0)


def _check_range(name: str, value, low: float, high: float, unit: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)) or np.any(array < low) or np.any(array > high):
        raise RoomInputError(
            f"{name} = {value!r} is outside [{low:g}, {high:g}] {unit}; "
            f"pass a value in that range."
        )
    return array


def speed_of_sound_m_s(temperature_c):
    """Speed of sound in dry air, c = 331.3 * sqrt(1 + T / 273.15) m/s.

    343.2 m/s at 20 degrees C, 331.3 m/s at 0 degrees C. Humidity changes c by
    less than 0.4 % indoors and is ignored.

    Args:
        temperature_c: air temperature, degrees C, scalar or array.

    Returns:
        speed of sound in m/s, same shape as ``temperature_c`` (float for a scalar).
    """
    temperature = _check_range("temperature_c", temperature_c, *_TEMPERATURE_RANGE_C, "degrees C")
    speed = 331.3 * np.sqrt(1.0 + temperature / ZERO_CELSIUS_K)
    return float(speed) if speed.ndim == 0 else speed


def molar_concentration_of_water_vapour_pct(
    temperature_c, relative_humidity_pct, pressure_kpa=REFERENCE_PRESSURE_KPA
):
    """Molar concentration of water vapour h, percent (ISO 9613-1 Annex B, eq. B.1-B.3)."""
    temperature_k = np.asarray(temperature_c, dtype=float) + ZERO_CELSIUS_K
    exponent = -6.8346 * (TRIPLE_POINT_TEMPERATURE_K / temperature_k) ** 1.261 + 4.6151
    saturation_over_reference = 10.0**exponent  # p_sat / p_r
    return np.asarray(relative_humidity_pct, dtype=float) * saturation_over_reference / (
        np.asarray(pressure_kpa, dtype=float) / REFERENCE_PRESSURE_KPA
    )


def relaxation_frequencies_hz(
    temperature_c, relative_humidity_pct, pressure_kpa=REFERENCE_PRESSURE_KPA
):
    """Oxygen and nitrogen relaxation frequencies (f_rO, f_rN), Hz (ISO 9613-1 eq. 3, 4)."""
    temperature_k = np.asarray(temperature_c, dtype=float) + ZERO_CELSIUS_K
    pressure_ratio = np.asarray(pressure_kpa, dtype=float) / REFERENCE_PRESSURE_KPA
    h = molar_concentration_of_water_vapour_pct(temperature_c, relative_humidity_pct, pressure_kpa)
    relative_temperature = temperature_k / REFERENCE_TEMPERATURE_K
    oxygen_hz = pressure_ratio * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    nitrogen_hz = (
        pressure_ratio
        * relative_temperature ** (-0.5)
        * (9.0 + 280.0 * h * np.exp(-4.170 * (relative_temperature ** (-1.0 / 3.0) - 1.0)))
    )
    return oxygen_hz, nitrogen_hz


def air_absorption_db_per_m(
    frequency_hz,
    temperature_c: float = 20.0,
    relative_humidity_pct: float = 50.0,
    pressure_kpa: float = REFERENCE_PRESSURE_KPA,
):
    """Pure-tone atmospheric attenuation coefficient alpha, dB/m (ISO 9613-1 eq. 5).

    The sound pressure level drops by ``alpha * distance`` dB over ``distance`` metres
    (on top of spherical spreading). Inputs broadcast against each other.

    Args:
        frequency_hz: frequency, Hz, scalar or array (e.g. shape (F,)).
        temperature_c: air temperature, degrees C.
        relative_humidity_pct: relative humidity, percent (0-100).
        pressure_kpa: ambient atmospheric pressure, kPa.

    Returns:
        alpha in dB/m, the broadcast shape of the inputs (float for scalars).

    Example: 20 degrees C, 50 % RH -> 0.0047 dB/m at 1 kHz, 0.16 dB/m at 10 kHz,
    1.0 dB/m at 32 kHz.
    """
    frequency = np.asarray(frequency_hz, dtype=float)
    if not np.all(np.isfinite(frequency)) or np.any(frequency < 0):
        raise RoomInputError(
            f"frequency_hz = {frequency_hz!r} must be finite and >= 0 Hz; pass frequencies in hertz."
        )
    _check_range("temperature_c", temperature_c, *_TEMPERATURE_RANGE_C, "degrees C")
    _check_range("relative_humidity_pct", relative_humidity_pct, *_HUMIDITY_RANGE_PCT, "%")
    _check_range("pressure_kpa", pressure_kpa, *_PRESSURE_RANGE_KPA, "kPa")

    temperature_k = np.asarray(temperature_c, dtype=float) + ZERO_CELSIUS_K
    pressure_ratio = np.asarray(pressure_kpa, dtype=float) / REFERENCE_PRESSURE_KPA
    relative_temperature = temperature_k / REFERENCE_TEMPERATURE_K
    oxygen_hz, nitrogen_hz = relaxation_frequencies_hz(
        temperature_c, relative_humidity_pct, pressure_kpa
    )
    f2 = frequency**2
    classical = 1.84e-11 / pressure_ratio * relative_temperature**0.5
    oxygen = 0.01275 * np.exp(-2239.1 / temperature_k) / (oxygen_hz + f2 / oxygen_hz)
    nitrogen = 0.1068 * np.exp(-3352.0 / temperature_k) / (nitrogen_hz + f2 / nitrogen_hz)
    alpha = 8.686 * f2 * (classical + relative_temperature ** (-2.5) * (oxygen + nitrogen))
    return float(alpha) if alpha.ndim == 0 else alpha


def air_absorption_energy_per_m(
    frequency_hz,
    temperature_c: float = 20.0,
    relative_humidity_pct: float = 50.0,
    pressure_kpa: float = REFERENCE_PRESSURE_KPA,
):
    """Intensity attenuation coefficient m, 1/m: intensity falls as exp(-m * distance).

    This is the unit pyroomacoustics expects in ``Room.set_air_absorption`` (its ISM
    scales amplitudes by exp(-0.5 * m * distance)). m = alpha_dB / (10 log10 e).
    """
    alpha_db = air_absorption_db_per_m(
        frequency_hz, temperature_c, relative_humidity_pct, pressure_kpa
    )
    return alpha_db / (10.0 * np.log10(np.e))
