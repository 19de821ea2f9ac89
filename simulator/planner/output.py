"""A plan as stable JSON keys (strict: no NaN or Infinity, a value without a number is null) and
as tables, each carrying the configuration that produced it."""

from __future__ import annotations

from ..about import infercast_version
from ..human import count, money, rate, request_rate, seconds
from ..strict_json import finite_or_none
from .candidates import class_shapes, unknown_costs
from .plan import PlanResult


def usd_per_mtok(res: PlanResult, usd_per_hour: float) -> float:
    """Dollars per million tokens (prompt and output) at the planned demand."""
    tokens_s = sum(d.rate * (c.input_len + c.output_len) for d, c in zip(res.spec.classes, class_shapes(res.spec)))
    return usd_per_hour / (tokens_s * 3600.0) * 1e6 if tokens_s > 0 else float("nan")


def config(res: PlanResult) -> dict:
    """What produced the plan: the plan spec as given (model, dtypes, classes with rate, lengths
    and SLOs, inventory, objective, disaggregation allowed, layouts, check rounds, solver), each
    class's mean lengths as planned, each hardware type's calibration status, infercast's version."""
    from ..step import device

    spec = res.spec
    out = spec.model_dump(mode="json")
    out["mean_lengths"] = {c.name: {"input_len": c.input_len, "output_len": c.output_len} for c in class_shapes(spec)}
    out["calibrated"] = {s.hw: device(s.hw).calibrated for s in spec.inventory}
    out["infercast_version"] = infercast_version()
    return out


def to_dict(res: PlanResult) -> dict:
    """Keys, stable for scripts: total_usd_per_hour, devices (per type), replicas (hardware,
    layout, role, count, class, devices, rate_rps, capacity_rps per replica), slo_attainment (per
    class, simulated), solver_status, solve_time_s, rounds; plus binding, usd_per_mtok,
    total_power_w, objective, wall_s, `slo_met` (every pool attains the target in the simulator;
    null when not simulated), `slo_note` (why not, or null), `cost_note` (why a total is null: a
    device without a price or a power, allowed where the objective needs neither), and `config`
    (what produced it). Non-finite numbers are null."""
    used = {p.candidate.hw for p in res.picks}
    missing = {kind: sorted(used & set(hws)) for kind, hws in unknown_costs(res.spec).items()}
    usd = sum(p.replicas * p.candidate.usd_per_hour for p in res.picks) if not missing["usd"] else None
    power = sum(p.replicas * p.candidate.power_w for p in res.picks) if not missing["power"] else None
    cost_note = "; ".join(f"{label}: no {what} for {', '.join(missing[kind])} (its hwspec has none; give it in "
                          f"the inventory entry as {keys})" for kind, label, what, keys in (
                              ("usd", "$ totals", "price", "usd_per_hour or purchase_usd"),
                              ("power", "total_power_w", "power", "power_w")) if missing[kind]) or None
    devices: dict[str, int] = {}
    for p in res.picks:
        devices[p.candidate.hw] = devices.get(p.candidate.hw, 0) + p.replicas * p.candidate.devices
    replicas = [{
        "class": p.klass, "hardware": p.candidate.hw, "layout": res.layouts[p.candidate.name].name(),
        "role": p.candidate.role, "count": p.replicas, "devices": p.replicas * p.candidate.devices,
        "rate_rps": p.rate_rps, "capacity_rps": p.candidate.cap(p.klass),
    } for p in res.picks]
    rounds = [{
        "objective": r.objective, "status": r.status,
        "attainment": {f"{c.klass} / {c.picks[0].candidate.name}": c.attainment for c in r.checks},
        "tightened": r.tightened,
    } for r in res.rounds]
    return finite_or_none({
        "name": res.spec.name, "solver_status": res.status, "binding": res.binding,
        "total_usd_per_hour": usd if res.ok else None,
        "usd_per_mtok": usd_per_mtok(res, usd) if res.ok and usd is not None else None,
        "total_power_w": power if res.ok else None, "cost_note": cost_note, "devices": devices, "replicas": replicas,
        "slo_attainment": res.slo_attainment(), "slo_met": res.slo_met, "slo_note": slo_note(res),
        "objective": res.spec.objective, "solve_time_s": res.solve_time_s, "wall_s": res.wall_s,
        "solver": res.solver, "candidates": res.candidates, "rounds": rounds, "config": config(res),
    })


