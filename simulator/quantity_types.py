"""Pydantic field types that accept a number (SI) or a string with a unit and store SI floats."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, ConfigDict

from .units import parse_quantity


def _unit(family: str) -> BeforeValidator:
    return BeforeValidator(lambda v: parse_quantity(v, family))


Bytes = Annotated[float, _unit("bytes")]
BytesPerS = Annotated[float, _unit("bytes_per_s")]
FlopsPerS = Annotated[float, _unit("flops_per_s")]
Watts = Annotated[float, _unit("watts")]
Seconds = Annotated[float, _unit("seconds")]

# Every config model: immutable, unknown keys rejected.
STRICT = ConfigDict(frozen=True, extra="forbid")
