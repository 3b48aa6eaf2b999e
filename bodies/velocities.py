"""Body velocities: how fast every vertex moves at the instant a body was posed.

A chirp lasts 100 ms, and a walking body moves ~10 cm in that time, so the echo's delays drift
within a frame (the acoustic side of ``simulator`` turns these velocities into that drift). The
velocities come from a smooth pose trajectory through the sampled pose: every anatomical angle of
``body.pose_angles_deg`` moves at a drawn rate (deg/s) suited to the activity, and the whole body
moves with a root velocity (m/s). The body is posed at the angles a half step before and a half
step after, placed as the body is placed (:meth:`bodies.poses.PoseSampler.repose`), and

    v = (V(+step/2) - V(-step/2)) / step + root velocity

(central differences: error of order step², and the two poses average to the sampled one to
that order). Because both poses are placed like the body, the pelvis keeps its floor point and
the lowest vertex its height: a stance foot pushes the body up or down, not through the floor,
and the horizontal motion of the pelvis is the root velocity alone.

Activities (ranges in :data:`DEFAULT_ACTIVITY_MOTION`, every one a documented field):

- walking: the gait of :func:`bodies.poses._walking` differentiated in its phase, the phase
  read back from the pose (the leg whose knee is bent swings forward), at a stride frequency of
  0.8-1.0 Hz; root velocity 0.5-1.5 m/s along ``body.heading_rad``.
- standing, sitting: postural sway only (a few deg/s), legs moving together.
- squatting: both legs bend or straighten together; jumping: legs tuck, arms swing, the root
  moves up or down as in a ballistic flight.
- drinking, reaching, range_of_motion_arms: the active arm(s) move at up to ~150-200 deg/s per
  angle, enough for the hand to reach 2 m/s; range_of_motion_legs: the moving leg.

Limits. A rate that would carry an angle past its joint limit within the step is set to 0: a
smooth trajectory that touches a limit turns there, so the joint rests on its stop. Then, if a
hand vertex moves faster than ``max_hand_speed_m_s`` or any vertex faster than
``max_vertex_speed_m_s``, all angular rates are scaled down by one factor until none does (the
root velocity is kept; :class:`MotionModel` checks it alone stays below the caps). Scaling the
differenced velocities by s is the derivative of the trajectory with rates s x rate (differenced at
step s x step), so the scaled field stays a true pose trajectory's velocity.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from bodies.errors import BodyInputError
from bodies.joints import JOINT_INDEX
from bodies.model import PosedBody
from bodies.poses import ACTIVITIES, ANGLE_NAMES, JOINT_LIMITS_DEG, PoseSampler, clip_to_limits
from core.checks import check_finite_array, check_number

#: Finite-difference step (s). Small enough that the step² error stays far below a mm/s for limbs
#: turning at a few rad/s, large enough that float rounding of the vertices (float64 here) is negligible.
DEFAULT_STEP_S = 2e-3

# The gait of bodies.poses._walking (hip = 7 + stride sin(phase) sign, knee = 6 + 50 max(0, cos(phase)
# sign)^1.5, ...): the constants it uses, so that its trajectory can be differentiated here.
_GAIT_STRIDE_DEG = (12.0, 22.0)
_GAIT_KNEE_SWING_DEG = 50.0
_GAIT_ANKLE_DEG = 5.0
_GAIT_ARM_RATIO = 1.1
_GAIT_TWIST_DEG = 6.0
# Elbows flex as the arm swings forward, with about half the shoulder's excursion.
_GAIT_ELBOW_RATIO = 0.5

# A hand: vertices within a hand's length of the wrist (hand length ~0.108 x stature) on the far
# side of the wrist, as seen from the elbow.
_HAND_REACH_OF_STATURE = 0.12
_HAND_BEHIND_WRIST_OF_STATURE = 0.01

_ARM_ANGLES = ("shoulder_flex", "shoulder_abd", "shoulder_rot", "elbow_flex")
_LEG_ANGLES = ("hip_flex", "hip_abd", "hip_rot", "knee_flex", "ankle_dorsi")


def _check_range(name: str, value, high: float, unit: str) -> tuple[float, float]:
    """(low, high) with 0 <= low <= high <= ``high``, or BodyInputError naming ``name``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise BodyInputError(f"{name} = {value!r}: a range is two numbers (low, high); "
                             f"give e.g. (0.0, 1.0) in {unit}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi < lo:
        raise BodyInputError(f"{name} = {value!r}: a range of magnitudes needs 0 <= low <= high; "
                             f"give two finite numbers in {unit} in that order")
    if hi > high:
        raise BodyInputError(f"{name} = {value!r}: {hi:g} {unit} is faster than a body moves; "
                             f"give an upper end <= {high:g}")
    return lo, hi


@dataclass(frozen=True)
class ActivityMotion:
    """How fast one activity moves (magnitudes; directions and signs are drawn).

    Attributes:
        root_speed_m_s: (low, high) horizontal speed of the whole body, m/s: along the heading
            when walking, in a random horizontal direction otherwise (shifting weight, shuffling).
        vertical_speed_m_s: (low, high) vertical speed of the whole body, m/s, up or down at random
            (jumping: a frame at a uniformly random instant of a ballistic flight that leaves the
            floor at v0 has |v_z| uniform in [0, v0]).
        sway_rate_deg_s: (low, high) rate of every angle the activity does not drive, deg/s
            (postural sway).
        limb_rate_deg_s: (low, high) rate of the angles the activity drives (the drinking or
            reaching arm, the squatting legs, ...), deg/s; unused when walking (the gait sets them).
    """

    root_speed_m_s: tuple[float, float] = (0.0, 0.05)
    vertical_speed_m_s: tuple[float, float] = (0.0, 0.0)
    sway_rate_deg_s: tuple[float, float] = (0.0, 5.0)
    limb_rate_deg_s: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name, high, unit in (("root_speed_m_s", 10.0, "m/s"), ("vertical_speed_m_s", 10.0, "m/s"),
                                 ("sway_rate_deg_s", 2000.0, "deg/s"), ("limb_rate_deg_s", 2000.0, "deg/s")):
            object.__setattr__(self, name, _check_range(f"ActivityMotion.{name}", getattr(self, name), high, unit))

    @property
    def max_root_speed_m_s(self) -> float:
        return float(np.hypot(self.root_speed_m_s[1], self.vertical_speed_m_s[1]))


#: Per-activity defaults. Sway: quiet standing sways ~1-2 deg at ~0.3 Hz (a few deg/s). Squatting:
#: ~100 deg of knee in ~1.5 s. Drinking: hand to mouth in ~1 s. Reaching and arm range of motion:
#: shoulder rates of 150-200 deg/s give hand speeds up to ~2 m/s. Jumping: take-off at 1.5 m/s is
#: an 11 cm rise, kept below the 2 m/s hand cap (a 35 cm jump would leave the floor at 2.6 m/s).
DEFAULT_ACTIVITY_MOTION = MappingProxyType({
    "standing": ActivityMotion((0.0, 0.05), (0.0, 0.0), (0.0, 5.0)),
    "walking": ActivityMotion((0.5, 1.5), (0.0, 0.0), (0.0, 10.0)),
    "sitting": ActivityMotion((0.0, 0.02), (0.0, 0.0), (0.0, 4.0)),
    "squatting": ActivityMotion((0.0, 0.05), (0.0, 0.0), (0.0, 5.0), (0.0, 70.0)),
    "jumping": ActivityMotion((0.0, 0.3), (0.0, 1.5), (0.0, 10.0), (0.0, 150.0)),
    "drinking": ActivityMotion((0.0, 0.05), (0.0, 0.0), (0.0, 5.0), (0.0, 120.0)),
    "reaching": ActivityMotion((0.0, 0.1), (0.0, 0.0), (0.0, 10.0), (0.0, 150.0)),
    "range_of_motion_arms": ActivityMotion((0.0, 0.05), (0.0, 0.0), (0.0, 5.0), (0.0, 200.0)),
    "range_of_motion_legs": ActivityMotion((0.0, 0.05), (0.0, 0.0), (0.0, 5.0), (0.0, 120.0)),
})


@dataclass(frozen=True)
class MotionModel:
    """How bodies move during a chirp frame.

    Attributes:
        activities: :class:`ActivityMotion` per activity; activities left out keep
            :data:`DEFAULT_ACTIVITY_MOTION`.
        stride_frequency_hz: (low, high) full gait cycles per second when walking (a cadence of
            ~100-120 steps per minute).
        max_hand_speed_m_s: no hand vertex moves faster (room frame, m/s).
        max_vertex_speed_m_s: no vertex moves faster (m/s); the default allows a swinging foot at
            about 2.5 times a brisk walking speed.
        step_s: finite-difference step, seconds.
    """

    activities: dict = field(default_factory=dict)
    stride_frequency_hz: tuple[float, float] = (0.8, 1.0)
    max_hand_speed_m_s: float = 2.0
    max_vertex_speed_m_s: float = 4.0
    step_s: float = DEFAULT_STEP_S

    def __post_init__(self) -> None:
        if not isinstance(self.activities, dict):
            raise BodyInputError(f"MotionModel.activities = {self.activities!r}: give a dict of activity -> "
                                 "ActivityMotion")
        for activity, motion in self.activities.items():
            if activity not in ACTIVITIES:
                raise BodyInputError(f"MotionModel.activities[{activity!r}]: not an activity; use one of "
                                     f"{', '.join(ACTIVITIES)}")
            if not isinstance(motion, ActivityMotion):
                raise BodyInputError(f"MotionModel.activities[{activity!r}] = {motion!r}: give an ActivityMotion")
        merged = dict(DEFAULT_ACTIVITY_MOTION) | dict(self.activities)
        object.__setattr__(self, "activities", MappingProxyType(merged))
        lo, hi = _check_range("MotionModel.stride_frequency_hz", self.stride_frequency_hz, 3.0, "Hz")
        if lo <= 0:
            raise BodyInputError(f"MotionModel.stride_frequency_hz = {self.stride_frequency_hz!r}: a walking gait "
                                 "has a positive stride frequency; give e.g. (0.8, 1.0)")
        object.__setattr__(self, "stride_frequency_hz", (lo, hi))
        hand = check_number("MotionModel.max_hand_speed_m_s", self.max_hand_speed_m_s, 0.0, 20.0, low_open=True,
                            error=BodyInputError)
        vertex = check_number("MotionModel.max_vertex_speed_m_s", self.max_vertex_speed_m_s, hand, 20.0,
                              error=BodyInputError)
        object.__setattr__(self, "max_hand_speed_m_s", hand)
        object.__setattr__(self, "max_vertex_speed_m_s", vertex)
        object.__setattr__(self, "step_s", check_number("MotionModel.step_s", self.step_s, 0.0, 0.02,
                                                        low_open=True, error=BodyInputError))
        for activity, motion in merged.items():
            # The caps scale the angular rates only: the root alone must stay below them.
            if motion.max_root_speed_m_s >= hand:
                raise BodyInputError(
                    f"MotionModel.activities[{activity!r}] root speed up to {motion.max_root_speed_m_s:g} m/s: "
                    f"not below max_hand_speed_m_s = {hand:g}, so no limb motion could keep the hands under it; "
                    "lower root_speed_m_s / vertical_speed_m_s or raise max_hand_speed_m_s")


@dataclass(frozen=True)
class BodyMotion:
    """The motion drawn for one body.

    Attributes:
        angle_rates_deg_s: rate of every anatomical angle (deg/s), after stops and caps.
        root_velocity_m_s: (3,) velocity of the whole body, room frame.
        vertex_velocities_m_s: (V, 3) velocity of every vertex, room frame.
        rate_scale: factor (0, 1] the caps applied to the drawn angular rates.
    """

    angle_rates_deg_s: dict
    root_velocity_m_s: np.ndarray
    vertex_velocities_m_s: np.ndarray
    rate_scale: float


# -- drawing rates ------------------------------------------------------------------------------
def _signed(rng, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi) * rng.choice((-1.0, 1.0)))


