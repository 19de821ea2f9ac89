"""`infercast simulate`: a serving simulation from flags (scenario files come next)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer


class Arrival(str, Enum):
    offline = "offline"
    poisson = "poisson"
    gamma = "gamma"
    constant = "constant"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


QUICK = dict(model="llama-3.1-8b", hw="h100-sxm", tp=1, replicas=1, max_batch=256, max_batched_tokens=8192,
             dtype="bf16", router="least_outstanding")


def simulate_command(
    scenario: Optional[str] = typer.Argument(None, help="Scenario YAML file or shipped scenario ID (workloads/scenarios)."),
    model: Optional[str] = typer.Option(None, help="Model ID or file [llama-3.1-8b]."),
    hw: Optional[str] = typer.Option(None, help="Hardware ID or file [h100-sxm]."),
    tp: Optional[int] = typer.Option(None, help="Tensor-parallel degree per replica [1]."),
    pp: Optional[int] = typer.Option(None, help="Pipeline stages per replica [1]."),
    cp: Optional[int] = typer.Option(None, help="Context-parallel degree per replica [1]."),
    cp_kind: Optional[str] = typer.Option(None, help="Context parallelism: ring or ulysses [ring]."),
    ep: Optional[int] = typer.Option(None, help="Expert-parallel degree inside the TP group (MoE) [1]."),
    replicas: Optional[int] = typer.Option(None, help="Replicas behind the router [1]."),
    rate: float = typer.Option(4.0, help="Arrival rate, requests/s (flag runs only)."),
    num_requests: int = typer.Option(500, help="Requests to simulate (flag runs only)."),
    input_len: int = typer.Option(1024, help="Prompt tokens per request (flag runs only)."),
    output_len: int = typer.Option(256, help="Generated tokens per request (flag runs only)."),
    arrival: Arrival = typer.Option(Arrival.poisson, help="offline, poisson, gamma or constant (flag runs only)."),
    cv: float = typer.Option(2.0, help="Coefficient of variation of gamma inter-arrival gaps."),
    max_batch: Optional[int] = typer.Option(None, help="Most requests in one step [256]."),
    max_batched_tokens: Optional[int] = typer.Option(None, help="Most tokens (prefill chunks + decodes) in one step [8192]."),
    dtype: Optional[str] = typer.Option(None, help="Weight dtype [bf16]."),
    router: Optional[str] = typer.Option(None, help="round_robin or least_outstanding."),
    seed: int = typer.Option(0, help="Random seed: same seed, same result (flag runs only)."),
    disagg: Optional[str] = typer.Option(None, help="Disaggregate: PREFILL:DECODE replicas, e.g. 1:3 (replaces --replicas)."),
    prefill_tp: Optional[int] = typer.Option(None, help="TP of prefill replicas when disaggregated [--tp]."),
    decode_tp: Optional[int] = typer.Option(None, help="TP of decode replicas when disaggregated [--tp]."),
    kv_offload: Optional[str] = typer.Option(None, help="Offload tier for KV beyond device memory: TIER:CAPACITY per device, e.g. host:64GiB or nvme:1TB."),
    preemption: Optional[str] = typer.Option(None, help="recompute or swap (to host memory) [recompute]."),
    prefix_caching: Optional[bool] = typer.Option(None, "--prefix-caching/--no-prefix-caching", help="Share cached prompt prefixes [on]."),
    chrome_trace: Optional[str] = typer.Option(None, help="Write a Chrome trace (chrome://tracing, Perfetto) of the steps to this new file."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr for runs over a second."),
    ttft_slo: Optional[float] = typer.Option(None, help="TTFT SLO in seconds, for goodput."),
    tpot_slo: Optional[float] = typer.Option(None, help="TPOT SLO in seconds, for goodput."),
    format: Format = typer.Option(Format.table, "--format", help="table, json or csv (per-request rows)."),
) -> None:
    """Simulate requests through continuously batched replicas: a scenario file, or a quick run from flags."""
    from .progress import ProgressBar

    over = dict(model=model, hw=hw, tp=tp, pp=pp, cp=cp, cp_kind=cp_kind, ep=ep, replicas=replicas, max_batch=max_batch,
                max_batched_tokens=max_batched_tokens, dtype=dtype, router=router, preemption=preemption,
                prefix_caching=prefix_caching, disaggregation=_disagg(disagg, prefill_tp, decode_tp),
                kv_offload=_offload(kv_offload))
    _check_flags(chrome_trace, tp=tp, pp=pp, cp=cp, ep=ep, max_batch=max_batch, max_batched_tokens=max_batched_tokens,
                 num_requests=num_requests, input_len=input_len, output_len=output_len)
    bar = ProgressBar() if progress else None
    try:
        if scenario is not None:
            res, title, slo = _run_scenario(scenario, over, bar, ttft_slo, tpot_slo)
        else:
            res, title = _run_flags(over, bar, num_requests, arrival.value, rate, input_len, output_len, seed, cv)
            slo = (ttft_slo, tpot_slo)
    finally:
        if bar is not None:
            bar.close()
    if chrome_trace is not None:
        from .chrome_trace import write_chrome_trace

        write_chrome_trace(res, chrome_trace)
    _emit(res, format, title, *(float("inf") if x is None else x for x in slo))


def _run_flags(over: dict, bar, num_requests: int, arrival: str, rate: float, input_len: int, output_len: int,
               seed: int, cv: float):
    """(result, title) of a quick run from flags, unset flags at their QUICK defaults."""
    from ..phases import Layout
    from .simulate import quick

    cfg = {**QUICK, **{k: v for k, v in over.items() if v is not None}}
    res = quick(num_requests, arrival, rate, input_len, output_len, seed, cv, bar, **cfg)
    lay = Layout(cfg["tp"], cfg.get("pp", 1), cfg.get("cp", 1), cfg.get("ep", 1)).name()
    return res, f"{cfg['model']} on {cfg['replicas']}x {cfg['hw']} {lay}, {num_requests} requests, {arrival}"


def _run_scenario(ref: str, over: dict, bar, ttft_slo, tpot_slo):
    """(result, title, (TTFT SLO, TPOT SLO)) of a scenario file; SLO flags override the file's."""
    from .scenario import load_scenario
    from .simulate import run_scenario

    sc, path = load_scenario(ref)
    res = run_scenario(sc, path.parent, bar, **over)
    slo = (sc.slo.ttft_s if ttft_slo is None else ttft_slo, sc.slo.tpot_s if tpot_slo is None else tpot_slo)
    return res, f"{sc.name}: {len(res.requests)} requests", slo


