"""experiments.profile_generation: every stage reported, none negative, the stages add up to the measured
time, the timed functions restored afterwards, and a profiled room's arrays equal an unprofiled one's."""
from __future__ import annotations

import json

import numpy as np

from experiments import profile_generation as pg

TINY = ["--rooms", "1", "--frames-per-room", "1", "--max-order", "1", "--kernel-samples", "2400", "--no-warmup"]


def test_every_stage_present_non_negative_and_adding_up(anny_model, tmp_path, capsys):
    out_json, out_md = tmp_path / "p.json", tmp_path / "p.md"
    results = pg.main(TINY + ["--json", str(out_json), "--markdown", str(out_md)], body_model=anny_model)
    rows = {r["stage"]: r for r in results["rows"]}
    assert set(rows) == {name for name, _ in pg.STAGES}        # every stage, no '[unsplit]' fallback
    assert all(r["seconds_total"] >= 0 and r["seconds_per_frame"] >= 0 and r["calls"] >= 0 for r in rows.values())
    total = sum(r["seconds_total"] for r in rows.values())
    assert abs(total - results["measured_s"]) <= 0.05 * results["measured_s"]
    assert results["frames"] == 1 and results["frames_per_s_per_core"] > 0
    # the stages a frame always runs were timed
    for stage in ("pose sampling", "visibility ray casts: transducers",
                  "facet accumulation: direct paths (delay bounds + deposit)",
                  "multipath: facet accumulation, one wall (delay bounds + deposit)",
                  "room: response (image sources, synthesis, empty recording)",
                  "deconvolution (+ normalisation)", "detector: occlusion ray casts", "store write"):
        assert rows[stage]["calls"] >= 1 and rows[stage]["seconds_total"] > 0, stage
    assert json.loads(out_json.read_text())["rows"][0]["stage"] == pg.STAGES[0][0]
    table = out_md.read_text()
    assert all(f"| {name} |" in table for name, _ in pg.STAGES) and "**total (measured)**" in table
    # restored: nothing of the profiler is left in the simulator
    for target in pg.STAGE_OF:
        owner, name, raw = pg._resolve(target)
        fn = raw.fget if isinstance(raw, property) else raw
        assert not hasattr(fn, "__wrapped__") or getattr(fn, "__module__", "") != pg.__name__, target


def test_profiled_room_equals_unprofiled_room(anny_model):
    """The pair-split kernels deposit in the original order: a realistic room (direct, one-wall and
    image-to-image pairs) comes out bit for bit as without the profiler; every realistic effect ran."""
    from simulator.room_generation import RoomGenerator

    # keep_recordings: the ground truth's static echo is deposited too (a moving body's recording alone skips it)
    config = pg.generation_config(1, 1, "realistic", max_order=1, kernel_samples=2400, keep_recordings=True)
    profile = pg.profile_rooms(config, [0], body_model=anny_model, warmup=False, keep_results=True)
    summary = pg.summarize(profile, tolerance=0.05)
    rows = {r["stage"]: r for r in summary["rows"]}
    assert rows["realism: image-to-image paths, facet accumulation (delay bounds + deposit)"]["calls"] >= 2
    assert rows["realism: coloured, tonal, impulsive noise"]["calls"] >= 1
    # every effect of the realistic preset ran: motion (velocities drawn, echo synthesised moving), clothing,
    # furniture, the drifted empty room and its drift-aware deconvolution
    for stage in ("realism: motion, velocities (the pose a step before and after)",
                  "realism: motion, moving echo synthesis", "realism: clothing (regions, dressed surface)",
                  "realism: furniture reflections and shadows of the room (clutter)",
                  "realism: furniture, body paths by way of furniture faces",
                  "realism: empty room re-synthesised in drifted air",
                  "realism: drift-aware deconvolution (empty room stretched)"):
        assert rows[stage]["calls"] >= 1, stage
    again = RoomGenerator(config, body_model=anny_model).simulate(0)
    for name, value in again["frames"].items():
        np.testing.assert_array_equal(profile.results[0]["frames"][name], value, err_msg=name)
