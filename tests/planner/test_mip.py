"""The planner MIP against brute force, hand arithmetic, infeasibility reasons, limits and CBC."""

import itertools
import math
import random
import re

import pytest

from simulator.errors import InfercastError
from simulator.planner.mip import STATUSES, Candidate, solve

HW = ("h100-sxm", "mi300x")
METRIC = {"usd": lambda c: c.usd_per_hour, "power": lambda c: c.power_w, "devices": lambda c: c.devices}


def random_instance(rng: random.Random, disaggregation: bool):
    classes = [f"k{j}" for j in range(rng.randint(1, 3))]
    roles = ("both", "prefill", "decode") if disaggregation else ("both",)
    cands = []
    for i in range(rng.randint(len(roles) + 1, 4)):
        caps = {k: rng.choice((0.0, 1.0, 1.5, 2.0, 2.5, 4.0)) for k in classes}
        cands.append(Candidate(f"c{i}", rng.choice(HW), rng.choice((1, 2, 4)), float(rng.randint(1, 10)),
                               float(rng.randrange(100, 1001, 50)), roles[i] if i < len(roles) else rng.choice(roles),
                               caps))
    demand = {k: float(rng.randint(0, 5)) for k in classes}
    inventory = {hw: rng.choice((None, rng.randint(0, 10), rng.randint(0, 6))) for hw in HW}
    return cands, demand, inventory


def brute_force(cands, demand, inventory, objective, disaggregation):
    """Min objective over every integer replica vector (None if infeasible). Classes are enumerated one
    at a time (all replica vectors within ceil(demand / cap)) and joined on the device use per hardware
    type, keeping the cheapest cost for each use; r[k] = min(prefill supply, decode supply)."""
    roles = ("both", "prefill", "decode") if disaggregation else ("both",)
    limited = [hw for hw in HW if inventory.get(hw) is not None]
    states = {tuple(0 for _ in limited): 0.0}
    for k, d in demand.items():
        if d <= 0:
            continue
        usable = [c for c in cands if c.role in roles and c.capacity_rps.get(k, 0) > 0]
        options = {}
        ranges = [range(math.ceil(d / c.capacity_rps[k]) + 1) for c in usable]
        for ns in itertools.product(*ranges):
            supply = {role: 0.0 for role in ("both", "prefill", "decode")}
            for c, n in zip(usable, ns):
                supply[c.role] += n * c.capacity_rps[k]
            if supply["both"] + min(supply["prefill"], supply["decode"]) < d - 1e-9:
                continue
            use = tuple(sum(n * c.devices for c, n in zip(usable, ns) if c.hw == hw) for hw in limited)
            cost = sum(n * METRIC[objective](c) for c, n in zip(usable, ns))
            options[use] = min(cost, options.get(use, math.inf))
        joined = {}
        for (u1, c1), (u2, c2) in itertools.product(states.items(), options.items()):
            use = tuple(a + b for a, b in zip(u1, u2))
            if all(u <= inventory[hw] for u, hw in zip(use, limited)):
                joined[use] = min(c1 + c2, joined.get(use, math.inf))
        states = joined
    return min(states.values()) if states else None


def check_plan(res, demand, inventory, objective):
    """The picks cover every class, fit the inventory, carry the demand and add up to the objective."""
    for k, d in demand.items():
        supply = {role: sum(p.replicas * p.candidate.capacity_rps[k] for p in res.picks
                            if p.klass == k and p.candidate.role == role) for role in ("both", "prefill", "decode")}
        assert supply["both"] + min(supply["prefill"], supply["decode"]) >= d - 1e-6
        if d > 0:
            assert sum(p.rate_rps for p in res.picks if p.klass == k and p.candidate.role != "prefill") == \
                pytest.approx(d)
    for hw, count in inventory.items():
        if count is not None:
            assert sum(p.replicas * p.candidate.devices for p in res.picks if p.candidate.hw == hw) <= count
    assert res.objective == pytest.approx(sum(p.replicas * METRIC[objective](p.candidate) for p in res.picks))


