"""simulator.views: a scene as a self-contained interactive HTML page and as a GLB (y up), and
``simulator.scene --html/--glb``.

The views are built from small synthetic arrays (a 3 x 4 x 2.5 m room, two speakers, two microphones,
an icosphere body, skeletons), plus one camera-frame view without room or body, as ``network.predict``
has from a real capture. The command test replaces the body model with a sphere so that it needs no Anny.
"""
from __future__ import annotations

import base64
import json
import re
import struct

import numpy as np
import pytest
import trimesh

from bodies.joints import JOINT_INDEX, JOINT_NAMES
from core.errors import InputError
from core.outputs import generator_name, owned_by
from rooms import Box
from simulator.views import (DEFAULT_UP_AXES, SceneView, room_scene_view, write_scene_glb, write_scene_html,
                             y_up_rotation)
from tests.cli_harness import assert_refused, call_main, snapshot
from tests.helpers import sphere_body

WRITER = "tests.views"
ROOM_SIZE_M = (3.0, 4.0, 2.5)
# a camera on the y = 0.2 m wall, 1.5 m up, looking along +y (room frame): x_cam = x, y_cam = -z, z_cam = y
CAMERA_TO_ROOM = np.array([[1.0, 0.0, 0.0, 1.5], [0.0, 0.0, 1.0, 0.2], [0.0, -1.0, 0.0, 1.5], [0.0, 0.0, 0.0, 1.0]])
INTRINSICS = np.array([[900.0, 0.0, 960.0], [0.0, 900.0, 540.0], [0.0, 0.0, 1.0]])
IMAGE_SIZE_PX = (1920, 1080)


def standing_skeleton(pelvis_m, up) -> np.ndarray:
    """(15, 3) a plausible standing skeleton around ``pelvis_m``, ``up`` (3,) its up direction."""
    up = np.asarray(up, dtype=float)
    side = np.cross(up, [0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    offsets = {"pelvis": (0, 0), "neck": (0, 0.5), "head": (0, 0.7), "r_shoulder": (-0.2, 0.45),
               "r_elbow": (-0.25, 0.2), "r_wrist": (-0.25, 0.0), "l_shoulder": (0.2, 0.45), "l_elbow": (0.25, 0.2),
               "l_wrist": (0.25, 0.0), "r_hip": (-0.1, 0.0), "r_knee": (-0.1, -0.45), "r_ankle": (-0.1, -0.85),
               "l_hip": (0.1, 0.0), "l_knee": (0.1, -0.45), "l_ankle": (0.1, -0.85)}
    return np.array([np.asarray(pelvis_m) + s * side + u * up for s, u in (offsets[n] for n in JOINT_NAMES)])


@pytest.fixture
def room_view() -> SceneView:
    body = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    truth = standing_skeleton([1.5, 2.5, 0.95], [0, 0, 1])
    return SceneView(
        frame_name="room", room_size_m=ROOM_SIZE_M, furniture_boxes=(Box([0.5, 3.5, 0.4], [0.6, 0.6, 0.8], 0.3),),
        speakers_m=[[0.2, 0.1, 1.2], [2.8, 0.1, 1.2]], microphones_m=[[0.2, 0.1, 1.0], [2.8, 0.1, 1.0]],
        camera_to_frame=CAMERA_TO_ROOM, intrinsics=INTRINSICS, image_size_px=IMAGE_SIZE_PX,
        body_vertices_m=np.asarray(body.vertices) + [1.5, 2.5, 1.0], body_faces=body.faces,
        skeletons={"predicted": truth + 0.05, "true": truth}, title="a test room")


@pytest.fixture
def camera_view() -> SceneView:
    """What a real capture gives: the rig, the camera and a predicted skeleton in the camera frame."""
    return SceneView(
        frame_name="camera", speakers_m=[[-1.0, 0.3, 0.5], [1.0, 0.3, 0.5]], microphones_m=[[-1.0, 0.3, 0.5],
                                                                                            [1.0, 0.3, 0.5]],
        camera_to_frame=np.eye(4), intrinsics=INTRINSICS, image_size_px=IMAGE_SIZE_PX,
        skeletons={"predicted": standing_skeleton([0.0, 0.2, 3.0], DEFAULT_UP_AXES["camera"])})


# -- reading the files back ---------------------------------------------------------------------------
def plotly_figure(page: str) -> tuple[list[dict], dict]:
    """The traces and the layout the page hands to Plotly.newPlot(id, traces, layout, config)."""
    decoder = json.JSONDecoder()
    rest = page[page.index("Plotly.newPlot(") + len("Plotly.newPlot("):]
    arguments = []
    for _ in range(3):                                      # the div id, the traces, the layout
        value, end = decoder.raw_decode(rest.lstrip())
        arguments.append(value)
        rest = rest.lstrip()[end:].lstrip()
        assert rest.startswith(",")
        rest = rest[1:]
    return arguments[1], arguments[2]


def plotly_traces(page: str) -> list[dict]:
    return plotly_figure(page)[0]


def array_length(value) -> int:
    """Length of a plotly array: a JSON list, or numpy packed as {"dtype": ..., "bdata": base64}."""
    if isinstance(value, list):
        return len(value)
    return len(base64.b64decode(value["bdata"])) // np.dtype(value["dtype"]).itemsize


def glb_asset(path) -> dict:
    data = path.read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20:20 + length])["asset"]


