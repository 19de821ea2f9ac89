"""Checks of single values at the boundary (flags, file keys), each raising the one error shape of
errors.bad_input. Pydantic types cover config files; these cover flags and values read by hand."""

from __future__ import annotations

import math
import numbers
import re

from .errors import InfercastError, bad_input

# A number in exponent form without a dot ('1e3', '1e-9', '2.5e3'): YAML 1.2 reads it as a float, but
# PyYAML follows YAML 1.1, whose floats need a dot and a signed exponent, and hands it over as a string.
EXPONENT_FORM = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+")


def plain_number(value: object) -> float | None:
    """`value` as a finite float: an int or float (not a boolean), or a string in exponent form
    (EXPONENT_FORM: what a YAML 1.2 writer means by `1e3`); None for anything else, for inf and
    NaN, and for an integer too large for a float."""
    if type(value) is float:  # the common case first: a what-if checks its flags on every call
        return value if math.isfinite(value) else None
    if isinstance(value, str) and EXPONENT_FORM.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        x = float(value)
    except OverflowError:  # an int of hundreds of digits
        return None
    return x if math.isfinite(x) else None


def plain_whole(value: object) -> int | None:
    """`value` as an int: an integer (not a boolean) or a float with no fraction (4096.0); None
    for anything else."""
    if type(value) is int:  # the common case first
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def whole_number(value: object, where: str, low: int = 1, high: int | None = None, why_high: str = "") -> int:
    """`value` as an int in [low, high]; booleans and fractions are refused."""
    n = plain_whole(value)
    if n is None:
        raise bad_input(where, f"must be a whole number >= {low}", value)
    value = n
    if value < low:
        raise bad_input(where, f"must be a whole number >= {low}", value)
    if high is not None and value > high:
        raise bad_input(where, f"must be <= {high:,}{why_high}", value)
    return int(value)


def finite_number(value: object, where: str, low: float | None = None, high: float | None = None,
                  low_inclusive: bool = False) -> float:
    """`value` as a finite float, above `low` (or at it when `low_inclusive`) and at most `high`."""
    x = plain_number(value)
    if x is None:
        raise bad_input(where, "must be a finite number", value)
    if low is not None and (x < low or (x == low and not low_inclusive)):
        raise bad_input(where, f"must be {'>=' if low_inclusive else '>'} {low:g}", value)
    if high is not None and x > high:
        raise bad_input(where, f"must be <= {high:g}", value)
    return x


__all__ = ["InfercastError", "plain_number", "plain_whole", "whole_number", "finite_number"]