@pytest.mark.parametrize("disaggregation", [False, True])
def test_matches_brute_force_on_random_instances(disaggregation):
    rng = random.Random(20240611 + disaggregation)
    seen = {"feasible": 0, "infeasible": 0}
    for _ in range(50):
        cands, demand, inventory = random_instance(rng, disaggregation)
        objective = rng.choice(("usd", "power", "devices"))
        best = brute_force(cands, demand, inventory, objective, disaggregation)
        res = solve(cands, demand, inventory, objective=objective, disaggregation=disaggregation, gap=0.0)
        if best is None:
            assert res.status == "infeasible" and res.binding and not res.picks, (cands, demand, inventory, res)
            for line in res.binding:
                short = re.fullmatch(r"needs (\d+) (\S+), inventory has (\d+)", line)
                assert line.startswith("class ") or (short and int(short[1]) > int(short[3]) == inventory[short[2]])
            seen["infeasible"] += 1
        else:
            assert res.status == "optimal", (cands, demand, inventory, res)
            assert res.objective == pytest.approx(best, rel=1e-6, abs=1e-9), (cands, demand, inventory, objective)
            check_plan(res, demand, inventory, objective)
            seen["feasible"] += 1
    assert seen["feasible"] >= 10 and seen["infeasible"] >= 3, seen


def test_hand_computed_cheapest_mix():
    # demand 10 rps; A: 3 rps for $4/h, B: 5 rps for $7/h.
    # 4A = 12 rps, $16;  1B + 2A = 11 rps, $15;  2B = 10 rps, $14;  1B + 1A = 8 rps < 10 (short).
    a = Candidate("A", "h100-sxm", 1, 4.0, 700.0, "both", {"chat": 3.0})
    b = Candidate("B", "h100-sxm", 1, 7.0, 700.0, "both", {"chat": 5.0})
    res = solve([a, b], {"chat": 10.0}, {"h100-sxm": None}, gap=0.0)
    assert (res.status, res.objective, res.gap, res.solver) == ("optimal", 14.0, 0.0, "HiGHS")
    assert [(p.candidate.name, p.replicas, p.rate_rps) for p in res.picks] == [("B", 2, 10.0)]
    # with only 2 h100-sxm (1 device each) nothing fits: 2B is 10 rps exactly, still feasible at $14
    assert solve([a, b], {"chat": 10.0}, {"h100-sxm": 2}, gap=0.0).objective == 14.0
    # objective "devices": 2B (2 devices) beats 4A (4); objective "power": same 2 x 700 W
    assert solve([a, b], {"chat": 10.0}, {}, objective="devices", gap=0.0).objective == 2.0


def test_disaggregated_pools_may_use_different_hardware():
    # co-located on h100 costs $10 per 1 rps; prefill on mi300x (2 rps, $3/h) + decode on h100
    # (4 rps, $5/h): 4 rps needs 2 prefill + 1 decode = $11 versus 4 x $10 = $40 co-located.
    both = Candidate("h100 both", "h100-sxm", 4, 10.0, 2800.0, "both", {"chat": 1.0})
    pre = Candidate("mi300x prefill", "mi300x", 2, 3.0, 1500.0, "prefill", {"chat": 2.0})
    dec = Candidate("h100 decode", "h100-sxm", 4, 5.0, 2800.0, "decode", {"chat": 4.0})
    off = solve([both, pre, dec], {"chat": 4.0}, {}, gap=0.0)
    assert off.objective == 40.0 and {p.candidate.role for p in off.picks} == {"both"}
    on = solve([both, pre, dec], {"chat": 4.0}, {}, disaggregation=True, gap=0.0)
    assert on.objective == 11.0
    assert sorted((p.candidate.name, p.replicas, p.rate_rps) for p in on.picks) == [
        ("h100 decode", 1, 4.0), ("mi300x prefill", 2, 4.0)]


def test_inventory_too_small_names_the_binding_type():
    # 10 rps; TP4 replica 1.5 rps on 4 devices (0.375 rps/device), TP8 replica 2.5 rps on 8 (0.3125).
    # Fewest devices: 7 x TP4 = 28 (10.5 rps); 6 x TP4 + 1 x TP8 = 32; 4 x TP8 = 32. So 28 are needed.
    tp4 = Candidate("h100-sxm TP4", "h100-sxm", 4, 40.0, 2800.0, "both", {"chat": 1.5})
    tp8 = Candidate("h100-sxm TP8", "h100-sxm", 8, 80.0, 5600.0, "both", {"chat": 2.5})
    for solver in ("auto", "cbc"):
        res = solve([tp4, tp8], {"chat": 10.0}, {"h100-sxm": 16}, solver=solver)
        assert res.status == "infeasible" and math.isnan(res.objective) and not res.picks
        assert res.binding == ["needs 28 h100-sxm, inventory has 16"]


