"""Where requests come from: a scenario's classes (mixed by weight), a trace file, or closed-loop
users who send their next request a think time after each reply."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config_io import Given, one_line, read_text_file
from ..errors import bad_input, show
from ..human import seconds
from ..limits import MAX_REQUESTS, MAX_TOKENS, MAX_TRACE_BYTES
from .scenario import RequestClass, Scenario
from .sessions import Sessions, open_loop_sessions
from .traffic import FixedLength, Request, arrival_times, lengths


class ClassSampler:
    """Draws requests from classes mixed by weight: first turns as (input_len, output_len,
    prefix_id, prefix_len, class), and a multi-turn session's later turns (sessions.py)."""

    def __init__(self, classes: list[RequestClass], rng: np.random.Generator):
        self.classes, self.rng = classes, rng
        w = np.array([c.weight for c in classes])
        self.p = w / w.sum()

    def draw(self, n: int) -> list[tuple[int, int, int, int, int]]:
        which = self.rng.choice(len(self.classes), n, p=self.p)
        out: list = [None] * n
        for k, c in enumerate(self.classes):
            idx = np.nonzero(which == k)[0]
            if len(idx) == 0:
                continue
            i = lengths(c.input_len, len(idx), self.rng, f"classes[{k}].input_len")
            o = lengths(c.output_len, len(idx), self.rng, f"classes[{k}].output_len")
            for j, a, b in zip(idx, i, o):
                out[j] = (max(int(a), c.prefix_len + 1), int(b), k if c.prefix_len else -1, c.prefix_len, k)
        return out

    def turns(self, k: int) -> tuple[list[int], list[int]]:
        """(new message tokens, reply tokens) of each turn after the first of a class-k session."""
        c = self.classes[k]
        if c.turns == FixedLength(1):
            return [], []
        more = int(lengths(c.turns, 1, self.rng, f"classes[{k}].turns")[0]) - 1
        if more == 0:
            return [], []
        msg = c.input_len if c.turn_input_len is None else c.turn_input_len
        return (lengths(msg, more, self.rng, f"classes[{k}].turn_input_len").tolist(),
                lengths(c.output_len, more, self.rng, f"classes[{k}].output_len").tolist())


def open_loop_requests(sc: Scenario) -> tuple[list[Request], Sessions | None]:
    """The scenario's requests at its arrival times, and the Sessions that sends the later turns
    of multi-turn classes (None when every class has one turn)."""
    rng = np.random.default_rng(sc.seed)
    a = sc.arrival
    times = arrival_times(a.process, sc.num_requests, a.rate or 1.0, rng, a.cv)
    sampler = ClassSampler(sc.classes, rng)
    draws = sampler.draw(sc.num_requests)
    if all(c.turns == FixedLength(1) for c in sc.classes):
        return [Request(k, float(t), i, o, prefix_id=p, prefix_len=pl)
                for k, (t, (i, o, p, pl, _)) in enumerate(zip(times, draws))], None
    return open_loop_sessions(times, draws, sampler, a.think_time_s, sc.num_requests)


PLAIN_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


class TraceColumns(NamedTuple):
    time: str
    input_len: str
    output_len: str


COLUMNS = {"generic": TraceColumns("arrival_s", "input_len", "output_len"),  # seconds, tokens, tokens
           "azure": TraceColumns("TIMESTAMP", "ContextTokens", "GeneratedTokens")}  # a date and time, tokens


TRACE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}  # by the lower-cased suffix


def _rows(path: Path, cols: TraceColumns):
    """(line number, row as a mapping) of a CSV file with a header (.csv), or of a JSONL file (.jsonl
    or .json), the suffix in any case; another suffix is refused."""
    text, where = read_text_file(path, "trace", MAX_TRACE_BYTES), one_line(path)  # a missing file or a folder first
    kind = TRACE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise bad_input(where, "a trace file's name must end in .csv (a CSV file with a header) or .jsonl or .json "
                               "(one JSON object per line)", Given(show(path.suffix or "no suffix")))
    if kind == "jsonl":
        for n, line in enumerate(io.StringIO(text), 1):
            if line.strip():
                try:
                    row = json.loads(line, object_pairs_hook=_unique_keys)
                except (json.JSONDecodeError, RecursionError, ValueError) as exc:
                    why = exc.msg if isinstance(exc, json.JSONDecodeError) else (
                        "nested too deeply" if isinstance(exc, RecursionError) else str(exc))
                    raise bad_input(f"{where}:{n}", f"malformed trace row: not JSON ({why})") from None
                yield n, row
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        missing = [c for c in cols if c not in header]
        if missing:
            raise bad_input(f"{where}:1", f"the CSV header must name the columns {', '.join(cols)}; missing "
                                         f"{', '.join(missing)}", Given(show(",".join(header))))
        twice = sorted({c for c in header if header.count(c) > 1})
        if twice:
            raise bad_input(f"{where}:1", f"the CSV header names {', '.join(twice)} more than once: which one "
                                         f"holds the values is ambiguous", Given(show(",".join(header))))
        for row in reader:
            if None in row:  # DictReader's key for cells past the header's
                raise bad_input(f"{where}:{reader.line_num}", f"malformed trace row: {len(header) + len(row[None])} "
                                                              f"cells, and the header names {len(header)}")
            yield reader.line_num, row
    except csv.Error as exc:
        raise bad_input(f"{where}:{reader.line_num}", f"malformed CSV ({exc})") from None


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"the key {', '.join(twice)} appears more than once")
    return dict(pairs)


