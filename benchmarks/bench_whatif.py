"""Speed of a what-if: in-process (target <= 20 ms) and `infercast whatif` from the shell, cold
(target <= 1.5 s). Prints the figures; run with `.venv/bin/python benchmarks/bench_whatif.py`."""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = [
    dict(),  # the default: llama-3.1-8b, 32K in, 512 out, h200-sxm
    dict(model="llama-3.1-70b", hw="h100-sxm", tp=4, batch=2, input_len=131072, output_len=1024),
    dict(model="deepseek-v3", hw="h200-sxm", tp=8, dtype="fp8", batch=32, input_len=16384, output_len=4096),
    dict(model="mixtral-8x7b", hw="mi300x", batch=16, input_len=4096, output_len=8192),
]


def in_process(repeats: int = 50) -> None:
    from simulator import whatif

    for case in CASES:
        assert whatif(**case).fits, case  # first call loads and caches the spec files
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            whatif(**case)
            times.append(time.perf_counter() - t)
        label = ", ".join(f"{k}={v}" for k, v in case.items()) or "default"
        print(f"in-process what-if [{label}]: median {1e3 * statistics.median(times):.2f} ms, "
              f"max {1e3 * max(times):.2f} ms over {repeats} (target <= 20 ms)")


def cold_cli(repeats: int = 5) -> None:
    exe = Path(sys.executable).with_name("infercast")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([str(exe), "whatif", "--format", "json"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    print(f"`infercast whatif` from the shell: median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s over {repeats} runs (target <= 1.5 s)")


if __name__ == "__main__":
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    in_process()
    cold_cli()
