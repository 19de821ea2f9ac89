"""Scenario files (workloads/scenarios/*.yaml): traffic, request classes, SLOs and the deployment.

    name: chat
    num_requests: 2000
    seed: 0
    arrival: {process: poisson, rate: 8}      # gamma {rate, cv} | constant {rate} | offline
                                              # | closed_loop {users, think_time_s}
    classes:                                  # mixed by weight
      - {name: chat, weight: 1, input_len: {lognormal: {mean: 1024, sigma: 0.8}}, output_len: 256}
      - {name: agent, input_len: 8000, prefix_len: 6000, output_len: 200,   # multi-turn sessions:
         turns: {uniform: [2, 8]}, turn_input_len: {uniform: [200, 2000]}}  # history + new message
    trace: {path: trace.csv, format: azure}   # replaces arrival and classes (generic | azure)
    slo: {ttft_s: 2.0, tpot_s: 0.1}
    deployment: {model: llama-3.1-8b, hw: h100-sxm, tp: 1, replicas: 2}

Every value is checked where it is read: field types here (counts under limits.py's ceilings,
finite rates and times, length specs read whole by traffic.length_spec), then `check_scenario`
for what involves several keys (a rate for the arrivals that need one, a prefix shorter than the
prompts, no key that the rest of the file makes meaningless). Deployment is the one place for a
deployment's fields: simulate.SimConfig subclasses it.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Annotated, Literal, NamedTuple, Optional, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, StrictBool, StringConstraints, ValidationError

from ..config_io import describe_validation_error, load_model
from ..errors import InfercastError, bad_input
from ..limits import MAX_BATCH, MAX_DEGREE, MAX_QUANTITY, MAX_REPLICAS, MAX_REQUESTS, MAX_SEED, MAX_TOKENS
from ..precision import KV_DTYPES, WEIGHT_DTYPES
from ..quantity_types import STRICT, Bytes, BytesPerS, Label, whole_number
from .routers import ROUTERS
from .traffic import FixedLength, LengthSpec, LognormalLength, OptionalLengthSpec, shortest

MAX_RATE = 1e9  # requests/s: a billion a second is past any cluster; beyond it arrivals are all at t=0
MAX_CV = 100.0  # gamma gaps' coefficient of variation: 100 is already one burst and long silence
MAX_BLOCK_TOKENS = 65_536  # tokens per KV block (vLLM uses 16 to 128)
MAX_SECONDS = MAX_QUANTITY["seconds"]
M = TypeVar("M", bound=BaseModel)


def finite(low: float, high: float, low_inclusive: bool = False) -> BeforeValidator:
    """A validator for a finite plain number in (low, high] ([low, high] when `low_inclusive`),
    refusing booleans and strings; config_io adds the key and the value given."""

    def check(value: object) -> float:
        op = ">=" if low_inclusive else ">"
        allowed = f"must be a finite number {op} {low:g} and at most {high:,.0f}"
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise ValueError(allowed)
        x = float(value)
        if x < low or (x == low and not low_inclusive) or x > high:
            raise ValueError(allowed)
        return x

    return BeforeValidator(check)


def nullable(validator: BeforeValidator) -> BeforeValidator:
    """`validator` for an optional field: None passes as None."""
    return BeforeValidator(lambda value: None if value is None else validator.func(value))


def one_of(names) -> BeforeValidator:
    def check(value: object) -> object:
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}")
        return value

    return BeforeValidator(check)


Degree = Annotated[int, whole_number(1, MAX_DEGREE, " (limits.MAX_DEGREE, the ceiling on one parallel degree)")]
OptDegree = Annotated[Optional[int], nullable(whole_number(1, MAX_DEGREE, " (limits.MAX_DEGREE)"))]
Replicas = Annotated[int, whole_number(1, MAX_REPLICAS, " (limits.MAX_REPLICAS, the ceiling on one pool)")]
Requests = Annotated[int, whole_number(1, MAX_REQUESTS, " (limits.MAX_REQUESTS: split a larger run into several)")]
Seed = Annotated[int, whole_number(0, MAX_SEED, " (limits.MAX_SEED, 2^63 - 1)")]
Rate = Annotated[float, finite(0, MAX_RATE)]
PositiveSeconds = Annotated[float, finite(0, MAX_SECONDS)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=4096)]  # an ID or a file path


class Arrival(BaseModel):
    model_config = STRICT
    process: Literal["poisson", "gamma", "constant", "offline", "closed_loop"] = "poisson"
    rate: Optional[Rate] = None  # requests/s (new sessions/s when classes have several turns)
    cv: Annotated[float, finite(0, MAX_CV)] = 1.0  # gamma: coefficient of variation of the gaps
    users: Annotated[Optional[int], nullable(whole_number(1, MAX_REQUESTS))] = None  # closed loop: concurrent users
    think_time_s: Annotated[float, finite(0, MAX_SECONDS, low_inclusive=True)] = 0.0  # pause between a reply and
    #                        the user's next request (closed loop) or the session's next turn (multi-turn classes)


class RequestClass(BaseModel):
    model_config = STRICT
    name: Label
    weight: Annotated[float, finite(0, 1e12)] = 1.0
    input_len: LengthSpec  # int or {uniform|lognormal|empirical: ...} (traffic.length_spec)
    output_len: LengthSpec
    prefix_len: Annotated[int, whole_number(0, MAX_TOKENS)] = 0  # tokens of a prompt prefix shared by the class
    turns: LengthSpec = FixedLength(1)  # turns per session; each resends the history plus a new message
    turn_input_len: OptionalLengthSpec = None  # new message tokens of each turn after the first (default: input_len)


class Trace(BaseModel):
    model_config = STRICT
    path: Reference
    format: Literal["generic", "azure"] = "generic"


class Slo(BaseModel):
    model_config = STRICT
    ttft_s: PositiveSeconds = float("inf")
    tpot_s: PositiveSeconds = float("inf")


class Disaggregation(BaseModel):
    """Separate prefill and decode pools (Splitwise, Patel et al. 2024; DistServe, Zhong et al. 2024):
    a prefill replica computes the prompt and first token, then hands the KV to a decode replica."""

    model_config = STRICT
    prefill_replicas: Replicas
    decode_replicas: Replicas
    prefill_tp: OptDegree = None  # default: the deployment's tp (likewise pp, cp, hw)
    decode_tp: OptDegree = None
    prefill_pp: OptDegree = None
    decode_pp: OptDegree = None
    prefill_cp: OptDegree = None
    decode_cp: OptDegree = None
    prefill_hw: Optional[Reference] = None  # the pools may run on different hardware (Splitwise's mixed pools)
    decode_hw: Optional[Reference] = None
    link_bandwidth: Optional[BytesPerS] = None  # per device; default: scale-up if both pools fit one domain, else scale-out
    layerwise: StrictBool = True  # send each layer's KV as soon as it is computed, under the rest of the prefill


class KvOffload(BaseModel):
    """Device KV extended by a slower tier: the KV beyond device memory lives there and is read back
    over the host link (PCIe or C2C) every step it is attended."""

    model_config = STRICT
    tier: Literal["host", "nvme"] = "host"
    capacity: Bytes = Field(gt=0)  # per device


class Deployment(BaseModel):
    model_config = STRICT
    model: Reference = "llama-3.1-8b"
    hw: Reference = "h100-sxm"
    tp: Degree = 1
    pp: Degree = 1
    cp: Degree = 1  # context parallel (phases.Layout)
    cp_kind: Literal["ring", "ulysses"] = "ring"
    ep: Degree = 1  # expert parallel inside the TP group
    ep_imbalance: Annotated[float, finite(1, MAX_DEGREE, low_inclusive=True)] = 1.0  # busiest EP rank's load / mean
    replicas: Replicas = 1
    dtype: Annotated[str, one_of(WEIGHT_DTYPES)] = "bf16"
    kv_dtype: Annotated[Optional[str], nullable(one_of(KV_DTYPES))] = None
    max_batch: Annotated[int, whole_number(1, MAX_BATCH, " (limits.MAX_BATCH)")] = 256
    max_batched_tokens: Annotated[int, whole_number(1, MAX_TOKENS, " (limits.MAX_TOKENS)")] = 8192
    block_size: Annotated[int, whole_number(1, MAX_BLOCK_TOKENS, " tokens per KV block")] = 16
    router: Annotated[str, one_of(tuple(ROUTERS))] = "least_outstanding"
    prefix_caching: StrictBool = True  # share cached prompt prefixes (vLLM automatic prefix caching)
    preemption: Literal["recompute", "swap"] = "recompute"  # what a preempted request's KV does
    swap_space_gib: Annotated[float, finite(0, 2.0**30, low_inclusive=True)] = 4.0  # host memory per device for
    #                                                                               swapped KV (vLLM's default)
    disaggregation: Optional[Disaggregation] = None  # replaces `replicas` with prefill and decode pools
    kv_offload: Optional[KvOffload] = None


class Scenario(BaseModel):
    model_config = STRICT
    name: Label
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    num_requests: Requests = 1000  # with a trace: replay its first num_requests rows (default: all)
    seed: Seed = 0
    arrival: Arrival = Arrival()
    classes: list[RequestClass] = Field(default_factory=list)
    trace: Optional[Trace] = None
    slo: Slo = Slo()
    deployment: Deployment = Deployment()
    max_time_s: PositiveSeconds = 1e7


class Origin(NamedTuple):
    """Where a scenario's values came from, to name them in errors: the file (None for a run from
    flags alone) and the flags that replaced some of its keys (key path -> flag)."""

    file: str | None
    flags: dict[str, str] = {}

    def flag_for(self, key: str) -> str | None:
        """The flag that set `key`, a key above it or one below it; None if the file did."""
        for path, flag in self.flags.items():
            if key == path or key.startswith(path + ".") or path.startswith(key + "."):
                return flag
        return None

    def where(self, *keys: str) -> str:
        """The flag that set any of `keys`, else the first key in the file."""
        for key in keys:
            if (flag := self.flag_for(key)) is not None:
                return flag
        return f"{self.file}: key '{keys[0]}'" if self.file else f"flags: scenario key '{keys[0]}'"


def validated(cls: type[M], data: dict, origin: Origin) -> M:
    """`data` (a file's keys with flags' values in place) as a `cls`; an error names the flag that
    set the value, or the file's key."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = origin.flag_for(".".join(str(p) for p in err["loc"]))
        if flag is None:
            raise InfercastError(f"{origin.file or 'flags'}: {describe_validation_error(exc, cls)}") from None
        given = err.get("input")
        scalar = given is None or isinstance(given, (str, int, float, bool))
        raise bad_input(flag, err["msg"].removeprefix("Value error, "), given if scalar else ...) from None


