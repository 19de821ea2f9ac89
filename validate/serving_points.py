"""The discrete-event serving simulator on the published static-batch throughput points.

Group `trtllm_static_sim` takes the `output_throughput` rows of `trtllm_v0.6.1_static` (TensorRT-LLM
v0.6.1, static batching) and runs each as one offline batch through `simulator.serving`: B equal
requests arrive at once, max_batch = B and max_batched_tokens = B x input_len, so the whole batch
prefills in one step and then decodes together, as static batching does. The row mapping (hardware,
model, TP, precisions, per-GPU scope) is the closed-form predictor's (validate.predictors), and the
closed-form what-if's prediction is reported beside the simulator's on the same points. Nothing is
fitted. A point the simulator refuses (InfercastError, e.g. KV does not fit) is kept, not simulated,
with the message."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.errors import InfercastError

from .predictors import per_gpu_divisor, trtllm, trtllm_args

GROUP = "trtllm_static_sim"
SOURCE_GROUP = "trtllm_v0.6.1_static"
METRIC = "output_throughput"


@dataclass
class SimPoint:
    point_id: str
    config: str
    unit: str
    reliability: str
    measured: float
    simulated: float | None  # None: not simulated (see note)
    closed_form: float | None
    fits: bool  # the closed-form memory plan: does the whole batch fit at full context
    preemptions: int = 0  # requests the simulator preempted (KV ran out mid-batch)
    note: str = ""

    @property
    def sim_error(self) -> float:
        """Signed (simulated - measured) / measured; nan when not simulated."""
        return math.nan if self.simulated is None else (self.simulated - self.measured) / self.measured

    @property
    def closed_form_error(self) -> float:
        return math.nan if self.closed_form is None else (self.closed_form - self.measured) / self.measured


def simulate_static_batch(model: str, hw: str, tp: int, batch: int, input_len: int, output_len: int,
                          dtype: str, kv_dtype: str | None = None) -> tuple[float, int]:
    """(output tokens/s of the whole replica, preemptions) of one static batch in the simulator."""
    from simulator.serving.metrics import summary
    from simulator.serving.simulate import quick

    res = quick(num_requests=batch, arrival="offline", input_len=input_len, output_len=output_len, model=model,
                hw=hw, tp=tp, dtype=dtype, kv_dtype=kv_dtype, max_batch=batch, max_batched_tokens=batch * input_len,
                replicas=1, seed=0)
    s = summary(res)
    if s["finished"] != batch:
        raise InfercastError(f"simulation stopped ({s['stop_reason']}) with {s['finished']} of {batch} "
                             "requests finished")
    return s["output_throughput_tok_s"], s["preemptions"]


def simulate_row(row: dict) -> SimPoint:
    """One output_throughput row through the simulator, with the closed-form prediction beside it."""
    closed_form, config, fits = trtllm(row)
    point = SimPoint(row["point_id"], config, row["unit"], row["reliability"], float(row["value"]), None,
                     closed_form, fits)
    try:
        tok_s, point.preemptions = simulate_static_batch(**trtllm_args(row))
    except InfercastError as exc:
        point.note = str(exc)
        return point
    point.simulated = tok_s / per_gpu_divisor(row)
    return point


def throughput_rows() -> list[dict]:
    from .published import load_rows

    return [r for r in load_rows(SOURCE_GROUP) if r["metric"] == METRIC]


def run_sim_group(rows: list[dict] | None = None) -> list[SimPoint]:
    """One SimPoint per output_throughput row of the source group (or of `rows`)."""
    return [simulate_row(r) for r in (throughput_rows() if rows is None else rows)]


def _errors(values: list[float]) -> dict:
    signed = np.array(values, dtype=float)
    err = np.abs(signed)
    if not len(err):
        return {"points": 0, "median": math.nan, "worst": math.nan, "mean_signed": math.nan, "within_20pct": 0}
    return {"points": len(err), "median": float(np.median(err)), "worst": float(err.max()),
            "mean_signed": float(signed.mean()), "within_20pct": int((err <= 0.2).sum())}


def summarize_sim(points: list[SimPoint]) -> dict:
    """|predicted - measured| / measured of the simulator and of the closed form, both over the
    simulated points (so the two are compared on the same set), and the points not simulated."""
    done = [p for p in points if p.simulated is not None]
    return {"points": len(points), "simulated": len(done),
            "not_simulated": {p.point_id: p.note for p in points if p.simulated is None},
            "simulator": _errors([p.sim_error for p in done]),
            "closed_form": _errors([p.closed_form_error for p in done if p.closed_form is not None])}


def _pct(e: float) -> str:
    return "-" if math.isnan(e) else f"{100 * e:+.1f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.4g}"


def _points_table(points: list[SimPoint]):
    from rich.table import Table

    t = Table(title=f"{GROUP}: serving simulator and closed form against {SOURCE_GROUP} output throughput")
    for col in ("configuration", "unit", "measured", "simulator", "sim. error", "closed form", "c.f. error", "rel."):
        t.add_column(col, justify="left" if col in ("configuration", "unit", "rel.") else "right")
    for p in points:
        flags = ("" if p.fits else " !fit") + (f" {p.preemptions}pre" if p.preemptions else "")
        t.add_row(p.config, p.unit, f"{p.measured:,.4g}", _num(p.simulated), _pct(p.sim_error), _num(p.closed_form),
                  _pct(p.closed_form_error), p.reliability + flags)
    return t


def _summary_table(points: list[SimPoint]):
    from rich.table import Table

    s = Table(title="Error over the group (|predicted - measured| / measured, simulated points)")
    for col in ("subset", "predictor", "points", "median", "worst", "mean signed", "within 20%"):
        s.add_column(col, justify="left" if col in ("subset", "predictor") else "right")
    subsets = {"all": points, "reliability A-": [p for p in points if p.reliability == "A-"],
               "memory fits": [p for p in points if p.fits]}
    for name, pts in subsets.items():
        if not pts or (name != "all" and len(pts) == len(points)):
            continue
        m = summarize_sim(pts)
        for who in ("simulator", "closed_form"):
            e = m[who]
            s.add_row(name, who.replace("_", " "), str(e["points"]), f"{100 * e['median']:.1f}%",
                      f"{100 * e['worst']:.1f}%", f"{100 * e['mean_signed']:+.1f}%", str(e["within_20pct"]))
    return s


def print_sim_report(points: list[SimPoint], show_points: bool = True) -> None:
    from simulator.console import console

    con = console()
    if show_points:
        con.print(_points_table(points))
    con.print(_summary_table(points))
    m = summarize_sim(points)
    con.print(f"{m['simulated']} of {m['points']} point(s) simulated.")
    for pid, note in m["not_simulated"].items():
        con.print(f"not simulated: {pid}: {note}")
    misfit = [p for p in points if not p.fits]
    if misfit:
        con.print(f"{len(misfit)} point(s) the closed-form memory plan says do not fit (!fit; the simulator "
                  f"preempts and recomputes instead, 'pre' = preemptions): " + ", ".join(p.point_id for p in misfit))


REPORTS = {GROUP: (run_sim_group, print_sim_report)}
