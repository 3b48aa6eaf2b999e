"""Validation against exact answers, and the exact sphere series against analytic limits."""

import json

import numpy as np
import pytest

from simulator.signals import band_window
from simulator.sphere_exact import (
    free_field_pressure,
    n_terms,
    scattered_impulse_response,
    scattered_pressure,
)
from simulator.validate import (
    TARGET_ARRIVAL_SAMPLES,
    TARGET_ENERGY_DB,
    SphereCase,
    default_cases,
    main,
    run_validation,
)

C = 343.0
FS = 96_000.0


# ---------------------------------------------------------------- exact series: limits
@pytest.mark.parametrize("gamma_deg", [0.0, 45.0, 90.0, 135.0, 180.0])
def test_rayleigh_limit(gamma_deg):
    """ka << 1, far field: p_s = -(k^2 a^3 / 3)(1 - 1.5 cos theta) e^{-jk(r_s + r_r)} / (4 pi r_s r_r)."""
    a, r_s, r_r = 1e-4, 600.0, 800.0
    f = np.array([800.0, 1600.0])  # ka ~ 1.5e-3 .. 3e-3, k r ~ 9e3 .. 2e4
    k = 2 * np.pi * f / C
    gamma = np.radians(gamma_deg)
    source = np.array([r_s, 0.0, 0.0])
    receiver = r_r * np.array([np.cos(gamma), np.sin(gamma), 0.0])
    theta = np.pi - gamma  # scattering angle from the forward direction
    expected = -(k**2 * a**3 / 3) * (1 - 1.5 * np.cos(theta)) * np.exp(-1j * k * (r_s + r_r)) / (4 * np.pi * r_s * r_r)
    scale = k**2 * a**3 / 3 / (4 * np.pi * r_s * r_r)  # (1 - 1.5 cos theta) nearly vanishes at 135 deg
    actual = scattered_pressure(f, a, source, receiver, speed_of_sound_m_s=C)
    assert np.all(np.abs(actual - expected) < 2e-3 * scale)


def test_geometric_optics_limit_monostatic():
    """ka ~ 60-120: band-averaged p_s / p_GO -> 1, p_GO = a e^{-2jk(d-a)} / (8 pi d (d - a)).

    (The creeping wave, delayed by (2 + pi) a / c, averages out over the band.)"""
    a, d = 0.2, 1.7
    f = np.linspace(17e3, 32e3, 400)
    k = 2 * np.pi * f / C
    source = np.array([0.0, d, 0.0])
    ratio = scattered_pressure(f, a, source, source) / (a * np.exp(-2j * k * (d - a)) / (8 * np.pi * d * (d - a)))
    assert abs(np.mean(ratio) - 1) < 0.02
    assert np.all(np.abs(np.abs(ratio) - 1) < 0.1)  # creeping-wave interference only


def test_geometric_optics_impulse_response():
    """Band-limited monostatic echo: peak at 2 (d - a) / c, gated energy = GO energy."""
    a, d = 0.15, 1.5
    source = np.array([d, 0.0, 0.0])
    n_samples, n_fft = 1600, 4096
    ir = scattered_impulse_response(a, source, source, n_samples, FS, band_hz=(19e3, 32e3), n_fft=n_fft)
    delay = 2 * (d - a) / C * FS
    f = np.fft.rfftfreq(n_fft, 1 / FS)
    go_spectrum = a * np.exp(-2j * np.pi * f * 2 * (d - a) / C) / (8 * np.pi * d * (d - a))
    go = np.fft.irfft(band_window(f, (19e3, 32e3), 1000.0) * go_spectrum, n_fft)[:n_samples]
    assert abs(np.argmax(np.abs(ir)) - delay) <= 1
    gate = slice(int(delay) - 24, int(delay) + 25)
    assert 10 * np.log10(np.sum(ir[gate] ** 2) / np.sum(go[gate] ** 2)) == pytest.approx(0.0, abs=0.2)


