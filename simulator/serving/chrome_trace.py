"""A simulation's engine steps as a Chrome trace (the trace-event JSON format that chrome://tracing
and Perfetto open): one process per replica, one complete ("X") event per step record - a single
step, a stretch of pure-decode steps, or a step with a prompt chunk and the decode stretch that
follows it - and a counter ("C") of the KV blocks in use at each step's start. Times are in microseconds of simulated time."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InfercastError
from .metrics import replica_layout
from .simulate import SimResult

US = 1e6  # microseconds per second


def step_name(decode_tokens: int, prefill_tokens: int, n_steps: int) -> str:
    """prefill+decode, prefill or decode for one step; decode x{n} for a stretch of n decode steps;
    "prefill, then decode x{n-1}" for an event whose first step takes prompt chunks (with or without
    decodes: the record does not split its tokens by step) and whose n - 1 decode steps follow."""
    if prefill_tokens <= 0:
        return f"decode x{n_steps}" if n_steps > 1 else "decode"
    if n_steps > 1:
        return f"prefill, then decode x{n_steps - 1}"
    return "prefill+decode" if decode_tokens > 0 else "prefill"


def _metadata(res: SimResult) -> list[dict]:
    """process_name (and sort order) of every replica; the role is named in disaggregated runs."""
    roles = replica_layout(res)[2]
    events = []
    for i, role in enumerate(roles):
        name = f"replica {i}" if role == "both" else f"replica {i} ({role})"
        events.append({"ph": "M", "name": "process_name", "pid": i, "tid": 0, "args": {"name": name}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": i, "tid": 0, "args": {"sort_index": i}})
    return events


def chrome_trace(res: SimResult) -> dict:
    """The trace as a dict: {"traceEvents": [...], "displayTimeUnit": "ms"}."""
    events = _metadata(res)
    for rec in sorted(res.steps, key=lambda s: (int(s[0]), float(s[1]))):
        rep, start, dur, n, dec, pre, _flops, _bytes, kv = rec[:9]
        rep, ts, n, dec, pre, kv = int(rep), float(start) * US, int(n), int(dec), int(pre), int(kv)
        events.append({"ph": "X", "name": step_name(dec, pre, n), "cat": "step", "pid": rep, "tid": 0, "ts": ts,
                       "dur": float(dur) * US,
                       "args": {"decode_tokens": dec, "prefill_tokens": pre, "n_steps": n, "kv_blocks_used": kv}})
        events.append({"ph": "C", "name": "kv_blocks_used", "pid": rep, "tid": 0, "ts": ts, "args": {"blocks": kv}})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_chrome_trace(res: SimResult, path, overwrite: bool = False) -> Path:
    """Write the trace as JSON to `path`; an existing file is an error unless `overwrite`."""
    path = Path(path)
    text = json.dumps(chrome_trace(res))
    try:
        with path.open("w" if overwrite else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise InfercastError(f"chrome trace: {path} exists; infercast does not overwrite files, pick a new "
                             "path") from None
    except OSError as exc:
        raise InfercastError(f"chrome trace: cannot write {path}: {exc.strerror or exc}") from None
    return path
