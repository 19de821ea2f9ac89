"""Splitwise-style study (Patel et al. 2024, arXiv:2311.18677): llama-2-70b on 16 H100-SXM GPUs as
four TP4 replicas, co-located (every replica prefills and decodes) against disaggregated pools
(prefill replicas hand their KV to decode replicas over the scale-out NIC, layer by layer), across
load. Chat-like traffic: Poisson arrivals, lognormal lengths with mean 1K prompt and 256 output.

Prints one row per (layout, rate): TTFT p50/p99, TPOT p50/p99, output tokens/s, goodput under
TTFT <= 2 s and TPOT <= 100 ms, and writes the table as CSV when a path is given.

Run: .venv/bin/python benchmarks/study_disaggregation.py [--requests N] [--csv PATH]"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from simulator.serving.metrics import summary
from simulator.serving.simulate import quick

LAYOUTS = {
    "co-located 4x TP4": dict(replicas=4),
    "disagg 1P:3D TP4": dict(disaggregation={"prefill_replicas": 1, "decode_replicas": 3}),
    "disagg 2P:2D TP4": dict(disaggregation={"prefill_replicas": 2, "decode_replicas": 2}),
}
RATES = (4.0, 8.0, 12.0, 16.0, 20.0)
SLO = dict(ttft_slo_s=2.0, tpot_slo_s=0.1)


def run(requests: int) -> pd.DataFrame:
    rows = []
    for name, layout in LAYOUTS.items():
        for rate in RATES:
            res = quick(num_requests=requests, arrival="poisson", rate=rate, seed=1, model="llama-2-70b",
                        hw="h100-sxm", tp=4, input_len={"lognormal": {"mean": 1024, "sigma": 0.8}},
                        output_len={"lognormal": {"mean": 256, "sigma": 0.8}}, **layout)
            s = summary(res, **SLO)
            rows.append({"layout": name, "rate_rps": rate, "ttft_p50_s": s["ttft_p50_s"], "ttft_p99_s": s["ttft_p99_s"],
                         "tpot_p50_ms": s["tpot_p50_s"] * 1e3, "tpot_p99_ms": s["tpot_p99_s"] * 1e3,
                         "output_tok_s": s["output_throughput_tok_s"], "goodput_rps": s["goodput_rps"],
                         "preemptions": s["preemptions"]})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--csv", type=Path)
    args = ap.parse_args()
    df = run(args.requests)
    print(df.to_string(index=False, float_format=lambda x: f"{x:,.3f}"))
    if args.csv is not None:
        df.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
