"""Strict JSON for every output: no NaN or Infinity (jq and strict parsers reject them). A value
that has no number is `null`; the output says why next to it."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite_or_none(value: Any) -> Any:
    """`value` with every non-finite float (and numpy scalar) made None, recursively through
    dicts, lists and tuples; numpy scalars and arrays become plain Python values."""
    if isinstance(value, dict):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite_or_none(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """JSON text of `value` with non-finite numbers as null; raises if anything else is not JSON."""
    return json.dumps(finite_or_none(value), indent=indent, allow_nan=False)
