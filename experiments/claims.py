"""The paper's six claims as pure rules: each takes per-frame errors (cm) with their rooms and gives a verdict
from a room-bootstrap interval (:mod:`network.bootstrap`).

A claim holds only when the 95 % interval of its comparison excludes the opposite: :data:`HOLDS` when the
whole interval lies on the claim's side of its threshold, :data:`FAILS` when the whole interval lies on the
other side, :data:`UNDETERMINED` ("undecided") when the interval straddles the threshold, or when there are
too few rooms for an interval, or numbers are missing. A claim of several parts holds when every part holds
and fails when any part fails. Comparisons on the same frames resample the same rooms for both methods
(:func:`network.bootstrap.paired_room_bootstrap`); comparisons of different room families resample each
family on its own (:func:`network.bootstrap.independent_room_bootstrap`). Thresholds are arguments with the
defaults the reproduction uses; ``boot`` keyword arguments go to the bootstrap (``resamples``, ``seed``,
``min_rooms``). Public names: ``__all__``.
"""
from __future__ import annotations

import math

import numpy as np

from network.bootstrap import Interval, independent_room_bootstrap, paired_room_bootstrap, room_bootstrap

__all__ = [
    "CLAIMS",
    "CLAIM_TITLES",
    "FAILS",
    "HOLDS",
    "UNDETERMINED",
    "claim_audio_poor",
    "claim_generalisation",
    "claim_height_dependence",
    "claim_more_pairs",
    "claim_ours_beats_vision",
    "claim_shadow",
    "combine",
    "finite",
    "height_dependence",
    "height_slope",
    "verdict_above",
    "verdict_below",
]

HOLDS, FAILS, UNDETERMINED = "holds", "does not hold", "undecided"
CLAIMS = (
    "ours_beats_vision_prior", "height_dependence", "audio_alone_poor", "more_pairs_help", "generalisation",
    "shadow_effect",
)
CLAIM_TITLES = {
    "ours_beats_vision_prior": "(1) Ours is far more accurate than the vision-only average-height (1.7 m) prior",
    "height_dependence": "(2) Vision-only error grows as stature departs from 1.7 m (minors worst); ours does not",
    "audio_alone_poor": "(3) Audio alone is poor",
    "more_pairs_help": "(4) More pairs help: all pairs beat half the pairs and co-located pairs only",
    "generalisation": "(5) Generalises to unseen rooms, rigs and materials",
    "shadow_effect": "(6) Shadow effect: the body's shadow costs more in rooms below 5 x 5 m than above",
}


def finite(*values) -> bool:
    """True when every value is a finite number (not None, NaN or inf)."""
    return all(v is not None and isinstance(v, (int, float, np.floating)) and math.isfinite(float(v)) for v in values)


# ---------------------------------------------------------------------------------------------------------
# Verdicts from intervals
def verdict_above(interval: Interval, threshold: float) -> str:
    """The claim "the statistic is above ``threshold``": holds when the interval's low bound is above it, fails
    when the whole interval lies at or below it (the opposite, "at most the threshold", is all it allows),
    undecided otherwise (straddling, no bounds, or no estimate)."""
    if not interval.has_bounds or not finite(interval.estimate):
        return UNDETERMINED
    if interval.low > threshold:
        return HOLDS
    return FAILS if interval.high <= threshold else UNDETERMINED


def verdict_below(interval: Interval, threshold: float) -> str:
    """The claim "the statistic is below ``threshold``" (the mirror of :func:`verdict_above`)."""
    if not interval.has_bounds or not finite(interval.estimate):
        return UNDETERMINED
    if interval.high < threshold:
        return HOLDS
    return FAILS if interval.low >= threshold else UNDETERMINED


def combine(*verdicts: str) -> str:
    """All parts hold: holds; any part fails: does not hold; else undecided."""
    if any(v == FAILS for v in verdicts):
        return FAILS
    return HOLDS if verdicts and all(v == HOLDS for v in verdicts) else UNDETERMINED


def _result(verdict: str, evidence: str, **intervals: Interval) -> dict:
    return {"verdict": verdict, "evidence": evidence, "intervals": {k: v.to_dict() for k, v in intervals.items()}}


def _ratio(x: float, y: float) -> float:
    return x / y if y > 0 else math.nan


def _arr(values) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


