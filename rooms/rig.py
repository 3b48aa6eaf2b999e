"""Transducer rigs: where the speakers and the microphones are.

Every microphone hears every speaker, so a rig of S speakers and M microphones gives
S x M pairs (``TransducerRig.pairs``). The PoseKernel dataset used a *co-located* rig:
each speaker has its microphone at the same point (``colocated_rig``); a *separated*
rig puts them at different places (``separated_rig``).

Note for simulation: pyroomacoustics divides by the source-microphone distance, so a
co-located pair (distance 0) gives a NaN RIR there. The direct path of such a pair is
the speaker's own output, which the empty-room subtraction removes anyway; drop it (or
simulate the microphone a centimetre off the speaker) rather than moving the rig.

:func:`sample_transducer_positions` places transducers the way people set up speakers
at home or in an office: on walls (a few centimetres off the wall), on shelves or on
tables, at 0.7-2.2 m, spread around the space the person occupies.

A :class:`CameraRig` is a rig fixed to the camera instead: speakers and microphones given in the
camera frame (a user's own rig, read from a rig file by :mod:`rooms.rig_file`);
``CameraRig.placed(camera)`` puts it into a room together with that camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import Camera
from .errors import RoomGeometryError, RoomInputError
from .shapes import Room
from .validation import validate_inside

#: Where transducers may be mounted.
MOUNTS = ("wall", "shelf", "table")


@dataclass(frozen=True, eq=False)
class TransducerRig:
    """Speakers and microphones, room frame, metres.

    Attributes:
        speaker_positions_m: (S, 3).
        microphone_positions_m: (M, 3).
        colocated: True when microphone i sits at speaker i (S == M, same positions).
        speaker_mounts: optional label per speaker ("wall", "shelf", "table", ...).
        microphone_mounts: optional label per microphone.
    """

    speaker_positions_m: np.ndarray
    microphone_positions_m: np.ndarray
    colocated: bool = False
    speaker_mounts: tuple[str, ...] | None = None
    microphone_mounts: tuple[str, ...] | None = None

    def __post_init__(self):
        for name in ("speaker_positions_m", "microphone_positions_m"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.ndim != 2 or value.shape[1] != 3 or len(value) == 0 or not np.all(np.isfinite(value)):
                raise RoomInputError(f"{name} has shape {value.shape}; give a finite (N >= 1, 3) array in metres.")
            object.__setattr__(self, name, value)
        if self.colocated and (
            self.speaker_positions_m.shape != self.microphone_positions_m.shape
            or not np.allclose(self.speaker_positions_m, self.microphone_positions_m)
        ):
            raise RoomInputError(
                "colocated=True requires microphone_positions_m == speaker_positions_m (one microphone at each "
                "speaker); use colocated_rig(positions) or set colocated=False."
            )
        for name, count in (("speaker_mounts", self.n_speakers), ("microphone_mounts", self.n_microphones)):
            labels = getattr(self, name)
            if labels is not None:
                labels = tuple(labels)
                if len(labels) != count:
                    raise RoomInputError(f"{name} has {len(labels)} labels for {count} transducers; give one each.")
                object.__setattr__(self, name, labels)

    @property
    def n_speakers(self) -> int:
        return len(self.speaker_positions_m)

    @property
    def n_microphones(self) -> int:
        return len(self.microphone_positions_m)

    @property
    def n_pairs(self) -> int:
        return self.n_speakers * self.n_microphones

    def pairs(self) -> np.ndarray:
        """(S * M, 2) int array of (speaker, microphone) indices, speaker-major:
        (0, 0), (0, 1), ..., (0, M-1), (1, 0), ..."""
        speakers, mics = np.meshgrid(np.arange(self.n_speakers), np.arange(self.n_microphones), indexing="ij")
        return np.stack([speakers.ravel(), mics.ravel()], axis=1).astype(np.int64)

    def colocated_pairs(self) -> np.ndarray:
        """(S, 2) the pairs (i, i) of a co-located rig: each speaker with its own microphone."""
        if not self.colocated:
            raise RoomInputError("colocated_pairs() needs a co-located rig; use pairs() for a separated rig.")
        index = np.arange(self.n_speakers, dtype=np.int64)
        return np.stack([index, index], axis=1)

    def pair_distances_m(self) -> np.ndarray:
        """(S * M,) speaker-to-microphone distance of each pair, in ``pairs()`` order."""
        p = self.pairs()
        return np.linalg.norm(self.speaker_positions_m[p[:, 0]] - self.microphone_positions_m[p[:, 1]], axis=1)

    def validate_in(self, room: Room, margin_m: float = 0.0) -> None:
        """Raise :class:`RoomGeometryError` if a transducer is outside the room or inside furniture."""
        validate_inside(room, self.speaker_positions_m, "speaker_positions_m", margin_m)
        validate_inside(room, self.microphone_positions_m, "microphone_positions_m", margin_m)

    def in_camera_frame(self, world_to_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(speakers (S, 3), microphones (M, 3)) in a camera frame given its (4, 4) world_to_cam."""
        transform = np.asarray(world_to_cam, dtype=float)
        apply = lambda p: p @ transform[:3, :3].T + transform[:3, 3]  # noqa: E731
        return apply(self.speaker_positions_m), apply(self.microphone_positions_m)


