"""Furniture in the room's response ("clutter"): its first-order reflections, its shadows, and the
body's paths by way of it.

Furniture (seats, tables, shelves: ``rooms.furniture``, unions of upright boxes with one material)
is not in the image-source model of :mod:`simulator.room_response`, which runs the fast shoebox
engine without it. This module adds it to a computed :class:`RoomAcoustics` as pure functions:

* :func:`compute_clutter` -> :class:`Clutter`, once per room and rig:
  ``Clutter.impulse_responses`` (S, M, T) is what furniture adds to the empty room's response:
  every first-order specular reflection off every furniture face (``reflection_impulse_responses``)
  plus the negative of the room's paths that a furniture box blocks (``shadow_impulse_responses``).
  Empty room = ``acoustics.impulse_responses + clutter.impulse_responses``.
* :func:`body_shadow_correction`, per frame: replaces ``RoomAcoustics.shadow_correction`` when there
  is furniture. It removes the room paths the body blocks (those that furniture already removed are
  not removed twice) and the furniture reflections the body blocks (either leg through the body).
* :meth:`Clutter.first_order_images` -> :class:`FurnitureImages`, and
  :meth:`FurnitureImages.body_paths` per frame: the speakers and microphones mirrored across the
  furniture faces, with the body facets each image really reaches through its face, in the form
  ``RoomSimulator.body_response`` appends to its transmitter and receiver lists (as it does the wall
  images of ``RoomAcoustics.first_order_images``).

Conventions: those of :mod:`simulator.room_response` (t = 0 at emission, a path of length L is a
band-limited delta of area damping / (4 pi L), band limit ``output_lowpass``, room frame, metres).
A furniture :class:`rooms.Surface`'s normal points out of the air, into the furniture.

Physics
-------
A face k is a planar convex polygon with the material's octave-band absorption alpha_b. For a
speaker s and a microphone m both on the air side of its plane (distance > ``_MIN_PLANE_DISTANCE_M``),
the image s' = s + 2 h_s n (h_s the distance of s from the plane, n the face normal into the
furniture) gives the specular point x where the segment m -> s' crosses the plane. The path
s -> x -> m exists when x lies inside the face polygon and neither leg passes through a furniture
box (any box, the face's own included). Its response is synthesised exactly as a first-order wall
path of the image-source model (:mod:`simulator.room_response`'s formula):

    H(f) = exp(-j 2 pi f L / c) / (4 pi L) * sum_k H_k(f) damping(f_k) exp(-a(f_k) L / 2) * LP(f),
    damping(f) = sum_b G_b(f)^2 sqrt(1 - alpha_b),  L = |s' - m|,

with the same octave-band blend G_b^2, synthesis nodes f_k, ISO 9613-1 air absorption a(f_k) and
transducer directivity (speaker gain along s -> x, microphone gain towards s'): the furniture's
paths are a :class:`RoomAcoustics` of their own (``Clutter.reflections``), so their synthesis and their
blocking by the body are the room paths' own code. A transducer a few centimetres above a table or
shelf top gets that top's reflection like any other (a short path, L ~ twice its height).

Shadows: a room path (any kept order by default; ``shadow_max_order`` limits it) is blocked when one
of its legs passes through the interior of a furniture box (boxes shrunk by ``_BOX_TOLERANCE_M`` so
that legs ending on a face or grazing one are not blocked); it is removed (attenuation 1).

Body-furniture paths: speaker -> face -> body -> microphone is the body lit by the speaker's image
s' across face k, but only at body points y whose specular point x (segment y -> s' across the
plane) lies inside the face, with y on the air side, the facet at y facing x, the segment x -> y
reaching that facet first (hidden-surface removal by a ray cast from x), the leg s -> x not
crossing the body (a ray cast) and neither leg crossing a furniture box. The test is per facet
centroid. Likewise speaker -> body -> face -> microphone with the microphone's image. The gain of
such a path is the face's band-averaged pressure reflection coefficient over 19-32 kHz (as the
wall images take theirs, ``FirstOrderImages.wall_reflection``).

Error bounds and what is left out
---------------------------------
* Geometric acoustics: a face reflects like an infinite plane inside its polygon and not at all
  outside. Edge diffraction (which halves the field on the shadow boundary and spreads the
  transition over a Fresnel zone, sqrt(lambda L) ~ 7-25 cm for L = 0.5-3 m at 19-32 kHz) is not
  modelled: near a face's edge the level is wrong by up to 6 dB, and a path appears or vanishes
  abruptly as its specular point crosses an edge. Shadows are hard too (no diffraction around a box).
  A seat is 40-60 cm wide, so a seat echo is a few Fresnel zones across at most: expect its level to
  be right within a few dB, not to the percent the synthesis itself achieves.
* Only first-order furniture reflections: wall -> furniture, furniture -> wall, furniture ->
  furniture and higher orders are missing. The mixed wall-furniture paths are the main gap: they
  carry one wall reflection more (sqrt(1 - alpha) = 0.55-0.99 for the library's walls at 16-32 kHz)
  and are longer, so they are about as strong as the later first-order ones; furniture -> furniture
  paths carry two furniture reflections (0.39-0.55 each on upholstery, 0.93-0.95 on wood).
* The shadows remove blocked room paths of every order (``shadow_max_order`` to limit), but only
  those of the room's own image-source model; the furniture reflections are not blocked by walls
  (a first-order path between two points of a convex room never crosses a wall).
* The body-furniture paths take a face's reflection coefficient averaged over 19-32 kHz (as wall
  images do); across the band the library's furniture materials vary by up to 0.1 (leather: 0.55
  at the 16 kHz band centre, 0.45 at 32 kHz; wood: 0.95 to 0.93). The per-centroid test makes a
  facet straddling a face's edge count wholly or not at all. Image-image paths (a face on each side
  of the body) are not produced.
* The body's own echo (speaker -> body -> microphone) is shadowed by the body only
  (``body_echo``'s hidden-surface removal); :func:`facets_hidden_by_furniture` gives the facets that
  furniture hides from the real transducers, to remove from its ``lit`` mask.
* Body shadows of furniture paths are hard like the room paths' (``RoomAcoustics.blocked_paths``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from rooms.air import air_absorption_energy_per_m
from rooms.geometry import Room
from rooms.pra_export import pra_band_centers_hz
from rooms.validation import validate_inside

from .directivity import DirectivityDraw, _row_norms, path_gains
from .errors import SimulationInputError
from .image_paths import ImagePaths, assemble_paths
from .room_acoustics import ECHO_BAND_HZ, RoomAcoustics, _as_facet_mesh
from .room_synthesis import KERNEL_HALF_WIDTH

__all__ = [
    "BodyFurniturePaths",
    "Clutter",
    "FurnitureFaces",
    "FurnitureImages",
    "FurniturePaths",
    "body_blocked_paths",
    "body_shadow_correction",
    "compute_clutter",
    "facets_hidden_by_furniture",
    "furniture_faces",
    "furniture_reflections",
    "segments_blocked_by_boxes",
]

#: Boxes are shrunk by this much (m) before a leg is tested against them: a leg that ends on a
#: face (every furniture path's specular point) or runs along one is not blocked by it.
_BOX_TOLERANCE_M = 1e-6
#: A transducer (or body facet) must be this far (m) on the air side of a face's plane to reflect off it.
_MIN_PLANE_DISTANCE_M = 1e-6
#: Polygon edges are widened by this much (m) in the inside test (specular points on an edge count).
_EDGE_TOLERANCE_M = 1e-9
#: Safety margin (m) of the conservative culls below (a box's bounding sphere against the segments' bounding
#: box, a face's visibility pyramid against the body's): far above rounding (1e-15 m at room scale) and above
#: ``_EDGE_TOLERANCE_M``, so a cull never drops anything the exact per-segment or per-facet test would keep.
_CULL_MARGIN_M = 1e-3
#: Side (m) of the cubes that group a body's facets for :meth:`FurnitureImages.reaching`'s cull.
_CELL_M = 0.1


# --------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FurnitureFaces:
    """The reflecting faces of a room's furniture and its boxes, as plain arrays.

    Attributes:
        names: (K,) surface names, e.g. ``"seat_0/box0/top"`` (``Furniture.surfaces``: bottoms
            resting on the floor are left out).
        polygons_m: (K, 4, 3) corners, counter-clockwise around ``normals``.
        normals: (K, 3) unit normals pointing out of the air (into the furniture).
        furniture_index: (K,) index into ``room.furniture``; box_index: (K,) index into the boxes
            below (all boxes of all furniture, in order).
        band_reflection: (K, B) pressure reflection factor sqrt(1 - alpha_b) per pyroomacoustics
            octave band (``band_centers_hz``, the bands of the room's image-source model).
        band_centers_hz: (B,).
        box_centers_m, box_half_sizes_m: (NB, 3); box_rotations: (NB, 3, 3) box axes -> room axes.
    """

    names: tuple[str, ...]
    polygons_m: np.ndarray
    normals: np.ndarray
    furniture_index: np.ndarray
    box_index: np.ndarray
    band_reflection: np.ndarray
    band_centers_hz: np.ndarray
    box_centers_m: np.ndarray
    box_half_sizes_m: np.ndarray
    box_rotations: np.ndarray

    @property
    def n_faces(self) -> int:
        return len(self.names)

    @cached_property
    def edge_normals(self) -> np.ndarray:
        """(K, 4, 3) unit in-plane normals of each polygon's edges (edge i runs from corner i to corner
        i + 1), pointing into the polygon: the inside test's, computed once per room instead of per test."""
        return np.array([_edge_normals(polygon, normal) for polygon, normal in zip(self.polygons_m, self.normals)],
                        dtype=float).reshape(-1, 4, 3)


