"""A model of an off-the-shelf 2D pose detector (OpenPose-like), for synthetic and dataset frames.

The paper feeds its network OpenPose detections. Synthetic frames and the PoseKernel dataset (which
ships no images) get detections by projecting the true 3D joints and corrupting them the way a
detector does:

* pixel noise: isotropic Gaussian, per axis std
      sigma_px = noise_px_at_input / image_scale * max(min_noise_factor, 1 + noise_growth_per_m * (z - reference_depth_m))
  where image_scale = min(1, detector_input_height_px / image height): a detector runs at a fixed
  input height (OpenPose: 368 px) and errs by about the same number of *its* pixels, so the error
  in image pixels grows as the image is shrunk more to fit it (inversely with that scale), and it
  grows with the joint's depth z (a farther person has fewer pixels per limb);
* occluded joints (hidden by another body part, see :func:`occluded_joints`): noise multiplied by
  ``occluded_noise_factor``, lower confidence, missed with probability ``occluded_miss_prob``;
* any joint missed with probability ``miss_prob``;
* a left/right limb pair (:data:`bodies.joints.LEFT_RIGHT_PAIRS`) swapped with probability
  ``swap_prob`` per pair and frame (the detector labels the left wrist as the right one);
* confidence: Gaussian around ``confidence_mean`` (``occluded_confidence_mean`` for occluded
  joints), less ``confidence_drop_per_m`` per metre of depth beyond ``reference_depth_m`` and up to
  ``border_confidence_drop`` near the image border (linearly over the outer ``border_margin_frac``
  of the width / height, measured at the true projection), clipped to [``min_confidence``, 1].
  It is drawn independently of the pixel error just drawn: a detector does not know its own error,
  and a confidence that did would tell the network how wrong each keypoint is. It depends only on
  what a detector's score does depend on (occlusion, scale, position in the image).

Output rows follow :data:`bodies.joints.JOINT_NAMES`: (u, v, confidence) in pixels. Missed joints
and joints behind the camera are (0, 0, 0) as OpenPose writes them; keypoints that land outside
the image keep their (u, v) and get confidence 0.

How the default noise compares with published detector errors (numbers as published):

* OpenPose (Cao et al., "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields",
  CVPR 2017) runs at a 368 px input height by default and reports 61.8 AP on COCO test-dev (65.3 AP
  on COCO val for the later OpenPose release, Cao et al., TPAMI 2021); HRNet-W32 at 256 x 192
  (Sun et al., "Deep High-Resolution Representation Learning for Human Pose Estimation", CVPR 2019)
  reports 74.4 AP on COCO val; on MPII, PCKh@0.5 is 88.5 % for convolutional pose machines (Wei et
  al., CVPR 2016, OpenPose's single-person ancestor), 90.9 % for stacked hourglasses (Newell et al.,
  ECCV 2016) and 92.3 % for HRNet-W32.
* COCO's keypoint similarity (OKS) is built from the per-keypoint standard deviation of human
  annotations relative to the object scale s = sqrt(segment area) (COCO keypoint evaluation,
  cocoapi ``sigmas``): 0.026 nose, 0.079 shoulders, 0.072 elbows, 0.062 wrists, 0.107 hips, 0.087
  knees, 0.089 ankles. For a standing adult s is roughly 0.4 x stature, so annotators scatter by
  ~2.5 % (wrists) to ~4 % (hips) of stature; an AP of 60-75 means detections of COCO's varied, often
  small and crowded people are on average wider than that.
* This model's default, 1.5 px per axis at the 368 px input for a joint 3 m away, is a mean radial
  error of 1.5 * sqrt(pi / 2) = 1.9 input px, i.e. 1.1 % of a 1.7 m person (176 input px tall at 3 m
  behind a 914 px-focal, 1080 px-high camera) and 5.5 image px in a 1080 px image: the tight end,
  a single unoccluded person in a well-lit room, below COCO's annotator spread. Occluded joints
  (x 2.5), far joints (+15 % per metre), misses (2 %, 30 % when occluded) and left/right swaps (2 %
  per pair) give the wide tail that the published AP figures reflect; raise ``noise_px_at_input``
  to study detectors at the COCO-like end (about 2-3x the default).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from bodies.joints import JOINT_INDEX, JOINT_NAMES, LEFT_RIGHT_PAIRS
from core.errors import InputError

NUM_JOINTS = len(JOINT_NAMES)
SWAP_INDEX_PAIRS = np.array([(JOINT_INDEX[a], JOINT_INDEX[b]) for a, b in LEFT_RIGHT_PAIRS])


class DetectorInputError(InputError):
    """The detector model was given an invalid configuration or input."""


@dataclass(frozen=True)
class DetectorConfig:
    """Error model of the 2D detector (see module docstring for the formulas).

    Attributes:
        noise_px_at_input: per-axis pixel std, in detector-input pixels, at ``reference_depth_m``.
        detector_input_height_px: the height images are resized to before detection.
        reference_depth_m: depth at which the noise equals ``noise_px_at_input``.
        noise_growth_per_m: relative growth of the std per metre of depth beyond the reference.
        min_noise_factor: floor of the depth factor (near joints).
        occluded_noise_factor: std multiplier for occluded joints.
        miss_prob: probability that any joint is not detected.
        occluded_miss_prob: probability that an occluded joint is not detected.
        swap_prob: probability, per left/right limb pair and frame, that the pair is swapped.
        confidence_mean, confidence_std: confidence of a visible joint near the image centre at
            ``reference_depth_m`` (mean and std of its Gaussian draw).
        occluded_confidence_mean: the same for an occluded joint.
        confidence_drop_per_m: confidence lost per metre of depth beyond ``reference_depth_m``.
        border_margin_frac: width of the band along the image border, as a fraction of the image's
            width (for u) and height (for v), over which confidence falls.
        border_confidence_drop: confidence lost by a joint projected onto the image border.
        min_confidence: floor of the confidence of a detected joint.
    """

    noise_px_at_input: float = 1.5
    detector_input_height_px: int = 368
    reference_depth_m: float = 3.0
    noise_growth_per_m: float = 0.15
    min_noise_factor: float = 0.5
    occluded_noise_factor: float = 2.5
    miss_prob: float = 0.02
    occluded_miss_prob: float = 0.3
    swap_prob: float = 0.02
    confidence_mean: float = 0.8
    confidence_std: float = 0.08
    occluded_confidence_mean: float = 0.4
    confidence_drop_per_m: float = 0.03
    border_margin_frac: float = 0.05
    border_confidence_drop: float = 0.2
    min_confidence: float = 0.05

    def __post_init__(self) -> None:
        for name in ("miss_prob", "occluded_miss_prob", "swap_prob", "confidence_mean",
                     "occluded_confidence_mean", "min_confidence", "border_margin_frac",
                     "border_confidence_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise DetectorInputError(f"DetectorConfig.{name}={value} must be a probability in [0, 1]")
        for name in ("noise_px_at_input", "noise_growth_per_m", "min_noise_factor", "occluded_noise_factor",
                     "confidence_std", "confidence_drop_per_m"):
            if not getattr(self, name) >= 0:
                raise DetectorInputError(f"DetectorConfig.{name}={getattr(self, name)} must be >= 0")
        if self.detector_input_height_px <= 0 or self.reference_depth_m <= 0:
            raise DetectorInputError(
                "DetectorConfig.detector_input_height_px and reference_depth_m must be positive "
                f"(got {self.detector_input_height_px}, {self.reference_depth_m})"
            )

    def noise_sigma_px(self, depth_m, image_height_px: float) -> np.ndarray:
        """Per-axis pixel std of a visible joint at ``depth_m`` (...,) in an image ``image_height_px`` high."""
        image_scale = min(1.0, self.detector_input_height_px / float(image_height_px))
        depth_factor = np.maximum(self.min_noise_factor,
                                  1.0 + self.noise_growth_per_m * (np.asarray(depth_m, float) - self.reference_depth_m))
        return self.noise_px_at_input / image_scale * depth_factor

    def mean_confidence(self, depth_m, uv_px, image_size_px, occluded) -> np.ndarray:
        """Mean confidence (before the Gaussian draw and clipping) of joints at ``depth_m`` (N,), projected
        at ``uv_px`` (N, 2) in an image of ``image_size_px`` (width, height), ``occluded`` (N,) bool."""
        base = np.where(np.asarray(occluded, bool), self.occluded_confidence_mean, self.confidence_mean)
        far_m = np.maximum(0.0, np.asarray(depth_m, float) - self.reference_depth_m)
        size = np.asarray(image_size_px, float)
        uv = np.asarray(uv_px, float)
        # distance to the nearest border, per axis, in units of that axis's margin (0 on the border)
        to_border = np.minimum(uv + 0.5, size - 0.5 - uv) / np.maximum(self.border_margin_frac * size, 1e-9)
        border = np.clip(1.0 - to_border.min(axis=1), 0.0, 1.0) if self.border_margin_frac > 0 else 0.0
        return base - self.confidence_drop_per_m * far_m - self.border_confidence_drop * border


class DetectorModel:
    """Turns true camera-frame joints into detector-like 2D keypoints.

    Example::

        detector = DetectorModel(DetectorConfig())
        keypoints = detector.detect(joints_camera_m, camera.intrinsics, camera.image_size_px, rng)
    """

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()

    def detect(self, joints_camera_m, intrinsics, image_size_px, rng: np.random.Generator,
               occluded=None) -> np.ndarray:
        """Detections of one person.

        Args:
            joints_camera_m: (15, 3) true joints, camera frame (OpenCV), metres.
            intrinsics: (3, 3) camera matrix, pixels.
            image_size_px: (width, height).
            rng: the only source of randomness (same state, same output).
            occluded: optional (15,) bool, True for joints hidden by the body.
        Returns:
            (15, 3) (u, v, confidence), :data:`bodies.joints.JOINT_NAMES` order.
        """
        cfg = self.config
        joints = np.asarray(joints_camera_m, dtype=float)
        if joints.shape != (NUM_JOINTS, 3) or not np.all(np.isfinite(joints)):
            raise DetectorInputError(f"joints_camera_m must be finite with shape ({NUM_JOINTS}, 3), got {joints.shape}")
        k = np.asarray(intrinsics, dtype=float)
        if k.shape != (3, 3) or not np.allclose(k[2], [0, 0, 1]) or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise DetectorInputError("intrinsics must be a 3x3 camera matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]]")
        width, height = (float(v) for v in image_size_px)
        if width <= 0 or height <= 0:
            raise DetectorInputError(f"image_size_px={image_size_px!r} must be (width, height) in pixels")
        occluded = np.zeros(NUM_JOINTS, bool) if occluded is None else np.asarray(occluded, bool).reshape(-1)
        if occluded.shape != (NUM_JOINTS,):
            raise DetectorInputError(f"occluded must be a ({NUM_JOINTS},) bool array, got {occluded.shape}")

        # Every random draw has a fixed shape, so the stream does not depend on the data.
        unit_noise = rng.standard_normal((NUM_JOINTS, 2))
        confidence_noise = rng.standard_normal(NUM_JOINTS)
        miss_draw = rng.random(NUM_JOINTS)
        occluded_miss_draw = rng.random(NUM_JOINTS)
        swap_draw = rng.random(len(SWAP_INDEX_PAIRS))

        depth = joints[:, 2]
        in_front = depth > 1e-3
        safe_depth = np.where(in_front, depth, 1.0)
        projected = (joints @ k.T)[:, :2] / safe_depth[:, None]

        sigma = cfg.noise_sigma_px(safe_depth, height)
        sigma = np.where(occluded, sigma * cfg.occluded_noise_factor, sigma)
        error = unit_noise * sigma[:, None]
        uv = projected + error

        # From the true projection, not the noisy one, and never from the error: independent of it.
        mean = cfg.mean_confidence(safe_depth, projected, (width, height), occluded)
        confidence = mean + cfg.confidence_std * confidence_noise
        confidence = np.clip(confidence, cfg.min_confidence, 1.0)

        keypoints = np.concatenate([uv, confidence[:, None]], axis=1)
        missed = (miss_draw < cfg.miss_prob) | (occluded & (occluded_miss_draw < cfg.occluded_miss_prob)) | ~in_front
        keypoints[missed] = 0.0

        for (a, b), draw in zip(SWAP_INDEX_PAIRS, swap_draw):
            if draw < cfg.swap_prob:
                keypoints[[a, b]] = keypoints[[b, a]]

        outside = (keypoints[:, 0] < -0.5) | (keypoints[:, 0] > width - 0.5) | \
                  (keypoints[:, 1] < -0.5) | (keypoints[:, 1] > height - 0.5)
        keypoints[outside & ~missed, 2] = 0.0
        return keypoints


# How far in front of each joint the surface of its own body part may lie before the joint counts
# as hidden (metres). A joint sits inside its limb: ~0.03-0.07 m deep in a limb, up to ~0.12 m for
# a hip seen from the front and ~0.21 m for the pelvis (the torso's centre) seen from the side,
# measured on Anny bodies; beyond that, another body part is in front.
JOINT_THICKNESS_M: dict[str, float] = {name: 0.12 for name in JOINT_NAMES} | {
    "pelvis": 0.25, "r_hip": 0.16, "l_hip": 0.16, "head": 0.14,
}


def occluded_joints(vertices_camera_m, faces, joints_camera_m, thickness_m=None) -> np.ndarray:
    """Which joints another body part hides from the camera.

    A ray goes from the camera centre (the origin) to each joint. A joint lies inside its own
    body part, so the ray always enters the body a little before it; the joint counts as occluded
    when the first surface hit lies more than that part's thickness in front of the joint.

    Args:
        vertices_camera_m: (V, 3) body mesh, camera frame.
        faces: (F, 3) triangle indices.
        joints_camera_m: (15, 3) joints, camera frame.
        thickness_m: a float for all joints, a (15,) array, or None for :data:`JOINT_THICKNESS_M`.
    Returns:
        (15,) bool, True = occluded.
    """
    vertices = np.asarray(vertices_camera_m, dtype=float)
    faces = np.asarray(faces)
    joints = np.asarray(joints_camera_m, dtype=float)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise DetectorInputError(f"vertices (V, 3) and faces (F, 3) expected, got {vertices.shape} and {faces.shape}")
    if joints.shape != (NUM_JOINTS, 3):
        raise DetectorInputError(f"joints_camera_m must have shape ({NUM_JOINTS}, 3), got {joints.shape}")
    if thickness_m is None:
        thickness_m = np.array([JOINT_THICKNESS_M[name] for name in JOINT_NAMES])
    thickness_m = np.broadcast_to(np.asarray(thickness_m, dtype=float), (NUM_JOINTS,))
    distance_to_joint = np.linalg.norm(joints, axis=1)
    directions = joints / np.maximum(distance_to_joint, 1e-12)[:, None]
    first_hit = first_hit_distances(vertices, np.ascontiguousarray(faces, dtype=np.int64), directions)
    return first_hit < distance_to_joint - thickness_m


def first_hit_distances(vertices: np.ndarray, faces: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(R,) distance from the origin along each unit direction (R, 3) to the first triangle of the mesh
    ((V, 3) vertices, (F, 3) int64 faces) that the ray meets, either side; inf where it meets none.

    Every ray against every triangle (Moller-Trumbore, float64): for the detector's 15 rays that is a few
    milliseconds, where building a ray-tracing BVH of the 27k-face body costs about 15."""
    return _first_hits(np.ascontiguousarray(vertices, dtype=np.float64), faces,
                       np.ascontiguousarray(directions, dtype=np.float64))


