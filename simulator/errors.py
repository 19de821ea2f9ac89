"""User-facing errors: one line, naming the file, key or flag, what was given and what is allowed.

Every boundary check raises through `bad_input`, so every message has the same shape:
    --seed: must be a whole number >= 0 (got -1)
    workloads/x.yaml: key 'classes.0.input_len.uniform': low must be <= high (got [2000, 100])
"""

from __future__ import annotations

import math


class InfercastError(ValueError):
    """Bad input from the user. The CLI prints the message on one line and exits with code 2."""


def show(value: object, limit: int = 60) -> str:
    """A given value as the user would recognise it, cut to `limit` characters, on one line."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        text = repr(int(value))
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bad_input(where: str, allowed: str, given: object = ...) -> InfercastError:
    """The one formatter: `where` (file and key path, or flag), what is allowed, and what was given."""
    got = "" if given is ... else f" (got {show(given)})"
    return InfercastError(f"{where}: {allowed}{got}")