@dataclass(frozen=True)
class CameraRig:
    """Speakers and microphones fixed to the camera: positions in the camera frame (OpenCV: x right,
    y down, z forward), metres.

    A user's rig (``rooms.rig_file``) is known only relative to the camera; :meth:`placed` puts it in
    a room with a camera there. The positions are held as tuples of floats exactly as given (so the
    rig compares, hashes and is written to JSON unchanged).

    Attributes:
        speaker_positions_m: (S, 3) camera frame.
        microphone_positions_m: (M, 3) camera frame.
    """

    speaker_positions_m: tuple[tuple[float, float, float], ...]
    microphone_positions_m: tuple[tuple[float, float, float], ...]

    def __post_init__(self):
        for name in ("speaker_positions_m", "microphone_positions_m"):
            try:
                value = np.asarray(getattr(self, name), dtype=float)
            except (TypeError, ValueError):
                raise RoomInputError(f"{name}: give a finite (N >= 1, 3) array in metres, camera frame.") from None
            if value.ndim != 2 or value.shape[1] != 3 or len(value) == 0 or not np.all(np.isfinite(value)):
                raise RoomInputError(f"{name} has shape {value.shape}; give a finite (N >= 1, 3) array in metres, "
                                     f"camera frame.")
            object.__setattr__(self, name, tuple(tuple(row) for row in value.tolist()))

    @property
    def n_speakers(self) -> int:
        return len(self.speaker_positions_m)

    @property
    def n_microphones(self) -> int:
        return len(self.microphone_positions_m)

    @property
    def colocated(self) -> bool:
        """True when microphone i is at speaker i (the same numbers): the PoseKernel dataset's rig."""
        return self.speaker_positions_m == self.microphone_positions_m

    def positions_m(self) -> np.ndarray:
        """(S + M, 3) every transducer, speakers first, camera frame."""
        return np.array(self.speaker_positions_m + self.microphone_positions_m, dtype=float)

    def placed(self, camera: Camera) -> TransducerRig:
        """The rig in the room frame of ``camera`` (its ``cam_to_world``)."""
        speakers = camera.camera_to_world(np.array(self.speaker_positions_m, dtype=float))
        if self.colocated:
            return colocated_rig(speakers)
        return separated_rig(speakers, camera.camera_to_world(np.array(self.microphone_positions_m, dtype=float)))


def colocated_rig(positions_m, mounts=None) -> TransducerRig:
    """A rig with one speaker and one microphone at each of the (N, 3) ``positions_m``."""
    positions = np.asarray(positions_m, dtype=float)
    return TransducerRig(positions, positions.copy(), True, mounts, mounts)


def separated_rig(speaker_positions_m, microphone_positions_m, speaker_mounts=None, microphone_mounts=None) -> TransducerRig:
    """A rig whose speakers (S, 3) and microphones (M, 3) are at different places."""
    return TransducerRig(speaker_positions_m, microphone_positions_m, False, speaker_mounts, microphone_mounts)


# --------------------------------------------------------------------------------------
# placement
# --------------------------------------------------------------------------------------


