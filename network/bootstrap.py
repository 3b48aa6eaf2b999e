"""Room-bootstrap confidence intervals: every reported accuracy carries its uncertainty.

Frames of one room share its geometry, rig, air and people, so they are not independent samples:
the unit of resampling is the room (a cluster bootstrap). One resample draws R rooms with
replacement from the R rooms evaluated, pools all their frames, and recomputes the statistic; the
interval is the (1 - level) / 2 and (1 + level) / 2 percentiles of the resampled statistics
(the percentile bootstrap). A comparison of two methods on the same frames resamples the same
rooms for both (:func:`paired_room_bootstrap`), so what the rooms share cancels in the difference
or ratio.

A claim such as "ours is better than vision only" holds only when the interval of the comparison
excludes the opposite (:meth:`Interval.excludes`). With fewer than ``min_rooms`` rooms no interval
is computed: the estimate is returned with NaN bounds and a note saying why.

All functions are pure: numpy arrays in, :class:`Interval` out; ``seed`` fixes the resamples.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.checks import check_number, check_whole
from core.errors import InputError

__all__ = ["MIN_ROOMS", "Interval", "independent_room_bootstrap", "paired_room_bootstrap", "room_bootstrap",
           "room_resamples"]

MIN_ROOMS = 5   # below this, percentiles of R^R resamples say more about R than about the method


@dataclass(frozen=True)
class Interval:
    """A statistic with its room-bootstrap interval; ``low``/``high`` are NaN when there were too few rooms."""

    estimate: float
    low: float
    high: float
    level: float
    rooms: int
    note: str = ""

    @property
    def has_bounds(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def excludes(self, value: float) -> bool:
        """True when ``value`` lies outside [low, high] (False without bounds: nothing is excluded)."""
        return self.has_bounds and not self.low <= value <= self.high

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level,
                "rooms": self.rooms, **({"note": self.note} if self.note else {})}

    def format(self, digits: int = 1) -> str:
        """``"20.0 [18.7, 21.4]"``, or the estimate alone without bounds."""
        if not math.isfinite(self.estimate):
            return "--"
        text = f"{self.estimate:.{digits}f}"
        return f"{text} [{self.low:.{digits}f}, {self.high:.{digits}f}]" if self.has_bounds else text


def room_resamples(n_rooms: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_rooms) room positions drawn with replacement (row r: the rooms of resample r)."""
    return np.random.default_rng(seed).integers(0, n_rooms, size=(resamples, n_rooms))


def _groups(values, rooms, name: str) -> tuple[np.ndarray, list[np.ndarray]]:
    values = np.asarray(values, dtype=float)
    rooms = np.asarray(rooms).reshape(-1)
    if len(values) != len(rooms):
        raise InputError(f"{name}: {len(values)} values for {len(rooms)} room ids; give one room id per frame")
    ids = np.unique(rooms)
    return ids, [values[rooms == r] for r in ids]


def _check(level: float, resamples: int, min_rooms: int) -> None:
    check_number("level", level, 0.0, 1.0, low_open=True, high_open=True)
    check_whole("resamples", resamples, minimum=1)
    check_whole("min_rooms", min_rooms, minimum=1)


def paired_room_bootstrap(a, b, rooms, compare: Callable[[float, float], float] = lambda x, y: x - y,
                          statistic: Callable[[np.ndarray], float] = np.nanmean, level: float = 0.95,
                          resamples: int = 2000, seed: int = 0, min_rooms: int = MIN_ROOMS) -> Interval:
    """Interval of ``compare(statistic(a), statistic(b))`` with the same rooms resampled for both.

    Args:
        a, b: (N, ...) per-frame values of two methods on the same N frames (e.g. per-frame MPJPE, cm).
        rooms: (N,) room id of each frame.
        compare: how the two statistics are compared: the difference (default) or e.g. ``lambda x, y: x / y``.
        statistic: applied to the pooled values of a resample (``np.nanmean``, ``np.nanmedian``, ...).
    """
    _check(level, resamples, min_rooms)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise InputError(f"paired_room_bootstrap: the two methods have values of shapes {a.shape} and {b.shape}; "
                         "give both on the same frames")
    ids, groups_a = _groups(a, rooms, "paired_room_bootstrap")
    _, groups_b = _groups(b, rooms, "paired_room_bootstrap")
    estimate = float(compare(statistic(a), statistic(b)))
    if len(ids) < min_rooms:
        return Interval(estimate, math.nan, math.nan, level, len(ids),
                        f"{len(ids)} rooms: an interval needs at least {min_rooms}")
    draws = room_resamples(len(ids), resamples, seed)
    resampled = np.array([compare(statistic(np.concatenate([groups_a[i] for i in row])),
                                  statistic(np.concatenate([groups_b[i] for i in row]))) for row in draws])
    low, high = np.nanpercentile(resampled, [50 * (1 - level), 50 * (1 + level)])
    return Interval(estimate, float(low), float(high), level, len(ids))


