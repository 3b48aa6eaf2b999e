"""The accuracy targets' verdicts against hand-built errors whose intervals are known."""
from __future__ import annotations

import numpy as np

from bodies.joints import JOINT_INDEX
from experiments.targets import MET, MISSED, UNDECIDED, format_targets, judge_targets


def _errors(frames_per_room: int, rooms: int, value_cm: float, hands_cm: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    errors = value_cm + rng.uniform(-0.5, 0.5, (rooms * frames_per_room, 15))
    for name in ("r_wrist", "l_wrist"):
        errors[:, JOINT_INDEX[name]] = hands_cm
    room_ids = np.repeat(np.arange(rooms), frames_per_room)
    is_minor = np.tile(np.arange(frames_per_room) % 2 == 0, rooms)
    return errors, is_minor, room_ids


def test_targets_met_missed_and_undecided():
    errors, is_minor, rooms = _errors(10, 8, value_cm=5.0, hands_cm=11.0)
    colocated = errors * 1.2
    colocated[:10] = np.nan                          # a room without co-located pairs: left out
    t = judge_targets(errors, is_minor, rooms, colocated, resamples=300)
    assert t["mpjpe_adults_cm"]["verdict"] == MET and t["mpjpe_minors_cm"]["verdict"] == MET
    assert t["pck10"]["verdict"] == MET and abs(t["pck10"]["interval"]["estimate"] - 13 / 15) < 1e-9   # hands at 11 cm miss 10 cm
    assert t["hands_cm"]["verdict"] == MET
    assert abs(t["colocated_over_all"]["interval"]["estimate"] - 1.2) < 1e-9
    assert t["colocated_over_all"]["verdict"] == MET and t["colocated_over_all"]["frames"] == 70

    errors, is_minor, rooms = _errors(10, 8, value_cm=15.0, hands_cm=30.0)
    t = judge_targets(errors, is_minor, rooms, errors * 2.0, resamples=300)
    assert {v["verdict"] for v in t.values()} == {MISSED}
    assert t["pck10"]["interval"]["estimate"] == 0.0

    # a statistic whose rooms straddle the threshold, and too few rooms for any interval
    errors, is_minor, rooms = _errors(10, 8, value_cm=8.0, hands_cm=12.0)
    errors[rooms % 2 == 0] -= 3.0
    errors[rooms % 2 == 1] += 3.0
    assert judge_targets(errors, is_minor, rooms, resamples=300)["mpjpe_adults_cm"]["verdict"] == UNDECIDED
    few = judge_targets(*_errors(10, 3, value_cm=1.0, hands_cm=1.0), resamples=300)
    assert {v["verdict"] for v in few.values()} == {UNDECIDED}
    text = format_targets(few)
    assert "too few rooms" in text and "not measured" in text      # no co-located run given
