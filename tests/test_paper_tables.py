"""experiments.paper_tables: the claim helpers on hand-made numbers, the table layout, and (slow) the whole
`--scale tiny` run into a temporary folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import paper_tables as pt


# -- claim helpers (pure) -----------------------------------------------------------------------------------
def test_height_slope_holds_for_error_growing_with_distance_from_1_7():
    h = np.linspace(1.3, 1.9, 40)
    vision = 10 + 50 * np.abs(h - 1.7)
    ours = np.full_like(h, 8.0) + 0.1 * np.sin(np.arange(40))
    dv, do = pt.height_dependence(vision, h), pt.height_dependence(ours, h)
    assert dv["slope_cm_per_m"] == pytest.approx(50, rel=1e-6) and dv["r"] == pytest.approx(1.0)
    c = pt.claim_height_dependence(dv, do, vision_minor_cm=25.0, vision_adult_cm=12.0)
    assert c["verdict"] == pt.HOLDS


def test_height_slope_does_not_hold_for_flat_vision_error_or_when_ours_also_grows():
    h = np.linspace(1.3, 1.9, 40)
    flat = pt.height_dependence(np.full_like(h, 20.0), h)
    growing = pt.height_dependence(10 + 50 * np.abs(h - 1.7), h)
    assert pt.claim_height_dependence(flat, flat)["verdict"] == pt.FAILS
    assert pt.claim_height_dependence(growing, growing)["verdict"] == pt.FAILS
    # minors better than adults for vision: fails even with a slope
    assert pt.claim_height_dependence(growing, flat, 10.0, 20.0)["verdict"] == pt.FAILS
    assert pt.claim_height_dependence(pt.height_dependence([1, 2], [1.5, 1.6]), flat)["verdict"] == pt.UNDETERMINED


def test_other_claims_on_hand_made_numbers():
    assert pt.claim_ours_beats_vision(10.0, 40.0)["verdict"] == pt.HOLDS
    assert pt.claim_ours_beats_vision(30.0, 40.0)["verdict"] == pt.FAILS
    assert pt.claim_ours_beats_vision(float("nan"), 40.0)["verdict"] == pt.UNDETERMINED
    assert pt.claim_audio_poor(200.0, 12.0)["verdict"] == pt.HOLDS
    assert pt.claim_audio_poor(14.0, 12.0)["verdict"] == pt.FAILS
    assert pt.claim_more_pairs(11.0, 12.0, 11.5)["verdict"] == pt.HOLDS
    assert pt.claim_more_pairs(11.0, 12.0, 11.0)["verdict"] == pt.HOLDS      # co-located rig: same frames
    assert pt.claim_more_pairs(13.0, 12.0, 14.0)["verdict"] == pt.FAILS
    assert pt.claim_generalisation(12.0, 13.0, 40.0)["verdict"] == pt.HOLDS
    assert pt.claim_generalisation(12.0, 30.0, 40.0)["verdict"] == pt.FAILS
    assert pt.claim_generalisation(12.0, 13.0, 12.5)["verdict"] == pt.FAILS
    assert pt.claim_shadow(20.0, 14.0, 12.5, 12.0)["verdict"] == pt.HOLDS
    assert pt.claim_shadow(14.0, 14.0, 12.0, 12.0)["verdict"] == pt.FAILS
    assert pt.claim_shadow(15.0, 14.0, 15.0, 12.0)["verdict"] == pt.FAILS


def test_paper_numbers_are_the_papers():
    assert pt.PAPER_TABLE1["Ours"].split(" | ")[-1] == "11.28 / 13.14"
    assert pt.PAPER_TABLE1["Vis.:Frank"].split(" | ")[0] == "42.07 / 17.33"
    assert pt.PAPER_TABLE1["Audio×4"].split(" | ")[-1] == "255.1 / 229.5"
    assert pt.PAPER_TABLE2[40]["Ours"].split(" | ")[-1] == ".997 / .976"
    assert pt.PAPER_TABLE2[30]["Vis.:Frank"].split(" | ")[0] == ".082 / .911"
    for table in [pt.PAPER_TABLE1] + list(pt.PAPER_TABLE2.values()):
        assert all(len(row.split(" | ")) == len(pt.GROUPS) for row in table.values())


def test_format_paper_tables_layout_with_hand_made_results():
    nan = float("nan")
    m = {p: {g: 10.0 for g in pt.GROUPS} for p in ("minor", "adult")}
    m["minor"] = {g: nan for g in pt.GROUPS}
    pck = {p: {t: {g: 0.5 for g in pt.GROUPS} for t in pt.PCK_T} for p in ("minor", "adult")}
    pck["minor"] = {t: {g: nan for g in pt.GROUPS} for t in pt.PCK_T}
    md = pt.format_paper_tables({"ours": {"mpjpe_cm": m, "pck": pck}})
    assert "## Table 1." in md and "## Table 2." in md
    assert "| Ours | paper, measured on the real PoseKernel dataset | 8.56 / 14.17" in md
    assert "– / 10.00" in md and "– / 0.500" in md


def test_scales_are_sized_as_documented():
    assert pt.SCALES["full"].rooms == 500 and pt.SCALES["full"].frames_per_room == 20
    assert pt.SCALES["full"].config == "paper"
    assert pt.SCALES["tiny"].config == "tiny" and pt.SCALES["tiny"].epochs <= 2


# -- the whole tiny run -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_scale_end_to_end(tmp_path):
    out = tmp_path / "tiny"
    assert pt.main(["--scale", "tiny", "--out", str(out), "--workers", "0"]) == 0
    for name in ("tables.md", "claims.md", "run.json", "metrics.json", "mpjpe_by_height.png",
                 "evaluate/metrics.json", "evaluate/tables.md"):
        assert (out / name).is_file(), name
    tables = (out / "tables.md").read_text()
    assert "## Table 1. MPJPE" in tables and "## Table 2. PCK@t" in tables
    assert "TINY SCALE" in tables
    header = "| Method | Source | " + " | ".join(pt.GROUPS) + " |"
    assert header in tables
    for source in (pt.PAPER_SOURCE, pt.OUR_SOURCE):
        assert tables.count(source) >= 5 * 5      # Table 1 + four PCK thresholds
    for label in ("Ours (Vis.+Audio, all pairs)", "Vis.: average height 1.7 m", "Audio only",
                  "Vis.+Audio, half the pairs", "Vis.+Audio, co-located pairs only"):
        assert label in tables
    claims = (out / "claims.md").read_text()
    for key in pt.CLAIMS:
        title = pt.CLAIM_TITLES[key]
        assert title in claims
        section = claims.split(title, 1)[1]
        assert any(f"**Verdict: {v}.**" in section.split("## ")[0] for v in (pt.HOLDS, pt.FAILS, pt.UNDETERMINED))
    run = json.loads((out / "run.json").read_text())
    assert run["machine"]["cpu_count"] >= 1 and run["total_wall_s"] > 0
    steps = [s["step"] for s in run["commands"]]
    assert any(s.startswith("generate main") for s in steps) and "train ours" in steps and "train audio_only" in steps
    assert all(s["wall_s"] >= 0 and s["command"] for s in run["commands"])
    assert any("--no-vision" in s["command"] for s in run["commands"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["claims"]) == set(pt.CLAIMS)
