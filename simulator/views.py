"""Pictures you can turn around: one scene as a self-contained interactive HTML page and as a GLB.

A :class:`SceneView` holds everything to draw, all in ONE frame named by ``frame_name``:

* ``"room"``: the room (world) frame of :mod:`rooms`: metres, z up, origin on the floor at a room corner;
* ``"camera"``: the OpenCV camera frame: metres, x right, y down, z forward (what a real capture gives:
  ``network.predict`` has no room and no body mesh, only the rig, the camera and skeletons).

:func:`write_scene_html` writes a plotly figure with plotly.js embedded in the page (it opens offline and
can be mailed as one file); each part is a named trace (``room``, ``furniture``, ``speakers``,
``microphones``, ``camera``, ``body``, ``skeleton: <label>``) that a click on the legend hides.

:func:`write_scene_glb` writes a glTF binary with one named node per part (the same names). glTF is y-up,
so every point is turned by the rotation :func:`y_up_rotation` that takes the view's ``up_axis`` to +y
(for the room frame ``(x, y, z) -> (x, z, -y)``; for the camera frame with its default up, -y,
``(x, y, z) -> (x, -y, -z)``, which also makes the camera look along glTF's -z). Distances are kept:
the file is in metres, as glTF asks.

Both writers keep the project's promise about files (``core.outputs``): the file is written whole
(temporary name, then rename) and replaced only when the same command wrote it, which the file says
itself: a ``<meta name="generator" content="posekernel <command>">`` in the HTML head, the glTF
``asset.generator`` ``"posekernel <command>"`` in the GLB.

This module imports only numpy, trimesh, plotly and the project's ``bodies``, ``rooms`` and ``core``,
so any command can draw what it holds.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import trimesh

from bodies.joints import JOINT_NAMES, SKELETON_EDGE_INDICES
from core.checks import check_finite_array, check_number
from core.errors import InputError
from core.outputs import atomic_write, claim_output_file, generator_name, html_generator_meta
from rooms.furniture import Box

__all__ = ["DEFAULT_UP_AXES", "SceneView", "room_scene_view", "scene_figure", "scene_glb", "write_scene_glb",
           "write_scene_html", "y_up_rotation"]

#: The up direction a viewer uses in each frame when the view gives none: the room's z, and the camera's
#: -y (image up, right for a level camera).
DEFAULT_UP_AXES: dict[str, tuple[float, float, float]] = {"room": (0.0, 0.0, 1.0), "camera": (0.0, -1.0, 0.0)}

# Colours (RGBA, 0-255) shared by both formats, so a part looks the same in the page and in the GLB.
_COLOURS = {
    "room": (90, 90, 90, 255),
    "furniture": (160, 140, 110, 110),     # see-through: the body and rig behind a shelf stay visible
    "speakers": (214, 39, 40, 255),
    "microphones": (31, 119, 180, 255),
    "camera": (40, 40, 40, 90),
    "body": (222, 184, 150, 255),
}
# One colour per skeleton, in the order they are given (red and blue are the rig's).
_SKELETON_COLOURS = ((44, 160, 44, 255), (255, 127, 14, 255), (148, 103, 189, 255), (23, 190, 207, 255),
                     (140, 86, 75, 255), (227, 119, 194, 255))

# Sizes of the markers drawn in the GLB (metres): large enough to find in a 5 m room, small next to a body.
_SPEAKER_RADIUS_M = 0.035
_MICROPHONE_RING_RADIUS_M = 0.05    # a ring, not a ball: a co-located microphone would hide in its speaker
_MICROPHONE_RING_THICKNESS_M = 0.008
_BONE_RADIUS_M = 0.012
_JOINT_RADIUS_M = 0.022
_ROTATION_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class SceneView:
    """Everything one picture of a scene shows, in one frame (see the module docstring).

    Every field but ``frame_name`` is optional; a part left out is not drawn.

    Attributes:
        frame_name: ``"room"`` or ``"camera"``.
        up_axis: (3,) the frame's up direction for a viewer (made unit length); default
            :data:`DEFAULT_UP_AXES` of the frame.
        room_size_m: (3,) the room as the box [0, size] (room frame only).
        furniture_boxes: ``rooms.Box`` items (centre, size, yaw about z; room frame only).
        speakers_m: (S, 3) speaker positions.
        microphones_m: (M, 3) microphone positions.
        camera_to_frame: (4, 4) rigid transform from the camera frame to this frame (the identity in the
            camera frame); with ``intrinsics`` (3, 3) and ``image_size_px`` (width, height) it draws the
            camera's viewing frustum, ``frustum_depth_m`` deep.
        body_vertices_m: (V, 3) and body_faces: (F, 3) integer indices: the body mesh.
        skeletons: label -> (15, 3) joints in :data:`bodies.joints.JOINT_NAMES` order, e.g.
            ``{"predicted": ..., "true": ...}``.
        title: a line above the HTML picture.
    """

    frame_name: str
    up_axis: np.ndarray | None = None
    room_size_m: np.ndarray | None = None
    furniture_boxes: tuple[Box, ...] = ()
    speakers_m: np.ndarray | None = None
    microphones_m: np.ndarray | None = None
    camera_to_frame: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    image_size_px: tuple[int, int] | None = None
    frustum_depth_m: float = 0.4
    body_vertices_m: np.ndarray | None = None
    body_faces: np.ndarray | None = None
    skeletons: Mapping[str, np.ndarray] = field(default_factory=dict)
    title: str = ""

    def __post_init__(self):
        if self.frame_name not in DEFAULT_UP_AXES:
            raise InputError(f"SceneView.frame_name = {self.frame_name!r}: give one of {', '.join(DEFAULT_UP_AXES)}")
        up = self.up_axis if self.up_axis is not None else DEFAULT_UP_AXES[self.frame_name]
        up = check_finite_array("SceneView.up_axis", up, shape=(3,))
        if np.linalg.norm(up) < 1e-9:
            raise InputError("SceneView.up_axis is zero: give the frame's up direction, e.g. (0, 0, 1)")
        self._set("up_axis", up / np.linalg.norm(up))
        self._check_room()
        for name in ("speakers_m", "microphones_m"):
            if getattr(self, name) is not None:
                self._set(name, _points(f"SceneView.{name}", getattr(self, name)))
        self._check_camera()
        self._check_body()
        self._check_skeletons()
        if not isinstance(self.title, str):
            raise InputError(f"SceneView.title is a {type(self.title).__name__}: give a string")

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)

    def _check_room(self) -> None:
        boxes = tuple(self.furniture_boxes)
        if self.frame_name != "room" and (self.room_size_m is not None or boxes):
            raise InputError(f"SceneView.room_size_m / furniture_boxes are room-frame geometry; this view's frame "
                             f"is {self.frame_name!r} (give frame_name='room' or leave them out)")
        if self.room_size_m is not None:
            size = check_finite_array("SceneView.room_size_m", self.room_size_m, shape=(3,))
            if np.any(size <= 0):
                raise InputError(f"SceneView.room_size_m = {size.tolist()}: give three positive lengths (metres)")
            self._set("room_size_m", size)
        for i, box in enumerate(boxes):
            if not isinstance(box, Box):
                raise InputError(f"SceneView.furniture_boxes[{i}] is a {type(box).__name__}: give rooms.Box items")
        self._set("furniture_boxes", boxes)

    def _check_camera(self) -> None:
        names = ("camera_to_frame", "intrinsics", "image_size_px")
        given = [getattr(self, name) is not None for name in names]
        if any(given) and not all(given):
            missing = names[given.index(False)]
            raise InputError(f"SceneView.{missing} is missing: camera_to_frame, intrinsics and image_size_px come "
                             "together; give all three to draw the camera, or none")
        self._set("frustum_depth_m", check_number("SceneView.frustum_depth_m", self.frustum_depth_m, 0.0,
                                                  low_open=True))
        if not all(given):
            return
        pose = check_finite_array("SceneView.camera_to_frame", self.camera_to_frame, shape=(4, 4))
        rotation = pose[:3, :3]
        if (not np.allclose(pose[3], [0, 0, 0, 1], atol=_ROTATION_TOLERANCE)
                or not np.allclose(rotation.T @ rotation, np.eye(3), atol=_ROTATION_TOLERANCE)
                or np.linalg.det(rotation) < 0):
            raise InputError("SceneView.camera_to_frame is not a rigid transform: give a rotation (orthonormal, "
                             "det +1) with last row (0, 0, 0, 1)")
        k = check_finite_array("SceneView.intrinsics", self.intrinsics, shape=(3, 3))
        if k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0, 0, 1]):
            raise InputError("SceneView.intrinsics: give K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0 "
                             "(pixels)")
        size = np.asarray(self.image_size_px).reshape(-1)
        if size.shape != (2,) or not np.all([float(v).is_integer() and v > 0 for v in size]):
            raise InputError(f"SceneView.image_size_px = {self.image_size_px!r}: give (width, height) in pixels")
        self._set("camera_to_frame", pose)
        self._set("intrinsics", k)
        self._set("image_size_px", (int(size[0]), int(size[1])))

    def _check_body(self) -> None:
        if (self.body_vertices_m is None) != (self.body_faces is None):
            missing = "body_faces" if self.body_faces is None else "body_vertices_m"
            raise InputError(f"SceneView.{missing} is missing: body_vertices_m and body_faces come together; give "
                             "both or neither")
        if self.body_vertices_m is None:
            return
        vertices = _points("SceneView.body_vertices_m", self.body_vertices_m)
        faces = np.asarray(self.body_faces)
        if (faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer)
                or (faces.size and (faces.min() < 0 or faces.max() >= len(vertices)))):
            raise InputError(f"SceneView.body_faces has shape {faces.shape} / dtype {faces.dtype}: give (F, 3) "
                             f"integer indices of the {len(vertices)} vertices")
        self._set("body_vertices_m", vertices)
        self._set("body_faces", faces.astype(np.int64))

    def _check_skeletons(self) -> None:
        if not isinstance(self.skeletons, Mapping):
            raise InputError(f"SceneView.skeletons is a {type(self.skeletons).__name__}: give a dict label -> "
                             f"({len(JOINT_NAMES)}, 3) joints")
        skeletons = {}
        for label, joints in self.skeletons.items():
            if not isinstance(label, str) or not label:
                raise InputError(f"SceneView.skeletons label {label!r}: give a non-empty string such as 'true'")
            skeletons[label] = check_finite_array(f"SceneView.skeletons[{label!r}]", joints,
                                                  shape=(len(JOINT_NAMES), 3))
        self._set("skeletons", skeletons)


def _points(name: str, value) -> np.ndarray:
    """(N >= 1, 3) finite points; an empty array is refused (leave the part out instead)."""
    points = check_finite_array(name, value, shape=(None, 3))
    if len(points) == 0:
        raise InputError(f"{name} has no points: give an (N >= 1, 3) array in metres, or leave it out (None)")
    return points


def room_scene_view(room_scene, body=None, speakers_m=None, microphones_m=None, skeletons=None,
                    title: str = "") -> SceneView:
    """The room-frame view of a ``rooms.RoomScene`` (room, furniture, rig, camera) with a ``bodies.PosedBody``.

    ``speakers_m`` / ``microphones_m`` (S, 3) / (M, 3) replace the rig's positions (e.g. a recording's,
    where the simulated devices sit); ``skeletons`` defaults to the body's own joints as ``"true"``.
    """
    room, camera, rig = room_scene.room, room_scene.camera, room_scene.rig
    if not np.allclose(room.bounds_m[0], 0.0):
        raise InputError(f"room bounds start at {room.bounds_m[0].tolist()} m: a SceneView draws the room as the box "
                         "[0, room_size_m] (origin on the floor at a corner)")
    if skeletons is None:
        skeletons = {} if body is None else {"true": body.joints}
    return SceneView(
        frame_name="room",
        room_size_m=room.bounds_m[1],      # rooms put the origin on the floor at a corner: the box is [0, max]
        furniture_boxes=tuple(box for item in room.furniture for box in item.boxes),
        speakers_m=rig.speaker_positions_m if speakers_m is None else speakers_m,
        microphones_m=rig.microphone_positions_m if microphones_m is None else microphones_m,
        camera_to_frame=camera.cam_to_world, intrinsics=camera.intrinsics, image_size_px=camera.image_size_px,
        body_vertices_m=None if body is None else body.vertices,
        body_faces=None if body is None else body.faces,
        skeletons=skeletons, title=title)


# -- geometry both formats draw --------------------------------------------------------------------
def _box_edges(size_m: np.ndarray) -> np.ndarray:
    """(12, 2, 3) edges of the box [0, size_m]."""
    corners = np.array([[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)], dtype=float) * size_m
    pairs = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]  # differ in one axis
    return corners[np.array(pairs)]


def _furniture_mesh(boxes: Sequence[Box]) -> trimesh.Trimesh:
    """Every furniture box as one closed mesh."""
    meshes = []
    for box in boxes:
        transform = np.eye(4)
        transform[:3, :3] = box.rotation
        transform[:3, 3] = box.center_m
        meshes.append(trimesh.creation.box(extents=box.size_m, transform=transform))
    return trimesh.util.concatenate(meshes)


def _frustum(view: SceneView) -> tuple[np.ndarray, np.ndarray]:
    """The camera centre (3,) and the image corners (4, 3) at ``frustum_depth_m``, in the view's frame.

    Corners run top-left, top-right, bottom-right, bottom-left of the image.
    """
    w, h = view.image_size_px
    pixels = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=float)
    rays = pixels @ np.linalg.inv(view.intrinsics).T           # (4, 3) camera frame, z = 1
    corners_cam = rays * view.frustum_depth_m
    rotation, centre = view.camera_to_frame[:3, :3], view.camera_to_frame[:3, 3]
    return centre.copy(), corners_cam @ rotation.T + centre


def _frustum_edges(view: SceneView) -> np.ndarray:
    """(8, 2, 3) edges of the frustum: centre to each corner, then the image rectangle."""
    centre, corners = _frustum(view)
    return np.array([[centre, c] for c in corners] + [[corners[i], corners[(i + 1) % 4]] for i in range(4)])


def _bones(joints: np.ndarray) -> np.ndarray:
    """(14, 2, 3) bone end points of a (15, 3) skeleton (bodies.joints.SKELETON_EDGES)."""
    return joints[SKELETON_EDGE_INDICES]


def _skeleton_colours(view: SceneView) -> dict[str, tuple[int, int, int, int]]:
    return {label: _SKELETON_COLOURS[i % len(_SKELETON_COLOURS)] for i, label in enumerate(view.skeletons)}


# -- the interactive page --------------------------------------------------------------------------
def _css(rgba) -> str:
    return f"rgba({rgba[0]}, {rgba[1]}, {rgba[2]}, {rgba[3] / 255:.2f})"


def _polyline(segments: np.ndarray) -> tuple[list, list, list]:
    """x, y, z lists of (N, 2, 3) segments, separated by None so that plotly draws them apart."""
    xs, ys, zs = [], [], []
    for a, b in segments:
        for axis, values in enumerate((xs, ys, zs)):
            values.extend([float(a[axis]), float(b[axis]), None])
    return xs, ys, zs


def _mesh_trace(go, name: str, vertices: np.ndarray, faces: np.ndarray, rgba, **kwargs):
    # float32 / int32: plotly stores numpy arrays base64-packed, so half the bytes of float64 make half the page
    v, f = np.asarray(vertices, dtype=np.float32), np.asarray(faces, dtype=np.int32)
    return go.Mesh3d(name=name, x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2],
                     color=_css(rgba[:3] + (255,)), opacity=rgba[3] / 255, showlegend=True, hoverinfo="name",
                     **kwargs)


def scene_figure(view: SceneView):
    """The view as a ``plotly.graph_objects.Figure``: one named trace per part, equal scale on every axis
    (metres), the viewer's up set to ``view.up_axis``."""
    import plotly.graph_objects as go

    traces = []
    if view.room_size_m is not None:
        x, y, z = _polyline(_box_edges(view.room_size_m))
        traces.append(go.Scatter3d(name="room", x=x, y=y, z=z, mode="lines",
                                   line=dict(color=_css(_COLOURS["room"]), width=3), hoverinfo="name"))
    if view.furniture_boxes:
        mesh = _furniture_mesh(view.furniture_boxes)
        traces.append(_mesh_trace(go, "furniture", mesh.vertices, mesh.faces, _COLOURS["furniture"]))
    for name, points, symbol in (("speakers", view.speakers_m, "diamond"),
                                 ("microphones", view.microphones_m, "circle-open")):
        if points is not None:
            label = name[:-1]
            traces.append(go.Scatter3d(
                name=name, x=points[:, 0], y=points[:, 1], z=points[:, 2], mode="markers",
                marker=dict(color=_css(_COLOURS[name][:3] + (255,)), size=7, symbol=symbol, line=dict(width=3)),
                text=[f"{label} {i}" for i in range(len(points))], hoverinfo="text"))
    if view.camera_to_frame is not None:
        x, y, z = _polyline(_frustum_edges(view))
        traces.append(go.Scatter3d(name="camera", x=x, y=y, z=z, mode="lines",
                                   line=dict(color=_css(_COLOURS["camera"][:3] + (255,)), width=4), hoverinfo="name"))
    if view.body_vertices_m is not None:
        traces.append(_mesh_trace(go, "body", view.body_vertices_m, view.body_faces, _COLOURS["body"],
                                  flatshading=False, lighting=dict(ambient=0.5, diffuse=0.8, specular=0.1)))
    for label, colour in _skeleton_colours(view).items():
        x, y, z = _polyline(_bones(view.skeletons[label]))
        text = [t for a, b in SKELETON_EDGE_INDICES for t in (JOINT_NAMES[a], JOINT_NAMES[b], "")]  # as _polyline
        traces.append(go.Scatter3d(name=f"skeleton: {label}", x=x, y=y, z=z, mode="lines+markers",
                                   line=dict(color=_css(colour), width=6), marker=dict(color=_css(colour), size=3),
                                   text=text, hoverinfo="text+name"))
    figure = go.Figure(traces)
    up = dict(zip("xyz", (float(u) for u in view.up_axis)))
    figure.update_layout(
        title=view.title or None, margin=dict(l=0, r=0, t=40 if view.title else 0, b=0),
        legend=dict(itemsizing="constant"),
        scene=dict(aspectmode="data",          # one metre is as long on every axis
                   xaxis_title="x (m)", yaxis_title="y (m)", zaxis_title="z (m)",
                   camera=dict(up=up, eye=_eye(view))))
    return figure


