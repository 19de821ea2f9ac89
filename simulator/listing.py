"""`infercast list hw` and `infercast list models` tables."""

from __future__ import annotations

from rich.table import Table

from .console import console
from .catalog import hardware_ids, load_hardware, load_model_spec, model_ids
from .human import count
from .layers import active_param_count, param_count


def print_hardware() -> None:
    t = Table(title="Hardware (dense peaks)")
    for col in ("id", "name", "kind", "memory", "bandwidth", "16-bit peak", "8-bit peak", "TDP", "$/hour"):
        t.add_column(col, justify="left" if col in ("id", "name", "kind") else "right", no_wrap=col != "name")
    for hid in hardware_ids():
        s = load_hardware(hid)
        peak = s.engine.peak
        half = peak.get("bf16") or peak.get("fp16")
        eight = peak.get("fp8") or peak.get("int8")
        price = s.price.cloud_usd_per_hour if s.price and s.price.cloud_usd_per_hour else None
        t.add_row(
            s.id, s.name, s.kind, f"{s.memory.device.capacity / 2**30:,.0f} GiB", f"{s.memory.device.bandwidth / 1e12:.2f} TB/s" + ("?" if s.id == "local" else ""),
            f"{half / 1e12:,.1f} TF" if half else "-", f"{eight / 1e12:,.1f} TF" if eight else "-",
            f"{s.power.tdp:,.0f} W" if s.power else "-",
            (f"{price:.2f}" + ("*" if s.price.estimate else "")) if price else "-",
        )
    con = console(width=150)  # piped: 150 columns; long names wrap, never cut
    con.print(t)
    con.print("[dim]TF: 10^12 FLOP/s (8-bit: fp8 or int8 OP/s).  * estimate: no public list price.  ? local bandwidth "
              "is assumed until `infercast calibrate` has measured it[/]")


def print_models() -> None:
    t = Table(title="Models")
    for col in ("id", "params", "active", "layers", "hidden", "heads / KV", "context", "features"):
        t.add_column(col, justify="left" if col in ("id", "features") else "right")
    for mid in model_ids():
        m = load_model_spec(mid)
        feats = [f for f, on in (("GQA", 1 < m.num_kv_heads < m.num_heads), ("MQA", m.num_kv_heads == 1),
                                 ("MoE", m.moe is not None), ("MLA", m.mla is not None),
                                 (f"SWA {count(m.sliding_window or 0)}", m.sliding_window)) if on]
        t.add_row(m.id, f"{param_count(m) / 1e9:,.2f}B", f"{active_param_count(m) / 1e9:,.2f}B", count(m.num_layers),
                  count(m.hidden_size), f"{count(m.num_heads)} / {count(m.num_kv_heads)}",
                  count(m.max_context) if m.max_context else "-", ", ".join(feats))
    console().print(t)
