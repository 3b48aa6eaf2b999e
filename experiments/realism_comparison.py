"""Ideal against realistic data: the same models trained and tested on each preset's store, side by side.

Reads the ``metrics.json`` that ``network.evaluate`` wrote for each run (every cell carries its 95 % room-bootstrap
interval) and writes one table: mean MPJPE for minors and adults and PCK@10 per method, per run. Example (the
small scale's stores are paired: the same rooms, people and detections, only the sound differs)::

    python -m experiments.realism_comparison --run ideal=experiments/results/small_ideal/evaluate \\
        --run realistic=experiments/results/realism/evaluate_realistic \\
        --out experiments/results/realism/ideal_vs_realistic
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["comparison_rows", "main"]

GROUPS = ("minor", "adult")


def _cell(metrics: dict, method: str, group: str) -> dict | None:
    """{'estimate', 'low', 'high'} of a method's mean MPJPE for a group (cm), or None when not evaluated."""
    entry = metrics["methods"].get(method)
    if entry is None:
        return None
    interval = entry.get("intervals", {}).get("mpjpe_cm", {}).get(group, {}).get("Mean")
    if interval is not None:
        return {k: interval[k] for k in ("estimate", "low", "high")}
    return {"estimate": entry["mpjpe_cm"][group]["Mean"], "low": None, "high": None}


def comparison_rows(runs: dict[str, dict]) -> list[dict]:
    """One row per (run, method label): mean MPJPE per group with intervals, PCK@10 (mean of both groups)."""
    rows = []
    for run, metrics in runs.items():
        for method, entry in metrics["methods"].items():
            pck = [entry["pck"][g]["10"]["Mean"] for g in GROUPS if g in entry.get("pck", {})]
            rows.append({"run": run, "method": method, "rooms": metrics.get("rooms"), "frames": metrics.get("frames"),
                         **{f"mpjpe_{g}_cm": _cell(metrics, method, g) for g in GROUPS},
                         "pck10": sum(pck) / len(pck) if pck else None})
    return rows


def _fmt(cell: dict | None) -> str:
    if cell is None:
        return "–"
    if cell["low"] is None:
        return f"{cell['estimate']:.1f}"
    return f"{cell['estimate']:.1f} [{cell['low']:.1f}, {cell['high']:.1f}]"


def markdown(rows: list[dict], labels: dict[str, str]) -> str:
    lines = ["| run | method | MPJPE minors, cm | MPJPE adults, cm | PCK@10 |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        pck = "–" if r["pck10"] is None else f"{r['pck10']:.2f}"
        lines.append(f"| {labels.get(r['run'], r['run'])} | {r['method']} | {_fmt(r['mpjpe_minor_cm'])} | "
                     f"{_fmt(r['mpjpe_adult_cm'])} | {pck} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=DIR",
                        help="a run's name and the folder holding network.evaluate's metrics.json (repeat)")
    parser.add_argument("--label", action="append", default=[], metavar="NAME=TEXT", help="how the table names a run")
    parser.add_argument("--out", required=True, help="writes OUT.json and OUT.md")
    args = parser.parse_args(argv)
    runs = {}
    for item in args.run:
        name, sep, folder = item.partition("=")
        path = Path(folder) / "metrics.json"
        if not sep or not name:
            print(f"error: --run {item!r}: give NAME=DIR, e.g. ideal=experiments/results/small_ideal/evaluate", file=sys.stderr)
            return 2
        if not path.is_file():
            print(f"error: --run {item!r}: {path} does not exist; run network.evaluate --out {folder} first",
                  file=sys.stderr)
            return 2
        runs[name] = json.loads(path.read_text())
    labels = dict(item.partition("=")[::2] for item in args.label)
    rows = comparison_rows(runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"runs": {k: v.get("data") for k, v in runs.items()},
                                                    "rows": rows}, indent=1))
    table = markdown(rows, labels)
    out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
