"""Errors raised by the rooms package.

Every check runs before any work is done, and every message names the offending
field and says how to fix it, e.g.::

    RoomGeometryError: speaker_positions_m[2] = (7.10, 1.00, 1.50) lies outside the
    room (x in [0, 6], y in [0, 5], z in [0, 3] m); move it inside the room.
"""

from core.errors import InputError


class RoomInputError(InputError):
    """A parameter of a room, material, rig, camera or sampler is invalid."""


class RoomGeometryError(RoomInputError):
    """A point or a body lies outside the room, inside furniture, or through a wall."""
