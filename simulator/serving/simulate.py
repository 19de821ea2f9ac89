"""Run a serving simulation: requests through routed replicas (one pool, or prefill and decode
pools with a KV handover), with per-request and per-step records.

Overload. With open-loop arrivals (poisson, gamma, constant, a trace: `simulate(..., open_loop=True)`;
not offline, a batch by design, nor closed loop, which limits itself) a deployment that serves
fewer requests per second than arrive builds a queue without end, and its latencies measure the
run's length, not the deployment. The run watches the admission backlog: requests that reached a
replica and wait for their first admission to a batch, over all replicas, KV handovers in flight
included (events.Backlog, O(1) per arrival and admission). Its onset is when it last went from
empty to non-empty before its peak; the requests that arrived before it are the stable part.
- At a bound (SimConfig.overload_backlog; by default max(256, 4 x replicas x max_batch)) the run
  stops taking requests: no more arrive (the rest are never simulated, nor given any state), and
  those that came are served. The deployment stays saturated until its queues drain, so the
  served rate measures its capacity, and the run's cost is bounded whatever the requested count.
  stop_reason is "overloaded"; SimResult.requests holds the requests that arrived.
- A run that ends before the bound is judged when it ends: overloaded if the backlog was still
  in its largest busy period at the last arrival, the queue waits grew (the last quarter of the
  arrivals, by the median, waited for admission more than twice as long as the first quarter, and
  longer than they took to be served or than all the arrivals took to come) and arrivals came
  faster than requests finished while that busy period lasted (the deployment's measured
  service rate).
Either way SimResult.overload_onset_s is the backlog's onset, and metrics.summary gives the
latency of the stable part only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

import numpy as np
from pydantic import Field, ValidationError

from ..collectives import domain_size
from ..errors import InfercastError, bad_input
from ..human import count
from ..phases import Layout
from .disagg import Handover, handover_bandwidth
from .events import Backlog, EventLoop, check_bounds
from .pools import build_pool
from .routers import ROUTERS
from .scenario import Deployment
from .sessions import Sessions
from .traffic import Request, make_requests


MAX_PREFILL_STEPS = 2_000_000  # engine steps a run's prompts may need: about 40 s of simulation at the least


class SimConfig(Deployment):
    """A deployment plus the run's bounds."""

    max_time_s: float = 1e7
    max_events: int = 50_000_000
    stretch: bool = True  # advance pure-decode stretches in one event (exact; off for step-by-step)
    # open-loop runs stop when this many requests wait for admission (None: max(256, 4 x replicas
    # x max_batch); 0: never, and no judgement after the run)
    overload_backlog: int | None = Field(None, ge=0)


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
    requested: int = -1  # requests the run was asked to simulate (-1: len(requests))
    overload_onset_s: float = math.nan  # overloaded runs: when the admission backlog began
    reject_reasons: dict = field(default_factory=dict)  # {reason: requests rejected for it}
    max_time_s: float = math.inf  # the run's time bound
    next_event_s: float = math.nan  # stopped at max_time: when the next event (a step's or transfer's end) was due


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

    def stop(self) -> None:
        """No more arrivals: those still to come (one scheduled at most) go nowhere."""
        self._iter = iter(())
        self.route = lambda req, n: None


