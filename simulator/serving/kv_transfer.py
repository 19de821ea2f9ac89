"""KV cache movement off the device: swap to host memory, offload tiers, prefill-to-decode handover.

Transfers run at the link's per-direction bandwidth times TRANSFER_EFFICIENCY: 55.43 GB/s measured
host-to-device on an H200 over PCIe Gen5 x16 against 64 GB/s theoretical (0.87; the measurement
cited in hwspecs/h100-sxm.yaml, source mle_net)."""

from __future__ import annotations

from ..errors import InfercastError
from ..hwspec import HardwareSpec

TRANSFER_EFFICIENCY = 0.87


def host_bandwidth(spec: HardwareSpec) -> float:
    """Bytes/s one device moves to or from host memory: its host link, else the host tier's bandwidth."""
    if spec.links.host is not None:
        return spec.links.host.bandwidth_per_dir * TRANSFER_EFFICIENCY
    if spec.memory.host is not None:
        return spec.memory.host.bandwidth * TRANSFER_EFFICIENCY
    raise InfercastError(f"{spec.id}: no host link or host memory in the hardware spec; swap and offload need one")


def tier_bandwidth(spec: HardwareSpec, tier: str) -> float:
    """Bytes/s one device reads KV from an offload tier ('host' or 'nvme'): the slower of the tier
    and the host link it crosses."""
    mem = getattr(spec.memory, tier, None)
    if mem is None:
        raise InfercastError(f"--kv-offload: {spec.id} has no '{tier}' memory tier in its hardware spec")
    return min(mem.bandwidth * TRANSFER_EFFICIENCY, host_bandwidth(spec))