def furniture_faces(room: Room, sample_rate_hz: float = 96_000.0) -> FurnitureFaces:
    """The faces and boxes of ``room.furniture`` (empty arrays without furniture).

    sample_rate_hz: the image-source model's rate; it fixes pyroomacoustics' octave bands, at which the
    materials' absorption is interpolated exactly as ``rooms.pra_export`` does for walls.
    """
    if not isinstance(room, Room):
        raise SimulationInputError(f"room is a {type(room).__name__}; pass a rooms.ShoeboxRoom or "
                                   "rooms.PolyhedralRoom.")
    centers = pra_band_centers_hz(float(sample_rate_hz))
    names, polygons, normals, furniture_index, box_index, reflection = [], [], [], [], [], []
    box_centers, box_half, box_rot = [], [], []
    for i, item in enumerate(room.furniture):
        first_box = len(box_centers)
        for box in item.boxes:
            box_centers.append(box.center_m)
            box_half.append(box.size_m / 2)
            box_rot.append(box.rotation)
        for surface in item.surfaces(f"{item.kind}_{i}"):
            b = int(surface.name.split("/box")[1].split("/")[0])  # "<name>/box<b>/<face>"
            names.append(surface.name)
            polygons.append(np.asarray(surface.polygon_m, dtype=float))
            normals.append(surface.normal)
            furniture_index.append(i)
            box_index.append(first_box + b)
            reflection.append(np.sqrt(1.0 - surface.material.absorption_at_bands(centers)))
    return FurnitureFaces(
        names=tuple(names),
        polygons_m=np.array(polygons, dtype=float).reshape(-1, 4, 3),
        normals=np.array(normals, dtype=float).reshape(-1, 3),
        furniture_index=np.array(furniture_index, dtype=np.int64),
        box_index=np.array(box_index, dtype=np.int64),
        band_reflection=np.array(reflection, dtype=float).reshape(-1, len(centers)),
        band_centers_hz=centers,
        box_centers_m=np.array(box_centers, dtype=float).reshape(-1, 3),
        box_half_sizes_m=np.array(box_half, dtype=float).reshape(-1, 3),
        box_rotations=np.array(box_rot, dtype=float).reshape(-1, 3, 3),
    )


