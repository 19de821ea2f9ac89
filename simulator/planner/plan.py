"""The capacity planner: score candidates with the operator model, pick replica counts with the MIP,
check the plan in the discrete-event simulator, tighten what misses, solve again.

Round 0 solves on the analytical capacities (planner.capacity). Each check simulates every pool of
the plan on its own (classes never share replicas): its class's traffic (Poisson at the rate the
pool is sized for, the class's length distributions) through its replicas, and counts the share of
requests within the SLOs after a warm-up (the first 10% of arrivals). A disaggregated prefill
(decode) pool is simulated with an ample decode (prefill) pool and judged on TTFT (TPOT) alone. A pool below the plan's
attainment has that candidate's capacity for that class cut to the measured shortfall (SLO over
the attained quantile, clipped to 0.5 - 0.9) times the lower of its capacity and the rate each
replica was given in the check (which it missed at, so the next solve must add a replica or pick
another candidate) and the MIP solves again; rounds stop when every class attains, or after
`check.rounds` rounds. A plan still short of the target is returned with what it attains and
`slo_met` False (the CLI still exits 0: it is an answer, labelled); where a tightened solve finds
no plan within the inventory, the last plan found is returned, and `slo_note` says so."""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from .candidates import Scored, score
from .layout_check import devices
from .mip import MipResult, Pick, solve
from .spec import PlanSpec

WARMUP = 0.1  # share of arrivals left out of the attainment (the pools start empty)


@dataclass
class PoolCheck:
    klass: str
    picks: list[Pick]  # the pick tested, then (disaggregated) the ample pool of the other role
    requests: int
    attainment: float  # share within both SLOs
    ttft_q_s: float  # TTFT and TPOT at the attainment quantile
    tpot_q_s: float


@dataclass
class Round:
    objective: float
    status: str
    checks: list[PoolCheck] = field(default_factory=list)
    tightened: list[str] = field(default_factory=list)  # "candidate / class x factor"


@dataclass
class PlanResult:
    spec: PlanSpec
    status: str  # the MIP's: optimal | feasible | infeasible | unknown
    binding: list[str]
    picks: list[Pick]
    rounds: list[Round]
    solve_time_s: float  # MIP time over all rounds
    wall_s: float  # everything: scoring, solves, simulations
    solver: str
    candidates: int
    layouts: dict[str, object] = field(default_factory=dict)  # candidate name -> Layout
    checks: list[PoolCheck] = field(default_factory=list)  # the simulated check of the plan returned
    slo_note: str = ""  # why the plan returned is not the last round's (a tightened solve found none)

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "feasible")

    @property
    def slo_met(self) -> bool | None:
        """Every pool of the plan attains the target in the simulator; None when not simulated."""
        if not self.checks:
            return None
        return all(c.attainment >= self.spec.attainment for c in self.checks)

    def slo_attainment(self) -> dict[str, float]:
        """Per class: the simulated share within both SLOs (the lowest over its pools); NaN unchecked."""
        out = {c.name: float("nan") for c in self.spec.classes}
        if self.checks:
            for chk in self.checks:
                v = out[chk.klass]
                out[chk.klass] = chk.attainment if np.isnan(v) else min(v, chk.attainment)
        return out


