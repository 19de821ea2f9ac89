"""Hardware spec schema: one YAML file per device under hwspecs/.

A device has one or more compute engines (a phone SoC's CPU, GPU and NPU) sharing its memory
tiers, an on-chip cache, links, power and price. Every block names its `source`, a key of the
file's `sources` table, so each number can be traced to a datasheet or measurement.

The `id` is a plain name (it names the calibration profile, <id>.yaml). Quantities have floors as
well as ceilings, far outside any real part: a compute rate of at least 1 GFLOP/s, bandwidths of at
least 1 MB/s, device memory of at least 1 MiB, at most 100 kW per device, at least $0.001 an hour,
so a unit slip ('989' for '989 TFLOP/s') is refused; a measured matmul rate is at most its peak.
"""

from __future__ import annotations

from functools import cached_property

from typing import Annotated, Literal

import re

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictBool, field_validator, model_validator

from .limits import MAX_DEVICES
from .quantity_types import STRICT, Bytes, BytesPerS, FlopsPerS, Label, Watts, finite_amount, whole_number
from .units import format_quantity

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")
Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4"]
SourceRef = str | list[str]
MAX_COMPUTE_UNITS = 1_000_000  # SMs, CUs or cores of one device (H100: 132 SMs; a 192-core CPU)
ComputeUnits = Annotated[int, whole_number(1, MAX_COMPUTE_UNITS)]
DomainSize = Annotated[int, whole_number(1, MAX_DEVICES)]
HW_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def _plain_id(value: object) -> str:
    """An ID names files (hwspecs/<id>.yaml, its calibration profile <id>.yaml): a plain name."""
    if not isinstance(value, str) or not HW_ID.match(value):
        raise ValueError("must be a plain name: lowercase letters, digits, '.', '_' or '-', starting with a letter "
                         "or digit, up to 100 characters (no '/')")
    return value


def _bounded(family: str, low: float | None = None, high: float | None = None, hint: str = "") -> AfterValidator:
    """A floor and/or ceiling on a quantity already in SI (a unit slip such as '989' for '989 TFLOP/s',
    or '700 kW' for one GPU, is refused instead of answering with absurd numbers)."""

    def check(x: float) -> float:
        if low is not None and x < low:
            raise ValueError(f"must be at least {format_quantity(low, family)}{hint}")
        if high is not None and x > high:
            raise ValueError(f"must be at most {format_quantity(high, family)}{hint}")
        return x

    return AfterValidator(check)


def _at_least(low: float, what: str) -> AfterValidator:
    def check(x: float) -> float:
        if x < low:
            raise ValueError(f"must be at least {what}")
        return x

    return AfterValidator(check)


# Floors and ceilings per device, far outside any real part (a phone NPU has GFLOP/s and GB/s; an
# 8-GPU node draws ~10 kW): a bare number is SI, so '989' is 989 FLOP/s and is refused here.
BARE = " (a bare number is SI: write the unit, e.g. '{}')"
DeviceRate = Annotated[FlopsPerS, _bounded("flops_per_s", low=1e9, hint=BARE.format("989 TFLOP/s"))]
DeviceBandwidth = Annotated[BytesPerS, _bounded("bytes_per_s", low=1e6, hint=BARE.format("3.35 TB/s"))]
DeviceCapacity = Annotated[Bytes, _bounded("bytes", low=2.0**20, hint=BARE.format("80 GiB"))]
CacheCapacity = Annotated[Bytes, _bounded("bytes", low=2.0**10, hint=BARE.format("50 MiB"))]
DevicePower = Annotated[Watts, _bounded("watts", low=0.1, high=1e5, hint=" (one device; e.g. '700 W')")]
UsdPerHour = Annotated[float, finite_amount(1e6, "price in USD per hour"), _at_least(1e-3, "$0.001 per hour")]
UsdPrice = Annotated[float, finite_amount(1e10, "price in USD"), _at_least(1.0, "$1")]


class Source(BaseModel):
    """Where numbers come from: a URL (datasheet, paper, benchmark) and/or a note saying how derived."""

    model_config = STRICT
    url: str = ""
    note: str = ""

    @model_validator(mode="after")
    def _something(self) -> "Source":
        if not (self.url or self.note):
            raise ValueError("a source needs a url or a note")
        return self


