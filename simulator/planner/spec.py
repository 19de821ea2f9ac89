"""Plan files (`infercast plan PLAN.yaml`): the demand, the hardware on offer and the rules.

    name: rag-and-chat
    model: llama-3.1-70b
    dtype: bf16
    classes:                               # each class gets its own pools
      - {name: chat, rate: 20, input_len: 1024, output_len: 256, ttft_s: 1.0, tpot_s: 0.05}
      - {name: rag-128k, rate: 0.2, input_len: 131072, output_len: 512, ttft_s: 8, tpot_s: 0.1}
    inventory:                             # count: null or absent = unlimited; prices from hwspecs
      - {hw: h100-sxm, count: 64}
      - {hw: h200-sxm, count: 32, usd_per_hour: 4.0}   # per device, overrides the spec's price
      - {hw: mi300x, count: 16, purchase_usd: 15000}   # owned: amortised + electricity per hour
    objective: usd                         # usd | power | devices
    disaggregation: false                  # allow separate prefill and decode pools
    layouts: {tp: [1, 2, 4, 8], pp: [1, 2, 4, 8], cp: [1, 2, 4, 8], max_devices: 64}
    headroom: 0.9                          # highest utilisation the analytical capacity plans for
    attainment: 0.9                        # share of requests within both SLOs the simulation must show (< 1)
    check: {requests: 1500, rounds: 4, seed: 0}
    solver: {time_limit_s: 10, gap: 0.01, name: auto}

Every value is checked where it is read (the field types of serving.scenario and
quantity_types: counts under limits.py's ceilings, finite rates, times and prices, length specs
read whole; attainment below 1, since a queue's wait has no finite 100th percentile; at least 16
max_batched_tokens, one KV block), and every hardware type and the model are looked up when the
plan is loaded, so an unknown one is named with its key, as is a layout list none of whose degrees
is valid for the model and the hardware (planner.layout_check), and a check that would simulate
more than MAX_CHECK_STEPS engine steps per pool. An inventory power_w is at least MIN_POWER_W (5 W),
a purchase_usd at least MIN_PURCHASE_USD ($1), amortization_years at least MIN_AMORTIZATION_YEARS
(0.25); SLOs at least 1 us (serving.scenario.MIN_SLO_S);
objective usd needs a price for every hardware type and objective power a power (power_w or the
hwspec's TDP), named by their inventory key (check_price_and_power).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, BeforeValidator, Field, StrictBool, field_validator

from ..config_io import load_model
from ..errors import InfercastError, bad_input
from ..human import count
from ..limits import MAX_BATCH, MAX_DEVICES, MAX_TOKENS
from ..precision import KV_DTYPES, WEIGHT_DTYPES, resolve_precision
from ..quantity_types import STRICT, Label, Watts, finite_amount, whole_number
from ..serving.scenario import (Degree, Origin, Rate, Reference, Requests, Seed, SloSeconds, finite, nullable,
                                one_of)
from ..serving.traffic import LengthSpec, mean_of, parse_length

MAX_ROUNDS = 100  # simulate-and-tighten rounds: each is a MIP solve and a simulation per pool
MAX_SOLVE_S = 86_400.0  # a MIP time limit of a day is past any use
MAX_CHECK_STEPS = 2_000_000  # engine steps of one pool's simulated check (the simulator runs ~30,000 a second)
MIN_BATCHED_TOKENS = 16  # one KV block (the planner's block size): the smallest prompt chunk a step takes
MIN_POWER_W = 5.0  # an inventory power_w below this is no accelerator's draw (a phone SoC's is above it)
MIN_PURCHASE_USD = 1.0  # per device: an owned accelerator for under a dollar is a typo (cents for thousands)
MIN_AMORTIZATION_YEARS = 0.25  # a quarter: spreading a purchase over less turns an owned device into a rental
#                                 at thousands of times its price per hour


def _refusing(validator: BeforeValidator, allowed: str, also=lambda value: True) -> BeforeValidator:
    """`validator`, then `also(value)`; any refusal (or a number beyond float range) says `allowed`."""

    def check(value: object) -> object:
        try:
            checked = validator.func(value)
        except (ValueError, OverflowError):
            raise ValueError(allowed) from None
        if not also(checked):
            raise ValueError(allowed)
        return checked

    return BeforeValidator(check)


# every request within its SLO is not a quantile a queue has: M/D/1's wait at the 100th percentile is unbounded
Attainment = Annotated[float, _refusing(finite(0, 1), "must be a share > 0 and < 1: a queue's waiting time has no "
                                        "finite 100th percentile; use 0.99 or 0.999", also=lambda x: x < 1)]
BatchedTokens = Annotated[int, _refusing(
    whole_number(MIN_BATCHED_TOKENS, MAX_TOKENS),
    f"must be a whole number from {MIN_BATCHED_TOKENS} (one KV block: engines schedule no smaller prompt chunk) "
    f"to {MAX_TOKENS:,} (limits.MAX_TOKENS)")]


class DemandClass(BaseModel):
    model_config = STRICT
    name: Label
    rate: Rate  # requests/s
    input_len: LengthSpec  # an int or a length spec (serving.traffic); capacity uses its mean
    output_len: LengthSpec
    ttft_s: SloSeconds  # at least serving.scenario.MIN_SLO_S (1 us)
    tpot_s: SloSeconds


class Stock(BaseModel):
    model_config = STRICT
    hw: Reference
    count: Annotated[Optional[int], nullable(whole_number(0, MAX_DEVICES, " (limits.MAX_DEVICES)"))] = None  # None: unlimited
    usd_per_hour: Annotated[Optional[float], nullable(finite_amount(1e6, "price in $/hour"))] = None  # per device;
    #                                                                            default: the spec's cloud price
    purchase_usd: Annotated[Optional[float], nullable(finite_amount(1e9, "price in $"))] = None  # per device: owned
    #                                                                            hardware, amortised (see PlanSpec)
    power_w: Optional[Watts] = None  # per device; default: the spec's TDP

    @field_validator("power_w")
    @classmethod
    def _power_floor(cls, v):
        if v is not None and v < MIN_POWER_W:
            raise ValueError(f"must be at least {MIN_POWER_W:g} W per device (planner.spec.MIN_POWER_W: no "
                             "accelerator draws less)")
        return v

    @field_validator("purchase_usd")
    @classmethod
    def _purchase_floor(cls, v):
        if v is not None and v < MIN_PURCHASE_USD:
            raise ValueError(f"must be at least ${MIN_PURCHASE_USD:,.0f} per device (planner.spec.MIN_PURCHASE_USD: "
                             "no accelerator is bought for less; the price is whole dollars per device)")
        return v


class Layouts(BaseModel):
    model_config = STRICT
    tp: list[Degree] = Field([1, 2, 4, 8], min_length=1)
    pp: list[Degree] = Field([1, 2, 4, 8], min_length=1)
    cp: list[Degree] = Field([1, 2, 4, 8], min_length=1)
    max_devices: Annotated[int, whole_number(1, MAX_DEVICES, " (limits.MAX_DEVICES)")] = 64


class Check(BaseModel):
    model_config = STRICT
    requests: Requests = 1500  # per pool simulated
    rounds: Annotated[int, whole_number(0, MAX_ROUNDS)] = 4  # simulate-and-tighten rounds after the first solve
    #                                                           (0: no simulation)
    seed: Seed = 0


class SolverOptions(BaseModel):
    model_config = STRICT
    time_limit_s: Annotated[float, finite(0, MAX_SOLVE_S)] = 10.0
    gap: Annotated[float, finite(0, 1, low_inclusive=True), Field(lt=1)] = 0.01
    name: Literal["auto", "highs", "cbc"] = "auto"


class PlanSpec(BaseModel):
    model_config = STRICT
    name: Label = "plan"
    model: Reference
    dtype: Annotated[str, one_of(WEIGHT_DTYPES)] = "bf16"
    kv_dtype: Annotated[Optional[str], nullable(one_of(KV_DTYPES))] = None
    classes: list[DemandClass] = Field(min_length=1)
    inventory: list[Stock] = Field(min_length=1)
    objective: Literal["usd", "power", "devices"] = "usd"
    disaggregation: StrictBool = False
    layouts: Layouts = Layouts()
    headroom: Annotated[float, finite(0, 1)] = 0.9  # highest utilisation the analytical capacity plans for
    attainment: Attainment = 0.9  # share of requests within both SLOs the check must show (< 1)
    check: Check = Check()
    solver: SolverOptions = SolverOptions()
    max_batch: Annotated[int, whole_number(1, MAX_BATCH, " (limits.MAX_BATCH)")] = 256
    max_batched_tokens: BatchedTokens = 8192
    amortization_years: Annotated[float, finite(0, 100)] = 4.0  # owned hardware: purchase price spread over these years
    usd_per_kwh: Annotated[float, finite(0, 1000, low_inclusive=True)] = 0.10  # owned hardware: electricity at TDP

    @field_validator("amortization_years")
    @classmethod
    def _amortization_floor(cls, v):
        if v < MIN_AMORTIZATION_YEARS:
            raise ValueError(f"must be at least {MIN_AMORTIZATION_YEARS:g} years (planner.spec.MIN_AMORTIZATION_YEARS:"
                             " owned accelerators serve for years; a shorter spread makes an owned device cost more "
                             "per hour than renting it)")
        return v

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, v):
        return _listed_once(v, [c.name for c in v], "class names must be unique")

    @field_validator("inventory")
    @classmethod
    def _unique_hardware(cls, v):
        return _listed_once(v, [s.hw for s in v], "each hardware type is listed once")


def mean_length(spec: Any, what: str) -> float:
    """The mean of a length spec: an int, {uniform: [lo, hi]}, {lognormal: {mean, sigma}} or
    {empirical: {values, weights}} (serving.traffic), read with `what` naming it."""
    return mean_of(parse_length(spec, what))


def check_references(spec: PlanSpec, origin: Origin) -> PlanSpec:
    """The model and every hardware type exist, an unknown one named with its key (or flag); and
    some layout on offer is valid on some of them (planner.layout_check)."""
    from ..catalog import load_hardware, load_model_spec
    from .layout_check import check_layouts

    load_model_spec(spec.model, origin.where("model"))
    for k, stock in enumerate(spec.inventory):
        check_price_and_power(spec, k, load_hardware(stock.hw, origin.where(f"inventory.{k}.hw")), origin)
    check_layouts(spec, origin)
    check_simulation_size(spec, origin)
    return spec


def check_price_and_power(spec: PlanSpec, k: int, hw, origin: Origin) -> None:
    """inventory.k has what the plan needs of it: objective usd a price (usd_per_hour, purchase_usd or
    the hwspec's cloud price); objective power, or a purchase_usd (electricity at TDP), a power
    (power_w or the hwspec's power.tdp). Objective devices needs neither: the plan's $ and W are
    then null where a device has none (planner.output)."""
    stock = spec.inventory[k]
    try:
        resolve_precision(hw, spec.dtype, spec.kv_dtype)
    except InfercastError:  # its text names --dtype and --compute-dtype, flags a plan does not have
        raise bad_input(origin.where("dtype", f"inventory.{k}.hw"),
                        f"{hw.id} (inventory.{k}) has no rate for {spec.dtype} weights' GEMMs nor for its 16-bit "
                        f"dtype (has: {', '.join(hw.engine.peak)}): give a dtype it has, or drop inventory.{k}",
                        spec.dtype) from None
    owned = stock.usd_per_hour is None and stock.purchase_usd is not None
    if stock.power_w is None and hw.power is None and (spec.objective == "power" or owned):
        why = "objective power ranks plans by watts" if spec.objective == "power" else \
            "purchase_usd adds electricity at TDP"
        raise bad_input(origin.where(f"inventory.{k}.power_w", "objective"),
                        f"{why}, and {stock.hw}'s hwspec has no power.tdp: give inventory.{k}.power_w (watts per "
                        "device)" + ("" if owned else ", or use objective usd or devices"), f"hw: {stock.hw}")
    priced = stock.usd_per_hour is not None or stock.purchase_usd is not None or \
        (hw.price is not None and hw.price.cloud_usd_per_hour is not None)
    if spec.objective == "usd" and not priced:
        raise bad_input(origin.where(f"inventory.{k}", "objective"),
                        f"objective usd ranks plans by price, and {stock.hw}'s hwspec has no cloud price: give "
                        f"inventory.{k}.usd_per_hour ($ per device-hour) or inventory.{k}.purchase_usd, or use "
                        "objective devices or power", f"hw: {stock.hw}")


def check_simulation_size(spec: PlanSpec, origin: Origin) -> None:
    """A check (check.rounds > 0) simulates check.requests requests per pool; its prompts alone take
    at least requests x ceil(mean prompt / max_batched_tokens) steps, refused above MAX_CHECK_STEPS."""
    if spec.check.rounds == 0:
        return
    for k, c in enumerate(spec.classes):
        prompt = round(mean_length(c.input_len, f"classes[{k}].input_len"))
        chunks = -(-prompt // spec.max_batched_tokens)
        steps = spec.check.requests * chunks
        if steps > MAX_CHECK_STEPS:
            causes = {"check.requests": spec.check.requests, "max_batched_tokens": spec.max_batched_tokens,
                      f"classes.{k}.input_len": prompt, "check.rounds": spec.check.rounds}
            key = next((key for key in causes if origin.flag_for(key)), "check.requests")  # a flag's, else the file's
            raise bad_input(origin.where(key),
                            f"class '{c.name}': the check simulates at least {count(steps)} steps per pool (requests x "
                            f"{count(chunks)} prompt chunks of {count(spec.max_batched_tokens)} tokens), more than "
                            f"{count(MAX_CHECK_STEPS)} (about a minute): lower check.requests, raise "
                            "max_batched_tokens, or set check.rounds: 0", causes[key])


def load_plan(ref: str | Path) -> PlanSpec:
    """A plan by path, or by the ID of a shipped one (workloads/plans/<id>.yaml)."""
    return load_plan_file(ref)[0]


def load_plan_file(ref: str | Path, references: bool = True) -> tuple[PlanSpec, Path]:
    """(the plan, its file): by path, or by the ID of a shipped one; `references` False leaves
    check_references to the caller (flags may yet replace the values it checks)."""
    from ..catalog import shipped_or_path

    p = shipped_or_path(str(ref), "workloads.plans", "PLAN")
    spec = load_model(p, PlanSpec)
    return (check_references(spec, Origin(str(p))) if references else spec), p


def _listed_once(items: list, names: list[str], rule: str) -> list:
    """`items` when their `names` are all different, else the `rule` as a validation error."""
    if len(set(names)) != len(names):
        raise ValueError(f"{rule} (got {names})")
    return items
