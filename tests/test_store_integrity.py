"""A damaged synthetic store is detected, named and repaired, never read as zeros.

The session's tiny store (``tiny_store`` in conftest: 2 rooms x 2 frames, image order 1, generated in
this process without Ray) is only read; each test damages a copy of it the way a disk or a copy does: a
chunk file deleted, a chunk file cut short, values that were never written. Then: the readers refuse it
with the store, array, room and frame named; ``--verify`` lists it (exit 1); ``--repair`` regenerates
exactly those rooms and the store equals the undamaged one, array for array.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from core.errors import DamagedDataError
from pipeline.store_dataset import SyntheticStoreDataset
from simulator.store_integrity import find_damage
from simulator.generate import GenerationConfig, open_or_create_store
from tests.cli_harness import assert_refused, call_main
from tests.helpers import TINY_STORE_CONFIG

FIX_WORDS = ("--verify", "--repair")


def copy_of(store: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.zarr"
    shutil.copytree(store, target)
    return target


def chunk_file(store: Path, array: str, room: int) -> Path:
    """The chunk file holding ``room`` of ``array`` (one room per chunk along the leading axis)."""
    a = zarr.open_group(store, mode="r")[array]
    return Path(store) / array / a.metadata.encode_chunk_key((room,) + (0,) * (a.ndim - 1))


def cut_short(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def arrays(store: Path) -> dict[str, np.ndarray]:
    root = zarr.open_group(store, mode="r")
    return {name: np.asarray(root[name][:]) for name in root.array_keys()}


# -- what a version 2 store looks like ------------------------------------------------------------------------
def test_a_new_store_marks_every_unwritten_place(tmp_path):
    out = tmp_path / "new.zarr"
    open_or_create_store(str(out), GenerationConfig(**TINY_STORE_CONFIG))
    root = zarr.open_group(out, mode="r")
    assert root.attrs["format_version"] == 2
    for name in root.array_keys():
        values = np.asarray(root[name][:])
        codecs = [type(c).__name__ for c in root[name].metadata.codecs]
        assert "Crc32cCodec" in codecs, (name, codecs)
        if values.dtype.kind == "f":
            assert np.isnan(values).all(), name
        elif values.dtype.kind == "i":
            assert (values == -1).all(), name
        else:
            assert values.dtype == bool and not values.any(), name
    assert len(SyntheticStoreDataset(out, split=None)) == 0      # nothing is done: nothing is seen
    assert find_damage(root)[1] == []


def test_every_chunk_of_a_done_room_is_written_even_when_it_equals_the_fill_value(tiny_store):
    root = zarr.open_group(tiny_store, mode="r")
    # the case zarr skips by default: a chunk equal to the fill value (False), e.g. a room of adults
    bool_chunks = {(name, room): not np.asarray(root[name][room * 2:room * 2 + 2] if root[name].shape[0] == 4
                                                else root[name][room]).any()
                   for name in ("is_minor", "occluded", "room_colocated") for room in range(2)}
    assert any(bool_chunks.values()), "the test store needs an all-False chunk; change TINY_STORE_CONFIG's seed"
    for name in root.array_keys():
        for room in range(2):
            assert chunk_file(tiny_store, name, room).is_file(), (name, room)
    rooms, damage = find_damage(root)
    assert list(rooms) == [0, 1] and damage == []
    data = SyntheticStoreDataset(tiny_store, split=None)
    np.testing.assert_array_equal(data[3]["joints3d"].numpy(), root["joints3d"][3])


# -- detected by the readers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("array", ["kernels", "joints3d", "is_minor", "split", "room_impulse_responses"])
def test_a_missing_chunk_is_refused_when_the_store_is_opened(tiny_store, tmp_path, array):
    store = copy_of(tiny_store, tmp_path)
    chunk_file(store, array, 1).unlink()
    with pytest.raises(DamagedDataError) as caught:
        SyntheticStoreDataset(store, split=None)
    message = str(caught.value)
    for word in (str(store), f"array {array}", "room 1", "frames 2-3", "is missing", *FIX_WORDS):
        assert word in message, (word, message)
    assert "\n" not in message


def test_the_network_reader_refuses_a_missing_chunk_too(tiny_store, tmp_path):
    from network.config import get_config
    from network.data import SynthFrames

    store = copy_of(tiny_store, tmp_path)
    chunk_file(store, "kernels", 0).unlink()
    with pytest.raises(DamagedDataError, match="array kernels, room 0"):
        SynthFrames(store, get_config("tiny"), split="train")


def test_a_chunk_cut_short_is_refused_when_its_frame_is_read(tiny_store, tmp_path):
    store = copy_of(tiny_store, tmp_path)
    cut_short(chunk_file(store, "joints3d", 1))
    data = SyntheticStoreDataset(store, split=None)          # nothing is missing: it opens
    assert len(data) == 4
    data[0], data[1]                                          # room 0 is intact
    with pytest.raises(DamagedDataError) as caught:
        data[2]
    message = str(caught.value)
    for word in (str(store), "array joints3d", "room 1", "frame 2", "cannot be decoded", *FIX_WORDS):
        assert word in message, (word, message)
    # through a DataLoader worker process it is still the same one-line error
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=1)
    with pytest.raises(DamagedDataError) as caught:
        next(iter(loader))
    assert "\n" not in str(caught.value) and "array joints3d, room 1" in str(caught.value)


def test_frames_read_through_the_room_cache_equal_the_store_in_any_order(tiny_store):
    """A frame is served from its room's decoded rows (one decode per room): the values are the store's,
    whatever the order, with one room cached or several."""
    from pipeline.store_dataset import RoomBlockSampler

    root = zarr.open_group(tiny_store, mode="r")
    for cached in (1, 8):
        data = SyntheticStoreDataset(tiny_store, split=None, cached_rooms=cached)
        for i in [3, 0, 2, 1, 3]:
            item = data[i]
            f = int(data.frames[i])
            np.testing.assert_array_equal(item["kernels"].numpy(), np.asarray(root["kernels"][f], np.float32))
            np.testing.assert_array_equal(item["joints3d"].numpy(), root["joints3d"][f])
            assert int(item["room_id"]) == int(root["room_id"][f])
        assert len(data._rooms) <= cached
    # the room-block order visits every frame once and keeps each block's rooms together
    order = list(RoomBlockSampler(np.arange(40) + 10, 5, block_rooms=2, seed=3))
    assert sorted(order) == list(range(40))
    rooms = (np.asarray(order) + 10) // 5
    blocks = [set(rooms[k:k + 10]) for k in range(0, 40, 10)]
    assert all(len(b) == 2 for b in blocks) and set().union(*blocks) == set(range(2, 10))
    assert order != sorted(order)
    sampler = RoomBlockSampler(np.arange(40), 5, block_rooms=2, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(sampler) == sorted(first)


def test_a_damaged_frame_is_refused_from_the_room_cache_too(tiny_store, tmp_path):
    """Fill values in one frame of a cached room: that frame is refused, its room-mate is served."""
    store = copy_of(tiny_store, tmp_path)
    root = zarr.open_group(store, mode="r+")
    root["joints3d"][1] = np.nan
    data = SyntheticStoreDataset(store, split=None)
    data[0]                                                   # room 0 decoded and cached
    with pytest.raises(DamagedDataError, match=r"array joints3d, room 0 \(frame 1\): holds NaN"):
        data[1]
    data[0]


def test_values_never_written_are_refused_in_a_done_room(tiny_store, tmp_path):
    store = copy_of(tiny_store, tmp_path)
    root = zarr.open_group(store, mode="r+")
    root["kernels"][1] = np.nan        # what a room flagged done too early would hold
    root["room_id"][3] = -1
    data = SyntheticStoreDataset(store, split=None)
    with pytest.raises(DamagedDataError, match=r"array kernels, room 0 \(frame 1\): holds NaN"):
        data[1]
    with pytest.raises(DamagedDataError, match=r"array room_id, room 1 \(frame 3\): holds -1"):
        SyntheticStoreDataset(store, split=None, rooms=[1])


def test_a_room_a_killed_run_left_half_written_is_not_damage(tiny_store, tmp_path):
    store = copy_of(tiny_store, tmp_path)
    zarr.open_group(store, mode="r+")["room_done"][1] = False    # killed before its done flag
    cut_short(chunk_file(store, "split", 1))                       # killed in the middle of a write
    chunk_file(store, "kernels", 1).unlink()                       # killed before this chunk
    data = SyntheticStoreDataset(store, split="train")
    assert data.frames.tolist() == [0, 1]
    assert find_damage(zarr.open_group(store, mode="r"))[1] == []


# -- --verify and --repair ------------------------------------------------------------------------------------
def test_verify_lists_the_damage_and_repair_restores_the_store_exactly(tiny_store, tmp_path, anny_model,
                                                                      monkeypatch):
    import simulator.generation_run as generation_run

    monkeypatch.setattr(generation_run, "_BODY_MODEL", anny_model)        # the session's body model, not a second one
    store = copy_of(tiny_store, tmp_path)
    chunk_file(store, "kernels", 0).unlink()
    cut_short(chunk_file(store, "joints3d", 1))
    verified = call_main("simulator.generate", ["--verify", str(store), "--quiet"])
    assert verified.code == 1, verified.stderr
    assert "2 damaged: rooms 0, 1" in verified.stdout
    assert "array kernels, room 0 (frames 0-1): chunk kernels/c/0/0/0 is missing" in verified.stdout
    assert "array joints3d, room 1 (frames 2-3): chunk joints3d/c/1/0/0 cannot be decoded" in verified.stdout
    repaired = call_main("simulator.generate", ["--repair", str(store), "--workers", "0", "--quiet"])
    assert repaired.code == 0, repaired.stderr
    assert "repaired rooms 0, 1" in repaired.stdout
    clean, fixed = arrays(tiny_store), arrays(store)
    assert set(clean) == set(fixed)
    for name in clean:
        np.testing.assert_array_equal(fixed[name], clean[name], err_msg=name)
    assert call_main("simulator.generate", ["--verify", str(store), "--quiet"]).code == 0


def test_repair_rewrites_only_the_damaged_rooms(tiny_store, tmp_path, anny_model, monkeypatch):
    import simulator.generation_run as generation_run

    monkeypatch.setattr(generation_run, "_BODY_MODEL", anny_model)
    store = copy_of(tiny_store, tmp_path)
    chunk_file(store, "height", 1).unlink()
    room0 = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file() and "/c/0" in p.as_posix()}
    assert call_main("simulator.generate", ["--repair", str(store), "--workers", "0", "--quiet"]).code == 0
    assert {p: p.stat().st_mtime_ns for p in room0} == room0
    np.testing.assert_array_equal(arrays(store)["height"], arrays(tiny_store)["height"])


# -- version 1 stores stay readable ---------------------------------------------------------------------------
def as_version_1(store: Path, target: Path) -> Path:
    """The same data as the version 1 writer stored it: fill value 0, chunks equal to it skipped, no checksums."""
    from zarr.codecs import BloscCodec

    source = zarr.open_group(store, mode="r")
    root = zarr.open_group(target, mode="w-", attributes=dict(source.attrs) | {"format_version": 1})
    for name in source.array_keys():
        a = source[name]
        copy = root.create_array(name, shape=a.shape, dtype=a.dtype, chunks=a.chunks, fill_value=0,
                                 compressors=[BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")])
        copy[:] = a[:]
    return target


def test_a_version_1_store_is_read_with_the_checks_it_allows(tiny_store, tmp_path):
    old = as_version_1(tiny_store, tmp_path / "v1.zarr")
    new_items = SyntheticStoreDataset(tiny_store, split=None)
    old_items = SyntheticStoreDataset(old, split=None)
    assert len(old_items) == 4
    for key in ("kernels", "joints3d", "is_minor", "activity"):
        np.testing.assert_array_equal(old_items[3][key].numpy(), new_items[3][key].numpy(), err_msg=key)
    assert call_main("simulator.generate", ["--verify", str(old), "--quiet"]).code == 0
    chunk_file(old, "kernels", 1).unlink()                  # no room's kernels are all zero: damage
    with pytest.raises(DamagedDataError, match="array kernels, room 1"):
        SyntheticStoreDataset(old, split=None)
    assert call_main("simulator.generate", ["--verify", str(old), "--quiet"]).code == 1


# -- the network commands -------------------------------------------------------------------------------------
FAST = ["--config", "tiny", "--batch-size", "4", "--workers", "0", "--no-progress"]


def test_train_and_evaluate_refuse_a_damaged_store_with_exit_2(tiny_store, tmp_path):
    missing = copy_of(tiny_store, tmp_path)
    chunk_file(missing, "kernels", 1).unlink()
    refused = call_main("network.train", ["--pretrain", "synth", "--synth", str(missing), "--epochs", "1",
                                          "--out", str(tmp_path / "run_missing")] + FAST)
    assert_refused(refused, str(missing), "array kernels", "room 1", *FIX_WORDS)

    cut = tmp_path / "cut.zarr"
    shutil.copytree(tiny_store, cut)
    cut_short(chunk_file(cut, "joints3d", 0))                  # found when the first batch is read
    refused = call_main("network.train", ["--pretrain", "synth", "--synth", str(cut), "--epochs", "1",
                                          "--out", str(tmp_path / "run_cut")] + FAST)
    assert_refused(refused, str(cut), "array joints3d", "room 0", "cannot be decoded", *FIX_WORDS)

    trained = call_main("network.train", ["--pretrain", "synth", "--synth", str(tiny_store), "--epochs", "1",
                                          "--out", str(tmp_path / "run")] + FAST)
    assert trained.code == 0, trained.stderr[-2000:]
    checkpoint = tmp_path / "run" / "pretrain" / "best.pt"
    refused = call_main("network.evaluate", ["--checkpoint", str(checkpoint), "--data", str(missing), "--split", "all",
                                             "--out", str(tmp_path / "eval"), "--no-progress"])
    assert_refused(refused, str(missing), "array kernels", "room 1", *FIX_WORDS)


class _WhoReads(torch.utils.data.Dataset):
    """Item i -> (i, the DataLoader worker that read it)."""

    def __len__(self):
        return 80

    def __getitem__(self, i):
        return torch.tensor([i, torch.utils.data.get_worker_info().id])


def test_room_blocks_give_each_loader_worker_rooms_of_its_own():
    """With W loader workers, batch k goes to worker k mod W: the order deals whole blocks to workers, so each
    room is read (decoded) by one worker only, and every frame is still read once."""
    from pipeline.store_dataset import RoomBlockSampler

    frames_per_room, batch = 5, 5                 # 16 rooms, blocks of 2 rooms = 2 batches each
    sampler = RoomBlockSampler(np.arange(80), frames_per_room, block_rooms=2, seed=4, batch_size=batch,
                               loader_workers=2)
    assert sorted(sampler) == list(range(80))
    loader = torch.utils.data.DataLoader(_WhoReads(), batch_size=batch, sampler=sampler, num_workers=2)
    read = torch.cat(list(loader)).numpy()
    assert sorted(read[:, 0]) == list(range(80))
    readers = {}
    for item, worker in read:
        readers.setdefault(item // frames_per_room, set()).add(int(worker))
    assert len(readers) == 16 and all(len(w) == 1 for w in readers.values())
    assert {next(iter(w)) for w in readers.values()} == {0, 1}
    # without the workers' cycle, the same sampler order has every block's rooms read by both workers
    plain = RoomBlockSampler(np.arange(80), frames_per_room, block_rooms=2, seed=4)
    read = torch.cat(list(torch.utils.data.DataLoader(_WhoReads(), batch_size=batch, sampler=plain,
                                                      num_workers=2))).numpy()
    shared = {}
    for item, worker in read:
        shared.setdefault(item // frames_per_room, set()).add(int(worker))
    assert sum(len(w) == 2 for w in shared.values()) >= 8


@pytest.mark.parametrize("kwargs, field", [({"cached_rooms": 0}, "cached_rooms"), ({"cached_rooms": 2.5}, "cached_rooms")])
def test_a_room_cache_of_no_room_is_refused_before_the_store_is_read(kwargs, field):
    from core.errors import InputError

    with pytest.raises(InputError, match=f"^{field} = .*whole number"):
        SyntheticStoreDataset("/no/such/store.zarr", split=None, **kwargs)


@pytest.mark.parametrize("field, value", [("block_rooms", 0), ("batch_size", 0), ("loader_workers", -1),
                                          ("frames_per_room", 0)])
def test_room_blocks_refuse_impossible_numbers(field, value):
    from core.errors import InputError
    from pipeline.store_dataset import RoomBlockSampler

    kwargs = {"frames": np.arange(10), "frames_per_room": 5, field: value}
    with pytest.raises(InputError, match=f"^{field} = {value}"):
        RoomBlockSampler(**kwargs)
