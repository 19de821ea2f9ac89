"""Is a kernel sweep (kernels.csv and kernels.raw.csv beside it) one the fit can read?

`infercast validate publish` checks a sweep before copying it into validate/data/, and
`infercast validate kernels` checks every committed one before fitting it, so a table with a
missing column, an unknown op or dtype, a time that is not a finite positive number, or a raw file
that does not parse is one line naming the file and the first problem, never an internal error."""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

from simulator.config_io import one_line
from simulator.errors import bad_input
from simulator.hwspec import DTYPES

from .kernel_fit import CLASS, COLUMNS, Measurements, measured_peaks, read_csv
from .timing_rounds import read_raw

NUMBERS = COLUMNS[2:]  # every column but op and dtype
MIN_SHAPES = 2  # per op class: one to fit on, one to predict


class BadSweep(ValueError):
    """The first problem of a sweep, as a short phrase naming the file and line."""


def check_sweep(table: Path, where: str, fix: str = "") -> Measurements:
    """The sweep's measurements, or one line: `where` (the flag and file, or the file), the first
    problem found, that it must be a sweep the fit can read, and `fix` (what to do) when given."""
    table = Path(table)
    try:
        data = _table(table)
        _raw(table.with_suffix(".raw.csv"))
    except BadSweep as exc:
        allowed = "must be a kernel sweep the fit can read (the kernels.csv of `calibrate`, kernels.raw.csv beside it)"
        raise bad_input(f"{where}: {exc}", allowed + (f"; {fix}" if fix else "")) from None
    return data


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadSweep(f"{path.name} cannot be read as text ({getattr(exc, 'strerror', None) or type(exc).__name__})")


def _table(table: Path) -> Measurements:
    lines = [line for line in _lines(table) if not line.startswith("#")]
    header = next(csv.reader(lines[:1]), [])
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise BadSweep(f"columns {', '.join(missing)} missing (has: {', '.join(header) or 'none'})")
    for number, row in enumerate(csv.reader(lines[1:]), start=2):
        if len(row) != len(header):
            raise BadSweep(f"row {number - 1}: {len(row)} fields, the header has {len(header)}")
    try:
        data = read_csv(table)
    except (ValueError, csv.Error) as exc:
        raise BadSweep(str(exc)) from None
    for number, row in enumerate(data.rows, start=1):
        _row(row, f"row {number}")
    shapes = Counter(CLASS[r["op"]] for r in data.rows)
    few = sorted(c for c, n in shapes.items() if n < MIN_SHAPES)
    if not shapes:
        raise BadSweep("no measurements")
    if few:
        raise BadSweep(f"op classes {', '.join(few)} with fewer than {MIN_SHAPES} shapes (the held-out error fits "
                       "on 70% of a class and predicts the rest)")
    try:
        measured_peaks(data.rows)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise BadSweep(f"its rates do not make measured peaks ({str(exc).splitlines()[0]})") from None
    return data


def _row(row: dict, where: str) -> None:
    if row["op"] not in CLASS:
        raise BadSweep(f"{where}: op '{one_line(row['op'], 40)}' (known: {', '.join(CLASS)})")
    if row["dtype"] not in DTYPES:
        raise BadSweep(f"{where}: dtype '{one_line(row['dtype'], 40)}' (known: {', '.join(DTYPES)})")
    for key in NUMBERS:
        if not (math.isfinite(row[key]) and row[key] >= 0):
            raise BadSweep(f"{where}: {key} {row[key]} (must be a finite number >= 0)")
    if row["time_s"] <= 0:
        raise BadSweep(f"{where}: time_s 0 (a measured time is > 0)")


def _raw(raw: Path) -> None:
    if not raw.is_file():
        raise BadSweep(f"{raw.name} is missing beside it")
    _lines(raw)
    try:
        timings = read_raw(raw)
    except (KeyError, ValueError, TypeError, csv.Error) as exc:
        raise BadSweep(f"{raw.name}: not key,round,time_s rows ({type(exc).__name__}: {exc})") from None
    if not timings:
        raise BadSweep(f"{raw.name}: no timings")
    for key, rounds in timings.items():
        if not all(math.isfinite(t) and t > 0 for t in rounds.values()):
            raise BadSweep(f"{raw.name}: a time of '{one_line(key, 40)}' is not a finite number > 0")
