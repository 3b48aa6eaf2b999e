"""The project's error classes and exit codes.

Every error a command reports on purpose derives from :class:`PoseKernelError`; its message is
one line that names the field (or file) at fault and says how to fix it. The exit codes are the
same for every command:

====  =====================================================================================
code  meaning
====  =====================================================================================
0     done
1     the work ran but missed its target: a validation case failed, training diverged,
      ``--verify`` found damaged rooms
2     bad input or environment: an argument, a file, a damaged store / checkpoint / capture,
      an output that cannot be written; refused before any work
130   interrupted (Ctrl-C); what was finished is kept and the same command resumes
====  =====================================================================================
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_TARGET_MISSED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class PoseKernelError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = EXIT_BAD_INPUT


class InputError(PoseKernelError, ValueError):
    """An argument, a file or the environment is unusable; the message names it and the fix (exit 2)."""


class DamagedDataError(InputError):
    """A store, checkpoint or capture exists but is damaged or unreadable (exit 2).

    Raised instead of reading damage as zeros; the message names the file (and, for stores, the
    array, room and frame) and how to repair it.
    """


class TargetMissedError(PoseKernelError, RuntimeError):
    """The work ran but did not reach its goal (exit 1): training diverged, damage was found."""

    exit_code = EXIT_TARGET_MISSED