def simulate(requests: list[Request], cfg: SimConfig, sessions: Sessions | None = None,
             progress=None, open_loop: bool = False) -> SimResult:
    """Run the requests through the deployment; `sessions` (sessions.Sessions) sends the requests
    that follow finished ones (later turns, closed-loop users). `progress(finished, total,
    simulated_s)` is called now and then (serving.progress.ProgressBar). `open_loop`: the arrivals
    do not wait for the deployment, so the run watches for overload (see the module docstring)."""
    if cfg.router not in ROUTERS:
        raise InfercastError(f"--router: '{cfg.router}' is not one of {', '.join(ROUTERS)}")
    check_bounds(cfg.max_time_s, cfg.max_events)
    check_prefill_work(sum(r.input_len for r in requests), cfg.max_batched_tokens, "max_batched_tokens")
    loop, steps, requests = EventLoop(cfg.max_time_s, cfg.max_events), [], list(requests)
    finished, backlog = [0], Backlog(loop)
    total = sessions.total if sessions is not None else len(requests)

    def done(req: Request) -> None:
        finished[0] += 1
        if sessions is not None and len(requests) < total and backlog.full_s is None:
            nxt = sessions.after(req, loop.now, len(requests))
            if nxt is not None:
                requests.append(nxt)
                arrivals.add(nxt)

    def record(rep, fly) -> None:
        steps.append(fly.record(rep.idx))

    pools, handover = _build_pools(cfg, loop, done, record, sessions is not None, backlog)
    front, reps = pools[0], [r for p in pools for r in p.replicas]
    arrivals = Arrivals(loop, lambda req, n: front.route(front.replicas, req, n).submit(req))
    watching = open_loop and cfg.overload_backlog != 0
    if watching:  # at the bound, no more arrivals: those that came are served
        backlog.bound = cfg.overload_backlog or max(256, 4 * len(reps) * cfg.max_batch)
        backlog.on_full = arrivals.stop
    arrivals.feed(requests)
    if sessions is not None:
        for req in sessions.opening(len(requests)):
            requests.append(req)
            arrivals.add(req)
    reason = loop.run(None if progress is None else lambda: progress(finished[0], total, loop.now))
    requests, reason, onset = _judge(requests, reason, backlog, watching)
    last = pools[-1]
    return SimResult(requests, steps, loop.now, reason, last.kv_blocks, last.layout.devices,
                     _peak(last), last.dev.mem_bandwidth, cfg.block_size,
                     sum(r.cache.hits for r in reps), sum(r.cache.misses for r in reps), len(reps),
                     [(p.role, len(p.replicas), p.layout.devices, p.kv_blocks, _peak(p), p.dev.mem_bandwidth)
                      for p in pools],
                     handover.bytes_moved if handover else 0.0, total, onset, dict(backlog.rejects), cfg.max_time_s,
                     loop.next_s)


def _judge(requests: list[Request], reason: str, backlog: Backlog, watching: bool):
    """(requests, stop reason, overload onset or NaN): a run stopped at the backlog bound keeps the
    requests that arrived; one that ran to its end is judged on its record (module docstring)."""
    if backlog.full_s is not None:
        return [r for r in requests if r.replica >= 0], "overloaded", backlog.peak_onset_s
    if watching and reason == "idle" and grew_overloaded(requests, backlog):
        return requests, "overloaded", backlog.peak_onset_s
    return requests, reason, math.nan


def grew_overloaded(requests: list[Request], backlog: Backlog, min_finished: int = 8) -> bool:
    """Whether a run that served every request was overloaded: the backlog's largest busy period
    lasted past the last arrival, the waits grew (the last quarter of the finished requests, by
    arrival, waited for admission more than twice as long as the first quarter, and longer than
    they took to be served or than all the arrivals took to come: a short run's burst that a
    batch takes whole is served slowly, yet its queue outlasts its arrivals many times over) and
    arrivals came faster than requests finished during that period."""
    last = max((r.arrival_s for r in requests), default=math.nan)
    on, off = backlog.peak_onset_s, backlog.peak_end_s
    if not on <= last or off <= last:  # the backlog had emptied before the arrivals ended (or never was)
        return False
    fin = [r for r in requests if r.finish_s is not None]
    if len(fin) < min_finished:
        return False
    a, q, f = (np.fromiter(map(attrgetter(k), fin), np.float64, len(fin))
               for k in ("arrival_s", "scheduled_s", "finish_s"))
    order = np.argsort(a, kind="stable")
    wait, service, k = (q - a)[order], (f - q)[order], len(fin) // 4
    late_wait, span = float(np.median(wait[-k:])), float(a.max() - a.min())
    if not (late_wait > min(float(np.median(service[-k:])), span) and late_wait > 2 * float(np.median(wait[:k]))):
        return False
    off = off if math.isfinite(off) else float(f.max())
    served = np.count_nonzero((f >= on) & (f <= off)) / (off - on) if off > on else math.nan
    return offered_rate([r.arrival_s for r in requests]) > served


def check_prefill_work(prompt_tokens: float, max_batched_tokens: int, where: str) -> None:
    """Refuse a run whose prompts need more than MAX_PREFILL_STEPS engine steps however they are
    batched (a step takes at most max_batched_tokens of prompt), naming the smallest
    max_batched_tokens that fits: such a run would take minutes to simulate, not seconds."""
    floor = prompt_tokens / max_batched_tokens
    if floor > MAX_PREFILL_STEPS:
        fits = math.ceil(prompt_tokens / MAX_PREFILL_STEPS)
        raise bad_input(where, f"{count(prompt_tokens)} prompt tokens in steps of at most {count(max_batched_tokens)} "
                               f"take at least {count(math.ceil(floor))} engine steps, more than a run may take "
                               f"({count(MAX_PREFILL_STEPS)}): raise max_batched_tokens to at least {count(fits)}, "
                               f"or ask for fewer or shorter requests", max_batched_tokens)


