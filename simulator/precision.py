"""Data types of weights, activations and KV cache: bytes per element and the GEMM compute dtype."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InfercastError
from .hwspec import HardwareSpec

BYTES_PER_ELEMENT = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5, "fp4": 0.5}
WEIGHT_DTYPES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")
KV_DTYPES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")
HALF = ("bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    weights: str = "bf16"
    kv: str = "bf16"
    compute: str = "bf16"  # dtype the GEMMs run in (W8A8 fp8: fp8; weight-only int4: bf16)

    @property
    def weight_bytes(self) -> float:
        return BYTES_PER_ELEMENT[self.weights]

    @property
    def kv_bytes(self) -> float:
        return BYTES_PER_ELEMENT[self.kv]

    @property
    def act_bytes(self) -> float:
        """Activations between kernels stay 16-bit (fp32 models: 32-bit)."""
        return 4.0 if self.compute == "fp32" else 2.0

    @property
    def attention_dtype(self) -> str:
        """Attention runs in 16-bit (an fp8 KV cache is dequantised on load), fp32 for fp32 models."""
        return "fp32" if self.compute == "fp32" else ("fp16" if self.compute == "fp16" else "bf16")


def nearest_rate(peaks: dict, weights: str) -> str:
    """The smallest change of GEMM dtype: the narrowest rate the device has that is at least as wide
    as the weights (bf16 weights on an fp32-only engine: fp32), else its widest."""
    wide_enough = [d for d in peaks if BYTES_PER_ELEMENT[d] >= BYTES_PER_ELEMENT[weights]]
    if wide_enough:
        return min(wide_enough, key=lambda d: BYTES_PER_ELEMENT[d])
    return max(peaks, key=lambda d: BYTES_PER_ELEMENT[d])


def _check(value: str, allowed: tuple[str, ...], flag: str) -> str:
    if value not in allowed:
        raise InfercastError(f"{flag}: '{value}' is not a dtype infercast knows (allowed: {', '.join(allowed)})")
    return value


def resolve_precision(hw: HardwareSpec, dtype: str = "bf16", kv_dtype: str | None = None,
                      compute_dtype: str | None = None) -> Precision:
    """Weights `dtype`; KV defaults to the weights' dtype (16-bit for 4-bit weights); GEMMs run in
    fp8/int8 when the weights are and the engine has that rate (W8A8), else in 16-bit (weight-only
    quantisation dequantises in the kernel)."""
    _check(dtype, WEIGHT_DTYPES, "--dtype")
    peaks = hw.engine.peak
    half = "bf16" if "bf16" in peaks or "fp16" not in peaks else "fp16"
    if compute_dtype is None:
        if dtype in ("fp32",):
            compute_dtype = "fp32"
        elif dtype in ("fp8", "int8", "fp4") and dtype in peaks:
            compute_dtype = dtype
        elif dtype in HALF and dtype in peaks:
            compute_dtype = dtype
        else:
            compute_dtype = half
    elif compute_dtype not in peaks:
        raise InfercastError(f"--compute-dtype: {hw.id} has no {compute_dtype} rate (has: {', '.join(peaks)})")
    if compute_dtype not in peaks:  # e.g. an int8-only NPU asked for 16-bit GEMMs: no rate to time them at
        raise InfercastError(f"--dtype: {hw.id} has no {compute_dtype} rate for {dtype} weights' GEMMs (has: "
                             f"{', '.join(peaks)}); give --compute-dtype {nearest_rate(peaks, dtype)} (the weights "
                             f"stay {dtype})")
    if kv_dtype is None:
        kv_dtype = dtype if dtype in KV_DTYPES and dtype != "int4" else half
    _check(kv_dtype, KV_DTYPES, "--kv-dtype")
    return Precision(weights=dtype, kv=kv_dtype, compute=compute_dtype)
