"""Readers for 2D keypoint files (OpenPose BODY_25, COCO), mapped to the project's 15 joints.

Output: (15, 3) float arrays of (u, v, confidence) in image pixels, in
:data:`bodies.joints.JOINT_NAMES` order; confidence 0 means "not detected".

Mapping choices:
* pelvis: BODY_25 MidHip (8); COCO: midpoint of the hips (11, 12).
* neck: BODY_25 Neck (1); COCO: midpoint of the shoulders (5, 6).
* head: our head joint is the centre of the head (Human3.6M "Head", FrankMocap index 43), so we
  take the midpoint of the ears, which lie on the head's centre line; if an ear is missing, the
  midpoint of the eyes; if an eye is missing, the nose. (BODY_25: ears 17/18, eyes 15/16, nose 0;
  COCO: ears 3/4, eyes 1/2, nose 0.)
* shoulders, elbows, wrists, hips, knees, ankles: the same-named keypoint.
* a midpoint's confidence is the smaller of its two keypoints' confidences.

Confidence: OpenPose's third value is used as is (clipped to [0, 1]). COCO ground-truth
annotations carry a visibility flag v: 2 (visible) -> 1.0, 1 (labelled, not visible) ->
``COCO_OCCLUDED_CONFIDENCE`` = 0.5, 0 (not labelled) -> 0. COCO *results* files
(a list of {image_id, category_id, keypoints, score}) carry per-keypoint scores, used as is.

Several people: the one with the highest mean confidence over our 15 joints is returned.
No person: all zeros, with a warning. Keypoints outside the image (when its size is known):
confidence set to 0, with a warning, because a detector cannot see them and they would land
on the heatmap border.
"""
from __future__ import annotations

from core.errors import InputError
import json
import warnings
from pathlib import Path

import numpy as np

from bodies.joints import JOINT_NAMES

NUM_JOINTS = len(JOINT_NAMES)
COCO_OCCLUDED_CONFIDENCE = 0.5

# Same-named joints: our name -> index in each format.
BODY25_DIRECT = {
    "neck": 1, "pelvis": 8,
    "r_shoulder": 2, "r_elbow": 3, "r_wrist": 4, "l_shoulder": 5, "l_elbow": 6, "l_wrist": 7,
    "r_hip": 9, "r_knee": 10, "r_ankle": 11, "l_hip": 12, "l_knee": 13, "l_ankle": 14,
}
BODY25_HEAD = {"nose": 0, "r_eye": 15, "l_eye": 16, "r_ear": 17, "l_ear": 18}
COCO17_DIRECT = {
    "l_shoulder": 5, "r_shoulder": 6, "l_elbow": 7, "r_elbow": 8, "l_wrist": 9, "r_wrist": 10,
    "l_hip": 11, "r_hip": 12, "l_knee": 13, "r_knee": 14, "l_ankle": 15, "r_ankle": 16,
}
COCO17_HEAD = {"nose": 0, "l_eye": 1, "r_eye": 2, "l_ear": 3, "r_ear": 4}


class KeypointFileError(InputError):
    """A keypoint file is unreadable or lacks a field."""


def _midpoint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a[2] <= 0 or b[2] <= 0:
        return np.zeros(3)
    return np.r_[(a[:2] + b[:2]) / 2, min(a[2], b[2])]


def _head(keypoints: np.ndarray, index: dict[str, int]) -> np.ndarray:
    for left, right in (("l_ear", "r_ear"), ("l_eye", "r_eye")):
        point = _midpoint(keypoints[index[left]], keypoints[index[right]])
        if point[2] > 0:
            return point
    nose = keypoints[index["nose"]]
    return nose.copy() if nose[2] > 0 else np.zeros(3)


def body25_to_joints15(keypoints25) -> np.ndarray:
    """(25, 3) OpenPose BODY_25 keypoints -> (15, 3) in JOINT_NAMES order."""
    keypoints = np.asarray(keypoints25, dtype=float).reshape(25, 3)
    out = np.zeros((NUM_JOINTS, 3))
    for name, i in BODY25_DIRECT.items():
        out[JOINT_NAMES.index(name)] = keypoints[i]
    if out[JOINT_NAMES.index("pelvis"), 2] <= 0:
        out[JOINT_NAMES.index("pelvis")] = _midpoint(keypoints[9], keypoints[12])
    out[JOINT_NAMES.index("head")] = _head(keypoints, BODY25_HEAD)
    out[:, 2] = np.clip(out[:, 2], 0.0, 1.0)
    out[out[:, 2] <= 0] = 0.0
    return out


def coco17_to_joints15(keypoints17) -> np.ndarray:
    """(17, 3) COCO keypoints (third value a confidence in [0, 1]) -> (15, 3) in JOINT_NAMES order."""
    keypoints = np.asarray(keypoints17, dtype=float).reshape(17, 3)
    out = np.zeros((NUM_JOINTS, 3))
    for name, i in COCO17_DIRECT.items():
        out[JOINT_NAMES.index(name)] = keypoints[i]
    out[JOINT_NAMES.index("pelvis")] = _midpoint(keypoints[11], keypoints[12])
    out[JOINT_NAMES.index("neck")] = _midpoint(keypoints[5], keypoints[6])
    out[JOINT_NAMES.index("head")] = _head(keypoints, COCO17_HEAD)
    out[:, 2] = np.clip(out[:, 2], 0.0, 1.0)
    out[out[:, 2] <= 0] = 0.0
    return out


