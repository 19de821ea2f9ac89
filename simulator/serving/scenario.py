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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PositiveFloat, PositiveInt

from ..config_io import load_model
from ..errors import InfercastError
from ..quantity_types import STRICT, Bytes, BytesPerS


class Arrival(BaseModel):
    model_config = STRICT
    process: Literal["poisson", "gamma", "constant", "offline", "closed_loop"] = "poisson"
    rate: PositiveFloat | None = None  # requests/s (new sessions/s when classes have several turns)
    cv: PositiveFloat = 1.0  # gamma: coefficient of variation of the gaps
    users: PositiveInt | None = None  # closed loop: concurrent users
    think_time_s: float = Field(0.0, ge=0)  # pause between a reply and the user's next request (closed
    #                                         loop) or the session's next turn (multi-turn classes)


class RequestClass(BaseModel):
    model_config = STRICT
    name: str
    weight: PositiveFloat = 1.0
    input_len: Any  # int or {uniform|lognormal|empirical: ...} (traffic.lengths)
    output_len: Any
    prefix_len: int = Field(0, ge=0)  # tokens of a prompt prefix shared by the class (system prompt)
    turns: Any = 1  # turns per session (int or length spec); each resends the history plus a new message
    turn_input_len: Any = None  # new message tokens of each turn after the first (default: input_len)


class Trace(BaseModel):
    model_config = STRICT
    path: str
    format: Literal["generic", "azure"] = "generic"


class Slo(BaseModel):
    model_config = STRICT
    ttft_s: PositiveFloat = float("inf")
    tpot_s: PositiveFloat = float("inf")


class Disaggregation(BaseModel):
    """Separate prefill and decode pools (Splitwise, Patel et al. 2024; DistServe, Zhong et al. 2024):
    a prefill replica computes the prompt and first token, then hands the KV to a decode replica."""

    model_config = STRICT
    prefill_replicas: PositiveInt
    decode_replicas: PositiveInt
    prefill_tp: PositiveInt | None = None  # default: the deployment's tp (likewise pp, cp, hw)
    decode_tp: PositiveInt | None = None
    prefill_pp: PositiveInt | None = None
    decode_pp: PositiveInt | None = None
    prefill_cp: PositiveInt | None = None
    decode_cp: PositiveInt | None = None
    prefill_hw: str | None = None  # the pools may run on different hardware (Splitwise's mixed pools)
    decode_hw: str | None = None
    link_bandwidth: BytesPerS | None = None  # per device; default: scale-up if both pools fit one domain, else scale-out
    layerwise: bool = True  # send each layer's KV as soon as it is computed, under the rest of the prefill


class KvOffload(BaseModel):
    """Device KV extended by a slower tier: the KV beyond device memory lives there and is read back
    over the host link (PCIe or C2C) every step it is attended."""

    model_config = STRICT
    tier: Literal["host", "nvme"] = "host"
    capacity: Bytes = Field(gt=0)  # per device


class Deployment(BaseModel):
    model_config = STRICT
    model: str = "llama-3.1-8b"
    hw: str = "h100-sxm"
    tp: PositiveInt = 1
    pp: PositiveInt = 1
    cp: PositiveInt = 1  # context parallel (phases.Layout)
    cp_kind: Literal["ring", "ulysses"] = "ring"
    ep: PositiveInt = 1  # expert parallel inside the TP group
    ep_imbalance: float = Field(1.0, ge=1.0)
    replicas: PositiveInt = 1
    dtype: str = "bf16"
    kv_dtype: str | None = None
    max_batch: PositiveInt = 256
    max_batched_tokens: PositiveInt = 8192
    block_size: PositiveInt = 16
    router: str = "least_outstanding"  # round_robin | least_outstanding | prefix_affinity
    prefix_caching: bool = True  # share cached prompt prefixes (vLLM automatic prefix caching)
    preemption: Literal["recompute", "swap"] = "recompute"  # what a preempted request's KV does
    swap_space_gib: float = Field(4.0, ge=0)  # host memory per device for swapped KV (vLLM's default)
    disaggregation: Disaggregation | None = None  # replaces `replicas` with prefill and decode pools
    kv_offload: KvOffload | None = None


class Scenario(BaseModel):
    model_config = STRICT
    name: str
    description: str = ""
    num_requests: PositiveInt = 1000
    seed: int = 0
    arrival: Arrival = Arrival()
    classes: list[RequestClass] = Field(default_factory=list)
    trace: Trace | None = None
    slo: Slo = Slo()
    deployment: Deployment = Deployment()
    max_time_s: PositiveFloat = 1e7


def load_scenario(ref: str) -> tuple[Scenario, Path]:
    """A scenario by path, or by the ID of a shipped one (workloads/scenarios/<id>.yaml)."""
    from ..catalog import shipped_or_path

    path = shipped_or_path(ref, "workloads.scenarios", "SCENARIO")
    sc = load_model(path, Scenario)
    if sc.trace is None and not sc.classes:
        raise InfercastError(f"{path}: a scenario needs `classes` (request lengths) or a `trace`")
    if sc.arrival.process in ("poisson", "gamma", "constant") and sc.trace is None and sc.arrival.rate is None:
        raise InfercastError(f"{path}: key 'arrival.rate' is needed for '{sc.arrival.process}' arrivals")
    if sc.arrival.process == "closed_loop" and sc.arrival.users is None:
        raise InfercastError(f"{path}: key 'arrival.users' is needed for closed-loop arrivals")
    return sc, path
