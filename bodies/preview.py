"""Write one posed body to disk and draw it: ``python -m bodies.preview``.

Example::

    python -m bodies.preview --activity sitting --age 8 --seed 0 \\
        --out body.ply --json body.json --png body.png

Every argument is checked and every output claimed before the body model is built (a minute on
first use): an unsupported format, a folder, or an existing file this command did not write is
refused with exit 2. Files are written whole or not at all; a second run replaces its own files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bodies import ACTIVITIES, BACKENDS, SMPL_DIR_ENV, BodyInputError, load_body_model
from bodies.joints import SKELETON_EDGE_INDICES
from bodies.model import PosedBody
from bodies.poses import PoseSampler
from bodies.subjects import MAX_AGE_YEARS, MIN_AGE_YEARS, SubjectSampler
from core.checks import check_choice, check_number, check_whole
from core.cli import run_command
from core.outputs import atomic_write, claim_output_file, mesh_header, png_metadata, write_json

WRITER = "bodies.preview"
#: Mesh formats of --out. PLY and OBJ carry a header comment naming this command, so that a second
#: run may replace its own mesh; a GLB cannot, so an existing one is never replaced.
MESH_SUFFIXES = (".ply", ".obj", ".glb")
_MESH_MARK = mesh_header(WRITER)


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
    """The body from the front and from its left side, saved as PNG (atomically, marked as ours)."""
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
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", metadata=png_metadata(WRITER)))
    plt.close(fig)


def mesh_bytes(body: PosedBody, suffix: str) -> bytes:
    """The posed mesh as a .ply, .obj or .glb file; PLY and OBJ name this command in their header."""
    from trimesh.exchange.obj import export_obj
    from trimesh.exchange.ply import export_ply

    mesh = body.to_trimesh()
    if suffix == ".ply":
        data = export_ply(mesh)
        header_line_end = data.index(b"\n", data.index(b"\nformat ")) + 1  # comments follow the format line
        return data[:header_line_end] + f"comment {_MESH_MARK}\n".encode() + data[header_line_end:]
    if suffix == ".obj":
        return export_obj(mesh, header=_MESH_MARK).encode()
    if suffix == ".glb":
        return mesh.export(file_type="glb")
    raise BodyInputError(f"mesh format {suffix!r} is not supported; use one of {', '.join(MESH_SUFFIXES)}")


def write_mesh(body: PosedBody, path: str | Path) -> None:
    """Write the posed mesh in the format of ``path``'s suffix, atomically."""
    data = mesh_bytes(body, Path(path).suffix.lower())
    atomic_write(path, lambda handle: handle.write(data))


def _claim_outputs(args) -> None:
    """Refuse, before any work, an output of the wrong format or one this command may not write."""
    wanted = [("--out", args.out, MESH_SUFFIXES), ("--json", args.json, (".json",)), ("--png", args.png, (".png",))]
    for flag, value, suffixes in wanted:
        if value is not None:
            claim_output_file(value, flag, WRITER, suffixes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bodies.preview", description=__doc__.splitlines()[0])
    parser.add_argument("--activity", default="standing", help=f"one of: {', '.join(ACTIVITIES)}")
    parser.add_argument("--age", type=float, default=None,
                        help=f"age in years ({MIN_AGE_YEARS:g}-{MAX_AGE_YEARS:g}); random if omitted")
    parser.add_argument("--sex", choices=("female", "male"), default=None, help="random if omitted")
    parser.add_argument("--seed", type=int, default=0, help="random seed >= 0 (same seed, same body)")
    parser.add_argument("--backend", choices=BACKENDS, default="anny", help="body model (default: anny)")
    parser.add_argument("--smpl-dir", default=None,
                        help=f"folder with SMPL/SMPL-X model files (default: ${SMPL_DIR_ENV})")
    parser.add_argument("--out", default="body.ply", help=f"posed mesh ({', '.join(MESH_SUFFIXES)})")
    parser.add_argument("--json", default=None, help="joints, stature and activity as JSON (.json)")
    parser.add_argument("--png", default=None, help="picture of the mesh and skeleton from two views (.png)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _run(build_parser().parse_args(argv)),
                       interrupted="the files already written are whole; run the same command again")


def _run(args) -> int:
    # Everything that can be refused is refused here, before the body model is built.
    seed = check_whole("--seed", args.seed, 0, error=BodyInputError)
    check_choice("--activity", args.activity, ACTIVITIES, error=BodyInputError)
    if args.age is not None:
        check_number("--age", args.age, MIN_AGE_YEARS, MAX_AGE_YEARS, error=BodyInputError)
    _claim_outputs(args)

    rng = np.random.default_rng(seed)
    subject = SubjectSampler().sample(rng, age_years=args.age, sex=args.sex)
    sampler = PoseSampler(load_body_model(args.backend, args.smpl_dir))
    body = sampler.sample(rng, subject, args.activity, heading_rad=-np.pi / 2)
    write_mesh(body, args.out)
    print(f"wrote {args.out}: {len(body.vertices)} vertices, {len(body.faces)} faces, "
          f"{body.activity}, stature {body.stature_m:.3f} m, age {subject.age_years:.1f}")
    if args.json:
        write_json(args.json, body.summary(), WRITER)
        print(f"wrote {args.json}")
    if args.png:
        render_views(body, args.png)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