def _eye(view: SceneView) -> dict:
    """Where the page's viewer starts: behind and above the scene's camera (what it sees, from over its
    shoulder), or plotly's default corner when there is no camera."""
    if view.camera_to_frame is None:
        return dict(x=1.25, y=1.25, z=1.25)
    forward = view.camera_to_frame[:3, 2]
    eye = -forward + 0.6 * view.up_axis
    eye = 1.8 * eye / np.linalg.norm(eye)
    return dict(zip("xyz", (float(e) for e in eye)))


def write_scene_html(path, view: SceneView, command: str, flag: str = "path") -> None:
    """Write ``view`` as one self-contained HTML page (plotly.js inside, no network needed) to ``path``.

    Refused (InputError naming ``flag``) when ``path`` is not .html or holds a file ``command`` did not
    write; written atomically, with ``<meta name="generator" content="posekernel <command>">``.
    """
    claim_output_file(path, flag, command, (".html",))
    page = scene_figure(view).to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False})
    head = (f"<head>{html_generator_meta(command)}<meta name=\"viewport\" content=\"width=device-width\">"
            f"<title>{html.escape(view.title or 'posekernel scene')}</title>")
    if "<head>" not in page:
        raise RuntimeError("plotly's page has no <head>; the generator mark cannot be placed")
    page = page.replace("<head>", head, 1)
    atomic_write(path, lambda handle: handle.write(page.encode("utf-8")))