def _wall_candidate(room: Room, rng: np.random.Generator, height_range_m, wall_offset_m):
    walls = [s for s in room.surfaces if abs(s.normal[2]) < 0.1]
    if not walls:
        return None
    areas = np.array([s.area_m2 for s in walls])
    surface = walls[rng.choice(len(walls), p=areas / areas.sum())]
    tri_areas = 0.5 * np.linalg.norm(
        np.cross(surface.triangles_m[:, 1] - surface.triangles_m[:, 0], surface.triangles_m[:, 2] - surface.triangles_m[:, 0]), axis=1
    )
    tri = surface.triangles_m[rng.choice(len(tri_areas), p=tri_areas / tri_areas.sum())]
    a, b = rng.random(2)
    if a + b > 1:
        a, b = 1 - a, 1 - b
    point = tri[0] + a * (tri[1] - tri[0]) + b * (tri[2] - tri[0])
    point[2] = room.bounds_m[0, 2] + rng.uniform(*height_range_m)
    return point - wall_offset_m * surface.normal


def _top_candidate(item, rng: np.random.Generator, lift_m: float):
    box = max(item.boxes, key=lambda b: b.z_range_m[1])
    half = np.maximum(box.size_m[:2] / 2 - 0.05, 0.0)
    local = np.array([rng.uniform(-half[0], half[0]), rng.uniform(-half[1], half[1]), 0.0])
    point = box.center_m + box.rotation @ local
    point[2] = box.z_range_m[1] + lift_m
    return point