def test_reciprocity():
    a = 0.12
    source = np.array([0.9, 0.3, -0.2])
    receiver = np.array([-0.4, 1.7, 0.5])
    f = np.linspace(19e3, 32e3, 50)
    forward = scattered_pressure(f, a, source, receiver, centre_m=(0.05, -0.02, 0.01))
    backward = scattered_pressure(f, a, receiver, source, centre_m=(0.05, -0.02, 0.01))
    np.testing.assert_allclose(forward, backward, rtol=1e-10)
    assert np.all(np.abs(forward) > 0)


@pytest.mark.parametrize("frequency_hz", [300.0, 5e3, 31e3])
def test_total_field_satisfies_the_rigid_boundary_condition(frequency_hz):
    """d(p_i + p_s)/dr = 0 on the sphere (one-sided finite difference in r)."""
    a = 0.15
    source = np.array([0.7, 0.2, 0.1])
    direction = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    f = np.array([frequency_hz])
    k = 2 * np.pi * frequency_hz / C
    h = 1e-6 / k

    def total(radius):
        x = radius * direction
        return scattered_pressure(f, a, source, x) + free_field_pressure(f, source, x)

    derivative = (-3 * total(a) + 4 * total(a + h) - total(a + 2 * h)) / (2 * h)
    free_derivative = k * np.abs(free_field_pressure(f, source, a * direction))
    assert np.abs(derivative) < 1e-4 * free_derivative


def test_series_has_converged_at_the_largest_ka():
    """ka = 2 pi 32 kHz / c * 0.3 m ~ 176: doubling the terms changes nothing."""
    a = 0.3
    source, receiver = np.array([2.0, 0.0, 0.0]), np.array([0.0, 2.5, 0.0])
    f = np.array([31.9e3])
    ka = 2 * np.pi * f[0] / C * a
    default = scattered_pressure(f, a, source, receiver)
    doubled = scattered_pressure(f, a, source, receiver, n_max=2 * n_terms(ka))
    assert np.isfinite(default).all()
    np.testing.assert_allclose(default, doubled, rtol=1e-10)


def test_series_rejects_points_inside_the_sphere():
    with pytest.raises(ValueError, match="receiver_m"):
        scattered_pressure([20e3], 0.2, [1.0, 0, 0], [0.1, 0, 0])
    with pytest.raises(ValueError, match="radius_m"):
        scattered_pressure([20e3], -0.2, [1.0, 0, 0], [0, 1.0, 0])


# ---------------------------------------------------------------- model against exact answers
def test_quick_validation_meets_targets(tmp_path):
    json_path = tmp_path / "validation.json"
    png_path = tmp_path / "validation.png"
    status = main(["--quick", "--json", str(json_path), "--png", str(png_path)])
    report = json.loads(json_path.read_text())
    assert status == 0 and report["all_passed"]
    assert png_path.stat().st_size > 10_000
    # its own files, so a second run may replace them (a file of anyone else's is refused: test_bad_input_simulator)
    assert report["written_by"] == "simulator.validate"
    assert main(["--quick", "--json", str(json_path), "--png", str(png_path)]) == 0
    assert json.loads(json_path.read_text())["seconds"] != report["seconds"]
    kinds = {case["kind"] for case in report["cases"]}
    assert kinds == {"sphere", "plate"}
    for case in report["cases"]:
        assert abs(case["arrival_error_samples"]) <= TARGET_ARRIVAL_SAMPLES, case["name"]
        assert abs(case["energy_error_db"]) <= TARGET_ENERGY_DB, case["name"]
        # far inside the targets in fact
        assert abs(case["energy_error_db"]) < 0.3 and abs(case["arrival_error_samples"]) < 0.2, case["name"]


def test_validation_detects_a_too_coarse_mesh():
    """An 80-face icosphere is far from a sphere: the validation must fail it."""
    (result,) = run_validation([SphereCase("coarse", 0.15, 1.5, 1.5, 0.0, subdivisions=1)])
    assert not result["passed"]


def test_default_cases_cover_the_required_geometries():
    cases = [c for c in default_cases() if isinstance(c, SphereCase)]
    assert {c.bistatic_angle_deg for c in cases} >= {0.0, 30.0, 60.0, 90.0}
    assert min(c.source_distance_m for c in cases) <= 1.0 and max(c.source_distance_m for c in cases) >= 3.0
    with pytest.raises(ValueError, match="cases"):
        run_validation(["not a case"])
