"""Step costs of the ops that depend only on a step's token or sequence count, for a whole range of
counts at once: every op of ops.build_ops for a pure decode step of n one-token sequences except
attention, with each FLOP, byte and shape term an array over n, costed with the roofline of
roofline.op_time on those arrays. Entry n equals building the ops for n and costing them one by
one (tests/serving/test_step_model.py); the step model tabulates by_tokens and by_rows with it
instead of building the ops once per count."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..attention_cost import attention_ops
from ..calibration import evaluate
from ..collectives import collective_seconds
from ..layers import compute_linears
from ..modelspec import ModelSpec
from ..ops import (
    Op,
    _comm_ops,
    _elementwise_ops,
    gemm,
    local_shape,
    overhead_ops,
    split_degree,
)
from ..phases import Layout
from ..precision import Precision
from ..roofline import Device, _terms, combine

NETWORK = ("collective", "p2p")


@dataclass(frozen=True)
class _Counts:
    """A decode step's stand-in for the op builders: n sequences of one token each, n an array."""

    tokens: np.ndarray
    context_lens: np.ndarray  # only attention reads it, and attention is not tabulated

    @property
    def sequences(self) -> np.ndarray:
        return self.tokens


def _linear_ops(model: ModelSpec, n: np.ndarray, layout: Layout, prec: Precision) -> list[Op]:
    """ops._linear_ops of a decode step, on arrays (MoE expert shapes rounded element-wise)."""
    moe, ops = model.moe, []
    for lin in compute_linears(model):
        k, m = local_shape(lin, split_degree(lin, layout))
        if lin.name == "embedding":
            continue
        if lin.name == "lm_head":
            half = replace(prec, weights=prec.attention_dtype, compute=prec.attention_dtype)
            ops.append(gemm("lm_head", n, k, m, 1, half))
        elif lin.name.startswith("expert_"):
            routed = n * moe.experts_per_token / layout.ep * layout.ep_imbalance
            touched = moe.num_experts / layout.ep * (1.0 - (1.0 - moe.experts_per_token / moe.num_experts) ** n)
            m_avg = np.maximum(1, np.round(routed / touched)).astype(np.int64)
            op = gemm(lin.name, routed, k, m, lin.layers, prec, weight_copies=touched)
            ops.append(replace(op, shape=(m_avg, m, k)))
        else:
            ops.append(gemm(lin.name, n, k, m, lin.layers, prec))
    return ops


def count_ops(model: ModelSpec, layout: Layout, prec: Precision, n: np.ndarray, tile: int = 128) -> list[Op]:
    """build_ops(model, Decode.of(n, 1), ...) less attention, for an array n of counts (all >= 1)."""
    ph = _Counts(n, np.ones(1, dtype=np.int64))
    rope = [o for o in attention_ops(model, ph, layout, prec, tile) if o.name != "attention"]
    return _linear_ops(model, n, layout, prec) + rope + _elementwise_ops(model, ph, layout, prec) \
        + _comm_ops(model, ph, layout, prec) + overhead_ops(model, layout)


def _waves(m: np.ndarray, n: int, dev: Device):
    """roofline.wave_efficiency element-wise over the row counts m (and columns n, an int or an array)."""
    g, units = dev.cal.gemm, dev.spec.engine.compute_units
    if not units:
        return 1.0
    tiles = -(-m // g.tile_m) * -(-n // g.tile_n)
    waves = np.maximum(-(-tiles // units), 1)
    return np.where((m <= 0) | (np.asarray(n) <= 0) | (tiles <= units), 1.0, tiles / (waves * units))


def op_seconds(op: Op, dev: Device):
    """roofline.op_time of an op whose FLOPs, bytes, payload and GEMM rows are arrays."""
    cal = dev.cal
    if op.kind in NETWORK:
        return op.count * collective_seconds(op.collective, op.group, np.asarray(op.comm_bytes, dtype=np.float64),
                                             dev.spec, cal.collective, op.span)
    if op.kind == "gemm":  # efficiency without waves (one tile: a factor 1.0), then the waves element-wise
        eff = dev.gemm_base_efficiency(op.dtype, op.shape[0], op.flops, op.shape[1], op.shape[2]) * _waves(op.shape[0], op.shape[1], dev)
        compute = op.flops / (dev.peak(op.dtype) * eff)
        memory = op.bytes / (dev.mem_bandwidth * evaluate(cal.memory.efficiency, op.bytes)) \
            * dev.gemm_memory_factor(op.shape[0], op.shape[2], op.bytes)
        overhead = cal.gemm.overhead
    else:
        compute, memory, overhead = _terms(op, dev)
    return op.count * (combine(compute, memory, cal.overlap(op.kind, op.phase)) + overhead)


def count_costs(ops: list[Op], dev: Device, size: int, keep) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seconds, FLOPs, bytes) arrays of the ops whose names pass `keep`, added in list order (as the
    step model's op-by-op sum does)."""
    t, f, b = np.zeros(size), np.zeros(size), np.zeros(size)
    for op in ops:
        if keep(op.name):
            t += op_seconds(op, dev)
            f += np.asarray(op.flops, dtype=np.float64) * op.count
            if op.kind not in NETWORK:
                b += np.asarray(op.bytes, dtype=np.float64) * op.count
    return t, f, b
