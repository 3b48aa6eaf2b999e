"""Write a small body model file in SMPL's pickle format, for testing the smplx path.

The real SMPL files are licence-gated. This writes a model with SMPL's 24-joint kinematic tree,
6,890 vertices and every array SMPL's loader reads (v_template, f, J_regressor, weights,
kintree_table, shapedirs, posedirs), in SMPL's frame (y up, facing +z, T-pose). Its "body" is a
stick figure of vertex rings around the bones, each ring rigidly bound to its bone, and each
joint is the exact mean of six marker vertices around it, so the regressed joints are known.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

NUM_VERTICES = 6890
PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])
# T-pose joint positions (m), SMPL frame: y up, facing +z, the body's left at +x.
JOINTS_TPOSE = np.array([
    [0.00, 0.00, 0.00],                       # 0 pelvis
    [0.09, -0.08, 0.00], [-0.09, -0.08, 0.00],  # 1, 2 hips
    [0.00, 0.11, 0.00],                       # 3 spine1
    [0.10, -0.48, 0.00], [-0.10, -0.48, 0.00],  # 4, 5 knees
    [0.00, 0.24, 0.00],                       # 6 spine2
    [0.10, -0.88, -0.02], [-0.10, -0.88, -0.02],  # 7, 8 ankles
    [0.00, 0.30, 0.00],                       # 9 spine3
    [0.11, -0.94, 0.11], [-0.11, -0.94, 0.11],  # 10, 11 feet (toes)
    [0.00, 0.52, 0.00],                       # 12 neck
    [0.07, 0.44, 0.00], [-0.07, 0.44, 0.00],  # 13, 14 collars
    [0.00, 0.62, 0.03],                       # 15 head
    [0.17, 0.45, 0.00], [-0.17, 0.45, 0.00],  # 16, 17 shoulders
    [0.44, 0.45, 0.00], [-0.44, 0.45, 0.00],  # 18, 19 elbows
    [0.69, 0.45, 0.00], [-0.69, 0.45, 0.00],  # 20, 21 wrists
    [0.77, 0.45, 0.00], [-0.77, 0.45, 0.00],  # 22, 23 hands
])
CROWN_HEIGHT = 0.78  # top of the head above the pelvis (m)


def make_smpl_model(seed: int = 0) -> dict:
    """The arrays of a small SMPL-format model, as SMPL's pickle holds them."""
    rng = np.random.default_rng(seed)
    J = len(PARENTS)
    vertices, owner = [], []
    regressor = np.zeros((J, NUM_VERTICES))
    # Six markers per joint, symmetric, so each joint is exactly their mean.
    for j in range(J):
        for axis in range(3):
            for sign in (-1.0, 1.0):
                regressor[j, len(vertices)] = 1.0 / 6.0
                vertices.append(JOINTS_TPOSE[j] + sign * 0.01 * np.eye(3)[axis])
                owner.append(j)
    # Rings around each bone (parent joint -> child joint), bound to the parent joint.
    bones = [(PARENTS[c], c) for c in range(1, J)] + [(15, None)]
    per_bone = (NUM_VERTICES - len(vertices)) // len(bones)
    for parent, child in bones:
        a = JOINTS_TPOSE[parent]
        b = JOINTS_TPOSE[child] if child is not None else a + [0.0, CROWN_HEIGHT - a[1], 0.0]
        axis = (b - a) / np.linalg.norm(b - a)
        u = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
        u /= np.linalg.norm(u)
        w = np.cross(axis, u)
        t = rng.uniform(0, 1, per_bone)
        phi = rng.uniform(0, 2 * np.pi, per_bone)
        radius = 0.04 if child is not None else 0.0
        pts = a + t[:, None] * (b - a) + radius * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * w)
        if child is None:  # the head reaches the crown exactly
            pts[-1] = b
        vertices.extend(pts)
        owner.extend([parent] * per_bone)
    while len(vertices) < NUM_VERTICES:
        vertices.append(JOINTS_TPOSE[0])
        owner.append(0)
    v_template = np.asarray(vertices)
    weights = np.zeros((NUM_VERTICES, J))
    weights[np.arange(NUM_VERTICES), owner] = 1.0
    faces = np.arange(NUM_VERTICES - NUM_VERTICES % 3).reshape(-1, 3).astype(np.uint32)
    shapedirs = np.zeros((NUM_VERTICES, 3, 10))
    shapedirs[:, :, 0] = 0.05 * v_template  # beta 0: 5 % taller per unit
    kintree = np.stack([np.where(PARENTS < 0, 4294967295, PARENTS), np.arange(J)]).astype(np.int64)
    return {
        "v_template": v_template, "f": faces, "J_regressor": regressor, "weights": weights,
        "kintree_table": kintree, "shapedirs": shapedirs,
        "posedirs": np.zeros((NUM_VERTICES, 3, 207)), "J": JOINTS_TPOSE.copy(),
    }


def write_smpl_model(folder: str | Path, gender: str = "NEUTRAL") -> Path:
    """Write ``folder/SMPL_<GENDER>.pkl`` and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"SMPL_{gender.upper()}.pkl"
    with open(path, "wb") as fh:
        pickle.dump(make_smpl_model(), fh, protocol=2)
    return path