def _azure_time(text: str) -> tuple[float, bool]:
    """(seconds since the epoch, whether the time gave its zone). A time without a zone is UTC, so
    a replay does not depend on the time zone of the machine it runs on."""
    # "2023-11-16 18:15:46.6805900": fractional seconds may carry 7 digits; datetime takes 6
    text = text.strip()
    if not text.isascii():
        raise ValueError(text)
    m = re.fullmatch(r"([^.]*)(?:\.([0-9]+))?([+-][0-9:]+|Z)?", text)
    if m is None:
        raise ValueError(text)
    head, frac, zone = m[1], m[2], m[3]
    when = datetime.fromisoformat(head + (zone or ""))
    aware = when.tzinfo is not None
    if not aware:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() + (float("0." + frac) if frac else 0.0), aware


def _row_time(value: object, fmt: str) -> float | tuple[float, bool]:
    """A row's arrival time in seconds: generic, a finite number >= 0; azure, a date and time (with
    whether it gave its zone)."""
    if fmt == "azure":
        if not isinstance(value, str):
            raise ValueError("a date and time such as 2023-11-16 18:15:46.68")
        try:
            return _azure_time(value)
        except (ValueError, OverflowError):
            raise ValueError("a date and time such as 2023-11-16 18:15:46.68") from None
    t = _number(value)
    if t is None or not math.isfinite(t) or t < 0:
        raise ValueError("a finite number of seconds >= 0")
    return t


def _number(value: object) -> float | None:
    """A JSON number, or a CSV cell written in ASCII digits (no '1_000', no digits of other scripts)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, str) and not PLAIN_NUMBER.fullmatch(value.strip()):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def _row_tokens(value: object) -> int:
    x = _number(value)
    if x is None or not math.isfinite(x) or x != int(x) or not 1 <= x <= MAX_TOKENS:
        raise ValueError(f"a whole number of tokens from 1 to {MAX_TOKENS:,}")
    return int(x)


def _row(row: object, cols: TraceColumns, fmt: str) -> tuple[float, int, int]:
    """(time, input tokens, output tokens) of one row; a ValueError names the column at fault."""
    if not isinstance(row, dict):
        raise ValueError(f"must be an object with the keys {', '.join(cols)}")
    values = []
    for col, read in ((cols.time, lambda v: _row_time(v, fmt)), (cols.input_len, _row_tokens),
                      (cols.output_len, _row_tokens)):
        if row.get(col) in (None, ""):
            raise ValueError(f"{col} is missing")
        try:
            values.append(read(row[col]))
        except ValueError as exc:
            raise ValueError(f"{col} must be {exc} (got {show(row[col])})") from None
    return tuple(values)


def scenario_trace(sc: Scenario, base_dir: Path | None = None) -> list[Request]:
    """The requests of a scenario's trace (a relative path is read from `base_dir`, the scenario
    file's folder): its first num_requests rows when the scenario (or --num-requests) sets it, else all."""
    path = Path(sc.trace.path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return trace_requests(path, sc.trace.format, sc.num_requests if "num_requests" in sc.model_fields_set else None,
                          sc.max_time_s)


def trace_requests(path: Path, fmt: str, limit: int | None = None, max_time_s: float = math.inf) -> list[Request]:
    """The requests of a trace file, in its order, which must be arrival order (its first `limit`
    rows when given). Generic columns: arrival_s (seconds), input_len, output_len. Azure LLM
    inference trace columns: TIMESTAMP, ContextTokens, GeneratedTokens. Arrivals are made relative
    to the first row's, and a row arriving past `max_time_s` (the run's time bound) after it is refused.
    Every row is checked; a bad one is one line naming the file and line."""
    cols, path = COLUMNS[fmt], Path(path)
    where = one_line(path)
    out: list[tuple[float, int, int]] = []
    zoned: set[bool] = set()
    for n, row in _rows(path, cols):
        if limit is not None and len(out) >= limit:
            break
        if len(out) >= MAX_REQUESTS:
            raise bad_input(where, f"a trace replays at most {MAX_REQUESTS:,} requests (limits.MAX_REQUESTS); "
                                       "split it, or set num_requests", Given(f"more than {MAX_REQUESTS:,} rows"))
        try:
            t, i, o = _row(row, cols, fmt)
        except ValueError as exc:
            raise bad_input(f"{where}:{n}", f"malformed trace row: {exc}") from None
        if isinstance(t, tuple):  # azure: (seconds, whether the time gave its zone)
            t, aware = t
            zoned.add(aware)
            if len(zoned) > 1:
                raise bad_input(f"{where}:{n}", f"malformed trace row: {cols.time} values mix times with and "
                                               f"without a time zone; give every row a zone, or none (read as UTC)")
        if out and t < out[-1][0]:
            raise bad_input(f"{where}:{n}", f"malformed trace row: {cols.time} goes back in time, by "
                                           f"{seconds(out[-1][0] - t)}; rows must be in arrival order")
        if out and t - out[0][0] > max_time_s:
            raise bad_input(f"{where}:{n}", f"the row arrives {seconds(t - out[0][0])} after the first, past the run's "
                                           f"time bound (max_time_s: {seconds(max_time_s)}): raise max_time_s, or "
                                           f"replay fewer rows (num_requests)")
        out.append((t, i, o))
    if not out:
        raise bad_input(where, "the trace has no rows")
    t0 = out[0][0]
    return [Request(k, t - t0, i, o) for k, (t, i, o) in enumerate(out)]