# -- the page --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which, names", [
    ("room_view", ["room", "furniture", "speakers", "microphones", "camera", "body", "skeleton: predicted",
                   "skeleton: true"]),
    ("camera_view", ["speakers", "microphones", "camera", "skeleton: predicted"]),
])
def test_the_page_is_self_contained_and_names_every_part(tmp_path, request, which, names):
    view = request.getfixturevalue(which)
    path = tmp_path / "scene.html"
    write_scene_html(path, view, WRITER)
    page = path.read_text(encoding="utf-8")
    assert "plotly.js v" in page and len(page) > 1_000_000       # the library itself, not a link to it
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)          # nothing fetched: opens offline
    assert '<meta name="generator" content="posekernel tests.views">' in page.split("</head>")[0]
    traces = {trace["name"]: trace for trace in plotly_traces(page)}
    assert list(traces) == names
    if view.body_vertices_m is not None:
        body = traces["body"]
        assert array_length(body["x"]) == len(view.body_vertices_m)
        assert array_length(body["i"]) == len(view.body_faces)
    assert array_length(traces["speakers"]["x"]) == 2
    scene = plotly_figure(page)[1]["scene"]
    assert scene["aspectmode"] == "data"                    # a metre is as long on every axis
    assert scene["camera"]["up"] == dict(zip("xyz", view.up_axis.tolist()))
    assert owned_by(path, WRITER) and not owned_by(path, "another.command")


def test_the_page_and_the_glb_name_each_skeleton_in_its_own_colour(tmp_path, room_view):
    write_scene_html(tmp_path / "scene.html", room_view, WRITER)
    traces = {t["name"]: t for t in plotly_traces((tmp_path / "scene.html").read_text())}
    assert traces["skeleton: predicted"]["line"]["color"] != traces["skeleton: true"]["line"]["color"]
    write_scene_glb(tmp_path / "scene.glb", room_view, WRITER)
    loaded = trimesh.load(tmp_path / "scene.glb")
    colours = [tuple(loaded.geometry[f"skeleton: {label}"].visual.material.baseColorFactor)
               for label in ("predicted", "true")]
    assert colours[0] != colours[1]


# -- the GLB ---------------------------------------------------------------------------------------------
def test_the_glb_holds_every_part_by_name_with_y_up(tmp_path, room_view):
    path = tmp_path / "scene.glb"
    write_scene_glb(path, room_view, WRITER)
    assert glb_asset(path)["generator"] == generator_name(WRITER) == "posekernel tests.views"
    loaded = trimesh.load(path)
    assert isinstance(loaded, trimesh.Scene)
    names = ["room", "furniture", "speakers", "microphones", "camera", "body", "skeleton: predicted", "skeleton: true"]
    assert sorted(loaded.geometry) == sorted(names)
    assert sorted(loaded.graph.nodes_geometry) == sorted(names)
    body = loaded.geometry["body"]
    assert body.vertices.shape == room_view.body_vertices_m.shape and body.faces.shape == room_view.body_faces.shape
    # up is +y: the room's 2.5 m height lies along y; its 4 m depth (room y) along -z
    room = loaded.geometry["room"].bounds
    np.testing.assert_allclose(room[1] - room[0], [3.0, 2.5, 4.0], atol=1e-9)
    np.testing.assert_allclose(room, [[0.0, 0.0, -4.0], [3.0, 2.5, 0.0]], atol=1e-9)
    skeleton = loaded.geometry["skeleton: true"]
    assert skeleton.bounds[1, 1] > 1.6                       # the head near 1.65 m above the floor, along y
    assert owned_by(path, WRITER) and not owned_by(path, "another.command")