def check_scenario(sc: Scenario, origin: Origin) -> Scenario:
    """The checks that involve several keys; each error names the key (or the flag that set it)."""
    _check_source(sc, origin)
    if sc.trace is None:
        _check_arrival(sc, origin)
        for k, c in enumerate(sc.classes):
            median = " (a lognormal's shortest: its median)" if isinstance(c.input_len, LognormalLength) else ""
            if c.prefix_len and not c.prefix_len < shortest(c.input_len):
                raise bad_input(origin.where(f"classes.{k}.prefix_len", f"classes.{k}.input_len"),
                                f"class '{c.name}': prefix_len ({c.prefix_len:,}) must be shorter than every prompt: "
                                f"input_len's shortest is {shortest(c.input_len):,.0f}{median}")
    _check_deployment(sc.deployment, origin)
    return sc


def _check_source(sc: Scenario, origin: Origin) -> None:
    if sc.trace is None and not sc.classes:
        raise bad_input(origin.where("classes"), "a scenario needs `classes` (request lengths) or a `trace`")
    if sc.trace is None:
        return
    for key in ("classes", "arrival", "seed"):
        if key in sc.model_fields_set:
            raise bad_input(origin.where(key), f"a trace replay takes its arrivals and lengths from the trace's "
                                               f"rows ({sc.trace.path}): remove `{key}` or the trace")


