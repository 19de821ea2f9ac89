"""Predict published measurements (validate/data/published_points_dev.csv) and report the error
over a whole group. Nothing is fitted here: predictions use the shipped specs and default or
calibrated efficiencies only."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import InfercastError

from .predictors import PREDICTORS

DATA = Path(__file__).parent / "data" / "published_points_dev.csv"
@dataclass
class Point:
    point_id: str
    metric: str
    config: str
    measured: float
    predicted: float
    unit: str
    reliability: str
    fits: bool

    @property
    def rel_error(self) -> float:
        return (self.predicted - self.measured) / self.measured


def load_rows(group: str) -> list[dict]:
    with DATA.open() as f:
        rows = [r for r in csv.DictReader(f) if r["group"] == group]
    if not rows:
        with DATA.open() as f:
            groups = sorted({r["group"] for r in csv.DictReader(f)})
        raise InfercastError(f"--group: no points in group '{group}' (groups: {', '.join(groups)})")
    return rows


def run_group(group: str) -> list[Point]:
    if group not in PREDICTORS:
        from .serving_points import REPORTS

        raise InfercastError(f"--group: '{group}' has no predictor (have: {', '.join([*PREDICTORS, *REPORTS])})")
    points = []
    for row in load_rows(group):
        out = PREDICTORS[group](row)
        if out is not None:
            predicted, config, fits = out
            points.append(Point(row["point_id"], row["metric"], config, float(row["value"]), predicted, row["unit"],
                                row["reliability"], fits))
    return points


def summarize(points: list[Point]) -> dict:
    signed = np.array([p.rel_error for p in points])
    err = np.abs(signed)
    return {"points": len(err), "median_abs_rel_error": float(np.median(err)), "worst_abs_rel_error": float(err.max()),
            "mean_signed_rel_error": float(signed.mean()), "within_20pct": int((err <= 0.2).sum())}


def print_report(points: list[Point], show_points: bool = True) -> None:
    from rich.table import Table

    from simulator.console import console

    con = console()
    if show_points:
        t = Table(title="Predicted against published")
        for col in ("configuration", "metric", "unit", "measured", "predicted", "error", "rel."):
            t.add_column(col, justify="left" if col in ("configuration", "metric", "unit", "rel.") else "right")
        for p in points:
            t.add_row(p.config, p.metric[:24], p.unit, f"{p.measured:,.3g}", f"{p.predicted:,.3g}",
                      f"{100 * p.rel_error:+.1f}%", p.reliability + ("" if p.fits else " !fit"))
        con.print(t)
    s = Table(title="Error over the group (|predicted - measured| / measured)")
    for col in ("subset", "points", "median", "worst", "mean signed", "within 20%"):
        s.add_column(col, justify="left" if col == "subset" else "right")
    subsets = {"all": points, "reliability A-": [p for p in points if p.reliability == "A-"]}
    for metric in sorted({p.metric for p in points}):
        subsets[metric] = [p for p in points if p.metric == metric]
    for name, pts in subsets.items():
        if pts and (name == "all" or len(pts) < len(points)):
            m = summarize(pts)
            s.add_row(name, str(m["points"]), f"{100 * m['median_abs_rel_error']:.1f}%", f"{100 * m['worst_abs_rel_error']:.1f}%",
                      f"{100 * m['mean_signed_rel_error']:+.1f}%", str(m["within_20pct"]))
    con.print(s)
    misfit = [p.point_id for p in points if not p.fits]
    if misfit:
        con.print(f"{len(misfit)} point(s) ran in the source but infercast's memory model says they do not fit: "
                  + ", ".join(misfit))
