"""Numbers as people read them, the one place every message formats bytes, seconds, counts and rates.

    size(2.28e11)      -> "212.4 GiB"        (binary units, B to PiB; "more than 1 EiB" beyond)
    seconds(0.0123)    -> "12.3 ms"          (us, ms, s, min, h, days)
    count(2_000_000)   -> "2,000,000"
    rate(0.00646, "req/s") -> "0.00646 req/s"
    rate(1e-300, "req/s")  -> "1e-300 req/s"
    duration(float("inf")) -> "more than 30 years"   (for prose: a gap or span, never "infinite")
    money(7.2e11)      -> "more than $1,000,000,000"

A value that is not a finite number says so ("not a number", "infinite") instead of printing
nan or inf; an absurd one says "more than ..." instead of 25 digits.
"""

from __future__ import annotations

import math
import numbers

EIB = 2.0**60
BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
MAX_COUNT = 1e15  # counts beyond this are absurd for any input infercast takes
MAX_SECONDS = 1e9  # ~32 years
MAX_USD = 1e9  # dollars: a figure beyond a billion (per hour, per Mtoken) is absurd, and says so
SMALLEST_PLAIN = 1e-4  # below it a number is written as a power of ten
TIME_STEPS = ((60.0, "min"), (3600.0, "h"), (86400.0, "days"))


def _not_finite(value: object) -> str | None:
    """The words for a value that is not a finite real number; None for one that is."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "not a number"
    x = float(value)
    if math.isnan(x):
        return "not a number"
    if math.isinf(x):
        return "infinite" if x > 0 else "minus infinite"
    return None


def significant(x: float, digits: int = 3) -> str:
    """`x` to about `digits` significant figures, with thousands separators and no exponent
    (at least one decimal below 10, whole numbers from 1,000 up); below 0.0001 as a power of ten
    ("1e-9", not nine zeros), beyond MAX_COUNT as "more than 1,000,000,000,000,000"."""
    bad = _not_finite(x)
    if bad is not None:
        return bad
    if x == 0:
        return "0"
    if abs(x) > MAX_COUNT:
        return f"more than {MAX_COUNT:,.0f}" if x > 0 else f"less than -{MAX_COUNT:,.0f}"
    if abs(x) < SMALLEST_PLAIN:
        mantissa, _, exponent = f"{x:.{digits - 1}e}".partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - mag)
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def size(n: float) -> str:
    """Bytes in binary units to one decimal: "512 B", "63.1 GiB", "1.5 TiB"; beyond 1 EiB, "more than 1 EiB"."""
    bad = _not_finite(n)
    if bad is not None:
        return bad
    x = float(n)
    if abs(x) >= EIB:
        return "more than 1 EiB" if x > 0 else "less than -1 EiB"
    k = 0
    while abs(x) >= 1024 and k < len(BINARY_UNITS) - 1:
        x /= 1024
        k += 1
    return f"{x:,.0f} B" if k == 0 else f"{x:,.1f} {BINARY_UNITS[k]}"


def gib_ceil(n: float) -> str:
    """Bytes rounded up to whole GiB, as a quantity flag takes it: "13GiB"."""
    return f"{max(1, math.ceil(float(n) / 2**30))}GiB"


def seconds(s: float) -> str:
    """A duration: "3 ns", "850 us", "12.3 ms", "4.2 s", "95.3 s", "3.5 min", "2.1 h", "12.0 days"."""
    bad = _not_finite(s)
    if bad is not None:
        return bad
    x = float(s)
    if x < 0:
        return "-" + seconds(-x)
    if x >= MAX_SECONDS:
        return "more than 30 years"
    if x == 0:
        return "0 s"
    if x < 1e-6:
        return f"{significant(x * 1e9)} ns"
    if x < 1e-3:
        return f"{significant(x * 1e6)} us"
    if x < 1.0:
        return f"{significant(x * 1e3)} ms"
    if x < 120.0:  # "95.3 s" reads better than "1.6 min"
        return f"{significant(x)} s"
    unit, name = 60.0, "min"
    for step, step_name in TIME_STEPS:
        if x >= step:
            unit, name = step, step_name
    return f"{x / unit:,.1f} {name}"


def duration(s: float) -> str:
    """A duration for a sentence ("arrive over ...", "one request every ..."): as `seconds`, but an
    overflowed one (a gap of 1/1e-320 s) reads "more than 30 years", never "infinite"."""
    if isinstance(s, numbers.Real) and not isinstance(s, bool) and float(s) == math.inf:
        return seconds(MAX_SECONDS)
    return seconds(s)


def request_rate(x: float) -> str:
    """A request rate for a sentence: "4 requests/s", or below 0.01/s the mean gap ("one request
    every 4.0 days", "less than one request every 30 years")."""
    if not x > 0 or x >= 0.01:
        return rate(x, "requests/s")
    gap = duration(1.0 / x)
    return f"less than one request every {gap.removeprefix('more than ')}" if gap.startswith("more than") \
        else f"one request every {gap}"


def money(usd: float, cents: bool = True) -> str:
    """Dollars: "$12.34" (`cents`), "$1,234"; beyond MAX_USD "more than $1,000,000,000"."""
    bad = _not_finite(usd)
    if bad is not None:
        return bad
    x = float(usd)
    if abs(x) > MAX_USD:
        return f"more than ${MAX_USD:,.0f}" if x > 0 else f"less than -${MAX_USD:,.0f}"
    if 0 < abs(x) < 0.01 and cents:
        return f"${significant(x)}"
    return f"${x:,.2f}" if cents else f"${x:,.0f}"


def count(n: float) -> str:
    """A count with thousands separators: "2,000,000"; a fraction keeps three significant figures."""
    bad = _not_finite(n)
    if bad is not None:
        return bad
    x = float(n)
    if abs(x) > MAX_COUNT:
        return f"more than {MAX_COUNT:,.0f}" if x > 0 else f"less than -{MAX_COUNT:,.0f}"
    if isinstance(n, numbers.Integral) or x == int(x):
        return f"{int(x):,}"
    return significant(x)


def rate(x: float, unit: str = "/s") -> str:
    """A rate to three significant figures with its unit: "0.00646 req/s", "40,597 tokens/s"."""
    bad = _not_finite(x)
    v = 0.0 if bad is not None else float(x)
    if bad is None and abs(v) > MAX_COUNT:
        bad = f"more than {MAX_COUNT:,.0f}"
    return f"{bad if bad is not None else significant(v)} {unit}".rstrip()
