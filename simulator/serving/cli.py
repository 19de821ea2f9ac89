"""`infercast simulate`: a serving simulation of a scenario file, or of one request class from flags.

Flags and a scenario file: a flag given with a scenario replaces the file's value. Deployment
flags replace its `deployment` keys (--disagg its pool sizes, keeping the file's other
disaggregation keys), --arrival/--rate/--cv its `arrival`, --num-requests and --seed its own,
--ttft-slo/--tpot-slo its `slo`, --input-len/--output-len the lengths of its one request class.
A flag with nothing to replace is refused, saying why: lengths for a scenario of several classes;
--rate, --arrival, --cv, --seed and lengths for a trace replay (--num-requests replays the trace's
first N rows); --rate for offline or closed-loop arrivals; --cv for arrivals other than gamma;
--replicas for disaggregated pools (--disagg sizes them). When --arrival changes the process, the
file's arrival keys the new process does not take are dropped. Without a file, an unset flag
takes its default (in its help). A flag's value is checked as the file's key would be.
"""

from __future__ import annotations

import math
import os
import re
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import bad_input
from ..own_folders import package_folder_holding


class Arrival(str, Enum):
    offline = "offline"
    poisson = "poisson"
    gamma = "gamma"
    constant = "constant"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


# a run from flags alone: its scenario before the flags are applied
FLAG_DEFAULTS = dict(num_requests=500, seed=0, rate=4.0, cv=2.0, input_len=1024, output_len=256, arrival="poisson")
DEPLOYMENT_FLAGS = ("model", "hw", "tp", "pp", "cp", "cp_kind", "ep", "replicas", "max_batch", "max_batched_tokens",
                    "dtype", "router", "preemption", "prefix_caching")
TRAFFIC_FLAGS = ("arrival", "rate", "cv", "seed", "input_len", "output_len")  # num_requests: also with a trace
RATED = ("poisson", "gamma", "constant")  # arrival processes that take a rate
FLAGS = (*DEPLOYMENT_FLAGS, *TRAFFIC_FLAGS, "num_requests", "disagg", "prefill_tp", "decode_tp", "kv_offload",
         "ttft_slo", "tpot_slo")  # the flags that set a scenario value


