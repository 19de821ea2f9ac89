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
finite rates and times, length specs read whole by traffic.length_spec, at least 16 batched
tokens, a KV link of at least 1 MB/s, SLOs of at least 1 us: MIN_SLO_S), then `check_scenario` for what involves several keys (a
rate for the arrivals that need one, a prefix shorter than the prompts, unique class names, no
key that the rest of the file makes meaningless: turn_input_len of a one-turn class,
swap_space_gib without swap preemption, cp_kind with cp 1), for the deployment against its model
and hardware (deployment_check.py) and for prompts that would take more engine steps than a run
may (simulate.check_prefill_work). An error names the file's key, or the flag that set it. Deployment is the one place for a
deployment's fields: simulate.SimConfig subclasses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, NamedTuple, Optional, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictBool, StringConstraints, ValidationError

from ..checks import plain_number
from ..config_io import describe_validation_error, load_model
from ..errors import InfercastError, bad_input
from ..human import count, duration, request_rate, significant
from ..limits import MAX_BATCH, MAX_DEGREE, MAX_QUANTITY, MAX_REPLICAS, MAX_REQUESTS, MAX_SEED, MAX_TOKENS
from ..precision import KV_DTYPES, WEIGHT_DTYPES
from ..quantity_types import STRICT, Bytes, BytesPerS, Label, whole_number
from ..units import format_quantity
from .routers import ROUTERS
from .traffic import FixedLength, LengthSpec, LognormalLength, OptionalLengthSpec, mean_of, shortest

MAX_RATE = 1e9  # requests/s: a billion a second is past any cluster; beyond it arrivals are all at t=0
MAX_CV = 100.0  # gamma gaps' coefficient of variation: 100 is already one burst and long silence
MAX_BLOCK_TOKENS = 65_536  # tokens per KV block (vLLM uses 16 to 128)
MAX_SECONDS = MAX_QUANTITY["seconds"]
MIN_LINK = 1e6  # bytes/s of a KV handover link: a thousandth of 1 GbE; under it a handover takes hours
MIN_BATCHED_TOKENS = 16  # tokens per step: one KV block of the default size
MIN_SLO_S = 1e-6  # seconds: the smallest TTFT or TPOT target; no token comes back within a microsecond
M = TypeVar("M", bound=BaseModel)


def finite(low: float, high: float, low_inclusive: bool = False) -> BeforeValidator:
    """A validator for a finite plain number in (low, high] ([low, high] when `low_inclusive`),
    refusing booleans, strings (but for a number in exponent form, checks.EXPONENT_FORM) and
    integers too large for a float; config_io adds the key and the value given."""

    def check(value: object) -> float:
        op = ">=" if low_inclusive else ">"
        allowed = f"must be a finite number {op} {significant(low)} and at most {significant(high)}"
        x = plain_number(value)  # also YAML 1.2's `1e3`, which PyYAML reads as a string
        if x is None:
            raise ValueError(allowed)
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


def _at_least_a_link(value: float) -> float:
    if value < MIN_LINK:
        raise ValueError(f"must be at least {format_quantity(MIN_LINK, 'bytes_per_s')}: slower, one long prompt's KV "
                         f"takes hours to hand over (a plain number is bytes/s; real links run at 10 GB/s and more)")
    return value


def _batched_tokens(value: object) -> int:
    try:
        return whole_number(MIN_BATCHED_TOKENS, MAX_TOKENS).func(value)
    except ValueError:
        raise ValueError(f"must be a whole number from {MIN_BATCHED_TOKENS} (one KV block of the default size: "
                         f"engines schedule no smaller prompt chunk) to {MAX_TOKENS:,} (limits.MAX_TOKENS)") from None


LinkBandwidth = Annotated[BytesPerS, AfterValidator(_at_least_a_link)]
Degree = Annotated[int, whole_number(1, MAX_DEGREE, " (limits.MAX_DEGREE, the ceiling on one parallel degree)")]
OptDegree = Annotated[Optional[int], nullable(whole_number(1, MAX_DEGREE, " (limits.MAX_DEGREE)"))]
Replicas = Annotated[int, whole_number(1, MAX_REPLICAS, " (limits.MAX_REPLICAS, the ceiling on one pool)")]
Requests = Annotated[int, whole_number(1, MAX_REQUESTS, " (limits.MAX_REQUESTS: split a larger run into several)")]
Seed = Annotated[int, whole_number(0, MAX_SEED, " (limits.MAX_SEED, 2^63 - 1)")]
Rate = Annotated[float, finite(0, MAX_RATE)]
PositiveSeconds = Annotated[float, finite(0, MAX_SECONDS)]


def _slo_floor(value: float) -> float:
    if value < MIN_SLO_S:
        raise ValueError(f"must be at least {significant(MIN_SLO_S * 1e6)} us (scenario.MIN_SLO_S): no engine "
                         f"returns a token sooner (one kernel launch takes several us), so a smaller target "
                         f"only marks every request late")
    return value


