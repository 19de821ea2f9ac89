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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PositiveFloat, PositiveInt, field_validator

from ..config_io import load_model
from ..errors import InfercastError
from ..quantity_types import STRICT


class DemandClass(BaseModel):
    model_config = STRICT
    name: str
    rate: PositiveFloat  # requests/s
    input_len: Any  # int or a length spec (serving.traffic.lengths); capacity uses its mean
    output_len: Any
    ttft_s: PositiveFloat
    tpot_s: PositiveFloat


class Stock(BaseModel):
    model_config = STRICT
    hw: str
    count: int | None = Field(None, ge=0)  # devices available; None: unlimited
    usd_per_hour: PositiveFloat | None = None  # per device; default: the spec's cloud price
    purchase_usd: PositiveFloat | None = None  # per device: owned hardware, amortised (see PlanSpec)
    power_w: PositiveFloat | None = None  # per device; default: the spec's TDP


class Layouts(BaseModel):
    model_config = STRICT
    tp: list[PositiveInt] = [1, 2, 4, 8]
    pp: list[PositiveInt] = [1, 2, 4, 8]
    cp: list[PositiveInt] = [1, 2, 4, 8]
    max_devices: PositiveInt = 64


class Check(BaseModel):
    model_config = STRICT
    requests: PositiveInt = 1500  # per pool simulated
    rounds: int = Field(4, ge=0)  # simulate-and-tighten rounds after the first solve (0: no simulation)
    seed: int = 0


class SolverOptions(BaseModel):
    model_config = STRICT
    time_limit_s: PositiveFloat = 10.0
    gap: float = Field(0.01, ge=0, lt=1)
    name: Literal["auto", "highs", "cbc"] = "auto"


class PlanSpec(BaseModel):
    model_config = STRICT
    name: str = "plan"
    model: str
    dtype: str = "bf16"
    kv_dtype: str | None = None
    classes: list[DemandClass] = Field(min_length=1)
    inventory: list[Stock] = Field(min_length=1)
    objective: Literal["usd", "power", "devices"] = "usd"
    disaggregation: bool = False
    layouts: Layouts = Layouts()
    headroom: float = Field(0.9, gt=0, le=1)
    attainment: float = Field(0.9, gt=0, le=1)
    check: Check = Check()
    solver: SolverOptions = SolverOptions()
    max_batch: PositiveInt = 256
    max_batched_tokens: PositiveInt = 8192
    amortization_years: PositiveFloat = 4.0  # owned hardware: purchase price spread over these years
    usd_per_kwh: float = Field(0.10, ge=0)  # owned hardware: electricity at the power draw (TDP)

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, v):
        names = [c.name for c in v]
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique (got {names})")
        return v


def mean_length(spec: Any, what: str) -> float:
    """The mean of a length spec: an int, {uniform: [lo, hi]}, {lognormal: {mean, sigma}} or
    {empirical: {values, weights}}."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise InfercastError(f"{what}: must be >= 1 (got {spec})")
        return float(spec)
    if isinstance(spec, dict) and len(spec) == 1:
        (kind, arg), = spec.items()
        if kind == "uniform":
            return (float(arg[0]) + float(arg[1])) / 2
        if kind == "lognormal":
            return float(arg["mean"])
        if kind == "empirical":
            vals = [float(x) for x in arg["values"]]
            w = [float(x) for x in arg.get("weights", [1.0] * len(vals))]
            return sum(a * b for a, b in zip(vals, w)) / sum(w)
    raise InfercastError(f"{what}: a length is an int or one of uniform, lognormal, empirical (got {spec!r})")


def load_plan(ref: str | Path) -> PlanSpec:
    """A plan by path, or by the ID of a shipped one (workloads/plans/<id>.yaml)."""
    from ..catalog import shipped_or_path

    p = shipped_or_path(str(ref), "workloads.plans", "PLAN")
    spec = load_model(p, PlanSpec)
    for k, c in enumerate(spec.classes):
        mean_length(c.input_len, f"{p}: classes[{k}].input_len")
        mean_length(c.output_len, f"{p}: classes[{k}].output_len")
    return spec
