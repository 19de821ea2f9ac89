"""When a what-if does not fit in memory: the smallest change that does, computed with the real
memory plan (memory.memory_plan), never guessed.

Changes are tried in order of least disruption, each family at its smallest step that fits:
1. a larger TP degree, inside the scale-up domain (tensor parallelism does not cross NICs);
2. a larger CP degree (shards the KV and the prefill activations, replicates the weights);
3. a narrower KV dtype (fp8 where the device has an fp8 rate, else int8; then int4);
4. a smaller batch (the largest that fits);
5. a narrower KV dtype with a smaller batch (when neither alone fits);
6. the KV beyond device memory held in the host memory tier (when the hardware has one);
7. more pipeline stages (shards the weights by layer);
8. as a last resort, one request at the widest TP in the domain, with the fewest pipeline stages
   that fit, or at the most stages the smallest CP that fits.
The first that fits is the advice; the first that keeps the device count is named beside it. When
nothing fits, the answer says why: the weights alone, or one request's KV at this context.
Each probe costs one memory plan (~20 us); ranges are searched by bisection, as every need here is
monotone in the degree or batch tried.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from .collectives import domain_size, has_links
from .errors import InfercastError
from .hwspec import HardwareSpec
from .human import gib_ceil, size
from .limits import MAX_DEGREE, MAX_DEVICES
from .memory import MemoryPlan, memory_plan, weights_bytes
from .modelspec import ModelSpec
from .phases import Layout, check_layout
from .precision import BYTES_PER_ELEMENT, Precision
from .roofline import Device

PCIE_SERVER = 8  # PCIe cards per server: tensor parallelism without a scale-up fabric stays inside one


def tensor_parallel_limit(spec: HardwareSpec) -> int:
    """Largest TP degree inside one scale-up domain (a PCIe server's cards where there is no fabric;
    1 where the spec has no link between devices at all)."""
    if not has_links(spec):
        return 1
    return min(domain_size(spec), MAX_DEGREE) if spec.links.scaleup is not None else PCIE_SERVER


@dataclass(frozen=True)
class FitOption:
    """One change that fits: the flags it sets, and what each device then needs."""

    change: dict  # flag (without --, underscores) -> value, e.g. {"kv_dtype": "fp8", "batch": 2}
    needed_bytes: float  # per device with the change
    devices: int  # devices of the layout with the change
    host_kv_bytes: float = 0.0  # offload: KV held in the host tier

    def flags(self) -> str:
        """The change as the what-if's flags, ready to paste: "--kv-dtype fp8 --batch 2"."""
        return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.change.items())

    def text(self) -> str:
        if self.host_kv_bytes > 0:
            return (f"{size(self.host_kv_bytes)} of the KV in host memory (a serving run models it: "
                    f"simulate --kv-offload host:{gib_ceil(self.host_kv_bytes)})")
        unit = "device" if self.devices == 1 else "devices"
        return f"{self.flags()} ({self.devices:,} {unit}, {size(self.needed_bytes)} per device)"

    def to_dict(self) -> dict:
        return {"change": dict(self.change), "flags": self.flags(), "command": self.command(),
                "needed_bytes_per_device": self.needed_bytes, "devices": self.devices,
                "host_kv_bytes": self.host_kv_bytes}

    def command(self) -> str:
        """The command whose flags these are: an offload tier is modelled by the serving simulator only."""
        return "simulate" if self.host_kv_bytes > 0 else "whatif"


@dataclass(frozen=True)
class FitAdvice:
    """Changes that fit, least disruptive first; `nothing_fits` says why when there is none."""

    capacity_bytes: float  # usable per device
    devices: int  # devices of the layout asked for
    options: tuple[FitOption, ...]
    nothing_fits: str = ""

    @property
    def named(self) -> list[FitOption]:
        """The options the message names: the first, and the first that keeps the device count."""
        if not self.options:
            return []
        same = next((o for o in self.options if o.devices == self.devices), None)
        return [self.options[0]] + ([same] if same is not None and same is not self.options[0] else [])

    def text(self) -> str:
        if not self.options:
            return self.nothing_fits
        return "fits with " + ", or ".join(o.text() for o in self.named)

    def to_dict(self) -> dict:
        return {"fits_with": self.named[0].to_dict() if self.options else None,
                "options": [o.to_dict() for o in self.options], "nothing_fits": self.nothing_fits or None,
                "text": self.text()}


