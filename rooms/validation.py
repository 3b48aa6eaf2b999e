"""Checks that points and bodies are where they may be, run before any simulation.

Each raises :class:`~rooms.errors.RoomGeometryError` naming the field, the first bad
entry with its coordinates, and what to do about it.
"""

from __future__ import annotations

import numpy as np

from .errors import RoomGeometryError, RoomInputError
from .polygons import _as_points
from .shapes import Room


def _describe(room: Room) -> str:
    low, high = room.bounds_m
    return f"x in [{low[0]:g}, {high[0]:g}], y in [{low[1]:g}, {high[1]:g}], z in [{low[2]:g}, {high[2]:g}] m"


def validate_inside(room: Room, points_m, field_name: str, margin_m: float = 0.0) -> np.ndarray:
    """Raise unless every point is in the air of the room, at least ``margin_m`` from the
    walls, and outside all furniture.

    Args:
        room: the room.
        points_m: (N, 3) or (3,) room-frame points.
        field_name: the name to print, e.g. ``"speaker_positions_m"``.
        margin_m: required clearance from the room shell.

    Returns:
        the points as an (N, 3) float array.
    """
    try:
        points = _as_points(points_m, field_name)
    except RoomInputError as error:
        raise RoomGeometryError(str(error)) from None
    inside_shell = room._shell_contains(points)
    if margin_m > 0:
        inside_shell &= room.signed_distance_to_shell_m(points) >= margin_m
    for i, (p, ok) in enumerate(zip(points, inside_shell)):
        if not ok:
            where = f" (at least {margin_m:g} m from every wall)" if margin_m > 0 else ""
            raise RoomGeometryError(
                f"{field_name}[{i}] = ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) lies outside the room "
                f"({_describe(room)}){where}; move it inside the room."
            )
    for k, item in enumerate(room.furniture):
        inside = item.contains(points)
        if inside.any():
            i = int(np.flatnonzero(inside)[0])
            p = points[i]
            raise RoomGeometryError(
                f"{field_name}[{i}] = ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) lies inside furniture[{k}] "
                f"({item.kind}); move it onto or beside the furniture."
            )
    return points


def validate_body_inside(
    room: Room,
    body_vertices_m,
    field_name: str = "body_vertices_m",
    wall_tolerance_m: float = 0.01,
    furniture_tolerance_m: float = 0.03,
) -> None:
    """Raise if a body (its mesh vertices or joints) goes through a wall, the floor, the
    ceiling, or into furniture.

    Contact is allowed: feet may touch the floor and a sitting body may press into a
    seat by up to the tolerances.

    Args:
        room: the room.
        body_vertices_m: (V, 3) room-frame body vertices.
        field_name: the name to print.
        wall_tolerance_m: how far a vertex may poke through the shell.
        furniture_tolerance_m: how deep a vertex may sink into furniture.
    """
    try:
        points = _as_points(body_vertices_m, field_name)
    except RoomInputError as error:
        raise RoomGeometryError(str(error)) from None
    distance = room.signed_distance_to_shell_m(points)
    if np.any(distance < -wall_tolerance_m):
        i = int(np.argmin(distance))
        p = points[i]
        raise RoomGeometryError(
            f"{field_name}: the body passes through the room shell: vertex {i} = ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) "
            f"is {-distance[i]:.3f} m outside ({_describe(room)}); move the body away from the wall or floor."
        )
    for k, item in enumerate(room.furniture):
        inside = item.contains(points, margin_m=furniture_tolerance_m)
        if inside.any():
            i = int(np.flatnonzero(inside)[0])
            p = points[i]
            raise RoomGeometryError(
                f"{field_name}: the body intersects furniture[{k}] ({item.kind}) at vertex {i} = "
                f"({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}); move the body or the furniture."
            )
