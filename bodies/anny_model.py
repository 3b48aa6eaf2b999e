"""Anny, the default body model: free (Apache-2.0), data in its wheel, infants to elders.

Anny (NAVER, 2025) is a MakeHuman-derived model driven by phenotypes (age, gender, height,
weight, muscle, proportions in [0, 1]) and a 104-bone rig. Its rest pose is an A-pose, its body
frame is z up, facing -y, left at +x, root (between the hips) at the origin: the body frame of
:mod:`bodies.model` as it is.

Stature. The ``height`` phenotype moves the rest stature linearly (measured: 0.99, 1.46, 1.94 m at
height 0, 0.5, 1 for a young adult), so the phenotype that reaches a target stature is found by
one linear interpolation between height 0 and 1; a final uniform scale of at most a few percent
takes up the residual and the ages where the target lies outside Anny's range.

Age. Anny's age phenotype interpolates MakeHuman's age targets, placed at equal steps:
newborn (-1/3), baby (0), child (1/3), young (2/3), old (1). MakeHuman puts these at 0, 1, 10, 25
and 90 years; :func:`anny_age_parameter` interpolates linearly between them.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from bodies.errors import BodyInputError
from bodies.joints import JOINT_NAMES
from bodies.model import (
    REST_LANDMARKS, SEGMENT_INDEX, BodyModel, RestSkeleton, local_rotations, split_rotation,
)
from bodies.subjects import Subject

# Subject batches whose rest model is kept: a sampler draws four batch sizes (rest skeleton,
# candidates, hand-to-mouth search, velocity stencil) for each of a room's two subjects; more would
# only keep the last room's (a 48-row entry of the hand-to-mouth search holds about 16 MB).
_REST_CACHE_SIZE = 8

_AGE_ANCHOR_YEARS = np.array([0.0, 1.0, 10.0, 25.0, 90.0])
_AGE_ANCHOR_PARAMETER = np.array([-1 / 3, 0.0, 1 / 3, 2 / 3, 1.0])

# The bone whose head is each joint (head: see _HEAD_FRACTION).
_JOINT_BONES = {
    "neck": "neck02", "head": "head",
    "r_shoulder": "upperarm01.R", "r_elbow": "lowerarm01.R", "r_wrist": "wrist.R",
    "l_shoulder": "upperarm01.L", "l_elbow": "lowerarm01.L", "l_wrist": "wrist.L",
    "r_hip": "upperleg01.R", "r_knee": "lowerleg01.R", "r_ankle": "foot.R",
    "l_hip": "upperleg01.L", "l_knee": "lowerleg01.L", "l_ankle": "foot.L",
}
# The head joint sits this fraction of the way from the skull's base (head bone) to the crown,
# near the centre of the head as in Human3.6M's "Head".
_HEAD_FRACTION = 0.5

# Bones that carry each segment's rotation; a chain of several shares it equally.
_SEGMENT_BONES = {
    "root": ("root",),
    "torso": ("spine05", "spine04", "spine03", "spine02"),
    "neck": ("neck01", "neck02", "neck03"),
    "l_upperarm": ("upperarm01.L",), "l_forearm": ("lowerarm01.L",),
    "r_upperarm": ("upperarm01.R",), "r_forearm": ("lowerarm01.R",),
    "l_thigh": ("upperleg01.L",), "l_shin": ("lowerleg01.L",), "l_foot": ("foot.L",),
    "r_thigh": ("upperleg01.R",), "r_shin": ("lowerleg01.R",), "r_foot": ("foot.R",),
}


#: Anny's skinning methods (``anny.Anny(skinning_method=...)``): plain-torch linear blend skinning, Warp's
#: kernel of the same, and dual quaternions.
SKINNING_METHODS = ("lbs", "warp_lbs", "dqs")

def anny_age_parameter(age_years: np.ndarray | float) -> np.ndarray:
    """Anny's age phenotype for an age in years (see the module docstring)."""
    return np.interp(age_years, _AGE_ANCHOR_YEARS, _AGE_ANCHOR_PARAMETER)


def elbow_hinges(shoulders: np.ndarray, elbows: np.ndarray, wrists: np.ndarray,
                 straight_arm_fallback: np.ndarray) -> np.ndarray:
    """Unit axis about which a positive rotation flexes each elbow in the rest pose.

    A bent rest elbow defines its hinge as upper-arm x forearm. Where the rest arm is straight
    the axis is undefined and ``straight_arm_fallback`` (3,) is used.
    Args: (B, 3) each. Returns (B, 3).
    """
    axis = np.cross(elbows - shoulders, wrists - elbows)
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    upper = np.linalg.norm(elbows - shoulders, axis=-1, keepdims=True)
    fore = np.linalg.norm(wrists - elbows, axis=-1, keepdims=True)
    straight = norm < 0.05 * upper * fore  # less than ~3 degrees of rest flexion
    return np.where(straight, straight_arm_fallback, axis / np.maximum(norm, 1e-12))


