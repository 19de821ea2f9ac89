"""The step-time model: one engine step (prefill chunk or decode step) on one device layout.
The closed-form what-if, sweeps and the serving simulator all call `step_time`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .calibration import load_calibration
from .catalog import load_hardware
from .modelspec import ModelSpec
from .ops import Op, build_ops
from .phases import Decode, Layout, Phase, Prefill
from .precision import Precision
from .roofline import Device, op_bound, op_time


@lru_cache(maxsize=64)
def device(hw: str) -> Device:
    """A hardware spec (ID or path) with its calibration profile."""
    spec = load_hardware(hw)
    return Device(spec, load_calibration(spec.id))


@dataclass(frozen=True, eq=False)
class StepTime:
    ops: list[Op]
    times_s: list  # per op: seconds (array over steps where the phase has a step axis)
    total_s: object  # float, or array over steps

    def bound(self, dev: Device) -> str:
        """Whether compute-bound or memory-bound ops take more of the step ('network' if comms do)."""
        share: dict[str, float] = {}
        for op, t in zip(self.ops, self.times_s):
            b = op_bound(op, dev)
            share[b] = share.get(b, 0.0) + float(np.mean(t))
        return max(share, key=share.get)

    def rows(self, dev: Device, phase_name: str) -> list[dict]:
        """One row per op: tidy records for a DataFrame (means over steps where they vary)."""
        total = float(np.mean(self.total_s))
        return [
            {
                "phase": phase_name, "op": op.name, "kind": op.kind, "count": op.count,
                "flops": float(np.mean(op.flops)) * op.count, "bytes": float(np.mean(op.bytes)) * op.count,
                "comm_bytes": op.comm_bytes * op.count, "time_s": float(np.mean(t)),
                "share": float(np.mean(t)) / total if total else 0.0, "bound": op_bound(op, dev),
            }
            for op, t in zip(self.ops, self.times_s)
        ]


def micro_batches(sequences: int, pp: int) -> int:
    """Micro-batches a pipeline splits a step's batch into: one per stage, at most one per sequence."""
    return max(1, min(int(sequences), pp))


def micro_batch(phase: Phase, m: int) -> Phase:
    """The largest of m near-equal micro-batches of a phase (its first ceil(B / m) sequences)."""
    k = -(-phase.sequences // m)
    if isinstance(phase, Prefill):
        return Prefill(phase.chunk_lens[:k], phase.prior_lens[:k])
    return Decode(phase.context_lens[..., :k])


def step_time(model: ModelSpec, dev: Device, phase: Phase, layout: Layout, prec: Precision,
              pipeline_fill: bool = False) -> StepTime:
    """One step on one device. With pp stages the batch runs as m = min(sequences, pp) micro-batches
    (GPipe, Huang et al. 2019): a stage takes 1/pp of a micro-batch's pass through the whole model,
    and a step is max(m, pp) stage slots in a full pipeline (serving's steady state, decode), or
    m + pp - 1 slots when the pipeline fills and drains for this batch alone (`pipeline_fill`: a
    static batch's prefill). Ops are reported for the whole step (counts x m)."""
    # Thread blocks on consecutive query tiles of one head run concurrently (FlashAttention-2's grid
    # puts the query-block index fastest) and share each K/V block through L2: HBM sees one K/V pass
    # per wave of `compute_units` tiles, so the effective tile is query_tile x compute units.
    tile = dev.cal.attention.query_tile * (dev.spec.engine.compute_units or 1)
    m = micro_batches(phase.sequences, layout.pp)
    ops = build_ops(model, micro_batch(phase, m) if m > 1 else phase, layout, prec, tile)
    times = hide_overlapped(ops, [op_time(op, dev) for op in ops])
    if m > 1:
        slots = m + layout.pp - 1 if pipeline_fill else max(m, layout.pp)
        times = [t * (slots / layout.pp) for t in times]
        ops = [replace(op, count=op.count * m) for op in ops]
    return StepTime(ops, times, sum(times))


def hide_overlapped(ops: list[Op], times: list) -> list:
    """Times with each op that runs under another (`hidden_under`) cut to its excess over it."""
    by_name = {op.name: t for op, t in zip(ops, times)}
    return [np.maximum(t - by_name.get(op.hidden_under, 0.0), 0.0) if op.hidden_under else t
            for op, t in zip(ops, times)]
