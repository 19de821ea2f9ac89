"""Calibration profiles: achieved fraction of peak per op class, fixed overheads, collective costs.

A profile lives in hwspecs/calibration/<device-id>.yaml (format: hwspecs/calibration/README.md).
Without one, hwspecs/calibration/defaults.yaml applies and answers say `calibrated: false`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, Field, model_validator

from .config_io import load_model
from .quantity_types import STRICT, Bytes, Seconds


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


Efficiency = Annotated[float, Field(gt=0, le=1)] | Curve


def evaluate(eff: Efficiency, size):
    return eff(size) if isinstance(eff, Curve) else eff


class GemmCal(BaseModel):
    model_config = STRICT
    # per compute dtype; a dtype not listed uses the device's measured matmul fraction, else `fallback`
    efficiency: dict[str, Efficiency] = Field(default_factory=dict)
    fallback: float = Field(0.75, gt=0, le=1)
    tile_m: int = Field(128, gt=0)
    tile_n: int = Field(128, gt=0)
    overhead: Seconds = Field(4e-6, ge=0)


class OpCal(BaseModel):
    model_config = STRICT
    efficiency: Efficiency = 0.7
    overhead: Seconds = Field(4e-6, ge=0)


class AttentionCal(OpCal):
    query_tile: int = Field(128, gt=0)  # FlashAttention query rows per thread block (Dao 2023)


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


class Calibration(BaseModel):
    model_config = STRICT
    device: str
    calibrated: bool
    provenance: Provenance = Provenance()
    held_out_error: HeldOutError | None = None
    gemm: GemmCal = GemmCal()
    attention: AttentionCal = AttentionCal()
    memory: OpCal = OpCal(efficiency=0.85)
    elementwise: OpCal = OpCal(efficiency=0.7)
    collective: CollectiveCal = CollectiveCal()
    memory_budget: MemoryBudget = MemoryBudget()
    # Compute and memory time of one kernel combine as (c^p + m^p)^(1/p): p -> infinity is the
    # pure roofline max (perfect overlap), p = 1 no overlap at all.
    overlap_norm: float = Field(float("inf"), ge=1)
    note: str = ""


def calibration_dir() -> Path:
    from .catalog import data_dir

    return data_dir("hwspecs.calibration")


@lru_cache(maxsize=64)
def load_calibration(device_id: str) -> Calibration:
    """The device's fitted profile when one ships, else the documented defaults."""
    path = calibration_dir() / f"{device_id}.yaml"
    if path.exists():
        return load_model(path, Calibration)
    return load_model(calibration_dir() / "defaults.yaml", Calibration)
