"""Collective communication time on a device's topology (latency-bandwidth, Hockney's alpha-beta).

A collective over `group` devices inside one scale-up domain (NVLink/NVSwitch, Infinity Fabric,
ICI) runs on the scale-up links (on a fully connected mesh such as MI300X's Infinity Fabric, a
group of n devices uses n-1 of each device's peer links, so small groups see a fraction of it); a group larger than the domain runs hierarchically: reduce-scatter
inside each domain, the cross-domain part on the scale-out NICs (one per device, rail-aligned), then
all-gather inside the domain (NCCL's and MSCCL's two-level schedule). Devices without a scale-up
fabric exchange through the host link (PCIe). A spec with no link at all (a phone, a Mac, a CPU)
runs on one device: several are refused (check_links), never costed at memory speed.

Traffic per device (Patarasuk & Yuan 2009; NCCL's "bus bandwidth" definitions), S the payload:
- ring all-reduce 2 (n-1)/n S in 2 (n-1) steps; all-gather and reduce-scatter (n-1)/n S in n-1 steps
  (S = the gathered size); all-to-all (n-1)/n S (S = what one device sends, pairwise exchange);
  send/recv S in one step.
- one-shot all-reduce (vLLM's and TensorRT-LLM's custom all-reduce for small messages inside a
  fully connected domain): every device reads the other n-1 buffers, (n-1) S in one step.
- tree all-reduce across domains (NCCL's double binary tree): 2 S in 2 log2(n) steps.
The engine picks the fastest algorithm that applies ("auto", as NCCL and the custom kernels do).
Time = latency + steps x step latency + traffic / (efficiency x link bandwidth per direction).
"""

from __future__ import annotations

import math

import numpy as np

from .calibration import CollectiveCal
from .errors import InfercastError
from .hwspec import HardwareSpec

TRAFFIC = {
    "all_reduce": lambda n: 2.0 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "send_recv": lambda n: 1.0,
}
STEPS = {  # latency-bound steps of the ring (pairwise) schedule
    "all_reduce": lambda n: 2 * (n - 1),
    "all_gather": lambda n: n - 1,
    "reduce_scatter": lambda n: n - 1,
    "all_to_all": lambda n: n - 1,
    "send_recv": lambda n: 1,
}


def domain_size(spec: HardwareSpec) -> int:
    """Devices that reach each other over the scale-up fabric (1 without one)."""
    up = spec.links.scaleup
    if up is None:
        return 1
    return up.domain_size or 1 << 30


def link_bandwidth(spec: HardwareSpec, group: int) -> float:
    """Per-direction bandwidth between `group` devices: scale-up inside its domain, else scale-out,
    else the host link (PCIe-only cards exchange through the host)."""
    up, out, host = spec.links.scaleup, spec.links.scaleout, spec.links.host
    if up is not None and group <= domain_size(spec):
        if up.peer_bandwidth_per_dir is not None:  # a mesh: a group of n uses n-1 of a device's links
            return min(up.bandwidth_per_dir, (group - 1) * up.peer_bandwidth_per_dir)
        return up.bandwidth_per_dir
    if out is not None:
        return out.bandwidth_per_dir
    if host is not None:
        return host.bandwidth_per_dir
    raise InfercastError(f"{spec.id} has no link between devices (its hwspec has no `links:` block: scaleup, "
                         f"scaleout or host), so {group:,} of them cannot exchange data; use one device")


def has_links(spec: HardwareSpec) -> bool:
    """Whether devices of `spec` can talk to each other at all (a scale-up, scale-out or host link)."""
    return any(link is not None for link in (spec.links.scaleup, spec.links.scaleout, spec.links.host))


def check_links(spec: HardwareSpec, layout) -> None:
    """A layout of several devices (phases.Layout) needs a link between them: refused in one line
    naming the first parallel flag above 1 and the hwspec, where the spec has none (a phone, a Mac,
    a CPU socket: their specs carry no interconnect to cost the traffic on)."""
    if layout.devices <= 1 or has_links(spec):
        return
    flag, degree = next((f, d) for f, d in (("--tp", layout.tp), ("--pp", layout.pp), ("--cp", layout.cp)) if d > 1)
    raise InfercastError(f"{flag} {degree}: needs a link between devices, and {spec.id}'s hwspec has none (no "
                         "`links:` block: scaleup, scaleout or host); use one device, or add the link to a copy of "
                         "the spec")


