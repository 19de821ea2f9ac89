"""Roofline: time of an op = max(FLOPs / achieved FLOP/s, bytes / achieved bytes/s) + overhead
(Williams, Waterman & Patterson 2009). Achieved rates = peak x efficiency from the calibration."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .calibration import Calibration, Surface, evaluate
from .collectives import collective_time
from .hwspec import HardwareSpec
from .ops import Op

HALF = ("bf16", "fp16")


@dataclass(frozen=True)
class Device:
    """A hardware spec with its calibration: everything the roofline needs."""

    spec: HardwareSpec
    cal: Calibration

    @property
    def calibrated(self) -> bool:
        return self.cal.calibrated

    def peak(self, dtype: str) -> float:
        peaks = self.spec.engine.peak
        if dtype in peaks:
            return peaks[dtype]
        for alt in (HALF if dtype in HALF else ()) + ("bf16", "fp16", "fp32", "int8"):
            if alt in peaks:
                return peaks[alt]
        return max(peaks.values())

    def gemm_efficiency(self, dtype: str, m: int, n: int, flops, k: int = 0):
        """Calibrated curve for the dtype, else the measured max-achievable-matmul fraction of the
        device, else the fallback; times wave quantisation (tiles over compute units)."""
        g = self.cal.gemm
        return self.gemm_base_efficiency(dtype, m, flops, n, k) * wave_efficiency(m, n, g.tile_m, g.tile_n,
                                                                                  self.spec.engine.compute_units)

    def gemm_base_efficiency(self, dtype: str, m, flops, n=0, k=0):
        """gemm_efficiency without the waves; `m`, `flops`, `n` and `k` may be arrays (0: unknown)."""
        g = self.cal.gemm
        if dtype not in g.efficiency:
            return self._measured_fraction(dtype) or g.fallback
        e = g.efficiency[dtype]
        eff = e(m, n) if isinstance(e, Surface) else evaluate(e, m if g.size == "rows" else flops)
        for dim, factor in ((n, g.n_efficiency), (k, g.k_efficiency)):
            if factor is not None:
                eff = eff * np.where(np.asarray(dim) > 0, factor(dim), 1.0)
        return eff if not g.gemv_rows else np.where(np.asarray(m) <= g.gemv_rows, 1.0, eff)

    def gemm_memory_factor(self, m, k, nbytes):
        """Factor on a GEMM's memory time: the weight re-read per row up to gemv_rows rows (each
        further read at gemv_reread's share of the first), over the stream efficiency against its
        reduction length K (arrays allowed; 0: unknown)."""
        g = self.cal.gemm
        stream = 1.0 if g.k_stream_efficiency is None else np.where(np.asarray(k) > 0, g.k_stream_efficiency(k), 1.0)
        if not g.gemv_rows:
            return 1.0 / stream
        again = np.where(np.asarray(m) <= g.gemv_rows, np.maximum(np.asarray(m) - 1, 0), 0)
        share = 1.0 if g.gemv_reread is None else g.gemv_reread(nbytes)
        return (1.0 + again * share) / stream

    def _measured_fraction(self, dtype: str) -> float | None:
        eng = self.spec.engine
        for d in (dtype,) + (HALF if dtype in HALF else ()):
            if d in eng.measured_matmul and d in eng.peak:
                return eng.measured_matmul[d] / eng.peak[d]
        return None

    @property
    def mem_bandwidth(self) -> float:
        return self.spec.memory.device.bandwidth


def wave_efficiency(m: int, n: int, tile_m: int, tile_n: int, units: int | None) -> float:
    """Fraction of compute units busy over the waves of output tiles. Below one full wave a
    library splits K to fill the machine, so only tile counts above one wave are penalised."""
    if not units or m <= 0 or n <= 0:
        return 1.0
    tiles = -(-m // tile_m) * -(-n // tile_n)
    if tiles <= units:
        return 1.0
    waves = -(-tiles // units)
    return tiles / (waves * units)


def _terms(op: Op, dev: Device):
    """(compute seconds, memory seconds, fixed overhead) of one instance of a non-network op."""
    cal = dev.cal
    if op.kind == "overhead":
        return 0.0, 0.0, cal.layer_overhead
    if op.kind == "gemm":
        eff, overhead = dev.gemm_efficiency(op.dtype, op.shape[0], op.shape[1], op.flops, op.shape[2]), cal.gemm.overhead
    else:
        c = cal.attention if op.kind == "attention" else cal.memory if op.kind == "memory" else cal.elementwise.of(op.name)
        if op.kind == "attention" and op.phase == "decode":
            eff = cal.attention.decode_rate(op.flops, op.context)
        else:
            eff = evaluate(cal.attention.efficiency if op.kind == "attention" else c.efficiency, op.flops)
        overhead = c.overhead
    compute = op.flops / (dev.peak(op.dtype) * eff)
    memory = op.bytes / (dev.mem_bandwidth * evaluate(cal.memory.efficiency, op.bytes))
    if op.kind == "gemm":
        memory = memory * dev.gemm_memory_factor(op.shape[0], op.shape[2], op.bytes)
    return compute, memory, overhead


def op_time(op: Op, dev: Device):
    """Seconds for `count` instances of the op (an array where the op varies over steps)."""
    if op.kind in ("collective", "p2p"):
        return op.count * collective_time(op, dev.spec, dev.cal.collective)
    compute, memory, overhead = _terms(op, dev)
    return op.count * (combine(compute, memory, dev.cal.overlap(op.kind, op.phase)) + overhead)


def op_bound(op: Op, dev: Device) -> str:
    """'compute', 'memory' or 'network' for the op's dominant limit."""
    if op.kind in ("collective", "p2p"):
        return "network"
    compute, memory, _ = _terms(op, dev)
    return "compute" if np.mean(compute) > np.mean(memory) else "memory"


def combine(compute, memory, p: float):
    """(c^p + m^p)^(1/p), which tends to max(c, m) as p grows: how much of a kernel's memory
    traffic hides under its math. Computed relative to the larger term to stay finite."""
    if isinstance(compute, float) and isinstance(memory, float):  # scalars (numpy's too): plain floats
        if math.isinf(p):
            return max(compute, memory)
        big = max(compute, memory, 1e-30)
        return big * ((compute / big) ** p + (memory / big) ** p) ** (1.0 / p)
    if np.isinf(p):
        return np.maximum(compute, memory)
    big = np.maximum(np.maximum(compute, memory), 1e-30)
    return big * ((compute / big) ** p + (memory / big) ** p) ** (1.0 / p)
