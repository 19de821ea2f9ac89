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
    attainment: 0.9                        # share of requests within both SLOs the simulation must show
    check: {requests: 1500, rounds: 4, seed: 0}
    solver: {time_limit_s: 10, gap: 0.01, name: auto}

Every value is checked where it is read (the field types of serving.scenario and
quantity_types: counts under limits.py's ceilings, finite rates, times and prices, length specs
read whole), and every hardware type and the model are looked up when the plan is loaded, so an
unknown one is named with its key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, Field, StrictBool, field_validator

from ..config_io import load_model
from ..limits import MAX_BATCH, MAX_DEVICES, MAX_TOKENS
from ..precision import KV_DTYPES, WEIGHT_DTYPES
from ..quantity_types import STRICT, Label, Watts, finite_amount, whole_number
from ..serving.scenario import (Degree, Origin, PositiveSeconds, Rate, Reference, Requests, Seed, finite, nullable,
                                one_of)
from ..serving.traffic import LengthSpec, mean_of, parse_length

MAX_ROUNDS = 100  # simulate-and-tighten rounds: each is a MIP solve and a simulation per pool
MAX_SOLVE_S = 86_400.0  # a MIP time limit of a day is past any use


class DemandClass(BaseModel):
    model_config = STRICT
    name: Label
    rate: Rate  # requests/s
    input_len: LengthSpec  # an int or a length spec (serving.traffic); capacity uses its mean
    output_len: LengthSpec
    ttft_s: PositiveSeconds
    tpot_s: PositiveSeconds


class Stock(BaseModel):
    model_config = STRICT
    hw: Reference
    count: Annotated[Optional[int], nullable(whole_number(0, MAX_DEVICES, " (limits.MAX_DEVICES)"))] = None  # None: unlimited
    usd_per_hour: Annotated[Optional[float], nullable(finite_amount(1e6, "price in $/hour"))] = None  # per device;
    #                                                                            default: the spec's cloud price
    purchase_usd: Annotated[Optional[float], nullable(finite_amount(1e9, "price in $"))] = None  # per device: owned
    #                                                                            hardware, amortised (see PlanSpec)
    power_w: Optional[Watts] = None  # per device; default: the spec's TDP


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
    attainment: Annotated[float, finite(0, 1)] = 0.9  # share of requests within both SLOs the check must show
    check: Check = Check()
    solver: SolverOptions = SolverOptions()
    max_batch: Annotated[int, whole_number(1, MAX_BATCH, " (limits.MAX_BATCH)")] = 256
    max_batched_tokens: Annotated[int, whole_number(1, MAX_TOKENS, " (limits.MAX_TOKENS)")] = 8192
    amortization_years: Annotated[float, finite(0, 100)] = 4.0  # owned hardware: purchase price spread over these years
    usd_per_kwh: Annotated[float, finite(0, 1000, low_inclusive=True)] = 0.10  # owned hardware: electricity at TDP

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
    """The model and every hardware type exist; an unknown one names its key (or flag)."""
    from ..catalog import load_hardware, load_model_spec

    load_model_spec(spec.model, origin.where("model"))
    for k, stock in enumerate(spec.inventory):
        load_hardware(stock.hw, origin.where(f"inventory.{k}.hw"))
    return spec


def load_plan(ref: str | Path) -> PlanSpec:
    """A plan by path, or by the ID of a shipped one (workloads/plans/<id>.yaml)."""
    return load_plan_file(ref)[0]


def load_plan_file(ref: str | Path) -> tuple[PlanSpec, Path]:
    """(the plan, its file): by path, or by the ID of a shipped one."""
    from ..catalog import shipped_or_path

    p = shipped_or_path(str(ref), "workloads.plans", "PLAN")
    return check_references(load_model(p, PlanSpec), Origin(str(p))), p




def _listed_once(items: list, names: list[str], rule: str) -> list:
    """`items` when their `names` are all different, else the `rule` as a validation error."""
    if len(set(names)) != len(names):
        raise ValueError(f"{rule} (got {names})")
    return items
