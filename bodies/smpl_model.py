"""SMPL and SMPL-X through ``smplx``, for users who hold the licence-gated model files.

The files are not redistributable: register at https://smpl.is.tue.mpg.de (SMPL) or
https://smpl-x.is.tue.mpg.de (SMPL-X), download, and point the tool at the folder with
``--smpl-dir DIR`` or ``SMPL_MODEL_DIR=DIR``. Looked for, in ``DIR`` and ``DIR/smpl`` (``DIR/smplx``):
``SMPL_{FEMALE,MALE,NEUTRAL}.pkl`` (SMPL) and ``SMPLX_{FEMALE,MALE,NEUTRAL}.npz`` or ``.pkl`` (SMPL-X).
A subject's sex picks the gendered model when present, else the neutral one.

Frames: SMPL is y up, facing +z; this backend turns it into the body frame of
:mod:`bodies.model` (z up, facing -y, left at +x) with the rotation ``SMPL_TO_BODY``, and moves the
origin to the pelvis joint. Stature: SMPL's shape space is adult; the backend keeps zero shape
coefficients and scales uniformly to the subject's stature (for children this gives adult
proportions; Anny is the better model for minors).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from bodies.errors import BodyModelFilesMissing
from bodies.joints import JOINT_NAMES
from bodies.model import REST_LANDMARKS, SEGMENT_INDEX, BodyModel, RestSkeleton, local_rotations, split_rotation
from bodies.anny_model import elbow_hinges
from bodies.subjects import Subject

# SMPL's y-up, +z-facing frame to the body frame (z up, facing -y): x -> x, y -> z, z -> -y.
SMPL_TO_BODY = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# SMPL / SMPL-X body joints (the first 22 agree) behind our joints and landmarks.
SMPL_JOINT = {
    "neck": 12, "head": 15,
    "l_shoulder": 16, "r_shoulder": 17, "l_elbow": 18, "r_elbow": 19, "l_wrist": 20, "r_wrist": 21,
    "l_hip": 1, "r_hip": 2, "l_knee": 4, "r_knee": 5, "l_ankle": 7, "r_ankle": 8,
    "l_toe": 10, "r_toe": 11,
}
# SMPL joints that carry each segment's rotation (0 is the global orientation).
_SEGMENT_JOINTS = {
    "root": (0,), "torso": (3, 6, 9), "neck": (12, 15),
    "l_upperarm": (16,), "l_forearm": (18,), "r_upperarm": (17,), "r_forearm": (19,),
    "l_thigh": (1,), "l_shin": (4,), "l_foot": (7,), "r_thigh": (2,), "r_shin": (5,), "r_foot": (8,),
}
_DOWNLOAD = {"smpl": "https://smpl.is.tue.mpg.de", "smplx": "https://smpl-x.is.tue.mpg.de"}


def find_model_file(model_dir: str | Path | None, model_type: str, gender: str) -> Path:
    """Path of ``SMPL_<GENDER>.pkl`` / ``SMPLX_<GENDER>.npz`` under ``model_dir``, or a clear error."""
    prefix = "SMPL" if model_type == "smpl" else "SMPLX"
    exts = ("pkl",) if model_type == "smpl" else ("npz", "pkl")
    how = (f"register and download {model_type.upper()} from {_DOWNLOAD[model_type]}, then pass "
           f"--smpl-dir DIR or set SMPL_MODEL_DIR=DIR (DIR holding {prefix}_NEUTRAL.{exts[0]}, "
           f"directly or in DIR/{model_type}/)")
    if model_dir is None:
        raise BodyModelFilesMissing(f"no {model_type.upper()} model folder given: {how}")
    model_dir = Path(model_dir).expanduser()
    if model_dir.is_file():
        return model_dir
    for folder in (model_dir, model_dir / model_type):
        for g in (gender, "neutral"):
            for ext in exts:
                path = folder / f"{prefix}_{g.upper()}.{ext}"
                if path.is_file():
                    return path
    raise BodyModelFilesMissing(f"{model_type.upper()} model files not found in {model_dir}: {how}")


class SmplBodyModel(BodyModel):
    """SMPL or SMPL-X behind :class:`bodies.model.BodyModel` (see the module docstring)."""

    def __init__(self, model_dir: str | Path | None, model_type: str = "smpl", device: str = "cpu"):
        if model_type not in ("smpl", "smplx"):
            raise ValueError(f"model_type={model_type!r} must be 'smpl' or 'smplx'")
        self.name = model_type
        self._model_dir = model_dir
        self._model_type = model_type
        self._device = device
        self._models: dict[str, torch.nn.Module] = {}
        # Fail now, not at the first pose, when no file is there.
        self._load("neutral")
        self.faces = np.asarray(next(iter(self._models.values())).faces, dtype=np.int64)

    def _load(self, gender: str) -> torch.nn.Module:
        path = find_model_file(self._model_dir, self._model_type, gender)
        key = str(path)
        if key not in self._models:
            import smplx

            cls = smplx.SMPL if self._model_type == "smpl" else smplx.SMPLX
            kwargs = {} if self._model_type == "smpl" else {"use_pca": False}
            self._models[key] = cls(model_path=str(path), dtype=torch.float64, **kwargs).to(self._device)
        return self._models[key]

    def _smpl_forward(self, subject: Subject, local: np.ndarray):
        """Vertices and joints (body frame, unscaled, origin at the pelvis) for (B, S, 3, 3) local rotations."""
        model = self._load(subject.sex)
        batch = local.shape[0]
        n_body = model.NUM_BODY_JOINTS
        rotvec = np.zeros((batch, 1 + n_body, 3))
        for segment, joints in _SEGMENT_JOINTS.items():
            rotation = local[:, SEGMENT_INDEX[segment]]
            if len(joints) > 1:
                rotation = split_rotation(rotation, len(joints))
            rotation = SMPL_TO_BODY.T @ rotation @ SMPL_TO_BODY
            for j in joints:
                rotvec[:, j] = Rotation.from_matrix(rotation).as_rotvec()
        t = torch.as_tensor(rotvec, dtype=torch.float64, device=self._device)
        with torch.no_grad():
            out = model(global_orient=t[:, 0], body_pose=t[:, 1:].reshape(batch, -1),
                        betas=torch.zeros(batch, model.num_betas, dtype=torch.float64, device=self._device),
                        transl=torch.zeros(batch, 3, dtype=torch.float64, device=self._device))
        vertices = out.vertices.cpu().numpy() @ SMPL_TO_BODY.T
        joints = out.joints.cpu().numpy() @ SMPL_TO_BODY.T
        origin = joints[:, :1]
        return vertices - origin, joints - origin

    def _ours(self, smpl_joints: np.ndarray) -> np.ndarray:
        joints = np.zeros((smpl_joints.shape[0], len(JOINT_NAMES), 3))
        for i, name in enumerate(JOINT_NAMES):
            if name != "pelvis":
                joints[:, i] = smpl_joints[:, SMPL_JOINT[name]]
        joints[:, 0] = (smpl_joints[:, SMPL_JOINT["l_hip"]] + smpl_joints[:, SMPL_JOINT["r_hip"]]) / 2
        return joints

    def _scale(self, subject: Subject) -> tuple[float, float]:
        """(uniform scale, rest stature before scaling) for a subject."""
        identity = np.tile(np.eye(3), (1, len(SEGMENT_INDEX), 1, 1))
        vertices, _ = self._smpl_forward(subject, identity)
        stature = float(vertices[0, :, 2].max() - vertices[0, :, 2].min())
        return subject.stature_m / stature, stature

    def rest_skeleton(self, subjects: list[Subject]) -> RestSkeleton:
        landmarks, hinges = [], []
        for subject in subjects:
            scale, _ = self._scale(subject)
            identity = np.tile(np.eye(3), (1, len(SEGMENT_INDEX), 1, 1))
            vertices, smpl_joints = self._smpl_forward(subject, identity)
            crown = vertices[0, vertices[0, :, 2].argmax()]
            points = np.concatenate([self._ours(smpl_joints)[0],
                                     smpl_joints[0, [SMPL_JOINT["l_toe"], SMPL_JOINT["r_toe"]]], crown[None]])
            assert len(points) == len(REST_LANDMARKS)
            points = points * scale
            landmarks.append(points)
            j = {n: points[None, REST_LANDMARKS.index(n)] for n in REST_LANDMARKS}
            hinges.append(np.concatenate([
                elbow_hinges(j[f"{s}_shoulder"], j[f"{s}_elbow"], j[f"{s}_wrist"],
                             np.array([0.0, 0.0, -1.0 if s == "l" else 1.0]))
                for s in ("l", "r")]))
        return RestSkeleton(np.stack(landmarks), np.stack(hinges))

    def forward(self, subjects, segment_rotations):
        if len(subjects) == 1 and segment_rotations.shape[0] > 1:
            subjects = subjects * segment_rotations.shape[0]
        local = local_rotations(segment_rotations)
        vertices, joints, statures = [], [], []
        for i, subject in enumerate(subjects):
            scale, rest_stature = self._scale(subject)
            v, j = self._smpl_forward(subject, local[i:i + 1])
            vertices.append(v[0] * scale)
            joints.append(self._ours(j)[0] * scale)
            statures.append(rest_stature * scale)
        return np.stack(vertices), np.stack(joints), np.array(statures)
