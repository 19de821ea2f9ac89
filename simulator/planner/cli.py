"""`infercast plan`: a capacity plan from a plan file, or from flags for one request class.

Flags and a plan file: a flag given with a plan file replaces the file's value: --model its
model, --hw its whole inventory, --disagg/--no-disagg, --objective and --rounds their keys, and
--rate, --input-len, --output-len, --ttft and --tpot the values of its one class; those five are
refused, saying why, for a plan of several classes. Without a file, an unset flag takes its default
(in its help). A flag's value is checked as the file's key would be.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
from typing import Optional

import typer

from ..errors import bad_input


class Format(str, Enum):
    table = "table"
    json = "json"


# a plan from flags alone: its one class and inventory before the flags are applied
FLAG_DEFAULTS = dict(model="llama-3.1-70b", hw="h100-sxm,h200-sxm", rate=1.0, input_len=8192, output_len=512,
                     ttft=2.0, tpot=0.1)
CLASS_KEYS = {"rate": "rate", "input_len": "input_len", "output_len": "output_len", "ttft": "ttft_s", "tpot": "tpot_s"}


def plan_command(
    plan_file: Optional[str] = typer.Argument(None, help="Plan YAML file (demand, inventory, rules) or shipped plan ID."),
    model: Optional[str] = typer.Option(None, help="Model ID or file (default llama-3.1-70b)."),
    hw: Optional[str] = typer.Option(None, help="Inventory: HW[:COUNT],... (no count: unlimited) (default h100-sxm,h200-sxm)."),
    rate: Optional[float] = typer.Option(None, help="Requests/s of the one class (default 1)."),
    input_len: Optional[int] = typer.Option(None, help="Prompt tokens (default 8192)."),
    output_len: Optional[int] = typer.Option(None, help="Output tokens (default 512)."),
    ttft: Optional[float] = typer.Option(None, help="TTFT SLO, seconds (default 2)."),
    tpot: Optional[float] = typer.Option(None, help="TPOT SLO, seconds (default 0.1)."),
    disagg: Optional[bool] = typer.Option(None, "--disagg/--no-disagg", help="Allow separate prefill and decode pools (default off)."),
    objective: Optional[str] = typer.Option(None, help="usd, power or devices (default usd)."),
    rounds: Optional[int] = typer.Option(None, help="Simulate-and-tighten rounds (0: no simulation) (default 4)."),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Which hardware, how many, split how: the cheapest plan that serves the demand within its SLOs,
    checked in the serving simulator. A flag given with a plan file replaces the file's value
    (--hw its whole inventory); --rate, --input-len, --output-len, --ttft and --tpot set its one
    class and are refused for a plan of several."""
    from .. import strict_json
    from ..errors import InfercastError
    from .output import print_plan, to_dict
    from .plan import plan

    given = {k: v for k, v in dict(model=model, hw=hw, rate=rate, input_len=input_len, output_len=output_len,
                                   ttft=ttft, tpot=tpot, disagg=disagg, objective=objective, rounds=rounds).items()
             if v is not None}
    spec = spec_with_flags(plan_file, given)
    res = plan(spec, progress=None if format is Format.json else lambda msg: print(msg, file=sys.stderr))
    if not res.ok:
        raise InfercastError(f"no plan ({res.status}): " + "; ".join(res.binding))
    if format is Format.json:
        print(strict_json.dumps(to_dict(res)))
    else:
        print_plan(res)


def spec_with_flags(ref: str | None, given: dict):
    """The plan to solve: the file `ref` (or, when None, a plan of one class from the flags'
    defaults) with the `given` flags applied by the module's rule, checked whole."""
    from ..serving.scenario import Origin, validated
    from .spec import PlanSpec, check_references, load_plan_file

    if ref is None:
        d = FLAG_DEFAULTS
        data = {"name": "flags", "model": d["model"], "inventory": _inventory(d["hw"]),
                "classes": [{"name": "default", **{key: d[flag] for flag, key in CLASS_KEYS.items()}}]}
        file = None
    else:
        spec, path = load_plan_file(ref, references=False)  # checked below, with the flags in place
        data, file = spec.model_dump(exclude_unset=True), str(path)
    flags: dict[str, str] = {}
    for name, key in (("model", "model"), ("disagg", "disaggregation"), ("objective", "objective")):
        if name in given:
            data[key], flags[key] = given[name], "--" + name
    if "hw" in given:
        data["inventory"], flags["inventory"] = _inventory(given["hw"]), "--hw"
    if "rounds" in given:
        data.setdefault("check", {})["rounds"], flags["check.rounds"] = given["rounds"], "--rounds"
    _class_flags(data, given, flags)
    origin = Origin(file, flags)
    return check_references(validated(PlanSpec, data, origin), origin)


def _class_flags(data: dict, given: dict, flags: dict) -> None:
    """--rate, --input-len, --output-len, --ttft, --tpot into the plan's one class."""
    for name, key in CLASS_KEYS.items():
        if name not in given:
            continue
        classes = data["classes"]
        if len(classes) != 1:
            names = ", ".join(str(c.get("name")) for c in classes)
            raise bad_input("--" + name.replace("_", "-"), f"sets a value of a plan's one class; this plan has "
                                                           f"{len(classes)} ({names}): set it per class in the file",
                            given[name])
        classes[0][key], flags[f"classes.0.{key}"] = given[name], "--" + name.replace("_", "-")


def _inventory(text: str) -> list[dict]:
    """--hw HW[:COUNT],... as inventory entries (no count: unlimited)."""
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([^:\s][^:]*?)\s*(?::\s*([-+]?\d{1,30}))?\s*", part)
        if m is None:
            raise bad_input("--hw", "expected HW[:COUNT],... e.g. h100-sxm:64,h200-sxm", text)
        out.append({"hw": m[1], "count": None if m[2] is None else int(m[2])})
    return out
