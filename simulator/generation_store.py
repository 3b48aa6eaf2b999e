"""The synthetic store's creation and opening: what is at ``--out``, refused unless new, empty or the same dataset.

A store is created only where nothing is (a new path or an empty folder) and never opened for
overwriting; an existing store is resumed only when it was made with the same configuration. Its
layout is :mod:`simulator.store_format`'s.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bodies import ACTIVITIES, JOINT_NAMES
from simulator.generation_config import GenerationConfig, GenerationError, recorded_identity
from simulator.store_format import (
    FORMAT_NAME, FORMAT_VERSION, READABLE_VERSIONS, SPLITS, StoreShape, chunks_for, compressors, fill_value,
    frame_arrays, room_arrays,
)

__all__ = ["check_writable", "inspect_output", "open_or_create_store", "open_store"]


def _store_shape(config: GenerationConfig) -> StoreShape:
    period = config.simulation_config().chirp_plan.n_samples
    rig = config.room_sampler_config()
    return StoreShape(config.rooms, config.frames_per_room, rig.n_speakers, rig.n_microphones, config.kernel_samples,
                      period)


def _is_remote(out: str) -> bool:
    return "://" in out and not out.startswith("file://")


def writing_options(out: str) -> dict:
    """Keyword arguments of ``zarr.open_group`` to write ``out``: a file:// URL's fsspec filesystem makes no
    folders of its own (a new store's zarr.json, a chunk's folders), so it is asked to."""
    return {"storage_options": {"auto_mkdir": True}} if out.startswith("file://") else {}


def _local_path(out: str) -> Path:
    return Path(out.removeprefix("file://")).expanduser()


_ZARR_MARKERS = {"zarr.json", ".zgroup", ".zarray", ".zattrs"}


def inspect_output(out: str, flag: str = "--out") -> str:
    """What is at ``out``: 'new' (nothing), 'empty' (an empty folder) or 'store' (a Zarr node).

    Refuses (GenerationError naming ``flag``) a file, and a folder that holds anything but a Zarr
    store: nothing there is touched.
    """
    if _is_remote(out):
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(out)
            if not fs.exists(path):
                return "new"
            if fs.isfile(path):
                raise GenerationError(f"{flag} {out}: is a file, not a store; give a new or empty folder")
            names = {entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False)}
        except GenerationError:
            raise
        except Exception as err:  # noqa: BLE001 - fsspec back ends raise their own kinds
            raise GenerationError(f"{flag} {out}: cannot be read ({type(err).__name__}: {err}); check the URL and "
                                  f"its credentials") from None
    else:
        path = _local_path(out)
        if not path.exists() and not path.is_symlink():
            return "new"
        if not path.is_dir():
            raise GenerationError(f"{flag} {out}: is a file, not a store; give a new or empty folder (nothing was "
                                  f"changed)")
        try:
            names = {entry.name for entry in path.iterdir()}
        except OSError as err:
            raise GenerationError(f"{flag} {out}: cannot be read ({err.strerror}); choose a folder you can "
                                  f"read and write") from None
    if not names:
        return "empty"
    if names & _ZARR_MARKERS:
        return "store"
    shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
    raise GenerationError(f"{flag} {out}: exists and holds files that are not a Zarr store ({shown}); nothing was "
                          f"changed: give a new or empty folder")


def check_writable(out: str, flag: str = "--out") -> None:
    """Refuse an output that cannot be written, before any work; creates nothing that stays.

    The nearest existing folder on the way to ``out`` gets a probe file, removed at once; the
    folders below it are made only when the store is created.
    """
    if _is_remote(out):
        return  # remote stores: zarr / fsspec report their own errors when the store is created
    path = _local_path(out)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise GenerationError(f"{flag} {out}: cannot write there ({existing} is a file, not a folder); choose "
                              f"another path")
    probe = existing / f".write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise GenerationError(f"{flag} {out}: cannot write there ({err.strerror or err}); choose a writable "
                              f"folder") from None


def open_store(url: str, flag: str, mode: str = "r"):
    """An existing store of this format (any readable version), or GenerationError naming ``flag``."""
    import zarr

    if inspect_output(url, flag) != "store":
        raise GenerationError(f"{flag} {url}: no store there; give the folder (or URL) of a store that "
                              f"`python -m simulator.generate` wrote")
    try:
        root = zarr.open_group(url, mode=mode)
        attrs = dict(root.attrs)
    except Exception as err:  # noqa: BLE001 - a Zarr array, or metadata that does not parse
        raise GenerationError(f"{flag} {url}: is not a readable Zarr group ({type(err).__name__}: {err}); "
                              f"choose another path") from None
    if attrs.get("format") != FORMAT_NAME:
        raise GenerationError(f"{flag} {url}: is a Zarr store but not a {FORMAT_NAME} dataset (nothing was "
                              f"changed); choose another path")
    if attrs.get("format_version") not in READABLE_VERSIONS:
        raise GenerationError(f"{flag} {url}: was written by format version {attrs.get('format_version')}, this "
                              f"program reads versions {', '.join(map(str, READABLE_VERSIONS))}; use the program "
                              f"that wrote it")
    return root


def _create_arrays(root, config: GenerationConfig) -> None:
    """Create the format's arrays the store lacks (all of them for a new store).

    NaN / -1 fill values and written empty chunks make damage visible (``simulator.store_format``).
    """
    shape = _store_shape(config)
    wanted = [(name, spec, False) for name, spec in
              frame_arrays(shape, config.kernel_dtype, config.keep_recordings).items()]
    wanted += [(name, spec, True) for name, spec in room_arrays(shape).items()]
    for name, (array_shape, dtype), per_room in wanted:
        if name in root:
            continue
        root.create_array(name, shape=array_shape, dtype=dtype,
                          chunks=chunks_for(name, array_shape, config.frames_per_room, per_room),
                          compressors=compressors(), fill_value=fill_value(dtype),
                          config={"write_empty_chunks": True})


def _store_attrs(config: GenerationConfig) -> dict:
    plan = config.simulation_config().chirp_plan
    plan_fields = plan.to_dict()
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sample_rate_hz": plan.sample_rate_hz,
        "speed_of_sound": "per frame, array speed_of_sound (m/s), from each room's air temperature",
        "joint_names": list(JOINT_NAMES),
        "activity_labels": list(ACTIVITIES),
        "split_labels": list(SPLITS),
        "frames_per_room": config.frames_per_room,
        "rooms": config.rooms,
        "kernel_samples": config.kernel_samples,
        # the stored text names the public import path, which still works (the code is in simulator)
        "kernel_normalization": "kernels = pose kernels / kernel_scale (pipeline.deconvolution.normalize_kernels)",
        "fill_values": "NaN (float arrays) and -1 (integer arrays) where nothing was written: only rooms flagged in "
                       "room_done hold data",
        # the format's summary of the plan (format version 2): three of its fields and the sub-bands
        "chirp_plan": {key: plan_fields[key] for key in ("band_hz", "n_speakers", "duration_s")}
                      | {"speaker_bands_hz": plan.speaker_bands_hz().tolist()},
        "frame": "camera (OpenCV: x right, y down, z forward), metres; cam_to_world maps to the room frame (z up)",
        "image_size_px": [int(v) for v in config.room_sampler_config().image_size_px],
        "seed": config.seed,
        "generator_config": config.identity(),
    }


def _done_or_unreadable(root) -> tuple[np.ndarray, list[int]]:
    from simulator.store_integrity import done_flags

    done, unreadable, _ = done_flags(root)
    return done, unreadable


def _check_same_empty_room(root, config: GenerationConfig, out: str) -> None:
    """Refuse to resume a realistic store whose rooms averaged another number of empty-room periods (stores before
    ``NoiseModel.empty_room_periods`` record none: one period), so that one store never mixes the two."""
    noise, rooms = config.simulation.noise, root.get("room_realism")
    first = next(iter(rooms.group_keys()), None) if rooms is not None else None
    if noise is None or first is None:
        return
    recorded = int(dict(rooms[first].attrs).get("noise", {}).get("empty_room_periods", 1))   # every room shares it
    if recorded != noise.empty_room_periods:
        raise GenerationError(
            f"--out {out}: its rooms' empty room is the mean of {recorded} period(s) and this version records "
            f"{noise.empty_room_periods} (NoiseModel.empty_room_periods); write a new store (another --out) "
            f"rather than mix the two")


def open_or_create_store(out: str, config: GenerationConfig):
    """Open the store for writing, creating it with every array; refuse anything else at ``out``.

    A store is created only where nothing is (a new path or an empty folder) and never opened for
    overwriting; an existing store is resumed only when it was made with the same configuration.
    Returns (root group, indices of rooms still to do).
    """
    import zarr

    kind = inspect_output(out, "--out")
    if kind == "store":
        attrs = dict(open_store(out, "--out").attrs)
        if attrs.get("format_version") != FORMAT_VERSION:
            raise GenerationError(
                f"--out {out}: was written by format version {attrs.get('format_version')}, this is version "
                f"{FORMAT_VERSION}; write a new store (another --out); the old one stays readable")
        if recorded_identity(attrs.get("generator_config")) != config.identity():
            theirs, ours = recorded_identity(attrs.get("generator_config")), config.identity()
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise GenerationError(
                f"--out {out}: holds a dataset made with other arguments ({', '.join(diff)} differ: store "
                f"{ {k: theirs.get(k) for k in diff} }); rerun with the same arguments to resume, or pass "
                f"another --out")
        check_writable(out)
        root = zarr.open_group(out, mode="r+", **writing_options(out))
        _check_same_empty_room(root, config, out)
        _create_arrays(root, config)   # a creation interrupted between two arrays is finished here
        done, unreadable = _done_or_unreadable(root)
        done[unreadable] = False      # a done flag that does not decode: redo the room
        return root, np.flatnonzero(~done)

    check_writable(out)
    try:
        # "w-" fails if anything is there by now; "w" would delete it
        root = zarr.open_group(out, mode="w-", attributes=_store_attrs(config), **writing_options(out))
    except FileExistsError:
        raise GenerationError(f"--out {out}: something appeared there while the store was being created; nothing "
                              f"was changed: give a new or empty folder") from None
    _create_arrays(root, config)
    return root, np.arange(config.rooms)


