"""experiments.realism_comparison: the ideal-against-realistic table from network.evaluate's metrics files."""
from __future__ import annotations

import json

from experiments import realism_comparison as rc


def _metrics(mean_minor, mean_adult, pck):
    def interval(x):
        return {"estimate": x, "low": x - 1.0, "high": x + 2.0, "level": 0.95, "rooms": 25}

    method = {"mpjpe_cm": {"minor": {"Mean": mean_minor}, "adult": {"Mean": mean_adult}},
              "pck": {"minor": {"10": {"Mean": pck}}, "adult": {"10": {"Mean": pck + 0.1}}},
              "intervals": {"mpjpe_cm": {"minor": {"Mean": interval(mean_minor)}, "adult": {"Mean": interval(mean_adult)}}}}
    return {"data": "store.zarr", "rooms": 25, "frames": 500, "methods": {"ours": method}}


def test_the_table_lists_every_run_with_its_intervals(tmp_path, capsys):
    for name, numbers in (("ideal", (13.4, 15.0, 0.4)), ("realistic", (20.5, 22.25, 0.2))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(_metrics(*numbers)))
    out = tmp_path / "cmp" / "table"
    assert rc.main(["--run", f"ideal={tmp_path / 'ideal'}", "--run", f"realistic={tmp_path / 'realistic'}",
                    "--label", "realistic=realistic preset", "--out", str(out)]) == 0
    table = out.with_suffix(".md").read_text()
    assert "| ideal | ours | 13.4 [12.4, 15.4] | 15.0 [14.0, 17.0] | 0.45 |" in table
    assert "| realistic preset | ours | 20.5 [19.5, 22.5] | 22.2 [21.2, 24.2] | 0.25 |" in table
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [r["run"] for r in rows] == ["ideal", "realistic"] and rows[1]["mpjpe_minor_cm"]["high"] == 22.5


def test_a_missing_metrics_file_is_refused_with_the_fix(tmp_path, capsys):
    assert rc.main(["--run", f"ideal={tmp_path / 'nowhere'}", "--out", str(tmp_path / "x")]) == 2
    assert "network.evaluate --out" in capsys.readouterr().err
    assert rc.main(["--run", "nothing", "--out", str(tmp_path / "x")]) == 2