def _check_arrival(sc: Scenario, origin: Origin) -> None:
    a, given = sc.arrival, sc.arrival.model_fields_set
    where = lambda key: origin.where(f"arrival.{key}", "arrival.process")  # noqa: E731
    if a.process in ("poisson", "gamma", "constant") and a.rate is None:
        raise bad_input(where("rate"), f"'{a.process}' arrivals need a rate in requests/s (arrival.rate, --rate)")
    if a.process in ("offline", "closed_loop") and a.rate is not None:
        raise bad_input(where("rate"), f"'{a.process}' arrivals have no rate: offline requests all arrive at "
                                       f"0, closed-loop users send when their last reply is back")
    if "cv" in given and a.process != "gamma":
        raise bad_input(where("cv"), f"cv shapes gamma arrivals only (these are '{a.process}')")
    if (a.process == "closed_loop") != (a.users is not None):
        allowed = "closed-loop arrivals need users" if a.users is None else "users are for closed-loop arrivals only"
        raise bad_input(where("users"), f"{allowed} (these are '{a.process}')")
    multi_turn = any(c.turns != FixedLength(1) for c in sc.classes)
    span = (sc.num_requests - 1) / a.rate if a.rate else 0.0
    if not multi_turn and span > sc.max_time_s:  # the run would stop at its time bound, most requests unsent
        raise bad_input(origin.where("arrival.rate", "num_requests", "max_time_s"),
                        f"{sc.num_requests:,} requests at {a.rate:g} requests/s arrive over {span:,.0f} s, past the "
                        f"run's bound (max_time_s: {sc.max_time_s:,.0f} s): raise the rate or ask for fewer requests",
                        a.rate)
    if "think_time_s" in given and a.process != "closed_loop" and not multi_turn:
        raise bad_input(where("think_time_s"), "think_time_s applies to closed-loop users and multi-turn classes; "
                                               "these arrivals are open loop and every class has one turn")


