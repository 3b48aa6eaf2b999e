"""Re-export: the store contract lives in :mod:`simulator.store_format`, beside its writer."""
from simulator.store_format import (  # noqa: F401
    FORMAT_NAME, FORMAT_VERSION, READABLE_VERSIONS, SPLITS, StoreShape, array_names, chunks_for, compressors,
    done_frames, fill_value, frame_arrays, room_arrays,
)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "READABLE_VERSIONS", "SPLITS", "StoreShape", "array_names",
           "chunks_for", "compressors", "done_frames", "fill_value", "frame_arrays", "room_arrays"]