def test_a_camera_frame_view_without_room_or_body_turns_image_up_to_y_up(tmp_path, camera_view):
    path = tmp_path / "capture.glb"
    write_scene_glb(path, camera_view, WRITER)
    loaded = trimesh.load(path)
    assert sorted(loaded.geometry) == ["camera", "microphones", "skeleton: predicted", "speakers"]
    # (x, y, z) -> (x, -y, -z): the camera looks along glTF's -z, and the head is above the pelvis in y
    frustum = loaded.geometry["camera"].vertices
    assert frustum[:, 2].max() <= 1e-12 and frustum[:, 2].min() == pytest.approx(-camera_view.frustum_depth_m)
    skeleton = loaded.geometry["skeleton: predicted"].bounds
    joints = camera_view.skeletons["predicted"]
    assert skeleton[1, 1] == pytest.approx(-joints[JOINT_INDEX["head"], 1] + 0.022, abs=1e-3)  # + a joint ball
    assert skeleton[0, 2] < -2.5                                  # 3 m in front of the camera: -z


@pytest.mark.parametrize("up", [(0, 0, 1), (0, -1, 0), (0, 1, 0), (1, 2, 3), (-0.3, -0.9, 0.1)])
def test_y_up_rotation_is_a_rotation_taking_up_to_y(up):
    rotation = y_up_rotation(up)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(rotation @ (np.asarray(up) / np.linalg.norm(up)), [0, 1, 0], atol=1e-12)
    if up == (0, 0, 1):
        np.testing.assert_allclose(rotation @ [1.0, 2.0, 3.0], [1.0, 3.0, -2.0])   # (x, y, z) -> (x, z, -y)


# -- the data-safety promise -----------------------------------------------------------------------------
def _foreign_files(folder) -> dict:
    """An HTML and a GLB of the user's, and one of each written by another posekernel command."""
    files = {"user.html": b"<html><head><title>my notes</title></head><body>mine</body></html>",
             "user.glb": trimesh.creation.box().export(file_type="glb")}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


@pytest.mark.parametrize("write, name", [(write_scene_html, "user.html"), (write_scene_glb, "user.glb"),
                                         (write_scene_html, "other.html"), (write_scene_glb, "other.glb")])
def test_a_file_the_command_did_not_write_is_refused_and_kept(tmp_path, room_view, write, name):
    _foreign_files(tmp_path)
    if name.startswith("other"):
        write(tmp_path / name, room_view, "another.command")
    before = snapshot(tmp_path)
    with pytest.raises(InputError, match=rf"--out .*{name}: exists and was not written by {WRITER}"):
        write(tmp_path / name, room_view, WRITER, flag="--out")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("write, suffix", [(write_scene_html, ".html"), (write_scene_glb, ".glb")])
def test_the_same_command_replaces_its_own_file_atomically(tmp_path, room_view, camera_view, write, suffix):
    path = tmp_path / f"scene{suffix}"
    write(path, room_view, WRITER)
    first = path.read_bytes()
    write(path, camera_view, WRITER)
    assert path.read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == [path.name]          # no temporary left behind
    with pytest.raises(InputError, match="unsupported file type"):
        write(tmp_path / "scene.txt", room_view, WRITER)


# -- bad views -------------------------------------------------------------------------------------------
GOOD = dict(frame_name="room", room_size_m=ROOM_SIZE_M, speakers_m=np.zeros((2, 3)), camera_to_frame=CAMERA_TO_ROOM,
            intrinsics=INTRINSICS, image_size_px=IMAGE_SIZE_PX, body_vertices_m=np.zeros((4, 3)),
            body_faces=np.array([[0, 1, 2], [0, 2, 3]]), skeletons={"true": np.zeros((15, 3))})
BAD = [
    ({"frame_name": "world"}, "frame_name"),
    ({"up_axis": (0, 0, 0)}, "up_axis"),
    ({"up_axis": (0, 1)}, "up_axis"),
    ({"room_size_m": (3, 4)}, "room_size_m"),
    ({"room_size_m": (3, -4, 2)}, "room_size_m"),
    ({"frame_name": "camera"}, "room_size_m"),                          # a room belongs to the room frame
    ({"furniture_boxes": [((0, 0, 0), (1, 1, 1))]}, r"furniture_boxes\[0\]"),
    ({"speakers_m": np.zeros((2, 2))}, "speakers_m"),
    ({"microphones_m": [[0, 0, float("nan")]]}, "microphones_m"),
    ({"microphones_m": np.zeros((0, 3))}, "microphones_m"),
    ({"camera_to_frame": np.eye(3)}, "camera_to_frame"),
    ({"camera_to_frame": np.diag([1.0, 1.0, -1.0, 1.0])}, "camera_to_frame"),  # a mirror, not a pose
    ({"intrinsics": np.eye(3) * -1}, "intrinsics"),
    ({"image_size_px": (1920,)}, "image_size_px"),
    ({"image_size_px": None}, "image_size_px"),
    ({"frustum_depth_m": 0.0}, "frustum_depth_m"),
    ({"body_vertices_m": np.zeros((4, 2))}, "body_vertices_m"),
    ({"body_faces": np.array([[0, 1, 4]])}, "body_faces"),
    ({"body_faces": np.array([[0.0, 1.0, 2.0]])}, "body_faces"),
    ({"body_faces": None}, "body_faces"),
    ({"body_vertices_m": None}, "body_vertices_m"),
    ({"camera_to_frame": None}, "camera_to_frame"),
    ({"skeletons": {"true": np.zeros((14, 3))}}, r"skeletons\['true'\]"),
    ({"skeletons": {"": np.zeros((15, 3))}}, "skeletons"),
    ({"skeletons": [np.zeros((15, 3))]}, "skeletons"),
    ({"title": 3}, "title"),
]


