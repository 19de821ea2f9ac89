"""Run a serving simulation: requests through routed replicas (one pool, or prefill and decode
pools with a KV handover), with per-request and per-step records."""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from ..errors import InfercastError
from ..phases import Layout
from .disagg import Handover, handover_bandwidth
from .events import EventLoop, check_bounds
from .pools import build_pool
from .routers import ROUTERS
from .scenario import Deployment
from .sessions import Sessions
from .traffic import Request, make_requests


class SimConfig(Deployment):
    """A deployment plus the run's bounds."""

    max_time_s: float = 1e7
    max_events: int = 50_000_000
    stretch: bool = True  # advance pure-decode stretches in one event (exact; off for step-by-step)


def make_config(**kw) -> SimConfig:
    """A SimConfig from flags; a bad value is an InfercastError naming the flag."""
    try:
        return SimConfig(**kw)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = {"disaggregation": "disagg"}.get(str(err["loc"][0]), str(err["loc"][0])) if err["loc"] else ""
        flag = "--" + name.replace("_", "-") if name else "config"
        raise InfercastError(f"{flag}: {err['msg']} (got {err.get('input')!r})") from None


@dataclass
class SimResult:
    requests: list[Request]
    steps: list[tuple]  # Flight.record: (replica, start_s, duration_s, n_steps, decode_tokens, prefill_tokens, flops, bytes, kv_blocks_used)
    makespan_s: float
    stop_reason: str
    kv_blocks_per_replica: int
    devices_per_replica: int = 1  # tp x pp x cp of the (last) pool
    peak_flops: float = 0.0  # per device, of the compute dtype
    mem_bandwidth: float = 0.0  # per device
    block_size: int = 16
    prefix_hits: int = 0
    prefix_misses: int = 0
    replicas: int = 1
    pools: list = field(default_factory=list)  # (role, replicas, devices, kv_blocks, peak_flops, mem_bandwidth) per replica
    handover_bytes: float = 0.0  # KV bytes per device sent from prefill to decode replicas


class Arrivals:
    """Requests enter the event loop one at a time, in arrival order (only the next one is
    scheduled), so the heap holds the active work, not the whole workload."""

    def __init__(self, loop: EventLoop, route):
        self.loop, self.route, self.routed = loop, route, 0

    def feed(self, requests: list[Request]) -> None:
        self._iter = iter(sorted(requests, key=attrgetter("arrival_s", "rid")))
        self._next()

    def _next(self) -> None:
        req = next(self._iter, None)
        if req is not None:  # the only chained arrival scheduled: no closure needed
            self._upcoming = req
            self.loop.at(req.arrival_s, self._chained, priority=1)

    def _chained(self) -> None:
        self._arrive(self._upcoming, True)

    def _arrive(self, req: Request, chained: bool) -> None:
        if chained:
            self._next()
        self.route(req, self.routed)
        self.routed += 1

    def add(self, req: Request) -> None:
        """A request issued during the run (closed loop)."""
        self.loop.at(req.arrival_s, lambda: self._arrive(req, False), priority=1)


def simulate(requests: list[Request], cfg: SimConfig, sessions: Sessions | None = None,
             progress=None) -> SimResult:
    """Run the requests through the deployment; `sessions` (sessions.Sessions) sends the requests
    that follow finished ones (later turns, closed-loop users). `progress(finished, total,
    simulated_s)` is called now and then (serving.progress.ProgressBar)."""
    if cfg.router not in ROUTERS:
        raise InfercastError(f"--router: '{cfg.router}' is not one of {', '.join(ROUTERS)}")
    check_bounds(cfg.max_time_s, cfg.max_events)
    loop, steps, requests = EventLoop(cfg.max_time_s, cfg.max_events), [], list(requests)
    finished = [0]
    total = sessions.total if sessions is not None else len(requests)

    def done(req: Request) -> None:
        finished[0] += 1
        if sessions is not None and len(requests) < total:
            nxt = sessions.after(req, loop.now, len(requests))
            if nxt is not None:
                requests.append(nxt)
                arrivals.add(nxt)

    def record(rep, fly) -> None:
        steps.append(fly.record(rep.idx))

    pools, handover = _build_pools(cfg, loop, done, record, sessions is not None)
    front = pools[0]
    arrivals = Arrivals(loop, lambda req, n: front.route(front.replicas, req, n).submit(req))
    arrivals.feed(requests)
    if sessions is not None:
        for req in sessions.opening(len(requests)):
            requests.append(req)
            arrivals.add(req)
    reason = loop.run(None if progress is None else lambda: progress(finished[0], total, loop.now))
    reps, last = [r for p in pools for r in p.replicas], pools[-1]
    return SimResult(requests, steps, loop.now, reason, last.kv_blocks, last.layout.devices,
                     _peak(last), last.dev.mem_bandwidth, cfg.block_size,
                     sum(r.cache.hits for r in reps), sum(r.cache.misses for r in reps), len(reps),
                     [(p.role, len(p.replicas), p.layout.devices, p.kv_blocks, _peak(p), p.dev.mem_bandwidth)
                      for p in pools],
                     handover.bytes_moved if handover else 0.0)


