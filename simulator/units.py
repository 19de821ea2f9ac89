"""Parse quantities written with units ("4.8 TB/s", "141 GB", "989 TFLOP/s", "700 W") into SI numbers,
and write SI numbers back the way a datasheet would ("1 EiB", "3.35 TB/s").

Decimal prefixes (k, M, G, T, P, E, Z) are powers of 10 as on datasheets; binary prefixes (Ki, Mi,
Gi, Ti, Pi, Ei) are powers of 2. Conversion happens once, at load; everything inside infercast is
SI. A quantity must be finite and at most limits.MAX_QUANTITY of its family, so an overflow
("1e300 GiB", YAML's `.inf`) is refused where it is read instead of turning into inf later.
"""

from __future__ import annotations

import math
import re

from .limits import MAX_QUANTITY

_DECIMAL = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}
_PREFIX = {"": 1.0, **_DECIMAL, **_BINARY}
# unit family -> accepted base spellings (the first is the one written back)
_BASES = {
    "bytes": ("B",),
    "bytes_per_s": ("B/s", "Bps"),
    "flops_per_s": ("FLOP/s", "FLOPS", "OP/s", "OPS"),
    "watts": ("W",),
    "hertz": ("Hz",),
    "seconds": ("s",),
}
# what a quantity of the family is called in messages
NOUN = {"bytes": "size", "bytes_per_s": "bandwidth", "flops_per_s": "compute rate", "watts": "power",
        "hertz": "frequency", "seconds": "time"}
_EXAMPLE = {"bytes": "80 GiB", "bytes_per_s": "3.35 TB/s", "flops_per_s": "989 TFLOP/s", "watts": "700 W",
            "hertz": "1.98 GHz", "seconds": "10 us"}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NUM = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"


def parse_quantity(value: object, family: str) -> float:
    """Return `value` in SI base units of `family`; plain numbers are taken as already SI.
    Raises ValueError (without repeating the value: the caller names it) when it is not a number,
    not finite, or above MAX_QUANTITY[family]."""
    if isinstance(value, float) and not math.isfinite(value):  # YAML's .inf / .nan
        raise ValueError(f"must be a finite {NOUN[family]}, e.g. '{_EXAMPLE[family]}'")
    number = _si_number(value, family)
    if not abs(number) <= MAX_QUANTITY[family]:  # also an overflow to inf ('1e300 GiB')
        raise ValueError(f"must be at most {format_quantity(MAX_QUANTITY[family], family)}")
    return number


def _si_number(value: object, family: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"must be a number or a string with a unit, e.g. '{_EXAMPLE[family]}'")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int of hundreds of digits
            return math.inf
    text = value.strip().replace(",", "")
    m = re.fullmatch(_NUM + r"\s*(.*)", text)
    if not m:
        raise ValueError(f"must be a number or a string with a unit, e.g. '{_EXAMPLE[family]}'")
    number, unit = float(m.group(1)), m.group(2).strip()
    if unit == "":
        return number
    if family == "seconds" and unit in _TIME:
        return number * _TIME[unit]
    for base in _BASES[family]:
        if unit.endswith(base):
            prefix = unit[: -len(base)]
            if prefix in _PREFIX:
                return number * _PREFIX[prefix]
    allowed = ", ".join(_BASES[family])
    raise ValueError(f"the unit must be one of [prefix]{{{allowed}}}, e.g. '{_EXAMPLE[family]}'")


def format_quantity(value: float, family: str) -> str:
    """`value` (SI) with the largest prefix that keeps the number >= 1: binary prefixes for sizes
    (as memory is sold), decimal for rates; at most 3 significant digits ('1 EiB', '3.35 TB/s')."""
    if not math.isfinite(value):
        return repr(value)
    if family == "seconds":
        return f"{_number(value)} s"
    prefixes = _BINARY if family == "bytes" else {k: v for k, v in _DECIMAL.items() if k != "K"}
    name, scale = "", 1.0
    for p, s in prefixes.items():
        if abs(value) >= s:
            name, scale = p, s
    return f"{_number(value / scale)} {name}{_BASES[family][0]}"


def _number(x: float) -> str:
    """3 significant digits, or a whole number with thousands separators from 1000 up."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
