"""Hardware spec schema: one YAML file per device under hwspecs/.

A device has one or more compute engines (a phone SoC's CPU, GPU and NPU) sharing its memory
tiers, an on-chip cache, links, power and price. Every block names its `source`, a key of the
file's `sources` table, so each number can be traced to a datasheet or measurement.
"""

from __future__ import annotations

from functools import cached_property

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, field_validator, model_validator

from .limits import MAX_DEVICES
from .quantity_types import STRICT, Bytes, BytesPerS, FlopsPerS, Label, Watts, finite_amount, whole_number

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")
Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4"]
SourceRef = str | list[str]
MAX_COMPUTE_UNITS = 1_000_000  # SMs, CUs or cores of one device (H100: 132 SMs; a 192-core CPU)
ComputeUnits = Annotated[int, whole_number(1, MAX_COMPUTE_UNITS)]
DomainSize = Annotated[int, whole_number(1, MAX_DEVICES)]
UsdPerHour = Annotated[float, finite_amount(1e6, "price in USD per hour")]
UsdPrice = Annotated[float, finite_amount(1e10, "price in USD")]


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

    def source_keys(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


class Engine(Sourced):
    """A compute engine: dense peak rate per dtype (no 2:4 sparsity)."""

    peak: dict[Dtype, FlopsPerS]
    # Largest measured matmul rate per dtype (e.g. the "maximum achievable matmul FLOPS" benchmark).
    measured_matmul: dict[Dtype, FlopsPerS] = Field(default_factory=dict)
    compute_units: ComputeUnits | None = None  # SMs, CUs, cores: used for GEMM wave quantisation

    @field_validator("peak")
    @classmethod
    def _not_empty(cls, v: dict) -> dict:  # each rate is > 0 by its type
        if not v:
            raise ValueError(f"at least one dtype is needed (one of {', '.join(DTYPES)})")
        return v


class MemoryTier(Sourced):
    capacity: Bytes = Field(gt=0)
    bandwidth: BytesPerS = Field(gt=0)
    type: str = ""


class Memory(BaseModel):
    model_config = STRICT
    device: MemoryTier
    host: MemoryTier | None = None
    nvme: MemoryTier | None = None


class Cache(Sourced):
    capacity: Bytes = Field(gt=0)


class Link(Sourced):
    bandwidth_per_dir: BytesPerS = Field(gt=0)
    name: str = ""
    domain_size: DomainSize | None = None  # devices reachable at this bandwidth (scale-up only)
    peer_bandwidth_per_dir: BytesPerS | None = None  # fully connected mesh (scale-up): each pair's own link


class Links(BaseModel):
    model_config = STRICT
    scaleup: Link | None = None
    host: Link | None = None
    scaleout: Link | None = None


class Power(Sourced):
    tdp: Watts = Field(gt=0)
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
    id: Label
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
