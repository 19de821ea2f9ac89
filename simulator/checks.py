"""Checks of single values at the boundary (flags, file keys), each raising the one error shape of
errors.bad_input. Pydantic types cover config files; these cover flags and values read by hand."""

from __future__ import annotations

import math
import numbers

from .errors import InfercastError, bad_input


def whole_number(value: object, where: str, low: int = 1, high: int | None = None, why_high: str = "") -> int:
    """`value` as an int in [low, high]; booleans and fractions are refused."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        ok, value = True, int(value)
    if not ok:
        raise bad_input(where, f"must be a whole number >= {low}", value)
    if value < low:
        raise bad_input(where, f"must be a whole number >= {low}", value)
    if high is not None and value > high:
        raise bad_input(where, f"must be <= {high:,}{why_high}", value)
    return int(value)


def finite_number(value: object, where: str, low: float | None = None, high: float | None = None,
                  low_inclusive: bool = False) -> float:
    """`value` as a finite float, above `low` (or at it when `low_inclusive`) and at most `high`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise bad_input(where, "must be a finite number", value)
    x = float(value)
    if low is not None and (x < low or (x == low and not low_inclusive)):
        raise bad_input(where, f"must be {'>=' if low_inclusive else '>'} {low:g}", value)
    if high is not None and x > high:
        raise bad_input(where, f"must be <= {high:g}", value)
    return x


def positive_seconds(value: object, where: str) -> float:
    """An SLO or a time: a finite number of seconds > 0."""
    return finite_number(value, where, low=0.0)


__all__ = ["InfercastError", "whole_number", "finite_number", "positive_seconds"]