def plan(spec: PlanSpec, progress=None) -> PlanResult:
    t0 = time.perf_counter()
    scored = score(spec)
    by_name = {s.candidate.name: s for s in scored}
    demand = {c.name: c.rate for c in spec.classes}
    inventory = {s.hw: s.count for s in spec.inventory}
    cands = [s.candidate for s in scored]
    rounds, solve_s, res, last = [], 0.0, None, None  # last: the last plan found, with its checks
    for r in range(spec.check.rounds + 1):
        res = _solve(spec, cands, demand, inventory)
        solve_s += res.solve_time_s
        rnd = Round(res.objective, res.status)
        rounds.append(rnd)
        if res.status not in ("optimal", "feasible"):
            break
        last = (res, rnd.checks)
        if spec.check.rounds == 0:
            break
        if progress is not None:
            progress(f"round {r}: simulating {len(res.picks)} pools")
        rnd.checks = [check_pool(spec, by_name, k, picks) for k, picks in _pools(res.picks)]
        last = (res, rnd.checks)
        if r == spec.check.rounds or all(c.attainment >= spec.attainment for c in rnd.checks):
            break
        cands = _tighten(spec, cands, rnd)
    note = ""
    if last is not None and last[0] is not res:
        note = (f"round {len(rounds) - 1} found no plan ({res.status}: {'; '.join(res.binding)}) once the missing "
                f"pools were tightened; shown: round {len(rounds) - 2}'s plan")
        res = last[0]
    binding = list(res.binding) + (_unservable_detail(spec, scored, res.binding) if not res.picks else [])
    return PlanResult(spec, res.status, binding, res.picks, rounds, solve_s, time.perf_counter() - t0, res.solver,
                      len(scored), {n: s.layout for n, s in by_name.items()}, last[1] if last else [], note)


def _solve(spec: PlanSpec, cands, demand, inventory) -> MipResult:
    s = spec.solver
    with _quiet_stdout():  # HiGHS prints a banner on the C stdout once per process
        return solve(cands, demand, inventory, spec.objective, spec.disaggregation, s.time_limit_s, s.gap, s.name)


@contextmanager
def _quiet_stdout():
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _pools(picks: list[Pick]) -> list[tuple[str, list[Pick]]]:
    """What to simulate: each co-located pick alone; each disaggregated pick with an ample pool of
    the other role (its class's highest-capacity candidate of that role, at twice the replicas the
    pick's rate needs), so the check tests that pick's own capacity. The tested pick comes first."""
    out = []
    for p in picks:
        if p.candidate.role == "both":
            out.append((p.klass, [p]))
            continue
        other = "decode" if p.candidate.role == "prefill" else "prefill"
        best = max((q for q in picks if q.klass == p.klass and q.candidate.role == other),
                   key=lambda q: (q.candidate.cap(q.klass), q.candidate.name))
        ample = replace(best, replicas=max(1, math.ceil(2 * p.rate_rps / best.candidate.cap(p.klass))), rate_rps=p.rate_rps)
        out.append((p.klass, [p, ample]))
    return out


def check_pool(spec: PlanSpec, by_name: dict[str, Scored], klass: str, picks: list[Pick]) -> PoolCheck:
    """Simulate a pool (see _pools) and count the share of requests within the SLOs that its tested
    pick answers for: both SLOs co-located, TTFT for a prefill pick, TPOT for a decode pick."""
    from ..serving.metrics import requests_frame
    from ..serving.simulate import make_config, simulate
    from ..serving.traffic import make_requests

    cls = next(c for c in spec.classes if c.name == klass)
    base = dict(model=spec.model, dtype=spec.dtype, kv_dtype=spec.kv_dtype, max_batch=spec.max_batch,
                max_batched_tokens=spec.max_batched_tokens)
    tested, rate = picks[0], picks[0].rate_rps
    if tested.candidate.role == "both":
        lay = by_name[tested.candidate.name].layout
        cfg = dict(base, hw=tested.candidate.hw, tp=lay.tp, pp=lay.pp, cp=lay.cp, replicas=tested.replicas)
    else:
        pre, dec = picks if tested.candidate.role == "prefill" else picks[::-1]
        pl, dl = by_name[pre.candidate.name].layout, by_name[dec.candidate.name].layout
        cfg = dict(base, hw=pre.candidate.hw, tp=pl.tp, disaggregation=dict(
            prefill_replicas=pre.replicas, decode_replicas=dec.replicas, prefill_tp=pl.tp, prefill_pp=pl.pp,
            prefill_cp=pl.cp, prefill_hw=pre.candidate.hw, decode_tp=dl.tp, decode_pp=dl.pp, decode_cp=dl.cp,
            decode_hw=dec.candidate.hw))
    n = spec.check.requests
    reqs = make_requests(n, "poisson", rate, cls.input_len, cls.output_len, spec.check.seed)
    res = simulate(reqs, make_config(**cfg, max_time_s=50.0 * n / rate + 3600.0))
    df = requests_frame(res)
    df = df[df.arrival_s >= df.arrival_s.quantile(WARMUP)]
    role = tested.candidate.role
    in_ttft, in_tpot = df.ttft_s <= cls.ttft_s, df.tpot_s.fillna(0.0) <= cls.tpot_s
    good = df.finished & (in_tpot if role == "decode" else in_ttft if role == "prefill" else in_ttft & in_tpot)
    q = 100 * spec.attainment
    done = df[df.finished]
    ttft = float(np.percentile(done.ttft_s, q)) if len(done) else float("inf")
    tpot = float(np.nanpercentile(done.tpot_s, q)) if done.tpot_s.notna().any() else 0.0
    return PoolCheck(klass, picks, len(df), float(good.mean()) if len(df) else 0.0, ttft, tpot)


