"""Pools of identical replicas: the step model, KV blocks, swap space and offload tier they share,
built from a deployment (one co-located pool, or prefill and decode pools when disaggregated)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..catalog import load_model_spec
from ..errors import InfercastError
from ..memory import activation_bytes, kv_bytes_per_token, weights_bytes
from ..phases import Layout, check_layout
from ..precision import resolve_precision
from ..roofline import Device
from ..step import device
from .events import Backlog, EventLoop
from .kv_blocks import BlockPool
from .kv_transfer import host_bandwidth, tier_bandwidth
from .replica import Replica, ReplicaOptions
from .routers import ROUTERS
from .step_model import StepModel


@dataclass
class Pool:
    role: str  # both | prefill | decode
    replicas: list[Replica]
    dev: Device
    layout: Layout
    kv_bytes_per_token: float  # per device
    kv_blocks: int  # per replica, device and offload tier together
    route: object  # router(replicas, request, n)


def kv_blocks(cfg, m, dev, layout, prec) -> int:
    """KV blocks on one replica's devices: usable memory less weights and one step's activations."""
    budget = dev.cal.memory_budget
    usable = dev.spec.memory.device.capacity * budget.usable_fraction - budget.reserved
    free = usable - weights_bytes(m, layout, prec) - activation_bytes(m, cfg.max_batched_tokens, cfg.max_batch, layout, prec)
    per_block = kv_bytes_per_token(m, layout, prec) * cfg.block_size
    if free < per_block:
        raise InfercastError(f"does not fit: {m.id} on {dev.spec.id} {layout.name()} leaves no memory for the KV cache")
    return int(free // per_block)


def swap_space(cfg, per_block: float, dev: Device) -> tuple[int, float]:
    """(KV blocks of host swap space, seconds to move one block each way) for swap preemption."""
    if cfg.preemption != "swap":
        return 0, 0.0
    host = dev.spec.memory.host
    space = cfg.swap_space_gib * 2**30 if host is None else min(cfg.swap_space_gib * 2**30, host.capacity)
    return int(space // per_block), per_block / host_bandwidth(dev.spec)  # devices move their shards in parallel


def build_pool(cfg, role: str, hw: str, layout: Layout, count: int, first_idx: int, loop: EventLoop, on_done, on_step,
               closed_loop: bool, backlog: Backlog | None = None) -> Pool:
    m, dev = load_model_spec(cfg.model), device(hw)
    check_layout(m, layout)
    prec = resolve_precision(dev.spec, cfg.dtype, cfg.kv_dtype)
    per_token = kv_bytes_per_token(m, layout, prec)
    per_block = per_token * cfg.block_size
    blocks = kv_blocks(cfg, m, dev, layout, prec)
    swap_blocks, swap_s = swap_space(cfg, per_block, dev)
    opts = ReplicaOptions(cfg.max_batch, cfg.max_batched_tokens, role, cfg.stretch, not closed_loop,
                          cfg.prefix_caching, swap_blocks, swap_s)
    total = blocks
    if cfg.kv_offload is not None:
        off = cfg.kv_offload
        total += int(off.capacity // per_block)
        opts = replace(opts, device_blocks=blocks, tier=off.tier,
                       tier_s_per_block=per_block / tier_bandwidth(dev.spec, off.tier))
    steps = StepModel(m, dev, layout, prec)
    reps = [Replica(first_idx + i, loop, steps, BlockPool(total, cfg.block_size), opts, on_done, on_step, backlog)
            for i in range(count)]
    router = ROUTERS[cfg.router if role != "decode" else "least_outstanding"]()
    return Pool(role, reps, dev, layout, per_token, total, router)
