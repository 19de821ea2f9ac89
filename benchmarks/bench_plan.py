"""Planner speed at the scale the product needs: 12 hardware types, every TP x PP x CP layout with
degrees in {1, 2, 4, 8} up to 64 devices, 3 request classes (chat, 8K code, 128K documents) of
llama-3.1-70b, co-located and disaggregated. Target: optimal within a 1% gap in <= 5 s on one core.

Prints, for each mode, the candidates, the scoring time (operator model), the MIP solve time and
status, the plan's cost, and (with --check) the simulate-and-tighten rounds.

Run: .venv/bin/python benchmarks/bench_plan.py [--check]"""

from __future__ import annotations

import sys
import time

from simulator.planner.candidates import score
from simulator.planner.output import to_dict
from simulator.planner.plan import plan
from simulator.planner.spec import PlanSpec

HW = ["h100-sxm", "h200-sxm", "b200", "a100-80gb-sxm", "a100-40gb-sxm", "h100-pcie", "l40s", "mi300x", "mi325x",
      "gaudi3", "tpu-v5p", "a10g"]
CLASSES = [
    {"name": "chat", "rate": 40, "input_len": 1024, "output_len": 256, "ttft_s": 1.0, "tpot_s": 0.05},
    {"name": "code-8k", "rate": 8, "input_len": 8192, "output_len": 512, "ttft_s": 2.0, "tpot_s": 0.05},
    {"name": "docs-128k", "rate": 0.3, "input_len": 131072, "output_len": 512, "ttft_s": 8.0, "tpot_s": 0.1},
]


def spec(disaggregation: bool, rounds: int) -> PlanSpec:
    inventory = [{"hw": h, "count": 64 if h in ("h100-sxm", "h200-sxm", "b200") else None} for h in HW]
    return PlanSpec(name="bench", model="llama-3.1-70b", classes=CLASSES, inventory=inventory,
                    disaggregation=disaggregation, check={"rounds": rounds, "requests": 800},
                    layouts={"tp": [1, 2, 4, 8], "pp": [1, 2, 4, 8], "cp": [1, 2, 4, 8], "max_devices": 64})


def main(check: bool) -> None:
    for dis in (False, True):
        t = time.perf_counter()
        scored = score(spec(dis, 0))
        score_s = time.perf_counter() - t
        res = plan(spec(dis, 0))  # scores again, then solves: its wall time is the planner's answer time
        d = to_dict(res)
        layouts = len({(s.candidate.hw, s.layout) for s in scored})
        print(f"disaggregation={dis}: {len(HW)} hw types, {layouts} (hw, layout) pairs, {len(scored)} candidates; "
              f"scoring {score_s:.2f} s, MIP {d['solver']} {d['solver_status']} in {res.solve_time_s:.3f} s "
              f"(gap target 1%); scoring + solve {res.wall_s:.2f} s (target <= 5 s); "
              f"${d['total_usd_per_hour']:,.2f}/h, {d['usd_per_mtok']:.3f} $/Mtok, devices {d['devices']}")
        for r in d["replicas"]:
            print(f"    {r['class']:>10}: {r['count']:>3} x {r['hardware']} {r['layout']} {r['role']} "
                  f"({r['rate_rps']:.3g} req/s, {r['capacity_rps']:.3g} per replica)")
        if check:
            chk = plan(spec(dis, 3))
            c = to_dict(chk)
            print(f"    with simulation: wall {chk.wall_s:.1f} s, {len(chk.rounds)} round(s), ${c['total_usd_per_hour']:,.2f}/h, "
                  f"attainment {({k: round(v, 3) for k, v in c['slo_attainment'].items() if v is not None})}")
            for i, r in enumerate(c["rounds"]):
                if r["tightened"]:
                    print(f"    round {i}: tightened {'; '.join(r['tightened'])}")


if __name__ == "__main__":
    main("--check" in sys.argv[1:])
