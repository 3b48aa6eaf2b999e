"""experiments.paper_tables: the claim helpers on hand-made numbers, the table layout, and (slow) the whole
`--scale tiny` run into a temporary folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import paper_tables as pt


# -- claim helpers (pure): verdicts from room-bootstrap intervals ---------------------------------------------
ROOMS = np.repeat(np.arange(10), 4)          # 10 rooms x 4 frames


def test_height_slope_holds_for_error_growing_with_distance_from_1_7():
    h = np.tile(np.linspace(1.3, 1.9, 4), 10) + np.repeat(np.linspace(-0.05, 0.05, 10), 4)
    vision = 10 + 50 * np.abs(h - 1.7)
    ours = np.full_like(h, 8.0) + 0.1 * np.sin(np.arange(40))
    dv, do = pt.height_dependence(vision, h), pt.height_dependence(ours, h)
    assert dv["slope_cm_per_m"] == pytest.approx(50, rel=1e-6) and dv["r"] == pytest.approx(1.0)
    assert abs(do["slope_cm_per_m"]) < 1.0
    minor = h < 1.6
    c = pt.claim_height_dependence(vision, ours, h, ROOMS, minor, resamples=300)
    assert c["verdict"] == pt.HOLDS
    assert c["intervals"]["vision_slope_cm_per_m"]["low"] == pytest.approx(50, rel=1e-6)   # exact line: a point
    assert c["intervals"]["ours_slope_cm_per_m"]["high"] < 5.0


def test_height_slope_does_not_hold_for_flat_vision_error_or_when_ours_also_grows():
    h = np.tile(np.linspace(1.3, 1.9, 4), 10) + np.repeat(np.linspace(-0.05, 0.05, 10), 4)
    flat, growing = np.full_like(h, 20.0), 10 + 50 * np.abs(h - 1.7)
    assert pt.claim_height_dependence(flat, flat, h, ROOMS, resamples=300)["verdict"] == pt.FAILS
    assert pt.claim_height_dependence(growing, growing, h, ROOMS, resamples=300)["verdict"] == pt.FAILS
    # minors (here the statures nearest 1.7 m) better than adults for vision: fails even with a slope
    minors_best = np.abs(h - 1.7) < 0.06
    result = pt.claim_height_dependence(growing, flat, h, ROOMS, minors_best, resamples=300)
    assert result["verdict"] == pt.FAILS and result["intervals"]["vision_minors_minus_adults_cm"]["high"] < 0
    assert pt.claim_height_dependence(growing[:8], flat[:8], h[:8], ROOMS[:8])["verdict"] == pt.UNDETERMINED


def test_other_claims_on_hand_made_numbers():
    rng = np.random.default_rng(1)
    ours = rng.uniform(8, 14, 10)[ROOMS]
    assert pt.claim_ours_beats_vision(ours, 4 * ours, ROOMS, resamples=300)["verdict"] == pt.HOLDS
    assert pt.claim_ours_beats_vision(ours, 1.3 * ours, ROOMS, resamples=300)["verdict"] == pt.FAILS
    assert pt.claim_ours_beats_vision(ours * np.nan, ours, ROOMS, resamples=300)["verdict"] == pt.UNDETERMINED
    assert pt.claim_audio_poor(20 * ours, ours, ROOMS, resamples=300)["verdict"] == pt.HOLDS
    assert pt.claim_audio_poor(1.1 * ours, ours, ROOMS, resamples=300)["verdict"] == pt.FAILS
    assert pt.claim_more_pairs(ours, ours + 1, ours + 0.5, ROOMS, resamples=300)["verdict"] == pt.HOLDS
    assert pt.claim_more_pairs(ours, ours + 1, ours, ROOMS, resamples=300)["verdict"] == pt.HOLDS   # co-located rig
    assert pt.claim_more_pairs(ours, ours - 1, ours + 1, ROOMS, resamples=300)["verdict"] == pt.FAILS
    no_colocated = pt.claim_more_pairs(ours, ours + 1, ours * np.nan, ROOMS, resamples=300)
    assert no_colocated["verdict"] == pt.HOLDS and "not judged" in no_colocated["evidence"]
    other = ROOMS + 100                       # another family of rooms
    assert pt.claim_generalisation(ours, ROOMS, 1.05 * ours, other, 3 * ours, resamples=300)["verdict"] == pt.HOLDS
    assert pt.claim_generalisation(ours, ROOMS, 2.5 * ours, other, 4 * ours, resamples=300)["verdict"] == pt.FAILS
    assert pt.claim_generalisation(ours, ROOMS, 1.05 * ours, other, 0.9 * ours, resamples=300)["verdict"] == pt.FAILS
    assert pt.claim_shadow(ours + 6, ours, ROOMS, ours + 0.5, ours, other, resamples=300)["verdict"] == pt.HOLDS
    assert pt.claim_shadow(ours, ours, ROOMS, ours, ours, other, resamples=300)["verdict"] == pt.FAILS
    assert pt.claim_shadow(ours + 1, ours, ROOMS, ours + 3, ours, other, resamples=300)["verdict"] == pt.FAILS


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
    assert "– / 10.0" in md and "– / 0.50" in md
    from network.bootstrap import Interval

    cell = Interval(20.0, 18.7, 21.4, 0.95, 25)
    intervals = {"mpjpe_cm": {p: {g: cell for g in pt.GROUPS} for p in ("minor", "adult")},
                 "pck": pck, "median_cm": {p: {g: cell for g in pt.GROUPS} for p in ("minor", "adult")},
                 "p90_cm": {p: {g: cell for g in pt.GROUPS} for p in ("minor", "adult")}}
    md = pt.format_paper_tables({"ours": {"mpjpe_cm": m, "pck": pck, "intervals": intervals}})
    assert "20.0 [18.7, 21.4] / 20.0 [18.7, 21.4]" in md and "## Table 3." in md


def test_scales_are_sized_as_documented():
    assert pt.SCALES["full"].rooms == 500 and pt.SCALES["full"].frames_per_room == 20
    assert pt.SCALES["full"].config == "paper"
    assert pt.SCALES["tiny"].config == "tiny" and pt.SCALES["tiny"].epochs <= 2
    for name in ("small", "medium", "full"):       # >= 25 unseen test rooms of 20 frames: >= 500 test frames
        scale = pt.SCALES[name]
        assert scale.min_test_rooms >= 25 and scale.frames_per_room >= 20
        assert set(pt.ARCH_SETTINGS["coarse_fine"]) == set(pt.ARCH_SETTINGS["paper"]) == set(pt.SCALES)
        main = dict(pt.plan_stores(scale))["main"] if name in ("small", "medium") else None
        if main is not None:
            from simulator.generate import GenerationConfig, room_split

            splits = [room_split(GenerationConfig(**main), r) for r in range(scale.rooms)]
            assert splits.count(2) >= 25 and splits.count(0) >= scale.min_train_rooms


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
                  "Vis.+Audio, half the pairs", "Vis.+Audio, co-located pairs only", "Vis.: learned, no audio",
                  "Geometric (no learning)", "Vis.: population-mean stature"):
        assert label in tables
    assert "at least 5" in tables                  # tiny has too few rooms for intervals, and says so
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
    assert any("--no-audio" in s["command"] for s in run["commands"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["claims"]) == set(pt.CLAIMS)


def test_a_foreign_out_folder_is_refused_before_any_work(tmp_path):
    from tests.cli_harness import assert_refused, call_main, snapshot

    (tmp_path / "tables.md").write_text("my own notes")
    before = snapshot(tmp_path)
    assert_refused(call_main("experiments.paper_tables", ["--scale", "tiny", "--out", str(tmp_path)]), "--out",
                   "did not create")
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["tables.md"]


def test_a_results_folder_written_before_output_markers_is_adopted(tmp_path):
    from experiments.paper_tables import _made_by_old_paper_tables

    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "tables.md").write_text("")
    (tmp_path / "runs").mkdir()
    assert _made_by_old_paper_tables(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    assert not _made_by_old_paper_tables(tmp_path)
