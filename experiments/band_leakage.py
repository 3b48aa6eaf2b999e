"""Leakage of a moving reflector's echo between the speakers' bands (issue 14, item 8).

    python -m experiments.band_leakage

A rigid sphere (radius 0.15 m, 20k facets) 1.5 m from a monostatic pair in free space moves radially
towards it at 0, 1 and 2 m/s (``simulator.motion_echo``). For every guard width between the sub-bands
(250 Hz, the ``ChirpPlan`` default; 500 Hz; 1000 Hz) and every speaker s, the microphone records s's echo
alone; it is deconvolved with all speakers' chirps (``simulator.deconvolution.deconvolve``, as the pipeline
does), and the energy of each other speaker's kernel is compared with that of s's own: leakage in dB,
the worst other band. A moving limb's Doppler shift (up to ~r f = 2 v f / c, 370 Hz at 2 m/s and 32 kHz)
moves the echo's spectrum across the guard; and a frame of a moving echo is not periodic (its two ends are
r T apart in emission time), so the circular deconvolution of one period also spreads some energy broadband,
whatever the guard. Writes ``experiments/results/realism/band_leakage.json``.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import trimesh

from simulator.body_echo import FacetMesh
from simulator.deconvolution import deconvolve
from simulator.motion_echo import moving_echo_signals
from simulator.signals import ChirpPlan

GUARDS_HZ = (250.0, 500.0, 1000.0)
SPEEDS_M_S = (0.0, 1.0, 2.0)
SPEED_OF_SOUND_M_S = 343.0
OUTPUT = pathlib.Path(__file__).parent / "results" / "realism" / "band_leakage.json"


def leakage_db(plan: ChirpPlan, mesh: FacetMesh, approach_m_s: float) -> np.ndarray:
    """(S, S) energy of band j's kernel over band s's own for speaker s's echo alone (row s), dB; diagonal 0."""
    S = plan.n_speakers
    velocities = np.tile([-approach_m_s, 0.0, 0.0], (len(mesh.vertices_m), 1))   # towards the pair at the origin
    received = moving_echo_signals(mesh, velocities, np.zeros((S, 3)), np.array([[-0.02, 0.0, 0.0]]), plan,
                                   speed_of_sound_m_s=SPEED_OF_SOUND_M_S, pairs=np.array([[s, 0] for s in range(S)]))
    out = np.zeros((S, S))
    for s in range(S):
        kernels = deconvolve(received[s][None], np.zeros((1, plan.n_samples)), plan.chirps(),
                             plan.speaker_bands_hz(), plan.sample_rate_hz, align=False)[:, 0]   # (S, K)
        energy = (kernels**2).sum(axis=1)
        out[s] = 10 * np.log10(np.maximum(energy, 1e-300) / energy[s])
    return out


def main() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.15)
    mesh = FacetMesh(np.asarray(sphere.vertices) + [1.5, 0.0, 0.0], np.asarray(sphere.faces))
    default_guard = ChirpPlan().guard_hz
    rows = []
    for guard_hz in GUARDS_HZ:
        plan = ChirpPlan(guard_hz=guard_hz)
        for speed in SPEEDS_M_S:
            matrix = leakage_db(plan, mesh, speed)
            off = matrix[~np.eye(len(matrix), dtype=bool)]
            rows.append({"guard_hz": guard_hz, "speed_m_s": speed, "worst_db": float(off.max()),
                         "worst_per_speaker_db": [float(np.delete(r, i).max()) for i, r in enumerate(matrix)],
                         "matrix_db": matrix.round(2).tolist()})
    result = {"default_guard_hz": default_guard, "speed_of_sound_m_s": SPEED_OF_SOUND_M_S,
              "reflector": "rigid sphere r = 0.15 m, 1.5 m from a monostatic pair (2 cm apart), free space, "
                           "moving radially towards it",
              "measure": "energy of another speaker's deconvolved kernel over the speaker's own, dB "
                         "(matrix_db[s][j]: speaker s's echo in band j)",
              "rows": rows}
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=1))
    print(f"{'guard Hz':>9} {'speed m/s':>9} {'worst dB':>9}   worst per speaker dB")
    for row in rows:
        per = " ".join(f"{v:7.1f}" for v in row["worst_per_speaker_db"])
        print(f"{row['guard_hz']:9.0f} {row['speed_m_s']:9.1f} {row['worst_db']:9.1f}   {per}")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