@njit(cache=True)
def _first_hits(vertices, faces, directions):
    n_rays = directions.shape[0]
    best = np.full(n_rays, np.inf)
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        ox, oy, oz = vertices[a, 0], vertices[a, 1], vertices[a, 2]
        e1x, e1y, e1z = vertices[b, 0] - ox, vertices[b, 1] - oy, vertices[b, 2] - oz
        e2x, e2y, e2z = vertices[c, 0] - ox, vertices[c, 1] - oy, vertices[c, 2] - oz
        # the rays start at the origin: the vector from the triangle's first corner to it is -o
        tx, ty, tz = -ox, -oy, -oz
        qx, qy, qz = ty * e1z - tz * e1y, tz * e1x - tx * e1z, tx * e1y - ty * e1x
        q_e2 = qx * e2x + qy * e2y + qz * e2z
        for r in range(n_rays):
            dx, dy, dz = directions[r, 0], directions[r, 1], directions[r, 2]
            px, py, pz = dy * e2z - dz * e2y, dz * e2x - dx * e2z, dx * e2y - dy * e2x
            det = e1x * px + e1y * py + e1z * pz
            if abs(det) < 1e-15:              # the ray is parallel to the triangle's plane
                continue
            inv = 1.0 / det
            u = (tx * px + ty * py + tz * pz) * inv
            if u < 0.0 or u > 1.0:
                continue
            v = (dx * qx + dy * qy + dz * qz) * inv
            if v < 0.0 or u + v > 1.0:
                continue
            t = q_e2 * inv
            if 0.0 < t < best[r]:
                best[r] = t
    return best
