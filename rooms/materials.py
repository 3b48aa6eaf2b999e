"""Surface materials with octave-band absorption from 125 Hz up to the 32 kHz band.

A :class:`Material` holds the random-incidence energy absorption coefficient in the
nine octave bands 125 Hz ... 32 kHz (``OCTAVE_BANDS_HZ``) and a scattering coefficient.
At 96 kHz sampling pyroomacoustics splits the spectrum into exactly these nine bands
(band count floor(log2(fs / 125 Hz)) = 9), so the 16 kHz band (11.3-22.6 kHz) and the
32 kHz band (22.6-48 kHz) carry the 19-32 kHz chirps.

Where the high bands come from
------------------------------
The 125 Hz-8 kHz values are the standard tabulated ones (Vorlaender, *Auralization*,
2008, Annex, the table pyroomacoustics ships). Measured data above 8 kHz are rare, so
the 16 kHz and 32 kHz bands are extrapolated by the physical class of the surface
(:func:`extend_to_ultrasound`):

* ``"rigid"`` (concrete, plaster, brick, glass, tiles, painted boards, sealed wood):
  a non-porous surface absorbs through its visco-thermal boundary layer, whose loss
  grows as sqrt(f), so each octave multiplies the coefficient by sqrt(2):
  a16 = a8 * sqrt(2), a32 = a8 * 2 (capped at 0.3).
* ``"porous"`` (carpet, curtains, upholstery, mineral-wool tiles): once the layer is
  thicker than a quarter wavelength (0.27 cm at 32 kHz) absorption saturates towards
  the limit set by the surface impedance, taken as 0.9; each octave closes half the
  remaining gap: a16 = a8 + (0.9 - a8) / 2, a32 = a16 + (0.9 - a16) / 2 (a value
  already above 0.9 is kept).

So porous materials absorb more at high frequency and rigid ones stay below 0.3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .errors import RoomInputError

#: Octave-band centre frequencies, Hz, 125 Hz ... 32 kHz.
OCTAVE_BANDS_HZ: tuple[float, ...] = tuple(125.0 * 2.0**k for k in range(9))
#: The bands of the standard tables (125 Hz ... 8 kHz).
TABULATED_BANDS_HZ: tuple[float, ...] = OCTAVE_BANDS_HZ[:7]
#: High-frequency limit of porous absorbers used by the extrapolation.
POROUS_ABSORPTION_LIMIT = 0.9
#: Cap on the extrapolated absorption of rigid surfaces.
RIGID_ABSORPTION_CAP = 0.3


@dataclass(frozen=True)
class Material:
    """A surface material.

    Attributes:
        name: short identifier, e.g. ``"painted_plaster"``.
        absorption: energy absorption coefficient per octave band, a mapping
            ``band centre Hz -> coefficient in [0, 1)`` with every band of
            ``OCTAVE_BANDS_HZ`` (125 Hz ... 32 kHz).
        scattering: scattering coefficient in [0, 1], the same in every band (used by
            pyroomacoustics' ray tracer only; the image-source model ignores it).
    """

    name: str
    absorption: Mapping[float, float]
    scattering: float = 0.1

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise RoomInputError(f"Material.name = {self.name!r}; give a non-empty string.")
        absorption = {float(k): float(v) for k, v in dict(self.absorption).items()}
        missing = [band for band in OCTAVE_BANDS_HZ if band not in absorption]
        if missing:
            raise RoomInputError(
                f"Material {self.name!r}: absorption lacks bands {missing} Hz; give a coefficient "
                f"for every band in OCTAVE_BANDS_HZ = {OCTAVE_BANDS_HZ} (use extend_to_ultrasound "
                f"to fill 16 and 32 kHz from a 125 Hz-8 kHz table)."
            )
        extra = sorted(set(absorption) - set(OCTAVE_BANDS_HZ))
        if extra:
            raise RoomInputError(
                f"Material {self.name!r}: absorption has unknown bands {extra} Hz; use only "
                f"OCTAVE_BANDS_HZ = {OCTAVE_BANDS_HZ}."
            )
        for band, value in absorption.items():
            if not (0.0 <= value < 1.0) or not math.isfinite(value):
                raise RoomInputError(
                    f"Material {self.name!r}: absorption[{band:g} Hz] = {value}; an energy "
                    f"absorption coefficient must lie in [0, 1)."
                )
        if not (0.0 <= float(self.scattering) <= 1.0):
            raise RoomInputError(
                f"Material {self.name!r}: scattering = {self.scattering}; it must lie in [0, 1]."
            )
        ordered = {band: absorption[band] for band in OCTAVE_BANDS_HZ}
        object.__setattr__(self, "absorption", MappingProxyType(ordered))
        object.__setattr__(self, "scattering", float(self.scattering))

    def __hash__(self):
        return hash((self.name, tuple(self.absorption.items()), self.scattering))

    @property
    def absorption_coefficients(self) -> np.ndarray:
        """Absorption per band, shape (9,), in the order of ``OCTAVE_BANDS_HZ``."""
        return np.array([self.absorption[band] for band in OCTAVE_BANDS_HZ])

    def absorption_at_bands(self, band_centers_hz) -> np.ndarray:
        """Absorption interpolated linearly in log2(frequency) at ``band_centers_hz``.

        The same interpolation pyroomacoustics applies; outside 125 Hz-32 kHz the end
        values are held. Returns shape (len(band_centers_hz),).
        """
        centers = np.asarray(band_centers_hz, dtype=float)
        return np.interp(np.log2(centers), np.log2(OCTAVE_BANDS_HZ), self.absorption_coefficients)

    def reflection_amplitude(self) -> np.ndarray:
        """Pressure reflection factor magnitude per band, sqrt(1 - absorption), shape (9,)."""
        return np.sqrt(1.0 - self.absorption_coefficients)

    def to_pyroomacoustics(self):
        """This material as a ``pyroomacoustics.Material`` (absorption per band, flat scattering)."""
        import pyroomacoustics as pra

        centers = list(OCTAVE_BANDS_HZ)
        return pra.Material(
            {"description": self.name, "coeffs": self.absorption_coefficients.tolist(), "center_freqs": centers},
            {"description": self.name, "coeffs": [self.scattering] * len(centers), "center_freqs": centers},
        )


def extend_to_ultrasound(coefficients_125_to_8k, kind: str) -> tuple[float, ...]:
    """Extend a 7-band (125 Hz-8 kHz) absorption table to the 9 bands up to 32 kHz.

    Args:
        coefficients_125_to_8k: 7 absorption coefficients (125, 250, ..., 8000 Hz).
        kind: ``"rigid"`` (boundary-layer loss, grows as sqrt(f), capped at 0.3) or
            ``"porous"`` (saturates towards 0.9, halving the gap each octave).

    Returns:
        9 coefficients for ``OCTAVE_BANDS_HZ``.
    """
    values = [float(v) for v in coefficients_125_to_8k]
    if len(values) != len(TABULATED_BANDS_HZ):
        raise RoomInputError(
            f"coefficients_125_to_8k has {len(values)} values; give 7 (125 Hz ... 8 kHz)."
        )
    a8 = values[-1]
    if kind == "rigid":
        high = [min(a8 * math.sqrt(2.0), RIGID_ABSORPTION_CAP), min(a8 * 2.0, RIGID_ABSORPTION_CAP)]
        high = [max(h, a8) for h in high]
    elif kind == "porous":
        a16 = a8 if a8 >= POROUS_ABSORPTION_LIMIT else a8 + 0.5 * (POROUS_ABSORPTION_LIMIT - a8)
        a32 = a16 if a16 >= POROUS_ABSORPTION_LIMIT else a16 + 0.5 * (POROUS_ABSORPTION_LIMIT - a16)
        high = [a16, a32]
    else:
        raise RoomInputError(f"kind = {kind!r}; use 'rigid' or 'porous'.")
    return tuple(values + high)


def material_from_table(name: str, coefficients_125_to_8k, kind: str, scattering: float = 0.1) -> Material:
    """A :class:`Material` from a 125 Hz-8 kHz table, extended by :func:`extend_to_ultrasound`."""
    extended = extend_to_ultrasound(coefficients_125_to_8k, kind)
    return Material(name, dict(zip(OCTAVE_BANDS_HZ, extended)), scattering)


# name: (125, 250, 500, 1k, 2k, 4k, 8k Hz absorption, class, scattering, source entry)
_TABLE = {
    "concrete": ((0.01, 0.01, 0.02, 0.02, 0.02, 0.05, 0.05), "rigid", 0.05),  # unpainted concrete
    "rough_concrete": ((0.02, 0.03, 0.03, 0.03, 0.04, 0.07, 0.07), "rigid", 0.10),
    "painted_plaster": ((0.02, 0.02, 0.03, 0.03, 0.04, 0.05, 0.05), "rigid", 0.05),  # hard surface
    "brick": ((0.03, 0.03, 0.03, 0.04, 0.05, 0.07, 0.07), "rigid", 0.15),  # brick wall, rough
    "gypsum_board": ((0.15, 0.10, 0.06, 0.04, 0.04, 0.05, 0.05), "rigid", 0.05),  # plasterboard
    "wood_panel": ((0.27, 0.23, 0.22, 0.15, 0.10, 0.07, 0.06), "rigid", 0.10),  # wooden lining
    "wood_16mm": ((0.18, 0.12, 0.10, 0.09, 0.08, 0.07, 0.07), "rigid", 0.10),  # furniture boards
    "wood_floor": ((0.10, 0.07, 0.06, 0.06, 0.06, 0.06, 0.06), "rigid", 0.10),  # stage floor
    "ceramic_tiles": ((0.01, 0.01, 0.01, 0.02, 0.02, 0.02, 0.02), "rigid", 0.05),
    "marble_floor": ((0.01, 0.01, 0.01, 0.02, 0.02, 0.02, 0.02), "rigid", 0.05),
    "linoleum": ((0.02, 0.03, 0.03, 0.03, 0.03, 0.02, 0.02), "rigid", 0.05),  # on concrete
    "glass_window": ((0.10, 0.05, 0.04, 0.03, 0.03, 0.03, 0.03), "rigid", 0.02),
    "carpet_thin": ((0.02, 0.04, 0.08, 0.20, 0.35, 0.40, 0.40), "porous", 0.10),
    "carpet_tufted": ((0.08, 0.08, 0.30, 0.60, 0.75, 0.80, 0.80), "porous", 0.10),
    "curtain_velvet": ((0.05, 0.12, 0.35, 0.45, 0.38, 0.36, 0.36), "porous", 0.30),
    "curtain_heavy": ((0.05, 0.06, 0.39, 0.63, 0.70, 0.73, 0.73), "porous", 0.30),
    "acoustic_tile": ((0.49, 0.53, 0.53, 0.75, 0.92, 0.99, 0.99), "porous", 0.20),  # fissured tile
    "upholstery_fabric": ((0.44, 0.60, 0.77, 0.89, 0.82, 0.70, 0.70), "porous", 0.40),  # cloth chair
    "upholstery_leather": ((0.40, 0.50, 0.58, 0.61, 0.58, 0.50, 0.50), "porous", 0.30),
}
# Two table rows reach 0.99 at 8 kHz; clip to 0.95 so a reflection keeps some energy.
_TABLE = {k: (tuple(min(v, 0.95) for v in c), kind, s) for k, (c, kind, s) in _TABLE.items()}

#: The library of named materials, name -> Material.
MATERIALS: Mapping[str, Material] = MappingProxyType(
    {name: material_from_table(name, coeffs, kind, scattering) for name, (coeffs, kind, scattering) in _TABLE.items()}
)
#: The extrapolation class of each library material ("rigid" or "porous").
MATERIAL_KINDS: Mapping[str, str] = MappingProxyType({name: kind for name, (_, kind, _) in _TABLE.items()})

#: Plausible choices per surface type, used by the room sampler.
FLOOR_MATERIALS = ("concrete", "wood_floor", "ceramic_tiles", "marble_floor", "linoleum", "carpet_thin", "carpet_tufted")
WALL_MATERIALS = ("painted_plaster", "gypsum_board", "brick", "rough_concrete", "wood_panel", "glass_window", "curtain_heavy", "curtain_velvet")
CEILING_MATERIALS = ("painted_plaster", "gypsum_board", "concrete", "acoustic_tile")
FURNITURE_MATERIALS = ("wood_16mm", "upholstery_fabric", "upholstery_leather")


def get_material(name: str) -> Material:
    """The library material called ``name`` (see ``MATERIALS``)."""
    try:
        return MATERIALS[name]
    except KeyError:
        raise RoomInputError(
            f"material {name!r} is not in the library; choose one of {sorted(MATERIALS)} "
            f"or build a Material yourself."
        ) from None


def flat_material(name: str, absorption: float, scattering: float = 0.0) -> Material:
    """A material with the same absorption in every band."""
    return Material(name, {band: absorption for band in OCTAVE_BANDS_HZ}, scattering)
