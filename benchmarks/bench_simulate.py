"""Serving simulator speed: 100,000 chat-like requests (lognormal lengths, mean 1K in / 256 out)
on 8 continuously batched replicas, on one core. Targets: <= 10 s wall, <= 1 GiB peak memory.
Prints the wall time of each repeat, their best and median (a shared machine's noise only adds
time, so the best is closest to the simulator's own), simulated seconds per wall second and peak
RSS (of the whole process: one run's results are held at a time).

Run: .venv/bin/python benchmarks/bench_simulate.py [num_requests] [repeats]"""

from __future__ import annotations

import resource
import statistics
import sys
import time

from simulator.serving.metrics import summary
from simulator.serving.simulate import quick


def run_once(n: int):
    t = time.perf_counter()
    res = quick(num_requests=n, arrival="poisson", rate=120.0, input_len={"lognormal": {"mean": 1024, "sigma": 0.8}},
                output_len={"lognormal": {"mean": 256, "sigma": 0.8}}, replicas=8, seed=1,
                model="llama-3.1-8b", hw="h100-sxm")
    return time.perf_counter() - t, res


def main(n: int = 100_000, repeats: int = 3) -> None:
    walls, res = [], None
    for _ in range(max(repeats, 1)):
        res = None  # free the previous run's results first
        wall, res = run_once(n)
        walls.append(wall)
    s, best = summary(res), min(walls)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = sum(x[3] for x in res.steps)
    print(f"{n:,} requests, 8 replicas: wall {', '.join(f'{w:.2f}' for w in walls)} s; best {best:.2f} s, "
          f"median {statistics.median(walls):.2f} s (target <= 10 s); simulated {res.makespan_s:,.1f} s, "
          f"{res.makespan_s / best:,.1f} simulated s per wall s; {steps:,} engine steps in {len(res.steps):,} events; "
          f"peak RSS {peak_mib:,.0f} MiB (target <= 1024); finished {s['finished']:,}, "
          f"TTFT p50 {s['ttft_p50_s'] * 1e3:.0f} ms, TPOT p50 {s['tpot_p50_s'] * 1e3:.1f} ms, stop: {res.stop_reason}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
