"""Benchmark of the body-echo model on a 27k-face body mesh with a 4 x 4 rig.

    python -m experiments.bench_body_echo [--frames 20] [--mesh anny|synthetic]

Reports, per configuration, wall time and process CPU time per frame (frames/s and
frames per CPU-second, i.e. per core), pairs/s, and the share spent in visibility ray casting.
A frame is one call for a freshly posed mesh: building the FacetMesh and its Embree BVH, one
ray fan per distinct transducer position, the facet accumulation (numba) and the FFTs.
Mesh: Anny's default body (13,718 vertices, 27,420 faces) when the ``anny`` package loads,
otherwise a synthetic body of ellipsoids with ~27k faces of ~1 cm.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import trimesh

from simulator.body_echo import FacetMesh, body_impulse_responses

SAMPLE_RATE_HZ = 96_000.0
N_SAMPLES = 4800  # 50 ms: echoes up to 17 m of path


def machine_name() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{model}, {len(os.sched_getaffinity(0))} cores available, {python}"


def anny_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Anny's default body in its rest pose (z up, metres), or raise ImportError."""
    import anny  # noqa: PLC0415 - optional, heavy

    model = anny.create_fullbody_model()
    vertices = model()["vertices"][0].detach().cpu().numpy().astype(float)
    faces = np.asarray(model.get_triangular_faces(), dtype=np.int64)
    return vertices, faces


def synthetic_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Torso, head and limbs as ellipsoids (icospheres), ~27k faces of ~1 cm."""
    parts = [  # (subdivisions, radii xyz, centre xyz)
        (5, (0.17, 0.11, 0.32), (0.0, 0.0, 0.25)),
        (4, (0.09, 0.10, 0.12), (0.0, 0.0, 0.70)),
        (3, (0.06, 0.06, 0.30), (0.25, 0.0, 0.25)),
        (3, (0.06, 0.06, 0.30), (-0.25, 0.0, 0.25)),
        (3, (0.08, 0.08, 0.42), (0.10, 0.0, -0.45)),
    ]
    meshes = []
    for subdivisions, radii, centre in parts:
        part = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
        part.apply_scale(radii)
        part.apply_translation(centre)
        meshes.append(part)
    mesh = trimesh.util.concatenate(meshes)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)


def run(label: str, vertices, faces, tx: np.ndarray, rx: np.ndarray, n_frames: int, rng, **kwargs) -> None:
    """Time ``n_frames`` frames, each with the body at a new random position and heading."""
    wall = cpu = cast = 0.0
    n_pairs = kwargs.get("pairs", np.empty((len(tx) * len(rx), 2))).shape[0]
    for frame in range(n_frames + 1):
        # a new "pose" each frame: a random shift and rotation of the body about z
        angle = rng.uniform(-np.pi, np.pi)
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        posed = vertices @ rotation.T + np.array([2.0, 2.5, 0.95]) + rng.uniform(-0.3, 0.3, 3) * [1, 1, 0]
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        mesh = FacetMesh(posed, faces)
        positions = np.unique(np.vstack([tx, rx]), axis=0)
        t_cast = time.perf_counter()
        lit = mesh.lit_facets(positions)
        t_cast = time.perf_counter() - t_cast
        _, inverse = np.unique(np.vstack([tx, rx]), axis=0, return_inverse=True)
        echo = body_impulse_responses(mesh, tx, rx, N_SAMPLES, lit=lit[inverse.ravel()], **kwargs)
        if frame > 0:  # frame 0 warms caches (numba, FFT plans)
            wall += time.perf_counter() - t_wall
            cpu += time.process_time() - t_cpu
            cast += t_cast
    assert np.all(np.isfinite(echo.impulse_responses))
    print(
        f"{label:<46s} {n_pairs:4d} pairs {len(positions):3d} positions | "
        f"{wall / n_frames * 1e3:7.1f} ms/frame wall ({cast / n_frames * 1e3:5.1f} ms rays) | "
        f"{n_frames / wall:6.1f} frames/s, {n_frames / cpu:6.1f} frames/CPU-s | "
        f"{n_pairs * n_frames / wall:7.0f} pairs/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--mesh", choices=["anny", "synthetic"], default="anny")
    args = parser.parse_args()

    mesh_name = "synthetic ellipsoid body"
    if args.mesh == "anny":
        try:
            vertices, faces = anny_mesh()
            mesh_name = "Anny default body"
        except Exception as error:  # noqa: BLE001 - fall back to the synthetic mesh
            print(f"anny unavailable ({type(error).__name__}: {error}); using the synthetic mesh")
            vertices, faces = synthetic_mesh()
    else:
        vertices, faces = synthetic_mesh()
    print(f"machine: {machine_name()}")
    print(f"mesh: {mesh_name}, {len(vertices)} vertices, {len(faces)} faces; "
          f"T = {N_SAMPLES} samples at {SAMPLE_RATE_HZ:g} Hz")

    rng = np.random.default_rng(0)
    speakers = np.array([[0.3, 0.2, 1.6], [3.7, 0.3, 1.8], [1.2, 0.2, 0.9], [2.8, 0.25, 2.1]])
    microphones = speakers + np.array([0.12, 0.0, 0.05])
    run("4 spk x 4 mic, separate (8 positions)", vertices, faces, speakers, microphones, args.frames, rng)
    run("4 co-located spk/mic pairs (4 positions)", vertices, faces, speakers, speakers, args.frames, rng)

    # first-order body-room multipath: speaker images and microphone images in 6 walls of a
    # 4 x 5 x 3 m room, all paths summed into the 16 microphone channels
    room_m = np.array([4.0, 5.0, 3.0])
    def images(points):
        out = []
        for axis in range(3):
            for wall in (0.0, room_m[axis]):
                mirrored = points.copy()
                mirrored[:, axis] = 2 * wall - points[:, axis]
                out.append(mirrored)
        return np.vstack(out)  # (6 * N, 3), wall-major
    tx = np.vstack([speakers, images(speakers)])  # 4 + 24
    rx = np.vstack([microphones, images(microphones)])  # 4 + 24
    pairs, channels = [], []
    for s in range(4):
        for m in range(4):
            ch = s * 4 + m
            pairs.append((s, m)); channels.append(ch)
            for w in range(6):
                pairs.append((4 + w * 4 + s, m)); channels.append(ch)
                pairs.append((s, 4 + w * 4 + m)); channels.append(ch)
    run("4 x 4 + first-order wall images (56 positions)", vertices, faces, tx, rx, max(args.frames // 4, 2), rng,
        pairs=np.array(pairs), channels=np.array(channels))


if __name__ == "__main__":
    main()