def _gait_rates(rng, angles: dict, stride_frequency_hz: tuple[float, float]) -> dict[str, float]:
    """Rates (deg/s) of the walking gait through ``angles``.

    The phase is read back from the pose: (l_hip - r_hip) / 2 = stride sin(phase) and the knee
    difference gives cos(phase) (the bent knee is the leg swinging forward).
    """
    omega = 2 * np.pi * float(rng.uniform(*stride_frequency_hz))
    along = (angles["l_hip_flex"] - angles["r_hip_flex"]) / 2
    knees = angles["l_knee_flex"] - angles["r_knee_flex"]
    cos = float(np.sign(knees) * min(1.0, abs(knees) / _GAIT_KNEE_SWING_DEG) ** (2 / 3))
    sin = float(np.sign(along) or 1.0) * np.sqrt(max(0.0, 1.0 - cos**2))
    # Near the ends of the swing sin ~ 0 and along / sin is ill-conditioned: the stride's range bounds it.
    stride = abs(along) / abs(sin) if abs(sin) > 1e-3 else float(rng.uniform(*_GAIT_STRIDE_DEG))
    stride = float(np.clip(stride, *_GAIT_STRIDE_DEG))
    rates = {"torso_twist": -_GAIT_TWIST_DEG * cos * omega}
    for s, sign in (("l", 1.0), ("r", -1.0)):
        swing = cos * sign
        rates[f"{s}_hip_flex"] = sign * stride * cos * omega
        rates[f"{s}_knee_flex"] = 1.5 * _GAIT_KNEE_SWING_DEG * np.sqrt(max(0.0, swing)) * (-sin * sign) * omega
        rates[f"{s}_ankle_dorsi"] = _GAIT_ANKLE_DEG * sign * cos * omega
        rates[f"{s}_shoulder_flex"] = -_GAIT_ARM_RATIO * sign * stride * cos * omega
        rates[f"{s}_elbow_flex"] = _GAIT_ELBOW_RATIO * rates[f"{s}_shoulder_flex"]
    return rates


