"""Collective communication time over a device's links (ring algorithms, as NCCL uses).

Ring all-reduce moves 2 (n-1)/n of the payload through each device's link, all-gather (n-1)/n
(Patarasuk & Yuan 2009; NCCL's "bus bandwidth" definition); a point-to-point send moves it once.
Time = latency + traffic / (efficiency x link bandwidth per direction).
"""

from __future__ import annotations

from .calibration import CollectiveCal
from .hwspec import HardwareSpec

TRAFFIC = {
    "all_reduce": lambda n: 2.0 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "send_recv": lambda n: 1.0,
}


def link_bandwidth(spec: HardwareSpec, group: int) -> float:
    """Per-direction bandwidth between `group` devices: scale-up inside its domain, else scale-out,
    else the host link (PCIe-only cards exchange through the host)."""
    up, out, host = spec.links.scaleup, spec.links.scaleout, spec.links.host
    if up is not None and (up.domain_size is None or group <= up.domain_size):
        return up.bandwidth_per_dir
    if out is not None:
        return out.bandwidth_per_dir
    if host is not None:
        return host.bandwidth_per_dir
    return spec.memory.device.bandwidth  # single-package devices (SoC): through shared memory


def collective_time(op, spec: HardwareSpec, cal: CollectiveCal) -> float:
    if op.group <= 1 or op.comm_bytes <= 0:
        return 0.0
    traffic = TRAFFIC[op.collective](op.group) * op.comm_bytes
    return cal.latency + traffic / (cal.efficiency * link_bandwidth(spec, op.group))
