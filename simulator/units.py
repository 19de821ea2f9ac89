"""Parse quantities written with units ("4.8 TB/s", "141 GB", "989 TFLOP/s", "700 W") into SI numbers.

Decimal prefixes (k, M, G, T, P) are powers of 10 as on datasheets; binary prefixes (Ki, Mi, Gi, Ti)
are powers of 2. Conversion happens once, at load; everything inside infercast is SI.
"""

from __future__ import annotations

import re

_PREFIX = {
    "": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
}
# unit family -> accepted base spellings
_BASES = {
    "bytes": ("B",),
    "bytes_per_s": ("B/s", "Bps"),
    "flops_per_s": ("FLOP/s", "FLOPS", "OP/s", "OPS"),
    "watts": ("W",),
    "hertz": ("Hz",),
    "seconds": ("s",),
}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NUM = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"


def parse_quantity(value: object, family: str) -> float:
    """Return `value` in SI base units of `family`; plain numbers are taken as already SI."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number or a string with a unit, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a number or a string with a unit, got {value!r}")
    text = value.strip().replace(",", "")
    m = re.fullmatch(_NUM + r"\s*(.*)", text)
    if not m:
        raise ValueError(f"cannot read {value!r} as a quantity")
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
    raise ValueError(f"unit {unit!r} in {value!r} is not one of [prefix]{{{allowed}}}")
