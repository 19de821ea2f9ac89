"""Calibration profiles: achieved fraction of peak per op class, fixed overheads, collective costs.

A profile lives in hwspecs/calibration/<device-id>.yaml (format: hwspecs/calibration/README.md).
Without one, hwspecs/calibration/defaults.yaml applies and answers say `calibrated: false`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from .config_io import load_model
from .quantity_types import STRICT, Bytes, BytesPerS, FlopsPerS, Seconds


class Curve(BaseModel):
    """Efficiency against size (FLOPs or bytes), piecewise linear in log10(size), flat outside."""

    model_config = STRICT
    size: list[float]
    efficiency: list[float]

    @model_validator(mode="after")
    def _shape(self) -> "Curve":
        if len(self.size) != len(self.efficiency) or not self.size:
            raise ValueError("size and efficiency need the same, non-zero length")
        if any(b <= a for a, b in zip(self.size, self.size[1:])) or self.size[0] <= 0:
            raise ValueError("size must be positive and increasing")
        if not all(0 < e <= 1 for e in self.efficiency):
            raise ValueError("efficiency must be in (0, 1]")
        return self

    def __call__(self, x):
        return np.interp(np.log10(np.maximum(x, 1.0)), np.log10(self.size), self.efficiency)


class Surface(BaseModel):
    """GEMM efficiency over rows M and columns N: bilinear in log10 M and log10 N between the knots,
    flat beyond them. CPU BLAS runs a wide N slower than a narrow one at middling M (its packed
    panels of the weight stop fitting the cache) and alike at large M, which no product of a curve
    over M and a factor over N follows."""

    model_config = STRICT
    rows: list[float]
    cols: list[float]
    efficiency: list[list[float]]  # [row knot][column knot]

    @model_validator(mode="after")
    def _shape(self) -> "Surface":
        for name, k in (("rows", self.rows), ("cols", self.cols)):
            if not k or k[0] <= 0 or any(b <= a for a, b in zip(k, k[1:])):
                raise ValueError(f"{name} must be non-empty, positive and increasing")
        if len(self.efficiency) != len(self.rows) or any(len(r) != len(self.cols) for r in self.efficiency):
            raise ValueError("efficiency needs one row of len(cols) values per rows knot")
        if not all(0 < e <= 1 for r in self.efficiency for e in r):
            raise ValueError("efficiency must be in (0, 1]")
        return self

    def __call__(self, m, n):
        def weights(x, knots):  # (lower knot index, weight of the upper one), flat outside
            g = np.log10(knots)
            x = np.clip(np.log10(np.maximum(np.asarray(x, dtype=np.float64), 1.0)), g[0], g[-1])
            if len(g) == 1:
                return np.zeros(np.shape(x), dtype=np.int64), np.zeros(np.shape(x))
            i = np.clip(np.searchsorted(g, x, side="right") - 1, 0, len(g) - 2)
            return i, (x - g[i]) / (g[i + 1] - g[i])

        (i, a), (j, b) = weights(m, self.rows), weights(n, self.cols)
        e = np.asarray(self.efficiency)
        i1, j1 = np.minimum(i + 1, len(self.rows) - 1), np.minimum(j + 1, len(self.cols) - 1)
        return (e[i, j] * (1 - a) * (1 - b) + e[i1, j] * a * (1 - b) + e[i, j1] * (1 - a) * b + e[i1, j1] * a * b)


Efficiency = Annotated[float, Field(gt=0, le=1)] | Curve


def evaluate(eff: Efficiency, size):
    return eff(size) if isinstance(eff, Curve) else eff


class GemmCal(BaseModel):
    model_config = STRICT
    # per compute dtype; a dtype not listed uses the device's measured matmul fraction, else `fallback`
    efficiency: dict[str, Efficiency | Surface] = Field(default_factory=dict)
    # what a curve's size is: the GEMM's FLOPs, or its rows M (CPU BLAS: skinny GEMMs run their own,
    # slower kernels whatever N x K, so M says more about the achieved rate than FLOPs do); a
    # Surface is over rows M and columns N whatever this says
    size: Literal["flops", "rows"] = "flops"
    # factors on that efficiency against N and against K, when the sweep shows them: a short K
    # amortises each output tile's set-up and write-back over fewer steps (CPU BLAS runs x @ W^T at
    # M = 1 some 40% slower per byte at K = 768 than at K = 4096); None: no such factor
    n_efficiency: Curve | None = None
    k_efficiency: Curve | None = None
    # factor on the rate at which a GEMM streams its operands (its memory term), against K: a GEMV
    # (memory-bound) reads the weight as N dot products of length K, and pays each one's set-up and
    # reduction in full; a large GEMM is compute-bound, so the factor fades by itself. None: no factor
    k_stream_efficiency: Curve | None = None
    # rows up to which the BLAS runs a GEMM as one matrix-vector product per row (CPU BLAS: M = 2
    # takes twice M = 1's time, M = 4 does not): each streams the whole weight, so the memory term
    # counts the weight once per row, and its arithmetic hides under that stream. 0: none
    gemv_rows: int = Field(0, ge=0)
    # what each further row's read of the weight costs there, as a share of the first, against the
    # GEMM's bytes: a weight that fits a cache is re-read from it (this CPU: M = 2 takes 1.4x M = 1's
    # time at 256 KiB, 1.7x at 4 MiB, 2x from 16 MiB). None: a full read each
    gemv_reread: Curve | None = None
    fallback: float = Field(0.75, gt=0, le=1)
    tile_m: int = Field(128, gt=0)
    tile_n: int = Field(128, gt=0)
    overhead: Seconds = Field(4e-6, ge=0)


class OpCal(BaseModel):
    model_config = STRICT
    efficiency: Efficiency = 0.7
    overhead: Seconds = Field(4e-6, ge=0)


def elementwise_family(name: str) -> str:
    """Which kind of elementwise kernel an op is: norm (RMSNorm/LayerNorm), act (the MLP
    activation), or "" (residual adds, lookups, RoPE): profiles may calibrate the first two apart."""
    return "norm" if "norm" in name else "act" if name.endswith("_act") else ""


class ElementwiseCal(OpCal):
    by_op: dict[str, OpCal] = Field(default_factory=dict)  # elementwise_family -> its own fit

    def of(self, name: str) -> OpCal:
        return self.by_op.get(elementwise_family(name), self)


class AttentionCal(OpCal):
    query_tile: int = Field(128, gt=0)  # FlashAttention query rows per thread block (Dao 2023)
    decode_efficiency: Efficiency | None = None  # decode attention (a KV read) when it differs; None: `efficiency`
    # what a decode curve's size is: its FLOPs, or the keys each sequence attends (at equal FLOPs
    # this CPU's SDPA runs batch 1 x 8K keys 1.7x slower than batch 16 x 512)
    decode_size: Literal["flops", "context"] = "flops"
    # decode attention's own overlap exponent (Calibration.overlap_norm when None). This CPU's SDPA
    # adds its score math and its KV read: at 16 heads, batch 16 x 2K keys took 13.4, 18.8 and
    # 25.5 ms with 4, 8 and 16 KV heads, and 13.7, 18.8 and 27.1 ms with 8, 16 and 32 query heads
    # over 8 KV heads -- a sum of a per-head and a per-KV-head term, 1 here
    decode_overlap: float | None = Field(None, ge=1)

    def eff(self, decode: bool) -> Efficiency:
        return self.decode_efficiency if decode and self.decode_efficiency is not None else self.efficiency

    def decode_rate(self, flops, context):
        """The decode efficiency at these FLOPs and keys per sequence (arrays allowed)."""
        return evaluate(self.eff(True), context if self.decode_size == "context" else flops)


class CollectiveCal(BaseModel):
    model_config = STRICT
    efficiency: float = Field(0.8, gt=0, le=1)  # achieved bus bandwidth / link bandwidth per direction
    latency: Seconds = Field(10e-6, ge=0)  # per collective call
    step_latency: Seconds = Field(0.0, ge=0)  # per step of the schedule (a ring all-reduce takes 2 (n-1))


class MemoryBudget(BaseModel):
    model_config = STRICT
    usable_fraction: float = Field(0.9, gt=0, le=1)  # vLLM's default gpu_memory_utilization
    reserved: Bytes = Field(0.0, ge=0)  # runtime context, allocator slack


class HeldOutError(BaseModel):
    model_config = STRICT
    median: float
    p90: float
    points: int = 0


class Provenance(BaseModel):
    model_config = STRICT
    device: str = ""
    driver: str = ""
    libraries: dict[str, str] = Field(default_factory=dict)
    date: str = ""
    method: str = ""
    data: str = ""


class MeasuredPeaks(BaseModel):
    """Rates measured by `infercast calibrate` on a device whose spec cannot know them (the `local`
    CPU: its memory bandwidth is an assumption, its clock the base clock): the spec takes them."""

    model_config = STRICT
    memory_bandwidth: BytesPerS | None = None
    peak: dict[str, FlopsPerS] = Field(default_factory=dict)  # per dtype


class Calibration(BaseModel):
    model_config = STRICT
    device: str
    calibrated: bool
    provenance: Provenance = Provenance()
    measured: MeasuredPeaks | None = None
    held_out_error: HeldOutError | None = None
    gemm: GemmCal = GemmCal()
    attention: AttentionCal = AttentionCal()
    memory: OpCal = OpCal(efficiency=0.85)
    elementwise: ElementwiseCal = ElementwiseCal(efficiency=0.7)
    collective: CollectiveCal = CollectiveCal()
    memory_budget: MemoryBudget = MemoryBudget()
    # Compute and memory time of one kernel combine as (c^p + m^p)^(1/p): p -> infinity is the
    # pure roofline max (perfect overlap), p = 1 no overlap at all.
    overlap_norm: float = Field(float("inf"), ge=1)
    # fixed time per transformer layer per step beyond the listed kernels' own overheads: an
    # eager framework dispatching the small ops the operator model does not list (RoPE slices,
    # cache writes, reshapes); 0 for compiled engines unless measured
    layer_overhead: Seconds = Field(0.0, ge=0)
    note: str = ""

    def overlap(self, kind: str, phase: str = "") -> float:
        """The overlap exponent of an op of this kind and phase: decode attention's own, if set."""
        if kind == "attention" and phase == "decode" and self.attention.decode_overlap is not None:
            return self.attention.decode_overlap
        return self.overlap_norm


