"""Posed, metric human bodies with the project's 15 named joints, adults and children.

Typical use::

    import numpy as np
    from bodies import load_body_model, PoseSampler, SubjectSampler

    rng = np.random.default_rng(0)
    model = load_body_model("anny")            # or "smpl" / "smplx" with model_dir=...
    subject = SubjectSampler().sample(rng, age_years=8)
    body = PoseSampler(model).sample(rng, subject, "sitting")
    body.vertices, body.faces, body.joints, body.stature_m

Everything is in the room frame (z up, metres) and driven by one ``numpy.random.Generator``:
the same seed gives the same bodies.
"""
from __future__ import annotations

import os
from pathlib import Path

from bodies.errors import BodyInputError, BodyModelFilesMissing
from bodies.joints import FRANKMOCAP49_INDEX, JOINT_GROUPS, JOINT_NAMES, from_frankmocap49, to_frankmocap49
from bodies.model import BodyModel, PosedBody
from bodies.poses import ACTIVITIES, JOINT_LIMITS_DEG, PoseSampler, PoseSamplerConfig
from bodies.subjects import Subject, SubjectSampler, SubjectSamplerConfig
from bodies.velocities import ActivityMotion, BodyMotion, MotionModel, draw_velocities, vertex_velocities, with_velocities

BACKENDS = ("anny", "smpl", "smplx")
SMPL_DIR_ENV = "SMPL_MODEL_DIR"

__all__ = [
    "ACTIVITIES", "ActivityMotion", "BACKENDS", "BodyMotion", "BodyInputError", "BodyModel", "BodyModelFilesMissing",
    "FRANKMOCAP49_INDEX", "JOINT_GROUPS", "JOINT_LIMITS_DEG", "JOINT_NAMES", "MotionModel", "PoseSampler",
    "PoseSamplerConfig", "PosedBody", "SMPL_DIR_ENV", "Subject", "SubjectSampler",
    "SubjectSamplerConfig", "draw_velocities", "from_frankmocap49", "load_body_model", "to_frankmocap49",
    "vertex_velocities", "with_velocities",
]


def load_body_model(backend: str = "anny", model_dir: str | Path | None = None,
                    device: str = "cpu") -> BodyModel:
    """Build a body model.

    Args:
        backend: 'anny' (default, free, ships with its package), 'smpl' or 'smplx' (licence-gated
            model files the user downloads).
        model_dir: folder holding SMPL/SMPL-X model files (``SMPL_NEUTRAL.pkl``, ``SMPLX_NEUTRAL.npz``,
            ... directly or in ``smpl/`` / ``smplx/`` below it); defaults to ``$SMPL_MODEL_DIR``.
    """
    if backend == "anny":
        from bodies.anny_model import AnnyBodyModel

        return AnnyBodyModel(device=device)
    if backend in ("smpl", "smplx"):
        from bodies.smpl_model import SmplBodyModel

        model_dir = model_dir or os.environ.get(SMPL_DIR_ENV)
        return SmplBodyModel(model_dir, model_type=backend, device=device)
    raise BodyInputError(f"backend={backend!r} is unknown; choose one of {BACKENDS}")