def _active_arms(activity: str, angles: dict) -> tuple[str, ...]:
    if activity == "drinking":  # the hand-to-mouth arm is the bent one
        return (max(("l", "r"), key=lambda s: angles[f"{s}_elbow_flex"]),)
    if activity == "reaching":  # reaching raises the arm(s) >= 50 deg; relaxed arms stay below 20
        raised = tuple(s for s in ("l", "r") if angles[f"{s}_shoulder_flex"] >= 35.0)
        return raised or (max(("l", "r"), key=lambda s: angles[f"{s}_shoulder_flex"]),)
    return ("l", "r")


def _limb_rates(rng, activity: str, angles: dict, limb: tuple[float, float]) -> dict[str, float]:
    """Rates (deg/s) of the angles ``activity`` drives; the others sway."""
    rates: dict[str, float] = {}
    if activity in ("drinking", "reaching", "range_of_motion_arms"):
        for s in _active_arms(activity, angles):
            rates |= {f"{s}_{a}": _signed(rng, *limb) for a in _ARM_ANGLES}
    elif activity == "range_of_motion_legs":
        # the moved leg is the one furthest from the relaxed stance
        s = max(("l", "r"), key=lambda s: sum(abs(angles[f"{s}_{a}"]) for a in ("hip_flex", "hip_abd", "knee_flex")))
        rates |= {f"{s}_{a}": _signed(rng, *limb) for a in _LEG_ANGLES}
    elif activity == "squatting":  # both legs together, hips following the knees as in the sampler
        knee = _signed(rng, *limb)
        for s in ("l", "r"):
            rates |= {f"{s}_knee_flex": knee, f"{s}_hip_flex": 0.85 * knee}
    elif activity == "jumping":  # legs tuck or extend together (knee 1.3 x hip), arms swing together
        hip, arm = _signed(rng, *limb) / 1.3, _signed(rng, *limb)
        for s in ("l", "r"):
            rates |= {f"{s}_hip_flex": hip, f"{s}_knee_flex": 1.3 * hip, f"{s}_shoulder_flex": arm,
                      f"{s}_shoulder_abd": arm * float(rng.uniform(-0.5, 0.5))}
    return rates


