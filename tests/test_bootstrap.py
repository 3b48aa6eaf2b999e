"""Room-bootstrap intervals against cases worked out by hand and the closed-form bootstrap variance."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import InputError
from network.bootstrap import Interval, paired_room_bootstrap, room_bootstrap, room_resamples


def test_two_rooms_by_hand():
    # Room 0: three frames of 0 cm; room 1: one frame of 10 cm. The four equally likely resamples
    # (0,0), (0,1), (1,0), (1,1) pool to 0, 10/4, 10/4 and 10 cm: the 95 % interval spans [0, 10],
    # and the estimate pools the frames (2.5 cm), not the room means (5 cm).
    values, rooms = [0.0, 0.0, 0.0, 10.0], [7, 7, 7, 9]
    interval = room_bootstrap(values, rooms, resamples=4000, min_rooms=2)
    assert interval.estimate == 2.5
    assert (interval.low, interval.high) == (0.0, 10.0)
    draws = room_resamples(2, 4000, seed=0)
    mixed = np.mean(draws.sum(1) == 1)           # one of each room: probability 1/2
    assert abs(mixed - 0.5) < 4 * math.sqrt(0.25 / 4000)


def test_bootstrap_spread_matches_the_closed_form_for_equal_rooms():
    # Equal frame counts: the resampled mean is the mean of R room means drawn with replacement, whose
    # standard deviation is sqrt(sum((m_r - m)^2) / R) / sqrt(R) exactly.
    room_means = np.array([12.0, 15.0, 19.0, 22.0, 30.0, 18.0])
    values = np.repeat(room_means, 4)
    rooms = np.repeat(np.arange(6), 4)
    draws = room_resamples(6, 20000, seed=0)
    resampled = room_means[draws].mean(1)
    expected_sd = math.sqrt(np.mean((room_means - room_means.mean()) ** 2) / 6)
    assert abs(resampled.std() / expected_sd - 1) < 0.03
    interval = room_bootstrap(values, rooms, resamples=20000, seed=0)
    # The percentile interval of a near-normal resampling distribution is about mean +- 1.96 sd.
    assert interval.low == pytest.approx(room_means.mean() - 1.96 * expected_sd, abs=0.35 * expected_sd)
    assert interval.high == pytest.approx(room_means.mean() + 1.96 * expected_sd, abs=0.35 * expected_sd)


def test_generic_statistics_take_the_slow_path_and_agree_with_the_fast_one():
    rng = np.random.default_rng(2)
    values, rooms = rng.gamma(2.0, 5.0, size=60), np.repeat(np.arange(10), 6)
    fast = room_bootstrap(values, rooms, resamples=500, seed=3)
    slow = room_bootstrap(values, rooms, statistic=lambda v: float(np.nanmean(v)), resamples=500, seed=3)
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high))
    median = room_bootstrap(values, rooms, statistic=np.nanmedian, resamples=500, seed=3)
    assert median.low <= median.estimate <= median.high


def test_a_paired_comparison_cancels_what_the_rooms_share():
    # Room difficulty varies a lot, but method b is always exactly 2 cm worse than a: the paired interval of
    # the difference is the single point -2, while unpaired intervals of a and b overlap widely.
    rng = np.random.default_rng(4)
    rooms = np.repeat(np.arange(8), 5)
    difficulty = rng.uniform(5, 40, 8)[rooms]
    a, b = difficulty, difficulty + 2.0
    diff = paired_room_bootstrap(a, b, rooms, resamples=300)
    assert diff.low == pytest.approx(-2.0) and diff.high == pytest.approx(-2.0)
    assert diff.excludes(0.0)
    ia, ib = room_bootstrap(a, rooms, resamples=300), room_bootstrap(b, rooms, resamples=300)
    assert ia.high > ib.low                       # unpaired, they could not tell the methods apart
    ratio = paired_room_bootstrap(b, a, rooms, compare=lambda x, y: x / y, resamples=300)
    assert ratio.low > 1.0 and ratio.excludes(1.0)


def test_too_few_rooms_give_the_estimate_without_bounds_and_say_why():
    interval = room_bootstrap([1.0, 2.0, 3.0], [0, 1, 2])
    assert interval.estimate == 2.0 and not interval.has_bounds
    assert "3 rooms" in interval.note and not interval.excludes(100.0)
    assert interval.format() == "2.0"
    assert Interval(1.0, 0.5, 1.5, 0.95, 9).format() == "1.0 [0.5, 1.5]"


@pytest.mark.parametrize("kwargs, words", [
    ({"level": 1.0}, "level"), ({"level": math.nan}, "level"), ({"resamples": 0}, "resamples"),
    ({"rooms": [0, 1]}, "room id"),
])
def test_bad_arguments_are_refused(kwargs, words):
    args = {"values": [1.0, 2.0, 3.0], "rooms": [0, 1, 2], **kwargs}
    with pytest.raises(InputError, match=words):
        room_bootstrap(args.pop("values"), args.pop("rooms"), **args)
