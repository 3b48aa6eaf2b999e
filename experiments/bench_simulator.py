"""Benchmark: frames simulated per second per core, and the naive approach beside it.

    python -m experiments.bench_simulator [--frames 10] [--naive-faces 80 320 1280] [--json out.json]

1. Ours: one room scene (shoebox, 4 x 4 separated rig, image-source order 17), the room response
   computed once, then ``--frames`` Anny bodies (27,420 faces) recorded with first-order body-room
   multipath and shadowing. Reports seconds per frame for the per-frame work and with the room's
   cost amortised over 20 frames per room (the generator's default), single-threaded.
2. Naive: the body's facets added as walls of a pyroomacoustics room, its image-source model run
   at order 1 (direct body reflections and nothing more) for the same rig. pyroomacoustics'
   visibility test is quadratic in the number of walls, so it is timed on small meshes
   (icospheres) and extrapolated to 27,420 faces with the fitted power law; ours is timed on the
   same small meshes too, and the ratio is reported at each size.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from experiments.reporting import report

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def _scene(seed: int = 0):
    from rooms import RoomSampler, RoomSamplerConfig

    return RoomSampler(RoomSamplerConfig(colocated_probability=0.0)).sample(np.random.default_rng(seed))


def time_ours(frames: int, seed: int = 0) -> dict:
    import torch

    torch.set_num_threads(1)
    from bodies import PoseSampler, load_body_model
    from simulator.recording import RoomSimulator, SimulationConfig
    from simulator.scene import compose_scene

    rng = np.random.default_rng(seed)
    room_scene = _scene(seed)
    sampler = PoseSampler(load_body_model("anny"))
    scenes = [compose_scene(rng, room_scene, sampler, activity="standing") for _ in range(frames)]
    t = time.perf_counter()
    simulator = RoomSimulator(room_scene, SimulationConfig())
    room_s = time.perf_counter() - t
    simulator.record(scenes[0].body, rng)  # numba compilation, caches
    t = time.perf_counter()
    for scene in scenes:
        simulator.record(scene.body, rng)
    frame_s = (time.perf_counter() - t) / frames
    parts = {}
    body = scenes[0].body
    for name, cfg in {"direct echo only": dict(body_room_multipath=False, shadowing=False),
                      "+ multipath": dict(body_room_multipath=True, shadowing=False),
                      "+ multipath + shadowing": dict(body_room_multipath=True, shadowing=True)}.items():
        simulator.config = SimulationConfig(**cfg)
        t = time.perf_counter()
        for _ in range(3):
            simulator.body_response(body)
        parts[name] = (time.perf_counter() - t) / 3
    return {"room_response_s": room_s, "frame_s": frame_s,
            "frame_s_amortised_20": frame_s + room_s / 20,
            "frames_per_s_per_core": 1.0 / (frame_s + room_s / 20),
            "body_response_s": parts}


def _band_energy(x: np.ndarray, fs: float, band_hz=(19e3, 32e3)) -> float:
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / fs)
    spectrum[(f < band_hz[0]) | (f > band_hz[1])] = 0
    return float(np.sum(np.fft.irfft(spectrum, len(x)) ** 2))


def time_naive(faces_list: list[int], seed: int = 0) -> dict:
    """pyroomacoustics with the body's facets as walls, order 1, against ours on the same mesh.

    Besides time, each method's body echo (speaker 0 -> microphone 0) is compared in band energy
    with the exact series solution for the rigid sphere the mesh approximates.
    """
    import pyroomacoustics as pra
    import trimesh

    from simulator.body_echo import FacetMesh, body_impulse_responses
    from simulator.sphere_exact import scattered_impulse_response

    scene = _scene(seed)
    fs, c, radius = 96_000, scene.speed_of_sound_m_s, 0.3
    spk, mic = np.asarray(scene.rig.speaker_positions_m), np.asarray(scene.rig.microphone_positions_m)
    centre = np.r_[scene.body_region.center_xy_m, 1.0]
    exact = scattered_impulse_response(radius, spk[0], mic[0], 9600, fs, centre_m=centre, speed_of_sound_m_s=c)
    exact_energy = _band_energy(exact, fs)

    def pra_room(extra_triangles):
        base = scene.room.to_pyroomacoustics(fs_hz=fs, max_order=1)
        walls = list(base.walls)
        n_bands = len(walls[0].absorption)
        for tri in extra_triangles:  # pyroomacoustics walls face into the room: reverse the winding
            walls.append(pra.wall_factory(tri[::-1].T.copy(), [0.0] * n_bands, [0.0] * n_bands))
        room = pra.Room(walls, fs=fs, max_order=1, air_absorption=False)
        room.set_sound_speed(c)
        for s in spk:
            room.add_source(s)
        room.add_microphone_array(mic.T)
        return room

    empty = pra_room([])
    empty.compute_rir()
    rows = []
    subdivisions = {80: 1, 320: 2, 1280: 3, 5120: 4, 20480: 5}
    for n_faces in faces_list:
        sphere = trimesh.creation.icosphere(subdivisions=subdivisions[n_faces], radius=radius)
        sphere.apply_translation(centre)
        room = pra_room(sphere.triangles)
        t = time.perf_counter()
        room.image_source_model()
        room.compute_rir()
        naive_s = time.perf_counter() - t
        full, base = room.rir[0][0], empty.rir[0][0]
        n = max(len(full), len(base))
        naive_echo = np.pad(full, (0, n - len(full))) - np.pad(base, (0, n - len(base)))
        mesh = FacetMesh.from_trimesh(sphere)
        body_impulse_responses(mesh, spk, mic, 9600, speed_of_sound_m_s=c, reflection_coefficient=1.0)  # warm
        t = time.perf_counter()
        ours = body_impulse_responses(mesh, spk, mic, 9600, speed_of_sound_m_s=c, reflection_coefficient=1.0)
        ours_s = time.perf_counter() - t
        row = {"faces": n_faces, "naive_s": naive_s, "ours_s": ours_s, "ratio": naive_s / ours_s,
               "naive_energy_error_db": 10 * np.log10(max(_band_energy(naive_echo, fs), 1e-30) / exact_energy),
               "ours_energy_error_db": 10 * np.log10(_band_energy(ours.impulse_responses[0], fs) / exact_energy)}
        rows.append(row)
        print(f"  {n_faces:6d} faces: naive {naive_s:8.2f} s ({row['naive_energy_error_db']:+.1f} dB vs exact), "
              f"ours {ours_s:6.3f} s ({row['ours_energy_error_db']:+.2f} dB), ratio {row['ratio']:8.0f}x", flush=True)
    faces = np.array([r["faces"] for r in rows], float)
    seconds = np.array([r["naive_s"] for r in rows])
    slope, intercept = np.polyfit(np.log(faces[-2:]), np.log(seconds[-2:]), 1)
    return {"rows": rows, "power_law_exponent_last_two": slope,
            "naive_s_extrapolated_27420": float(np.exp(intercept) * 27420**slope)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--naive-faces", type=int, nargs="*", default=[320, 1280, 5120])
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    import platform

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, single-threaded"}
    print("ours (Anny, 4 x 4 separated rig, order 17, first-order multipath, shadowing) ...", flush=True)
    results["ours"] = time_ours(args.frames)
    print(json.dumps(results["ours"], indent=2), flush=True)
    if args.naive_faces:
        print("naive (body facets as pyroomacoustics walls, order 1) ...", flush=True)
        results["naive"] = time_naive(args.naive_faces)
        extrapolated = results["naive"]["naive_s_extrapolated_27420"]
        results["naive_vs_ours_frame_ratio_at_27420_faces"] = extrapolated / results["ours"]["frame_s"]
        print(f"naive extrapolated to 27,420 faces: {extrapolated:.0f} s per frame; "
              f"ours {results['ours']['frame_s']:.2f} s: ratio {results['naive_vs_ours_frame_ratio_at_27420_faces']:.0f}x")
    return report(results, args.json, echo=False)


if __name__ == "__main__":
    main()