# -- the GLB ---------------------------------------------------------------------------------------
def y_up_rotation(up_axis) -> np.ndarray:
    """(3, 3) the smallest rotation taking ``up_axis`` (3,) to +y (glTF's up); a half turn about x when
    ``up_axis`` points down y."""
    up = np.asarray(up_axis, dtype=float) / np.linalg.norm(up_axis)
    target = np.array([0.0, 1.0, 0.0])
    cos = float(up @ target)
    if cos < -1 + 1e-9:
        return np.diag([1.0, -1.0, -1.0])
    v = np.cross(up, target)
    skew = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + skew + skew @ skew / (1 + cos)        # Rodrigues' formula with sin = |v|


def _material(name: str, rgba) -> trimesh.visual.TextureVisuals:
    """A plain PBR colour; a see-through one blends (glTF ignores alpha unless told)."""
    material = trimesh.visual.material.PBRMaterial(
        name=name, baseColorFactor=list(rgba), metallicFactor=0.0, roughnessFactor=0.8,
        alphaMode="BLEND" if rgba[3] < 255 else "OPAQUE", doubleSided=True)
    return trimesh.visual.TextureVisuals(material=material)


def _painted(mesh: trimesh.Trimesh, name: str, rgba) -> trimesh.Trimesh:
    mesh.visual = _material(name, rgba)
    return mesh


