"""Closed-form what-if: one model, one hardware configuration, a static batch of equal requests.

TTFT is the prefill step of the whole batch (it emits the first token); TPOT is the mean decode
step over the remaining output_len - 1 tokens (vLLM's definition: the first token excluded);
E2E = TTFT + (output_len - 1) x TPOT; throughput counts output tokens of the batch per second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .calibration import Calibration
from .catalog import load_model_spec
from .cost import cost_line
from .decode_schedule import decode_contexts
from .errors import InfercastError
from .memory import MemoryPlan, memory_plan
from .phases import Decode, Layout, Prefill, check_layout
from .precision import resolve_precision
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
    memory_capacity_bytes: float  # usable, per device
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

    def to_dict(self, with_breakdown: bool = False) -> dict:
        d = asdict(self)
        if not with_breakdown:
            d.pop("breakdown")
        return d

    def ops_frame(self):
        """The per-op breakdown as a pandas DataFrame (one row per op and phase)."""
        import pandas as pd

        return pd.DataFrame(self.breakdown)


def _positive(value: int, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InfercastError(f"{flag}: must be a whole number >= 1 (got {value!r})")
    return int(value)


def whatif(model: str = DEFAULT["model"], hw: str = DEFAULT["hw"], tp: int = 1, pp: int = 1,
           batch: int = 1, input_len: int = DEFAULT["input_len"], output_len: int = DEFAULT["output_len"],
           dtype: str = "bf16", kv_dtype: str | None = None, compute_dtype: str | None = None,
           check_memory: bool = True, calibration: Calibration | None = None, cp: int = 1, ep: int = 1,
           ep_imbalance: float = 1.0, cp_kind: str = "ring") -> WhatIfResult:
    """Predict TTFT, TPOT, E2E, throughput, memory and cost of `batch` requests of `input_len`
    prompt tokens and `output_len` generated tokens. IDs or paths for `model` and `hw`.
    With check_memory=False the times are computed even when the memory plan does not fit;
    `calibration` replaces the device's profile (e.g. to ask what ideal efficiencies would give);
    cp, ep, ep_imbalance and cp_kind as in phases.Layout."""
    for v, flag in ((tp, "--tp"), (pp, "--pp"), (cp, "--cp"), (ep, "--ep"), (batch, "--batch"), (input_len, "--input-len"), (output_len, "--output-len")):
        _positive(v, flag)
    m = load_model_spec(model)
    dev = device(hw) if calibration is None else Device(device(hw).spec, calibration)
    layout = Layout(tp, pp, cp, ep, float(ep_imbalance), cp_kind)
    check_layout(m, layout)
    prec = resolve_precision(dev.spec, dtype, kv_dtype, compute_dtype)
    plan = memory_plan(m, dev, layout, prec, batch, input_len + output_len, batch * input_len)
    res = WhatIfResult(
        m.id, dev.spec.id, tp, pp, layout.devices, batch, input_len, output_len, prec.weights, prec.kv,
        prec.compute, dev.calibrated, plan.fits, plan.capacity_bytes, plan.weights_bytes,
        plan.kv_cache_bytes, plan.activation_bytes, plan.max_batch, cp=cp, ep=ep,
    )
    if m.max_context and input_len + output_len > m.max_context:
        res.notes.append(f"context {input_len + output_len} exceeds {m.id}'s trained maximum of {m.max_context}")
    if not plan.fits:
        res.message = _does_not_fit(plan)
        if check_memory:
            return res
    _fill_times(res, m, dev, layout, prec)
    return res


def _does_not_fit(plan: MemoryPlan) -> str:
    gib = 2**30
    return (f"does not fit: needs {plan.needed_bytes / gib:.1f} GiB per device "
            f"(weights {plan.weights_bytes / gib:.1f}, KV {plan.kv_cache_bytes / gib:.1f}, "
            f"activations {plan.activation_bytes / gib:.1f}), has {plan.capacity_bytes / gib:.1f} GiB usable; "
            f"max batch at this context: {plan.max_batch}")


def _fill_times(res: WhatIfResult, m, dev, layout, prec) -> None:
    B, I, O = res.batch, res.input_len, res.output_len
    pre: StepTime = step_time(m, dev, Prefill.of(B, I), layout, prec, pipeline_fill=True)
    ttft = float(pre.total_s)
    ctx, weights = decode_contexts(I, O)
    decode_total, bound_decode, rows = 0.0, None, []
    if len(ctx):
        dec = step_time(m, dev, Decode(np.repeat(ctx[:, None], B, axis=1)), layout, prec)
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
