"""Generate a synthetic dataset: rooms fanned out to Ray workers, written into one Zarr store.

    python -m simulator.generate --rooms 500
    python -m simulator.generate --verify data/synth.zarr     # list damaged rooms (exit 1 if any)
    python -m simulator.generate --repair data/synth.zarr     # regenerate exactly those rooms

runs on the machine's cores with a local Ray and writes ``data/synth.zarr``; with
``--address HOST:PORT`` it runs on an existing Ray cluster (``ray start --head`` on one machine,
``ray start --address HOST:PORT`` on the others; the store must then be reachable by every worker:
a shared folder or an fsspec URL such as ``s3://bucket/synth.zarr``). ``--workers 0`` simulates
the rooms one after another in this process, without Ray (the same arrays: see below).

Each room is one task: a room scene (size, materials, air, rig, camera) is drawn, its empty-room
response computed once, then ``--frames-per-room`` frames of ``--subjects-per-room`` people doing
random activities are recorded, deconvolved into pose kernels (``simulator.deconvolution``) and
seen by a 2D detector model (``simulator.detector``). The worker writes the room's chunks and, last,
the room's ``room_done`` flag (see ``simulator.store_format`` for the layout).

Your own rig: ``--rig-file FILE`` simulates the speakers, microphones and camera of FILE, a raw
capture's ``calibration.json`` (``docs/raw_capture_format.md``) or a PoseKernel environment's
``audio_sensor_loc.npy`` (co-located pairs; the default camera, the dataset's), instead of drawn rigs:
the rig is fixed in the camera frame and every room carries it with its camera (rooms where it does
not fit are drawn again), so the stored ``speaker_pos`` and ``mic_pos`` are the file's numbers. This is
how to pretrain for the PoseKernel dataset or for your own captures. The file is read and checked
before any work; the store records its content (not its path), so ``--verify`` / ``--repair`` need
no file and a store resumes only with the same rig.

Resumable and deterministic: room r draws everything from ``numpy.random.default_rng([seed, r])``,
so a killed or interrupted run started again with the same arguments computes only the rooms not
yet flagged done, and any number of workers gives the same arrays. Starting it with other
arguments on an existing store is refused.

Your files are safe: every argument is checked before any work and before anything is written.
The store is created only in a new or empty folder; an existing folder that is not a store of this
format, a file, or a store of another format or version is refused and left as it was.

Damage (``simulator.store_integrity``): ``--verify STORE`` reads every chunk of every done room and
lists the rooms with a chunk missing, a chunk that does not decode, or values never written.
``--repair STORE`` does the same, then regenerates exactly the damaged rooms from the generator
configuration recorded in the store (with ``--workers`` / ``--address`` as for a generation; the
other generation flags are refused, the store knows them) and verifies again. A repair that is
interrupted is finished by running it again.

Exit codes: 0 done (``--verify``: no damage; ``--repair``: none left); 1 ``--verify`` found damaged
rooms (they are listed on stdout) or ``--repair`` left some; 2 a bad argument, output or store,
refused before any work with one line naming it; 130 interrupted (Ctrl-C): the rooms finished are
kept, the same command resumes.


This module is the command line; the work is done by ``simulator.generation_config`` (the
configuration and its flags), ``simulator.room_generation`` (one room), ``simulator.generation_store``
(creating and opening the store), ``simulator.generation_run`` (the rooms in this process or on Ray,
and :func:`generate`) and ``simulator.generation_repair`` (verify / repair); their public names are
importable from here as before.
"""
from __future__ import annotations

import argparse
import json
import sys

from core.cli import run_command
from core.errors import EXIT_OK, EXIT_TARGET_MISSED
from simulator.generation_config import (  # noqa: F401 - re-exported: users import them from here
    DATA_FLAGS, MAX_FRAMES, MAX_IMAGE_ORDER, MAX_ROOMS, MAX_SEED, MAX_SUBJECTS_PER_ROOM, RIGS, GenerationConfig,
    GenerationError, room_split,
)
from simulator.generation_repair import _print_damage, recorded_config, repair, verify  # noqa: F401
from simulator.generation_run import (  # noqa: F401
    DEFAULT_OUT, check_ray_address, check_workers, generate, summarize,
)
from simulator.generation_store import (  # noqa: F401
    _done_or_unreadable, check_writable, inspect_output, open_or_create_store, open_store,
)
from simulator.room_generation import RoomGenerator, write_room  # noqa: F401

__all__ = ["DEFAULT_OUT", "GenerationConfig", "GenerationError", "RoomGenerator", "build_parser", "check_ray_address",
           "check_workers", "check_writable", "generate", "inspect_output", "main", "open_or_create_store",
           "open_store", "recorded_config", "repair", "room_split", "summarize", "verify", "write_room"]

# The flags that describe the data; --verify and --repair take them from the store instead.
_MAINTENANCE_FLAGS = {"verify", "repair", "workers", "address", "quiet"}
_UNSET = object()


