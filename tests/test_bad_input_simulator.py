"""Bad input to bodies.preview, simulator.scene and simulator.validate, one row each: every row must be
refused with exit code 2 and one line naming the flag, before any work (no body model, no room, no
simulation), leaving every file on disk as it was and creating nothing (no 0-byte file).

Each command starts from an argument list that works (the control tests show it reaches the work) and
each row changes one thing. The work itself is replaced by a stub that raises :class:`WorkStarted`: a
row that got past the checks fails loudly instead of building Anny for a minute, which also keeps the
rows fast. The workspace is built once for the module and snapshotted around every row.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import trimesh

from bodies import Subject
from bodies import preview
from bodies.model import PosedBody
from core.outputs import png_metadata
from simulator import scene, validate
from tests.cli_harness import assert_refused, call_main, snapshot


class WorkStarted(Exception):
    """Raised by the stubbed work: the command accepted its arguments and began."""


def _work_started(*args, **kwargs):
    raise WorkStarted


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """The first step of each command's work raises WorkStarted (refusals must come before it)."""
    monkeypatch.setattr(preview, "load_body_model", _work_started)
    monkeypatch.setattr(scene, "RoomSampler", _work_started)
    monkeypatch.setattr(scene, "load_body_model", _work_started)
    monkeypatch.setattr(scene, "RoomSimulator", _work_started)
    monkeypatch.setattr(validate, "run_validation", _work_started)


def _png(path: Path, writer: str | None) -> None:
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(path, format="png", metadata=png_metadata(writer) if writer else None)
    plt.close(fig)


