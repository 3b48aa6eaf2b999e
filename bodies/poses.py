"""Poses: the paper's daily activities as anatomical joint angles, within joint limits.

A pose is written as anatomical angles in degrees (hip flexion, knee flexion, shoulder abduction,
...; names in :data:`JOINT_LIMITS_DEG`), the language of range-of-motion tables. :func:`segment_rotations`
turns them into the model-independent segment rotations of :mod:`bodies.model` for any body
model's rest skeleton, and :class:`PoseSampler` draws poses per activity, rejects the ones whose
limbs pass through the body, grounds the feet and places the body in the room.

Sign conventions (body facing forward, anatomical position = standing, arms hanging, palms in):
flexion moves a limb forward (knee and elbow: bending), abduction moves it away from the midline,
positive rotation of shoulder or hip is internal; ``torso_lateral`` leans to the body's left;
``pelvis_tilt`` tips the whole upper body forward; ``ankle_dorsi`` lifts the toes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bodies.errors import BodyInputError
from bodies.joints import JOINT_INDEX
from bodies.model import (
    MAX_FLOOR_OFFSET_M, SEGMENT_INDEX, SEGMENTS, BodyModel, PosedBody, RestSkeleton, check_heading, check_position_xy,
    place_body,
)
from bodies.rotations import apply, axis_angle, rot_x, rot_y, rot_z, signed_angle, swing
from bodies.subjects import Subject
from core.checks import check_finite_array, check_number, check_whole

# Anatomical joint limits (degrees), after the AAOS range-of-motion tables, slightly tightened.
JOINT_LIMITS_DEG: dict[str, tuple[float, float]] = {
    "pelvis_tilt": (-15.0, 35.0),
    "torso_flex": (-25.0, 80.0), "torso_lateral": (-30.0, 30.0), "torso_twist": (-40.0, 40.0),
    "neck_flex": (-45.0, 60.0), "neck_rotation": (-70.0, 70.0),
}
for _side in ("l", "r"):
    JOINT_LIMITS_DEG.update({
        f"{_side}_shoulder_flex": (-50.0, 175.0), f"{_side}_shoulder_abd": (-10.0, 170.0),
        f"{_side}_shoulder_rot": (-60.0, 80.0), f"{_side}_elbow_flex": (0.0, 145.0),
        f"{_side}_hip_flex": (-25.0, 125.0), f"{_side}_hip_abd": (-20.0, 45.0),
        f"{_side}_hip_rot": (-40.0, 40.0), f"{_side}_knee_flex": (0.0, 145.0),
        f"{_side}_ankle_dorsi": (-45.0, 25.0),
    })
ANGLE_NAMES: tuple[str, ...] = tuple(JOINT_LIMITS_DEG)

ACTIVITIES: tuple[str, ...] = (
    "standing", "walking", "sitting", "squatting", "jumping", "drinking", "reaching",
    "range_of_motion_arms", "range_of_motion_legs",
)
# Activities whose feet rest on the floor (sitting: on the floor in front of the seat).
FEET_ON_FLOOR = frozenset(ACTIVITIES) - {"jumping"}


def check_activity(activity: str) -> None:
    if not isinstance(activity, str) or activity not in ACTIVITIES:
        raise BodyInputError(f"activity={activity!r} is unknown; choose one of: {', '.join(ACTIVITIES)}")


def clip_to_limits(angles_deg: dict[str, float]) -> dict[str, float]:
    """Every angle named, missing ones 0, all inside :data:`JOINT_LIMITS_DEG`.

    A NaN angle is refused (clipping would keep it and give a NaN body).
    """
    if not isinstance(angles_deg, dict):
        raise BodyInputError(f"angles_deg is a {type(angles_deg).__name__}; pass a dict of joint angle -> degrees")
    unknown = set(angles_deg) - set(JOINT_LIMITS_DEG)
    if unknown:
        raise BodyInputError(f"unknown joint angle(s) {sorted(unknown)}; known: {', '.join(ANGLE_NAMES)}")
    angles = {k: check_number(f"angles_deg[{k!r}]", angles_deg.get(k, 0.0), error=BodyInputError)
              for k in JOINT_LIMITS_DEG}
    return {k: min(max(angles[k], lo), hi) for k, (lo, hi) in JOINT_LIMITS_DEG.items()}


# -- angles -> segment rotations ----------------------------------------------------------------
def segment_rotations(angles_deg: list[dict[str, float]], rest: RestSkeleton) -> np.ndarray:
    """World-aligned segment rotations (B, S, 3, 3) that give each body its anatomical angles.

    Each upper arm and thigh is first swung from its rest direction (A-pose, T-pose, whatever the
    model has) to hang straight down, the anatomical position; there it turns about its own axis
    (internal rotation), then flexion and abduction raise it. Elbows and knees bend about their
    hinge axes, carried along with the parent segment.
    """
    batch = len(angles_deg)
    clipped = [clip_to_limits(d) for d in angles_deg]
    a = {k: np.deg2rad([c[k] for c in clipped]) for k in ANGLE_NAMES}
    R = np.zeros((batch, len(SEGMENTS), 3, 3))
    down = np.tile([0.0, 0.0, -1.0], (batch, 1))
    lateral = np.tile([1.0, 0.0, 0.0], (batch, 1))

    root = rot_x(a["pelvis_tilt"])
    torso = root @ rot_z(a["torso_twist"]) @ rot_y(a["torso_lateral"]) @ rot_x(a["torso_flex"])
    R[:, SEGMENT_INDEX["root"]] = root
    R[:, SEGMENT_INDEX["torso"]] = torso
    R[:, SEGMENT_INDEX["neck"]] = torso @ rot_z(a["neck_rotation"]) @ rot_x(a["neck_flex"])

    for k, s in enumerate(("l", "r")):
        sign = 1.0 if s == "l" else -1.0
        # Arm: bring the rest upper arm to hang down, turn it about its axis, then raise it.
        rest_upper = rest[f"{s}_elbow"] - rest[f"{s}_shoulder"]
        rest_fore = rest[f"{s}_wrist"] - rest[f"{s}_elbow"]
        upper = (torso @ rot_x(-a[f"{s}_shoulder_flex"]) @ rot_y(-sign * a[f"{s}_shoulder_abd"])
                 @ axis_angle(down, sign * a[f"{s}_shoulder_rot"]) @ swing(rest_upper, down))
        hinge = rest.elbow_hinge[:, k]
        rest_flex = signed_angle(rest_upper, rest_fore, hinge)
        fore = axis_angle(apply(upper, hinge), a[f"{s}_elbow_flex"] - rest_flex) @ upper
        R[:, SEGMENT_INDEX[f"{s}_upperarm"]] = upper
        R[:, SEGMENT_INDEX[f"{s}_forearm"]] = fore
        # Leg: the same for the thigh, then bend the knee about the lateral axis, then the ankle.
        rest_thigh = rest[f"{s}_knee"] - rest[f"{s}_hip"]
        rest_shin = rest[f"{s}_ankle"] - rest[f"{s}_knee"]
        thigh = (root @ rot_x(-a[f"{s}_hip_flex"]) @ rot_y(-sign * a[f"{s}_hip_abd"])
                 @ axis_angle(down, sign * a[f"{s}_hip_rot"]) @ swing(rest_thigh, down))
        rest_knee = signed_angle(rest_thigh, rest_shin, lateral)
        knee_axis = apply(thigh, lateral)
        shin = axis_angle(knee_axis, a[f"{s}_knee_flex"] - rest_knee) @ thigh
        foot = axis_angle(apply(shin, lateral), -a[f"{s}_ankle_dorsi"]) @ shin
        R[:, SEGMENT_INDEX[f"{s}_thigh"]] = thigh
        R[:, SEGMENT_INDEX[f"{s}_shin"]] = shin
        R[:, SEGMENT_INDEX[f"{s}_foot"]] = foot
    return R


# -- activity samplers --------------------------------------------------------------------------
def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def _relaxed(rng) -> dict[str, float]:
    """Standing at ease: small, natural deviations from the anatomical position."""
    d = {
        "torso_flex": _u(rng, -3, 8), "torso_lateral": _u(rng, -4, 4), "torso_twist": _u(rng, -8, 8),
        "neck_flex": _u(rng, -10, 15), "neck_rotation": _u(rng, -25, 25),
    }
    for s in ("l", "r"):
        d |= {f"{s}_shoulder_flex": _u(rng, -10, 20), f"{s}_shoulder_abd": _u(rng, 4, 18),
              f"{s}_shoulder_rot": _u(rng, -10, 30), f"{s}_elbow_flex": _u(rng, 5, 35)}
    hip_flex, hip_abd, hip_rot, knee = _u(rng, -3, 6), _u(rng, 0, 8), _u(rng, -10, 5), _u(rng, 0, 8)
    for s in ("l", "r"):  # both soles on the floor: legs mirror each other
        d |= {f"{s}_hip_flex": hip_flex, f"{s}_hip_abd": hip_abd, f"{s}_hip_rot": hip_rot,
              f"{s}_knee_flex": knee, f"{s}_ankle_dorsi": knee * 0.5}
    return d


def _standing(rng):
    return _relaxed(rng)


def _walking(rng):
    d = _relaxed(rng)
    phase = rng.uniform(0, 2 * np.pi)
    stride = _u(rng, 12, 22)
    for s, sign in (("l", 1.0), ("r", -1.0)):
        swing_fwd = np.cos(phase) * sign  # > 0: this leg is swinging forward
        d[f"{s}_hip_flex"] = 7 + stride * np.sin(phase) * sign
        d[f"{s}_knee_flex"] = 6 + 50 * max(0.0, swing_fwd) ** 1.5
        d[f"{s}_ankle_dorsi"] = 5 * np.sin(phase) * sign
        d[f"{s}_hip_abd"] = _u(rng, 0, 5)
        d[f"{s}_shoulder_flex"] = -1.1 * stride * np.sin(phase) * sign + 3  # arms swing opposite
        d[f"{s}_shoulder_abd"] = _u(rng, 5, 12)
        d[f"{s}_elbow_flex"] = _u(rng, 10, 40)
    d["torso_twist"] = -6 * np.sin(phase)
    return d


def _sitting(rng):
    """On a chair: thighs about level (the pelvis's tilt taken into account), shins about
    upright, so that the soles reach the floor and the seat is at knee height."""
    d = _relaxed(rng)
    tilt = _u(rng, -10, 0)
    d |= {"pelvis_tilt": tilt, "torso_flex": _u(rng, 0, 20) - tilt}
    for s in ("l", "r"):
        thigh = _u(rng, 82, 95)  # the thigh's angle from hanging straight down, in the room
        d |= {f"{s}_hip_flex": thigh + tilt, f"{s}_hip_abd": _u(rng, 3, 15),  # the tilt turns the legs too
              f"{s}_hip_rot": _u(rng, -5, 10), f"{s}_knee_flex": thigh + _u(rng, -20, 8),
              f"{s}_ankle_dorsi": _u(rng, -5, 10),
              f"{s}_shoulder_flex": _u(rng, 10, 45), f"{s}_elbow_flex": _u(rng, 40, 95),
              f"{s}_shoulder_rot": _u(rng, 10, 40)}
    return d


def _squatting(rng):
    d = _relaxed(rng)
    knee = _u(rng, 105, 140)
    d |= {"pelvis_tilt": _u(rng, 10, 30), "torso_flex": _u(rng, 5, 30)}
    for s in ("l", "r"):
        d |= {f"{s}_hip_flex": knee * 0.85 + _u(rng, -5, 5), f"{s}_knee_flex": knee,
              f"{s}_hip_abd": _u(rng, 10, 30), f"{s}_hip_rot": _u(rng, -15, 0),
              f"{s}_ankle_dorsi": _u(rng, 15, 25),
              f"{s}_shoulder_flex": _u(rng, 30, 95), f"{s}_elbow_flex": _u(rng, 5, 70)}
    return d


def _jumping(rng):
    d = _relaxed(rng)
    tuck = _u(rng, 5, 55)
    star = rng.random() < 0.5
    for s in ("l", "r"):
        d |= {f"{s}_hip_flex": tuck + _u(rng, -5, 5), f"{s}_knee_flex": tuck * 1.3 + _u(rng, 0, 10),
              f"{s}_ankle_dorsi": _u(rng, -40, -15)}
        if star:  # jumping jack: arms and legs out
            d |= {f"{s}_shoulder_abd": _u(rng, 70, 160), f"{s}_shoulder_flex": _u(rng, -10, 20),
                  f"{s}_hip_abd": _u(rng, 10, 35), f"{s}_elbow_flex": _u(rng, 0, 30)}
        else:  # arms swung up
            d |= {f"{s}_shoulder_flex": _u(rng, 80, 170), f"{s}_shoulder_abd": _u(rng, 5, 40),
                  f"{s}_elbow_flex": _u(rng, 0, 40)}
    return d


def _drinking(rng):
    d = _relaxed(rng)
    d["neck_flex"] = _u(rng, -20, 5)
    side = "l" if rng.random() < 0.5 else "r"
    # A hand-to-mouth arm; PoseSampler refines these four angles to bring the hand to the mouth.
    d |= {f"{side}_shoulder_flex": _u(rng, 25, 70), f"{side}_shoulder_abd": _u(rng, 5, 35),
          f"{side}_shoulder_rot": _u(rng, 20, 70), f"{side}_elbow_flex": _u(rng, 120, 145)}
    d["_drinking_side"] = side
    return d


def _reaching(rng):
    d = _relaxed(rng)
    sides = ["l", "r"] if rng.random() < 0.3 else [("l", "r")[rng.integers(2)]]
    for s in sides:
        d |= {f"{s}_shoulder_flex": _u(rng, 50, 170), f"{s}_shoulder_abd": _u(rng, 0, 80),
              f"{s}_shoulder_rot": _u(rng, -20, 30), f"{s}_elbow_flex": _u(rng, 0, 25)}
    d |= {"torso_flex": _u(rng, -5, 40), "torso_lateral": _u(rng, -20, 20), "torso_twist": _u(rng, -30, 30)}
    return d


def _range_of_motion_arms(rng):
    d = _relaxed(rng)
    for s in ("l", "r"):
        for joint in ("shoulder_flex", "shoulder_abd", "shoulder_rot", "elbow_flex"):
            d[f"{s}_{joint}"] = _u(rng, *JOINT_LIMITS_DEG[f"{s}_{joint}"])
    return d


def _range_of_motion_legs(rng):
    d = _relaxed(rng)
    s = ("l", "r")[rng.integers(2)]
    for joint, (lo, hi) in {"hip_flex": (-20, 110), "hip_abd": (-5, 45), "hip_rot": (-30, 30),
                            "knee_flex": (0, 130), "ankle_dorsi": (-35, 20)}.items():
        d[f"{s}_{joint}"] = _u(rng, lo, hi)
    return d


ACTIVITY_SAMPLERS = {
    "standing": _standing, "walking": _walking, "sitting": _sitting, "squatting": _squatting,
    "jumping": _jumping, "drinking": _drinking, "reaching": _reaching,
    "range_of_motion_arms": _range_of_motion_arms, "range_of_motion_legs": _range_of_motion_legs,
}


# -- self-intersection --------------------------------------------------------------------------
def _segment_distance(p0, p1, q0, q1, samples: int = 12) -> np.ndarray:
    """Approximate distance between segments p0-p1 and q0-q1 (each (B, 3)), to ~1/samples of a length."""
    t = np.linspace(0, 1, samples)[None, :, None]
    P = p0[:, None] + t * (p1 - p0)[:, None]
    Q = q0[:, None] + t * (q1 - q0)[:, None]
    return np.linalg.norm(P[:, :, None] - Q[:, None, :], axis=-1).min(axis=(1, 2))


# Capsules (joint, joint, radius as a fraction of stature) and the pairs that must not interpenetrate.
_CAPSULES = {
    "torso": ("pelvis", "neck", 0.060),
    "head": ("head", "head", 0.050),
    "l_forearm": ("l_elbow", "l_wrist", 0.022), "r_forearm": ("r_elbow", "r_wrist", 0.022),
    "l_thigh": ("l_hip", "l_knee", 0.040), "r_thigh": ("r_hip", "r_knee", 0.040),
    "l_shin": ("l_knee", "l_ankle", 0.026), "r_shin": ("r_knee", "r_ankle", 0.026),
}
_COLLISION_PAIRS = (
    ("l_forearm", "torso"), ("r_forearm", "torso"), ("l_forearm", "r_forearm"),
    ("l_forearm", "head"), ("r_forearm", "head"),
    ("l_thigh", "r_thigh"), ("l_shin", "r_shin"), ("l_shin", "r_thigh"), ("r_shin", "l_thigh"),
)


def interpenetration_m(joints: np.ndarray, statures_m: np.ndarray) -> np.ndarray:
    """Deepest interpenetration (m) between limb capsules for each body; <= 0 means none.

    joints: (B, 15, 3); statures_m: (B,). Returns (B,).
    """
    worst = np.full(len(joints), -np.inf)
    for a, b in _COLLISION_PAIRS:
        (a0, a1, ra), (b0, b1, rb) = _CAPSULES[a], _CAPSULES[b]
        dist = _segment_distance(joints[:, JOINT_INDEX[a0]], joints[:, JOINT_INDEX[a1]],
                                 joints[:, JOINT_INDEX[b0]], joints[:, JOINT_INDEX[b1]])
        worst = np.maximum(worst, (ra + rb) * statures_m - dist)
    return worst


# -- the sampler --------------------------------------------------------------------------------
@dataclass
class PoseSamplerConfig:
    """Attributes:
        activity_weights: relative frequency of each activity (missing: 0).
        jump_height_m: (min, max) height of the soles above the floor while jumping.
        candidates: poses tried at once per body; the first without interpenetration is kept.
        max_interpenetration_m: capsules may overlap this much (soft tissue) before a pose is rejected.
    """

    activity_weights: dict[str, float] = field(default_factory=lambda: {a: 1.0 for a in ACTIVITIES})
    jump_height_m: tuple[float, float] = (0.05, 0.35)
    candidates: int = 8
    max_interpenetration_m: float = 0.02

    def __post_init__(self) -> None:
        if not isinstance(self.activity_weights, dict):
            raise BodyInputError("activity_weights must be a dict of activity -> relative weight")
        for a, weight in self.activity_weights.items():
            check_activity(a)
            self.activity_weights[a] = check_number(f"activity_weights[{a!r}]", weight, 0.0, error=BodyInputError)
        if sum(self.activity_weights.values()) <= 0:
            raise BodyInputError("activity_weights must give at least one activity a positive weight")
        jump = check_finite_array("jump_height_m", self.jump_height_m, shape=(2,), error=BodyInputError)
        lo, hi = jump
        if not 0 < lo <= hi <= MAX_FLOOR_OFFSET_M:
            raise BodyInputError(f"jump_height_m={self.jump_height_m} must satisfy 0 < min <= max "
                                 f"<= {MAX_FLOOR_OFFSET_M:g} m")
        self.jump_height_m = (float(lo), float(hi))
        self.candidates = check_whole("candidates", self.candidates, 1, 1024, error=BodyInputError)
        self.max_interpenetration_m = check_number("max_interpenetration_m", self.max_interpenetration_m,
                                                   0.0, 1.0, error=BodyInputError)


class PoseSampler:
    """Draws posed bodies of a subject doing an activity, placed in the room frame.

    Example::

        model = AnnyBodyModel()
        sampler = PoseSampler(model)
        body = sampler.sample(np.random.default_rng(0), subject, "sitting")
    """

    def __init__(self, model: BodyModel, config: PoseSamplerConfig | None = None):
        if not isinstance(model, BodyModel):
            raise BodyInputError(f"model is a {type(model).__name__}; pass a body model from bodies.load_body_model")
        if config is not None and not isinstance(config, PoseSamplerConfig):
            raise BodyInputError(f"config is a {type(config).__name__}; pass a PoseSamplerConfig or None")
        self.model = model
        self.config = config or PoseSamplerConfig()

    def random_activity(self, rng: np.random.Generator) -> str:
        _check_rng(rng)
        names = list(self.config.activity_weights)
        weights = np.array([self.config.activity_weights[n] for n in names], float)
        return names[rng.choice(len(names), p=weights / weights.sum())]

    def sample(self, rng: np.random.Generator, subject: Subject, activity: str | None = None,
               position_xy_m=(0.0, 0.0), heading_rad: float | None = None) -> PosedBody:
        """A posed body: ``activity`` (random if None), pelvis above ``position_xy_m``,
        facing ``heading_rad`` (random if None)."""
        # every argument checked before the body model runs
        _check_rng(rng)
        _check_subject(subject)
        position_xy = check_position_xy(position_xy_m)
        if heading_rad is not None:
            heading_rad = check_heading(heading_rad)
        activity = activity or self.random_activity(rng)
        check_activity(activity)
        rest = self.model.rest_skeleton([subject])
        candidates = [ACTIVITY_SAMPLERS[activity](rng) for _ in range(self.config.candidates)]
        if activity == "drinking":
            candidates = self._hand_to_mouth(rng, subject, rest, candidates[0])
        angles = [{k: v for k, v in c.items() if not k.startswith("_")} for c in candidates]
        rotations = segment_rotations(angles, _repeat(rest, len(angles)))
        best, vertices, joints, statures = self.model.forward_chosen([subject], rotations, self._first_acceptable)
        if heading_rad is None:
            heading_rad = float(rng.uniform(-np.pi, np.pi))
        lift = float(rng.uniform(*self.config.jump_height_m)) if activity == "jumping" else 0.0
        return self._finish(subject, activity, angles[best], vertices, joints[best],
                            float(statures[best]), position_xy, heading_rad, lift)

    def _first_acceptable(self, joints: np.ndarray, statures: np.ndarray) -> int:
        """Index of the first candidate (B, 15, 3) whose limbs do not interpenetrate, else of the
        least interpenetrating one."""
        penetration = interpenetration_m(joints, statures)
        ok = np.flatnonzero(penetration <= self.config.max_interpenetration_m)
        return int(ok[0]) if len(ok) else int(np.argmin(penetration))

    def pose(self, subject: Subject, angles_deg: dict[str, float], activity: str = "standing",
             position_xy_m=(0.0, 0.0), heading_rad: float = -np.pi / 2,
             floor_offset_m: float = 0.0) -> PosedBody:
        """Pose a subject with given anatomical angles (no sampling, no rejection)."""
        _check_subject(subject)
        check_activity(activity)
        angles = clip_to_limits(angles_deg)
        position_xy, heading_rad = check_position_xy(position_xy_m), check_heading(heading_rad)
        floor_offset_m = _check_floor_offset(floor_offset_m)
        rest = self.model.rest_skeleton([subject])
        vertices, joints, statures = self.model.forward([subject], segment_rotations([angles], rest))
        return self._finish(subject, activity, angles, vertices[0], joints[0], float(statures[0]),
                            position_xy, heading_rad, floor_offset_m)

    def pose_rotations(self, subject: Subject, rotations: np.ndarray, activity: str = "motion_file",
                       position_xy_m=(0.0, 0.0), heading_rad: float = -np.pi / 2,
                       floor_offset_m: float = 0.0) -> list[PosedBody]:
        """Pose a subject with ready segment rotations (B, S, 3, 3), e.g. from
        :func:`bodies.motion.smpl_segment_rotations`; each frame is grounded and placed."""
        _check_subject(subject)
        if not isinstance(activity, str) or not activity:
            raise BodyInputError(f"activity={activity!r}; pass a label (a string) for these frames")
        rotations = _check_rotations(rotations)
        position_xy, heading_rad = check_position_xy(position_xy_m), check_heading(heading_rad)
        floor_offset_m = _check_floor_offset(floor_offset_m)
        vertices, joints, statures = self.model.forward([subject], rotations)
        return [self._finish(subject, activity, {}, v, j, float(st), position_xy, heading_rad, floor_offset_m)
                for v, j, st in zip(vertices, joints, statures)]

    def repose(self, body: PosedBody, angles_deg: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Vertices of ``body``'s subject at other anatomical angles, placed as ``body`` is placed.

        Each pose goes through :func:`place_body` with ``body``'s heading, its pelvis's floor point
        and its lowest vertex's height, as :meth:`sample` and :meth:`pose` place a body; so the same
        angles give ``body.vertices`` back (to float32 rounding), and nearby angles give the nearby
        poses of a trajectory through it (used by :mod:`bodies.velocities`).

        Args:
            body: a placed body; angles_deg: B dicts of anatomical angles (clipped to the limits).
        Returns:
            vertices (B, V, 3) float64 and joints (B, 15, 3), room frame, metres.
        """
        if not isinstance(body, PosedBody):
            raise BodyInputError(f"body is a {type(body).__name__}; pass a PosedBody from this sampler")
        _check_subject(body.subject)
        if not isinstance(angles_deg, (list, tuple)) or not angles_deg:
            raise BodyInputError("angles_deg: give a non-empty list of dicts of joint angle -> degrees")
        angles = [clip_to_limits(a) for a in angles_deg]
        rest = self.model.rest_skeleton([body.subject])
        vertices, joints, _ = self.model.forward([body.subject], segment_rotations(angles, _repeat(rest, len(angles))))
        position_xy = body.joint("pelvis")[:2]
        floor_offset = _check_floor_offset(float(body.vertices[:, 2].min()))
        placed = [place_body(v, j, body.heading_rad, position_xy, floor_offset) for v, j in zip(vertices, joints)]
        return np.stack([v for v, _ in placed]), np.stack([j for _, j in placed])

    def _hand_to_mouth(self, rng, subject, rest, base: dict) -> list[dict]:
        """Drinking: among many arm configurations, keep those that bring the wrist to the mouth."""
        side = base["_drinking_side"]
        trials = []
        for _ in range(48):
            d = dict(base)
            d |= {f"{side}_shoulder_flex": _u(rng, 20, 80), f"{side}_shoulder_abd": _u(rng, 0, 40),
                  f"{side}_shoulder_rot": _u(rng, 10, 80), f"{side}_elbow_flex": _u(rng, 115, 145)}
            trials.append({k: v for k, v in d.items() if not k.startswith("_")})
        joints = self.model.forward_joints([subject], segment_rotations(trials, _repeat(rest, len(trials))))[0]
        mouth = mouth_position(joints)
        wrist = joints[:, JOINT_INDEX[f"{side}_wrist"]]
        order = np.argsort(np.linalg.norm(wrist - mouth, axis=1))
        return [trials[i] for i in order[: self.config.candidates]]

    def _finish(self, subject, activity, angles, vertices, joints, stature, position_xy, heading,
                floor_offset) -> PosedBody:
        vertices, joints = place_body(vertices, joints, heading, position_xy, floor_offset)
        seat_height = seat_center = None
        if activity == "sitting":
            seat_height, seat_center = seat_contact(vertices, joints, stature)
        return PosedBody(
            vertices=vertices.astype(np.float32), faces=self.model.faces, joints=joints,
            stature_m=stature, subject=subject, activity=activity, seat_height_m=seat_height,
            seat_center_xy_m=seat_center, heading_rad=heading, pose_angles_deg=dict(angles),
        )


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise BodyInputError(f"rng is a {type(rng).__name__}; pass a numpy.random.Generator, "
                             "e.g. np.random.default_rng(seed) with a seed >= 0")


def _check_subject(subject) -> None:
    if not isinstance(subject, Subject):
        raise BodyInputError(f"subject is a {type(subject).__name__}; pass a bodies.Subject "
                             "(e.g. from SubjectSampler().sample(rng))")


def _check_floor_offset(floor_offset_m) -> float:
    return check_number("floor_offset_m", floor_offset_m, 0.0, MAX_FLOOR_OFFSET_M, error=BodyInputError)


def _check_rotations(rotations) -> np.ndarray:
    """(B, S, 3, 3) finite rotation matrices (orthonormal, determinant +1)."""
    rotations = check_finite_array("rotations", rotations, shape=(None, len(SEGMENTS), 3, 3), error=BodyInputError)
    if len(rotations) == 0:
        raise BodyInputError("rotations holds no frame; pass (B, S, 3, 3) segment rotations with B >= 1")
    gram = np.swapaxes(rotations, -1, -2) @ rotations
    if not (np.allclose(gram, np.eye(3), atol=1e-4) and np.allclose(np.linalg.det(rotations), 1.0, atol=1e-4)):
        raise BodyInputError("rotations holds matrices that are not rotations (orthonormal, determinant +1); "
                             "pass segment rotations, e.g. from bodies.motion.smpl_segment_rotations")
    return rotations


def _repeat(rest: RestSkeleton, n: int) -> RestSkeleton:
    return RestSkeleton(np.repeat(rest.landmarks, n, 0), np.repeat(rest.elbow_hinge, n, 0))


def mouth_position(joints: np.ndarray) -> np.ndarray:
    """Approximate mouth (B, 3): below the head joint toward the neck, in front of the face."""
    head, neck = joints[:, JOINT_INDEX["head"]], joints[:, JOINT_INDEX["neck"]]
    shoulders = joints[:, JOINT_INDEX["l_shoulder"]] - joints[:, JOINT_INDEX["r_shoulder"]]
    up = head - neck
    forward = np.cross(shoulders, up)  # left x up = forward for a body facing forward
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    return head - 0.45 * up + 0.9 * np.linalg.norm(up, axis=1, keepdims=True) * forward


def seat_contact(vertices: np.ndarray, joints: np.ndarray, stature_m: float | None = None) -> tuple[float, np.ndarray]:
    """Height and centre (room frame) of the surface a sitting body rests on.

    The seat supports the buttocks and the back of the thighs: the lowest vertices near either
    thigh's axis (within a thigh's girth of it), from behind the hip to the middle of the thigh.
    Feet tucked under the thighs lie far from the thigh axis and are not taken for the seat.
    """
    stature_m = stature_m or float(np.ptp(vertices[:, 2])) * 1.3
    girth = 0.085 * stature_m  # thigh radius plus soft tissue, ~0.15 m for an adult
    region = np.zeros(len(vertices), dtype=bool)
    for side in ("l", "r"):
        hip, knee = joints[JOINT_INDEX[f"{side}_hip"]], joints[JOINT_INDEX[f"{side}_knee"]]
        axis = knee - hip
        length = np.linalg.norm(axis)
        axis = axis / max(length, 1e-9)
        rel = vertices - hip
        t = rel @ axis
        radial = np.linalg.norm(rel - np.outer(t, axis), axis=1)
        region |= (t > -0.6 * length) & (t < 0.55 * length) & (radial < girth) & (vertices[:, 2] < hip[2])
    seat_height = float(vertices[region, 2].min())
    touching = region & (vertices[:, 2] < seat_height + 0.02)
    return seat_height, vertices[touching, :2].mean(0)
