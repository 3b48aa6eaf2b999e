"""A room as a pyroomacoustics room: walls, materials per octave band, speed of sound, air.

:func:`to_pyroomacoustics` is what ``Room.to_pyroomacoustics`` runs; the room is used through
its ``all_surfaces``, ``materials``, ``dimensions_m`` and ``_use_shoebox_engine`` only.
"""

from __future__ import annotations

import math

import numpy as np

from .air import air_absorption_energy_per_m, speed_of_sound_m_s
from .errors import RoomInputError

__all__ = ["SHOEBOX_SURFACES", "pra_band_centers_hz", "to_pyroomacoustics"]

#: Names of the six surfaces of a shoebox room (pyroomacoustics' names).
#: west: x = 0, east: x = Lx, south: y = 0, north: y = Ly, floor: z = 0, ceiling: z = Lz.
SHOEBOX_SURFACES = ("west", "east", "south", "north", "floor", "ceiling")
#: The lowest octave band pyroomacoustics uses.
_PRA_BASE_FREQUENCY_HZ = 125.0


def pra_band_centers_hz(fs_hz: float) -> np.ndarray:
    """Octave-band centres pyroomacoustics uses at ``fs_hz``: 125 Hz * 2**k, k < floor(log2(fs / 125))."""
    n_bands = math.floor(np.log2(fs_hz / _PRA_BASE_FREQUENCY_HZ))
    return _PRA_BASE_FREQUENCY_HZ * 2.0 ** np.arange(n_bands)


def pra_walls(room, fs_hz: float, include_furniture: bool) -> list:
    """pyroomacoustics walls of every surface of ``room`` (shell first, then furniture)."""
    import pyroomacoustics as pra

    centers = pra_band_centers_hz(fs_hz)
    walls = []
    for surface in room.all_surfaces(include_furniture):
        absorption = surface.material.absorption_at_bands(centers)
        scattering = np.full(len(centers), surface.material.scattering)
        walls.append(
            pra.wall_factory(
                np.ascontiguousarray(surface.polygon_m.T, dtype=np.float32), absorption, scattering, surface.name
            )
        )
    return walls


def to_pyroomacoustics(room, fs_hz: float, max_order: int, temperature_c: float, relative_humidity_pct: float,
                       air_absorption: bool, include_furniture: bool, **pra_kwargs):
    """``room`` as a ``pra.ShoeBox`` or ``pra.Room`` (see ``Room.to_pyroomacoustics``)."""
    import pyroomacoustics as pra

    if not (isinstance(max_order, (int, np.integer)) and max_order >= 0):
        raise RoomInputError(f"max_order = {max_order!r}; give a non-negative integer.")
    if not (np.isfinite(fs_hz) and fs_hz >= 1000.0):
        raise RoomInputError(f"fs_hz = {fs_hz}; give a sample rate in Hz (96000 by default).")
    speed = speed_of_sound_m_s(temperature_c)
    air = air_absorption_energy_per_m(pra_band_centers_hz(fs_hz), temperature_c, relative_humidity_pct)

    if room._use_shoebox_engine(include_furniture):
        materials = {name: room.materials[name].to_pyroomacoustics() for name in SHOEBOX_SURFACES}
        pra_room = pra.ShoeBox(room.dimensions_m, fs=int(fs_hz), materials=materials, max_order=int(max_order), **pra_kwargs)
    else:
        pra_room = pra.Room(pra_walls(room, fs_hz, include_furniture), fs=int(fs_hz), max_order=int(max_order), **pra_kwargs)
    pra_room.set_sound_speed(speed)
    if air_absorption:
        centers = pra_room.octave_bands.centers
        pra_room.set_air_absorption(coefficients=list(air[: len(centers)]), center_freqs=list(centers))
    else:
        pra_room.unset_air_absorption()
        pra_room.air_absorption = None
    return pra_room
