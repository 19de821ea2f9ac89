"""Closed-form what-if: one model, one hardware configuration, a static batch of equal requests.

TTFT is the prefill step of the whole batch (it emits the first token); TPOT is the mean decode
step over the remaining output_len - 1 tokens (vLLM's definition: the first token excluded);
E2E = TTFT + (output_len - 1) x TPOT; throughput counts output tokens of the batch per second.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .about import infercast_version
from .calibration import Calibration
from .catalog import load_model_spec
from .checks import finite_number, whole_number
from .collectives import check_links
from .cost import cost_line
from .decode_schedule import decode_contexts
from .errors import InfercastError, bad_input
from .fit_advice import advise
from .human import count, size
from .hwspec import DTYPES
from .limits import MAX_BATCH, MAX_DEGREE, MAX_DEVICES, MAX_TOKENS
from .memory import MemoryPlan, memory_plan
from .phases import Decode, Layout, Prefill, check_layout
from .precision import KV_DTYPES, WEIGHT_DTYPES, resolve_precision
from .roofline import Device
from .step import StepTime, device, step_time

DEFAULT = dict(model="llama-3.1-8b", hw="h200-sxm", input_len=32768, output_len=512)


@dataclass
class WhatIfResult:
    model: str
    hw: str
    tp: int
    pp: int
    devices: int
    batch: int
    input_len: int
    output_len: int
    dtype: str
    kv_dtype: str
    compute_dtype: str
    calibrated: bool
    fits: bool
    memory_capacity_bytes: int  # usable, per device, whole bytes
    weights_bytes: float  # per device
    kv_cache_bytes: float  # per device, the batch at full context
    activation_bytes: float  # per device, peak transient of the prefill step
    max_batch: int  # requests at this context that fit beside weights and activations
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    throughput_tok_s: float | None = None  # output tokens / s, whole batch
    prefill_tok_s: float | None = None
    bound_prefill: str | None = None
    bound_decode: str | None = None
    usd_per_hour: float | None = None
    usd_per_mtok_input: float | None = None
    usd_per_mtok_output: float | None = None
    usd_per_mtok_blended: float | None = None
    price_is_estimate: bool = False
    message: str = ""
    cp: int = 1
    ep: int = 1
    notes: list[str] = field(default_factory=list)
    breakdown: list[dict] = field(default_factory=list, repr=False)
    ep_imbalance: float = 1.0
    cp_kind: str = "ring"
    advice: dict | None = None  # when it does not fit: the smallest change that does (fit_advice.FitAdvice)

    def to_dict(self, with_breakdown: bool = False) -> dict:
        """Every field, plus `config`: what produced the result (model, hardware, layout, batch,
        lengths, dtypes, calibration status, infercast's version)."""
        d = asdict(self)
        if not with_breakdown:
            d.pop("breakdown")
        d["config"] = self.config()
        return d

    def config(self) -> dict:
        layout = Layout(self.tp, self.pp, self.cp, self.ep, self.ep_imbalance, self.cp_kind)
        return {
            "model": self.model, "hw": self.hw,
            "layout": {"tp": self.tp, "pp": self.pp, "cp": self.cp, "ep": self.ep, "ep_imbalance": self.ep_imbalance,
                       "cp_kind": self.cp_kind, "devices": self.devices, "name": layout.name()},
            "batch": self.batch, "input_len": self.input_len, "output_len": self.output_len,
            "dtype": self.dtype, "kv_dtype": self.kv_dtype, "compute_dtype": self.compute_dtype,
            "calibrated": self.calibrated,
            "rates": "calibrated profile" if self.calibrated else "default efficiencies",
            "infercast_version": infercast_version(),
        }

    def ops_frame(self):
        """The per-op breakdown as a pandas DataFrame (one row per op and phase)."""
        import pandas as pd

        return pd.DataFrame(self.breakdown)


def _choice(value: object, flag: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise bad_input(flag, f"must be one of {', '.join(allowed)}", value)
    return value


def check_flags(tp: int, pp: int, cp: int, ep: int, ep_imbalance: float, cp_kind: str, batch: int,
                input_len: int, output_len: int, dtype: str, kv_dtype: str | None,
                compute_dtype: str | None) -> tuple[Layout, int, int, int]:
    """The what-if's flags checked once, each error one line naming its flag: parallel degrees
    under MAX_DEGREE and the layout under MAX_DEVICES, batch under MAX_BATCH, lengths under
    MAX_TOKENS, the EP imbalance finite in [1, ep], dtype names from the known sets."""
    degree = " (the ceiling on any parallel degree)"
    tp, pp, cp, ep = (whole_number(v, f"--{k}", 1, MAX_DEGREE, degree)
                      for k, v in (("tp", tp), ("pp", pp), ("cp", cp), ("ep", ep)))
    if tp * pp * cp > MAX_DEVICES:
        raise InfercastError(f"--tp/--pp/--cp: a layout of {count(tp * pp * cp)} devices (tp x pp x cp) is over "
                             f"the ceiling of {count(MAX_DEVICES)}")
    batch = whole_number(batch, "--batch", 1, MAX_BATCH, " (the ceiling on requests in one batch)")
    tokens = " (the ceiling on tokens in one request)"
    input_len = whole_number(input_len, "--input-len", 1, MAX_TOKENS, tokens)
    output_len = whole_number(output_len, "--output-len", 1, MAX_TOKENS, tokens)
    if cp > input_len:
        raise bad_input("--cp", f"must be <= --input-len ({count(input_len)}): context parallelism gives each rank "
                                "at least one prompt token", cp)
    imbalance = finite_number(ep_imbalance, "--ep-imbalance", low=1.0, low_inclusive=True)
    if imbalance > ep:
        raise bad_input("--ep-imbalance", f"must be <= --ep ({ep}): the busiest rank gets at most all the tokens",
                        ep_imbalance)
    _choice(cp_kind, "--cp-kind", ("ring", "ulysses"))
    _choice(dtype, "--dtype", WEIGHT_DTYPES)
    if kv_dtype is not None:
        _choice(kv_dtype, "--kv-dtype", KV_DTYPES)
    if compute_dtype is not None:
        _choice(compute_dtype, "--compute-dtype", DTYPES)
    return Layout(tp, pp, cp, ep, imbalance, cp_kind), batch, input_len, output_len


def whatif(model: str = DEFAULT["model"], hw: str = DEFAULT["hw"], tp: int = 1, pp: int = 1,
           batch: int = 1, input_len: int = DEFAULT["input_len"], output_len: int = DEFAULT["output_len"],
           dtype: str = "bf16", kv_dtype: str | None = None, compute_dtype: str | None = None,
           check_memory: bool = True, calibration: Calibration | None = None, cp: int = 1, ep: int = 1,
           ep_imbalance: float = 1.0, cp_kind: str = "ring") -> WhatIfResult:
    """Predict TTFT, TPOT, E2E, throughput, memory and cost of `batch` requests of `input_len`
    prompt tokens and `output_len` generated tokens. IDs or paths for `model` and `hw`.
    With check_memory=False the times are computed even when the memory plan does not fit;
    `calibration` replaces the device's profile (e.g. to ask what ideal efficiencies would give);
    cp, ep, ep_imbalance and cp_kind as in phases.Layout. A configuration that does not fit gets
    `advice`: the smallest change that does (fit_advice)."""
    layout, batch, input_len, output_len = check_flags(tp, pp, cp, ep, ep_imbalance, cp_kind, batch, input_len,
                                                       output_len, dtype, kv_dtype, compute_dtype)
    m = load_model_spec(model)
    dev = device(hw) if calibration is None else Device(device(hw).spec, calibration)
    check_layout(m, layout)
    check_links(dev.spec, layout)
    prec = resolve_precision(dev.spec, dtype, kv_dtype, compute_dtype)
    plan = memory_plan(m, dev, layout, prec, batch, input_len + output_len, batch * input_len)
    res = WhatIfResult(
        m.id, dev.spec.id, layout.tp, layout.pp, layout.devices, batch, input_len, output_len, prec.weights, prec.kv,
        prec.compute, dev.calibrated, plan.fits, math.floor(plan.capacity_bytes), plan.weights_bytes,
        plan.kv_cache_bytes, plan.activation_bytes, plan.max_batch, cp=layout.cp, ep=layout.ep,
        ep_imbalance=layout.ep_imbalance, cp_kind=layout.cp_kind,
    )
    if m.max_context and input_len + output_len > m.max_context:
        res.notes.append(f"context {count(input_len + output_len)} exceeds {m.id}'s trained maximum of "
                         f"{count(m.max_context)}")
    if m.declared_from and m.declared_dtype != prec.weights:
        res.notes.append(declared_note(m, prec.weights))
    if not plan.fits:
        fix = advise(m, dev, layout, prec, batch, input_len, output_len)
        res.message, res.advice = f"{does_not_fit(plan)}; {fix.text()}", fix.to_dict()
        if check_memory:
            return res
    _fill_times(res, m, dev, layout, prec)
    return res


def declared_note(m, weights: str) -> str:
    """The config.json declares how its weights are stored, and --dtype costs them otherwise."""
    if m.declared_dtype is None:
        return (f"{m.id}'s config.json declares {m.declared_from}, which infercast does not map to a dtype; "
                f"costed as --dtype {weights}: give the --dtype its weights are stored in")
    return (f"{m.id}'s config.json declares {m.declared_dtype} weights ({m.declared_from}); costed as --dtype "
            f"{weights}: give --dtype {m.declared_dtype} to cost them as stored")


def does_not_fit(plan: MemoryPlan) -> str:
    """What a configuration needs per device against what it has, every number human-formatted."""
    return (f"does not fit: needs {size(plan.needed_bytes)} per device (weights {size(plan.weights_bytes)}, "
            f"KV {size(plan.kv_cache_bytes)}, activations {size(plan.activation_bytes)}), "
            f"has {size(plan.capacity_bytes)} usable")


def _fill_times(res: WhatIfResult, m, dev, layout, prec) -> None:
    B, I, O = res.batch, res.input_len, res.output_len
    pre: StepTime = step_time(m, dev, Prefill.of(B, I), layout, prec, pipeline_fill=True)
    ttft = float(pre.total_s)
    ctx, weights = decode_contexts(I, O)
    decode_total, bound_decode, rows = 0.0, None, []
    if len(ctx):
        dec = step_time(m, dev, Decode(np.broadcast_to(ctx[:, None], (len(ctx), B))), layout, prec)
        decode_total = float(np.dot(dec.total_s, weights))
        bound_decode = dec.bound(dev)
        rows = dec.rows(dev, "decode")
    res.ttft_s, res.tpot_s = ttft, decode_total / (O - 1) if O > 1 else 0.0
    res.e2e_s = ttft + decode_total
    res.throughput_tok_s = B * O / res.e2e_s
    res.prefill_tok_s = B * I / ttft
    res.bound_prefill, res.bound_decode = pre.bound(dev), bound_decode
    res.breakdown = pre.rows(dev, "prefill") + rows
    c = cost_line(dev.spec, layout.devices, ttft, decode_total, B * I, B * O)
    res.usd_per_hour, res.usd_per_mtok_input = c.usd_per_hour, c.usd_per_mtok_input
    res.usd_per_mtok_output, res.usd_per_mtok_blended = c.usd_per_mtok_output, c.usd_per_mtok_blended
    res.price_is_estimate = c.price_is_estimate
    if O == 1 and c.usd_per_hour is not None:
        res.notes.append("one output token: it comes out of the prefill step, priced per input token; with no "
                         "decode step, $/Mtoken output is not given (null)")
