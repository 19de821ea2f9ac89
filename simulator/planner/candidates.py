"""Candidates for the planner: every hardware type on offer x every layout (TP x PP x CP up to the
device limit) x role, each scored per request class by planner.capacity.

A layout is kept when the model splits over its TP degree (phases.check_layout), TP stays inside
one scale-up domain (engines do not run tensor parallelism over NICs; cards without a scale-up
fabric run it over PCIe inside a server of fit_advice.PCIE_SERVER of them), the weights and one step's
activations leave room for KV, and it uses at most `max_devices` devices. Context parallelism is
offered to roles that prefill, and to a decode-only pool only where the same TP x PP without it
cannot hold one request of the longest class (CP shards the KV; otherwise it gains nothing here)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import SimpleNamespace

from ..catalog import load_model_spec
from ..collectives import has_links
from ..errors import InfercastError
from ..fit_advice import tensor_parallel_limit
from ..phases import Layout, check_layout
from ..precision import resolve_precision
from ..serving.pools import kv_blocks
from ..serving.step_model import StepModel
from ..step import device
from .capacity import Capacity, ClassShape, capacity
from .mip import Candidate
from .spec import PlanSpec, Stock, mean_length

ROLES_COLOCATED = ("both",)
ROLES_DISAGGREGATED = ("both", "prefill", "decode")


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    layout: Layout
    detail: dict[str, Capacity]  # class -> capacity with its batch, predicted TTFT/TPOT or why not


def class_shapes(spec: PlanSpec) -> list[ClassShape]:
    return [ClassShape(c.name, round(mean_length(c.input_len, f"classes[{k}].input_len")),
                       round(mean_length(c.output_len, f"classes[{k}].output_len")), c.ttft_s, c.tpot_s)
            for k, c in enumerate(spec.classes)]


def layouts(spec: PlanSpec, model, hw_spec) -> list[Layout]:
    out, lim = [], spec.layouts
    dom = tensor_parallel_limit(hw_spec)
    for tp, pp, cp in itertools.product(sorted(set(lim.tp)), sorted(set(lim.pp)), sorted(set(lim.cp))):
        lay = Layout(tp, pp, cp)
        if lay.devices > lim.max_devices or tp > dom or (lay.devices > 1 and not has_links(hw_spec)):
            continue  # a device whose spec has no link runs alone (collectives.check_links)
        try:
            check_layout(model, lay)
        except InfercastError:
            continue
        out.append(lay)
    return out


def _prices(spec: PlanSpec, stock: Stock, hw_spec) -> tuple[float, float]:
    """($/hour, watts) per device: the stock's hourly price; else owned hardware, its purchase price
    over the amortisation years plus electricity at TDP; else the spec's cloud price. A price or a
    power the device lacks counts 0 here: spec.check_price_and_power refused it where the objective
    (or purchase_usd) needs it, and the plan's total is then reported as null (unknown_costs)."""
    power = stock.power_w or (hw_spec.power.tdp if hw_spec.power else 0.0)
    usd = stock.usd_per_hour
    if usd is None and stock.purchase_usd is not None:
        usd = stock.purchase_usd / (spec.amortization_years * 8760.0) + power / 1000.0 * spec.usd_per_kwh
    if usd is None and hw_spec.price:
        usd = hw_spec.price.cloud_usd_per_hour
    return float(usd or 0.0), float(power)


def unknown_costs(spec: PlanSpec) -> dict[str, list[str]]:
    """"usd" and "power": the inventory's hardware types without a price (resp. a power) of their own
    or in their hwspec: a plan using one has no known total of that kind."""
    out: dict[str, list[str]] = {"usd": [], "power": []}
    for stock in spec.inventory:
        hw = device(stock.hw).spec
        if stock.usd_per_hour is None and stock.purchase_usd is None and not (hw.price and hw.price.cloud_usd_per_hour):
            out["usd"].append(hw.id)
        if stock.power_w is None and not hw.power:
            out["power"].append(hw.id)
    return out


def score(spec: PlanSpec) -> list[Scored]:
    """Every candidate with its capacity per class (zero where it cannot serve the class)."""
    model, shapes = load_model_spec(spec.model, "model"), class_shapes(spec)
    roles = ROLES_DISAGGREGATED if spec.disaggregation else ROLES_COLOCATED
    kv_cfg = SimpleNamespace(max_batched_tokens=spec.max_batched_tokens, max_batch=spec.max_batch, block_size=16)
    longest = max(c.input_len + c.output_len for c in shapes)
    out = []
    for stock in spec.inventory:
        dev = device(stock.hw)
        usd, power = _prices(spec, stock, dev.spec)
        prec = resolve_precision(dev.spec, spec.dtype, spec.kv_dtype)
        room: dict[tuple[int, int], int] = {}  # (tp, pp) -> KV tokens without CP
        for lay in layouts(spec, model, dev.spec):
            try:
                kv_tokens = kv_blocks(kv_cfg, model, dev, lay, prec) * 16
            except InfercastError:
                continue  # the weights leave no room for KV
            if lay.cp == 1:
                room[(lay.tp, lay.pp)] = kv_tokens
            sm = StepModel(model, dev, lay, prec, tables=False)
            for role in roles:
                if role == "decode" and lay.cp > 1 and room.get((lay.tp, lay.pp), 0) >= longest:
                    continue
                detail = {c.name: capacity(sm, kv_tokens, c, role, spec.headroom, spec.max_batch,
                                           spec.max_batched_tokens, spec.attainment) for c in shapes}
                cand = Candidate(f"{dev.spec.id} {lay.name()} {role}", dev.spec.id, lay.devices, usd * lay.devices,
                                 power * lay.devices, role, {k: v.rate_rps for k, v in detail.items()})
                out.append(Scored(cand, lay, detail))
    return out
