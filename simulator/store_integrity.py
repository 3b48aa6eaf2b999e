"""Damage in a synthetic store, found and named instead of read as zeros.

A room of a store is visible once its ``room_done`` flag is set (``simulator.store_format``). This
module checks that a done room really holds what the flag promises:

* :func:`check_chunks_present` - every array has every chunk of every done room. One listing of
  the store's keys, no chunk read: readers run it when they open a store.
* :func:`read_checked` - reads frames of an array; a chunk that fails to decode (truncated, a
  checksum mismatch, unreadable) or a fill value where a done room has data (NaN / -1, format
  version 2) raises :class:`StoreDamagedError`. Readers use it for every value they read.
* :func:`find_damage` - both, for every chunk of every done room, listing all the damage instead of
  stopping at the first: ``python -m simulator.generate --verify STORE``.

Every error names the store, the array, the room and the frame(s), and the fix: ``--verify`` lists
the damage and ``--repair`` regenerates exactly the damaged rooms (each room is drawn from its own
seed, so the repaired store equals an undamaged one).

Version 1 stores (fill value 0, chunks equal to it never written, no checksums) are read too, with
what can be checked there: a float array's missing chunk is damage (no room's kernels, positions or
scales are all exactly zero), a missing integer or bool chunk may be a room of zeros, and unwritten
values cannot be told from zeros.
"""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace

import numpy as np

from core.errors import DamagedDataError
from simulator.store_format import array_names

__all__ = ["REPAIR_HINT", "Damage", "StoreDamagedError", "check_chunks_present", "describe_damage", "done_flags",
           "done_rooms", "find_damage", "read_checked", "read_room_arrays", "read_room_rows", "RoomRows"]

REPAIR_HINT = ("list the damage with `python -m simulator.generate --verify {url}` and regenerate the damaged "
               "rooms with `python -m simulator.generate --repair {url}`")


class StoreDamagedError(DamagedDataError):
    """A synthetic store's done room lacks a chunk, has one that does not decode, or holds fill values."""

    def __init__(self, message: str, damage: list | None = None):
        self.damage = list(damage or [])   # the Damage items named (the first one in the message)
        # A DataLoader worker's exception is raised again in the main process as
        # type(err)("Caught ... in DataLoader worker process N.\nOriginal Traceback ...: <message>"):
        # keep the one line the user needs (the traceback's last line, without the class name).
        if message.startswith("Caught ") and "Original Traceback" in message:
            last = message.rstrip().splitlines()[-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)


@dataclass(frozen=True)
class Damage:
    """One damaged place: ``array``'s data for ``room``, frames ``first_frame``..``last_frame``."""

    array: str
    room: int
    first_frame: int
    last_frame: int
    problem: str

    def describe(self) -> str:
        frames = (f"frame {self.first_frame}" if self.first_frame == self.last_frame
                  else f"frames {self.first_frame}-{self.last_frame}")
        return f"array {self.array}, room {self.room} ({frames}): {self.problem}"


def describe_damage(url: str, damage: list[Damage]) -> str:
    """One line: the first damage, how much more there is, and the fix."""
    first = damage[0]
    more = ""
    if len(damage) > 1:
        rooms = sorted({d.room for d in damage})
        more = f" (and {len(damage) - 1} more, in rooms {_short_list(rooms)})"
    return f"{url}: the store is damaged: {first.describe()}{more}; {REPAIR_HINT.format(url=url)}"


# -- the store's layout ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    frames_per_room: int
    version: int
    frame_names: frozenset
    room_names: frozenset

    def extent(self, name: str, room: int) -> tuple[int, int]:
        """[lo, hi) of ``room`` along ``name``'s leading axis."""
        if name in self.room_names:
            return room, room + 1
        return room * self.frames_per_room, (room + 1) * self.frames_per_room

    def frames_of(self, room: int) -> tuple[int, int]:
        return room * self.frames_per_room, (room + 1) * self.frames_per_room - 1


def _layout(root) -> _Layout:
    frame_names, room_names = array_names(keep_recordings=True)
    return _Layout(int(root.attrs["frames_per_room"]), int(root.attrs.get("format_version", 1)),
                   frozenset(frame_names), frozenset(room_names))


def _checked_arrays(root, layout: _Layout) -> list[str]:
    """The format's arrays present in the store (arrays a user added are not the format's to judge)."""
    known = (layout.frame_names | layout.room_names) - {"room_done"}
    return sorted(name for name in root.array_keys() if name in known)


