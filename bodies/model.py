"""The body-model interface: shape and pose in, posed metric mesh and 15 joints out.

One class per body model (:class:`bodies.anny_model.AnnyBodyModel`,
:class:`bodies.smpl_model.SmplBodyModel`), each turning a :class:`~bodies.subjects.Subject`
and *segment rotations* into vertices and joints. Segment rotations are the model-independent pose
representation of this package: for each rigid segment of the body (torso, upper arm, shin, ...)
the rotation, in world-aligned axes, that carries the segment from the model's rest pose to the
posed body. :mod:`bodies.poses` builds them from anatomical joint angles, so one pose sampler
drives every backend whatever its rest pose (Anny rests in an A-pose, SMPL in a T-pose).

Frames. A model's *body frame* is metric, z up, the body facing -y, its left side at +x, origin at
the root joint. :func:`place_body` moves a body into the room frame (z up, floor at z = 0).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial.transform import Rotation

from bodies.errors import BodyInputError
from bodies.joints import JOINT_INDEX, JOINT_NAMES
from bodies.subjects import Subject
from core.checks import check_finite_array, check_number

#: Highest a body's lowest point may be placed above the floor (a jump, a raised platform), metres.
MAX_FLOOR_OFFSET_M = 2.0

# Rigid segments moved by the pose representation, and the segment each hangs from.
SEGMENT_PARENTS: dict[str, str | None] = {
    "root": None,
    "torso": "root",
    "neck": "torso",
    "l_upperarm": "torso", "l_forearm": "l_upperarm",
    "r_upperarm": "torso", "r_forearm": "r_upperarm",
    "l_thigh": "root", "l_shin": "l_thigh", "l_foot": "l_shin",
    "r_thigh": "root", "r_shin": "r_thigh", "r_foot": "r_shin",
}
SEGMENTS: tuple[str, ...] = tuple(SEGMENT_PARENTS)
SEGMENT_INDEX = {name: i for i, name in enumerate(SEGMENTS)}

# Extra landmarks a rest skeleton carries beyond the 15 joints (for posing feet).
REST_LANDMARKS: tuple[str, ...] = JOINT_NAMES + ("l_toe", "r_toe", "crown")


@dataclass
class RestSkeleton:
    """Joints of a batch of bodies in their model's rest pose, body frame (z up, facing -y).

    Attributes:
        landmarks: (B, L, 3) positions of :data:`REST_LANDMARKS`, metres.
        elbow_hinge: (B, 2, 3) unit axes (left, right) about which a positive rotation of the
            forearm flexes the elbow, in the rest pose.
    """

    landmarks: np.ndarray
    elbow_hinge: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        """(B, 3) position of one landmark."""
        return self.landmarks[:, REST_LANDMARKS.index(name)]


@dataclass
class PosedBody:
    """One posed body in the room frame (z up, metres).

    Attributes:
        vertices: (V, 3) mesh vertices.
        faces: (F, 3) triangle vertex indices.
        joints: (15, 3) joints in :data:`bodies.joints.JOINT_NAMES` order.
        stature_m: standing height measured on this subject's rest mesh, sole to crown.
        subject: the shape parameters.
        activity: the pose's activity label.
        seat_height_m: height of the sitting surface under the body (sitting only), else None.
        seat_center_xy_m: (2,) centre of the seat contact, room frame (sitting only), else None.
        heading_rad: direction the body faces, counter-clockwise from +x.
        pose_angles_deg: the anatomical joint angles that produced the pose.
        vertex_velocities_m_s: (V, 3) velocity of every vertex at this instant (room frame, m/s), or None
            for a body at rest (``bodies.velocities`` draws them from a pose trajectory).
    """

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    stature_m: float
    subject: Subject
    activity: str
    seat_height_m: float | None = None
    seat_center_xy_m: np.ndarray | None = None
    heading_rad: float = 0.0
    pose_angles_deg: dict = field(default_factory=dict)
    vertex_velocities_m_s: np.ndarray | None = None

    @property
    def is_minor(self) -> bool:
        return self.subject.is_minor

    def __post_init__(self) -> None:
        # A NaN or misshapen body is refused where it is made, not found later as a silent NaN echo.
        # (checked, not converted: vertices stay float32 as the model made them)
        check_finite_array("vertices", self.vertices, shape=(None, 3), error=BodyInputError)
        check_finite_array("joints", self.joints, shape=(len(JOINT_NAMES), 3), error=BodyInputError)
        faces = np.asarray(self.faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer) or \
                (faces.size and (faces.min() < 0 or faces.max() >= len(self.vertices))):
            raise BodyInputError(f"faces has shape {faces.shape} / dtype {faces.dtype}; pass (F, 3) integer indices "
                                 f"of the {len(self.vertices)} vertices")
        self.stature_m = check_number("stature_m", self.stature_m, 0.0, 3.0, low_open=True, error=BodyInputError)
        if not isinstance(self.subject, Subject):
            raise BodyInputError(f"subject is a {type(self.subject).__name__}; pass a bodies.Subject")
        if self.vertex_velocities_m_s is not None:
            self.vertex_velocities_m_s = check_finite_array("vertex_velocities_m_s", self.vertex_velocities_m_s,
                                                            shape=(len(self.vertices), 3), error=BodyInputError)

    def joint(self, name: str) -> np.ndarray:
        if name not in JOINT_INDEX:
            raise BodyInputError(f"joint {name!r} is unknown; choose one of: {', '.join(JOINT_NAMES)}")
        return self.joints[JOINT_INDEX[name]]

    def footprint_radius_m(self) -> float:
        """Largest horizontal distance of a vertex from the pelvis: the room must keep this clear."""
        d = self.vertices[:, :2] - self.joint("pelvis")[:2]
        return float(np.sqrt((d**2).sum(1)).max())

    def translated(self, offset_m) -> "PosedBody":
        """The same body moved by ``offset_m`` (2 or 3 components, metres)."""
        move = check_finite_array("offset_m", offset_m, error=BodyInputError).ravel()
        if len(move) not in (2, 3):
            raise BodyInputError(f"offset_m has {len(move)} components; pass (dx, dy) or (dx, dy, dz) in metres")
        offset = np.zeros(3)
        offset[: len(move)] = move
        seat = None if self.seat_center_xy_m is None else self.seat_center_xy_m + offset[:2]
        seat_height = None if self.seat_height_m is None else self.seat_height_m + offset[2]
        return replace(self, vertices=(self.vertices + offset).astype(self.vertices.dtype),
                       joints=self.joints + offset, seat_center_xy_m=seat, seat_height_m=seat_height)

    def to_trimesh(self):
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, process=False)

    def summary(self) -> dict:
        """JSON-ready description: joints by name, stature, activity, subject."""
        return {
            "activity": self.activity,
            "stature_m": round(float(self.stature_m), 4),
            "is_minor": self.is_minor,
            "subject": self.subject.to_dict(),
            "heading_rad": float(self.heading_rad),
            "seat_height_m": None if self.seat_height_m is None else float(self.seat_height_m),
            "joints_m": {n: [float(x) for x in self.joints[i]] for i, n in enumerate(JOINT_NAMES)},
            "pose_angles_deg": {k: float(v) for k, v in self.pose_angles_deg.items()},
        }


class BodyModel(abc.ABC):
    """A parametric body model behind the common interface.

    Subclasses implement :meth:`rest_skeleton` and :meth:`forward`; everything else
    (pose sampling, placement, previews) is shared.
    """

    name: str = "body"
    faces: np.ndarray  # (F, 3) int64

    @abc.abstractmethod
    def rest_skeleton(self, subjects: list[Subject]) -> RestSkeleton:
        """Rest-pose landmarks of each subject, body frame, at the subject's stature."""

    @abc.abstractmethod
    def forward(self, subjects: list[Subject], segment_rotations: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pose a batch of bodies.

        Args:
            subjects: B subjects (or one, shared by the whole batch).
            segment_rotations: (B, len(SEGMENTS), 3, 3) world-aligned rotations from the rest
                pose, see :mod:`bodies.poses`.
        Returns:
            vertices (B, V, 3) and joints (B, 15, 3), body frame, metres; and the statures (B,)
            measured on the rest meshes.
        """

    def forget_subjects(self) -> None:
        """Drop what a model keeps per subject (rest shapes of recent subjects), e.g. when a new room brings new
        people: results stay the same, the memory is freed. Models that keep nothing need not override it."""

    def forward_joints(self, subjects: list[Subject], segment_rotations: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """The joints (B, 15, 3) and statures (B,) of :meth:`forward`, the same arrays.

        For searches that look at the skeleton alone; a model that can skip the skinning of
        the mesh overrides this.
        """
        _, joints, statures = self.forward(subjects, segment_rotations)
        return joints, statures

    def forward_chosen(self, subjects: list[Subject], segment_rotations: np.ndarray, choose
                       ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Pose a batch, choose one body by its skeleton, and give that body's mesh.

        Args:
            subjects, segment_rotations: as :meth:`forward`.
            choose: ``choose(joints (B, 15, 3), statures (B,)) -> int``, the index of the body wanted.
        Returns:
            the chosen index, its vertices (V, 3), and the joints (B, 15, 3) and statures (B,) of
            the whole batch: the arrays of :meth:`forward`. A model that can mesh one body of the
            batch alone overrides this, so that the bodies not chosen are never meshed.
        """
        vertices, joints, statures = self.forward(subjects, segment_rotations)
        index = int(choose(joints, statures))
        return index, vertices[index], joints, statures


def local_rotations(segment_rotations: np.ndarray) -> np.ndarray:
    """Rotation of each segment relative to its parent: A_parent^T A_segment.

    Args:
        segment_rotations: (B, S, 3, 3) world-aligned rotations.
    Returns:
        (B, S, 3, 3); the root keeps its own rotation.
    """
    local = segment_rotations.copy()
    for name, parent in SEGMENT_PARENTS.items():
        if parent is not None:
            i, p = SEGMENT_INDEX[name], SEGMENT_INDEX[parent]
            local[:, i] = np.swapaxes(segment_rotations[:, p], -1, -2) @ segment_rotations[:, i]
    return local


def split_rotation(rotation: np.ndarray, parts: int) -> np.ndarray:
    """The rotation R^(1/parts), so that a chain of ``parts`` equal bones bends smoothly.

    Args:
        rotation: (B, 3, 3).
    Returns:
        (B, 3, 3).
    """
    rotvec = Rotation.from_matrix(rotation).as_rotvec()
    return Rotation.from_rotvec(rotvec / parts).as_matrix()


def check_position_xy(position_xy_m, name: str = "position_xy_m") -> np.ndarray:
    """(2,) finite floor position in metres, or BodyInputError naming ``name``."""
    return check_finite_array(name, position_xy_m, shape=(2,), error=BodyInputError)


def check_heading(heading_rad, name: str = "heading_rad") -> float:
    """A finite heading in radians (any number of turns), or BodyInputError naming ``name``."""
    return check_number(name, heading_rad, error=BodyInputError)


def place_body(vertices: np.ndarray, joints: np.ndarray, heading_rad: float,
               position_xy_m: np.ndarray, floor_offset_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Move a body from its body frame into the room frame.

    The body (facing -y in its frame) is turned about the vertical through its pelvis to face
    ``heading_rad`` (counter-clockwise from +x), its pelvis put above ``position_xy_m``, and it
    is lifted so that its lowest vertex is ``floor_offset_m`` above the floor.

    Args:
        vertices: (V, 3); joints: (15, 3).
    Returns:
        vertices (V, 3), joints (15, 3) in the room frame.
    """
    heading_rad = check_heading(heading_rad)
    position_xy_m = check_position_xy(position_xy_m)
    floor_offset_m = check_number("floor_offset_m", floor_offset_m, 0.0, MAX_FLOOR_OFFSET_M, error=BodyInputError)
    yaw = heading_rad + np.pi / 2  # the body frame faces -y, i.e. heading -90 degrees
    c, s = np.cos(yaw), np.sin(yaw)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    pelvis = joints[JOINT_INDEX["pelvis"]]
    offset = np.array([position_xy_m[0], position_xy_m[1], 0.0])
    v = (vertices - [pelvis[0], pelvis[1], 0.0]) @ rz.T + offset
    j = (joints - [pelvis[0], pelvis[1], 0.0]) @ rz.T + offset
    lift = floor_offset_m - v[:, 2].min()
    v[:, 2] += lift
    j[:, 2] += lift
    return v, j