class Sourced(BaseModel):
    """A block whose numbers come from the named source(s)."""

    model_config = STRICT
    source: SourceRef
    note: str = ""

    @field_validator("source")
    @classmethod
    def _names_one(cls, v: SourceRef) -> SourceRef:
        keys = [v] if isinstance(v, str) else v
        if not keys or not all(keys):
            raise ValueError("must name at least one key of `sources` (a name, or a list of names)")
        return v

    def source_keys(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


class Engine(Sourced):
    """A compute engine: dense peak rate per dtype (no 2:4 sparsity)."""

    peak: dict[Dtype, DeviceRate]
    # Largest measured matmul rate per dtype (e.g. the "maximum achievable matmul FLOPS" benchmark).
    measured_matmul: dict[Dtype, DeviceRate] = Field(default_factory=dict)
    compute_units: ComputeUnits | None = None  # SMs, CUs, cores: used for GEMM wave quantisation

    @field_validator("peak")
    @classmethod
    def _not_empty(cls, v: dict) -> dict:  # each rate is > 0 by its type
        if not v:
            raise ValueError(f"at least one dtype is needed (one of {', '.join(DTYPES)})")
        return v

    @model_validator(mode="after")
    def _measured_below_peak(self) -> "Engine":
        for dtype, rate in self.measured_matmul.items():
            if dtype in self.peak and rate > self.peak[dtype]:
                raise ValueError(f"measured_matmul.{dtype} ({format_quantity(rate, 'flops_per_s')}) must be <= "
                                 f"peak.{dtype} ({format_quantity(self.peak[dtype], 'flops_per_s')}): no kernel "
                                 "runs above the dense peak")
        return self


class MemoryTier(Sourced):
    capacity: DeviceCapacity
    bandwidth: DeviceBandwidth
    type: str = ""


class Memory(BaseModel):
    model_config = STRICT
    device: MemoryTier
    host: MemoryTier | None = None
    nvme: MemoryTier | None = None


class Cache(Sourced):
    capacity: CacheCapacity


class Link(Sourced):
    bandwidth_per_dir: DeviceBandwidth
    name: str = ""
    domain_size: DomainSize | None = None  # devices reachable at this bandwidth (scale-up only)
    peer_bandwidth_per_dir: DeviceBandwidth | None = None  # fully connected mesh (scale-up): each pair's own link


class Links(BaseModel):
    model_config = STRICT
    scaleup: Link | None = None
    host: Link | None = None
    scaleout: Link | None = None


class Power(Sourced):
    tdp: DevicePower
    idle: Watts | None = None

    @model_validator(mode="after")
    def _idle_below_tdp(self) -> "Power":
        if self.idle is not None and self.idle > self.tdp:
            raise ValueError(f"idle ({self.idle:,.0f} W) must be <= tdp ({self.tdp:,.0f} W)")
        return self


class Price(Sourced):
    cloud_usd_per_hour: UsdPerHour | None = None
    purchase_usd: UsdPrice | None = None
    estimate: StrictBool = False  # true where no public list price was found


class HardwareSpec(BaseModel):
    model_config = STRICT
    id: Annotated[str, BeforeValidator(_plain_id)]
    name: Label
    vendor: Label
    kind: Literal["gpu", "cpu", "npu", "tpu", "accelerator", "soc"]
    sources: dict[str, Source]
    engines: dict[str, Engine]
    default_engine: str | None = None
    memory: Memory
    cache: Cache | None = None
    links: Links = Links()
    power: Power | None = None
    price: Price | None = None
    note: str = ""

    @field_validator("engines")
    @classmethod
    def _an_engine(cls, v: dict) -> dict:
        if not v:
            raise ValueError("at least one compute engine is needed")
        return v

    @model_validator(mode="after")
    def _check_refs(self) -> "HardwareSpec":
        for path, block in self._sourced_blocks():
            for key in block.source_keys():
                if key not in self.sources:
                    raise ValueError(f"{path}.source: '{key}' is not in sources (have: {', '.join(self.sources)})")
        if self.default_engine is not None and self.default_engine not in self.engines:
            raise ValueError(f"default_engine: '{self.default_engine}' is not one of {', '.join(self.engines)}")
        return self

    def _sourced_blocks(self):
        for name, e in self.engines.items():
            yield f"engines.{name}", e
        for tier in ("device", "host", "nvme"):
            if (t := getattr(self.memory, tier)) is not None:
                yield f"memory.{tier}", t
        for link in ("scaleup", "host", "scaleout"):
            if (x := getattr(self.links, link)) is not None:
                yield f"links.{link}", x
        for name in ("cache", "power", "price"):
            if (x := getattr(self, name)) is not None:
                yield name, x

    @cached_property
    def engine(self) -> Engine:
        """The engine LLM kernels run on: `default_engine`, else the one with the highest peak."""
        if self.default_engine is not None:
            return self.engines[self.default_engine]
        return max(self.engines.values(), key=lambda e: max(e.peak.values()))
