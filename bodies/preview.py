"""Write one posed body to disk and draw it: ``python -m bodies.preview``.

Example::

    python -m bodies.preview --activity sitting --age 8 --seed 0 \\
        --out body.ply --json body.json --png body.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bodies import ACTIVITIES, BACKENDS, SMPL_DIR_ENV, BodyInputError, BodyModelFilesMissing, load_body_model
from bodies.joints import SKELETON_EDGE_INDICES
from bodies.model import PosedBody
from bodies.poses import PoseSampler
from bodies.subjects import MAX_AGE_YEARS, MIN_AGE_YEARS, SubjectSampler


def draw_body(ax, body: PosedBody, view: str = "front") -> None:
    """Draw a shaded mesh with its skeleton on a matplotlib axis, seen from the front or the side.

    A painter's-algorithm orthographic render with Lambert shading: fast enough for 27 k faces
    and dependable on a headless machine.
    """
    from matplotlib.collections import PolyCollection

    v, f, j = body.vertices.astype(float), body.faces, body.joints
    forward = np.array([np.cos(body.heading_rad), np.sin(body.heading_rad), 0.0])
    left = np.array([-forward[1], forward[0], 0.0])
    up = np.array([0.0, 0.0, 1.0])
    # (screen right, screen up, toward the viewer)
    right, vert, toward_viewer = {"front": (left, up, forward), "side": (-forward, up, left)}[view]
    xy = np.stack([v @ right, v @ vert], axis=1)
    depth = (v @ toward_viewer)[f].mean(1)
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    order = np.argsort(depth)
    order = order[(normals @ toward_viewer > 0)[order]]
    light = np.array([0.3, -0.4, 0.85]) @ np.stack([right, toward_viewer, vert])
    lam = np.clip(np.abs(normals[order] @ (light / np.linalg.norm(light))), 0, 1)
    colours = np.c_[0.55 + 0.4 * lam, 0.5 + 0.35 * lam, 0.45 + 0.3 * lam]
    ax.add_collection(PolyCollection(xy[f[order]], facecolors=colours, edgecolors="none"))
    jxy = np.stack([j @ right, j @ vert], axis=1)
    for a, b in SKELETON_EDGE_INDICES:
        ax.plot(jxy[[a, b], 0], jxy[[a, b], 1], "-", color="tab:blue", lw=2)
    ax.plot(jxy[:, 0], jxy[:, 1], "o", color="tab:red", ms=4)
    ax.axhline(0.0, color="0.4", lw=1)
    ax.set_aspect("equal")
    ax.set_xlim(xy[:, 0].min() - 0.15, xy[:, 0].max() + 0.15)
    ax.set_ylim(min(0.0, xy[:, 1].min()) - 0.05, xy[:, 1].max() + 0.1)


def render_views(body: PosedBody, path: str | Path, title: str | None = None) -> None:
    """The body from the front and from its left side, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 6), dpi=110)
    for ax, view in zip(axes, ("front", "side")):
        draw_body(ax, body, view)
        ax.set_title({"front": "front", "side": "side (body's left)"}[view])
        ax.set_xlabel("m")
    axes[0].set_ylabel("height above floor (m)")
    fig.suptitle(title or f"{body.activity}, age {body.subject.age_years:.0f}, {body.subject.sex}, "
                 f"stature {body.stature_m:.2f} m")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_ply(body: PosedBody, path: str | Path) -> None:
    body.to_trimesh().export(str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bodies.preview", description=__doc__.splitlines()[0])
    parser.add_argument("--activity", default="standing", help=f"one of: {', '.join(ACTIVITIES)}")
    parser.add_argument("--age", type=float, default=None,
                        help=f"age in years ({MIN_AGE_YEARS:g}-{MAX_AGE_YEARS:g}); random if omitted")
    parser.add_argument("--sex", choices=("female", "male"), default=None, help="random if omitted")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same body)")
    parser.add_argument("--backend", choices=BACKENDS, default="anny", help="body model (default: anny)")
    parser.add_argument("--smpl-dir", default=None,
                        help=f"folder with SMPL/SMPL-X model files (default: ${SMPL_DIR_ENV})")
    parser.add_argument("--out", default="body.ply", help="posed mesh (.ply, .obj, .glb)")
    parser.add_argument("--json", default=None, help="joints, stature and activity as JSON")
    parser.add_argument("--png", default=None, help="picture of the mesh and skeleton from two views")
    args = parser.parse_args(argv)

    try:
        rng = np.random.default_rng(args.seed)
        subject = SubjectSampler().sample(rng, age_years=args.age, sex=args.sex)
        sampler = PoseSampler(load_body_model(args.backend, args.smpl_dir))
        body = sampler.sample(rng, subject, args.activity, heading_rad=-np.pi / 2)
    except (BodyInputError, BodyModelFilesMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_ply(body, args.out)
    print(f"wrote {args.out}: {len(body.vertices)} vertices, {len(body.faces)} faces, "
          f"{body.activity}, stature {body.stature_m:.3f} m, age {subject.age_years:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(body.summary(), indent=2))
        print(f"wrote {args.json}")
    if args.png:
        render_views(body, args.png)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