def _sway_rates(rng, activity: str, sway: tuple[float, float]) -> dict[str, float]:
    rates = {k: _signed(rng, *sway) for k in ANGLE_NAMES}
    if activity not in ("walking", "range_of_motion_legs"):
        # both soles stay on the floor: the legs sway together, as the sampler mirrors them
        for a in _LEG_ANGLES:
            rates[f"r_{a}"] = rates[f"l_{a}"]
    return rates


def stop_at_limits(angles_deg: dict[str, float], rates_deg_s: dict[str, float], step_s: float) -> dict[str, float]:
    """``rates_deg_s`` with 0 for every angle whose stencil angle -/+ rate * step / 2 leaves its joint limits.

    A smooth trajectory that reaches a limit turns there, so the joint rests on its stop; a
    one-sided difference would instead move it at full rate into the limit.
    Args:
        angles_deg: every angle of :data:`bodies.poses.JOINT_LIMITS_DEG` (clipped); rates_deg_s: any subset.
    Returns:
        dict over every angle name, deg/s.
    """
    out = {}
    for k, (lo, hi) in JOINT_LIMITS_DEG.items():
        r = float(rates_deg_s.get(k, 0.0))
        half = abs(r) * step_s / 2
        out[k] = r if lo <= angles_deg[k] - half and angles_deg[k] + half <= hi else 0.0
    return out


