"""`infercast plan`: a capacity plan from a plan file, or from flags for one request class."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Optional

import typer


class Format(str, Enum):
    table = "table"
    json = "json"


def plan_command(
    plan_file: Optional[str] = typer.Argument(None, help="Plan YAML file (demand, inventory, rules)."),
    model: Optional[str] = typer.Option(None, help="Model ID or file (flag runs) [llama-3.1-70b]."),
    hw: str = typer.Option("h100-sxm,h200-sxm", help="Inventory: HW[:COUNT],... (no count: unlimited)."),
    rate: float = typer.Option(1.0, help="Requests/s of the one class (flag runs)."),
    input_len: int = typer.Option(8192, help="Prompt tokens (flag runs)."),
    output_len: int = typer.Option(512, help="Output tokens (flag runs)."),
    ttft: float = typer.Option(2.0, help="TTFT SLO, seconds (flag runs)."),
    tpot: float = typer.Option(0.1, help="TPOT SLO, seconds (flag runs)."),
    disagg: Optional[bool] = typer.Option(None, "--disagg/--no-disagg", help="Allow separate prefill and decode pools."),
    objective: Optional[str] = typer.Option(None, help="usd, power or devices."),
    rounds: Optional[int] = typer.Option(None, help="Simulate-and-tighten rounds (0: no simulation)."),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Which hardware, how many, split how: the cheapest plan that serves the demand within its SLOs,
    checked in the serving simulator."""
    from ..errors import InfercastError
    from .output import print_plan, to_dict
    from .plan import plan
    from .spec import PlanSpec, load_plan

    if plan_file is not None:
        spec = load_plan(plan_file)
    else:
        spec = _flag_spec(PlanSpec, model or "llama-3.1-70b", hw, rate, input_len, output_len, ttft, tpot)
    over = {k: v for k, v in (("disaggregation", disagg), ("objective", objective)) if v is not None}
    if rounds is not None:
        if rounds < 0:
            raise InfercastError(f"--rounds: must be >= 0 (got {rounds})")
        over["check"] = spec.check.model_copy(update={"rounds": rounds})
    if objective is not None and objective not in ("usd", "power", "devices"):
        raise InfercastError(f"--objective: '{objective}' is not one of usd, power, devices")
    spec = spec.model_copy(update=over)
    res = plan(spec, progress=None if format is Format.json else lambda msg: print(msg, file=sys.stderr))
    if not res.ok:
        raise InfercastError(f"no plan ({res.status}): " + "; ".join(res.binding))
    if format is Format.json:
        print(json.dumps(to_dict(res), indent=2))
    else:
        print_plan(res)


def _flag_spec(PlanSpec, model, hw, rate, input_len, output_len, ttft, tpot):
    from ..errors import InfercastError

    inventory = []
    for part in hw.split(","):
        name, _, count = part.strip().partition(":")
        if not name or (count and not count.isdigit()):
            raise InfercastError(f"--hw: expected HW[:COUNT],... e.g. h100-sxm:64,h200-sxm (got '{hw}')")
        inventory.append({"hw": name, "count": int(count) if count else None})
    for v, flag in ((rate, "--rate"), (ttft, "--ttft"), (tpot, "--tpot")):
        if not v > 0:
            raise InfercastError(f"{flag}: must be > 0 (got {v})")
    for v, flag in ((input_len, "--input-len"), (output_len, "--output-len")):
        if v < 1:
            raise InfercastError(f"{flag}: must be >= 1 (got {v})")
    cls = {"name": "default", "rate": rate, "input_len": input_len, "output_len": output_len, "ttft_s": ttft, "tpot_s": tpot}
    return PlanSpec(name="flags", model=model, classes=[cls], inventory=inventory)