def _tighten(spec: PlanSpec, cands, rnd: Round):
    """Cut each missing pool's candidate's capacity for its class to the shortfall factor times the
    lower of its capacity and the rate per replica the check gave it (module doc)."""
    cut: dict[tuple[str, str], float] = {}  # (candidate, class) -> its new capacity, req/s per replica
    for chk in rnd.checks:
        if chk.attainment >= spec.attainment:
            continue
        cls = next(c for c in spec.classes if c.name == chk.klass)
        f_ttft = cls.ttft_s / chk.ttft_q_s if chk.ttft_q_s > 0 else 1.0
        f_tpot = cls.tpot_s / chk.tpot_q_s if chk.tpot_q_s > 0 else 1.0
        p = chk.picks[0]  # the pick the check tested
        role = p.candidate.role
        f = float(np.clip(min(f_ttft, f_tpot) if role == "both" else (f_ttft if role == "prefill" else f_tpot),
                          0.5, 0.9))
        key = (p.candidate.name, chk.klass)
        tested = min(p.candidate.cap(chk.klass), p.rate_rps / p.replicas)
        cut[key] = min(cut.get(key, tested * f), tested * f)
    out = []
    for c in cands:
        caps = {k: cut.get((c.name, k), v) for k, v in c.capacity_rps.items()}
        out.append(replace(c, capacity_rps=caps) if caps != c.capacity_rps else c)
    rnd.tightened = [f"{n} / {k} to {v:.3g} req/s per replica" for (n, k), v in sorted(cut.items())]
    return out


def _unservable_detail(spec: PlanSpec, scored: list[Scored], binding: list[str]) -> list[str]:
    """For a class no candidate serves: the candidate that came closest (highest capacity.closeness,
    min over its SLOs of SLO / achieved; one whose KV fits before one whose KV does not; fewer
    devices on a tie), and why it falls short; or, with no candidate at all, that no layout on
    offer holds the weights."""
    out = []
    for line in binding:
        if not line.startswith("class ") or "no candidate" not in line:
            continue
        k = line[len("class "):].split(":")[0]
        whys = [s for s in scored if k in s.detail and s.detail[k].why]
        if not scored:
            hws = ", ".join(s.hw for s in spec.inventory)
            out.append(f"class {k}: no layout of {hws} up to {devices(spec.layouts.max_devices)} leaves "
                       f"room for KV beside {spec.model}'s weights")
        elif whys:
            s = max(whys, key=lambda s: (s.detail[k].closeness, -s.candidate.devices, s.candidate.name))
            out.append(f"class {k}: closest {s.candidate.name}: {s.detail[k].why}")
    return out
