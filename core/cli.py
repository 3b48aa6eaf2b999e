"""One wrapper for every command's ``main``: errors become one line and the documented exit code.

    def main(argv=None) -> int:
        return run_command(lambda: _run(build_parser().parse_args(argv)), interrupted=...)

:class:`core.errors.PoseKernelError` prints ``error: <message>`` and returns its ``exit_code``;
Ctrl-C prints what was kept and how to resume and returns 130. Anything else is a bug and keeps
its traceback.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

from core.errors import EXIT_INTERRUPTED, PoseKernelError

__all__ = ["run_command"]


def run_command(work: Callable[[], int | None], interrupted: str | Callable[[], str] = "interrupted") -> int:
    """Run ``work()``; return its exit code (None means 0), or the code of the error it raised."""
    try:
        code = work()
    except PoseKernelError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        message = interrupted() if callable(interrupted) else interrupted
        print(f"interrupted: {message}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if code is None else int(code)
