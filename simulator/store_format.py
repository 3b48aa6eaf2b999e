"""The synthetic dataset's Zarr store: names, shapes, dtypes, chunks (the design page's contract).

One store per dataset, readable with plain ``zarr`` and no project code::

    import zarr
    root = zarr.open_group("data/synth.zarr", mode="r")     # or any fsspec URL zarr supports
    done = root["room_done"][:]                              # rooms completely written
    frames = np.flatnonzero(np.repeat(done, root.attrs["frames_per_room"]))
    kernels = root["kernels"][frames[0]] * root["kernel_scale"][frames[0]]   # (P, T) physical units
    labels = root.attrs["activity_labels"]; activity = labels[root["activity"][frames[0]]]

Per-frame arrays share the leading axis F = rooms x frames_per_room, room r owning frames
[r * frames_per_room, (r + 1) * frames_per_room): each array is chunked by room, so one worker
writes one room's chunks and nobody else touches them. Per-room arrays (leading axis R) hold what
is stored once per room (the empty room's impulse responses, the room's size and air).

A room becomes visible only when ``room_done[r]`` turns true, which its worker writes last: a
reader that honours ``room_done`` never sees a half-written room, and a killed run that is
started again redoes exactly the rooms whose flag is still false.

Positions are in the camera frame (OpenCV: x right, y down, z forward, metres), as in the real
PoseKernel dataset; ``cam_to_world`` maps them back to the room frame (z up).

Kernels are stored normalised (``simulator.deconvolution.normalize_kernels``) in float16 by
default, with the per-frame scale in ``kernel_scale`` (float32): kernels x kernel_scale gives
the deconvolved pose kernels in the simulator's units.

Damage must show (format version 2). Zarr reads a chunk that is not there as the array's fill
value, so version 1 (fill value 0) read a deleted chunk as zero kernels or joints at the camera's
origin. Version 2 stores therefore

* fill float arrays with NaN and integer arrays with -1 (every valid integer is >= 0), so a
  place never written cannot pass for data (:func:`fill_value`);
* write every chunk, even one equal to the fill value (zarr's ``write_empty_chunks``; an
  all-False ``is_minor`` chunk is otherwise skipped), so a missing chunk of a done room is damage;
* end every chunk with a CRC32C checksum (the standard zarr v3 ``crc32c`` codec), so a truncated
  or altered chunk fails to decode instead of giving garbage (:func:`compressors`).

``simulator.store_integrity`` finds such damage; ``python -m simulator.generate --verify STORE``
lists it and ``--repair STORE`` regenerates the damaged rooms. Version 1 stores stay readable.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

FORMAT_NAME = "posekernel-synthetic"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)   # version 1: fill value 0, chunks equal to it skipped, no checksums

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class StoreShape:
    """Sizes that fix every array's shape."""

    rooms: int
    frames_per_room: int
    n_speakers: int
    n_microphones: int
    kernel_samples: int
    period_samples: int

    @property
    def frames(self) -> int:
        return self.rooms * self.frames_per_room

    @property
    def pairs(self) -> int:
        return self.n_speakers * self.n_microphones


def frame_arrays(shape: StoreShape, kernel_dtype: str, keep_recordings: bool) -> dict[str, tuple[tuple, str]]:
    """Per-frame arrays: name -> (shape, dtype). Leading axis F."""
    F, P, S, M = shape.frames, shape.pairs, shape.n_speakers, shape.n_microphones
    arrays = {
        "kernels": ((F, P, shape.kernel_samples), kernel_dtype),
        "kernel_scale": ((F,), "float32"),
        "pair_index": ((F, P, 2), "int16"),
        "speaker_pos": ((F, S, 3), "float32"),
        "mic_pos": ((F, M, 3), "float32"),
        "joints3d": ((F, 15, 3), "float32"),
        "keypoints2d": ((F, 15, 3), "float32"),
        "intrinsics": ((F, 3, 3), "float32"),
        "cam_to_world": ((F, 4, 4), "float32"),
        "room_id": ((F,), "int32"),
        "split": ((F,), "int8"),
        "height": ((F,), "float32"),
        "is_minor": ((F,), "bool"),
        "activity": ((F,), "int8"),
        "age_years": ((F,), "float32"),
        "speed_of_sound": ((F,), "float32"),
        "occluded": ((F, 15), "bool"),
    }
    if keep_recordings:
        arrays["recordings"] = ((F, M, shape.period_samples), "float32")
        arrays["empty_recordings"] = ((F, M, shape.period_samples), "float32")
        arrays["pose_kernels_true"] = ((F, P, shape.kernel_samples), "float32")
    return arrays


def room_arrays(shape: StoreShape) -> dict[str, tuple[tuple, str]]:
    """Per-room arrays: name -> (shape, dtype). Leading axis R."""
    R, S, M = shape.rooms, shape.n_speakers, shape.n_microphones
    return {
        "room_done": ((R,), "bool"),
        "room_impulse_responses": ((R, S, M, shape.period_samples), "float16"),
        "room_impulse_scale": ((R,), "float32"),
        "room_dimensions_m": ((R, 3), "float32"),
        "room_temperature_c": ((R,), "float32"),
        "room_relative_humidity_pct": ((R,), "float32"),
        "room_colocated": ((R,), "bool"),
        "room_split": ((R,), "int8"),
    }


def fill_value(dtype: str):
    """What unwritten places of a version 2 array read as: NaN (floats), -1 (integers), False (bool)."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        return float("nan")
    if kind == "i":
        return -1
    return False


def compressors() -> list:
    """Codecs after the bytes of every version 2 chunk: Blosc/zstd, then a CRC32C checksum."""
    from zarr.codecs import BloscCodec, Crc32cCodec

    return [BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"), Crc32cCodec()]


@functools.lru_cache(maxsize=None)
def array_names(keep_recordings: bool = True) -> tuple[frozenset[str], frozenset[str]]:
    """(per-frame array names, per-room array names) of the format."""
    shape = StoreShape(1, 1, 1, 1, 1, 1)
    return frozenset(frame_arrays(shape, "float16", keep_recordings)), frozenset(room_arrays(shape))


def chunks_for(name: str, array_shape: tuple, frames_per_room: int, per_room: bool) -> tuple:
    """One room per chunk along the leading axis; whole trailing axes."""
    lead = 1 if per_room else frames_per_room
    return (lead,) + tuple(array_shape[1:])


def done_frames(root) -> np.ndarray:
    """Indices of the frames of completely written rooms."""
    done = np.asarray(root["room_done"][:], dtype=bool)
    per_room = int(root.attrs["frames_per_room"])
    return np.flatnonzero(np.repeat(done, per_room))