def test_class_without_capable_candidate_is_named():
    chat = Candidate("h100-sxm TP1", "h100-sxm", 1, 4.0, 700.0, "both", {"chat": 2.0, "rag-128k": 0.0})
    pre = Candidate("h100-sxm TP8 prefill", "h100-sxm", 8, 32.0, 5600.0, "prefill", {"rag-128k": 1.0})
    res = solve([chat, pre], {"chat": 1.0, "rag-128k": 0.5}, {"h100-sxm": 64})
    assert res.status == "infeasible"
    assert res.binding == ["class rag-128k: no candidate meets its SLOs"]
    res = solve([chat, pre], {"chat": 1.0, "rag-128k": 0.5}, {"h100-sxm": 64}, disaggregation=True)
    assert res.binding == ["class rag-128k: no candidate meets its SLOs (only prefill pools qualify, no decode pool)"]
    # zero demand for the class: nothing to serve, plan for chat only
    assert solve([chat], {"chat": 1.0, "rag-128k": 0.0}, {}).objective == 4.0


def test_tiny_time_limit_reports_a_status_and_never_raises():
    rng = random.Random(7)
    classes = ("chat", "code", "rag")
    cands = [Candidate(f"c{i}", f"hw{i % 8}", d, float(rng.randint(2, 90)), float(rng.randint(300, 9000)),
                       rng.choice(("both", "prefill", "decode")), {k: rng.uniform(0.1, 9.0) for k in classes})
             for i, d in enumerate(rng.choice((1, 2, 4, 8, 16)) for _ in range(300))]
    inventory = {f"hw{h}": rng.choice((None, 40, 120)) for h in range(8)}
    for solver in ("highs", "cbc"):
        res = solve(cands, {"chat": 397.0, "code": 211.0, "rag": 93.0}, inventory, disaggregation=True,
                    time_limit_s=0.001, gap=0.0, solver=solver)
        assert res.status in STATUSES
        if res.status == "unknown":
            assert res.binding and not res.picks
        if res.status in ("optimal", "feasible"):
            assert res.gap >= 0 and res.picks


def test_cbc_matches_highs():
    rng = random.Random(99)
    for _ in range(6):
        disaggregation = rng.random() < 0.5
        cands, demand, inventory = random_instance(rng, disaggregation)
        objective = rng.choice(("usd", "power", "devices"))
        kw = dict(objective=objective, disaggregation=disaggregation, gap=0.0)
        highs, cbc = solve(cands, demand, inventory, solver="highs", **kw), solve(cands, demand, inventory,
                                                                                   solver="cbc", **kw)
        assert (highs.solver, cbc.solver) == ("HiGHS", "CBC")
        assert highs.status == cbc.status
        if highs.status == "optimal":
            assert cbc.objective == pytest.approx(highs.objective, rel=1e-6)
            assert cbc.gap == pytest.approx(0.0, abs=1e-6)


def test_same_input_any_order_gives_the_same_plan():
    # three candidates that tie on dollars: the plan must not depend on the order they come in
    cands = [Candidate(f"t{i}", "h100-sxm", 2, 6.0, 1400.0 + 10 * i, "both", {"chat": 2.0}) for i in range(3)]
    plans = {tuple((p.candidate.name, p.replicas) for p in solve(order, {"chat": 6.0}, {"h100-sxm": 8}).picks)
             for order in itertools.permutations(cands)}
    assert plans == {(("t0", 3),)}  # lowest power wins the tie


@pytest.mark.parametrize("kwargs, text", [
    (dict(demand_rps={"chat": -1.0}), "demand for class 'chat'"),
    (dict(objective="euros"), "objective 'euros'"),
    (dict(solver="gurobi"), "solver 'gurobi'"),
    (dict(inventory={"h100-sxm": -2}), "inventory for 'h100-sxm'"),
    (dict(time_limit_s=0), "time_limit_s"),
    (dict(candidates=[Candidate("x", "h100-sxm", 0, 1.0, 1.0, "both", {"chat": 1.0})]), "devices 0"),
    (dict(candidates=[Candidate("x", "h100-sxm", 1, 1.0, 1.0, "mixed", {"chat": 1.0})]), "role 'mixed'"),
])
def test_malformed_input_raises_one_line_error(kwargs, text):
    args = dict(candidates=[Candidate("a", "h100-sxm", 1, 1.0, 1.0, "both", {"chat": 1.0})],
                demand_rps={"chat": 1.0}, inventory={})
    args.update(kwargs)
    with pytest.raises(InfercastError, match=text) as info:
        solve(**args)
    assert "\n" not in str(info.value)
