"""Mixed-integer core of the capacity planner: how many replicas of which candidate serve each class.

A candidate is one deployable replica shape (hardware type, layout, role) with a price, a power draw
and, per request class, the rate one replica sustains within that class's SLOs (0 = cannot serve it).

Model (classes k with demand d[k] > 0; candidates c; replicas are never shared between classes,
because mixing e.g. a 128K-context class into a chat batch would break the chat TPOT SLO):
    n[c,k] in Z>=0   replicas of c serving k, only for pairs with cap[c,k] > 0 that survive pruning
    r[k]   in [0, d[k]]  rate of k served disaggregated (only with disaggregation=True)
    co-located:   sum_{c: both} n[c,k] s[c,k] + r[k] >= d[k]     s[c,k] = min(cap[c,k], d[k]): a
    prefill pool: sum_{c: prefill} n[c,k] s[c,k] >= r[k]   replica serves at most all the demand
    decode pool:  sum_{c: decode}  n[c,k] s[c,k] >= r[k]   (prefill and decode may be different hardware)
    inventory:    sum_{c on hw h, k} n[c,k] devices[c] <= inventory[h]   for every h with a count
    minimise      sum n[c,k] w[c],  w[c] = usd_per_hour | power_w | devices
A class's rows are in req/s, or in units of its demand when that is below 1 req/s. With s capped
at d, and d the unit, one replica is the least that covers a class: with rows in req/s and
d[k] / cap[c,k] under the solver's integrality tolerance (a class of 1e-7 req/s), a fraction of a
replica that rounds to none would. Capping s at d changes no integer plan's coverage.
Without disaggregation u[k] = 0 and prefill/decode candidates are ignored. A hardware type missing
from the inventory, or mapped to None, is unlimited up to limits.MAX_DEVICES.

Tie-break: candidates and classes are sorted by name, and every weight gets a secondary term
1e-7 * max(w) * (1 + s[c]), s[c] in [0, 1] from the two other metrics, so equal-cost plans are
resolved the same way every time (fewer devices / watts / dollars) and free replicas are never added.
Objectives are reported from the primary weights only.

Pruning (provably safe): pair (d, k) is dropped when some candidate c of the same role, ranked
earlier, has w[c] <= w[d], cap[c,k] >= cap[d,k], and either unlimited hardware or the same hardware
with devices[c] <= devices[d]: swapping every d replica of class k for a c replica keeps coverage,
uses no more of any limited inventory, and does not raise the objective. Replica counts are bounded
by max(1, ceil(d[k] / cap[c,k])) and by inventory // devices.

Solver: HiGHS through pulp (time limit and relative gap always set), CBC when HiGHS is missing or
asked for. The status is read from the solver: "optimal" (within the gap), "feasible" (time limit
hit with an incumbent; its gap reported), "infeasible", or "unknown" (no plan found in time).
When infeasible, `binding` names why: a class no candidate can serve, or else the result of an
elastic model (inventory slack, minimise the devices beyond inventory) as "needs N hw, inventory has M".
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import pulp

from simulator.errors import InfercastError
from simulator.human import seconds
from simulator.limits import MAX_DEVICES
from simulator.planner.infeasibility import overuse_reasons, unservable_reasons

OBJECTIVES = ("usd", "power", "devices")
ROLES = ("both", "prefill", "decode")
STATUSES = ("optimal", "feasible", "infeasible", "unknown")
SOLVERS = ("auto", "highs", "cbc")
_TIE = 1e-7


@dataclass(frozen=True)
class Candidate:
    name: str  # e.g. "h100-sxm TP4 PP1 CP1 both"
    hw: str  # hardware type id (key into the inventory)
    devices: int  # devices per replica
    usd_per_hour: float  # per replica
    power_w: float  # per replica
    role: str  # "both" (co-located) | "prefill" | "decode"
    capacity_rps: dict[str, float] = field(hash=False)  # class -> requests/s one replica sustains in SLO

    def cap(self, klass: str) -> float:
        return self.capacity_rps.get(klass, 0.0) or 0.0

    def metric(self, objective: str) -> float:
        return {"usd": self.usd_per_hour, "power": self.power_w, "devices": float(self.devices)}[objective]


@dataclass(frozen=True)
class Pick:
    klass: str
    candidate: Candidate
    replicas: int
    rate_rps: float  # the class rate this pool is sized for (demand split in proportion to capacity)


@dataclass
class MipResult:
    status: str  # one of STATUSES
    objective: float  # nan unless a plan was found
    gap: float  # relative MIP gap reported by the solver (nan without a plan)
    picks: list[Pick]
    solve_time_s: float  # wall time of the whole solve() call, model building included
    solver: str  # "HiGHS" or "CBC"
    binding: list[str] = field(default_factory=list)


def solve(candidates, demand_rps: dict[str, float], inventory: dict[str, int | None],
          objective: str = "usd", disaggregation: bool = False, time_limit_s: float = 10.0,
          gap: float = 0.01, solver: str = "auto") -> MipResult:
    """Cheapest replica plan (by `objective`) covering `demand_rps` within `inventory`; see module doc."""
    t0 = time.perf_counter()
    candidates = list(candidates)
    _check(candidates, demand_rps, inventory, objective, time_limit_s, gap, solver)
    solver_name = _solver_name(solver)
    roles = ROLES if disaggregation else ("both",)
    cands = sorted((c for c in candidates if c.role in roles), key=lambda c: c.name)
    classes = sorted(k for k, d in demand_rps.items() if d > 0)
    nan = float("nan")

    def result(status, objective_value, gap_value, picks, binding=()):
        return MipResult(status, objective_value, gap_value, picks, time.perf_counter() - t0, solver_name,
                         list(binding))

    reasons = unservable_reasons(cands, classes, disaggregation)
    if reasons:
        return result("infeasible", nan, nan, [], reasons)
    if not classes:
        return result("optimal", 0.0, 0.0, [])
    pairs = _prune(cands, classes, objective, inventory)
    model = _Model(cands, classes, demand_rps, inventory, pairs, objective, elastic=False)
    status, gap_value, error = _run(model.prob, solver_name, time_limit_s, gap)
    if status in ("optimal", "feasible"):
        picks = model.picks()
        return result(status, sum(p.replicas * p.candidate.metric(objective) for p in picks), gap_value, picks)
    if status == "unknown":
        why = error or f"time limit {seconds(time_limit_s)} hit before any plan was found"
        return result("unknown", nan, nan, [], [why])
    elastic = _Model(cands, classes, demand_rps, inventory, pairs, objective, elastic=True)
    left_s = max(time_limit_s - (time.perf_counter() - t0), 0.1 * time_limit_s)  # diagnosis shares the limit
    e_status, _, _ = _run(elastic.prob, solver_name, left_s, gap)
    if e_status in ("optimal", "feasible"):
        reasons = overuse_reasons(elastic.device_use(), inventory, MAX_DEVICES)
    if e_status not in ("optimal", "feasible") or not reasons:
        reasons = ["inventory too small for the demand (no binding hardware type could be isolated)"]
    return result("infeasible", nan, nan, [], reasons)


def _check(candidates, demand_rps, inventory, objective, time_limit_s, gap, solver) -> None:
    if objective not in OBJECTIVES:
        raise InfercastError(f"objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    if solver not in SOLVERS:
        raise InfercastError(f"solver {solver!r}: expected one of {', '.join(SOLVERS)}")
    if not (isinstance(time_limit_s, (int, float)) and time_limit_s > 0):
        raise InfercastError(f"time_limit_s {time_limit_s!r}: expected a positive number of seconds")
    if not (isinstance(gap, (int, float)) and 0 <= gap < 1):
        raise InfercastError(f"gap {gap!r}: expected a relative gap in [0, 1)")
    for k, d in demand_rps.items():
        if not (isinstance(d, (int, float)) and math.isfinite(d) and d >= 0):
            raise InfercastError(f"demand for class {k!r} is {d!r}: expected a finite rate >= 0 requests/s")
    for hw, count in inventory.items():
        if count is not None and not (isinstance(count, int) and count >= 0):
            raise InfercastError(f"inventory for {hw!r} is {count!r}: expected a device count >= 0 or None")
    names = set()
    for c in candidates:
        if not isinstance(c, Candidate):
            raise InfercastError(f"candidate {c!r}: expected a Candidate")
        if c.name in names:
            raise InfercastError(f"candidate name {c.name!r} appears twice")
        names.add(c.name)
        if c.role not in ROLES:
            raise InfercastError(f"candidate {c.name!r}: role {c.role!r}, expected one of {', '.join(ROLES)}")
        if not (isinstance(c.devices, int) and c.devices >= 1):
            raise InfercastError(f"candidate {c.name!r}: devices {c.devices!r}, expected an integer >= 1")
        for label, v in (("usd_per_hour", c.usd_per_hour), ("power_w", c.power_w)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InfercastError(f"candidate {c.name!r}: {label} {v!r}, expected a finite value >= 0")
        for k, v in c.capacity_rps.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InfercastError(f"candidate {c.name!r}: capacity for {k!r} is {v!r}, expected >= 0 requests/s")


def _solver_name(solver: str) -> str:
    highs_ok = pulp.HiGHS(msg=False).available()
    if solver == "highs" and not highs_ok:
        raise InfercastError("solver 'highs': highspy is not installed (pip install highspy) or use solver='cbc'")
    return "HiGHS" if solver != "cbc" and highs_ok else "CBC"


def _prune(cands, classes, objective, inventory) -> dict[str, list[int]]:
    """Per class, the indices of candidates kept: capacity > 0 and not dominated (module doc)."""
    pairs = {}
    for k in classes:
        keep = []
        for role in ROLES:
            idx = [i for i, c in enumerate(cands) if c.role == role and c.cap(k) > 0]
            idx.sort(key=lambda i: (cands[i].metric(objective), cands[i].devices, -cands[i].cap(k), cands[i].name))
            best_unlimited = 0.0  # highest capacity among kept unlimited-hardware candidates ranked earlier
            kept_by_hw: dict[str, list[int]] = {}
            for i in idx:
                c, cap = cands[i], cands[i].cap(k)
                if best_unlimited >= cap:
                    continue
                limited = inventory.get(c.hw) is not None
                same_hw = kept_by_hw.setdefault(c.hw, [])
                if limited and any(cands[j].devices <= c.devices and cands[j].cap(k) >= cap for j in same_hw):
                    continue
                keep.append(i)
                if limited:
                    same_hw.append(i)
                else:
                    best_unlimited = cap
        pairs[k] = sorted(keep)
    return pairs


class _Model:
    """The pulp problem for one solve; `elastic` adds inventory slack and minimises devices beyond it."""

    def __init__(self, cands, classes, demand_rps, inventory, pairs, objective, elastic):
        self.cands, self.classes, self.demand = cands, classes, demand_rps
        self.prob = pulp.LpProblem("plan_elastic" if elastic else "plan", pulp.LpMinimize)
        self.n: dict[tuple[int, str], pulp.LpVariable] = {}
        for ki, k in enumerate(classes):
            for i in pairs[k]:
                c = cands[i]
                ub = max(1, math.ceil(demand_rps[k] / c.cap(k) - 1e-9))
                count = inventory.get(c.hw)
                if count is not None and not elastic:
                    ub = min(ub, count // c.devices)
                self.n[i, k] = self._var(f"n_{i}_{ki}", ub, pulp.LpInteger)
        for ki, k in enumerate(classes):
            by_role = {role: [(i, kk) for (i, kk) in self.n if kk == k and cands[i].role == role] for role in ROLES}
            d, unit = demand_rps[k], min(demand_rps[k], 1.0)  # rows in units of 1 req/s, or of the demand below it
            supply = {role: pulp.lpSum(self.n[p] * min(cands[p[0]].cap(k), d) / unit for p in ps)
                      for role, ps in by_role.items()}
            if by_role["prefill"] and by_role["decode"]:
                r = self._var(f"r_{ki}", d / unit)
                self.prob += supply["prefill"] >= r, f"prefill_{ki}"
                self.prob += supply["decode"] >= r, f"decode_{ki}"
                self.prob += supply["both"] + r >= d / unit, f"demand_{ki}"
            else:
                self.prob += supply["both"] >= d / unit, f"demand_{ki}"
        slack = {}
        for hi, hw in enumerate(sorted({cands[i].hw for i, _ in self.n})):
            count = inventory.get(hw)
            if count is None:  # unlimited, up to the ceiling on any one run (limits.py)
                count = MAX_DEVICES
            use = pulp.lpSum(v * cands[i].devices for (i, _), v in self.n.items() if cands[i].hw == hw)
            if elastic:
                slack[hw] = self._var(f"s_{hi}", None)
                self.prob += use <= count + slack[hw], f"inventory_{hi}"
            else:
                self.prob += use <= count, f"inventory_{hi}"
        if elastic:  # devices beyond inventory first, then fewest devices (each term < 1 device in total)
            eps = 1.0 / (1.0 + sum(v.upBound * cands[i].devices for (i, _), v in self.n.items()))
            self.prob += pulp.lpSum(slack.values()) + eps * pulp.lpSum(
                v * cands[i].devices for (i, _), v in self.n.items())
        else:
            weights = _weights(cands, objective)
            self.prob += pulp.lpSum(v * weights[i] for (i, _), v in self.n.items())

    def _var(self, name: str, upper: float | None, cat: str = pulp.LpContinuous) -> pulp.LpVariable:
        if hasattr(self.prob, "add_variable"):  # pulp >= 3.3 (the PuLP 4 spelling)
            return self.prob.add_variable(name, 0, upper, cat)
        return pulp.LpVariable(name, 0, upper, cat)

    def replicas(self) -> dict[tuple[int, str], int]:
        return {p: round(v.varValue or 0.0) for p, v in self.n.items()}

    def device_use(self) -> dict[str, int]:
        use: dict[str, int] = {}
        for (i, _), n in self.replicas().items():
            use[self.cands[i].hw] = use.get(self.cands[i].hw, 0) + n * self.cands[i].devices
        return use

    def picks(self) -> list[Pick]:
        """Pools with replicas > 0; each mode's share of the class rate is split in proportion to capacity."""
        reps, out = self.replicas(), []
        for k in self.classes:
            pools = {role: [(self.cands[i], n) for (i, kk), n in reps.items()
                            if kk == k and n > 0 and self.cands[i].role == role] for role in ROLES}
            supply = {role: sum(n * c.cap(k) for c, n in ps) for role, ps in pools.items()}
            disagg = min(supply["prefill"], supply["decode"])
            total = supply["both"] + disagg
            for role, ps in pools.items():
                mode_rate = self.demand[k] * (supply["both"] if role == "both" else disagg) / total if total > 0 else 0.0
                for c, n in ps:
                    rate = mode_rate * n * c.cap(k) / supply[role] if mode_rate > 0 else 0.0
                    out.append(Pick(k, c, n, rate))
        return out