def smallest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """Smallest x in [lo, hi] with ok(x), for ok monotone (false ... false true ... true); None if none."""
    if lo > hi or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return lo


def largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """Largest x in [lo, hi] with ok(x), for ok monotone (true ... true false ... false); None if none."""
    if lo > hi or not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


@dataclass(frozen=True)
class Probe:
    """The question being asked: a model on a device at one context; plan() prices one answer."""

    model: ModelSpec
    dev: Device
    layout: Layout
    prec: Precision
    batch: int
    input_len: int
    output_len: int

    def plan(self, layout: Layout | None = None, prec: Precision | None = None, batch: int | None = None) -> MemoryPlan:
        b = self.batch if batch is None else batch
        return memory_plan(self.model, self.dev, layout or self.layout, prec or self.prec, b,
                           self.input_len + self.output_len, b * self.input_len)

    @property
    def one_device(self) -> bool:
        """No link between devices: only single-device changes (KV dtype, batch, offload) apply."""
        return not has_links(self.dev.spec)

    def valid(self, layout: Layout) -> bool:
        if layout.devices > MAX_DEVICES or (layout.devices > 1 and self.one_device):
            return False
        try:
            check_layout(self.model, layout)
        except InfercastError:
            return False
        return True

    def option(self, change: dict, layout: Layout | None = None, prec: Precision | None = None,
               batch: int | None = None) -> FitOption | None:
        p = self.plan(layout, prec, batch)
        return FitOption(change, p.needed_bytes, (layout or self.layout).devices) if p.fits else None


def _larger_tp(q: Probe) -> FitOption | None:
    top = min(tensor_parallel_limit(q.dev.spec), q.model.num_heads)
    for tp in range(q.layout.tp + 1, top + 1):
        lay = replace(q.layout, tp=tp)
        if q.valid(lay) and (opt := q.option({"tp": tp}, lay)) is not None:
            return opt
    return None


