"""Pydantic field types for config files: quantities with units, whole numbers, money and labels.

A quantity accepts a number (SI) or a string with a unit and stores a finite SI float within
limits.MAX_QUANTITY; rates and power must be > 0, sizes and times >= 0 (a field that must be > 0
adds Field(gt=0)). A whole number refuses booleans, strings and fractions (lax pydantic reads
`true` as 1 and "12" as 12); a number in exponent form (`1e3`, a float in YAML 1.2 that PyYAML
reads as a string) is read as the number it is. Every refusal is a ValueError whose text says what is allowed;
config_io adds the file, the key and the value given.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, ConfigDict

from .checks import EXPONENT_FORM, plain_number, plain_whole
from .units import NOUN, parse_quantity


def _quantity(family: str, positive: bool) -> BeforeValidator:
    def check(value: object) -> float:
        x = parse_quantity(value, family)
        if x < 0 or (positive and x == 0):
            raise ValueError(f"must be a {NOUN[family]} {'>' if positive else '>='} 0")
        return x

    return BeforeValidator(check)


Bytes = Annotated[float, _quantity("bytes", positive=False)]
Seconds = Annotated[float, _quantity("seconds", positive=False)]
BytesPerS = Annotated[float, _quantity("bytes_per_s", positive=True)]
FlopsPerS = Annotated[float, _quantity("flops_per_s", positive=True)]
Watts = Annotated[float, _quantity("watts", positive=True)]


def whole_number(low: int, high: int, why_high: str = "") -> BeforeValidator:
    """A validator for an int in [low, high]: refuses bools, strings and fractions; 4096.0 is 4096."""

    def check(value: object) -> int:
        allowed = f"must be a whole number from {low:,} to {high:,}"
        if isinstance(value, str) and EXPONENT_FORM.fullmatch(value.strip()):
            value = float(value)  # YAML 1.2's `1e3`, which PyYAML reads as a string
        n = plain_whole(value)
        if n is None or n < low:
            raise ValueError(allowed)
        if n > high:
            raise ValueError(f"must be at most {high:,}{why_high}")
        return n

    return BeforeValidator(check)


def finite_amount(high: float, what: str) -> BeforeValidator:
    """A validator for a plain finite number in (0, high] (a price), refusing bools and strings."""

    def check(value: object) -> float:
        x = plain_number(value)
        if x is None or x <= 0:
            raise ValueError(f"must be a finite {what} > 0")
        if x > high:
            raise ValueError(f"must be at most {high:,.0f}")
        return x

    return BeforeValidator(check)


def _label(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 200 or not value.isprintable():
        raise ValueError("must be text on one line, 1 to 200 characters")
    return value


# An ID or a display name: one line, not empty, not a novel.
Label = Annotated[str, BeforeValidator(_label)]

# Every config model: immutable, unknown keys rejected.
STRICT = ConfigDict(frozen=True, extra="forbid")

__all__ = ["Bytes", "Seconds", "BytesPerS", "FlopsPerS", "Watts", "whole_number", "finite_amount", "Label",
           "STRICT"]
