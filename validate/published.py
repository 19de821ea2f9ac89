"""Predict published measurements (validate/data/published_points_dev.csv) and report the error
over a whole group. Nothing is fitted here: predictions use the shipped specs and default or
calibrated efficiencies only."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import InfercastError
from simulator.whatif import whatif

DATA = Path(__file__).parent / "data" / "published_points_dev.csv"
HW = {"h100_sxm": "h100-sxm", "h200_sxm": "h200-sxm", "l40s": "l40s", "a100_80g_sxm": "a100-80gb-sxm",
      "a100_80g_pcie": "a100-80gb-pcie", "b200": "b200", "mi300x": "mi300x", "mi325x": "mi325x",
      "gaudi2": "gaudi2", "gaudi3": "gaudi3"}
MODELS = {"GPT-J-6B": "gpt-j-6b", "Llama-2-7B": "llama-2-7b", "Llama-2-70B": "llama-2-70b"}
DTYPE = {"FP8": "fp8", "FP16": "fp16", "BF16": "bf16"}


@dataclass
class Point:
    point_id: str
    metric: str
    hw: str
    model: str
    devices: int
    batch: int
    input_len: int
    output_len: int
    measured: float
    predicted: float | None
    unit: str
    reliability: str
    fits: bool
    note: str = ""

    @property
    def rel_error(self) -> float | None:
        return None if self.predicted is None else (self.predicted - self.measured) / self.measured


def load_rows(group: str) -> list[dict]:
    with DATA.open() as f:
        rows = [r for r in csv.DictReader(f) if r["group"] == group]
    if not rows:
        with DATA.open() as f:
            groups = sorted({r["group"] for r in csv.DictReader(f)})
        raise InfercastError(f"--group: no points in group '{group}' (groups: {', '.join(groups)})")
    return rows


def predict_trtllm(row: dict) -> Point:
    """A TensorRT-LLM static-batch point: batch-1 first-token latency (ms) or output tokens/s
    (per GPU where the table says so; the A100 TP>1 rows, whose scope the source leaves
    ambiguous, are read as per GPU like the H100 table of the same document)."""
    devices = int(row["num_devices"])
    dtype = DTYPE[row["weight_precision"]]
    kw = dict(model=MODELS[row["model"]], hw=HW[row["hw_id"]], tp=devices, batch=int(row["batch_or_concurrency"]),
              input_len=int(row["input_len"]), output_len=int(row["output_len"]), dtype=dtype, kv_dtype=dtype)
    res = whatif(**kw, check_memory=False)
    per_gpu = row["scope"].startswith(("per GPU", "AMBIGUOUS"))
    if row["metric"] == "ttft":
        predicted = res.ttft_s * 1e3
    else:
        predicted = res.throughput_tok_s / (devices if per_gpu else 1)
    return Point(row["point_id"], row["metric"], kw["hw"], kw["model"], devices, kw["batch"], kw["input_len"],
                 kw["output_len"], float(row["value"]), predicted, row["unit"], row["reliability"], res.fits,
                 "" if res.fits else "infercast's memory model says it does not fit")


PREDICTORS = {"trtllm_v0.6.1_static": predict_trtllm}


def run_group(group: str) -> list[Point]:
    if group not in PREDICTORS:
        raise InfercastError(f"--group: '{group}' has no predictor yet (have: {', '.join(PREDICTORS)})")
    return [PREDICTORS[group](r) for r in load_rows(group)]


def summarize(points: list[Point]) -> dict:
    err = np.array([abs(p.rel_error) for p in points if p.rel_error is not None])
    signed = np.array([p.rel_error for p in points if p.rel_error is not None])
    return {"points": len(err), "median_abs_rel_error": float(np.median(err)), "worst_abs_rel_error": float(err.max()),
            "mean_signed_rel_error": float(signed.mean()), "within_20pct": int((err <= 0.2).sum())}


def print_report(points: list[Point], show_points: bool = True) -> None:
    from rich.table import Table

    from simulator.console import console

    con = console()
    if show_points:
        t = Table(title="Predicted against published")
        for col in ("point", "metric", "batch", "in", "out", "measured", "predicted", "error", "rel"):
            t.add_column(col, justify="left" if col in ("point", "metric", "rel") else "right")
        for p in points:
            t.add_row(p.point_id, p.metric, str(p.batch), str(p.input_len), str(p.output_len), f"{p.measured:,.1f}",
                      f"{p.predicted:,.1f}", f"{100 * p.rel_error:+.1f}%", p.reliability + ("" if p.fits else " !fit"))
        con.print(t)
    s = Table(title="Error over the group (|predicted - measured| / measured)")
    for col in ("subset", "points", "median", "worst", "mean signed", "within 20%"):
        s.add_column(col, justify="left" if col == "subset" else "right")
    subsets = {"all": points, "ttft": [p for p in points if p.metric == "ttft"],
               "throughput": [p for p in points if p.metric != "ttft"],
               "reliability A-": [p for p in points if p.reliability == "A-"]}
    for name, pts in subsets.items():
        if pts:
            m = summarize(pts)
            s.add_row(name, str(m["points"]), f"{100 * m['median_abs_rel_error']:.1f}%", f"{100 * m['worst_abs_rel_error']:.1f}%",
                      f"{100 * m['mean_signed_rel_error']:+.1f}%", str(m["within_20pct"]))
    con.print(s)
    misfit = [p.point_id for p in points if not p.fits]
    if misfit:
        con.print(f"{len(misfit)} point(s) ran in the source but infercast's memory model says they do not fit: "
                  + ", ".join(misfit))