def offered_rate(arrivals) -> float:
    """Requests per second of the arrivals: (n - 1) over their span (NaN when they span no time)."""
    a = np.asarray(arrivals, dtype=np.float64)
    span = float(a.max() - a.min()) if len(a) else 0.0
    return (len(a) - 1) / span if span > 0 else math.nan


def _peak(pool) -> float:
    return pool.dev.peak(pool.replicas[0].steps.prec.compute)


def _layout(cfg: SimConfig, tp=None, pp=None, cp=None) -> Layout:
    return Layout(tp or cfg.tp, pp or cfg.pp, cp or cfg.cp, cfg.ep, cfg.ep_imbalance, cfg.cp_kind)


def _build_pools(cfg: SimConfig, loop: EventLoop, done, record, closed: bool, backlog: Backlog):
    """(pools, arrivals going to the first; the KV handover between them or None)."""
    dis = cfg.disaggregation
    if dis is None:
        if cfg.replicas < 1:
            raise InfercastError(f"--replicas: must be >= 1 (got {cfg.replicas})")
        pool = build_pool(cfg, "both", cfg.hw, _layout(cfg), cfg.replicas, 0, loop, done, record, closed, backlog)
        return [pool], None
    pl, dl = _layout(cfg, dis.prefill_tp, dis.prefill_pp, dis.prefill_cp), _layout(cfg, dis.decode_tp, dis.decode_pp, dis.decode_cp)
    phw, dhw = dis.prefill_hw or cfg.hw, dis.decode_hw or cfg.hw
    dec = build_pool(cfg, "decode", dhw, dl, dis.decode_replicas, dis.prefill_replicas, loop, done, record, closed,
                     backlog)
    relay = []  # the handover needs the prefill pool's numbers; the prefill pool needs its callback
    pre = build_pool(cfg, "prefill", phw, pl, dis.prefill_replicas, 0, loop, lambda r: relay[0](r), record, closed,
                     backlog)
    devices = dis.prefill_replicas * pl.devices + dis.decode_replicas * dl.devices
    if phw != dhw:  # different machines: the handover leaves the scale-up domain
        devices = max(devices, domain_size(pre.dev.spec) + 1)
    hand = Handover(loop, dec, pre.kv_bytes_per_token, handover_bandwidth(cfg, pre.dev.spec, devices),
                    pre.replicas[0].steps.model.num_layers, dis.layerwise, done, backlog)
    relay.append(hand)
    return [pre, dec], hand


def run_scenario(sc, base_dir: Path | None = None, progress=None, **overrides) -> SimResult:
    """Simulate a Scenario (serving.scenario); keyword overrides replace deployment fields; a
    relative trace path is read from `base_dir` (the scenario file's folder)."""
    from .sources import ClassSampler, open_loop_requests, scenario_trace

    dep = sc.deployment.model_dump()
    dep.update({k: v for k, v in overrides.items() if v is not None})
    cfg = make_config(**dep, max_time_s=sc.max_time_s)
    if sc.trace is not None:
        return simulate(scenario_trace(sc, base_dir), cfg, progress=progress, open_loop=True)
    if sc.arrival.process == "closed_loop":
        sampler = ClassSampler(sc.classes, np.random.default_rng(sc.seed))
        return simulate([], cfg, Sessions(sampler, sc.arrival.think_time_s, sc.num_requests, sc.arrival.users),
                        progress)
    reqs, feed = open_loop_requests(sc)
    return simulate(reqs, cfg, feed, progress, open_loop=sc.arrival.process != "offline")


def quick(num_requests: int = 100, arrival: str = "poisson", rate: float = 1.0, input_len=1024, output_len=256,
          seed: int = 0, cv: float = 1.0, progress=None, **cfg) -> SimResult:
    """A simulation from flags: generated requests through `SimConfig(**cfg)`."""
    return simulate(make_requests(num_requests, arrival, rate, input_len, output_len, seed, cv), make_config(**cfg),
                    progress=progress, open_loop=arrival != "offline")
