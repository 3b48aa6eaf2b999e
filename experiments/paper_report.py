"""The reproduction's outputs: Tables 1 and 2 beside the paper's, the claims' verdicts, MPJPE by height, JSON.

Pure formatting of numbers that :mod:`experiments.paper_tables` measured. Public names: ``__all__``.
"""
from __future__ import annotations

import os
import platform

import numpy as np

from core.outputs import atomic_write, png_metadata
from experiments.claims import CLAIM_TITLES, CLAIMS, UNDETERMINED, finite
from experiments.paper_numbers import GROUPS, OUR_SOURCE, PAPER_ANALOGUE, PAPER_SOURCE, PAPER_TABLE1, PAPER_TABLE2, PCK_T
from network.bootstrap import Interval
from network.evaluate import jsonable  # noqa: F401 - re-exported: paper_tables writes its JSON with it
from network.inference import METHOD_LABELS

__all__ = ["METHOD_ORDER", "WRITER", "format_claims", "format_paper_tables", "jsonable", "machine",
           "plot_mpjpe_by_height"]

WRITER = "experiments.paper_tables"   # the command whose outputs these are (core.outputs ownership marks)

METHOD_ORDER = ("vision_avg_height", "vision_mean_stature", "vision_learned", "geometric", "audio_only",
                "vision_half_pairs", "colocated_only", "ours")


def _fmt(v, digits) -> str:
    """A number, or an :class:`Interval` as "estimate [low, high]" (one digit fewer inside the brackets' cells)."""
    if isinstance(v, Interval):
        return "–" if not finite(v.estimate) else v.format(digits)
    return "–" if not finite(v) else f"{v:.{digits}f}"


def _cells(result: dict) -> dict:
    return result.get("intervals") or result


