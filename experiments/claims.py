"""The paper's six claims as pure rules: each takes measured errors (cm) and gives a verdict with its evidence.

A verdict is :data:`HOLDS`, :data:`FAILS` or :data:`UNDETERMINED` (numbers missing). The thresholds are
arguments with the defaults the reproduction uses. Public names: ``__all__``.
"""
from __future__ import annotations

import math

import numpy as np

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
    "finite",
    "height_dependence",
]

HOLDS, FAILS, UNDETERMINED = "holds", "does not hold", "undetermined"
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


def height_dependence(errors_cm, heights_m, reference_m: float = 1.7) -> dict:
    """Least-squares line of per-frame error against |height - reference|: slope (cm per m), intercept (cm),
    Pearson r, frames. NaN slope / r when fewer than 3 finite frames or no spread in |h - ref|."""
    e, h = np.asarray(errors_cm, float).reshape(-1), np.asarray(heights_m, float).reshape(-1)
    ok = np.isfinite(e) & np.isfinite(h)
    e, d = e[ok], np.abs(h[ok] - reference_m)
    out = {"frames": int(ok.sum()), "slope_cm_per_m": float("nan"), "intercept_cm": float("nan"), "r": float("nan")}
    if len(e) < 3 or np.ptp(d) < 1e-9:
        return out
    slope, intercept = np.polyfit(d, e, 1)
    r = float(np.corrcoef(d, e)[0, 1]) if np.ptp(e) > 1e-12 else 0.0
    out.update(slope_cm_per_m=float(slope), intercept_cm=float(intercept), r=r)
    return out


def claim_ours_beats_vision(ours_cm: float, vision_cm: float, factor: float = 2.0) -> dict:
    """(1) Holds when ours' mean MPJPE is at most 1/factor of the vision-only prior's (the paper: ~3-4x)."""
    if not finite(ours_cm, vision_cm):
        return {"verdict": UNDETERMINED, "evidence": "missing numbers"}
    ok = ours_cm * factor <= vision_cm
    return {"verdict": HOLDS if ok else FAILS, "ratio_vision_over_ours": vision_cm / max(ours_cm, 1e-12),
            "evidence": f"mean MPJPE ours {ours_cm:.2f} cm vs vision-only 1.7 m prior {vision_cm:.2f} cm "
                        f"(ratio {vision_cm / max(ours_cm, 1e-12):.2f}; needs >= {factor:g})"}


def claim_height_dependence(vision: dict, ours: dict, vision_minor_cm: float = float("nan"),
                            vision_adult_cm: float = float("nan"), min_slope_cm_per_m: float = 5.0,
                            min_r: float = 0.3, ours_fraction: float = 0.5) -> dict:
    """(2) Holds when the vision-only error rises with |h - 1.7 m| (slope >= min_slope, r >= min_r), ours' slope
    is under ``ours_fraction`` of it, and (when both populations exist) vision-only minors are worse than adults.
    ``vision`` and ``ours`` are :func:`height_dependence` results."""
    vs, vr, os_ = vision.get("slope_cm_per_m"), vision.get("r"), ours.get("slope_cm_per_m")
    if not finite(vs, vr, os_):
        return {"verdict": UNDETERMINED, "evidence": "too few frames or no spread of statures to fit a slope"}
    minors_worst = None
    if finite(vision_minor_cm, vision_adult_cm):
        minors_worst = vision_minor_cm > vision_adult_cm
    ok = vs >= min_slope_cm_per_m and vr >= min_r and os_ < ours_fraction * vs and minors_worst is not False
    text = (f"error vs |height - 1.7 m|: vision-only slope {vs:.1f} cm/m (r {vr:.2f}), ours slope {os_:.1f} cm/m "
            f"(r {ours.get('r', float('nan')):.2f}); needs vision slope >= {min_slope_cm_per_m:g} cm/m with r >= "
            f"{min_r:g} and ours < {ours_fraction:g} x vision")
    if minors_worst is not None:
        text += f"; vision-only minors {vision_minor_cm:.2f} cm vs adults {vision_adult_cm:.2f} cm"
    return {"verdict": HOLDS if ok else FAILS, "minors_worst_for_vision": minors_worst, "evidence": text}


def claim_audio_poor(audio_cm: float, ours_cm: float, factor: float = 2.0) -> dict:
    """(3) Holds when audio-only's mean MPJPE is at least ``factor`` x ours (the paper: ~20x)."""
    if not finite(audio_cm, ours_cm):
        return {"verdict": UNDETERMINED, "evidence": "missing numbers"}
    ok = audio_cm >= factor * ours_cm
    return {"verdict": HOLDS if ok else FAILS,
            "evidence": f"mean MPJPE audio only {audio_cm:.2f} cm vs ours {ours_cm:.2f} cm "
                        f"(ratio {audio_cm / max(ours_cm, 1e-12):.2f}; needs >= {factor:g})"}


def claim_more_pairs(all_cm: float, half_cm: float, colocated_cm: float, tolerance_cm: float = 0.0) -> dict:
    """(4) Holds when all pairs beat half the pairs (strictly) and are no worse than co-located pairs only
    (+ tolerance: on co-located rigs the two are the same frames)."""
    if not finite(all_cm, half_cm, colocated_cm):
        return {"verdict": UNDETERMINED, "evidence": "missing numbers"}
    ok = all_cm < half_cm and all_cm <= colocated_cm + tolerance_cm
    return {"verdict": HOLDS if ok else FAILS,
            "evidence": f"mean MPJPE all pairs {all_cm:.2f} cm, half the pairs {half_cm:.2f} cm, "
                        f"co-located pairs only {colocated_cm:.2f} cm"}


def claim_generalisation(seen_cm: float, unseen_cm: float, vision_unseen_cm: float, max_ratio: float = 1.25) -> dict:
    """(5) Holds when the error on the unseen family is within ``max_ratio`` of the error on unseen rooms of the
    training family, and still below the vision-only prior on the unseen family."""
    if not finite(seen_cm, unseen_cm, vision_unseen_cm):
        return {"verdict": UNDETERMINED, "evidence": "missing numbers"}
    ok = unseen_cm <= max_ratio * seen_cm and unseen_cm < vision_unseen_cm
    return {"verdict": HOLDS if ok else FAILS,
            "evidence": f"mean MPJPE on unseen rooms of the training family {seen_cm:.2f} cm, on the unseen family "
                        f"{unseen_cm:.2f} cm (ratio {unseen_cm / max(seen_cm, 1e-12):.2f}; needs <= {max_ratio:g}), "
                        f"vision-only prior there {vision_unseen_cm:.2f} cm"}


def claim_shadow(small_on: float, small_off: float, large_on: float, large_off: float) -> dict:
    """(6) Holds when shadowing costs accuracy in small rooms (on > off) and costs more there than in large
    rooms: (small_on - small_off) > max(large_on - large_off, 0)."""
    if not finite(small_on, small_off, large_on, large_off):
        return {"verdict": UNDETERMINED, "evidence": "missing numbers"}
    ps, pl = small_on - small_off, large_on - large_off
    ok = ps > 0 and ps > max(pl, 0.0)
    return {"verdict": HOLDS if ok else FAILS, "penalty_small_cm": ps, "penalty_large_cm": pl,
            "evidence": f"mean MPJPE, shadowing on / off: floors < 5 m {small_on:.2f} / {small_off:.2f} cm "
                        f"(shadow costs {ps:+.2f} cm), floors >= 5 m {large_on:.2f} / {large_off:.2f} cm "
                        f"(costs {pl:+.2f} cm)"}