def _check_flags(chrome_trace: str | None, **counts) -> None:
    """Counts are >= 1; a Chrome trace goes to a new file."""
    from ..errors import InfercastError

    if chrome_trace is not None and Path(chrome_trace).exists():
        raise InfercastError(f"--chrome-trace: {chrome_trace} exists; infercast does not overwrite files, pick a new path")
    _at_least_one(**counts)


def _at_least_one(**flags) -> None:
    from ..errors import InfercastError

    for name, v in flags.items():
        if v is not None and v < 1:
            raise InfercastError(f"--{name.replace('_', '-')}: must be >= 1 (got {v})")


def _emit(res, format: Format, title: str, ttft_slo: float, tpot_slo: float) -> None:
    from .metrics import requests_frame, summary

    if format is Format.csv:
        print(requests_frame(res).to_csv(index=False), end="")
        return
    s = summary(res, ttft_slo, tpot_slo)
    if format is Format.json:
        print(json.dumps(s, indent=2))
        return
    from rich.table import Table

    from ..console import console

    t = Table(title=title, show_header=False)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in s.items():
        t.add_row(k, f"{v:,.4g}" if isinstance(v, float) else str(v))
    console().print(t)


def _disagg(spec: str | None, prefill_tp: int | None, decode_tp: int | None) -> dict | None:
    from ..errors import InfercastError

    if spec is None:
        if prefill_tp is not None or decode_tp is not None:
            raise InfercastError("--prefill-tp/--decode-tp: only with --disagg PREFILL:DECODE")
        return None
    parts = spec.split(":")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InfercastError(f"--disagg: expected PREFILL:DECODE replica counts >= 1, e.g. 1:3 (got '{spec}')")
    return {"prefill_replicas": int(parts[0]), "decode_replicas": int(parts[1]), "prefill_tp": prefill_tp,
            "decode_tp": decode_tp}


def _offload(spec: str | None) -> dict | None:
    from ..errors import InfercastError

    if spec is None:
        return None
    tier, _, cap = spec.partition(":")
    if tier not in ("host", "nvme") or not cap:
        raise InfercastError(f"--kv-offload: expected host:CAPACITY or nvme:CAPACITY, e.g. host:64GiB (got '{spec}')")
    return {"tier": tier, "capacity": cap}
