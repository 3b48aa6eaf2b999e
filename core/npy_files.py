""".npy arrays read safely: the header checked first (cheap, and a copy cut short is named as such), nothing
unpickled, the values finite float64.

Each reader raises the caller's own error classes, so a capture reader and a rig-file reader report in their
own terms: ``format_error`` for a file that is missing, of another dtype or holds NaN/inf, ``damaged_error``
for one that is not a .npy array, is shorter than its header announces, or cannot be read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["npy_header", "read_npy"]

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def npy_header(path: Path, what: str, fix: str, format_error: type[Exception],
               damaged_error: type[Exception]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file from its header alone, checked against the file's size on disk."""
    if not path.is_file():
        raise format_error(f"{path}: missing ({what}); {fix}")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in _HEADER_READERS:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
            shape, _, dtype = _HEADER_READERS[version](handle)
            data_offset = handle.tell()
    except (OSError, ValueError, EOFError) as err:
        raise damaged_error(f"{path}: not a readable .npy array ({err}); {fix}") from None
    if dtype.hasobject or dtype.names is not None or dtype.kind not in "fiu":
        raise format_error(f"{path}: holds {dtype} values; expected numbers ({what}); {fix}")
    needed = data_offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < needed:
        raise damaged_error(f"{path}: truncated -- {size} bytes on disk but its header announces {needed} "
                            f"(shape {tuple(shape)}, {dtype}); the copy was cut short: {fix}")
    return tuple(int(n) for n in shape), dtype


def read_npy(path: Path, what: str, fix: str, format_error: type[Exception],
             damaged_error: type[Exception]) -> np.ndarray:
    """A .npy file whose header :func:`npy_header` accepted, as finite float64."""
    try:
        array = np.load(path, allow_pickle=False).astype(np.float64)
    except (OSError, ValueError, EOFError) as err:
        raise damaged_error(f"{path}: cannot be read although its header is intact ({err}); {fix}") from None
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise format_error(f"{path}: contains NaN/inf ({what}; first at index {tuple(int(i) for i in bad)}); {fix}")
    return array
