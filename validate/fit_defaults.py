"""Reproduce the two group-level choices in hwspecs/calibration/defaults.yaml from published
microbenchmarks (never from the end-to-end TensorRT-LLM group they are validated on):

1. overlap_norm: the exponent with the lowest median error on the kernel_gemm group;
2. collective latency and efficiency: least squares in log space on the interconnect group.

Run: .venv/bin/python -m validate.fit_defaults
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from simulator.collectives import TRAFFIC, link_bandwidth
from simulator.step import device

from .predictors import HW
from .published import load_rows, run_group, summarize


def choose_overlap_norm(candidates=(float("inf"), 8.0, 4.0, 3.0, 2.0)) -> dict[float, float]:
    """Median error of the kernel_gemm group for each exponent (device profiles patched in memory)."""
    out = {}
    for p in candidates:
        device.cache_clear()
        for hw in {HW[r["hw_id"]] for r in load_rows("kernel_gemm")}:
            dev = device(hw)
            object.__setattr__(dev, "cal", dev.cal.model_copy(update={"overlap_norm": p}))
        out[p] = summarize(run_group("kernel_gemm"))["median_abs_rel_error"]
    device.cache_clear()
    return out


def fit_collectives() -> tuple[float, float, np.ndarray]:
    rows = [r for r in load_rows("interconnect") if r["metric"] == "all_reduce time"]
    data = []
    for r in rows:
        n, size = int(r["num_devices"]), int(r["point_id"].rsplit("_", 1)[1])
        bw = link_bandwidth(device(HW[r["hw_id"]]).spec, n)
        data.append((TRAFFIC["all_reduce"](n) * size / bw, float(r["value"]) * 1e-3))
    x, t = np.array(data).T

    def residuals(v):  # v = (latency in us, efficiency)
        return np.log(v[0] * 1e-6 + x / v[1]) - np.log(t)

    fit = least_squares(residuals, [10.0, 0.8], bounds=([0.0, 0.05], [1000.0, 1.0]))
    return fit.x[0] * 1e-6, fit.x[1], np.exp(fit.fun) - 1


if __name__ == "__main__":
    for p, err in choose_overlap_norm().items():
        print(f"overlap_norm {p:>4}: kernel_gemm median error {100 * err:.1f}%")
    lat, eff, errs = fit_collectives()
    print(f"collective fit: latency {lat * 1e6:.1f} us, efficiency {eff:.3f}; "
          f"residuals {', '.join(f'{100 * e:+.0f}%' for e in errs)}")