def independent_room_bootstrap(a, rooms_a, b, rooms_b, compare: Callable[[float, float], float] = lambda x, y: x - y,
                               statistic: Callable[[np.ndarray], float] = np.nanmean, level: float = 0.95,
                               resamples: int = 2000, seed: int = 0, min_rooms: int = MIN_ROOMS) -> Interval:
    """Interval of ``compare(statistic(a), statistic(b))`` for two sets of rooms that share nothing (e.g. two
    families of rooms): each set's rooms are resampled on their own (a stratified bootstrap), with the same
    resample count. Both sets need ``min_rooms`` rooms; ``rooms`` reports the smaller count."""
    _check(level, resamples, min_rooms)
    ids_a, groups_a = _groups(a, rooms_a, "independent_room_bootstrap (a)")
    ids_b, groups_b = _groups(b, rooms_b, "independent_room_bootstrap (b)")
    estimate = float(compare(statistic(np.asarray(a, dtype=float)), statistic(np.asarray(b, dtype=float))))
    fewest = min(len(ids_a), len(ids_b))
    if fewest < min_rooms:
        return Interval(estimate, math.nan, math.nan, level, fewest,
                        f"{fewest} rooms: an interval needs at least {min_rooms} on each side")
    draws_a = room_resamples(len(ids_a), resamples, seed)
    draws_b = room_resamples(len(ids_b), resamples, seed + 1)
    resampled = np.array([compare(statistic(np.concatenate([groups_a[i] for i in ra])),
                                  statistic(np.concatenate([groups_b[i] for i in rb])))
                          for ra, rb in zip(draws_a, draws_b)])
    low, high = np.nanpercentile(resampled, [50 * (1 - level), 50 * (1 + level)])
    return Interval(estimate, float(low), float(high), level, fewest)


def room_bootstrap(values, rooms, statistic: Callable[[np.ndarray], float] = np.nanmean, level: float = 0.95,
                   resamples: int = 2000, seed: int = 0, min_rooms: int = MIN_ROOMS) -> Interval:
    """Interval of ``statistic(values)`` by resampling rooms.

    Args:
        values: (N, ...) per-frame values (e.g. (N,) per-frame MPJPE in cm, or (N, J) joint errors:
            the statistic sees every value of the resampled frames).
        rooms: (N,) room id of each frame.
        statistic: ``np.nanmean`` (default; frames pooled, so a room weighs by its frame count),
            ``np.nanmedian``, ``lambda v: np.nanpercentile(v, 90)``, ...
    """
    _check(level, resamples, min_rooms)
    ids, groups = _groups(values, rooms, "room_bootstrap")
    estimate = float(statistic(np.asarray(values, dtype=float)))
    if len(ids) < min_rooms:
        return Interval(estimate, math.nan, math.nan, level, len(ids),
                        f"{len(ids)} rooms: an interval needs at least {min_rooms}")
    draws = room_resamples(len(ids), resamples, seed)
    if statistic is np.nanmean:      # the common case, without concatenating: pooled sums over counts
        sums = np.array([np.nansum(g) for g in groups])
        counts = np.array([np.count_nonzero(np.isfinite(g)) for g in groups], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            resampled = sums[draws].sum(1) / counts[draws].sum(1)
    else:
        resampled = np.array([statistic(np.concatenate([groups[i] for i in row])) for row in draws])
    low, high = np.nanpercentile(resampled, [50 * (1 - level), 50 * (1 + level)])
    return Interval(estimate, float(low), float(high), level, len(ids))