def _add_data_flag(parser: argparse.ArgumentParser, flag, defaults: GenerationConfig) -> None:
    """One flag of :data:`DATA_FLAGS`, its default read from the default configuration."""
    if flag.negated or flag.key == "keep_recordings":
        parser.add_argument(flag.option, action="store_true", help=flag.help)
        return
    default = getattr(defaults, flag.key)
    options = {"default": list(default) if isinstance(default, tuple) else default, "help": flag.help}
    for name in ("type", "choices", "nargs", "metavar"):
        if getattr(flag, name) is not None:
            options[name] = getattr(flag, name)
    parser.add_argument(flag.option, **options)


def build_parser() -> argparse.ArgumentParser:
    """The command line: the data flags of :data:`DATA_FLAGS` with the run's own flags among them."""
    parser = argparse.ArgumentParser(prog="python -m simulator.generate", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = GenerationConfig()
    for flag in DATA_FLAGS:
        _add_data_flag(parser, flag, defaults)
        if flag.key == "subjects_per_room":
            parser.add_argument("--out", default=DEFAULT_OUT, help="Zarr store: a new or empty folder, an fsspec "
                                                                   "URL, or a store of the same arguments to resume")
        elif flag.key == "seed":
            parser.add_argument("--workers", type=int, default=None,
                                help="Ray workers (default: all CPUs of the cluster); 0: in this process, without Ray")
            parser.add_argument("--address", default=None,
                                help="HOST:PORT of an existing Ray cluster (default: local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    damage = parser.add_mutually_exclusive_group()
    damage.add_argument("--verify", metavar="STORE", default=None,
                        help="check every chunk of every done room of STORE and list the damaged rooms "
                             "(exit 0: none, 1: some)")
    damage.add_argument("--repair", metavar="STORE", default=None,
                        help="regenerate exactly the damaged rooms of STORE from its recorded configuration, "
                             "then verify (exit 0: none left)")
    return parser


def config_from_args(args: argparse.Namespace) -> GenerationConfig:
    """The configuration the parsed data flags describe."""
    values = {}
    for flag in DATA_FLAGS:
        value = getattr(args, flag.option[2:].replace("-", "_"))
        values[flag.key] = (not value) if flag.negated else tuple(value) if isinstance(value, list) else value
    return GenerationConfig(**values)


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The arguments, and the data flags given on the command line (not left at their defaults)."""
    data_dests = [a.dest for a in parser._actions if a.option_strings and a.dest not in _MAINTENANCE_FLAGS
                  and a.dest != "help"]
    # argparse fills in a default only where the namespace has no value yet: a sentinel shows what was given
    args = parser.parse_args(argv, argparse.Namespace(**{dest: _UNSET for dest in data_dests}))
    given = []
    for action in parser._actions:
        if action.dest in data_dests:
            if getattr(args, action.dest) is _UNSET:
                setattr(args, action.dest, action.default)
            else:
                given.append(action.option_strings[0])
    return args, given


def _interrupted_message(state: dict) -> str:
    """What Ctrl-C leaves: the rooms stored, and the command that goes on."""
    out = state.get("out")
    if out is None:
        return "nothing was written"
    try:
        import zarr

        root = zarr.open_group(out, mode="r")
        done, _ = _done_or_unreadable(root)
        stored = f"{int(done.sum())} of {int(root.attrs['rooms'])} rooms are stored in {out}"
    except Exception:  # noqa: BLE001 - interrupted before the store existed
        return f"no room was stored in {out} yet; run the same command again to start"
    if state.get("repair"):
        return f"{stored}; run the same --repair command again to finish the repair"
    return f"{stored}; run the same command again to resume (finished rooms are kept)"



def _run(parser: argparse.ArgumentParser, argv: list[str] | None, state: dict) -> int:
    args, given = _parse(parser, argv)
    store = args.verify or args.repair
    if store is not None:
        flag = "--verify" if args.verify else "--repair"
        if given:
            raise GenerationError(f"{given[0]}: not used with {flag}, which reads the generator configuration "
                                  f"recorded in the store; drop it")
        if args.verify:
            report = verify(store, progress=not args.quiet)
            print(f"{store}: {report['rooms_done']} of {report['rooms']} rooms done, "
                  + (f"{len(report['damaged_rooms'])} damaged: rooms {', '.join(map(str, report['damaged_rooms']))}"
                     if report["damage"] else "no damage found"))
            _print_damage(report)
            return EXIT_TARGET_MISSED if report["damage"] else EXIT_OK
        state.update(out=store, repair=True)
        report = repair(store, args.workers, args.address, progress=not args.quiet)
        repaired = report["repaired_rooms"]
        print(f"{store}: repaired rooms {', '.join(map(str, repaired))}" if repaired else
              f"{store}: no damage found, nothing to repair")
        if report["damage"]:
            print(f"{store}: still damaged after the repair: rooms {', '.join(map(str, report['damaged_rooms']))}")
            _print_damage(report)
            return EXIT_TARGET_MISSED
        return EXIT_OK
    config = config_from_args(args)
    state["out"] = args.out
    summary = generate(config, args.out, args.workers, args.address, progress=not args.quiet)
    print(json.dumps(summary, indent=2))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    state: dict = {}
    return run_command(lambda: _run(parser, argv, state), interrupted=lambda: _interrupted_message(state))


if __name__ == "__main__":
    sys.exit(main())