def simulate_command(
    scenario: Optional[str] = typer.Argument(None, help="Scenario YAML file or shipped scenario ID (workloads/scenarios)."),
    model: Optional[str] = typer.Option(None, help="Model ID or file (default llama-3.1-8b)."),
    hw: Optional[str] = typer.Option(None, help="Hardware ID or file (default h100-sxm)."),
    tp: Optional[int] = typer.Option(None, help="Tensor-parallel degree per replica (default 1)."),
    pp: Optional[int] = typer.Option(None, help="Pipeline stages per replica (default 1)."),
    cp: Optional[int] = typer.Option(None, help="Context-parallel degree per replica (default 1)."),
    cp_kind: Optional[str] = typer.Option(None, help="Context parallelism: ring or ulysses (default ring)."),
    ep: Optional[int] = typer.Option(None, help="Expert-parallel degree inside the TP group (MoE) (default 1)."),
    replicas: Optional[int] = typer.Option(None, help="Replicas behind the router (default 1). Refused for disaggregated pools (--disagg sizes them)."),
    rate: Optional[float] = typer.Option(None, help="Arrival rate, requests/s (default 4). Replaces arrival.rate; refused for offline, closed-loop and trace arrivals."),
    num_requests: Optional[int] = typer.Option(None, help="Requests to simulate (default 500). With a trace: replay its first N rows."),
    input_len: Optional[int] = typer.Option(None, help="Prompt tokens per request (default 1024). With a scenario: only one of a single class, no trace."),
    output_len: Optional[int] = typer.Option(None, help="Generated tokens per request (default 256). With a scenario: only one of a single class, no trace."),
    arrival: Optional[Arrival] = typer.Option(None, help="offline, poisson, gamma or constant (default poisson). Replaces arrival.process; refused with a trace."),
    cv: Optional[float] = typer.Option(None, help="Coefficient of variation of gamma inter-arrival gaps (default 2). Gamma arrivals only."),
    max_batch: Optional[int] = typer.Option(None, help="Most requests in one step (default 256)."),
    max_batched_tokens: Optional[int] = typer.Option(None, help="Most tokens (prefill chunks + decodes) in one step (default 8192)."),
    dtype: Optional[str] = typer.Option(None, help="Weight dtype (default bf16)."),
    router: Optional[str] = typer.Option(None, help="round_robin, least_outstanding or prefix_affinity (default least_outstanding)."),
    seed: Optional[int] = typer.Option(None, help="Random seed: same seed, same result (default 0). Refused with a trace."),
    disagg: Optional[str] = typer.Option(None, help="Disaggregate: PREFILL:DECODE replicas, e.g. 1:3 (replaces --replicas)."),
    prefill_tp: Optional[int] = typer.Option(None, help="TP of prefill replicas when disaggregated (default --tp)."),
    decode_tp: Optional[int] = typer.Option(None, help="TP of decode replicas when disaggregated (default --tp)."),
    kv_offload: Optional[str] = typer.Option(None, help="Offload tier for KV beyond device memory: TIER:CAPACITY per device, e.g. host:64GiB or nvme:1TB."),
    preemption: Optional[str] = typer.Option(None, help="recompute or swap (to host memory) (default recompute)."),
    prefix_caching: Optional[bool] = typer.Option(None, "--prefix-caching/--no-prefix-caching", help="Share cached prompt prefixes (default on)."),
    chrome_trace: Optional[str] = typer.Option(None, help="Write a Chrome trace (chrome://tracing, Perfetto) of the steps to this new file."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr for runs over a second."),
    ttft_slo: Optional[float] = typer.Option(None, help="TTFT SLO in seconds, for goodput (default none)."),
    tpot_slo: Optional[float] = typer.Option(None, help="TPOT SLO in seconds, for goodput (default none)."),
    format: Format = typer.Option(Format.table, "--format", help="table, json or csv (per-request rows)."),
) -> None:
    """Simulate requests through continuously batched replicas: a scenario file, or a quick run from
    flags (unset ones at their defaults). A flag given with a scenario replaces the file's value;
    one with nothing to replace is refused, saying why: --input-len/--output-len for a scenario of
    several classes, traffic flags other than --num-requests (its first N rows) for a trace
    replay, --rate for offline or closed-loop arrivals, --cv for arrivals other than gamma,
    --replicas for disaggregated pools."""
    given = {k: getattr(v, "value", v) for k, v in locals().items() if k in FLAGS and v is not None}
    _check_new_file(chrome_trace)
    sc, base_dir = scenario_with_flags(scenario, given)
    res = _run(sc, base_dir, progress)
    if chrome_trace is not None:
        from .chrome_trace import write_chrome_trace

        write_chrome_trace(res, chrome_trace)
    _emit(res, sc, format)


def _run(sc, base_dir, progress: bool):
    from .progress import ProgressBar
    from .simulate import run_scenario

    bar = ProgressBar() if progress else None
    try:
        return run_scenario(sc, base_dir, bar)
    finally:
        if bar is not None:
            bar.close()


def scenario_with_flags(ref: str | None, given: dict):
    """(the scenario to run, the folder its trace path is relative to): the file `ref` (or, when
    None, the defaults of a run from flags) with the `given` flags applied by the module's rule."""
    from .scenario import Origin, Scenario, check_scenario, load_scenario, validated

    if ref is None:
        process = given.get("arrival", FLAG_DEFAULTS["arrival"])
        arrival = {"process": process, **({"rate": FLAG_DEFAULTS["rate"]} if process in RATED else {}),
                   **({"cv": FLAG_DEFAULTS["cv"]} if process == "gamma" else {})}
        cls = {"name": "flags", "input_len": FLAG_DEFAULTS["input_len"], "output_len": FLAG_DEFAULTS["output_len"]}
        sc = Scenario.model_validate({"name": "flags", "num_requests": FLAG_DEFAULTS["num_requests"],
                                      "seed": FLAG_DEFAULTS["seed"], "arrival": arrival, "classes": [cls]})
        file, base_dir = None, None
    else:
        sc, path = load_scenario(ref, check=False)  # checked once the flags are in place
        file, base_dir = str(path), path.parent
    flags: dict[str, str] = {}
    data = _with_flags(sc, given, flags)
    origin = Origin(file, flags)
    return check_scenario(validated(Scenario, data, origin), origin), base_dir


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _with_flags(sc, given: dict, flags: dict) -> dict:
    """The scenario's keys as the file set them, with the given flags' values in their place;
    `flags` gets key path -> flag for each key a flag set."""
    data = sc.model_dump(exclude_unset=True)
    if sc.trace is not None:
        _refuse_with_trace(sc, given)
    for name, key in (("num_requests", "num_requests"), ("seed", "seed")):
        if name in given:
            data[key], flags[key] = given[name], _flag(name)
    for name, key in (("ttft_slo", "ttft_s"), ("tpot_slo", "tpot_s")):
        if name in given:
            data.setdefault("slo", {})[key], flags[f"slo.{key}"] = given[name], _flag(name)
    if sc.trace is None:
        data["arrival"] = _arrival_with_flags(sc, given, flags)
        for name in ("input_len", "output_len"):
            if name in given:
                if len(sc.classes) != 1:
                    raise bad_input(_flag(name), f"sets the lengths of a scenario's one request class; this one has "
                                                 f"{len(sc.classes)} ({', '.join(c.name for c in sc.classes)}): set "
                                                 f"them per class in the file", given[name])
                data["classes"][0][name], flags[f"classes.0.{name}"] = given[name], _flag(name)
    data["deployment"] = _deployment_with_flags(sc.deployment, given, flags)
    return data


def _refuse_with_trace(sc, given: dict) -> None:
    for name in TRAFFIC_FLAGS:
        if name in given:
            why = "a replay draws nothing at random" if name == "seed" else "its rows give the arrivals and lengths"
            raise bad_input(_flag(name), f"the scenario replays a trace ({sc.trace.path}): {why} (--num-requests "
                                         f"replays its first N rows)", given[name])


def _arrival_with_flags(sc, given: dict, flags: dict) -> dict:
    """The arrival keys with --arrival, --rate and --cv in place; a new process keeps only the
    file's keys it takes."""
    from .traffic import FixedLength

    a = sc.arrival.model_dump(exclude_unset=True)
    process = given.get("arrival", sc.arrival.process)
    if "arrival" in given:
        flags["arrival.process"] = "--arrival"
        if process != sc.arrival.process:
            multi_turn = any(c.turns != FixedLength(1) for c in sc.classes)
            keep = {"rate"} if process in RATED else set()
            keep |= {"cv"} if process == "gamma" else set()
            keep |= {"think_time_s"} if multi_turn else set()
            a = {k: v for k, v in a.items() if k in keep}
            a["process"] = process
            if process == "gamma" and "cv" not in a:
                a["cv"] = FLAG_DEFAULTS["cv"]
    if "rate" in given:
        if process not in RATED:
            raise bad_input("--rate", f"'{process}' arrivals have no rate (it applies to {', '.join(RATED)})",
                            given["rate"])
        a["rate"], flags["arrival.rate"] = given["rate"], "--rate"
    if "cv" in given:
        if process != "gamma":
            raise bad_input("--cv", f"shapes gamma arrivals only (these are '{process}'; add --arrival gamma)",
                            given["cv"])
        a["cv"], flags["arrival.cv"] = given["cv"], "--cv"
    return a


def _deployment_with_flags(dep, given: dict, flags: dict) -> dict:
    """The deployment keys with the deployment flags in place."""
    d = dep.model_dump(exclude_unset=True)
    for name in DEPLOYMENT_FLAGS:
        if name in given:
            d[name], flags[f"deployment.{name}"] = given[name], _flag(name)
    dis = d.get("disaggregation")
    if "disagg" in given:
        if "replicas" in given:
            raise bad_input("--replicas", "--disagg sizes the pools (PREFILL:DECODE replicas): give one of the two",
                            given["replicas"])
        d.pop("replicas", None)
        dis = {**(dis or {}), **_disagg(given["disagg"])}
        for key in ("prefill_replicas", "decode_replicas"):
            flags[f"deployment.disaggregation.{key}"] = "--disagg"
    elif "replicas" in given and dis is not None:
        raise bad_input("--replicas", f"the deployment is disaggregated ({dis['prefill_replicas']} prefill + "
                                      f"{dis['decode_replicas']} decode replicas): give --disagg PREFILL:DECODE",
                        given["replicas"])
    for name in ("prefill_tp", "decode_tp"):
        if name in given:
            if dis is None:
                raise bad_input(_flag(name), "sizes a pool of a disaggregated deployment: add --disagg "
                                             "PREFILL:DECODE", given[name])
            dis[name], flags[f"deployment.disaggregation.{name}"] = given[name], _flag(name)
    if dis is not None:
        d["disaggregation"] = dis
    if "kv_offload" in given:
        d["kv_offload"], flags["deployment.kv_offload"] = _offload(given["kv_offload"]), "--kv-offload"
    return d


def _disagg(spec: str) -> dict:
    m = re.fullmatch(r"\s*([-+]?[0-9]{1,30})\s*:\s*([-+]?[0-9]{1,30})\s*", spec)
    if m is None:
        raise bad_input("--disagg", "expected PREFILL:DECODE replica counts, e.g. 1:3", spec)
    return {"prefill_replicas": int(m[1]), "decode_replicas": int(m[2])}


def _offload(spec: str) -> dict:
    tier, _, capacity = spec.partition(":")
    if not capacity.strip():
        raise bad_input("--kv-offload", "expected TIER:CAPACITY per device, e.g. host:64GiB or nvme:1TB", spec)
    return {"tier": tier, "capacity": capacity}


def _check_new_file(chrome_trace: str | None) -> None:
    """A Chrome trace goes to a new file in a folder that exists and can be written to: checked
    before the run, so a bad path costs no simulation."""
    if chrome_trace is None:
        return
    if not chrome_trace.strip() or "\x00" in chrome_trace:
        raise bad_input("--chrome-trace", "needs the path of a new file, e.g. steps.json", chrome_trace)
    if chrome_trace.strip() == "-":
        raise bad_input("--chrome-trace", "write to a file path; '-' (stdout) is not supported", chrome_trace)
    if chrome_trace.endswith(("/", os.sep)):
        raise bad_input("--chrome-trace", "names a folder (it ends in a slash): give the path of a new file in it, "
                                          "e.g. steps.json", chrome_trace)
    path = Path(chrome_trace)
    pkg = package_folder_holding(path)
    if pkg is not None:
        raise bad_input("--chrome-trace", f"lies inside infercast's own package folder {pkg}: write it elsewhere",
                        chrome_trace)
    if os.path.lexists(path):  # also a link, dangling or not
        what = "a link" if path.is_symlink() else "a folder" if path.is_dir() else "a file"
        raise bad_input("--chrome-trace", f"already exists (as {what}), and infercast does not overwrite files: pick "
                                          f"a new path", chrome_trace)
    folder = path.parent
    if not folder.is_dir():
        raise bad_input("--chrome-trace", f"the folder {str(folder)!r} does not exist: create it or pick another path",
                        chrome_trace)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise bad_input("--chrome-trace", f"cannot write in the folder {str(folder)!r}: pick another path",
                        chrome_trace)


def _emit(res, sc, format: Format) -> None:
    from .metrics import requests_frame, summary
    from .shapes import run_config

    if format is Format.csv:
        print(requests_frame(res).to_csv(index=False), end="")
        return
    s = {**summary(res, sc.slo.ttft_s, sc.slo.tpot_s), "notes": run_notes(res, sc)}
    config = run_config(sc, res.requested)
    if format is Format.json:
        from .. import strict_json

        print(strict_json.dumps({**s, "config": config}))
        return
    from rich.table import Table

    from ..console import console

    t = Table(title=title(config), caption=caption(config), show_header=False)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in s.items():
        t.add_row(k, _cell(v))
    console().print(t)
    if s["stop_reason"] == "overloaded":
        console().print(f"[bold red]{overload_line(s)}[/]")


def run_notes(res, sc) -> list[str]:
    """What the figures rest on that a reader should know: requests whose context (prompt and
    output) exceeds the model's trained maximum (costed all the same, as whatif does)."""
    from ..catalog import load_model_spec
    from ..human import count

    m = load_model_spec(sc.deployment.model)
    if not m.max_context:
        return []
    over = [r.input_len + r.output_len for r in res.requests if r.input_len + r.output_len > m.max_context]
    if not over:
        return []
    return [f"{count(len(over))} request{'' if len(over) == 1 else 's'} with a context (prompt + output) of up to "
            f"{count(max(over))} tokens, beyond {m.id}'s trained maximum of {count(m.max_context)}"]


def overload_line(s: dict) -> str:
    """The headline of an overloaded run: offered against served, and what the latencies cover."""
    from ..human import count, rate

    return (f"overloaded: arrivals at {rate(s['offered_rps'], 'req/s')} outrun the {rate(s['served_rps'], 'req/s')} "
            f"this deployment serves; {count(s['arrived'])} of {count(s['requests'])} requests arrived before "
            f"the run stopped; latencies cover the {s['metrics_cover']} ({count(s['stable_requests'])} "
            f"request{'' if s['stable_requests'] == 1 else 's'})")


def _cell(value: object) -> str:
    """A table cell: a number to 4 significant figures with thousands separators and no exponent
    (human.significant: "33,910", "0.01221"; "1.221e-5" only below 0.0001); no value as '-' (as
    null in JSON and empty in CSV; the summary's no_value_reason row says why)."""
    from ..human import significant

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return significant(value, 4)
    if isinstance(value, list):
        return "; ".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in value.items()) or "none"
    return str(value)


