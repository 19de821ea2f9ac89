"""Where requests come from: a scenario's classes (mixed by weight), a trace file, or closed-loop
users who send their next request a think time after each reply."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import InfercastError
from .scenario import RequestClass, Scenario
from .sessions import Sessions, open_loop_sessions
from .traffic import Request, arrival_times, lengths


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
        if c.turns == 1:
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
    if all(c.turns == 1 for c in sc.classes):
        return [Request(k, float(t), i, o, prefix_id=p, prefix_len=pl)
                for k, (t, (i, o, p, pl, _)) in enumerate(zip(times, draws))], None
    return open_loop_sessions(times, draws, sampler, a.think_time_s, sc.num_requests)


def _rows(path: Path):
    if not path.exists():
        raise InfercastError(f"trace.path: {path} does not exist")
    if path.suffix == ".jsonl":
        with path.open() as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield n, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InfercastError(f"{path}:{n}: malformed JSON line ({exc.msg})") from None
    else:
        with path.open(newline="") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                yield n, row


def _azure_time(text: str) -> float:
    # "2023-11-16 18:15:46.6805900": fractional seconds may carry 7 digits; datetime takes 6
    head, _, frac = text.strip().partition(".")
    return datetime.fromisoformat(head).timestamp() + (float("0." + frac) if frac else 0.0)


def trace_requests(path: Path, fmt: str) -> list[Request]:
    """Generic columns: arrival_s, input_len, output_len. Azure LLM inference trace columns:
    TIMESTAMP, ContextTokens, GeneratedTokens (arrivals made relative to the first)."""
    cols = ("arrival_s", "input_len", "output_len") if fmt == "generic" else ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
    out = []
    for n, row in _rows(path):
        try:
            t = float(row[cols[0]]) if fmt == "generic" else _azure_time(str(row[cols[0]]))
            i, o = int(row[cols[1]]), int(row[cols[2]])
        except (KeyError, ValueError, TypeError) as exc:
            raise InfercastError(f"{path}:{n}: malformed trace row, need columns {', '.join(cols)} ({exc})") from None
        if i < 1 or o < 1 or not np.isfinite(t):
            raise InfercastError(f"{path}:{n}: lengths must be >= 1 and the time finite (got {t}, {i}, {o})")
        out.append((t, i, o))
    if not out:
        raise InfercastError(f"{path}: the trace has no rows")
    out.sort()
    t0 = out[0][0]
    return [Request(k, t - t0, i, o) for k, (t, i, o) in enumerate(out)]
