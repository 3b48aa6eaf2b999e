"""Validation of the body-echo model (physical optics over a mesh) against exact answers.

    python -m simulator.validate --json validation.json --png validation.png [--quick]

Cases:
* a rigid sphere meshed as an icosphere against the exact series solution (``sphere_exact``),
  monostatic and bistatic (bistatic angle = angle between source and receiver seen from the
  centre), at 1-3 m;
* a rigid 3 x 3 m plate (coarse mesh; the model splits large facets itself) against its image
  source, amplitude 1 / (4 pi L) at delay L / c, L = |mirror(s) - r|;
* a facet-count study: the sphere error against the number of faces.

Both responses are restricted to the chirp band (19-32 kHz, raised-cosine edges of 1 kHz) in
the frequency domain, then compared through their envelopes (magnitude of the analytic signal):
* arrival: the envelope peak (parabolic interpolation), model minus reference, in samples at
  96 kHz; target |error| <= 1 sample;
* energy: the band-limited energy within +-0.25 ms (24 samples) of the reference's peak, model
  over reference in dB; target |error| <= 1.5 dB. The gate holds the specular echo and excludes
  what physical optics does not model (creeping waves, delayed by (2 + pi) a / c on a sphere) and
  its own spurious edge of the lit region (the shadow boundary, ~2a / c after the specular echo).
The whole-response energy ratio is reported too, for information.

Exit status 0 when every case meets both targets, 1 otherwise, 2 for a bad output path: --json and
--png are claimed before any case runs (a folder, an unwritable place, or an existing file that
this command did not write is refused), and written whole or not at all, so a second run replaces
its own files.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import scipy.fft
import trimesh
from scipy.optimize import minimize_scalar

from core.cli import run_command
from core.errors import EXIT_OK, EXIT_TARGET_MISSED
from core.outputs import atomic_write, claim_output_file, png_metadata, write_json

from .body_echo import FacetMesh, body_impulse_responses
from .errors import SimulationInputError
from .signals import band_window
from .sphere_exact import scattered_impulse_response

__all__ = [
    "SphereCase",
    "PlateCase",
    "TARGET_ARRIVAL_SAMPLES",
    "TARGET_ENERGY_DB",
    "default_cases",
    "convergence_cases",
    "run_validation",
    "main",
]

TARGET_ARRIVAL_SAMPLES = 1.0
TARGET_ENERGY_DB = 1.5
SAMPLE_RATE_HZ = 96_000.0
SPEED_OF_SOUND_M_S = 343.0
BAND_HZ = (19_000.0, 32_000.0)
TRANSITION_HZ = 1_000.0
GATE_SAMPLES = 24
WRITER = "simulator.validate"
# Samples kept after the last echo of interest (creeping waves, plate edges, filter tails).
_TAIL_SAMPLES = 700


@dataclass(frozen=True)
class SphereCase:
    """Rigid sphere of ``radius_m`` at the origin, meshed as an icosphere.

    Source on +x at ``source_distance_m`` from the centre; receiver at
    ``receiver_distance_m``, rotated by ``bistatic_angle_deg`` about z (0 = monostatic).
    """

    name: str
    radius_m: float
    source_distance_m: float
    receiver_distance_m: float
    bistatic_angle_deg: float
    subdivisions: int = 5

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        angle = np.radians(self.bistatic_angle_deg)
        source = np.array([self.source_distance_m, 0.0, 0.0])
        receiver = self.receiver_distance_m * np.array([np.cos(angle), np.sin(angle), 0.0])
        return source, receiver


@dataclass(frozen=True)
class PlateCase:
    """Rigid square plate of side ``size_m`` in the plane z = 0, centred at the origin, normal +z,
    meshed as ``cells_per_side``^2 squares of two triangles."""

    name: str
    size_m: float
    source_m: tuple[float, float, float]
    receiver_m: tuple[float, float, float]
    cells_per_side: int = 6


def default_cases(quick: bool = False) -> list[SphereCase | PlateCase]:
    """The validation cases; ``quick`` keeps three small ones."""
    if quick:
        return [
            SphereCase("sphere r0.15 d1.5 monostatic", 0.15, 1.5, 1.5, 0.0, subdivisions=4),
            SphereCase("sphere r0.15 d1.2/1.8 bistatic 60", 0.15, 1.2, 1.8, 60.0, subdivisions=4),
            PlateCase("plate 3x3 h1.5 monostatic", 3.0, (0.1, -0.2, 1.5), (0.1, -0.2, 1.5)),
        ]
    return [
        SphereCase("sphere r0.15 d1 monostatic", 0.15, 1.0, 1.0, 0.0),
        SphereCase("sphere r0.15 d2 monostatic", 0.15, 2.0, 2.0, 0.0),
        SphereCase("sphere r0.15 d3 monostatic", 0.15, 3.0, 3.0, 0.0),
        SphereCase("sphere r0.15 d1.5 bistatic 30", 0.15, 1.5, 1.5, 30.0),
        SphereCase("sphere r0.15 d1.5 bistatic 60", 0.15, 1.5, 1.5, 60.0),
        SphereCase("sphere r0.15 d1.5 bistatic 90", 0.15, 1.5, 1.5, 90.0),
        SphereCase("sphere r0.15 d1/2.5 bistatic 60", 0.15, 1.0, 2.5, 60.0),
        SphereCase("sphere r0.15 d2/3 bistatic 90", 0.15, 2.0, 3.0, 90.0),
        SphereCase("sphere r0.1 d1 monostatic", 0.1, 1.0, 1.0, 0.0),
        SphereCase("sphere r0.1 d1 bistatic 90", 0.1, 1.0, 1.0, 90.0),
        SphereCase("sphere r0.3 d1 monostatic", 0.3, 1.0, 1.0, 0.0),
        SphereCase("sphere r0.3 d3 monostatic", 0.3, 3.0, 3.0, 0.0),
        SphereCase("sphere r0.3 d2 bistatic 60", 0.3, 2.0, 2.0, 60.0),
        SphereCase("sphere r0.3 d2/1.5 bistatic 90", 0.3, 2.0, 1.5, 90.0),
        PlateCase("plate 3x3 h1.5 monostatic", 3.0, (0.1, -0.2, 1.5), (0.1, -0.2, 1.5)),
        PlateCase("plate 3x3 bistatic", 3.0, (-0.4, 0.1, 1.2), (0.5, -0.2, 1.6)),
        PlateCase("plate 3x3 h1 monostatic, 2 triangles", 3.0, (0.0, 0.3, 1.0), (0.0, 0.3, 1.0), cells_per_side=1),
    ]


def convergence_cases(max_subdivisions: int = 6) -> list[SphereCase]:
    """Sphere r = 0.15 m at 1.5 m, monostatic and bistatic 60 deg, icospheres of 80 ... 20 * 4^n faces."""
    cases = []
    for subdivisions in range(1, max_subdivisions + 1):
        faces = 20 * 4**subdivisions
        cases.append(SphereCase(f"convergence mono {faces} faces", 0.15, 1.5, 1.5, 0.0, subdivisions))
        cases.append(SphereCase(f"convergence bistatic 60 {faces} faces", 0.15, 1.5, 1.5, 60.0, subdivisions))
    return cases


def _plate_mesh(case: PlateCase) -> FacetMesh:
    grid = np.linspace(-case.size_m / 2, case.size_m / 2, case.cells_per_side + 1)
    x, y = np.meshgrid(grid, grid, indexing="ij")
    vertices = np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    n = case.cells_per_side + 1
    faces = []
    for i in range(case.cells_per_side):
        for j in range(case.cells_per_side):
            v00, v10, v01, v11 = i * n + j, (i + 1) * n + j, i * n + j + 1, (i + 1) * n + j + 1
            faces += [(v00, v10, v11), (v00, v11, v01)]  # counter-clockwise seen from +z
    # a plate is a thin open surface, reflecting on its +z side (the closed-mesh checks do not apply)
    return FacetMesh(vertices, np.array(faces, dtype=np.int64), open_surface=True)


def _sphere_specular_path_m(case: SphereCase) -> float:
    """Length of the specular (shortest) path source -> sphere -> receiver."""
    source, receiver = case.positions()
    angle = np.radians(case.bistatic_angle_deg)

    def path(phi: float) -> float:
        point = case.radius_m * np.array([np.cos(phi), np.sin(phi), 0.0])
        return np.linalg.norm(point - source) + np.linalg.norm(point - receiver)

    if angle == 0:
        return path(0.0)
    return minimize_scalar(path, bounds=(0.0, angle), method="bounded", options={"xatol": 1e-10}).fun


def _analytic(spectrum: np.ndarray, n_fft: int, n_samples: int) -> np.ndarray:
    """Analytic signal of a real signal given its one-sided spectrum (DC and Nyquist zero)."""
    full = np.zeros(n_fft, dtype=complex)
    full[: len(spectrum)] = 2 * spectrum
    return np.fft.ifft(full)[:n_samples]


def _peak(envelope: np.ndarray) -> float:
    """Envelope maximum, with parabolic interpolation, in samples."""
    i = int(np.argmax(envelope))
    if 0 < i < len(envelope) - 1:
        y0, y1, y2 = envelope[i - 1], envelope[i], envelope[i + 1]
        denominator = y0 - 2 * y1 + y2
        if denominator != 0:
            return i + 0.5 * (y0 - y2) / denominator
    return float(i)


def _compare(model_ir: np.ndarray, reference_spectrum: np.ndarray, n_fft: int, window: np.ndarray) -> dict:
    """Band-limited comparison of a model response with a reference one-sided spectrum."""
    n_samples = len(model_ir)
    model = _analytic(scipy.fft.rfft(model_ir, n_fft) * window, n_fft, n_samples)
    reference = _analytic(reference_spectrum * window, n_fft, n_samples)
    model_envelope, reference_envelope = np.abs(model), np.abs(reference)
    model_peak, reference_peak = _peak(model_envelope), _peak(reference_envelope)
    centre = int(round(reference_peak))
    gate = slice(max(centre - GATE_SAMPLES, 0), centre + GATE_SAMPLES + 1)
    gated_db = 10 * np.log10(np.sum(model_envelope[gate] ** 2) / np.sum(reference_envelope[gate] ** 2))
    total_db = 10 * np.log10(np.sum(model_envelope**2) / np.sum(reference_envelope**2))
    return {
        "model_peak_samples": model_peak,
        "reference_peak_samples": reference_peak,
        "arrival_error_samples": model_peak - reference_peak,
        "energy_error_db": gated_db,
        "total_energy_ratio_db": total_db,
        "_model": model,
        "_reference": reference,
    }


def _run_case(case: SphereCase | PlateCase, fs: float, c: float, band_hz, transition_hz: float) -> dict:
    started = time.perf_counter()
    if isinstance(case, SphereCase):
        source, receiver = case.positions()
        mesh = FacetMesh.from_trimesh(trimesh.creation.icosphere(subdivisions=case.subdivisions, radius=case.radius_m))
        geometric_path_m = _sphere_specular_path_m(case)
    else:
        source, receiver = np.array(case.source_m, float), np.array(case.receiver_m, float)
        mesh = _plate_mesh(case)
        geometric_path_m = float(np.linalg.norm(source * [1, 1, -1] - receiver))
    n_samples = int(np.ceil(geometric_path_m / c * fs)) + _TAIL_SAMPLES
    n_fft = scipy.fft.next_fast_len(2 * n_samples, real=True)
    f_hz = np.fft.rfftfreq(n_fft, 1.0 / fs)
    window = band_window(f_hz, band_hz, transition_hz)

    echo = body_impulse_responses(
        mesh, source, receiver, n_samples, sample_rate_hz=fs, speed_of_sound_m_s=c, reflection_coefficient=1.0
    )
    model_seconds = time.perf_counter() - started
    if isinstance(case, SphereCase):
        reference_ir = scattered_impulse_response(
            case.radius_m, source, receiver, n_samples, fs, band_hz=band_hz, transition_hz=transition_hz,
            speed_of_sound_m_s=c, n_fft=n_fft,
        )
        reference_spectrum = scipy.fft.rfft(reference_ir, n_fft)
        reference_name = "exact series (rigid sphere)"
    else:  # image source
        reference_spectrum = np.exp(-2j * np.pi * f_hz * geometric_path_m / c) / (4 * np.pi * geometric_path_m)
        reference_name = "image source"
    result = _compare(echo.impulse_responses[0], reference_spectrum, n_fft, window)
    result.update(
        {
            "name": case.name,
            "kind": "sphere" if isinstance(case, SphereCase) else "plate",
            "case": asdict(case),
            "reference": reference_name,
            "n_faces": mesh.n_faces,
            "n_lit_facets": int(echo.n_lit_facets[0]),
            "geometric_arrival_samples": geometric_path_m / c * fs,
            "model_seconds": model_seconds,
            "seconds": time.perf_counter() - started,
        }
    )
    result["arrival_pass"] = bool(abs(result["arrival_error_samples"]) <= TARGET_ARRIVAL_SAMPLES)
    result["energy_pass"] = bool(abs(result["energy_error_db"]) <= TARGET_ENERGY_DB)
    result["passed"] = result["arrival_pass"] and result["energy_pass"]
    return result


def run_validation(
    cases: list[SphereCase | PlateCase] | None = None,
    *,
    sample_rate_hz: float = SAMPLE_RATE_HZ,
    speed_of_sound_m_s: float = SPEED_OF_SOUND_M_S,
    band_hz: tuple[float, float] = BAND_HZ,
    transition_hz: float = TRANSITION_HZ,
    keep_signals: bool = False,
) -> list[dict]:
    """Run ``cases`` (default: ``default_cases()``) and return one result dict per case.

    Each dict holds the errors (``arrival_error_samples``, ``energy_error_db``), pass flags
    (``arrival_pass``, ``energy_pass``, ``passed``) and context. With ``keep_signals`` the
    band-limited analytic signals are kept under ``_model`` / ``_reference`` (T,) complex.
    """
    if cases is None:
        cases = default_cases()
    for case in cases:
        if not isinstance(case, (SphereCase, PlateCase)):
            raise SimulationInputError(f"cases contains a {type(case).__name__}; pass SphereCase or PlateCase items.")
    results = []
    for case in cases:
        result = _run_case(case, sample_rate_hz, speed_of_sound_m_s, band_hz, transition_hz)
        if not keep_signals:
            result = {k: v for k, v in result.items() if not k.startswith("_")}
        results.append(result)
    return results


def _plot(results: list[dict], convergence: list[dict], path: str, fs: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_panels = len(results) + (1 if convergence else 0)
    n_cols = 3
    n_rows = int(np.ceil(n_panels / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(5.2 * n_cols, 3.0 * n_rows), squeeze=False)
    for ax, result in zip(axes.ravel(), results):
        centre = int(round(result["reference_peak_samples"]))
        # long enough to show what physical optics leaves out (the sphere's creeping waves)
        span = np.arange(max(centre - 60, 0), min(centre + 330, len(result["_model"])))
        t_ms = span / fs * 1e3
        ax.plot(t_ms, result["_reference"].real[span], color="k", lw=1.2, label=result["reference"])
        ax.plot(t_ms, result["_model"].real[span], color="tab:red", lw=0.9, ls="--", label="physical optics (mesh)")
        ax.plot(t_ms, np.abs(result["_reference"][span]), color="k", lw=0.6, alpha=0.5)
        ax.plot(t_ms, np.abs(result["_model"][span]), color="tab:red", lw=0.6, alpha=0.5)
        ax.axvspan((centre - GATE_SAMPLES) / fs * 1e3, (centre + GATE_SAMPLES) / fs * 1e3, color="0.9", zorder=0)
        status = "pass" if result["passed"] else "FAIL"
        ax.set_title(
            f"{result['name']} ({result['n_faces']} faces)\n"
            f"arrival {result['arrival_error_samples']:+.2f} smp, energy {result['energy_error_db']:+.2f} dB: {status}",
            fontsize=8,
        )
        ax.set_xlabel("time since emission (ms)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.ravel()[0].legend(fontsize=6, loc="upper right")
    if convergence:
        ax = axes.ravel()[len(results)]
        for label, marker in (("mono", "o"), ("bistatic", "s")):
            rows = [r for r in convergence if f"convergence {label}" in r["name"]]
            faces = [r["n_faces"] for r in rows]
            energy = np.maximum([abs(r["energy_error_db"]) for r in rows], 1e-3)
            arrival = np.maximum([abs(r["arrival_error_samples"]) for r in rows], 1e-3)
            ax.loglog(faces, energy, marker=marker, label=f"{label}: |energy error| dB")
            ax.loglog(faces, arrival, marker=marker, ls="--", label=f"{label}: |arrival error| smp")
        ax.axhline(TARGET_ENERGY_DB, color="0.5", lw=0.8)
        ax.axhline(TARGET_ARRIVAL_SAMPLES, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel("icosphere faces (r = 0.15 m, d = 1.5 m)", fontsize=8)
        ax.set_title("error against facet count", fontsize=8)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n_panels:]:
        ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110, metadata=png_metadata(WRITER)))
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator.validate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default="validation.json", help="output JSON path (.json)")
    parser.add_argument("--png", default=None, help="output plot path (.png, optional)")
    parser.add_argument("--quick", action="store_true", help="three small cases, no facet-count study")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _run(build_parser().parse_args(argv)),
                       interrupted="nothing was written; run the same command again")


def _claim_outputs(args) -> None:
    """Refuse a bad --json / --png before any case runs (exit 2, never 1: 1 means a target was missed)."""
    for flag, value, suffix in (("--json", args.json, ".json"), ("--png", args.png, ".png")):
        if value is not None:
            claim_output_file(value, flag, WRITER, (suffix,))


def _run(args) -> int:
    _claim_outputs(args)
    started = time.perf_counter()
    results = run_validation(default_cases(args.quick), keep_signals=True)
    convergence = [] if args.quick else run_validation(convergence_cases())
    for result in results + convergence:
        print(
            f"{'pass' if result['passed'] else 'FAIL'}  {result['name']:<42s} faces {result['n_faces']:6d}  "
            f"arrival {result['arrival_error_samples']:+6.3f} smp  energy {result['energy_error_db']:+6.3f} dB  "
            f"(total {result['total_energy_ratio_db']:+6.2f} dB)  model {result['model_seconds']:.3f} s"
        )
    if args.png:
        _plot(results, convergence, args.png, SAMPLE_RATE_HZ)
    all_passed = all(r["passed"] for r in results)
    report = {
        "targets": {"arrival_error_samples": TARGET_ARRIVAL_SAMPLES, "energy_error_db": TARGET_ENERGY_DB},
        "settings": {
            "sample_rate_hz": SAMPLE_RATE_HZ,
            "speed_of_sound_m_s": SPEED_OF_SOUND_M_S,
            "band_hz": BAND_HZ,
            "transition_hz": TRANSITION_HZ,
            "gate_samples": GATE_SAMPLES,
            "quick": args.quick,
        },
        "all_passed": all_passed,
        "cases": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
        "convergence": convergence,
        "seconds": time.perf_counter() - started,
    }
    write_json(args.json, report, WRITER)
    verdict = "all cases pass" if all_passed else "SOME CASES FAIL"
    print(f"{verdict}; wrote {args.json}" + (f" and {args.png}" if args.png else ""))
    return EXIT_OK if all_passed else EXIT_TARGET_MISSED


if __name__ == "__main__":
    sys.exit(main())
