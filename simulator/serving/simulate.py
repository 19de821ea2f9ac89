"""Run a serving simulation: requests through routed replicas, with per-request and per-step records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from ..catalog import load_model_spec
from ..errors import InfercastError
from ..memory import activation_bytes, kv_bytes_per_token, weights_bytes
from ..phases import Layout, check_layout
from ..precision import resolve_precision
from ..step import device
from .events import EventLoop, check_bounds
from .kv_blocks import BlockPool
from .kv_transfer import host_bandwidth
from .replica import Replica
from .routers import ROUTERS
from .scenario import Deployment
from .step_model import StepModel
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
        flag = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "config"
        raise InfercastError(f"{flag}: {err['msg']} (got {err.get('input')!r})") from None


def kv_blocks(cfg: SimConfig, m, dev, layout, prec) -> int:
    """KV blocks on one replica: usable memory less weights and one step's activations."""
    budget = dev.cal.memory_budget
    usable = dev.spec.memory.device.capacity * budget.usable_fraction - budget.reserved
    free = usable - weights_bytes(m, layout, prec) - activation_bytes(m, cfg.max_batched_tokens, cfg.max_batch, layout, prec)
    per_block = kv_bytes_per_token(m, layout, prec) * cfg.block_size
    if free < per_block:
        raise InfercastError(f"does not fit: {m.id} on {dev.spec.id} TP{layout.tp} leaves no memory for the KV cache")
    return int(free // per_block)


@dataclass
class SimResult:
    requests: list[Request]
    steps: list[tuple]  # Flight.record: (replica, start_s, duration_s, n_steps, decode_tokens, prefill_tokens, flops, bytes, kv_blocks_used)
    makespan_s: float
    stop_reason: str
    kv_blocks_per_replica: int
    devices_per_replica: int = 1
    peak_flops: float = 0.0  # per device, of the compute dtype
    mem_bandwidth: float = 0.0  # per device
    block_size: int = 16
    prefix_hits: int = 0
    prefix_misses: int = 0


@dataclass
class ClosedLoop:
    """`users` users each send a request, wait for the reply, think, and send the next, until
    `total` requests were sent."""

    users: int
    think_time_s: float
    total: int
    sampler: object  # sources.ClassSampler


class Arrivals:
    """Requests enter the event loop one at a time, in arrival order (only the next one is
    scheduled), so the heap holds the active work, not the whole workload."""

    def __init__(self, loop: EventLoop, route):
        self.loop, self.route, self.routed = loop, route, 0
        self.queue: list[tuple[float, int, Request]] = []  # closed-loop requests issued, not arrived

    def feed(self, requests: list[Request]) -> None:
        self._iter = iter(sorted(requests, key=lambda r: (r.arrival_s, r.rid)))
        self._next()

    def _next(self) -> None:
        req = next(self._iter, None)
        if req is not None:
            self.loop.at(req.arrival_s, lambda: self._arrive(req, True), priority=1)

    def _arrive(self, req: Request, chained: bool) -> None:
        if chained:
            self._next()
        self.route(req, self.routed)
        self.routed += 1

    def add(self, req: Request) -> None:
        """A request issued during the run (closed loop)."""
        self.loop.at(req.arrival_s, lambda: self._arrive(req, False), priority=1)


def simulate(requests: list[Request], cfg: SimConfig, closed_loop: ClosedLoop | None = None) -> SimResult:
    if cfg.replicas < 1:
        raise InfercastError(f"--replicas: must be >= 1 (got {cfg.replicas})")
    if cfg.router not in ROUTERS:
        raise InfercastError(f"--router: '{cfg.router}' is not one of {', '.join(ROUTERS)}")
    check_bounds(cfg.max_time_s, cfg.max_events)
    m, dev, layout = load_model_spec(cfg.model), device(cfg.hw), Layout(cfg.tp)
    check_layout(m, layout)
    prec = resolve_precision(dev.spec, cfg.dtype, cfg.kv_dtype)
    blocks = kv_blocks(cfg, m, dev, layout, prec)
    loop, steps_model, steps = EventLoop(cfg.max_time_s, cfg.max_events), StepModel(m, dev, layout, prec), []
    requests = list(requests)
    router = ROUTERS[cfg.router]()
    arrivals = Arrivals(loop, lambda req, n: router(reps, req, n).submit(req))

    def done(req: Request) -> None:
        if closed_loop is not None and len(requests) < closed_loop.total:
            issue(req.user, loop.now + closed_loop.think_time_s)

    def issue(user: int, t: float) -> None:
        i, o, p, pl = closed_loop.sampler.draw(1)[0]
        req = Request(len(requests), t, i, o, prefix_id=p, prefix_len=pl, user=user)
        requests.append(req)
        arrivals.add(req)

    swap_blocks, swap_s = swap_space(cfg, m, dev, layout, prec)
    reps = [Replica(i, loop, steps_model, BlockPool(blocks, cfg.block_size), cfg.max_batch, cfg.max_batched_tokens,
                    done, lambda rep, fly: steps.append(fly.record(rep.idx)), stretch=cfg.stretch,
                    through_finishes=closed_loop is None, prefix_caching=cfg.prefix_caching,
                    swap_blocks=swap_blocks, swap_s_per_block=swap_s) for i in range(cfg.replicas)]
    arrivals.feed(requests)
    if closed_loop is not None:
        for u in range(min(closed_loop.users, closed_loop.total)):
            issue(u, 0.0)
    reason = loop.run()
    return SimResult(requests, steps, loop.now, reason, blocks, layout.tp, dev.peak(prec.compute),
                     dev.mem_bandwidth, cfg.block_size, sum(r.cache.hits for r in reps),
                     sum(r.cache.misses for r in reps))


def swap_space(cfg: SimConfig, m, dev, layout, prec) -> tuple[int, float]:
    """(KV blocks of host swap space, seconds to move one block each way) for swap preemption."""
    if cfg.preemption != "swap":
        return 0, 0.0
    per_block = kv_bytes_per_token(m, layout, prec) * cfg.block_size  # per device; devices move in parallel
    host = dev.spec.memory.host
    space = cfg.swap_space_gib * 2**30 if host is None else min(cfg.swap_space_gib * 2**30, host.capacity)
    return int(space // per_block), per_block / host_bandwidth(dev.spec)


def run_scenario(sc, base_dir: Path | None = None, **overrides) -> SimResult:
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
        return simulate(trace_requests(path, sc.trace.format), cfg)
    if sc.arrival.process == "closed_loop":
        sampler = ClassSampler(sc.classes, np.random.default_rng(sc.seed))
        return simulate([], cfg, ClosedLoop(sc.arrival.users, sc.arrival.think_time_s, sc.num_requests, sampler))
    return simulate(open_loop_requests(sc), cfg)


def quick(num_requests: int = 100, arrival: str = "poisson", rate: float = 1.0, input_len=1024, output_len=256,
          seed: int = 0, cv: float = 1.0, **cfg) -> SimResult:
    """A simulation from flags: generated requests through `SimConfig(**cfg)`."""
    return simulate(make_requests(num_requests, arrival, rate, input_len, output_len, seed, cv), make_config(**cfg))