SloSeconds = Annotated[PositiveSeconds, AfterValidator(_slo_floor)]  # a TTFT or TPOT target
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
    ttft_s: SloSeconds = float("inf")
    tpot_s: SloSeconds = float("inf")


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
    link_bandwidth: Optional[LinkBandwidth] = None  # per device; default: scale-up if both pools fit one domain, else scale-out
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
    max_batched_tokens: Annotated[int, BeforeValidator(_batched_tokens)] = 8192
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
        if self.file:
            return f"{self.file}: key '{keys[0]}'"
        name = keys[0].rsplit(".", 1)[-1]
        from .cli import FLAGS  # a run from flags alone: the flag whose default it is

        return f"--{name.replace('_', '-')} (its default)" if name in FLAGS else f"flags: scenario key '{keys[0]}'"


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
    from .deployment_check import check_cp_tokens, check_pools

    _check_source(sc, origin)
    if sc.trace is None:
        _check_arrival(sc, origin)
        _check_classes(sc, origin)
        for k, c in enumerate(sc.classes):
            median = " (a lognormal's shortest: its median)" if isinstance(c.input_len, LognormalLength) else ""
            if c.prefix_len and not c.prefix_len < shortest(c.input_len):
                raise bad_input(origin.where(f"classes.{k}.prefix_len", f"classes.{k}.input_len"),
                                f"class '{c.name}': prefix_len ({c.prefix_len:,}) must be shorter than every prompt: "
                                f"input_len's shortest is {shortest(c.input_len):,.0f}{median}")
    _check_deployment(sc.deployment, origin)
    check_pools(sc.deployment, origin)
    check_cp_tokens(sc, origin)
    if sc.classes and sc.trace is None:  # the prompts' expected tokens (a trace's are checked when read)
        from .simulate import check_prefill_work

        mean = sum(c.weight * mean_of(c.input_len) for c in sc.classes) / sum(c.weight for c in sc.classes)
        check_prefill_work(sc.num_requests * mean, sc.deployment.max_batched_tokens,
                           origin.where("deployment.max_batched_tokens"))
    return sc


def _check_classes(sc: Scenario, origin: Origin) -> None:
    """Class names are unique (results and errors name classes); turn_input_len needs turns."""
    seen: set[str] = set()
    for k, c in enumerate(sc.classes):
        if c.name in seen:
            raise bad_input(origin.where(f"classes.{k}.name"), "class names must be unique", c.name)
        seen.add(c.name)
        if c.turn_input_len is not None and c.turns == FixedLength(1):
            raise bad_input(origin.where(f"classes.{k}.turn_input_len"),
                            f"class '{c.name}': turn_input_len sizes the new message of each turn after the first, "
                            f"and this class has one turn: set turns, or remove turn_input_len")


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
        _refuse_span(sc, span, origin)
    if "think_time_s" in given and a.process != "closed_loop" and not multi_turn:
        raise bad_input(where("think_time_s"), "think_time_s applies to closed-loop users and multi-turn classes; "
                                               "these arrivals are open loop and every class has one turn")


def _refuse_span(sc: Scenario, span: float, origin: Origin) -> None:
    """The arrivals outlast the run's time bound: the error names max_time_s when the user set it
    (the bound was shrunk), else the rate (the file's key or the flag), and says what would fit."""
    key = "max_time_s" if "max_time_s" in sc.model_fields_set else "arrival.rate"
    given = {"arrival.rate": sc.arrival.rate, "num_requests": sc.num_requests, "max_time_s": sc.max_time_s}[key]
    fits = min(MAX_RATE, (sc.num_requests - 1) / sc.max_time_s)
    raise bad_input(origin.where(key), f"{count(sc.num_requests)} requests at {request_rate(sc.arrival.rate)} "
                                       f"arrive over {duration(span)}, past the run's time bound (max_time_s: "
                                       f"{duration(sc.max_time_s)}): raise the rate to at least "
                                       f"{request_rate(fits)}, raise max_time_s or ask for fewer requests", given)


def _check_deployment(dep: Deployment, origin: Origin) -> None:
    if dep.disaggregation is not None and "replicas" in dep.model_fields_set:
        raise bad_input(origin.where("deployment.replicas", "deployment.disaggregation"),
                        "a disaggregated deployment sizes its pools with disaggregation.prefill_replicas and "
                        "decode_replicas; remove replicas")
    given = dep.model_fields_set
    if "swap_space_gib" in given and dep.preemption != "swap":
        raise bad_input(origin.where("deployment.swap_space_gib", "deployment.preemption"),
                        f"swap_space_gib sizes the host memory that swap preemption uses, and preemption is "
                        f"'{dep.preemption}': set preemption: swap, or remove swap_space_gib", dep.swap_space_gib)
    dis = dep.disaggregation
    cps = [dep.cp] if dis is None else [dis.prefill_cp or dep.cp, dis.decode_cp or dep.cp]
    if dep.cp_kind == "ulysses" and "cp_kind" in given and max(cps) == 1:
        raise bad_input(origin.where("deployment.cp_kind", "deployment.cp"),
                        "cp_kind chooses how context parallelism splits a sequence, and cp is 1: set cp above 1, "
                        "or remove cp_kind", dep.cp_kind)
    if dep.ep_imbalance > dep.ep:
        raise bad_input(origin.where("deployment.ep_imbalance", "deployment.ep"),
                        f"ep_imbalance (the busiest rank's load over the mean) is at most ep ({dep.ep})",
                        dep.ep_imbalance)


def load_scenario(ref: str, check: bool = True) -> tuple[Scenario, Path]:
    """A scenario by path, or by the ID of a shipped one (workloads/scenarios/<id>.yaml); `check`:
    also the checks across keys (check_scenario; off when flags will replace some values first)."""
    from ..catalog import shipped_or_path

    path = shipped_or_path(ref, "workloads.scenarios", "SCENARIO")
    sc = load_model(path, Scenario)
    return (check_scenario(sc, Origin(str(path))) if check else sc), path