def draw_rates(rng: np.random.Generator, body: PosedBody, model: MotionModel | None = None
               ) -> tuple[dict[str, float], np.ndarray]:
    """Angular rates and a root velocity for ``body``'s activity (no model evaluation).

    Returns:
        angle rates (every angle name -> deg/s, stops applied) and the root velocity (3,), room frame, m/s.
    """
    model = _check_model(model)
    angles = _angles_of(body)
    spec = model.activities[body.activity]
    rates = _sway_rates(rng, body.activity, spec.sway_rate_deg_s)
    if body.activity == "walking":
        rates |= _gait_rates(rng, angles, model.stride_frequency_hz)
        direction = float(body.heading_rad)
    else:
        rates |= _limb_rates(rng, body.activity, angles, spec.limb_rate_deg_s)
        direction = float(rng.uniform(-np.pi, np.pi))
    speed = float(rng.uniform(*spec.root_speed_m_s))
    root = np.array([speed * np.cos(direction), speed * np.sin(direction), _signed(rng, *spec.vertical_speed_m_s)])
    return stop_at_limits(angles, rates, model.step_s), root


# -- kinematics -----------------------------------------------------------------------------------
def _stencil(body: PosedBody, angle_rates_deg_s, step_s) -> tuple[dict, dict, float]:
    """Angles half a step before and after ``body`` (rates into a stop taken as 0), and the checked step."""
    angles = _angles_of(body)
    step_s = check_number("step_s", step_s, 0.0, 0.02, low_open=True, error=BodyInputError)
    rates = stop_at_limits(angles, _check_rates(angle_rates_deg_s), step_s)
    before = {k: angles[k] - rates[k] * step_s / 2 for k in ANGLE_NAMES}
    after = {k: angles[k] + rates[k] * step_s / 2 for k in ANGLE_NAMES}
    return before, after, step_s


