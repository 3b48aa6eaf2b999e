"""Room geometry: shoebox and polyhedral rooms, furniture, and geometric queries (re-exports).

Frame: the room (world) frame, metres, z up, origin on the floor at a room corner.

Conventions
-----------
* A :class:`Surface` is a planar polygon ``polygon_m`` (K, 3) with a material. Its corners
  run counter-clockwise around the normal that points **out of the air** (into the
  solid): outwards for the walls of the room, into the furniture for furniture faces.
  This is the orientation pyroomacoustics requires (an image source is only created on
  the side a wall's normal points to).
* ``contains(points)`` is true for points in the air: inside the room shell and not
  inside any furniture.
* Furniture is a union of oriented boxes (:class:`Box`, rotated about z only).

The code lives in :mod:`rooms.polygons` (2D polygons, segment-triangle crossings),
:mod:`rooms.surfaces` (surfaces, meshes merged into them), :mod:`rooms.furniture`,
:mod:`rooms.shapes` (the rooms) and :mod:`rooms.pra_export` (pyroomacoustics); this module
keeps the names importable from ``rooms.geometry``.
"""

from .furniture import Box, Furniture, make_seat, make_shelf, make_table
from .polygons import (  # _as_points: rooms.validation imported it from here
    _as_points,
    convex_hull_2d,
    convex_polygons_overlap,
    distance_to_polygon_edges_2d,
    points_in_polygon_2d,
    polygon_area_2d,
    polygon_normal,
    segments_hit_triangles,
)
from .pra_export import SHOEBOX_SURFACES
from .shapes import PolyhedralRoom, Room, ShoeboxRoom
from .surfaces import Surface

__all__ = [
    "SHOEBOX_SURFACES",
    "Box",
    "Furniture",
    "PolyhedralRoom",
    "Room",
    "ShoeboxRoom",
    "Surface",
    "convex_hull_2d",
    "convex_polygons_overlap",
    "distance_to_polygon_edges_2d",
    "make_seat",
    "make_shelf",
    "make_table",
    "points_in_polygon_2d",
    "polygon_area_2d",
    "polygon_normal",
    "segments_hit_triangles",
]