# ---------------------------------------------------------------------------------------------------------
# Height dependence
def height_slope(pairs: np.ndarray) -> float:
    """Least-squares slope (cm per m) of column 0 (error, cm) against column 1 (|height - ref|, m); NaN when
    fewer than 3 finite rows or no spread in column 1."""
    pairs = np.asarray(pairs, float).reshape(-1, 2)
    pairs = pairs[np.isfinite(pairs).all(1)]
    if len(pairs) < 3 or np.ptp(pairs[:, 1]) < 1e-9:
        return math.nan
    return float(np.polyfit(pairs[:, 1], pairs[:, 0], 1)[0])


def height_dependence(errors_cm, heights_m, reference_m: float = 1.7) -> dict:
    """Least-squares line of per-frame error against |height - reference|: slope (cm per m), intercept (cm),
    Pearson r, frames. NaN slope / r when fewer than 3 finite frames or no spread in |h - ref|."""
    e, h = _arr(errors_cm), _arr(heights_m)
    ok = np.isfinite(e) & np.isfinite(h)
    e, d = e[ok], np.abs(h[ok] - reference_m)
    out = {"frames": int(ok.sum()), "slope_cm_per_m": float("nan"), "intercept_cm": float("nan"), "r": float("nan")}
    if len(e) < 3 or np.ptp(d) < 1e-9:
        return out
    slope, intercept = np.polyfit(d, e, 1)
    r = float(np.corrcoef(d, e)[0, 1]) if np.ptp(e) > 1e-12 else 0.0
    out.update(slope_cm_per_m=float(slope), intercept_cm=float(intercept), r=r)
    return out


# ---------------------------------------------------------------------------------------------------------
# The claims
def claim_ours_beats_vision(ours_cm, vision_cm, rooms, factor: float = 2.0, **boot) -> dict:
    """(1) Holds when the ratio vision-only / ours of mean MPJPE (same frames) is above ``factor`` (the paper: ~3-4x)."""
    ratio = paired_room_bootstrap(_arr(vision_cm), _arr(ours_cm), rooms, compare=_ratio, **boot)
    return _result(verdict_above(ratio, factor),
                   f"mean MPJPE vision-only 1.7 m prior / ours = {ratio.format(2)} (95 % interval over "
                   f"{ratio.rooms} rooms; holds above {factor:g})" + (f"; {ratio.note}" if ratio.note else ""),
                   ratio_vision_over_ours=ratio)


def claim_height_dependence(vision_cm, ours_cm, heights_m, rooms, is_minor=None, min_slope_cm_per_m: float = 5.0,
                            reference_m: float = 1.7, **boot) -> dict:
    """(2) Holds when the vision-only error's slope against |height - 1.7 m| is above ``min_slope_cm_per_m``,
    ours' slope is below it, and (when both populations exist) vision-only minors are worse than adults
    (paired difference of means above 0)."""
    distance = np.abs(_arr(heights_m) - reference_m)
    vision_slope = room_bootstrap(np.stack([_arr(vision_cm), distance], 1), rooms, statistic=height_slope, **boot)
    ours_slope = room_bootstrap(np.stack([_arr(ours_cm), distance], 1), rooms, statistic=height_slope, **boot)
    parts = [verdict_above(vision_slope, min_slope_cm_per_m), verdict_below(ours_slope, min_slope_cm_per_m)]
    intervals = {"vision_slope_cm_per_m": vision_slope, "ours_slope_cm_per_m": ours_slope}
    text = (f"slope of error against |height - {reference_m:g} m|: vision-only {vision_slope.format(1)} cm/m, ours "
            f"{ours_slope.format(1)} cm/m (holds: vision above {min_slope_cm_per_m:g}, ours below it)")
    if is_minor is not None:
        minor = np.asarray(is_minor, bool).reshape(-1)
        if minor.any() and (~minor).any():
            v = _arr(vision_cm)
            gap = paired_room_bootstrap(np.where(minor, v, np.nan), np.where(minor, np.nan, v), rooms, **boot)
            parts.append(verdict_above(gap, 0.0))
            intervals["vision_minors_minus_adults_cm"] = gap
            text += f"; vision-only minors minus adults {gap.format(2)} cm (holds above 0)"
    return _result(combine(*parts), text, **intervals)


