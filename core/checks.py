"""Input checks: one function per kind of value, each raising :class:`core.errors.InputError`.

``name`` is how the user typed the value (``"--seed"`` on a command line, ``"speakers_m"`` in a
file, ``"SimulationConfig.snr_db"`` in the API): the message names it, the value, and what to give.
Every check returns the value converted to its Python type, so a caller writes
``self.seed = check_whole("--seed", seed, minimum=0)``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np

from core.errors import InputError

__all__ = ["check_choice", "check_finite_array", "check_number", "check_whole"]


def check_whole(name: str, value, minimum: int | None = None, maximum: int | None = None,
                error: type[InputError] = InputError) -> int:
    """A whole number (not a bool, not 2.5, not "3") within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (Integral, Real)) or \
            (isinstance(value, Real) and not float(value).is_integer()):
        raise error(f"{name} = {value!r}: give a whole number" + _range_text(minimum, maximum))
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(f"{name} = {value}: give a whole number" + _range_text(minimum, maximum))
    return value


def check_number(name: str, value, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, allow_inf: bool = False,
                 error: type[InputError] = InputError) -> float:
    """A real number, finite unless ``allow_inf``, within [low, high] (open ends when asked)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise error(f"{name} = {value!r}: give a number" + _interval_text(low, high, low_open, high_open))
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise error(f"{name} = {value}: give a finite number" + _interval_text(low, high, low_open, high_open))
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        raise error(f"{name} = {value:g}: give a number" + _interval_text(low, high, low_open, high_open))
    return value


def check_choice(name: str, value, choices: Iterable, error: type[InputError] = InputError):
    """One of ``choices`` (compared with ==)."""
    choices = tuple(choices)
    if value not in choices:
        raise error(f"{name} = {value!r}: choose one of {', '.join(map(str, choices))}")
    return value


def check_finite_array(name: str, value, shape: tuple | None = None,
                       error: type[InputError] = InputError) -> np.ndarray:
    """A float array of finite numbers; ``shape`` may hold None for any size on that axis."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise error(f"{name} = {_short(value)}: give numbers" + _shape_text(shape)) from None
    if shape is not None and (array.ndim != len(shape) or
                              any(want is not None and got != want for got, want in zip(array.shape, shape))):
        raise error(f"{name} has shape {array.shape}: give an array" + _shape_text(shape))
    if not np.all(np.isfinite(array)):
        raise error(f"{name} contains NaN or infinity: give finite numbers")
    return array


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return {0: " >= 0", 1: " >= 1 (a positive count)"}.get(minimum, f" >= {minimum}")
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _interval_text(low, high, low_open, high_open) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _shape_text(shape) -> str:
    if shape is None:
        return ""
    return " of shape (" + ", ".join("any" if s is None else str(s) for s in shape) + ")"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
