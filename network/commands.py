"""What the network's commands share: the usage error, claiming a run folder, one-line worker errors.

``python -m network.train`` and ``python -m network.evaluate`` both claim their ``--out`` folder before any
work and both read data through DataLoader workers. Public names: ``__all__``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from core.errors import InputError, PoseKernelError
from core.outputs import OUTPUT_MARKER, claim_output_dir, write_json

__all__ = ["UsageError", "claim_run_dir", "one_line_worker_errors"]


class UsageError(InputError):
    """Bad command-line arguments or missing data (exit code 2)."""


def claim_run_dir(path, flag: str, writer: str, made_before: Callable[[Path], bool]) -> Path:
    """``core.outputs.claim_output_dir``, also accepting a folder this command made before folders got
    their marker (``made_before(path)`` recognises its files); such a folder gets the marker now."""
    path = Path(path).expanduser()
    if path.is_dir() and not (path / OUTPUT_MARKER).exists() and made_before(path):
        try:
            write_json(path / OUTPUT_MARKER, {"created": "before output markers", "adopted": time.strftime(
                "%Y-%m-%dT%H:%M:%S")}, writer)
        except OSError as err:
            raise InputError(f"{flag} {path}: cannot write there ({err.strerror or err}); "
                             f"choose a writable folder") from None
    return claim_output_dir(path, flag, writer)


def one_line_worker_errors(work: Callable[[], int | None]) -> Callable[[], int | None]:
    """``work`` with a project error raised in a DataLoader worker given back its own message.

    torch re-raises a worker's exception in the main process as the same class with the worker's whole
    traceback as its message; the user should see the one line the error was made with.
    """
    def wrapped():
        try:
            return work()
        except PoseKernelError as err:
            text = str(err)
            if "Original Traceback" not in text:
                raise
            kind = type(err)
            name = f"{kind.__module__}.{kind.__qualname__}: "
            at = text.rfind(name)
            message = text[at + len(name):].strip() if at >= 0 else text.strip().splitlines()[-1]
            raise kind(message) from None
    return wrapped

