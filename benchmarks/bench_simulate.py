"""Serving simulator speed: 100,000 chat-like requests (lognormal lengths, mean 1K in / 256 out)
on 8 continuously batched replicas, on one core. Targets: <= 10 s wall, <= 1 GiB peak memory.
Prints wall time, simulated seconds per wall second and peak RSS.

Run: .venv/bin/python benchmarks/bench_simulate.py [num_requests]"""

from __future__ import annotations

import resource
import sys
import time

from simulator.serving.metrics import summary
from simulator.serving.simulate import quick


def main(n: int = 100_000) -> None:
    t = time.perf_counter()
    res = quick(num_requests=n, arrival="poisson", rate=120.0, input_len={"lognormal": {"mean": 1024, "sigma": 0.8}},
                output_len={"lognormal": {"mean": 256, "sigma": 0.8}}, replicas=8, seed=1,
                model="llama-3.1-8b", hw="h100-sxm")
    wall = time.perf_counter() - t
    s = summary(res)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = sum(x[3] for x in res.steps)
    print(f"{n:,} requests, 8 replicas: wall {wall:.2f} s (target <= 10 s), simulated {res.makespan_s:,.1f} s, "
          f"{res.makespan_s / wall:,.1f} simulated s per wall s; {steps:,} engine steps in {len(res.steps):,} events; "
          f"peak RSS {peak_mib:,.0f} MiB (target <= 1024); finished {s['finished']:,}, "
          f"TTFT p50 {s['ttft_p50_s'] * 1e3:.0f} ms, TPOT p50 {s['tpot_p50_s'] * 1e3:.1f} ms, stop: {res.stop_reason}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