def _min(a, b):
    return np.minimum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else min(a, b)


def flat_time(kind: str, n: int, size, bw: float, cal: CollectiveCal, one_shot: bool = False):
    """One level: `kind` over n devices on links of `bw` bytes/s per direction; an all-reduce takes
    the faster of ring and (where `one_shot`) one-shot. `size` may be an array of payloads."""
    if n <= 1:
        return 0.0
    rate = cal.efficiency * bw
    t = cal.latency + STEPS[kind](n) * cal.step_latency + TRAFFIC[kind](n) * size / rate
    if kind == "all_reduce" and one_shot:
        t = _min(t, cal.latency + cal.step_latency + (n - 1) * size / rate)
    return t


def tree_all_reduce_time(n: int, size, bw: float, cal: CollectiveCal):
    if n <= 1:
        return 0.0
    return cal.latency + 2 * math.ceil(math.log2(n)) * cal.step_latency + 2.0 * size / (cal.efficiency * bw)


def collective_seconds(kind: str, group: int, size: float, spec: HardwareSpec, cal: CollectiveCal,
                       span: int = 0) -> float:
    """Seconds of one `kind` collective of `size` bytes over `group` devices of `spec`, spread over
    `span` devices (a strided group such as the context-parallel ranks of TP groups; 0: contiguous).
    `size` may be an array of payloads (zero where nothing moves)."""
    if isinstance(size, np.ndarray):
        return np.where(size > 0, _seconds(kind, group, size, spec, cal, span), 0.0)
    return _seconds(kind, group, size, spec, cal, span) if size > 0 else 0.0


def _seconds(kind: str, group: int, size, spec: HardwareSpec, cal: CollectiveCal, span: int):
    if group <= 1:
        return 0.0
    d, span = domain_size(spec), max(span, group)
    if span <= d or d <= 1:
        return flat_time(kind, group, size, link_bandwidth(spec, group), cal, one_shot=span <= d)
    per_domain = max(1, group * d // span)  # ranks of the group inside one domain
    out = link_bandwidth(spec, span)
    if per_domain == 1:
        return flat_time(kind, group, size, out, cal)
    return _hierarchical(kind, group, per_domain, size, link_bandwidth(spec, per_domain), out, cal)


def _hierarchical(kind: str, n: int, d: int, size, up: float, out: float, cal: CollectiveCal) -> float:
    """Group of n devices, d per domain (m = ceil(n / d) domains); `up` and `out` bytes/s per direction."""
    m = -(-n // d)
    if kind == "send_recv":
        return flat_time(kind, 2, size, out, cal)
    if kind == "all_reduce":  # RS inside, all-reduce of a 1/d shard across, AG inside
        inner = flat_time("reduce_scatter", d, size, up, cal) + flat_time("all_gather", d, size, up, cal)
        shard = size / d
        return inner + _min(flat_time("all_reduce", m, shard, out, cal), tree_all_reduce_time(m, shard, out, cal))
    if kind in ("all_gather", "reduce_scatter"):  # the cross-domain part moves (m-1)/m of it per device
        return flat_time(kind, d, size / m, up, cal) + flat_time(kind, m, size / d, out, cal)
    # all-to-all: (m-1)/m of each device's data leaves its domain over its NIC while the part for
    # the other d-1 devices of its domain crosses the scale-up links (both at once)
    inside, across = flat_time("all_to_all", d, size / m, up, cal), flat_time("all_to_all", m, size, out, cal)
    return np.maximum(inside, across) if isinstance(size, np.ndarray) else max(inside, across)


def collective_time(op, spec: HardwareSpec, cal: CollectiveCal) -> float:
    return collective_seconds(op.collective, op.group, op.comm_bytes, spec, cal, op.span)