def differenced_poses(sampler: PoseSampler, body: PosedBody, angle_rates_deg_s: dict[str, float],
                      step_s: float = DEFAULT_STEP_S) -> np.ndarray:
    """The two poses of the trajectory half a step before and after ``body``: (2, V, 3) float64, metres.

    Angles move at ``angle_rates_deg_s`` (missing: 0; rates into a stop are taken as 0, see
    :func:`stop_at_limits`); both poses are placed as ``body`` is (:meth:`PoseSampler.repose`).
    """
    _check_sampler(sampler)
    before, after, _ = _stencil(body, angle_rates_deg_s, step_s)
    return sampler.repose(body, [before, after])[0]


def vertex_velocities(sampler: PoseSampler, body: PosedBody, angle_rates_deg_s: dict[str, float],
                      root_velocity_m_s=(0.0, 0.0, 0.0), step_s: float = DEFAULT_STEP_S) -> np.ndarray:
    """Velocity (V, 3) of every vertex, room frame, m/s, for given rates: no drawing, no caps.

    Args:
        angle_rates_deg_s: anatomical angle -> deg/s (missing: 0).
        root_velocity_m_s: (3,) velocity added to every vertex.
        step_s: central-difference step, seconds.
    """
    root = check_finite_array("root_velocity_m_s", root_velocity_m_s, shape=(3,), error=BodyInputError)
    before, after = differenced_poses(sampler, body, angle_rates_deg_s, step_s)
    return (after - before) / step_s + root


# Arms held out sideways: nothing but the hand lies near and past the wrist, as it may in the
# sampled pose (a hand at the mouth or beside the thigh).
_HAND_MASK_ANGLES = {"l_shoulder_abd": 90.0, "r_shoulder_abd": 90.0}


def _hand_mask(vertices: np.ndarray, joints: np.ndarray, stature_m: float) -> np.ndarray:
    """(V,) True within a hand's length of a wrist and past it (seen from the elbow); (V, 3), (15, 3) in."""
    mask = np.zeros(len(vertices), dtype=bool)
    for s in ("l", "r"):
        wrist, elbow = joints[JOINT_INDEX[f"{s}_wrist"]], joints[JOINT_INDEX[f"{s}_elbow"]]
        along = (wrist - elbow) / max(np.linalg.norm(wrist - elbow), 1e-9)
        rel = vertices - wrist
        mask |= (np.linalg.norm(rel, axis=1) <= _HAND_REACH_OF_STATURE * stature_m) & \
                (rel @ along >= -_HAND_BEHIND_WRIST_OF_STATURE * stature_m)
    return mask


def hand_vertex_mask(sampler: PoseSampler, body: PosedBody) -> np.ndarray:
    """(V,) True for the vertices of either hand of ``body``'s mesh (found with the arms held out)."""
    _check_sampler(sampler)
    vertices, joints = sampler.repose(body, [_HAND_MASK_ANGLES])
    return _hand_mask(vertices[0], joints[0], body.stature_m)


def _cap_scale(relative: np.ndarray, root: np.ndarray, limit: float) -> float:
    """Largest s in [0, 1] with |root + s relative_i| <= limit for every row; |root| < limit."""
    a = np.einsum("ij,ij->i", relative, relative)
    b = relative @ root
    c = float(root @ root) - limit**2
    moving = a > 0
    if not moving.any():
        return 1.0
    s = (-b[moving] + np.sqrt(b[moving] ** 2 - a[moving] * c)) / a[moving]
    # a hair below the root so that rounding cannot leave a vertex just over the cap
    return float(min(1.0, s.min() * (1 - 1e-9)))


