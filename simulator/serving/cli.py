"""`infercast simulate`: a serving simulation from flags (scenario files come next)."""

from __future__ import annotations

import json
from enum import Enum

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


def simulate_command(
    model: str = typer.Option("llama-3.1-8b", help="Model ID or file."),
    hw: str = typer.Option("h100-sxm", help="Hardware ID or file."),
    tp: int = typer.Option(1, help="Tensor-parallel degree per replica."),
    replicas: int = typer.Option(1, help="Replicas behind the router."),
    rate: float = typer.Option(4.0, help="Arrival rate, requests/s (not for offline)."),
    num_requests: int = typer.Option(500, help="Requests to simulate."),
    input_len: int = typer.Option(1024, help="Prompt tokens per request."),
    output_len: int = typer.Option(256, help="Generated tokens per request."),
    arrival: Arrival = typer.Option(Arrival.poisson, help="offline, poisson, gamma or constant."),
    cv: float = typer.Option(2.0, help="Coefficient of variation of gamma inter-arrival gaps."),
    max_batch: int = typer.Option(256, help="Most requests in one step."),
    max_batched_tokens: int = typer.Option(8192, help="Most tokens (prefill chunks + decodes) in one step."),
    dtype: str = typer.Option("bf16", help="Weight dtype."),
    router: str = typer.Option("least_outstanding", help="round_robin or least_outstanding."),
    seed: int = typer.Option(0, help="Random seed: same seed, same result."),
    ttft_slo: float = typer.Option(float("inf"), help="TTFT SLO in seconds, for goodput."),
    tpot_slo: float = typer.Option(float("inf"), help="TPOT SLO in seconds, for goodput."),
    format: Format = typer.Option(Format.table, "--format", help="table, json or csv (per-request rows)."),
) -> None:
    """Simulate arrivals through continuously batched replicas; print latency percentiles and throughput."""
    from .metrics import requests_frame, summary
    from .simulate import quick

    for v, flag in ((tp, "--tp"), (num_requests, "--num-requests"), (input_len, "--input-len"),
                    (output_len, "--output-len"), (max_batch, "--max-batch"), (max_batched_tokens, "--max-batched-tokens")):
        if v < 1:
            from ..errors import InfercastError

            raise InfercastError(f"{flag}: must be >= 1 (got {v})")
    res = quick(num_requests, arrival.value, rate, input_len, output_len, seed, cv, model=model, hw=hw, tp=tp,
                replicas=replicas, max_batch=max_batch, max_batched_tokens=max_batched_tokens, dtype=dtype, router=router)
    if format is Format.csv:
        print(requests_frame(res).to_csv(index=False), end="")
        return
    s = summary(res, ttft_slo, tpot_slo)
    if format is Format.json:
        print(json.dumps(s, indent=2))
        return
    from rich.table import Table

    from ..console import console

    t = Table(title=f"{model} on {replicas}x {hw} TP{tp}, {num_requests} requests, {arrival.value}", show_header=False)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in s.items():
        t.add_row(k, f"{v:,.4g}" if isinstance(v, float) else str(v))
    console().print(t)