def format_paper_tables(results: dict, frames_note: str = "", banner: str = "") -> str:
    """Markdown of Tables 1 and 2 with the paper's rows and this project's. ``results[method]`` holds
    ``mpjpe_cm`` and ``pck`` as :func:`network.evaluate.mpjpe_by_group` / ``pck_by_group`` give them."""
    lines = ["# PoseKernelLifter: Tables 1 and 2, paper vs this project", ""]
    if banner:
        lines += [banner, ""]
    lines += [f"Rows marked **{PAPER_SOURCE}** are copied from the paper (CVPR 2022, Tables 1-2); rows marked "
              f"**{OUR_SOURCE}** are measured here on the synthetic test rooms (unseen in training). The two are "
              "not the same data and cannot be compared number for number; the comparison is of trends. "
              "Every cell: minors / adults." + (f" {frames_note}" if frames_note else ""), ""]
    head = "| " + " | ".join(GROUPS) + " |"
    lines += ["## Table 1. MPJPE (cm, lower is better), minors / adults", "",
              "| Method | Source " + head, "| --- | --- " + "| --- " * len(GROUPS) + "|"]
    for name, row in PAPER_TABLE1.items():
        lines.append(f"| {name} | {PAPER_SOURCE} | " + " | ".join(row.split(" | ")) + " |")
    for method in [m for m in METHOD_ORDER if m in results]:
        r = _cells(results[method])["mpjpe_cm"]
        cells = [f"{_fmt(r['minor'][g], 1)} / {_fmt(r['adult'][g], 1)}" for g in GROUPS]
        label = METHOD_LABELS.get(method, method)
        analogue = PAPER_ANALOGUE.get(method)
        label += f" (≈ {analogue})" if analogue else " (no paper counterpart)"
        lines.append(f"| {label} | {OUR_SOURCE} | " + " | ".join(cells) + " |")
    lines += ["", "## Table 2. PCK@t (fraction of joints within t, higher is better), minors / adults", "",
              "| Method | Source | t " + head, "| --- | --- | --- " + "| --- " * len(GROUPS) + "|"]
    for t in PCK_T:
        for name, row in PAPER_TABLE2[t].items():
            lines.append(f"| {name} | {PAPER_SOURCE} | {t} cm | " + " | ".join(row.split(" | ")) + " |")
        for method in [m for m in METHOD_ORDER if m in results]:
            pck = _cells(results[method])["pck"]
            cells = [f"{_fmt(pck['minor'][t][g], 2)} / {_fmt(pck['adult'][t][g], 2)}" for g in GROUPS]
            lines.append(f"| {METHOD_LABELS.get(method, method)} | {OUR_SOURCE} | {t} cm | " + " | ".join(cells) + " |")
    quantiles = [m for m in METHOD_ORDER if m in results and "median_cm" in _cells(results[m])]
    if quantiles:
        lines += ["", "## Table 3. Median and 90th percentile of the joint errors (cm), minors / adults "
                  f"({OUR_SOURCE}; the paper gives neither)", "", "| Method | statistic " + head,
                  "| --- | --- " + "| --- " * len(GROUPS) + "|"]
        for key, name in (("median_cm", "median"), ("p90_cm", "90th percentile")):
            for method in quantiles:
                r = _cells(results[method])[key]
                cells = [f"{_fmt(r['minor'][g], 1)} / {_fmt(r['adult'][g], 1)}" for g in GROUPS]
                lines.append(f"| {METHOD_LABELS.get(method, method)} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_claims(claims: dict, banner: str = "") -> str:
    """Markdown of every claim of :data:`experiments.claims.CLAIMS`: its verdict, evidence and setup."""
    lines = ["# The paper's claims, tested on synthetic data", ""]
    if banner:
        lines += [banner, ""]
    lines += ["Verdicts come from 95 % room-bootstrap intervals of each comparison: holds (the interval excludes the "
              "opposite), does not hold (the interval lies wholly on the opposite side), undecided (the interval "
              "straddles the threshold, or too few rooms for an interval).", ""]
    for key in CLAIMS:
        c = claims.get(key, {"verdict": UNDETERMINED, "evidence": "not run"})
        lines += [f"## {CLAIM_TITLES[key]}", "", f"**Verdict: {c['verdict']}.** {c['evidence']}", ""]
        if c.get("setup"):
            lines += [f"Setup: {c['setup']}", ""]
    return "\n".join(lines)


def plot_mpjpe_by_height(path, heights_m, errors: dict, bin_m: float = 0.1) -> None:
    """Scatter of per-frame mean joint error against stature with binned means, one colour per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = np.asarray(heights_m, float)
    colours = {"vision_avg_height": "tab:blue", "ours": "tab:red", "audio_only": "tab:green"}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    finite_h = h[np.isfinite(h)]
    edges = np.arange(np.floor(finite_h.min() / bin_m) * bin_m, finite_h.max() + bin_m, bin_m) \
        if finite_h.size else np.array([])
    for method, e in errors.items():
        e = np.asarray(e, float)
        c = colours.get(method, "gray")
        ax.scatter(h, e, s=14, alpha=0.45, color=c, label=f"{METHOD_LABELS.get(method, method)} (frames)")
        if len(edges) > 1:
            idx = np.clip(np.digitize(h, edges) - 1, 0, len(edges) - 2)
            centres, means = [], []
            for b in range(len(edges) - 1):
                sel = (idx == b) & np.isfinite(e) & np.isfinite(h)
                if sel.any():
                    centres.append(edges[b] + bin_m / 2)
                    means.append(e[sel].mean())
            ax.plot(centres, means, "-o", color=c, lw=2, label=f"{METHOD_LABELS.get(method, method)} ({bin_m * 100:.0f} cm bins)")
    ax.axvline(1.7, color="black", ls=":", lw=1, label="1.7 m (the prior)")
    ax.set_xlabel("subject stature (m)")
    ax.set_ylabel("per-frame MPJPE (cm)")
    ax.set_title("MPJPE by subject height (synthetic test rooms)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=100, metadata=png_metadata(WRITER)))
    plt.close(fig)


def machine() -> dict:
    """The machine that ran the reproduction (platform, processor, cores, torch, GPU)."""
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}