def draw_velocities(sampler: PoseSampler, body: PosedBody, rng: np.random.Generator,
                    model: MotionModel | None = None) -> BodyMotion:
    """Draw a motion for ``body`` and its vertex velocities, within the model's speed caps.

    One extra batch of the body model (the two differenced poses and an arms-out pose that finds
    the hands) plus the subject's rest skeleton.
    """
    _check_sampler(sampler)
    if not isinstance(rng, np.random.Generator):
        raise BodyInputError(f"rng = {type(rng).__name__}: give a numpy.random.Generator, e.g. np.random.default_rng(0)")
    model = _check_model(model)
    rates, root = draw_rates(rng, body, model)
    before, after, step_s = _stencil(body, rates, model.step_s)
    # one batch: the two differenced poses and the arms-out pose that finds the hands
    vertices, joints = sampler.repose(body, [before, after, _HAND_MASK_ANGLES])
    relative = (vertices[1] - vertices[0]) / step_s
    hands = _hand_mask(vertices[2], joints[2], body.stature_m)
    scale = min(_cap_scale(relative[hands], root, model.max_hand_speed_m_s) if hands.any() else 1.0,
                _cap_scale(relative, root, model.max_vertex_speed_m_s))
    return BodyMotion(angle_rates_deg_s={k: r * scale for k, r in rates.items()}, root_velocity_m_s=root,
                      vertex_velocities_m_s=scale * relative + root, rate_scale=scale)


def with_velocities(sampler: PoseSampler, body: PosedBody, rng: np.random.Generator,
                    model: MotionModel | None = None) -> PosedBody:
    """The same body with ``vertex_velocities_m_s`` (V, 3), room frame, m/s, drawn for its activity.

    Example::

        body = with_velocities(sampler, sampler.sample(rng, subject, "walking"), rng)
        body.vertex_velocities_m_s  # (V, 3)
    """
    motion = draw_velocities(sampler, body, rng, model)
    return replace(body, vertex_velocities_m_s=motion.vertex_velocities_m_s)


# -- checks ---------------------------------------------------------------------------------------
def _check_model(model) -> MotionModel:
    if model is None:
        return MotionModel()
    if not isinstance(model, MotionModel):
        raise BodyInputError(f"model = {type(model).__name__}: give a bodies.MotionModel or None for the defaults")
    return model


def _check_sampler(sampler) -> None:
    if not isinstance(sampler, PoseSampler):
        raise BodyInputError(f"sampler = {type(sampler).__name__}: give the PoseSampler that made the body")


def _angles_of(body: PosedBody) -> dict[str, float]:
    """The body's anatomical angles as the model posed them (clipped to the limits)."""
    if not isinstance(body, PosedBody):
        raise BodyInputError(f"body = {type(body).__name__}: give a PosedBody from PoseSampler.sample or .pose")
    if body.activity not in ACTIVITIES:
        raise BodyInputError(f"body.activity = {body.activity!r}: velocities are drawn per activity; "
                             f"give a body doing one of {', '.join(ACTIVITIES)}")
    if not body.pose_angles_deg:
        raise BodyInputError("body.pose_angles_deg = {}: velocities move anatomical angles; give a body from "
                             "PoseSampler.sample or PoseSampler.pose (not pose_rotations)")
    return clip_to_limits({k: float(v) for k, v in body.pose_angles_deg.items()})


def _check_rates(rates) -> dict[str, float]:
    if not isinstance(rates, dict):
        raise BodyInputError(f"angle_rates_deg_s = {type(rates).__name__}: give a dict of joint angle -> deg/s")
    unknown = sorted(set(rates) - set(ANGLE_NAMES))
    if unknown:
        raise BodyInputError(f"angle_rates_deg_s has unknown angle(s) {unknown}: use names of "
                             f"bodies.JOINT_LIMITS_DEG ({', '.join(ANGLE_NAMES)})")
    return {k: check_number(f"angle_rates_deg_s[{k!r}]", v, error=BodyInputError) for k, v in rates.items()}