def _cp_degrees(q: Probe, layout: Layout) -> tuple[int, int, list[int] | None]:
    """CP degrees above the layout's: a range (ring: any degree) or, for Ulysses, the list that splits the heads."""
    hi = min(MAX_DEGREE, MAX_DEVICES // (layout.tp * layout.pp))
    if layout.cp_kind != "ulysses":
        return layout.cp + 1, hi, None
    heads = q.model.num_heads // layout.tp
    return layout.cp + 1, hi, [c for c in range(layout.cp + 1, min(hi, heads) + 1) if heads % c == 0]


def _smallest_cp(q: Probe, layout: Layout, batch: int | None = None) -> int | None:
    lo, hi, listed = _cp_degrees(q, layout)
    fits = lambda cp: q.plan(replace(layout, cp=cp), batch=batch).fits  # noqa: E731
    if listed is not None:
        return next((cp for cp in listed if q.valid(replace(layout, cp=cp)) and fits(cp)), None)
    if not q.valid(replace(layout, cp=lo)):
        return None
    return smallest(lo, hi, fits)


def _larger_cp(q: Probe) -> FitOption | None:
    cp = _smallest_cp(q, q.layout)
    return None if cp is None else q.option({"cp": cp}, replace(q.layout, cp=cp))


def narrower_kv(q: Probe) -> list[str]:
    """KV dtypes narrower than the one asked for: one byte (fp8 where the device has an fp8 rate,
    else int8), then int4."""
    one_byte = "fp8" if "fp8" in q.dev.spec.engine.peak else "int8"
    return [k for k in (one_byte, "int4") if BYTES_PER_ELEMENT[k] < q.prec.kv_bytes]


def _narrower_kv(q: Probe) -> FitOption | None:
    for kv in narrower_kv(q):
        if (opt := q.option({"kv_dtype": kv}, prec=replace(q.prec, kv=kv))) is not None:
            return opt
    return None


def _largest_batch(q: Probe, prec: Precision | None = None) -> int | None:
    return largest(1, q.batch - 1, lambda b: q.plan(prec=prec, batch=b).fits)


def _smaller_batch(q: Probe) -> FitOption | None:
    b = _largest_batch(q)
    return None if b is None else q.option({"batch": b}, batch=b)


def _narrower_kv_smaller_batch(q: Probe, batch_alone: FitOption | None) -> FitOption | None:
    best = batch_alone.change["batch"] if batch_alone is not None else 0
    for kv in narrower_kv(q):
        prec = replace(q.prec, kv=kv)
        b = _largest_batch(q, prec)
        if b is not None and b > best:
            return q.option({"kv_dtype": kv, "batch": b}, prec=prec, batch=b)
    return None


def _host_offload(q: Probe) -> FitOption | None:
    host = q.dev.spec.memory.host
    p = q.plan()
    over = p.needed_bytes - p.capacity_bytes
    if host is None or over > p.kv_cache_bytes or over > host.capacity:
        return None
    return FitOption({"kv_offload": f"host:{gib_ceil(over)}"}, p.capacity_bytes, q.layout.devices, over)


def _more_stages(q: Probe) -> FitOption | None:
    if q.one_device:
        return None
    hi = min(q.model.num_layers, MAX_DEGREE, MAX_DEVICES // (q.layout.tp * q.layout.cp))
    pp = smallest(q.layout.pp + 1, hi, lambda s: q.plan(replace(q.layout, pp=s)).fits)
    return None if pp is None else q.option({"pp": pp}, replace(q.layout, pp=pp))


def _widest_tp(q: Probe) -> Layout:
    top = min(tensor_parallel_limit(q.dev.spec), q.model.num_heads)
    tp = max((t for t in range(q.layout.tp, top + 1) if q.valid(replace(q.layout, tp=t))), default=q.layout.tp)
    return replace(q.layout, tp=tp)


def _last_resort(q: Probe) -> FitOption | None:
    """One request at the widest TP in the domain, then the fewest pipeline stages that fit, then
    (at the most stages) the smallest CP."""
    if q.one_device:
        return None
    lay = _widest_tp(q)
    if q.plan(lay, batch=1).fits:
        return q.option({"tp": lay.tp, "batch": 1}, lay, batch=1)
    top = min(q.model.num_layers, MAX_DEGREE, MAX_DEVICES // (lay.tp * lay.cp))
    pp = smallest(lay.pp + 1, top, lambda s: q.plan(replace(lay, pp=s), batch=1).fits)
    if pp is not None:
        return q.option({"tp": lay.tp, "pp": pp, "batch": 1}, replace(lay, pp=pp), batch=1)
    deep = replace(lay, pp=max(lay.pp, top))
    cp = _smallest_cp(q, deep, batch=1)
    if cp is None:
        return None
    return q.option({"tp": deep.tp, "pp": deep.pp, "cp": cp, "batch": 1}, replace(deep, cp=cp), batch=1)


def _why_nothing(q: Probe) -> str:
    lay = _widest_tp(q)
    stages = 1 if q.one_device else min(q.model.num_layers, MAX_DEVICES // (lay.tp * lay.cp))
    widest = replace(lay, pp=stages)
    w = weights_bytes(q.model, widest, q.prec)
    cap = q.plan().capacity_bytes
    single = " (its hwspec has no link between devices, so it runs on one)" if q.one_device else ""
    if w > cap:
        return (f"nothing fits on {q.dev.spec.id}: the weights alone need {size(w)} per device even at "
                f"--tp {widest.tp} --pp {widest.pp}, which has {size(cap)} usable{single}")
    one = q.plan(lay, batch=1)
    spread = "" if q.one_device else "CP, "
    return (f"no change tried fits (TP up to {lay.tp}, {spread}KV {', '.join(narrower_kv(q)) or q.prec.kv}, "
            f"batch 1, {'' if q.one_device else 'PP, '}host offload): one request at this context needs "
            f"{size(one.needed_bytes)} per device at --tp {lay.tp}, {size(cap)} usable{single}")


def advise(model: ModelSpec, dev: Device, layout: Layout, prec: Precision, batch: int, input_len: int,
           output_len: int) -> FitAdvice:
    """The changes that make a non-fitting what-if fit, least disruptive first (see the module)."""
    q = Probe(model, dev, layout, prec, batch, input_len, output_len)
    batch_alone = _smaller_batch(q)
    found = [_larger_tp(q), _larger_cp(q), _narrower_kv(q), batch_alone]
    found += [_narrower_kv_smaller_batch(q, batch_alone) if found[2] is None else None, _host_offload(q), _more_stages(q)]
    options = tuple(o for o in found if o is not None)
    if not options and (last := _last_resort(q)) is not None:
        options = (last,)
    cap = q.plan().capacity_bytes
    return FitAdvice(cap, layout.devices, options, "" if options else _why_nothing(q))