def _peak(pool) -> float:
    return pool.dev.peak(pool.replicas[0].steps.prec.compute)


def _layout(cfg: SimConfig, tp=None, pp=None, cp=None) -> Layout:
    return Layout(tp or cfg.tp, pp or cfg.pp, cp or cfg.cp, cfg.ep, cfg.ep_imbalance, cfg.cp_kind)


def _build_pools(cfg: SimConfig, loop: EventLoop, done, record, closed: bool):
    """(pools, arrivals going to the first; the KV handover between them or None)."""
    dis = cfg.disaggregation
    if dis is None:
        if cfg.replicas < 1:
            raise InfercastError(f"--replicas: must be >= 1 (got {cfg.replicas})")
        return [build_pool(cfg, "both", cfg.hw, _layout(cfg), cfg.replicas, 0, loop, done, record, closed)], None
    pl, dl = _layout(cfg, dis.prefill_tp, dis.prefill_pp, dis.prefill_cp), _layout(cfg, dis.decode_tp, dis.decode_pp, dis.decode_cp)
    phw, dhw = dis.prefill_hw or cfg.hw, dis.decode_hw or cfg.hw
    dec = build_pool(cfg, "decode", dhw, dl, dis.decode_replicas, dis.prefill_replicas, loop, done, record, closed)
    relay = []  # the handover needs the prefill pool's numbers; the prefill pool needs its callback
    pre = build_pool(cfg, "prefill", phw, pl, dis.prefill_replicas, 0, loop, lambda r: relay[0](r), record, closed)
    devices = dis.prefill_replicas * pl.devices + dis.decode_replicas * dl.devices
    if phw != dhw:  # different machines: the handover leaves the scale-up domain
        devices = 1 << 30
    hand = Handover(loop, dec, pre.kv_bytes_per_token, handover_bandwidth(cfg, pre.dev.spec, devices),
                    pre.replicas[0].steps.model.num_layers, dis.layerwise, done)
    relay.append(hand)
    return [pre, dec], hand


def run_scenario(sc, base_dir: Path | None = None, progress=None, **overrides) -> SimResult:
    """Simulate a Scenario (serving.scenario); keyword overrides replace deployment fields; a
    relative trace path is read from `base_dir` (the scenario file's folder)."""
    from .sources import ClassSampler, open_loop_requests, trace_requests

    dep = sc.deployment.model_dump()
    dep.update({k: v for k, v in overrides.items() if v is not None})
    cfg = make_config(**dep, max_time_s=sc.max_time_s)
    if sc.trace is not None:
        path = Path(sc.trace.path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return simulate(trace_requests(path, sc.trace.format), cfg, progress=progress)
    if sc.arrival.process == "closed_loop":
        sampler = ClassSampler(sc.classes, np.random.default_rng(sc.seed))
        return simulate([], cfg, Sessions(sampler, sc.arrival.think_time_s, sc.num_requests, sc.arrival.users),
                        progress)
    reqs, feed = open_loop_requests(sc)
    return simulate(reqs, cfg, feed, progress)


def quick(num_requests: int = 100, arrival: str = "poisson", rate: float = 1.0, input_len=1024, output_len=256,
          seed: int = 0, cv: float = 1.0, progress=None, **cfg) -> SimResult:
    """A simulation from flags: generated requests through `SimConfig(**cfg)`."""
    return simulate(make_requests(num_requests, arrival, rate, input_len, output_len, seed, cv), make_config(**cfg),
                    progress=progress)
