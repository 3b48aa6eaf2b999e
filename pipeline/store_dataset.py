"""Reading a synthetic Zarr store for training: a PyTorch ``Dataset`` of frames.

    from pipeline.store_dataset import SyntheticStoreDataset
    data = SyntheticStoreDataset("data/synth.zarr", split="train", minors=False, activities=["sitting"])
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, num_workers=2)

Only frames of rooms flagged done are seen (a store being written, or one whose generation was
killed, is safe to read). Each worker process opens the store itself (Zarr handles are not shared
across ``fork``), so several DataLoader workers read in parallel. Works on any fsspec URL that zarr
opens (``file://``, ``s3://``, ...).

Damage is never read as data (``simulator.store_integrity``): opening lists the store's keys and
raises :class:`~simulator.store_integrity.StoreDamagedError` (a ``core.errors.DamagedDataError``)
when a done room lacks a chunk; reading a frame raises it when a chunk does not decode or holds
fill values (NaN / -1). The message names the store, array, room and frame, and the repair.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable

import numpy as np
import torch

from core.checks import check_whole
from core.errors import InputError
from simulator.store_format import FORMAT_NAME, READABLE_VERSIONS, SPLITS
from simulator.store_integrity import check_chunks_present, done_rooms, read_checked, read_room_arrays

# Arrays returned per frame and the dtype they are given.
_FIELDS = {
    "kernels": torch.float32, "kernel_scale": torch.float32, "pair_index": torch.int64,
    "speaker_pos": torch.float32, "mic_pos": torch.float32, "joints3d": torch.float32,
    "keypoints2d": torch.float32, "intrinsics": torch.float32, "cam_to_world": torch.float32,
    "room_id": torch.int64, "split": torch.int64, "height": torch.float32, "is_minor": torch.bool,
    "activity": torch.int64, "speed_of_sound": torch.float32, "age_years": torch.float32,
}


class StoreFormatError(InputError):
    """The store is not a dataset this reader understands."""


class SyntheticStoreDataset(torch.utils.data.Dataset):
    """Frames of a synthetic store, filtered, as dicts of tensors.

    Args:
        url: the store (folder or fsspec URL).
        split: 'train', 'val', 'test' or None for all.
        minors: True for minors only, False for adults only, None for both.
        activities: activity names to keep (None: all).
        rooms: room ids to keep (None: all).
    Each item: a dict with ``kernels`` (P, T) normalised (multiply by ``kernel_scale`` for physical
    units), ``pair_index`` (P, 2), ``speaker_pos`` (S, 3), ``mic_pos`` (M, 3), ``joints3d`` (15, 3),
    ``keypoints2d`` (15, 3), ``intrinsics`` (3, 3), ``cam_to_world`` (4, 4), scalars ``height``,
    ``is_minor``, ``activity``, ``room_id``, ``split``, ``speed_of_sound``, ``age_years`` and ``index``.
    """

    def __init__(self, url: str, split: str | None = "train", minors: bool | None = None,
                 activities: Iterable[str] | None = None, rooms: Iterable[int] | None = None,
                 cached_rooms: int = 8):
        import zarr

        cached_rooms = check_whole("cached_rooms", cached_rooms, minimum=1)   # before the store is opened
        self.url = str(url)
        try:
            root = zarr.open_group(self.url, mode="r")
        except (FileNotFoundError, zarr.errors.NodeNotFoundError):
            raise StoreFormatError(f"{self.url}: no Zarr store there; make one with `python -m simulator.generate`") from None
        if root.attrs.get("format") != FORMAT_NAME:
            raise StoreFormatError(f"{self.url}: not a {FORMAT_NAME} store (format={root.attrs.get('format')!r})")
        if root.attrs.get("format_version", 1) not in READABLE_VERSIONS:
            raise StoreFormatError(f"{self.url}: format version {root.attrs.get('format_version')!r}; this reader "
                                   f"reads versions {', '.join(map(str, READABLE_VERSIONS))}")
        missing = [name for name in _FIELDS if name not in root]
        if missing:
            raise StoreFormatError(f"{self.url}: arrays {missing} are missing; regenerate the store")
        self.attrs = dict(root.attrs)
        self._bundle = tuple(_FIELDS) + (("occluded",) if "occluded" in root else ())   # what a training frame reads
        done = done_rooms(root, self.url)
        check_chunks_present(root, self.url, done)   # one listing of the store's keys
        per_room = int(self.attrs["frames_per_room"])
        frames = (done[:, None] * per_room + np.arange(per_room)).ravel()
        keep = np.ones(len(frames), dtype=bool)

        def values(name):
            return read_checked(root, self.url, name, frames)

        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split={split!r}: choose one of {SPLITS} or None")
            keep &= values("split") == SPLITS.index(split)
        if minors is not None:
            keep &= values("is_minor") == bool(minors)
        if activities is not None:
            labels = list(self.attrs["activity_labels"])
            unknown = set(activities) - set(labels)
            if unknown:
                raise ValueError(f"activities {sorted(unknown)} unknown; the store has {labels}")
            codes = [labels.index(a) for a in activities]
            keep &= np.isin(values("activity"), codes)
        if rooms is not None:
            keep &= np.isin(values("room_id"), list(rooms))
        self.frames = frames[keep]
        self.frames_per_room = per_room
        self.cached_rooms = cached_rooms
        self._root = None
        self._arrays: dict = {}
        self._rooms: OrderedDict = OrderedDict()    # room -> {array name: RoomRows}

    def __len__(self) -> int:
        return len(self.frames)

    def _open(self):
        if self._root is None:  # opened lazily, in each DataLoader worker
            import zarr

            self._root = zarr.open_group(self.url, mode="r")
            self._arrays = {}
        return self._root

    def values(self, name: str, frames=None) -> np.ndarray:
        """Array ``name`` at ``frames`` (default: this dataset's frames), damage raised, not read.

        A single frame is served from the rows of its room, decoded once and kept for the room's other
        frames (the ``cached_rooms`` rooms used last): a chunk holds a whole room, so reading frame by
        frame would decode it once per frame.
        """
        if frames is None or np.ndim(frames) != 0:
            return read_checked(self._open(), self.url, name, self.frames if frames is None else frames, self._arrays)
        frame = int(frames)
        room = frame // self.frames_per_room
        arrays = self._rooms.get(room)
        if arrays is None:
            while len(self._rooms) >= self.cached_rooms:
                self._rooms.popitem(last=False)
            arrays = self._rooms[room] = {}
        else:
            self._rooms.move_to_end(room)
        if name not in arrays:
            # a frame reads every array of the bundle: fetched together on the room's first frame
            names = [n for n in self._bundle if n not in arrays] if name in self._bundle else [name]
            arrays.update(read_room_arrays(self._open(), self.url, names, room, frame, self._arrays))
        return arrays[name].row(frame)

    def __getitem__(self, i: int) -> dict:
        f = int(self.frames[i])
        item = {name: torch.as_tensor(np.asarray(self.values(name, f)).astype(
                    np.float32 if dtype.is_floating_point else (bool if dtype == torch.bool else np.int64)),
                    dtype=dtype)
                for name, dtype in _FIELDS.items()}
        item["index"] = torch.tensor(f)
        return item

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_root"] = None
        state["_arrays"] = {}
        state["_rooms"] = OrderedDict()
        return state


class RoomBlockSampler(torch.utils.data.Sampler):
    """A shuffled order of a store's frames in which each room's chunks are decoded once per epoch.

    Rooms are shuffled and cut into blocks of ``block_rooms`` rooms; the frames of each block are shuffled
    together and the blocks follow one another. A reader that keeps the last ``block_rooms`` rooms
    (:class:`SyntheticStoreDataset`'s ``cached_rooms``) then decodes every chunk once, where a uniform
    shuffle decodes a room's chunk for each of its frames. A batch mixes the frames of ``block_rooms``
    rooms rather than of the whole store; every frame is still seen once per epoch.

    With ``loader_workers`` > 1 DataLoader worker processes, each with its own reader, the order is made for
    them: a DataLoader hands batch k to worker k mod W, so block b is given to worker b mod W and the batches
    (of ``batch_size`` frames) of the W workers' current blocks are interleaved in that cycle. Each worker then
    decodes only its own blocks' rooms; in the plain order every worker would decode every room of every block
    (W times the work). Once the workers' shares run unequal, the last batches may reach another worker's reader
    (a few more decodes, never other frames).

    Args:
        frames: (N,) store frame index of each dataset item (``SyntheticStoreDataset.frames``).
        frames_per_room: the store's frames per room.
        block_rooms: rooms shuffled together (>= 1).
        seed: with the epoch (:meth:`set_epoch`), fixes the order.
        batch_size, loader_workers: the DataLoader's (only used with ``loader_workers`` > 1).
    """

    def __init__(self, frames, frames_per_room: int, block_rooms: int = 8, seed: int = 0, batch_size: int = 1,
                 loader_workers: int = 0):
        self.block_rooms = check_whole("block_rooms", block_rooms, minimum=1)
        self.batch_size = check_whole("batch_size", batch_size, minimum=1)
        self.loader_workers = check_whole("loader_workers", loader_workers, minimum=0)
        self.rooms = np.asarray(frames, dtype=np.int64) // check_whole("frames_per_room", frames_per_room, minimum=1)
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rooms)

    def _blocks(self) -> list[np.ndarray]:
        """Each block's items, shuffled; the blocks in their (shuffled) order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        rooms = rng.permutation(np.unique(self.rooms))
        return [rng.permutation(np.flatnonzero(np.isin(self.rooms, rooms[start:start + self.block_rooms])))
                for start in range(0, len(rooms), self.block_rooms)]

    def __iter__(self):
        blocks = self._blocks()
        workers = self.loader_workers
        if workers <= 1:
            for items in blocks:
                yield from items.tolist()
            return
        # each worker's items (its blocks, in order), cut into batches and dealt in the DataLoader's cycle
        shares = [np.concatenate(blocks[w::workers] or [np.zeros(0, np.int64)]) for w in range(workers)]
        batches = [[share[k:k + self.batch_size] for k in range(0, len(share), self.batch_size)] for share in shares]
        for k in range(max(len(b) for b in batches)):
            for share in batches:
                if k < len(share):
                    yield from share[k].tolist()