def slo_note(res: PlanResult) -> str | None:
    """Why the plan does not meet its SLOs in the simulator (None when it does, or was not simulated)."""
    if res.slo_met is not False:
        return None
    worst = min(res.slo_attainment().items(), key=lambda kv: (kv[1], kv[0]))
    line = (f"attainment {100 * worst[1]:.1f}% (class {worst[0]}) under the {100 * res.spec.attainment:g}% target "
            f"after {count(len(res.rounds))} round{'s' if len(res.rounds) != 1 else ''}: the plan does not meet its "
            "SLOs; raise check.rounds, widen the inventory or layouts, or relax the SLOs")
    return f"{line}; {res.slo_note}" if res.slo_note else line


def _money(value: float | None) -> str:
    """Dollars for a table cell ("$3.00", "more than $1,000,000,000"); no value as '-'."""
    return "-" if value is None else money(value)


def _class_row(c, shape) -> str:
    """A demand class for the summary table: its rate (below 0.01 req/s also the mean gap between
    requests), lengths and SLOs."""
    gap = f" ({request_rate(c.rate)})" if 0 < c.rate < 0.01 else ""
    return (f"{rate(c.rate, 'req/s')}{gap}, {count(shape.input_len)} in / {count(shape.output_len)} out, "
            f"TTFT <= {seconds(c.ttft_s)}, TPOT <= {seconds(c.tpot_s)}")


def print_plan(res: PlanResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..console import console

    d = to_dict(res)
    spec = res.spec
    t = Table(title=f"{spec.name}: {spec.model} ({spec.dtype}, KV {spec.kv_dtype or 'as weights'}), "
                    f"{count(len(spec.classes))} class{'es' if len(spec.classes) != 1 else ''}, objective {spec.objective}, disaggregation "
                    f"{'allowed' if spec.disaggregation else 'off'}")
    for col in ("class", "hardware", "layout", "role", "replicas", "devices", "rate req/s", "cap/replica", "$/h"):
        t.add_column(col, justify="left" if col in ("class", "hardware", "layout", "role") else "right")
    for r, p in zip(d["replicas"], res.picks):
        t.add_row(r["class"], r["hardware"], r["layout"], r["role"], str(r["count"]), str(r["devices"]),
                  rate(r["rate_rps"], ""), rate(r["capacity_rps"], ""),
                  "-" if d["total_usd_per_hour"] is None else _money(p.replicas * p.candidate.usd_per_hour))
    console().print(t)
    s = Table(show_header=False, title="Plan")
    s.add_column("key")
    s.add_column("value", justify="right")
    for c, shape in zip(spec.classes, class_shapes(spec)):
        s.add_row(f"class {c.name}", _class_row(c, shape))
    s.add_row("$/hour", _money(d["total_usd_per_hour"]))
    s.add_row("$/Mtoken (prompt + output)", _money(d["usd_per_mtok"]))
    s.add_row("power (W, at TDP)", "-" if d["total_power_w"] is None else f"{d['total_power_w']:,.0f}")
    s.add_row("devices", ", ".join(f"{count(n)} {hw}" for hw, n in sorted(d["devices"].items())))
    for k, v in d["slo_attainment"].items():
        s.add_row(f"SLO attainment, {k}", "not simulated" if v is None else f"{100 * v:.1f}%")
    s.add_row("SLOs met in the simulator", {None: "not simulated", True: "yes", False: "NO"}[d["slo_met"]])
    s.add_row("solver", f"{d['solver']} {d['solver_status']}, {seconds(d['solve_time_s'])} over {len(d['rounds'])} round(s)")
    s.add_row("candidates scored", str(d["candidates"]))
    s.add_row("wall time", seconds(d["wall_s"]))
    s.add_row("infercast", d["config"]["infercast_version"])
    console().print(s)
    for i, r in enumerate(d["rounds"]):
        if r["tightened"]:
            console().print(f"round {i}: tightened " + "; ".join(r["tightened"]))
    for note in (d["cost_note"], d["slo_note"]):
        if note:
            console().print(f"[bold]{'warning' if note is d['slo_note'] else 'note'}:[/bold] {escape(note)}")
