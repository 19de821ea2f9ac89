"""Render a WhatIfResult as a rich table, JSON or CSV."""

from __future__ import annotations

import csv
from dataclasses import fields
import json
import sys

from .console import console
from .closed_form import WhatIfResult

GIB = 2**30
SUMMARY_KEYS = [f.name for f in fields(WhatIfResult) if f.name not in ("notes", "breakdown")]
OP_KEYS = ["phase", "op", "kind", "count", "flops", "bytes", "comm_bytes", "time_s", "share", "bound"]


def emit(res: WhatIfResult, fmt: str, breakdown: bool) -> None:
    if fmt == "json":
        print(json.dumps(res.to_dict(with_breakdown=breakdown), indent=2))
    elif fmt == "csv":
        rows, keys = (res.breakdown, OP_KEYS) if breakdown else ([res.to_dict()], SUMMARY_KEYS)
        w = csv.DictWriter(sys.stdout, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    else:
        _table(res, breakdown)


def _ms(s: float | None) -> str:
    return "-" if s is None else (f"{s * 1e3:,.2f} ms" if s < 10 else f"{s:,.2f} s")


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.4f}" if x < 1 else f"${x:,.2f}"


def _kv(title: str, rows: list[tuple[str, str]]):
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    return t


def _table(res: WhatIfResult, breakdown: bool) -> None:
    con = console()
    con.print(
        f"[bold]{res.model}[/] on {res.devices}x [bold]{res.hw}[/] ({_layout(res)}), batch {res.batch}, "
        f"{res.input_len:,} in / {res.output_len:,} out; weights {res.dtype}, KV {res.kv_dtype}, GEMM {res.compute_dtype}"
    )
    total = res.weights_bytes + res.kv_cache_bytes + res.activation_bytes
    con.print(_kv("Memory per device", [
        ("weights", f"{res.weights_bytes / GIB:,.2f} GiB"),
        (f"KV cache ({res.batch} x {res.input_len + res.output_len:,} tokens)", f"{res.kv_cache_bytes / GIB:,.2f} GiB"),
        ("activations (prefill peak)", f"{res.activation_bytes / GIB:,.2f} GiB"),
        ("total", f"{total / GIB:,.2f} GiB"),
        ("usable", f"{res.memory_capacity_bytes / GIB:,.2f} GiB"),
        ("max batch at this context", f"{res.max_batch:,}"),
    ]))
    if not res.fits:
        con.print(f"[bold red]{res.message}[/]")
    else:
        con.print(_kv("Latency and throughput", [
            ("TTFT", _ms(res.ttft_s)), ("TPOT", _ms(res.tpot_s)), ("E2E", _ms(res.e2e_s)),
            ("output tokens/s", f"{res.throughput_tok_s:,.1f}"), ("prefill tokens/s", f"{res.prefill_tok_s:,.0f}"),
            ("prefill", f"{res.bound_prefill}-bound"), ("decode", f"{res.bound_decode or '-'}-bound"),
        ]))
        est = " (estimate)" if res.price_is_estimate else ""
        con.print(_kv("Cost", [
            ("$/hour" + est, _usd(res.usd_per_hour)), ("$/Mtoken input", _usd(res.usd_per_mtok_input)),
            ("$/Mtoken output", _usd(res.usd_per_mtok_output)), ("$/Mtoken blended", _usd(res.usd_per_mtok_blended)),
        ]))
    for note in res.notes:
        con.print(f"[yellow]note:[/] {note}")
    cal = "calibrated profile" if res.calibrated else "default efficiencies (calibrated: false)"
    con.print(f"[dim]rates: {cal}[/]")
    if breakdown and res.breakdown:
        _ops(con, res)


def _ops(con, res: WhatIfResult) -> None:
    from rich.table import Table

    t = Table(title="Per-op breakdown (decode: mean step)", title_justify="left")
    for col in ("phase", "op", "kind", "count", "GFLOP", "MB", "time", "share", "bound"):
        t.add_column(col, justify="right" if col not in ("phase", "op", "kind", "bound") else "left")
    for r in res.breakdown:
        t.add_row(r["phase"], r["op"], r["kind"], str(r["count"]), f"{r['flops'] / 1e9:,.1f}",
                  f"{(r['bytes'] + r['comm_bytes']) / 1e6:,.1f}", _ms(r["time_s"]), f"{100 * r['share']:.1f}%", r["bound"])
    con.print(t)


def _layout(res) -> str:
    parts = [f"TP{res.tp}", f"PP{res.pp}"] + [f"{k}{v}" for k, v in (("CP", res.cp), ("EP", res.ep)) if v > 1]
    return " ".join(parts)