def _tetrahedron_body() -> PosedBody:
    mesh = trimesh.creation.icosphere(subdivisions=0)
    return PosedBody(vertices=np.asarray(mesh.vertices), faces=np.asarray(mesh.faces), joints=np.zeros((15, 3)),
                     stature_m=1.7, subject=Subject(30, "male", 1.7), activity="standing")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Every file the rows point at. ``{ro}`` is a folder that cannot be written (for root, who may write
    where chmod forbids, a path under /sys)."""
    ws = tmp_path_factory.mktemp("bad_input_simulator")
    for name in ("folder.json", "folder.png", "folder.ply"):
        (ws / name).mkdir()
    (ws / "notes.txt").write_text("the user's notes\n")
    (ws / "foreign.json").write_text(json.dumps({"mine": True}))
    (ws / "foreign.ply").write_bytes(_tetrahedron_body().to_trimesh().export(file_type="ply"))
    _png(ws / "foreign.png", None)
    for writer in ("bodies.preview", "simulator.scene", "simulator.validate"):
        (ws / f"own_{writer}.json").write_text(json.dumps({"written_by": writer}))
        _png(ws / f"own_{writer}.png", writer)
    (ws / "own.ply").write_bytes(preview.mesh_bytes(_tetrahedron_body(), ".ply"))
    (ws / "own.obj").write_bytes(preview.mesh_bytes(_tetrahedron_body(), ".obj"))
    read_only = ws / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):       # root ignores the mode bits
        read_only = Path("/sys/posekernel-read-only")
        assert not read_only.exists()
    yield {"ws": ws, "ro": read_only}
    (ws / "read_only").chmod(0o755)


def _argv(template: list[str], places: dict) -> list[str]:
    return [item.format(**places) for item in template]


def _refused(module: str, base: list[str], row: list[str], words: list[str], places: dict) -> None:
    before = snapshot(places["ws"])
    outcome = call_main(module, _argv(base + row, places), cwd=places["ws"])
    assert_refused(outcome, *[_argv([w], places)[0] for w in words])
    assert snapshot(places["ws"]) == before               # nothing changed, nothing new (no 0-byte file)


def _accepted(module: str, base: list[str], row: list[str], places: dict) -> None:
    before = snapshot(places["ws"])
    with pytest.raises(WorkStarted):
        call_main(module, _argv(base + row, places), cwd=places["ws"])
    assert snapshot(places["ws"]) == before               # claiming writes nothing


# Rows shared by every command: an output given as a folder, a file of the user's, an unwritable place,
# a path under a file, a wrong suffix.
def _path_rows(flag: str, suffix: str, writer: str) -> list:
    return [
        ([flag, f"{{ws}}/folder{suffix}"], [flag, "is a folder"]),
        ([flag, f"{{ws}}/foreign{suffix}"], [flag, "not written by"]),
        ([flag, f"{{ro}}/out{suffix}"], [flag, "cannot write"]),
        ([flag, f"{{ws}}/notes.txt/out{suffix}"], [flag, "cannot write"]),
        ([flag, "{ws}/out.xyz"], [flag, "unsupported", ".xyz"]),
        ([flag, "{ws}/out"], [flag, "unsupported"]),
        ([flag, "{ws}"], [flag, "is a folder"]),
    ] + ([([flag, f"{{ws}}/own_bodies.preview{suffix}"], [flag, "not written by " + writer])]
         if writer != "bodies.preview" and suffix in (".json", ".png") else [])


# -- bodies.preview ---------------------------------------------------------------------------------------
PREVIEW = ["--out", "{ws}/new.ply", "--json", "{ws}/new.json", "--png", "{ws}/new.png"]
PREVIEW_ROWS = [
    (["--seed", "-1"], ["--seed", ">= 0"]),
    (["--seed", "two"], ["--seed"]),                                  # argparse
    (["--age", "nan"], ["--age", "finite"]),
    (["--age", "inf"], ["--age"]),
    (["--age", "1"], ["--age", "[2, 90]"]),
    (["--age", "120"], ["--age"]),
    (["--activity", "flying"], ["--activity", "standing"]),
    (["--backend", "mannequin"], ["--backend"]),                      # argparse
    *_path_rows("--out", ".ply", "bodies.preview"),
    *_path_rows("--json", ".json", "bodies.preview"),
    *_path_rows("--png", ".png", "bodies.preview"),
    (["--json", "{ws}/own_simulator.scene.json"], ["--json", "not written by bodies.preview"]),
]


@pytest.mark.parametrize("row, words", PREVIEW_ROWS, ids=[" ".join(r[0]) for r in PREVIEW_ROWS])
def test_preview_refuses(workspace, row, words):
    _refused("bodies.preview", PREVIEW, row, words, workspace)


@pytest.mark.parametrize("row", [[], ["--out", "{ws}/own.ply", "--json", "{ws}/own_bodies.preview.json",
                                      "--png", "{ws}/own_bodies.preview.png"], ["--out", "{ws}/own.obj"],
                                 ["--out", "{ws}/new.glb"], ["--seed", "0", "--age", "2"]])
def test_preview_accepts_new_files_and_its_own(workspace, row):
    _accepted("bodies.preview", PREVIEW, row, workspace)


# -- simulator.scene --------------------------------------------------------------------------------------
SCENE = ["--png", "{ws}/new.png", "--json", "{ws}/new.json"]
SCENE_ROWS = [
    (["--seed", "-1"], ["--seed", ">= 0"]),
    (["--seed", "1.5"], ["--seed"]),                                  # argparse
    (["--age", "nan"], ["--age", "finite"]),
    (["--age", "0.5"], ["--age"]),
    (["--activity", "flying"], ["--activity", "standing"]),
    (["--min-floor-m", "nan"], ["--min-floor-m", "finite"]),
    (["--min-floor-m", "inf"], ["--min-floor-m"]),
    (["--min-floor-m", "1"], ["--min-floor-m", "[2.5, 20]"]),
    (["--min-floor-m", "500"], ["--min-floor-m"]),
    (["--max-order", "-1"], ["--max-order", "from 0"]),
    (["--max-order", "100000"], ["--max-order"]),
    (["--snr-db", "nan"], ["--snr-db", "finite"]),
    (["--snr-db=-inf"], ["--snr-db", "finite"]),
    (["--rig", "ring"], ["--rig"]),                                   # argparse
    *_path_rows("--png", ".png", "simulator.scene"),
    *_path_rows("--json", ".json", "simulator.scene"),
]


@pytest.mark.parametrize("row, words", SCENE_ROWS, ids=[" ".join(r[0]) for r in SCENE_ROWS])
def test_scene_refuses(workspace, row, words):
    _refused("simulator.scene", SCENE, row, words, workspace)


@pytest.mark.parametrize("row", [[], ["--png", "{ws}/own_simulator.scene.png",
                                      "--json", "{ws}/own_simulator.scene.json"],
                                 ["--seed", "3", "--age", "8", "--activity", "sitting", "--max-order", "0"]])
def test_scene_accepts_new_files_and_its_own(workspace, row):
    _accepted("simulator.scene", SCENE, row, workspace)


# -- simulator.validate -----------------------------------------------------------------------------------
VALIDATE = ["--quick", "--json", "{ws}/new.json", "--png", "{ws}/new.png"]
VALIDATE_ROWS = [
    *_path_rows("--json", ".json", "simulator.validate"),
    *_path_rows("--png", ".png", "simulator.validate"),
    (["--json", "{ws}/own_simulator.scene.json"], ["--json", "not written by simulator.validate"]),
]


@pytest.mark.parametrize("row, words", VALIDATE_ROWS, ids=[" ".join(r[0]) for r in VALIDATE_ROWS])
def test_validate_refuses(workspace, row, words):
    _refused("simulator.validate", VALIDATE, row, words, workspace)


def test_validate_refuses_its_default_output_when_it_is_the_users(workspace):
    """Without --json the report goes to ./validation.json: a user's file there is refused, not replaced."""
    (workspace["ws"] / "validation.json").write_text('{"my": "results"}')
    try:
        _refused("simulator.validate", [], ["--quick"], ["--json", "validation.json", "not written by"], workspace)
    finally:
        (workspace["ws"] / "validation.json").unlink()


@pytest.mark.parametrize("row", [[], ["--json", "{ws}/own_simulator.validate.json",
                                      "--png", "{ws}/own_simulator.validate.png"]])
def test_validate_accepts_new_files_and_its_own(workspace, row):
    _accepted("simulator.validate", VALIDATE, row, workspace)


def test_room_sampler_refuses_an_infinite_floor():
    """--min-floor-m is checked by the command; the library refuses an infinite floor too (it passed before)."""
    from rooms import RoomInputError, RoomSamplerConfig

    with pytest.raises(RoomInputError, match="min_floor_side_m = inf.*finite"):
        RoomSamplerConfig(min_floor_side_m=float("inf"), max_floor_side_m=float("inf"))


@pytest.mark.parametrize("module, stubbed, base", [
    ("bodies.preview", (preview, "load_body_model"), PREVIEW),
    ("simulator.scene", (scene, "RoomSampler"), SCENE),
    ("simulator.validate", (validate, "run_validation"), VALIDATE),
])
def test_ctrl_c_exits_130_with_one_line_and_writes_nothing(workspace, monkeypatch, module, stubbed, base):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(*stubbed, interrupted)
    before = snapshot(workspace["ws"])
    outcome = call_main(module, _argv(base, workspace), cwd=workspace["ws"])
    assert outcome.code == 130 and "Traceback" not in outcome.stderr
    assert [line for line in outcome.stderr.splitlines() if line.startswith("interrupted:")], outcome.stderr
    assert snapshot(workspace["ws"]) == before
