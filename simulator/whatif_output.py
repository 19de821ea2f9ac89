"""Render a WhatIfResult as a rich table, JSON or CSV."""

from __future__ import annotations

import csv
from dataclasses import fields
import sys

from .console import console
from .closed_form import WhatIfResult
from .human import MAX_COUNT, count, rate, seconds, significant, size
from .strict_json import dumps

SUMMARY_KEYS = [f.name for f in fields(WhatIfResult) if f.name not in ("notes", "breakdown", "advice")]
OP_KEYS = ["phase", "op", "kind", "count", "flops", "bytes", "comm_bytes", "time_s", "share", "bound"]


def emit(res: WhatIfResult, fmt: str, breakdown: bool) -> None:
    if fmt == "json":
        print(dumps(res.to_dict(with_breakdown=breakdown)))
    elif fmt == "csv":
        # a non-fit has no ops to break down: its summary row (fits false, the message) says why
        per_op = breakdown and res.fits
        rows, keys = (res.breakdown, OP_KEYS) if per_op else ([res.to_dict()], SUMMARY_KEYS)
        w = csv.DictWriter(sys.stdout, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    else:
        _table(res, breakdown)


def _ms(s: float | None) -> str:
    return "-" if s is None else seconds(s)


def _usd(x: float | None) -> str:
    """Dollars: cents from $1 up, four decimals down to a cent, three significant figures below
    (a tiny price is not shown as $0.0000); human.significant writes the absurd ones."""
    if x is None:
        return "-"
    if x > MAX_COUNT:
        return f"more than ${MAX_COUNT:,.0f}"
    if x == 0 or x >= 0.01:
        return f"${x:,.2f}" if x >= 1 else f"${x:,.4f}"
    return "$" + significant(x)


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
        f"{count(res.input_len)} in / {count(res.output_len)} out; weights {res.dtype}, KV {res.kv_dtype}, GEMM {res.compute_dtype}"
    )
    total = res.weights_bytes + res.kv_cache_bytes + res.activation_bytes
    con.print(_kv("Memory per device", [
        ("weights", size(res.weights_bytes)),
        (f"KV cache ({count(res.batch)} x {count(res.input_len + res.output_len)} tokens)", size(res.kv_cache_bytes)),
        ("activations (prefill peak)", size(res.activation_bytes)),
        ("total", size(total)),
        ("usable", size(res.memory_capacity_bytes)),
        ("max batch at this context (prompts prefilled one at a time)", count(res.max_batch)),
    ]))
    if not res.fits:
        con.print(f"[bold red]{res.message}[/]")
    else:
        con.print(_kv("Latency and throughput", [
            ("TTFT", _ms(res.ttft_s)), ("TPOT", _ms(res.tpot_s)), ("E2E", _ms(res.e2e_s)),
            ("output tokens/s", rate(res.throughput_tok_s, "")), ("prefill tokens/s", rate(res.prefill_tok_s, "")),
            ("prefill", f"{res.bound_prefill}-bound"), ("decode", f"{res.bound_decode}-bound" if res.bound_decode else "- (no decode step)"),
        ]))
        est = " (estimate)" if res.price_is_estimate else ""
        con.print(_kv("Cost", [
            ("$/hour" + est, _usd(res.usd_per_hour)), ("$/Mtoken input", _usd(res.usd_per_mtok_input)),
            ("$/Mtoken output", _usd(res.usd_per_mtok_output)), ("$/Mtoken blended", _usd(res.usd_per_mtok_blended)),
        ]))
    for note in res.notes:
        con.print(f"[yellow]note:[/] {note}")
    cal = "calibrated profile" if res.calibrated else "default efficiencies (calibrated: false)"
    con.print(f"[dim]rates: {cal}; infercast {res.config()['infercast_version']}[/]")
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


def _layout(res: WhatIfResult) -> str:
    """The layout's name, as the JSON's config.layout.name has it ("TP8 CP2"; PP only above 1)."""
    return res.config()["layout"]["name"]