def calibration_dir() -> Path:
    from .catalog import data_dir

    return data_dir("hwspecs.calibration")


def infercast_home() -> Path:
    """$INFERCAST_HOME, or ~/.infercast when it is unset or empty: where runs of this machine go."""
    return Path(os.environ.get("INFERCAST_HOME") or Path.home() / ".infercast")


def user_calibration_dir() -> Path:
    """Where `infercast calibrate` writes profiles of this machine: $INFERCAST_HOME/calibration
    (default ~/.infercast/calibration). A profile there comes before a shipped one."""
    return infercast_home() / "calibration"


def profile_path(device_id: str) -> Path | None:
    """This machine's profile of the device, else a shipped one; None for neither, or for an ID
    that is not a plain name (hwspec.HW_ID: never a path to some other file)."""
    from .hwspec import HW_ID

    if not HW_ID.match(device_id):
        return None
    for d in (user_calibration_dir(), calibration_dir()):
        if (d / f"{device_id}.yaml").exists():
            return d / f"{device_id}.yaml"
    return None


@lru_cache(maxsize=64)
def load_calibration(device_id: str) -> Calibration:
    """The device's fitted profile (this machine's, else a shipped one), else the documented defaults."""
    path = profile_path(device_id)
    return load_model(path if path is not None else calibration_dir() / "defaults.yaml", Calibration)