def _lead_chunks(array, lo: int, hi: int) -> range:
    """Chunk indices along the leading axis that hold rows [lo, hi)."""
    lead = array.chunks[0]
    return range(lo // lead, (hi - 1) // lead + 1)


def _keys_at(array, i: int) -> list[str]:
    """Store keys of the chunks of leading chunk index ``i`` (every chunk of the trailing axes)."""
    trailing = [range(-(-size // chunk)) for size, chunk in zip(array.shape[1:], array.chunks[1:])]
    return [f"{array.path}/{array.metadata.encode_chunk_key((i, *rest))}" for rest in itertools.product(*trailing)]


def _chunk_keys(array, lo: int, hi: int) -> list[str]:
    """Store keys of the chunks holding rows [lo, hi) of ``array``."""
    return [key for i in _lead_chunks(array, lo, hi) for key in _keys_at(array, i)]


def _list_keys(root) -> set[str]:
    from zarr.core.sync import collect_aiterator

    return set(collect_aiterator(root.store.list()))


def _unwritten(values: np.ndarray, version: int) -> np.ndarray:
    """Per leading row: does it hold a fill value (version 2: NaN in floats, -1 in integers)?"""
    values = np.asarray(values)
    if version < 2 or values.dtype.kind not in "fi":
        return np.zeros(values.shape[:1], bool)
    bad = np.isnan(values) if values.dtype.kind == "f" else values == -1
    if bad.ndim and len(bad) == 0:      # no frames asked for (an empty split read into memory)
        return np.zeros(0, bool)
    return bad.reshape(len(bad), -1).any(axis=1) if bad.ndim else np.atleast_1d(bad)


def _fill_text(dtype) -> str:
    return "NaN" if np.dtype(dtype).kind == "f" else "-1"


def _error_text(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = text.split(". ", 1)[0]   # the first sentence ("Stored and computed checksum do not match")
    text = text if len(text) <= 100 else text[:97] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# -- checks ------------------------------------------------------------------------------------
def done_flags(root) -> tuple[np.ndarray, list[int], list[str]]:
    """(done per room, rooms whose flag chunk does not decode, their error texts)."""
    flags = root["room_done"]
    try:
        return np.asarray(flags[:], bool), [], []
    except Exception:  # noqa: BLE001 - any failure to decode is damage; find the room below
        pass
    done = np.zeros(flags.shape[0], bool)
    bad, texts = [], []
    for room in range(flags.shape[0]):
        try:
            done[room] = bool(flags[room])
        except Exception as err:  # noqa: BLE001
            bad.append(room)
            texts.append(_error_text(err))
    return done, bad, texts


def done_rooms(root, url: str) -> np.ndarray:
    """Indices of the rooms flagged done; a ``room_done`` chunk that does not decode raises."""
    layout = _layout(root)
    done, bad, texts = done_flags(root)
    if bad:
        damage = [Damage("room_done", room, *layout.frames_of(room), f"its done flag cannot be decoded ({text})")
                  for room, text in zip(bad, texts)]
        raise StoreDamagedError(describe_damage(url, damage), damage)
    return np.flatnonzero(done)


def _missing(root, layout: _Layout, rooms, keys: set[str]) -> list[Damage]:
    damage = []
    for name in _checked_arrays(root, layout):
        array = root[name]
        if layout.version < 2 and array.dtype.kind != "f":
            continue  # version 1 skipped chunks equal to the fill value 0: absence proves nothing here
        for room in rooms:
            for key in _chunk_keys(array, *layout.extent(name, int(room))):
                if key not in keys:
                    damage.append(Damage(name, int(room), *layout.frames_of(int(room)), f"chunk {key} is missing"))
    return damage


def check_chunks_present(root, url: str, rooms) -> None:
    """Raise :class:`StoreDamagedError` when a chunk of one of ``rooms`` is missing from any array."""
    layout = _layout(root)
    damage = _missing(root, layout, rooms, _list_keys(root))
    if damage:
        raise StoreDamagedError(describe_damage(url, damage), damage)


def _room_read_damage(array, name: str, room: int, layout: _Layout) -> list[Damage]:
    """Read one room of ``array``: the chunks that fail to decode, else the frames holding fill values."""
    lo, hi = layout.extent(name, room)
    try:
        values = array[lo:hi]
    except Exception as room_err:  # noqa: BLE001 - find which chunk(s) below
        damage = []
        lead = array.chunks[0]
        for i in _lead_chunks(array, lo, hi):
            try:
                array[max(i * lead, lo):min((i + 1) * lead, hi)]
            except Exception as err:  # noqa: BLE001
                keys = _keys_at(array, i)
                what = f"chunk {keys[0]}" if len(keys) == 1 else f"a chunk of {', '.join(keys)}"
                damage.append(Damage(name, room, *layout.frames_of(room),
                                     f"{what} cannot be decoded ({_error_text(err)})"))
        return damage or [Damage(name, room, *layout.frames_of(room), f"cannot be read ({_error_text(room_err)})")]
    rows = np.flatnonzero(_unwritten(values, layout.version))
    if not len(rows):
        return []
    first, last = layout.frames_of(room)
    if name in layout.frame_names:
        first, last = lo + int(rows[0]), lo + int(rows[-1])
    return [Damage(name, room, first, last, f"holds {_fill_text(array.dtype)}, the value of places never written, "
                                             "although the room is flagged done")]


def read_checked(root, url: str, name: str, frames, arrays: dict | None = None) -> np.ndarray:
    """Values of per-frame array ``name`` at ``frames`` (an int, or an index array of done frames).

    Raises :class:`StoreDamagedError` when a chunk does not decode or a value is a fill value.
    ``arrays``: an optional cache of opened arrays (name -> zarr array).
    """
    layout = _layout(root)
    array = _opened(root, name, arrays)
    single = np.ndim(frames) == 0
    try:
        values = array[int(frames)] if single else np.asarray(array[:])[np.asarray(frames, dtype=int)]
    except Exception:  # noqa: BLE001 - a damaged room of these frames, or only a room not flagged done
        try:
            values = _read_by_room(array, name, url, np.atleast_1d(np.asarray(frames, dtype=int)), layout)
        except StoreDamagedError as err:
            if not single:
                raise
            # name the frame that was asked for
            damage = [replace(d, first_frame=int(frames), last_frame=int(frames)) for d in err.damage]
            raise StoreDamagedError(describe_damage(url, damage), damage) from None
        values = values[0] if single else values
    bad = _unwritten(values[None] if single else values, layout.version)
    if bad.any():
        frame = int(frames) if single else int(np.asarray(frames)[np.flatnonzero(bad)[0]])
        _raise_unwritten(url, name, frame, array.dtype, layout.frames_per_room)
    return values


@dataclass(frozen=True)
class RoomRows:
    """One done room's decoded rows of one array, kept by a reader for the room's frames (:func:`read_room_rows`).

    ``unwritten`` flags the rows holding fill values, found once when the room is decoded; :meth:`row` raises
    the damage of the frame asked for, so each frame's damage is still reported when (and only when) it is read.
    """

    url: str
    name: str
    rows: np.ndarray            # (frames_per_room, ...) for a per-frame array, (1, ...) for a per-room one
    unwritten: np.ndarray       # (len(rows),) bool
    first_frame: int            # the room's first frame
    per_frame: bool
    frames_per_room: int

    def row(self, frame: int) -> np.ndarray:
        """The row of ``frame`` (a frame of this room), or :class:`StoreDamagedError` when it holds fill values."""
        i = int(frame) - self.first_frame if self.per_frame else 0
        if self.unwritten[i]:
            _raise_unwritten(self.url, self.name, int(frame), self.rows.dtype, self.frames_per_room)
        return self.rows[i]


def read_room_rows(root, url: str, name: str, room: int, frame: int, arrays: dict | None = None) -> RoomRows:
    """The decoded rows of one done ``room`` of array ``name`` (its frames, or its one row of a per-room
    array): a reader's cache for the room's frames (:class:`RoomRows`).

    One chunk read serves every frame of the room: a single-frame read decodes the room's whole chunk
    anyway (chunks hold one room), so readers that cache the rows decode it once, not once per frame.
    Raises :class:`StoreDamagedError` naming ``frame`` when the chunk does not decode; fill values are
    raised by :meth:`RoomRows.row`, for the frame read.
    """
    layout = _layout(root)
    array = _opened(root, name, arrays)
    lo, hi = layout.extent(name, int(room))
    try:
        rows = np.asarray(array[lo:hi])
    except Exception:  # noqa: BLE001 - name the chunk that fails and the frame that was asked for
        damage = [replace(d, first_frame=int(frame), last_frame=int(frame))
                  for d in _room_read_damage(array, name, int(room), layout)]
        raise StoreDamagedError(describe_damage(url, damage), damage) from None
    return _room_rows(url, name, rows, int(room), layout)


def read_room_arrays(root, url: str, names, room: int, frame: int, arrays: dict | None = None
                     ) -> dict[str, RoomRows]:
    """:func:`read_room_rows` of several arrays of one room, {name: RoomRows}: their chunks fetched and decoded
    concurrently, in one call into zarr's event loop (a frame reads some sixteen arrays, and each call costs about a
    millisecond however small its chunk). When any of them fails, they are read one by one, which names the damage."""
    from zarr.core.sync import sync as zarr_sync

    layout = _layout(root)
    names = list(names)
    opened = [_opened(root, name, arrays) for name in names]
    extents = [layout.extent(name, int(room)) for name in names]

    async def fetch():
        return await asyncio.gather(*[array.async_array.getitem(slice(lo, hi))
                                      for array, (lo, hi) in zip(opened, extents)])

    try:
        decoded = zarr_sync(fetch())
    except Exception:  # noqa: BLE001 - damage (or anything else): the one-by-one reads say which
        return {name: read_room_rows(root, url, name, room, frame, arrays) for name in names}
    return {name: _room_rows(url, name, np.asarray(rows), int(room), layout) for name, rows in zip(names, decoded)}


def _room_rows(url: str, name: str, rows: np.ndarray, room: int, layout: _Layout) -> RoomRows:
    return RoomRows(url, name, rows, _unwritten(rows, layout.version), room * layout.frames_per_room,
                    name in layout.frame_names, layout.frames_per_room)


def _opened(root, name: str, arrays: dict | None):
    """Array ``name`` of ``root``, from (and kept in) the reader's cache ``arrays`` of opened arrays when given."""
    array = arrays.get(name) if arrays is not None else None
    if array is None:
        array = root[name]
        if arrays is not None:
            arrays[name] = array
    return array


def _raise_unwritten(url: str, name: str, frame: int, dtype, frames_per_room: int) -> None:
    """Frame ``frame`` of array ``name`` holds fill values although its room is flagged done: that damage, raised."""
    damage = [Damage(name, frame // frames_per_room, frame, frame,
                     f"holds {_fill_text(dtype)}, the value of places never written, although the room is flagged done")]
    raise StoreDamagedError(describe_damage(url, damage), damage)


def _read_by_room(array, name: str, url: str, frames: np.ndarray, layout: _Layout) -> np.ndarray:
    """``array[frames]`` read room by room: a room of a killed run (not done, maybe a truncated chunk)
    is never read, and the first room that fails is named."""
    per_room = layout.frames_per_room
    parts = []
    for room in np.unique(frames // per_room):
        lo, hi = layout.extent(name, int(room))
        try:
            rows = np.asarray(array[lo:hi])
        except Exception:  # noqa: BLE001
            damage = _room_read_damage(array, name, int(room), layout)
            if not damage:   # it read the second time: not damage we can name
                raise
            raise StoreDamagedError(describe_damage(url, damage), damage) from None
        parts.append(rows[frames[frames // per_room == room] - lo])
    order = np.argsort(np.argsort(frames // per_room, kind="stable"), kind="stable")
    return np.concatenate(parts)[order]


def find_damage(root, progress: bool = False) -> tuple[np.ndarray, list[Damage]]:
    """Every damaged place of every done room: (done rooms, damage found).

    Lists the store's keys once (missing chunks), then reads every array's data of every done room
    (chunks that fail to decode; version 2: fill values where data should be). Reads the whole store.
    """
    from core.progress import progress as show_progress

    layout = _layout(root)
    done, bad_flags, texts = done_flags(root)
    damage = [Damage("room_done", room, *layout.frames_of(room), f"its done flag cannot be decoded ({text})")
              for room, text in zip(bad_flags, texts)]
    rooms = np.flatnonzero(done)
    missing = _missing(root, layout, rooms, _list_keys(root))
    damage += missing
    already = {(d.array, d.room) for d in missing}
    arrays = {name: root[name] for name in _checked_arrays(root, layout)}
    for room in show_progress(rooms, unit="room", desc="verifying", enabled=progress):
        for name, array in arrays.items():
            if (name, int(room)) not in already:
                damage += _room_read_damage(array, name, int(room), layout)
    damage.sort(key=lambda d: (d.room, d.array))
    return rooms, damage


def _short_list(values: list[int], limit: int = 10) -> str:
    text = ", ".join(map(str, values[:limit]))
    return text + (f", ... ({len(values)} in all)" if len(values) > limit else "")
