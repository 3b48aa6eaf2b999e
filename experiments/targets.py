"""The network's accuracy targets (README, "Network") as pure rules, judged like the claims: by room-bootstrap
intervals on unseen test rooms.

Targets: mean MPJPE at most 8 cm for minors and for adults separately, PCK@10 cm at least 0.75, hands at most
12 cm, and the model given only the real rig's co-located pairs within 1.3 times its all-pairs error (on the
frames that have co-located pairs). A target is *met* only when the whole 95 % interval lies on its side of
the threshold, *missed* when the whole interval lies on the other side, and *undecided* otherwise (straddling,
or fewer rooms than an interval needs). Public names: ``__all__``.
"""
from __future__ import annotations

import warnings

import numpy as np

from bodies.joints import JOINT_GROUPS, JOINT_INDEX
from experiments.claims import FAILS, HOLDS, verdict_above, verdict_below
from network.bootstrap import paired_room_bootstrap, room_bootstrap
from network.evaluate import PCK_TOLERANCE_CM

__all__ = ["MET", "MISSED", "TARGETS", "UNDECIDED", "format_targets", "judge_targets"]

MET, MISSED, UNDECIDED = "met", "missed", "undecided"
# name: (statistic, "below" or "above", threshold)
TARGETS = {
    "mpjpe_minors_cm": ("mean MPJPE of minors, cm", "below", 8.0),
    "mpjpe_adults_cm": ("mean MPJPE of adults, cm", "below", 8.0),
    "pck10": ("PCK@10 cm, everyone", "above", 0.75),
    "hands_cm": ("mean hand (wrist) error, cm", "below", 12.0),
    "colocated_over_all": ("co-located pairs only / all pairs, mean MPJPE", "below", 1.3),
}


def _frame_mean(errors_cm: np.ndarray, columns=None) -> np.ndarray:
    e = errors_cm if columns is None else errors_cm[:, columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # an all-NaN row is NaN, as meant
        return np.nanmean(e, axis=1)


def _ratio(x: float, y: float) -> float:
    return x / y if y > 0 else float("nan")


def judge_targets(errors_cm, is_minor, rooms, colocated_errors_cm=None, **boot) -> dict:
    """Each target's interval and verdict.

    Args:
        errors_cm: (N, 15) per-joint error of the model with all pairs, cm (NaN: unknown joint).
        is_minor: (N,) bool.
        rooms: (N,) room of each frame (the bootstrap's unit).
        colocated_errors_cm: (N, 15) the same model with only the co-located pairs (NaN rows: frames without
            any); None leaves that target undecided.
        boot: ``resamples``, ``seed``, ``min_rooms``, ``level`` for :mod:`network.bootstrap`.
    Returns:
        {name: {"statistic", "threshold", "side", "interval" (dict), "verdict", "frames"}}.
    """
    errors = np.asarray(errors_cm, float)
    is_minor, rooms = np.asarray(is_minor, bool), np.asarray(rooms)
    per_frame = _frame_mean(errors)
    hands = [JOINT_INDEX[name] for name in JOINT_GROUPS["Hand"]]
    within = np.where(np.isfinite(errors), errors <= 10.0 + PCK_TOLERANCE_CM, np.nan)
    intervals = {
        "mpjpe_minors_cm": (room_bootstrap(per_frame[is_minor], rooms[is_minor], **boot), int(is_minor.sum())),
        "mpjpe_adults_cm": (room_bootstrap(per_frame[~is_minor], rooms[~is_minor], **boot), int((~is_minor).sum())),
        "pck10": (room_bootstrap(_frame_mean(within), rooms, **boot), len(errors)),
        "hands_cm": (room_bootstrap(_frame_mean(errors, hands), rooms, **boot), len(errors)),
    }
    if colocated_errors_cm is not None:
        colocated = _frame_mean(np.asarray(colocated_errors_cm, float))
        applies = np.isfinite(colocated)
        if applies.any():
            intervals["colocated_over_all"] = (
                paired_room_bootstrap(colocated[applies], per_frame[applies], rooms[applies], compare=_ratio, **boot),
                int(applies.sum()))
    out = {}
    for name, (statistic, side, threshold) in TARGETS.items():
        interval, frames = intervals.get(name, (None, 0))
        if interval is None:
            verdict = UNDECIDED
        else:
            judged = (verdict_below if side == "below" else verdict_above)(interval, threshold)
            verdict = {HOLDS: MET, FAILS: MISSED}.get(judged, UNDECIDED)
        out[name] = {"statistic": statistic, "side": side, "threshold": threshold, "frames": frames,
                     "interval": None if interval is None else interval.to_dict(), "verdict": verdict}
    return out


def format_targets(targets: dict) -> str:
    """A markdown table of :func:`judge_targets`'s result."""
    lines = ["| Target | Threshold | Measured [95 % room-bootstrap interval] | Frames | Verdict |",
             "| --- | --- | --- | --- | --- |"]
    for t in targets.values():
        i = t["interval"]
        if i is None:
            measured = "not measured"
        else:
            digits = 2 if t["threshold"] < 2 else 1
            bounds = (f" [{i['low']:.{digits}f}, {i['high']:.{digits}f}]"
                      if np.isfinite(i["low"]) and np.isfinite(i["high"]) else " (too few rooms for an interval)")
            measured = f"{i['estimate']:.{digits}f}{bounds}"
        sign = "≤" if t["side"] == "below" else "≥"
        lines.append(f"| {t['statistic']} | {sign} {t['threshold']:g} | {measured} | {t['frames']} | {t['verdict']} |")
    return "\n".join(lines) + "\n"