def sample_transducer_positions(
    room: Room,
    rng: np.random.Generator,
    n: int,
    around_xy_m=None,
    height_range_m=(0.7, 2.2),
    wall_offset_m: float = 0.05,
    mounts=MOUNTS,
    min_separation_m: float = 0.3,
    n_candidates: int = 64,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Place ``n`` transducers on walls, shelves or tables, spread around ``around_xy_m``.

    Candidates are drawn on the chosen mounts (a wall point ``wall_offset_m`` in front of
    the wall; the top of a shelf or table plus 8 cm, the acoustic centre of a small
    speaker standing there), at heights inside ``height_range_m`` and inside the room.
    Then ``n`` of them are picked greedily so that their directions seen from
    ``around_xy_m`` are as evenly spread as possible, at least ``min_separation_m`` apart.

    Args:
        room: the room (with its furniture).
        rng: the random generator (the only source of randomness).
        n: number of positions.
        around_xy_m: (2,) floor point the transducers surround (default: floor centre).
        height_range_m: allowed heights above the floor.
        wall_offset_m: distance in front of the wall.
        mounts: which of "wall", "shelf", "table" to use.
        min_separation_m: minimum distance between two chosen positions.
        n_candidates: candidates drawn before picking.

    Returns:
        positions (n, 3), mount labels (n,).
    """
    if n < 1:
        raise RoomInputError(f"n = {n}; ask for at least one transducer.")
    unknown = [m for m in mounts if m not in MOUNTS]
    if unknown or not mounts:
        raise RoomInputError(f"mounts = {mounts!r}; choose among {MOUNTS}.")
    low, high = height_range_m
    if not (0.0 < low < high):
        raise RoomInputError(f"height_range_m = {height_range_m!r}; give (low, high) with 0 < low < high, metres.")
    if around_xy_m is None:
        around_xy_m = room.floor_polygon_m.mean(axis=0)
    center = np.asarray(around_xy_m, dtype=float).reshape(2)
    available = _available_mounts(room, mounts, low, high)
    candidates, labels = _draw_candidates(room, rng, available, n, height_range_m, wall_offset_m, n_candidates)
    chosen = _spread_choice(candidates, center, n, min_separation_m)
    return candidates[chosen], tuple(labels[i] for i in chosen)


#: Height of a small speaker's acoustic centre above the shelf or table it stands on (m).
_TOP_LIFT_M = 0.08


def _available_mounts(room: Room, mounts, low: float, high: float) -> list:
    """(mount, furniture item or None for a wall) for every usable mount."""
    available = []
    for mount in mounts:
        if mount == "wall":
            available.append(("wall", None))
        else:
            for item in room.furniture:
                if item.kind == mount and low <= item.top_height_m + _TOP_LIFT_M <= high:
                    available.append((mount, item))
    if not available:
        raise RoomInputError(f"no mount of type {mounts} is available in this room; allow 'wall'.")
    return available


def _draw_candidates(room: Room, rng: np.random.Generator, available, n: int, height_range_m, wall_offset_m: float,
                     n_candidates: int) -> tuple[np.ndarray, list]:
    """Up to ``n_candidates`` positions (K, 3) in random order on random mounts, and their labels."""
    low, high = height_range_m
    candidates, labels = [], []
    for _ in range(50 * n_candidates):
        if len(candidates) >= n_candidates:
            break
        mount, item = available[rng.integers(len(available))]
        point = _wall_candidate(room, rng, height_range_m, wall_offset_m) if item is None else _top_candidate(item, rng, _TOP_LIFT_M)
        if point is None or not (low <= point[2] - room.bounds_m[0, 2] <= high):
            continue
        if not room.contains(point)[0] or room.signed_distance_to_shell_m(point)[0] < 0.5 * wall_offset_m:
            continue
        candidates.append(point)
        labels.append(mount)
    if len(candidates) < n:
        raise RoomGeometryError(f"could place only {len(candidates)} of {n} transducers in this room; allow more mounts.")
    return np.array(candidates), labels


def _spread_choice(candidates: np.ndarray, center: np.ndarray, n: int, min_separation_m: float) -> list[int]:
    """Indices of ``n`` candidates (K, 3) picked greedily to spread their directions seen from
    ``center`` (2,), at least ``min_separation_m`` apart; the first candidate starts."""
    azimuth = np.arctan2(candidates[:, 1] - center[1], candidates[:, 0] - center[0])
    chosen = [0]  # candidates are already in random order
    while len(chosen) < n:
        gap = np.abs(np.angle(np.exp(1j * (azimuth[:, None] - azimuth[chosen][None, :]))))
        spacing = np.linalg.norm(candidates[:, None, :] - candidates[chosen][None, :, :], axis=2)
        score = np.where(spacing.min(axis=1) >= min_separation_m, gap.min(axis=1), -1.0)
        score[chosen] = -2.0
        best = int(np.argmax(score))
        if score[best] < 0:
            raise RoomGeometryError(
                f"could not find {n} transducer positions {min_separation_m} m apart; lower min_separation_m."
            )
        chosen.append(best)
    return chosen


def sample_rig(
    room: Room,
    rng: np.random.Generator,
    n_speakers: int = 4,
    n_microphones: int = 4,
    colocated: bool = True,
    around_xy_m=None,
    **placement,
) -> TransducerRig:
    """A rig placed by :func:`sample_transducer_positions` and validated inside ``room``.

    Co-located: ``n_speakers`` points, each with a speaker and a microphone
    (``n_microphones`` must equal ``n_speakers``). Separated: ``n_speakers +
    n_microphones`` points; sorted by direction around ``around_xy_m``, speakers and
    microphones alternate so that each kind surrounds the person.
    """
    if colocated:
        if n_microphones != n_speakers:
            raise RoomInputError(
                f"a co-located rig has one microphone per speaker; n_microphones = {n_microphones} "
                f"!= n_speakers = {n_speakers}. Make them equal or use colocated=False."
            )
        positions, mounts = sample_transducer_positions(room, rng, n_speakers, around_xy_m, **placement)
        rig = colocated_rig(positions, mounts)
    else:
        total = n_speakers + n_microphones
        positions, mounts = sample_transducer_positions(room, rng, total, around_xy_m, **placement)
        center = room.floor_polygon_m.mean(axis=0) if around_xy_m is None else np.asarray(around_xy_m, dtype=float)
        order = np.argsort(np.arctan2(positions[:, 1] - center[1], positions[:, 0] - center[0]))
        speaker_slots = np.round(np.linspace(0, total, n_speakers, endpoint=False)).astype(int)
        is_speaker = np.zeros(total, dtype=bool)
        is_speaker[order[speaker_slots]] = True
        rig = separated_rig(
            positions[is_speaker],
            positions[~is_speaker],
            tuple(str(m) for m, s in zip(mounts, is_speaker) if s),
            tuple(str(m) for m, s in zip(mounts, is_speaker) if not s),
        )
    rig.validate_in(room)
    return rig