@pytest.mark.parametrize("change, field", BAD, ids=[f"{next(iter(c))}-{i}" for i, (c, _) in enumerate(BAD)])
def test_a_bad_view_is_refused_in_one_line_naming_the_field(change, field):
    SceneView(**GOOD)                                                   # the control works
    with pytest.raises(InputError, match=f"SceneView.{field}") as err:
        SceneView(**{**GOOD, **change})
    assert "\n" not in str(err.value)


# -- simulator.scene --html --glb ------------------------------------------------------------------------
class SphereSampler:
    """Stands in for bodies.PoseSampler: a 0.25 m sphere on a standing skeleton (no Anny to build)."""

    def __init__(self, model):
        pass

    def random_activity(self, rng):
        return "standing"

    def sample(self, rng, subject, activity, heading_rad=0.0):
        body = sphere_body([0.0, 0.0, 1.0], radius=0.25, subdivisions=3)
        body.joints = standing_skeleton([0.0, 0.0, 0.95], [0, 0, 1])
        return body


@pytest.mark.filterwarnings("ignore:max_order = 1 is too low")      # a cheap room: its echoes are not looked at
def test_the_scene_command_writes_the_page_and_the_glb(tmp_path, monkeypatch):
    from simulator import scene

    monkeypatch.setattr(scene, "load_body_model", lambda name: None)
    monkeypatch.setattr(scene, "PoseSampler", SphereSampler)
    html, glb = tmp_path / "scene.html", tmp_path / "scene.glb"
    argv = ["--seed", "1", "--activity", "standing", "--max-order", "1", "--realism", "ideal", "--no-multipath",
            "--no-shadow", "--png", str(tmp_path / "scene.png"), "--html", str(html), "--glb", str(glb)]
    assert scene.main(argv) == 0
    traces = [t["name"] for t in plotly_traces(html.read_text())]
    assert traces == ["room", "furniture", "speakers", "microphones", "camera", "body", "skeleton: true"]
    loaded = trimesh.load(glb)
    assert sorted(loaded.geometry) == sorted(traces)
    assert len(loaded.geometry["body"].vertices) == 642                   # the sphere's, untouched
    room = loaded.geometry["room"].bounds
    assert 2.0 < room[1, 1] - room[0, 1] < 4.0                             # a room's height, along y
    assert glb_asset(glb)["generator"] == "posekernel simulator.scene"
    assert scene.main(argv) == 0                                          # a second run replaces its own files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.glb", "scene.html", "scene.png"]


@pytest.mark.parametrize("flag, name", [("--html", "user.html"), ("--glb", "user.glb"), ("--html", "scene.png"),
                                        ("--glb", "folder")])
def test_the_scene_command_refuses_an_output_before_any_work(tmp_path, monkeypatch, flag, name):
    from simulator import scene

    def work_started(*args, **kwargs):
        raise AssertionError("the work started before the outputs were checked")

    monkeypatch.setattr(scene, "RoomSampler", work_started)
    _foreign_files(tmp_path)
    (tmp_path / "folder").mkdir()
    before = snapshot(tmp_path)
    outcome = call_main("simulator.scene", ["--png", str(tmp_path / "new.png"), flag, str(tmp_path / name)])
    assert_refused(outcome, flag, name)
    assert snapshot(tmp_path) == before


def test_room_scene_view_draws_a_sampled_room_and_its_furniture():
    from rooms import RoomSampler

    room_scene = RoomSampler().sample(np.random.default_rng(0))
    body = sphere_body([2.0, 2.0, 1.0])
    view = room_scene_view(room_scene, body)
    np.testing.assert_array_equal(view.room_size_m, room_scene.room.dimensions_m)
    assert len(view.furniture_boxes) == sum(len(item.boxes) for item in room_scene.room.furniture) > 0
    np.testing.assert_array_equal(view.speakers_m, room_scene.rig.speaker_positions_m)
    assert list(view.skeletons) == ["true"] and view.body_faces.shape == body.faces.shape