def _weights(cands, objective: str) -> list[float]:
    """Primary metric plus the deterministic tie-break term of the module doc."""
    others = [o for o in OBJECTIVES if o != objective]
    top = {o: max(c.metric(o) for c in cands) or 1.0 for o in OBJECTIVES}
    return [c.metric(objective) + _TIE * top[objective] * (1.0 + sum(c.metric(o) / top[o] for o in others) / 2)
            for c in cands]


def _run(prob: pulp.LpProblem, solver_name: str, time_limit_s: float, gap: float) -> tuple[str, float, str]:
    """Solve; return (status, relative gap, error text). Reads the solver's status, never assumes it."""
    if solver_name == "HiGHS":
        engine = pulp.HiGHS(msg=False, timeLimit=time_limit_s, gapRel=gap)
    else:
        fd, log_path = tempfile.mkstemp(suffix=".log", prefix="infercast_cbc_")
        os.close(fd)
        with warnings.catch_warnings():  # pulp 3.3 deprecates the bundled CBC in favour of COIN_CMD
            warnings.simplefilter("ignore", DeprecationWarning)
            engine = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap, logPath=log_path)
    started = time.perf_counter()
    try:
        prob.solve(engine)
    except pulp.PulpSolverError as exc:
        return "unknown", float("nan"), f"{solver_name} failed: {str(exc).splitlines()[0]}"
    finally:
        if solver_name != "HiGHS":
            with open(log_path) as fh:
                log = fh.read()
            os.remove(log_path)
    status = {pulp.LpSolutionOptimal: "optimal", pulp.LpSolutionIntegerFeasible: "feasible",
              pulp.LpSolutionInfeasible: "infeasible"}.get(prob.sol_status, "unknown")
    if prob.status == pulp.LpStatusInfeasible:
        status = "infeasible"
        if solver_name == "CBC" and time.perf_counter() - started >= time_limit_s:
            # CBC's preprocessing answers "infeasible" when it is cut short by the time limit: not a proof
            why = f"CBC stopped at the {seconds(time_limit_s)} time limit without a plan or a proof of infeasibility"
            return "unknown", float("nan"), why
    if status not in ("optimal", "feasible"):
        return status, float("nan"), ""
    if solver_name == "HiGHS":
        found = prob.solverModel.getInfo().mip_gap
    else:
        found = _cbc_gap(log, pulp.value(prob.objective))
    if not math.isfinite(found):
        found = 0.0 if status == "optimal" else float("nan")
    return status, max(0.0, found), ""


def _cbc_gap(log: str, objective: float | None) -> float:
    """Relative gap from CBC's log ("Lower bound:" or "Gap:" lines); 0 when it proved optimality."""
    bound = gap = None
    for line in log.splitlines():
        words = line.replace(":", " ").split()
        if line.startswith("Lower bound:") and len(words) >= 3:
            bound = float(words[2])
        elif line.startswith("Gap:") and len(words) >= 2:
            gap = float(words[1])
    if bound is not None and objective:
        return abs(objective - bound) / max(abs(objective), 1e-12)
    if gap is not None:
        return gap
    return 0.0 if "Optimal solution found" in log else float("nan")