def claim_audio_poor(audio_cm, ours_cm, rooms, factor: float = 2.0, **boot) -> dict:
    """(3) Holds when the ratio audio-only / ours of mean MPJPE is above ``factor`` (the paper: ~20x)."""
    ratio = paired_room_bootstrap(_arr(audio_cm), _arr(ours_cm), rooms, compare=_ratio, **boot)
    return _result(verdict_above(ratio, factor),
                   f"mean MPJPE audio only / ours = {ratio.format(2)} (holds above {factor:g})"
                   + (f"; {ratio.note}" if ratio.note else ""), ratio_audio_over_ours=ratio)


def claim_more_pairs(all_cm, half_cm, colocated_cm, rooms, tolerance_cm: float = 0.1, **boot) -> dict:
    """(4) Holds when half the pairs are worse than all pairs (difference above 0) and co-located pairs only are
    no better than all pairs beyond ``tolerance_cm`` (difference above -tolerance), on the frames where the
    co-located ablation applies (its NaN frames are left out of both sides; with none, that part is not judged)."""
    all_cm, half_cm, colocated_cm = _arr(all_cm), _arr(half_cm), _arr(colocated_cm)
    half = paired_room_bootstrap(half_cm, all_cm, rooms, **boot)
    parts, intervals = [verdict_above(half, 0.0)], {"half_minus_all_cm": half}
    text = f"mean MPJPE half the pairs minus all pairs {half.format(2)} cm (holds above 0)"
    applies = np.isfinite(colocated_cm)
    if applies.any():
        colocated = paired_room_bootstrap(colocated_cm, np.where(applies, all_cm, np.nan), rooms, **boot)
        parts.append(verdict_above(colocated, -tolerance_cm))
        intervals["colocated_minus_all_cm"] = colocated
        text += (f"; co-located pairs only minus all pairs {colocated.format(2)} cm on the {int(applies.sum())} frames "
                 f"with co-located pairs (holds above -{tolerance_cm:g})")
    else:
        text += "; co-located pairs only: no frame has a co-located pair, not judged"
    return _result(combine(*parts), text, **intervals)


def claim_generalisation(seen_cm, seen_rooms, unseen_cm, unseen_rooms, vision_unseen_cm, max_ratio: float = 1.25,
                         **boot) -> dict:
    """(5) Holds when the error on the unseen family over the error on unseen rooms of the training family is
    below ``max_ratio`` (independent room sets), and the vision-only prior on the unseen family over ours there
    is above 1 (same frames)."""
    ratio = independent_room_bootstrap(_arr(unseen_cm), unseen_rooms, _arr(seen_cm), seen_rooms, compare=_ratio,
                                       **boot)
    vision = paired_room_bootstrap(_arr(vision_unseen_cm), _arr(unseen_cm), unseen_rooms, compare=_ratio, **boot)
    return _result(combine(verdict_below(ratio, max_ratio), verdict_above(vision, 1.0)),
                   f"mean MPJPE unseen family / unseen rooms of the training family = {ratio.format(2)} (holds below "
                   f"{max_ratio:g}); vision-only prior / ours on the unseen family = {vision.format(2)} (holds above 1)",
                   ratio_unseen_over_seen=ratio, ratio_vision_over_ours_unseen=vision)


def claim_shadow(small_on, small_off, small_rooms, large_on, large_off, large_rooms, **boot) -> dict:
    """(6) Holds when shadowing costs accuracy in small rooms (per-frame penalty on - off above 0: the on and
    off stores hold the same rooms and poses, frame for frame) and costs more there than in large rooms
    (difference of the two penalties above 0, the two room sets resampled independently)."""
    penalty_small = _arr(small_on) - _arr(small_off)
    penalty_large = _arr(large_on) - _arr(large_off)
    small = room_bootstrap(penalty_small, small_rooms, **boot)
    more = independent_room_bootstrap(penalty_small, small_rooms, penalty_large, large_rooms, **boot)
    return _result(combine(verdict_above(small, 0.0), verdict_above(more, 0.0)),
                   f"shadow penalty (mean MPJPE on - off): floors < 5 m {small.format(2)} cm (holds above 0); "
                   f"minus the penalty at floors >= 5 m {more.format(2)} cm (holds above 0)",
                   penalty_small_cm=small, penalty_small_minus_large_cm=more)