def _load_json(path: Path):
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise KeypointFileError(f"{path}: no such keypoint file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KeypointFileError(f"{path}: not valid JSON ({error}); re-export it from the detector") from None
    except OSError as error:
        raise KeypointFileError(f"{path}: cannot be read ({error.strerror or error})") from None


def _flat_keypoints(values, count: int, path: Path, field: str) -> np.ndarray:
    """A flat JSON list of 3 * ``count`` finite numbers -> (count, 3).

    Strings, booleans and nulls are refused rather than converted: ``"12.5"`` or ``true`` in a keypoint
    file means the file was written by something other than the detector.
    """
    fix = f"give a flat list of {3 * count} numbers, [x, y, confidence] for each of {count} keypoints"
    if not isinstance(values, list):
        raise KeypointFileError(f"{path}: {field} is a JSON {type(values).__name__}; {fix}")
    if len(values) != 3 * count:
        raise KeypointFileError(f"{path}: {field} holds {len(values)} values; {fix}")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise KeypointFileError(f"{path}: {field}[{i}] = {json.dumps(value)}; {fix} (finite JSON numbers)")
    return np.asarray(values, dtype=float).reshape(count, 3)


def _best_person(people: list[np.ndarray], path: Path, image_size_px) -> np.ndarray:
    if not people:
        warnings.warn(f"{path}: no person detected; returning zero-confidence keypoints", stacklevel=3)
        return np.zeros((NUM_JOINTS, 3))
    best = max(people, key=lambda p: p[:, 2].mean())
    return _zero_outside(best, image_size_px, path)


def _zero_outside(keypoints: np.ndarray, image_size_px, path: Path) -> np.ndarray:
    if image_size_px is None:
        return keypoints
    width, height = (float(v) for v in image_size_px)
    u, v, confidence = keypoints.T
    outside = (confidence > 0) & ((u < -0.5) | (u > width - 0.5) | (v < -0.5) | (v > height - 0.5))
    if np.any(outside):
        names = [JOINT_NAMES[i] for i in np.flatnonzero(outside)]
        warnings.warn(f"{path}: keypoints {names} lie outside the {width:g} x {height:g} image; "
                      "their confidence is set to 0", stacklevel=4)
        keypoints = keypoints.copy()
        keypoints[outside, 2] = 0.0
    return keypoints


def read_openpose_json(path, image_size_px=None) -> np.ndarray:
    """One OpenPose BODY_25 file (``{"people": [{"pose_keypoints_2d": [x, y, c] * 25}, ...]}``).

    Args:
        path: the ``*_keypoints.json`` file.
        image_size_px: optional (width, height); keypoints outside get confidence 0.
    Returns:
        (15, 3) (u, v, confidence) of the most confident person.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise KeypointFileError(f'{path}: expected an OpenPose object with a "people" list')
    people = []
    for i, person in enumerate(data["people"]):
        if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
            raise KeypointFileError(f"{path}: people[{i}] has no pose_keypoints_2d (BODY_25 output expected)")
        values = person["pose_keypoints_2d"]
        if isinstance(values, list) and len(values) == 3 * 18:
            raise KeypointFileError(
                f"{path}: people[{i}].pose_keypoints_2d has 18 keypoints (COCO-18 model); run OpenPose with "
                "--model_pose BODY_25"
            )
        people.append(body25_to_joints15(_flat_keypoints(values, 25, path, f"people[{i}].pose_keypoints_2d")))
    return _best_person(people, path, image_size_px)


def read_coco_json(path, image_id=None, image_size_px=None) -> np.ndarray:
    """A COCO keypoint file: an annotation file (``{"annotations": [...], "images": [...]}``) or a
    results list (``[{"image_id", "category_id", "keypoints", "score"}, ...]``).

    Args:
        path: the JSON file.
        image_id: which image's people to consider; required when the file holds several images.
        image_size_px: optional (width, height); taken from the file's ``images`` entry if absent.
    Returns:
        (15, 3) (u, v, confidence) of the most confident person.
    """
    path = Path(path)
    data = _load_json(path)
    if isinstance(data, dict):
        if not isinstance(data.get("annotations"), list):
            raise KeypointFileError(f'{path}: expected a COCO object with an "annotations" list, or a results list')
        entries, field, is_results = data["annotations"], "annotations", False
        images = {im.get("id"): im for im in data.get("images", []) if isinstance(im, dict)}
    elif isinstance(data, list):
        entries, field, is_results, images = data, "results", True, {}
    else:
        raise KeypointFileError(f"{path}: expected a COCO annotation object or a results list")

    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "keypoints" not in entry:
            raise KeypointFileError(f"{path}: {field}[{i}] has no keypoints ([x, y, v] * 17)")
    image_ids = sorted({entry.get("image_id") for entry in entries}, key=str)
    if image_id is None:
        if len(image_ids) > 1:
            raise KeypointFileError(
                f"{path}: holds keypoints of {len(image_ids)} images; pass image_id= (one of {image_ids[:5]}...)"
            )
        image_id = image_ids[0] if image_ids else None
    elif image_id not in image_ids:
        raise KeypointFileError(f"{path}: no keypoints for image_id={image_id!r}")

    if image_size_px is None and image_id in images and "width" in images[image_id] and "height" in images[image_id]:
        image_size_px = (images[image_id]["width"], images[image_id]["height"])

    people = []
    for i, entry in enumerate(entries):
        if entry.get("image_id") != image_id:
            continue
        keypoints = _flat_keypoints(entry["keypoints"], 17, path, f"{field}[{i}].keypoints")
        if not is_results:
            visibility = keypoints[:, 2]
            if not np.all(np.isin(visibility, (0, 1, 2))):
                raise KeypointFileError(f"{path}: {field}[{i}].keypoints visibility flags must be 0, 1 or 2")
            keypoints[:, 2] = np.select([visibility == 2, visibility == 1], [1.0, COCO_OCCLUDED_CONFIDENCE], 0.0)
        people.append(coco17_to_joints15(keypoints))
    return _best_person(people, path, image_size_px)