class AnnyBodyModel(BodyModel):
    """Anny behind :class:`bodies.model.BodyModel`.

    Build one per process. Skinning is Anny's plain-torch linear blend skinning (``skinning="lbs"``), not its
    default Warp kernel (``"warp_lbs"``): the two agree to float64 rounding (a few 1e-16 m), the Warp one is
    faster per body (about 1.5 against 4 ms on one CPU thread; a frame of generation skins about four bodies),
    but loading Warp costs every process about 120 MB of memory and a first build that compiles its kernels;
    a generation worker then stays under 1 GB. ``"warp_lbs"`` (or ``"dqs"``) is Anny's too, for whoever wants it.

    What depends on the subjects alone (the rest model: phenotype blendshapes, rest skeleton) is
    kept for the last few subject batches, so posing a subject again runs only the forward
    kinematics and the skinning; the arrays are those of a full Anny forward pass, bit for bit.
    """

    name = "anny"

    def __init__(self, device: str = "cpu", skinning: str = "lbs"):
        import anny

        if skinning not in SKINNING_METHODS:
            raise BodyInputError(f"skinning = {skinning!r}: use one of {', '.join(map(repr, SKINNING_METHODS))} "
                                 "(Anny's skinning methods; \"lbs\" needs no Warp)")
        self._model = anny.Anny(skinning_method=skinning).to(device)
        self._device = device
        self._dtype = self._model.dtype
        labels = list(self._model.bone_labels)
        self._bone_index = {b: i for i, b in enumerate(labels)}
        self.faces = self._model.faces.detach().cpu().numpy().astype(np.int64)
        self._phenotype_labels = list(self._model.phenotype_labels)
        self._stature_cache: dict[Subject, tuple[np.ndarray, float]] = {}
        # Rest models (rest vertices, bone heads and poses) of recent subject batches, see _rest_model.
        self._rest_cache: OrderedDict[tuple[Subject, ...], dict[str, torch.Tensor]] = OrderedDict()
        self._skeleton_cache: OrderedDict[tuple[Subject, ...], RestSkeleton] = OrderedDict()

    @property
    def num_vertices(self) -> int:
        return int(self._model.template_vertices.shape[0])

    # -- shape --------------------------------------------------------------------------------
    def _phenotypes(self, subjects: list[Subject], height: np.ndarray) -> torch.Tensor:
        values = {
            "gender": [0.0 if s.sex == "male" else 1.0 for s in subjects],
            "age": anny_age_parameter([s.age_years for s in subjects]),
            "muscle": [s.muscle for s in subjects],
            "weight": [s.weight for s in subjects],
            "height": height,
            "proportions": [s.proportions for s in subjects],
        }
        columns = [np.asarray(values[label], dtype=float) for label in self._phenotype_labels]
        return torch.as_tensor(np.stack(columns, axis=1), dtype=self._dtype, device=self._device)

    def _rest_statures(self, phenotypes: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            rest = self._model.get_rest_model(self._model._get_phenotype_blendshape_coefficients(
                phenotypes,
                torch.zeros(phenotypes.shape[0], len(self._model.local_change_labels), dtype=self._dtype),
                torch.zeros(phenotypes.shape[0], len(self._model.facial_action_labels), dtype=self._dtype),
            ))["rest_vertices"]
        z = rest[..., 2]
        return (z.max(1).values - z.min(1).values).cpu().numpy()

    def forget_subjects(self) -> None:
        """Empty the per-subject caches (statures, rest models, rest skeletons): a room's subjects are new, and the
        last room's rest models (up to about 40 MB: a hand-to-mouth search batches 48 bodies) would otherwise stay
        until pushed out."""
        self._stature_cache.clear()
        self._rest_cache.clear()
        self._skeleton_cache.clear()

    def _shape(self, subjects: list[Subject]) -> tuple[torch.Tensor, np.ndarray]:
        """Phenotypes (B, P) and uniform scales (B,) that give each subject its stature."""
        missing = [s for s in dict.fromkeys(subjects) if s not in self._stature_cache]
        if missing:
            n = len(missing)
            ends = self._rest_statures(self._phenotypes(missing + missing, np.r_[np.zeros(n), np.ones(n)]))
            low, high = ends[:n], ends[n:]
            target = np.array([s.stature_m for s in missing])
            height = np.clip((target - low) / (high - low), 0.0, 1.0)
            reached = self._rest_statures(self._phenotypes(missing, height))
            for s, h, r in zip(missing, height, reached):
                self._stature_cache[s] = (h, s.stature_m / r)
        height = np.array([self._stature_cache[s][0] for s in subjects])
        scale = np.array([self._stature_cache[s][1] for s in subjects])
        return self._phenotypes(subjects, height), scale

    # -- pose ---------------------------------------------------------------------------------
    def _pose_parameters(self, segment_rotations: np.ndarray) -> torch.Tensor:
        local = local_rotations(segment_rotations)
        batch = local.shape[0]
        deltas = np.tile(np.eye(4), (batch, len(self._bone_index), 1, 1))
        for segment, bones in _SEGMENT_BONES.items():
            rotation = local[:, SEGMENT_INDEX[segment]]
            if len(bones) > 1:
                rotation = split_rotation(rotation, len(bones))
            for bone in bones:
                deltas[:, self._bone_index[bone], :3, :3] = rotation
        return torch.as_tensor(deltas, dtype=self._dtype, device=self._device)

    def _rest_model(self, subjects: list[Subject]) -> dict[str, torch.Tensor]:
        """Anny's rest model of a batch of subjects, as ``anny`` returns it: rest_vertices (B, V, 3),
        rest_bone_heads (B, K, 3), rest_bone_poses (B, K, 4, 4), body frame, unscaled.

        The rest model depends on the subjects alone, yet its phenotype blendshapes are most of
        the cost of a forward pass; it is kept for the last few subject batches. The key is the
        whole batch, not each subject: the blendshape sums round differently for different batch
        sizes, and reusing the batch's own result keeps every pose bit for bit what a full Anny
        forward gives.
        """
        key = tuple(subjects)
        rest = self._rest_cache.get(key)
        if rest is None:
            phenotypes, _ = self._shape(subjects)
            model = self._model
            batch = phenotypes.shape[0]
            with torch.no_grad():
                # as Anny's forward does, with no local changes and no facial actions
                coefficients = model._get_phenotype_blendshape_coefficients(
                    phenotypes,
                    torch.zeros(batch, len(model.local_change_labels), dtype=self._dtype, device=self._device),
                    torch.zeros(batch, len(model.facial_action_labels), dtype=self._dtype, device=self._device),
                )
                rest = model.get_rest_model(coefficients)
            _remember(self._rest_cache, key, rest)
        else:
            self._rest_cache.move_to_end(key)
        return rest

    def _pose(self, subjects: list[Subject], segment_rotations: np.ndarray
              ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The rest model (see :meth:`_rest_model`) with ``bone_poses`` (B, K, 4, 4) added, and the
        bone transforms (B, K, 4, 4) that skin the rest mesh, for ``segment_rotations`` (B, S, 3, 3).

        The steps of Anny's ``forward`` up to the skinning, on the cached rest model.
        """
        rest = self._rest_model(subjects)
        with torch.no_grad():
            bone_transforms, bone_poses = self._model.get_bone_transforms(
                self._pose_parameters(segment_rotations), rest["rest_bone_poses"])
        return dict(rest, bone_poses=bone_poses), bone_transforms

    def _skin(self, out: dict[str, torch.Tensor], bone_transforms: torch.Tensor,
              rows: slice = slice(None)) -> torch.Tensor:
        """Skinned vertices (b, V, 3) of the bodies ``rows`` of a batch posed by :meth:`_pose`.

        Each body is skinned on its own (vertex by vertex), so a row skinned alone is the row of
        the whole batch.
        """
        with torch.no_grad():
            return self._model.get_skinned_vertices(out["rest_vertices"][rows], bone_transforms[rows])

    def _arrays(self, out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        arrays = {k: v.cpu().numpy() for k, v in out.items()}
        for k in arrays:  # some are views of the cached rest model: read-only, so that no caller changes it
            if k.startswith("rest_"):
                arrays[k].flags.writeable = False
        return arrays

    def _run(self, subjects: list[Subject], segment_rotations: np.ndarray):
        """Anny's forward pass as numpy arrays (the rest model, ``bone_poses``, ``vertices``) and the
        scales (B,); the same arrays as ``anny.Anny.forward``, with the rest model cached."""
        _, scale = self._shape(subjects)
        out, bone_transforms = self._pose(subjects, segment_rotations)
        out["vertices"] = self._skin(out, bone_transforms)
        return self._arrays(out), scale

    def _skeleton(self, out: dict[str, np.ndarray], scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posed joints (B, 15, 3) and rest statures (B,), metres."""
        rest_z = out["rest_vertices"][..., 2]
        statures = (rest_z.max(1) - rest_z.min(1)) * scale
        return self._joints(out, posed=True) * scale[:, None, None], statures

    def _joints(self, out: dict, posed: bool) -> np.ndarray:
        """(B, 15, 3) joints from bone heads, body frame, unscaled."""
        poses = out["bone_poses" if posed else "rest_bone_poses"]
        rest_poses = out["rest_bone_poses"]
        batch = poses.shape[0]
        joints = np.zeros((batch, len(JOINT_NAMES), 3))
        for i, name in enumerate(JOINT_NAMES):
            if name == "pelvis":
                continue
            joints[:, i] = poses[:, self._bone_index[_JOINT_BONES[name]], :3, 3]
        hips = [JOINT_NAMES.index("l_hip"), JOINT_NAMES.index("r_hip")]
        joints[:, 0] = joints[:, hips].mean(1)
        # Head: a point of the head bone between the skull's base and the crown, moved rigidly.
        head_bone = self._bone_index["head"]
        rest_head = rest_poses[:, head_bone, :3, 3].copy()
        crown_z = out["rest_vertices"][..., 2].max(1)
        rest_head[:, 2] += _HEAD_FRACTION * (crown_z - rest_head[:, 2])
        rigid = poses[:, head_bone] @ np.linalg.inv(rest_poses[:, head_bone])
        joints[:, JOINT_NAMES.index("head")] = (
            np.einsum("bij,bj->bi", rigid[:, :3, :3], rest_head) + rigid[:, :3, 3]
        )
        return joints

    def rest_skeleton(self, subjects: list[Subject]) -> RestSkeleton:
        # a sampler asks for it at every pose of a subject: kept, and handed out as copies
        key = tuple(subjects)
        rest = self._skeleton_cache.get(key)
        if rest is None:
            rest = _remember(self._skeleton_cache, key, self._rest_skeleton(subjects))
        else:
            self._skeleton_cache.move_to_end(key)
        return RestSkeleton(landmarks=rest.landmarks.copy(), elbow_hinge=rest.elbow_hinge.copy())

    def _rest_skeleton(self, subjects: list[Subject]) -> RestSkeleton:
        # the rest model alone: no pose, no skinning
        out, scale = self._arrays(self._rest_model(subjects)), self._shape(subjects)[1]
        joints = self._joints(out, posed=False)
        heads = out["rest_bone_poses"][..., :3, 3]
        toes = [heads[:, self._bone_index["toe2-1.L"]], heads[:, self._bone_index["toe2-1.R"]]]
        crown = out["rest_vertices"][np.arange(len(subjects)), out["rest_vertices"][..., 2].argmax(1)]
        landmarks = np.concatenate([joints, np.stack(toes, 1), crown[:, None]], axis=1)
        assert landmarks.shape[1] == len(REST_LANDMARKS)
        landmarks *= scale[:, None, None]
        j = {n: landmarks[:, REST_LANDMARKS.index(n)] for n in REST_LANDMARKS}
        hinges = np.stack([
            elbow_hinges(j[f"{s}_shoulder"], j[f"{s}_elbow"], j[f"{s}_wrist"],
                         np.array([0.0, 0.0, -1.0 if s == "l" else 1.0]))
            for s in ("l", "r")
        ], axis=1)
        return RestSkeleton(landmarks=landmarks, elbow_hinge=hinges)

    def forward(self, subjects, segment_rotations):
        subjects = _one_per_body(subjects, segment_rotations)
        out, scale = self._run(subjects, segment_rotations)
        joints, statures = self._skeleton(out, scale)
        return out["vertices"] * scale[:, None, None], joints, statures

    def forward_joints(self, subjects, segment_rotations):
        # forward kinematics alone: the joints come from the bones and the rest mesh
        subjects = _one_per_body(subjects, segment_rotations)
        _, scale = self._shape(subjects)
        out, _ = self._pose(subjects, segment_rotations)
        return self._skeleton(self._arrays(out), scale)

    def forward_chosen(self, subjects, segment_rotations, choose):
        # the whole batch's skeletons, then the chosen body's mesh alone (its row of the batch)
        subjects = _one_per_body(subjects, segment_rotations)
        _, scale = self._shape(subjects)
        out, bone_transforms = self._pose(subjects, segment_rotations)
        joints, statures = self._skeleton(self._arrays(out), scale)
        index = int(choose(joints, statures))
        vertices = self._skin(out, bone_transforms, slice(index, index + 1)).cpu().numpy()[0]
        return index, vertices * scale[index], joints, statures


def _remember(cache: OrderedDict, key, value):
    """Put ``value`` in the LRU ``cache``, dropping the least recently used beyond its size."""
    cache[key] = value
    while len(cache) > _REST_CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _one_per_body(subjects: list[Subject], segment_rotations: np.ndarray) -> list[Subject]:
    """B subjects for B poses: one subject is shared by the whole batch."""
    if len(subjects) == 1 and segment_rotations.shape[0] > 1:
        return subjects * segment_rotations.shape[0]
    return subjects
