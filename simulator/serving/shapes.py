"""What a run simulated, for its output: the deployment's pools (one co-located, or prefill then
decode) and the `config` block of `simulate` JSON and the table's title."""

from __future__ import annotations

from typing import NamedTuple

from .scenario import Deployment, Scenario


class PoolShape(NamedTuple):
    role: str  # both | prefill | decode
    hw: str
    tp: int
    pp: int
    cp: int
    ep: int
    replicas: int

    @property
    def devices(self) -> int:
        return self.replicas * self.tp * self.pp * self.cp

    @property
    def layout(self) -> str:
        return " ".join([f"TP{self.tp}"] + [f"{k}{v}" for k, v in (("PP", self.pp), ("CP", self.cp), ("EP", self.ep))
                                            if v > 1])


def pool_shapes(dep: Deployment) -> list[PoolShape]:
    """The deployment's pools: one co-located, or prefill then decode."""
    dis = dep.disaggregation
    if dis is None:
        return [PoolShape("both", dep.hw, dep.tp, dep.pp, dep.cp, dep.ep, dep.replicas)]
    return [PoolShape(role, getattr(dis, f"{role}_hw") or dep.hw, getattr(dis, f"{role}_tp") or dep.tp,
                      getattr(dis, f"{role}_pp") or dep.pp, getattr(dis, f"{role}_cp") or dep.cp, dep.ep,
                      getattr(dis, f"{role}_replicas")) for role in ("prefill", "decode")]


def _precision(hw: str, dep: Deployment) -> dict:
    """The dtypes a pool runs in, resolved as the simulation resolves them (KV as the weights unless
    given; GEMMs in fp8/int8 where the weights are and the device has the rate)."""
    from ..catalog import load_hardware
    from ..precision import resolve_precision

    prec = resolve_precision(load_hardware(hw), dep.dtype, dep.kv_dtype)
    return {"kv_dtype": prec.kv, "compute_dtype": prec.compute}


def run_config(sc: Scenario, requests: int) -> dict:
    """What a run simulated, for its output's `config` block: model, each pool's hardware, layout
    and replicas, the traffic, the scheduler settings, calibration status and infercast's version."""
    from ..about import infercast_version
    from ..step import device

    dep, a = sc.deployment, sc.arrival
    pools = [{"role": p.role, "hw": p.hw, "layout": p.layout, "tp": p.tp, "pp": p.pp, "cp": p.cp, "ep": p.ep,
              "replicas": p.replicas, "devices": p.devices, **_precision(p.hw, dep),
              "calibrated": bool(device(p.hw).calibrated)}
             for p in pool_shapes(dep)]
    if sc.trace is not None:
        arrival = {"process": "trace", "trace": sc.trace.path, "trace_format": sc.trace.format}
    else:
        arrival = {"process": a.process, "rate": a.rate, "cv": a.cv if a.process == "gamma" else None,
                   "users": a.users, "think_time_s": a.think_time_s}
    dis, off = dep.disaggregation, dep.kv_offload
    return {
        "scenario": sc.name, "model": dep.model, "dtype": dep.dtype, "kv_dtype": pools[0]["kv_dtype"], "pools": pools,
        "replicas": sum(p["replicas"] for p in pools), "devices": sum(p["devices"] for p in pools),
        "disaggregation": None if dis is None else {
            "prefill_replicas": dis.prefill_replicas, "decode_replicas": dis.decode_replicas,
            "link_bandwidth": dis.link_bandwidth, "layerwise": dis.layerwise},
        "arrival": arrival, "requests": requests, "seed": None if sc.trace is not None else sc.seed,
        "max_batch": dep.max_batch, "max_batched_tokens": dep.max_batched_tokens, "block_size": dep.block_size,
        "router": dep.router, "preemption": dep.preemption, "swap_space_gib": dep.swap_space_gib,
        "prefix_caching": dep.prefix_caching,
        "kv_offload": None if off is None else {"tier": off.tier, "capacity_bytes": off.capacity},
        "slo": {"ttft_s": sc.slo.ttft_s, "tpot_s": sc.slo.tpot_s}, "max_time_s": sc.max_time_s,
        "calibrated": all(p["calibrated"] for p in pools), "infercast_version": infercast_version(),
    }
