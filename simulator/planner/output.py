"""A plan as stable JSON keys and as tables."""

from __future__ import annotations

import math

from .candidates import class_shapes
from .plan import PlanResult


def _num(x: float):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def usd_per_mtok(res: PlanResult, usd_per_hour: float) -> float:
    """Dollars per million tokens (prompt and output) at the planned demand."""
    tokens_s = sum(d.rate * (c.input_len + c.output_len) for d, c in zip(res.spec.classes, class_shapes(res.spec)))
    return usd_per_hour / (tokens_s * 3600.0) * 1e6 if tokens_s > 0 else float("nan")


def to_dict(res: PlanResult) -> dict:
    """Keys, stable for scripts: total_usd_per_hour, devices (per type), replicas (hardware,
    layout, role, count, class, devices, rate_rps, capacity_rps per replica), slo_attainment (per
    class, simulated), solver_status, solve_time_s, rounds; plus binding, usd_per_mtok,
    total_power_w, objective, wall_s."""
    usd = sum(p.replicas * p.candidate.usd_per_hour for p in res.picks)
    power = sum(p.replicas * p.candidate.power_w for p in res.picks)
    devices: dict[str, int] = {}
    for p in res.picks:
        devices[p.candidate.hw] = devices.get(p.candidate.hw, 0) + p.replicas * p.candidate.devices
    replicas = [{
        "class": p.klass, "hardware": p.candidate.hw, "layout": res.layouts[p.candidate.name].name(),
        "role": p.candidate.role, "count": p.replicas, "devices": p.replicas * p.candidate.devices,
        "rate_rps": p.rate_rps, "capacity_rps": p.candidate.cap(p.klass),
    } for p in res.picks]
    rounds = [{
        "objective": _num(r.objective), "status": r.status,
        "attainment": {f"{c.klass} / {c.picks[0].candidate.name}": c.attainment for c in r.checks},
        "tightened": r.tightened,
    } for r in res.rounds]
    return {
        "name": res.spec.name, "solver_status": res.status, "binding": res.binding,
        "total_usd_per_hour": usd if res.ok else None, "usd_per_mtok": _num(usd_per_mtok(res, usd)) if res.ok else None,
        "total_power_w": power if res.ok else None, "devices": devices, "replicas": replicas,
        "slo_attainment": {k: _num(v) for k, v in res.slo_attainment().items()},
        "objective": res.spec.objective, "solve_time_s": res.solve_time_s, "wall_s": res.wall_s,
        "solver": res.solver, "candidates": res.candidates, "rounds": rounds,
    }


def print_plan(res: PlanResult) -> None:
    from rich.table import Table

    from ..console import console

    d = to_dict(res)
    t = Table(title=f"{res.spec.name}: {res.spec.model}, {len(res.spec.classes)} classes, objective {res.spec.objective}")
    for col in ("class", "hardware", "layout", "role", "replicas", "devices", "rate req/s", "cap/replica", "$/h"):
        t.add_column(col, justify="left" if col in ("class", "hardware", "layout", "role") else "right")
    for r, p in zip(d["replicas"], res.picks):
        t.add_row(r["class"], r["hardware"], r["layout"], r["role"], str(r["count"]), str(r["devices"]),
                  f"{r['rate_rps']:.3g}", f"{r['capacity_rps']:.3g}", f"{p.replicas * p.candidate.usd_per_hour:,.2f}")
    console().print(t)
    s = Table(show_header=False, title="Plan")
    s.add_column("key")
    s.add_column("value", justify="right")
    s.add_row("$/hour", f"{d['total_usd_per_hour']:,.2f}")
    s.add_row("$/Mtoken (prompt + output)", f"{d['usd_per_mtok']:,.4g}")
    s.add_row("power (W, at TDP)", f"{d['total_power_w']:,.0f}")
    s.add_row("devices", ", ".join(f"{n} {hw}" for hw, n in sorted(d["devices"].items())))
    for k, v in d["slo_attainment"].items():
        s.add_row(f"SLO attainment, {k}", "not simulated" if v is None else f"{100 * v:.1f}%")
    s.add_row("solver", f"{d['solver']} {d['solver_status']}, {d['solve_time_s']:.2f} s over {len(d['rounds'])} round(s)")
    s.add_row("candidates scored", str(d["candidates"]))
    s.add_row("wall time", f"{d['wall_s']:.1f} s")
    console().print(s)
    for i, r in enumerate(d["rounds"]):
        if r["tightened"]:
            console().print(f"round {i}: tightened " + "; ".join(r["tightened"]))