def _check_deployment(dep: Deployment, origin: Origin) -> None:
    if dep.disaggregation is not None and "replicas" in dep.model_fields_set:
        raise bad_input(origin.where("deployment.replicas", "deployment.disaggregation"),
                        "a disaggregated deployment sizes its pools with disaggregation.prefill_replicas and "
                        "decode_replicas; remove replicas")
    if dep.ep_imbalance > dep.ep:
        raise bad_input(origin.where("deployment.ep_imbalance", "deployment.ep"),
                        f"ep_imbalance (the busiest rank's load over the mean) is at most ep ({dep.ep})",
                        dep.ep_imbalance)


def load_scenario(ref: str) -> tuple[Scenario, Path]:
    """A scenario by path, or by the ID of a shipped one (workloads/scenarios/<id>.yaml)."""
    from ..catalog import shipped_or_path

    path = shipped_or_path(ref, "workloads.scenarios", "SCENARIO")
    return check_scenario(load_model(path, Scenario), Origin(str(path))), path


class PoolShape(NamedTuple):
    role: str  # both | prefill | decode
    hw: str
    tp: int
    pp: int
    cp: int
    ep: int
    replicas: int

    @property
    def devices(self) -> int:
        return self.replicas * self.tp * self.pp * self.cp

    @property
    def layout(self) -> str:
        return " ".join([f"TP{self.tp}"] + [f"{k}{v}" for k, v in (("PP", self.pp), ("CP", self.cp), ("EP", self.ep))
                                            if v > 1])


def pool_shapes(dep: Deployment) -> list[PoolShape]:
    """The deployment's pools: one co-located, or prefill then decode."""
    dis = dep.disaggregation
    if dis is None:
        return [PoolShape("both", dep.hw, dep.tp, dep.pp, dep.cp, dep.ep, dep.replicas)]
    return [PoolShape(role, getattr(dis, f"{role}_hw") or dep.hw, getattr(dis, f"{role}_tp") or dep.tp,
                      getattr(dis, f"{role}_pp") or dep.pp, getattr(dis, f"{role}_cp") or dep.cp, dep.ep,
                      getattr(dis, f"{role}_replicas")) for role in ("prefill", "decode")]




def run_config(sc: Scenario, requests: int) -> dict:
    """What a run simulated, for its output's `config` block: model, each pool's hardware, layout
    and replicas, the traffic, the scheduler settings, calibration status and infercast's version."""
    from ..about import infercast_version
    from ..step import device

    dep, a = sc.deployment, sc.arrival
    pools = [{"role": p.role, "hw": p.hw, "layout": p.layout, "tp": p.tp, "pp": p.pp, "cp": p.cp, "ep": p.ep,
              "replicas": p.replicas, "devices": p.devices, "calibrated": bool(device(p.hw).calibrated)}
             for p in pool_shapes(dep)]
    if sc.trace is not None:
        arrival = {"process": "trace", "trace": sc.trace.path, "trace_format": sc.trace.format}
    else:
        arrival = {"process": a.process, "rate": a.rate, "cv": a.cv if a.process == "gamma" else None,
                   "users": a.users, "think_time_s": a.think_time_s}
    dis, off = dep.disaggregation, dep.kv_offload
    return {
        "scenario": sc.name, "model": dep.model, "dtype": dep.dtype, "kv_dtype": dep.kv_dtype, "pools": pools,
        "replicas": sum(p["replicas"] for p in pools), "devices": sum(p["devices"] for p in pools),
        "disaggregation": None if dis is None else {
            "prefill_replicas": dis.prefill_replicas, "decode_replicas": dis.decode_replicas,
            "link_bandwidth": dis.link_bandwidth, "layerwise": dis.layerwise},
        "arrival": arrival, "requests": requests, "seed": None if sc.trace is not None else sc.seed,
        "max_batch": dep.max_batch, "max_batched_tokens": dep.max_batched_tokens, "block_size": dep.block_size,
        "router": dep.router, "preemption": dep.preemption, "swap_space_gib": dep.swap_space_gib,
        "prefix_caching": dep.prefix_caching,
        "kv_offload": None if off is None else {"tier": off.tier, "capacity_bytes": off.capacity},
        "slo": {"ttft_s": sc.slo.ttft_s, "tpot_s": sc.slo.tpot_s}, "max_time_s": sc.max_time_s,
        "calibrated": all(p["calibrated"] for p in pools), "infercast_version": infercast_version(),
    }
