"""`infercast validate kernels`: how well a calibration profile predicts kernels it was not fitted to.

1. Every committed kernel sweep (validate/data/<machine>/kernels.csv): fit on a random 70% of each
   op class's shapes, predict the other 30%, for several seeds; error per class and overall.
2. The published GEMM timings (kernel_gemm group: Vidur's H100 and A100 profiles), uncalibrated
   (shipped defaults) against calibrated, side by side: each point predicted by a GEMM curve fitted
   to the other points of its device (leave one out), so no point is predicted by a fit that saw it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"


def sweeps() -> list[Path]:
    return sorted(DATA.glob("*/kernels.csv"))


def held_out_report(path: Path, seeds=(0, 1, 2)) -> dict:
    from simulator.local_device import detect_local

    from .kernel_fit import CLASS, held_out, measured_peaks, summary
    from .sweep_check import check_sweep

    fix = f"remove {Path(path).parent} or publish a sweep there afresh (`infercast validate publish ... --replace`)"
    data = check_sweep(path, str(path), fix)
    spec, device_id = sweep_device(path)
    spec = spec or detect_local(measured=measured_peaks(data.rows), use_profile=False)
    errs, by_class = [], {}
    for s in seeds:
        _, test, e = held_out(spec, data.rows, device_id, seed=s)
        errs.append(e)
        for r, x in zip(test, e):
            by_class.setdefault(CLASS[r["op"]], []).append(x)
    return {"machine": data.provenance.get("device", path.parent.name), "rows": len(data.rows),
            "all": summary(np.concatenate(errs)), "classes": {k: summary(np.array(v)) for k, v in sorted(by_class.items())}}


def sweep_device(path: Path):
    """(hwspec, ID) of a committed sweep: its folder names a shipped device (validate/data/h200-sxm/),
    or (None, "local") for this machine's CPU (validate/data/local-cpu/)."""
    from simulator.catalog import load_hardware
    from simulator.errors import InfercastError

    hw = Path(path).parent.name
    try:
        return load_hardware(hw), hw
    except (InfercastError, FileNotFoundError, KeyError, ValueError):
        return None, "local"


def published_gemm() -> list[dict]:
    """Per published GEMM point: measured, uncalibrated and leave-one-out calibrated predictions."""
    from simulator.roofline import op_time
    from simulator.step import device

    from .kernel_fit import _fit_class, to_op
    from .predictors import GEMM, HW
    from .published import load_rows

    pts = []
    for r in load_rows("kernel_gemm"):
        m = GEMM.search(r["metric"])
        if not m:
            continue
        M, K, _, N = map(int, m.groups())
        pts.append({"hw": HW[r["hw_id"]], "op": "gemm", "dtype": "fp16", "m": M, "n": N, "k": K, "flops": 2.0 * M * N * K,
                    "bytes": 2.0 * (K * N + M * K + M * N), "time_s": float(r["value"]) * 1e-3})
    out = []
    for i, p in enumerate(pts):
        dev = device(p["hw"])
        others = [q for j, q in enumerate(pts) if j != i and q["hw"] == p["hw"]]
        cal = _fit_class(dev.spec, dev.cal, others, "gemm")
        from simulator.roofline import Device

        raw, fit = float(op_time(to_op(p), dev)), float(op_time(to_op(p), Device(dev.spec, cal)))
        out.append({**p, "uncalibrated_s": raw, "calibrated_s": fit})
    return out


def print_kernels_report() -> None:
    from rich.table import Table

    from simulator.console import console

    con = console()
    for path in sweeps():
        rep = held_out_report(path)
        t = Table(title=f"Held-out kernel error: {rep['machine']} ({rep['rows']} shapes; fit 70%, predict 30%, 3 seeds)")
        for col in ("op class", "points", "median", "p90", "worst"):
            t.add_column(col, justify="left" if col == "op class" else "right")
        for name, s in [*rep["classes"].items(), ("all", rep["all"])]:
            t.add_row(name, str(s["points"]), f"{100 * s['median']:.1f}%", f"{100 * s['p90']:.1f}%", f"{100 * s['worst']:.1f}%")
        con.print(t)
    rows = published_gemm()
    t = Table(title="Published GEMM timings (Vidur): uncalibrated against calibrated (leave one out)")
    for col in ("device", "GEMM M x K x N", "measured ms", "uncalibrated", "err", "calibrated", "err"):
        t.add_column(col, justify="left" if col in ("device", "GEMM M x K x N") else "right")
    ue, ce = [], []
    for r in rows:
        u, c = r["uncalibrated_s"] / r["time_s"] - 1, r["calibrated_s"] / r["time_s"] - 1
        ue.append(abs(u))
        ce.append(abs(c))
        t.add_row(r["hw"], f"{r['m']}x{r['k']}x{r['n']}", f"{r['time_s'] * 1e3:.3f}", f"{r['uncalibrated_s'] * 1e3:.3f}",
                  f"{100 * u:+.1f}%", f"{r['calibrated_s'] * 1e3:.3f}", f"{100 * c:+.1f}%")
    con.print(t)
    con.print(f"median |error|: uncalibrated {100 * np.median(ue):.1f}%, calibrated {100 * np.median(ce):.1f}%; "
              f"worst {100 * max(ue):.1f}% against {100 * max(ce):.1f}% ({len(rows)} points)")