def segments_blocked_by_boxes(starts_m, ends_m, faces: FurnitureFaces,
                              tolerance_m: float = _BOX_TOLERANCE_M) -> np.ndarray:
    """(N,) bool: segments start -> end (N, 3) that pass through the interior of a furniture box
    (each box shrunk by ``tolerance_m``: touching or grazing a face does not block). Slab test in
    every box's own frame, on the segments that pass within the box's bounding sphere; a segment whose
    own bounding box misses that sphere (grown by ``_CULL_MARGIN_M``) skips the box without either test
    (the answer is the same: such a segment cannot enter the box)."""
    starts = np.asarray(starts_m, dtype=float).reshape(-1, 3)
    ends = np.asarray(ends_m, dtype=float).reshape(-1, 3)
    blocked = np.zeros(len(starts), dtype=bool)
    if len(starts) == 0:
        return blocked
    # Each segment's bounding box, coordinate by coordinate (contiguous rows): a segment whose box misses the
    # box's bounding sphere's (grown by a margin far above rounding) cannot pass the sphere test below.
    low, high = np.minimum(starts, ends).T.copy(), np.maximum(starts, ends).T.copy()
    for center, half, rotation in zip(faces.box_centers_m, faces.box_half_sizes_m, faces.box_rotations):
        radius = float(np.linalg.norm(half))
        reach = radius + _CULL_MARGIN_M
        candidates = ~blocked
        for axis in range(3):
            candidates &= (low[axis] < center[axis] + reach) & (high[axis] > center[axis] - reach)
        candidates = np.flatnonzero(candidates)
        if len(candidates) == 0:
            continue
        # Cheap reject by the box's bounding sphere before the slab test.
        a, d = starts[candidates], ends[candidates] - starts[candidates]
        dd = np.einsum("nd,nd->n", d, d)
        t = np.clip(np.einsum("nd,nd->n", center - a, d) / np.where(dd > 0, dd, 1.0), 0.0, 1.0)
        near = candidates[_row_norms(a + t[:, None] * d - center) < radius]
        if len(near) == 0:
            continue
        s = (starts[near] - center) @ rotation
        e = (ends[near] - center) @ rotation
        step = e - s
        h = half - tolerance_m
        t0 = np.zeros(len(near))
        t1 = np.ones(len(near))
        for axis in range(3):
            ds, ss = step[:, axis], s[:, axis]
            parallel = np.abs(ds) < 1e-15
            with np.errstate(divide="ignore", invalid="ignore"):
                ta = (-h[axis] - ss) / ds
                tb = (h[axis] - ss) / ds
            lo = np.where(parallel, np.where(np.abs(ss) < h[axis], -np.inf, np.inf), np.minimum(ta, tb))
            hi = np.where(parallel, np.where(np.abs(ss) < h[axis], np.inf, -np.inf), np.maximum(ta, tb))
            t0 = np.maximum(t0, lo)
            t1 = np.minimum(t1, hi)
        blocked[near[t0 < t1]] = True
    return blocked


def _column_min(points: np.ndarray) -> np.ndarray:
    """(3,) smallest coordinate of points (N, 3) along each axis (``points.min(axis=0)``; numpy's reduction
    over the long axis of an (N, 3) array is an order of magnitude slower than three column reductions)."""
    return np.array([points[:, axis].min() for axis in range(3)])