def title(c: dict) -> str:
    """'chat: llama-3.1-8b bf16 on 2x h100-sxm TP1; 2,000 requests, poisson 20 req/s, seed 0';
    pools of a disaggregated run: '1x prefill TP4 + 3x decode TP4 = 16 h100-sxm'."""
    from ..human import significant

    pools = c["pools"]
    hws = list(dict.fromkeys(p["hw"] for p in pools))
    if len(pools) == 1:
        p = pools[0]
        where = f"{p['replicas']:,}x {p['hw']} {p['layout']}"
        where += f" = {p['devices']:,} {p['hw']}" if p["devices"] != p["replicas"] else ""
    else:
        one_hw = len(hws) == 1
        parts = [f"{p['replicas']:,}x {p['role']} {p['layout']}" + ("" if one_hw else f" {p['hw']}") for p in pools]
        counts = [f"{sum(p['devices'] for p in pools if p['hw'] == hw):,} {hw}" for hw in hws]
        where = " + ".join(parts) + " = " + " + ".join(counts)
    a = c["arrival"]
    traffic = {"trace": f"replay of {a.get('trace')}", "offline": "offline (all at 0 s)",
               "closed_loop": f"closed loop, {a.get('users')} users, think {a.get('think_time_s')} s"}.get(
        a["process"], f"{a['process']} {significant(a.get('rate') or 0, 4)} req/s" + (f", cv {a['cv']:g}" if a.get("cv") else ""))
    seed = "" if c["seed"] is None else f", seed {c['seed']}"
    return f"{c['scenario']}: {c['model']} {c['dtype']} on {where}; {c['requests']:,} requests, {traffic}{seed}"


def caption(c: dict) -> str:
    """The scheduler settings, calibration status and version under the table."""
    from ..units import format_quantity

    off = c["kv_offload"]
    offload = "none" if off is None else f"{off['tier']} {format_quantity(off['capacity_bytes'], 'bytes')} per device"
    cal = "calibrated profile" if c["calibrated"] else "default efficiencies (calibrated: false)"
    return (f"max_batch {c['max_batch']:,}, max_batched_tokens {c['max_batched_tokens']:,}, router {c['router']}, "
            f"preemption {c['preemption']}, prefix caching {'on' if c['prefix_caching'] else 'off'}, KV offload "
            f"{offload}; {cal}; infercast {c['infercast_version']}")