def _along(up_axis: np.ndarray) -> np.ndarray:
    """(4, 4) a rotation taking +z to ``up_axis`` (trimesh makes rings about z)."""
    transform = np.eye(4)
    transform[:3, :3] = y_up_rotation(up_axis).T @ y_up_rotation([0.0, 0.0, 1.0])
    return transform


def scene_glb(view: SceneView) -> trimesh.Scene:
    """The view as a ``trimesh.Scene`` already turned to glTF's y-up (:func:`y_up_rotation`), one node per
    part named as the HTML traces."""
    parts: dict[str, trimesh.parent.Geometry] = {}
    if view.room_size_m is not None:
        parts["room"] = trimesh.load_path(_box_edges(view.room_size_m))   # lines: the walls hide nothing
        parts["room"].colors = np.tile(_COLOURS["room"], (len(parts["room"].entities), 1))
    if view.furniture_boxes:
        parts["furniture"] = _painted(_furniture_mesh(view.furniture_boxes), "furniture", _COLOURS["furniture"])
    if view.speakers_m is not None:
        balls = [trimesh.creation.icosphere(subdivisions=2, radius=_SPEAKER_RADIUS_M).apply_translation(p)
                 for p in view.speakers_m]
        parts["speakers"] = _painted(trimesh.util.concatenate(balls), "speakers", _COLOURS["speakers"])
    if view.microphones_m is not None:
        ring = trimesh.creation.torus(major_radius=_MICROPHONE_RING_RADIUS_M, minor_radius=_MICROPHONE_RING_THICKNESS_M,
                                      major_sections=24, minor_sections=8)
        ring.apply_transform(_along(view.up_axis))                      # lying flat, like a ring on a table
        rings = [ring.copy().apply_translation(p) for p in view.microphones_m]
        parts["microphones"] = _painted(trimesh.util.concatenate(rings), "microphones", _COLOURS["microphones"])
    if view.camera_to_frame is not None:
        centre, corners = _frustum(view)
        sides = [[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]]          # open at the image: one sees inside
        parts["camera"] = _painted(trimesh.Trimesh(np.vstack([centre, corners]), sides, process=False),
                                   "camera", _COLOURS["camera"])
    if view.body_vertices_m is not None:
        parts["body"] = _painted(trimesh.Trimesh(view.body_vertices_m, view.body_faces, process=False),
                                 "body", _COLOURS["body"])
    for label, colour in _skeleton_colours(view).items():
        joints = view.skeletons[label]
        pieces = [trimesh.creation.icosphere(subdivisions=1, radius=_JOINT_RADIUS_M).apply_translation(j)
                  for j in joints]
        # a bone of length 0 (joints on one point, as a placeholder skeleton has) has no axis: left out
        pieces += [trimesh.creation.cylinder(radius=_BONE_RADIUS_M, segment=bone, sections=8)
                   for bone in _bones(joints) if np.linalg.norm(bone[1] - bone[0]) > 1e-6]
        name = f"skeleton: {label}"
        parts[name] = _painted(trimesh.util.concatenate(pieces), name, colour)

    to_y_up = np.eye(4)
    to_y_up[:3, :3] = y_up_rotation(view.up_axis)
    scene = trimesh.Scene()
    for name, geometry in parts.items():
        # the rotation is applied to the points (not left on a node), so the file reads y-up to any tool
        scene.add_geometry(geometry.apply_transform(to_y_up), geom_name=name, node_name=name)
    return scene


def write_scene_glb(path, view: SceneView, command: str, flag: str = "path") -> None:
    """Write ``view`` as a GLB (glTF binary, y up, metres) to ``path``.

    Refused (InputError naming ``flag``) when ``path`` is not .glb or holds a file ``command`` did not
    write; written atomically, with glTF ``asset.generator`` = ``"posekernel <command>"``.
    """
    from trimesh.exchange.gltf import export_glb

    claim_output_file(path, flag, command, (".glb",))
    scene = scene_glb(view)
    if not scene.geometry:
        raise InputError(f"{flag} {path}: the view holds nothing to draw; give at least one part")

    def mark(tree: dict) -> None:
        tree.setdefault("asset", {"version": "2.0"})["generator"] = generator_name(command)

    data = export_glb(scene, tree_postprocessor=mark)
    atomic_write(path, lambda handle: handle.write(data))