def _segments_near_spheres(start: np.ndarray, ends: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(N, B) bool: the segment start (3,) -> ends[n] (N, 3) passes closer than radii[b] (B,) to centres[b] (B, 3)."""
    d = ends - start
    dd = np.einsum("nd,nd->n", d, d)
    t = np.clip((d @ (centres - start).T) / np.where(dd > 0, dd, 1.0)[:, None], 0.0, 1.0)
    closest = start + t[..., None] * d[:, None, :]                     # (N, B, 3)
    return np.linalg.norm(closest - centres, axis=2) < radii


def _plane_distance(faces: FurnitureFaces, points: np.ndarray) -> np.ndarray:
    """(N, K) distance of each point from each face's plane, positive on the air side."""
    return np.einsum("kd,kd->k", faces.polygons_m[:, 0], faces.normals)[None, :] - points @ faces.normals.T


def _edge_normals(polygon: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """(n, 3) unit normals of a convex polygon's edges (i: corner i -> i + 1), in its plane, pointing in."""
    out = []
    for i in range(len(polygon)):
        edge = polygon[(i + 1) % len(polygon)] - polygon[i]
        edge_normal = np.cross(normal, edge)  # in the plane, pointing into a counter-clockwise polygon
        edge_normal /= np.linalg.norm(edge_normal)
        out.append(edge_normal)
    return np.array(out)


def _inside_polygon(polygon: np.ndarray, normal: np.ndarray, points: np.ndarray,
                    edge_normals: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: points (N, 3) on a convex polygon's plane lie inside it (edges included, within
    ``_EDGE_TOLERANCE_M``). edge_normals: ``_edge_normals(polygon, normal)`` if already computed."""
    edge_normals = _edge_normals(polygon, normal) if edge_normals is None else edge_normals
    inside = np.ones(len(points), dtype=bool)
    for a, edge_normal in zip(polygon, edge_normals):
        inside &= (points - a) @ edge_normal >= -_EDGE_TOLERANCE_M
    return inside


def _face_pyramids(images: np.ndarray, polygons: np.ndarray, edge_normals: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(points (P, n, 3), unit normals (P, n, 3)) of the side planes of the pyramids with apex ``images[p]``
    (P, 3) through the faces ``polygons[p]`` (P, n, 3) grown by ``_CULL_MARGIN_M``; normals point inwards.

    For y on the air side of a face and its image on the other side, the specular point x (where the
    segment y -> image crosses the plane) is x = (1 - t) y + t image with 0 < t < 1, so for every plane
    through the apex, y and x lie on the same side of it: x is inside the polygon exactly when y is
    inside the pyramid. Growing the polygon by ``_CULL_MARGIN_M`` (>> the inside test's tolerance) makes
    "outside a side plane" a safe reason to skip y: the exact test could not accept it.
    """
    a = polygons - _CULL_MARGIN_M * edge_normals          # edge i: corner i -> i + 1, pushed out
    b = np.roll(polygons, -1, axis=1) - _CULL_MARGIN_M * edge_normals
    side = np.cross(a - images[:, None], b - images[:, None])
    side /= np.linalg.norm(side, axis=2, keepdims=True)
    centre = polygons.mean(axis=1, keepdims=True)
    side *= np.sign(np.einsum("pnd,pnd->pn", side, centre - a))[..., None]  # oriented into the pyramid
    return a, side


def _facet_cubes(centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Facets grouped by the cube of side ``_CELL_M`` their centroid lies in: (cube of each facet (F,),
    cube centres (C, 3), radius of a sphere holding any cube, margin included)."""
    cell = np.floor(centroids / _CELL_M).astype(np.int64)
    origin = _column_min(cell)
    cell -= origin
    ny, nz = -_column_min(-cell)[1:] + 1
    key = (cell[:, 0] * ny + cell[:, 1]) * nz + cell[:, 2]
    if key.max() < 1 << 22:  # a body spans a few thousand cells: mark them in a dense grid, no sort needed
        occupied = np.zeros(int(key.max()) + 1, dtype=bool)
        occupied[key] = True
        keys = np.flatnonzero(occupied)
        cube_of = (np.cumsum(occupied) - 1)[key]
    else:  # a mesh spread over a large space (parts metres apart): only its occupied cells, sorted
        keys, cube_of = np.unique(key, return_inverse=True)
        cube_of = cube_of.ravel()
    corner = np.stack([keys // (ny * nz), keys // nz % ny, keys % nz], axis=1) + origin
    return cube_of, (corner + 0.5) * _CELL_M, 0.5 * np.sqrt(3.0) * _CELL_M + _CULL_MARGIN_M


@dataclass(frozen=True)
class FurniturePaths:
    """Every first-order furniture reflection of every (speaker, microphone) pair, geometry only.

    Attributes:
        speaker, microphone, face: (P,) int64; ``face`` indexes ``faces`` (its name, box, furniture).
        image_m: (P, 3) the speaker's image across the face's plane.
        specular_m: (P, 3) the reflection point (inside the face).
        length_m: (P,) path length |image - microphone| = |speaker - specular| + |specular - microphone|.
        faces: the :class:`FurnitureFaces` the paths come from.
    """

    speaker: np.ndarray
    microphone: np.ndarray
    face: np.ndarray
    image_m: np.ndarray
    specular_m: np.ndarray
    length_m: np.ndarray
    faces: FurnitureFaces

    @property
    def n_paths(self) -> int:
        return len(self.face)


def furniture_reflections(room: Room, speaker_positions_m, microphone_positions_m, *,
                          faces: FurnitureFaces | None = None, blocking: bool = True) -> FurniturePaths:
    """First-order specular reflections off the furniture of ``room`` for every speaker-microphone pair.

    speaker_positions_m: (S, 3), microphone_positions_m: (M, 3), room frame, in the room's air.
    faces: ``furniture_faces(room)`` if already built. blocking: drop paths whose legs pass through a
    furniture box (True; False keeps them, for tests and studies).

    A path exists when both transducers are on the face's air side and the specular point lies in the
    face (see the module docstring). Paths are ordered by pair (speaker * M + microphone), then face.
    """
    speakers = validate_inside(room, speaker_positions_m, "speaker_positions_m")
    microphones = validate_inside(room, microphone_positions_m, "microphone_positions_m")
    faces = furniture_faces(room) if faces is None else faces
    h_s = _plane_distance(faces, speakers)  # (S, K)
    h_m = _plane_distance(faces, microphones)  # (M, K)
    rows = {k: [] for k in ("s", "m", "k", "image", "spec")}
    for s in range(len(speakers)):
        for m in range(len(microphones)):
            valid = np.flatnonzero((h_s[s] > _MIN_PLANE_DISTANCE_M) & (h_m[m] > _MIN_PLANE_DISTANCE_M))
            for k in valid:
                image = speakers[s] + 2.0 * h_s[s, k] * faces.normals[k]
                t = h_m[m, k] / (h_m[m, k] + h_s[s, k])
                spec = microphones[m] + t * (image - microphones[m])
                if not _inside_polygon(faces.polygons_m[k], faces.normals[k], spec[None], faces.edge_normals[k])[0]:
                    continue
                rows["s"].append(s)
                rows["m"].append(m)
                rows["k"].append(k)
                rows["image"].append(image)
                rows["spec"].append(spec)
    spk = np.array(rows["s"], dtype=np.int64)
    mic = np.array(rows["m"], dtype=np.int64)
    image = np.array(rows["image"], dtype=float).reshape(-1, 3)
    spec = np.array(rows["spec"], dtype=float).reshape(-1, 3)
    keep = np.ones(len(spk), dtype=bool)
    if blocking and len(spk):
        keep = ~(segments_blocked_by_boxes(speakers[spk], spec, faces)
                 | segments_blocked_by_boxes(spec, microphones[mic], faces))
    spk, mic, image, spec = spk[keep], mic[keep], image[keep], spec[keep]
    return FurniturePaths(
        speaker=spk, microphone=mic, face=np.array(rows["k"], dtype=np.int64)[keep], image_m=image, specular_m=spec,
        length_m=np.linalg.norm(image - microphones[mic], axis=1), faces=faces,
    )


# --------------------------------------------------------------------------------------
# the empty room's clutter
# --------------------------------------------------------------------------------------


@dataclass(eq=False)
class Clutter:
    """What the furniture of one room does to its rig's empty-room response (compute once per room).

    Attributes:
        impulse_responses: (S, M, T) to ADD to ``RoomAcoustics.impulse_responses``: reflections + shadow.
        reflection_impulse_responses: (S, M, T) the furniture's first-order reflections.
        shadow_impulse_responses: (S, M, T) minus the room paths that furniture blocks.
        paths: :class:`FurniturePaths` of the reflections kept (arriving inside the window), in the
            order of ``reflections.paths``.
        reflections: a :class:`RoomAcoustics` whose ``paths`` are the furniture reflections (order 1,
            two legs each: speaker -> specular point -> microphone), sharing the room's synthesis: its
            ``path_impulse_responses``, ``blocked_paths`` and ``shadow_correction`` work on them (its
            wall fields and ``first_order_images`` are the room's walls', not the furniture's).
        room_paths_blocked: (P_room,) bool, the room paths (``acoustics.paths``) furniture blocks.
        faces: the :class:`FurnitureFaces`.
        face_reflection: (K,) each face's pressure reflection coefficient averaged over 19-32 kHz.
        speaker_positions_m, microphone_positions_m: (S, 3), (M, 3), as in the room's acoustics.

    Plain numpy data only, so it pickles (e.g. to Ray workers).
    """

    impulse_responses: np.ndarray
    reflection_impulse_responses: np.ndarray
    shadow_impulse_responses: np.ndarray
    paths: FurniturePaths
    reflections: RoomAcoustics
    room_paths_blocked: np.ndarray
    faces: FurnitureFaces
    face_reflection: np.ndarray
    speaker_positions_m: np.ndarray
    microphone_positions_m: np.ndarray

    def first_order_images(self) -> "FurnitureImages":
        """The speakers and microphones mirrored across every furniture face (see :class:`FurnitureImages`)."""
        faces = self.faces
        h_s = _plane_distance(faces, self.speaker_positions_m)  # (S, K)
        h_m = _plane_distance(faces, self.microphone_positions_m)
        return FurnitureImages(
            speaker_images_m=self.speaker_positions_m[:, None, :] + 2.0 * h_s[..., None] * faces.normals[None],
            microphone_images_m=self.microphone_positions_m[:, None, :] + 2.0 * h_m[..., None] * faces.normals[None],
            speaker_valid=h_s > _MIN_PLANE_DISTANCE_M,
            microphone_valid=h_m > _MIN_PLANE_DISTANCE_M,
            face_reflection=self.face_reflection,
            speaker_positions_m=self.speaker_positions_m,
            microphone_positions_m=self.microphone_positions_m,
            faces=faces,
        )


def compute_clutter(room: Room, acoustics: RoomAcoustics, *, air_absorption: bool = True,
                    directivity: DirectivityDraw | None = None, shadow_max_order: int | None = None) -> Clutter:
    """The furniture's first-order reflections and shadows for a room's rig (see the module docstring).

    Args:
        room: the furnished room whose empty response ``acoustics`` is (computed without furniture:
            ``compute_room_acoustics(..., include_furniture=False)``, the default).
        acoustics: the room's :class:`RoomAcoustics` (its rig, air, window and synthesis are used).
        air_absorption: as passed to ``compute_room_acoustics`` (ISO 9613-1 air on the paths).
        directivity: as passed to ``compute_room_acoustics`` (None: omni).
        shadow_max_order: only room paths up to this order can be blocked by furniture (None: all).

    Returns:
        :class:`Clutter`; empty room with furniture = ``acoustics.impulse_responses + clutter.impulse_responses``.
    """
    if not isinstance(acoustics, RoomAcoustics):
        raise SimulationInputError(f"acoustics is a {type(acoustics).__name__}; pass the room's RoomAcoustics "
                                   "(simulator.room_response.compute_room_acoustics).")
    if acoustics.include_furniture:
        raise SimulationInputError("acoustics.include_furniture = True: that response already has the furniture "
                                   "(general image-source model); compute it with include_furniture=False.")
    if not isinstance(air_absorption, (bool, np.bool_)):
        raise SimulationInputError(f"air_absorption = {air_absorption!r}: use True or False, as for the room.")
    if shadow_max_order is not None and (isinstance(shadow_max_order, bool) or not isinstance(
            shadow_max_order, (int, np.integer)) or shadow_max_order < 0):
        raise SimulationInputError(f"shadow_max_order = {shadow_max_order!r}: give a non-negative integer or None "
                                   "(all orders).")
    S, M = acoustics.n_speakers, acoustics.n_microphones
    if directivity is not None and (not isinstance(directivity, DirectivityDraw) or len(directivity.speakers) != S
                                    or len(directivity.microphones) != M):
        raise SimulationInputError(f"directivity = {type(directivity).__name__}: pass the DirectivityDraw the room's "
                                   f"acoustics used ({S} speakers, {M} microphones), or None (omni).")
    faces = furniture_faces(room, acoustics.sample_rate_hz)
    if faces.band_reflection.shape[1] != acoustics.wall_absorption.shape[1]:  # pragma: no cover - defensive
        raise RuntimeError("furniture and room octave bands differ; cannot blend them alike.")
    speakers, microphones = acoustics.speaker_positions_m, acoustics.microphone_positions_m
    found = furniture_reflections(room, speakers, microphones, faces=faces)

    # Same amplitude as a first-order wall path of the image-source model (room_response._kept_paths).
    c, fs = acoustics.speed_of_sound_m_s, acoustics.sample_rate_hz
    nodes = acoustics.paths.band_centers_hz
    keep = found.length_m / c * fs < acoustics.n_samples + KERNEL_HALF_WIDTH
    found = _subset(found, keep)
    air = air_absorption_energy_per_m(nodes, acoustics.temperature_c, acoustics.relative_humidity_pct)
    air = air * float(bool(air_absorption))
    damping = faces.band_reflection[found.face] @ acoustics.band_gains(nodes)  # (P, N)
    length = found.length_m[:, None]
    amplitudes = damping * np.exp(-0.5 * air[None, :] * length) / (4.0 * np.pi * length)
    if directivity is not None and found.n_paths:
        for s in range(S):
            for m in range(M):
                sel = (found.speaker == s) & (found.microphone == m)
                if sel.any():
                    amplitudes[sel] *= path_gains(directivity.speakers[s], directivity.microphones[m],
                                                  found.specular_m[sel] - speakers[s],
                                                  found.image_m[sel] - microphones[m], nodes, c)
    paths = _as_image_paths(found, amplitudes, speakers, microphones, c, nodes)
    reflections = dataclasses.replace(acoustics, paths=paths, impulse_responses=None)
    reflection_ir = reflections.path_impulse_responses(np.arange(found.n_paths), 1.0)
    reflections.impulse_responses = reflection_ir

    room_paths = acoustics.paths
    leg_mask = np.ones(len(room_paths.leg_path), dtype=bool)
    if shadow_max_order is not None:
        leg_mask = room_paths.order[room_paths.leg_path] <= int(shadow_max_order)
    blocked = np.zeros(room_paths.n_paths, dtype=bool)
    if faces.n_faces and leg_mask.any():
        legs = np.flatnonzero(leg_mask)
        hit = segments_blocked_by_boxes(room_paths.leg_start_m[legs], room_paths.leg_end_m[legs], faces)
        blocked[room_paths.leg_path[legs[hit]]] = True
    shadow_ir = (acoustics.path_impulse_responses(np.flatnonzero(blocked), -1.0) if blocked.any()
                 else np.zeros((S, M, acoustics.n_samples)))

    band = np.linspace(ECHO_BAND_HZ[0], ECHO_BAND_HZ[1], 131)
    face_reflection = (faces.band_reflection @ acoustics.band_gains(band)).mean(axis=1)
    return Clutter(
        impulse_responses=reflection_ir + shadow_ir, reflection_impulse_responses=reflection_ir,
        shadow_impulse_responses=shadow_ir, paths=found, reflections=reflections, room_paths_blocked=blocked,
        faces=faces, face_reflection=face_reflection, speaker_positions_m=speakers, microphone_positions_m=microphones,
    )


def _subset(paths: FurniturePaths, keep: np.ndarray) -> FurniturePaths:
    return FurniturePaths(paths.speaker[keep], paths.microphone[keep], paths.face[keep], paths.image_m[keep],
                          paths.specular_m[keep], paths.length_m[keep], paths.faces)


def _as_image_paths(paths: FurniturePaths, amplitudes, speakers, microphones, c, nodes) -> ImagePaths:
    """The reflections as :class:`ImagePaths` (order 1, legs speaker -> specular point -> microphone)."""
    S, M = len(speakers), len(microphones)
    per_pair = []
    pair = paths.speaker * M + paths.microphone  # already sorted by pair
    for p in range(S * M):
        sel = np.flatnonzero(pair == p)
        if len(sel) == 0:
            per_pair.append(None)
            continue
        s, m = divmod(p, M)
        spec = paths.specular_m[sel]
        k = len(sel)
        per_pair.append((
            paths.image_m[sel], paths.length_m[sel], np.ones(k, dtype=np.int64), amplitudes[sel],
            np.vstack([np.repeat(speakers[s][None], k, 0), spec]),
            np.vstack([spec, np.repeat(microphones[m][None], k, 0)]),
            np.r_[np.arange(k), np.arange(k)],
        ))
    return assemble_paths(per_pair, S, M, c, nodes, len(nodes))


# --------------------------------------------------------------------------------------
# per frame: the body's shadows
# --------------------------------------------------------------------------------------


def body_blocked_paths(acoustics: RoomAcoustics, clutter: Clutter, body_mesh, *,
                       max_order: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(room paths (P_room,) bool, furniture reflections (P_furniture,) bool) that the body blocks.

    Room paths that furniture already blocks are left out (the empty room no longer has them).
    body_mesh: ``trimesh.Trimesh`` or ``FacetMesh``, room frame. max_order: as for
    ``RoomAcoustics.blocked_paths`` (the furniture reflections are order 1).
    """
    _check_pair(acoustics, clutter)
    mesh = _as_facet_mesh(body_mesh)
    room = acoustics.blocked_paths(mesh, max_order=max_order) & ~clutter.room_paths_blocked
    if clutter.paths.n_paths == 0 or (max_order is not None and max_order < 1):
        return room, np.zeros(clutter.paths.n_paths, dtype=bool)
    return room, clutter.reflections.blocked_paths(mesh)


def body_shadow_correction(acoustics: RoomAcoustics, clutter: Clutter, body_mesh, *, attenuation: float = 1.0,
                           max_order: int | None = None, period: int | None = None) -> np.ndarray:
    """(S, M, T) to ADD because the body blocks paths of the furnished room: use it in place of
    ``acoustics.shadow_correction`` when the empty room includes ``clutter``.

    Every room path the body blocks (and furniture did not) and every furniture reflection the body
    blocks contributes -attenuation x its response. Arguments as ``RoomAcoustics.shadow_correction``
    (period: folded into that many samples, in band only).
    """
    if isinstance(attenuation, bool) or not np.isscalar(attenuation) or not (0.0 <= float(attenuation) <= 1.0):
        raise SimulationInputError(f"attenuation = {attenuation!r}: give a number in [0, 1] (1 removes blocked paths).")
    room, furniture = body_blocked_paths(acoustics, clutter, body_mesh, max_order=max_order)
    length = acoustics.n_samples if period is None else int(period)
    out = np.zeros((acoustics.n_speakers, acoustics.n_microphones, length))
    if float(attenuation) == 0.0:
        return out
    if room.any():
        out += acoustics.path_impulse_responses(np.flatnonzero(room), -float(attenuation), period)
    if furniture.any():
        out += clutter.reflections.path_impulse_responses(np.flatnonzero(furniture), -float(attenuation), period)
    return out


def _check_pair(acoustics: RoomAcoustics, clutter: Clutter) -> None:
    if not isinstance(clutter, Clutter):
        raise SimulationInputError(f"clutter is a {type(clutter).__name__}; pass compute_clutter(room, acoustics).")
    if (len(clutter.room_paths_blocked) != acoustics.paths.n_paths
            or not np.array_equal(clutter.speaker_positions_m, acoustics.speaker_positions_m)
            or not np.array_equal(clutter.microphone_positions_m, acoustics.microphone_positions_m)):
        raise SimulationInputError("clutter was computed for other room acoustics (rig or paths differ); "
                                   "compute it with compute_clutter(room, acoustics) for these acoustics.")


def facets_hidden_by_furniture(faces: FurnitureFaces, body_mesh, positions_m) -> np.ndarray:
    """(N, F) bool: body facets whose centroid the point ``positions_m[i]`` (N, 3) sees only through a
    furniture box (the straight segment between them crosses a box's interior).

    For the body's direct echo: ``lit = mesh.lit_facets(transducers) & ~facets_hidden_by_furniture(...)``
    (real transducers only; images across walls need their legs traced, and the images of
    :class:`FurnitureImages` are tested in :meth:`FurnitureImages.reaching`).

    Only the facets in cubes of side ``_CELL_M`` whose segment from the point passes near a box are tested:
    the cull is conservative, so the answer is that of testing every facet (``tests/test_clutter.py``).
    """
    mesh = _as_facet_mesh(body_mesh)
    points = np.asarray(positions_m, dtype=float).reshape(-1, 3)
    out = np.zeros((len(points), mesh.n_faces), dtype=bool)
    if faces.n_faces == 0:
        return out
    centroids = mesh.centroids_m
    cube_of, cube_centres, cube_radius = _facet_cubes(centroids)
    box_radius = np.linalg.norm(faces.box_half_sizes_m, axis=1)
    for i, p in enumerate(points):
        # A segment p -> y, y within cube_radius of a cube's centre, stays within cube_radius of the segment
        # p -> centre: only the facets of cubes whose centre's segment passes that close to a box's bounding
        # sphere can be blocked (segments_blocked_by_boxes skips the others by that sphere too).
        near = _segments_near_spheres(p, cube_centres, faces.box_centers_m, box_radius + cube_radius).any(axis=1)
        f = np.flatnonzero(near[cube_of])
        if len(f):
            out[i, f] = segments_blocked_by_boxes(np.broadcast_to(p, (len(f), 3)), centroids[f], faces)
    return out


# --------------------------------------------------------------------------------------
# per frame: the body lit through furniture faces
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyFurniturePaths:
    """The body's first-order paths by way of furniture faces, ready for ``body_impulse_responses``.

    Transmitters are speaker images, receivers microphone images; only images that reach at least one
    facet are listed. ``pairs`` index the caller's full transmitter and receiver lists: a speaker
    image at ``tx_offset + a``, a microphone image at ``rx_offset + b``, real speaker s at s and real
    microphone m at m (the caller lists the real transducers first, as ``RoomSimulator`` does).

    Attributes:
        tx_positions_m: (A, 3) speaker images; tx_speaker: (A,) their real speaker; tx_face: (A,) face.
        rx_positions_m: (B, 3) microphone images; rx_microphone: (B,) their real microphone; rx_face: (B,).
        tx_lit: (A, F) bool facets each speaker image really lights through its face; rx_lit: (B, F).
        tx_normals, rx_normals: (A, 3), (B, 3) the faces' normals (to mirror a transducer's aim).
        pairs: (P, 2) (tx, rx) indices; channels: (P,) output row s * M + m; gains: (P,) the face's
            band-averaged reflection coefficient.
    """

    tx_positions_m: np.ndarray
    tx_speaker: np.ndarray
    tx_face: np.ndarray
    rx_positions_m: np.ndarray
    rx_microphone: np.ndarray
    rx_face: np.ndarray
    tx_lit: np.ndarray
    rx_lit: np.ndarray
    tx_normals: np.ndarray
    rx_normals: np.ndarray
    pairs: np.ndarray
    channels: np.ndarray
    gains: np.ndarray


@dataclass(frozen=True)
class FurnitureImages:
    """Mirror images of the transducers across the furniture faces (the furniture's
    ``FirstOrderImages``).

    Attributes:
        speaker_images_m: (S, K, 3) mirror of each speaker across each face's plane.
        microphone_images_m: (M, K, 3).
        speaker_valid, microphone_valid: (S, K), (M, K) bool: the transducer is on the face's air side
            (otherwise its image reflects nothing).
        face_reflection: (K,) pressure reflection coefficient averaged over 19-32 kHz (the image-source
            model's band blend, as ``FirstOrderImages.wall_reflection``).
        speaker_positions_m, microphone_positions_m: (S, 3), (M, 3) the real transducers.
        faces: the :class:`FurnitureFaces` (polygons, normals, boxes).

    Unlike a shoebox's wall images, a furniture image reaches a body point only where the specular
    point lies on the face: :meth:`reaching` and :meth:`body_paths` decide it per facet.
    """

    speaker_images_m: np.ndarray
    microphone_images_m: np.ndarray
    speaker_valid: np.ndarray
    microphone_valid: np.ndarray
    face_reflection: np.ndarray
    speaker_positions_m: np.ndarray
    microphone_positions_m: np.ndarray
    faces: FurnitureFaces

    def reaching(self, body_mesh, points_m, face_index) -> np.ndarray:
        """(N, F) bool: the facets that real point ``points_m[i]`` (N, 3) reaches by way of face
        ``face_index[i]`` (N,): facet centroid on the face's air side, specular point inside the face,
        the facet facing it and first hit from it, the leg point -> specular point clear of the body,
        neither leg through a furniture box. Two rays per candidate facet, cast in two calls for all pairs.

        The per-facet tests run only on the facets in cubes of side ``_CELL_M`` that reach into the
        pyramid from the point's image through the face (grown by ``_CULL_MARGIN_M``); few do, as most faces
        see little or none of the body. The cull is conservative: the facets reached are exactly those of
        testing every facet of every pair (``tests/test_clutter.py`` checks it against a plain reference)."""
        mesh = _as_facet_mesh(body_mesh)
        points = np.asarray(points_m, dtype=float).reshape(-1, 3)
        face_index = np.asarray(face_index, dtype=np.int64).reshape(-1)
        faces = self.faces
        out = np.zeros((len(points), mesh.n_faces), dtype=bool)
        if len(points) == 0:
            return out
        centroids, normals = mesh.centroids_m, mesh.normals
        h_c = _plane_distance(faces, centroids).T.copy()  # (K, F): one contiguous row per face
        air_side = h_c > _MIN_PLANE_DISTANCE_M
        any_air = air_side.any(axis=1)
        # the pairs whose point is on the face's air side with some facet on that side too, and their images
        pair, images = [], []
        for i, (p, k) in enumerate(zip(points, face_index)):
            n = faces.normals[k]
            h_p = float(faces.polygons_m[k, 0] @ n - p @ n)
            if h_p > _MIN_PLANE_DISTANCE_M and any_air[k]:
                pair.append((i, h_p))
                images.append(p + 2.0 * h_p * n)
        if not pair:
            return out
        # Few facets reach a face (a chair's side, a table under the body: often none): the facets of cubes
        # wholly outside a face's pyramid are skipped before the exact per-facet tests below.
        cube_of, cube_centres, cube_radius = _facet_cubes(centroids)
        pair_face = face_index[[i for i, _ in pair]]
        plane_points, plane_normals = _face_pyramids(np.array(images), faces.polygons_m[pair_face],
                                                     faces.edge_normals[pair_face])
        reach = np.all(np.einsum("cd,pnd->pnc", cube_centres, plane_normals)
                       - np.einsum("pnd,pnd->pn", plane_points, plane_normals)[..., None] > -cube_radius, axis=1)
        cand_i, cand_f, cand_x = [], [], []
        for (i, h_p), k, image, cubes in zip(pair, pair_face, images, reach):
            if not cubes.any():
                continue
            f = np.flatnonzero(air_side[k] & cubes[cube_of])
            at, towards = centroids[f], image - centroids[f]
            facing = np.einsum("fd,fd->f", towards, normals[f]) > 0  # facing the image (and x)
            if not facing.any():
                continue
            f, at, towards = f[facing], at[facing], towards[facing]
            t = h_c[k, f] / (h_c[k, f] + h_p)
            x = at + t[:, None] * towards
            inside = _inside_polygon(faces.polygons_m[k], faces.normals[k], x, faces.edge_normals[k])
            cand_i.append(np.full(int(inside.sum()), i))
            cand_f.append(f[inside])
            cand_x.append(x[inside])
        if not cand_i:
            return out
        ci, cf, cx = np.concatenate(cand_i), np.concatenate(cand_f), np.concatenate(cand_x)
        if len(ci) == 0:
            return out
        ok = ~(segments_blocked_by_boxes(points[ci], cx, faces) | segments_blocked_by_boxes(cx, centroids[cf], faces))
        ci, cf, cx = ci[ok], cf[ok], cx[ok]
        if len(ci) == 0:
            return out
        # the facet is the first body hit from the specular point (cast from x, not from the image: the
        # virtual half of the image's ray lies beyond the face, where body parts may be but nothing real is)
        to_facet = centroids[cf] - cx
        hit = mesh.intersector.intersects_first(cx, to_facet / _row_norms(to_facet)[:, None])
        seen = hit == cf
        ci, cf, cx = ci[seen], cf[seen], cx[seen]
        if len(ci) == 0:
            return out
        # the real leg point -> specular point clear of the body (a seat under a sitting person is dark)
        leg = cx - points[ci]
        length = _row_norms(leg)
        _, ray, where = mesh.intersector.intersects_id(points[ci], leg / length[:, None], multiple_hits=False,
                                                       return_locations=True)
        dark = np.zeros(len(ci), dtype=bool)
        if len(ray):
            dark[ray[_row_norms(where - points[ci][ray]) < length[ray] - _MIN_PLANE_DISTANCE_M]] = True
        out[ci[~dark], cf[~dark]] = True
        return out

    def body_paths(self, body_mesh, tx_offset: int, rx_offset: int) -> BodyFurniturePaths:
        """The body's paths speaker -> face -> body -> microphone and speaker -> body -> face -> microphone.

        body_mesh: ``FacetMesh`` (reuse the frame's) or ``trimesh.Trimesh``, room frame.
        tx_offset, rx_offset: where these images start in the caller's transmitter and receiver lists.
        """
        S, M = len(self.speaker_positions_m), len(self.microphone_positions_m)
        K = self.faces.n_faces
        mesh = _as_facet_mesh(body_mesh)
        s_of, k_of = np.nonzero(self.speaker_valid)
        m_of, j_of = np.nonzero(self.microphone_valid)
        lit = self.reaching(mesh, np.vstack([self.speaker_positions_m[s_of], self.microphone_positions_m[m_of]]),
                            np.r_[k_of, j_of]) if K and (len(s_of) + len(m_of)) else np.zeros((0, mesh.n_faces), bool)
        tx_lit, rx_lit = lit[: len(s_of)], lit[len(s_of):]
        tx_keep, rx_keep = tx_lit.any(axis=1), rx_lit.any(axis=1)
        s_of, k_of, tx_lit = s_of[tx_keep], k_of[tx_keep], tx_lit[tx_keep]
        m_of, j_of, rx_lit = m_of[rx_keep], j_of[rx_keep], rx_lit[rx_keep]
        # speaker image a -> body -> every real microphone; every real speaker -> body -> microphone image b
        a, m = (g.ravel() for g in np.meshgrid(np.arange(len(s_of)), np.arange(M), indexing="ij"))
        s, b = (g.ravel() for g in np.meshgrid(np.arange(S), np.arange(len(m_of)), indexing="ij"))
        pairs = np.vstack([np.stack([tx_offset + a, m], 1), np.stack([s, rx_offset + b], 1)]).astype(np.int64)
        channels = np.r_[s_of[a] * M + m, s * M + m_of[b]].astype(np.int64)
        gains = np.r_[self.face_reflection[k_of[a]], self.face_reflection[j_of[b]]]
        return BodyFurniturePaths(
            tx_positions_m=self.speaker_images_m[s_of, k_of].reshape(-1, 3), tx_speaker=s_of, tx_face=k_of,
            rx_positions_m=self.microphone_images_m[m_of, j_of].reshape(-1, 3), rx_microphone=m_of, rx_face=j_of,
            tx_lit=tx_lit, rx_lit=rx_lit, tx_normals=self.faces.normals[k_of].reshape(-1, 3),
            rx_normals=self.faces.normals[j_of].reshape(-1, 3), pairs=pairs.reshape(-1, 2), channels=channels,
            gains=gains,
        )
