"""The bottom layer every package imports: named errors, exit codes, input checks, safe output.

Nothing here knows about bodies, rooms, sound or networks. It holds the promises every command
makes about users' input and files (README, "What the tools promise about your data"):

* :mod:`core.errors` - the project's error classes and the documented exit codes;
* :mod:`core.checks` - one check per kind of value (whole numbers, finite numbers in a range,
  choices), each raising :class:`~core.errors.InputError` with the field and the fix named;
* :mod:`core.outputs` - output files and folders: refused before any work when they cannot be
  written or hold something the command did not create; written atomically (never a 0-byte or
  half-written file), with a full disk reported as such;
* :mod:`core.cli` - one wrapper that turns those errors into one line and the exit code.

See ``__all__`` for the public names.
"""
from core.checks import check_choice, check_finite_array, check_number, check_whole
from core.cli import run_command
from core.errors import (
    EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_TARGET_MISSED, DamagedDataError, InputError,
    PoseKernelError, TargetMissedError,
)
from core.outputs import (
    OUTPUT_MARKER, atomic_write, claim_output_dir, claim_output_file, owned_by, png_metadata, write_json,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TARGET_MISSED",
    "OUTPUT_MARKER",
    "DamagedDataError",
    "InputError",
    "PoseKernelError",
    "TargetMissedError",
    "atomic_write",
    "check_choice",
    "check_finite_array",
    "check_number",
    "check_whole",
    "claim_output_dir",
    "claim_output_file",
    "owned_by",
    "png_metadata",
    "run_command",
    "write_json",
]
