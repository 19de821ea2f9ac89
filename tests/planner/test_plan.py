"""The planner end to end: capacity per replica, context parallelism at 128K, infeasible demand,
simulate-and-tighten rounds and the CLI."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from simulator.cli import run
from simulator.planner.capacity import ClassShape, capacity, rho_max, wait_quantile
from simulator.planner.plan import plan
from simulator.planner.spec import PlanSpec, load_plan


class FlatSteps:
    """A step model stub: every prefill chunk takes 0.1 s per 1000 tokens, a decode step of B rows
    takes 10 ms + 0.1 ms x B."""

    model = SimpleNamespace(sliding_window=None)

    def cost_keys(self, chunks, rows, keys, logits):
        return (sum(c for c, _ in chunks) * 1e-4, 0.0, 0.0)

    def decode_into(self, out, rows_keys):
        out[0] = 0.010 + 1e-4 * rows_keys[0]


def test_wait_quantile_and_the_utilisation_the_ttft_slo_allows():
    # rho 0.5, t_p 1 s, 90th percentile: t_p / (2 (1 - rho)) ln(rho / 0.1) = 1 x ln 5
    assert wait_quantile(0.5, 1.0, 0.9) == pytest.approx(math.log(5))
    assert wait_quantile(0.05, 1.0, 0.9) == 0.0  # 95% of prompts find the queue empty
    r = rho_max(1.0, 3.0, 0.9)
    assert 1.0 + wait_quantile(r, 1.0, 0.9) == pytest.approx(3.0, rel=1e-6)
    assert rho_max(2.0, 2.0, 0.9) == 0.0


def test_decode_only_capacity_is_littles_law_at_the_largest_batch_within_tpot():
    # TPOT SLO 30 ms: T(B) = 10 + 0.1 B ms <= 30 up to B = 200; lambda = 200 / (100 x 0.030) = 66.7/s
    cls = ClassShape("c", 1000, 100, 5.0, 0.030)
    cap = capacity(FlatSteps(), kv_tokens=10**9, cls=cls, role="decode", headroom=1.0, max_batch=256,
                   max_batched_tokens=8192)
    assert cap.batch == 200 and cap.rate_rps == pytest.approx(200 / (100 * 0.030))
    # KV for only 50 requests of 1100 tokens: B = 50, T = 15 ms, lambda = 50 / 1.5 s
    small = capacity(FlatSteps(), 50 * 1100, cls, "decode", 1.0, 256, 8192)
    assert small.batch == 50 and small.rate_rps == pytest.approx(50 / 1.5)


def test_colocated_capacity_is_capped_by_the_prompt_queue():
    # prefill 1000 tokens = 0.1 s; TTFT SLO 0.3 s at the 90th percentile caps rho; decode TPOT is loose
    cls = ClassShape("c", 1000, 10, 0.3, 1.0)
    cap = capacity(FlatSteps(), 10**9, cls, "both", 1.0, 256, 8192)
    assert cap.rate_rps == pytest.approx(rho_max(0.1, 0.3, 0.9) / 0.1)
    assert cap.ttft_s == pytest.approx(0.3, rel=1e-6)
    too_slow = capacity(FlatSteps(), 10**9, ClassShape("c", 5000, 10, 0.3, 1.0), "both", 1.0, 256, 8192)
    assert too_slow.rate_rps == 0.0 and "prefill alone takes 500 ms, over the TTFT SLO of 300 ms" in too_slow.why
    assert too_slow.closeness == pytest.approx(0.3 / 0.5)  # TTFT SLO over the prompt alone; TPOT 10 ms of 1 s


def _docs(ttft_s, rounds=0, cp=(1, 2, 4, 8)):
    spec = load_plan("long-context-128k")
    classes = [c.model_copy(update={"ttft_s": ttft_s}) if c.name == "docs-128k" else c for c in spec.classes]
    return spec.model_copy(update={"classes": classes, "check": spec.check.model_copy(update={"rounds": rounds}),
                                   "layouts": spec.layouts.model_copy(update={"cp": list(cp)})})


def _docs_cost(res):
    return sum(p.replicas * p.candidate.usd_per_hour for p in res.picks if p.klass == "docs-128k")


def test_at_128k_the_planner_takes_context_parallelism_when_the_ttft_slo_needs_it():
    tight, tight_no_cp = plan(_docs(8.0)), plan(_docs(8.0, cp=[1]))
    # without context parallelism nothing prefills 128K in 8 s (TP8 on H100: ~9.8 s): no plan
    assert not tight_no_cp.ok and any("docs-128k" in b and "prefill alone takes" in b for b in tight_no_cp.binding)
    assert tight.ok and min(tight.layouts[p.candidate.name].cp for p in tight.picks if p.klass == "docs-128k") > 1
    # with time to spare, context parallelism is not needed: a plan without it costs the same
    loose, loose_no_cp = plan(_docs(60.0)), plan(_docs(60.0, cp=[1]))
    assert loose_no_cp.ok and _docs_cost(loose_no_cp) == pytest.approx(_docs_cost(loose))
    assert _docs_cost(loose) < _docs_cost(tight)


def test_the_plan_meets_the_slo_in_the_simulator():
    res = plan(_docs(8.0, rounds=2))
    att = res.slo_attainment()
    assert all(v >= 0.9 for v in att.values()) or len(res.rounds) == 3


def test_a_pool_that_misses_is_tightened_and_solved_again():
    # 8K prompts at three times one replica's analytical capacity, no headroom: the simulated pool
    # misses (decodes wait behind long prefill chunks more than the mean-value model says)
    base = PlanSpec(model="llama-3.1-8b", classes=[{"name": "c", "rate": 1.0, "input_len": 8192, "output_len": 64,
                                                    "ttft_s": 1.0, "tpot_s": 0.05}],
                    inventory=[{"hw": "h100-sxm"}], headroom=1.0, layouts={"tp": [1], "pp": [1], "cp": [1]},
                    check={"requests": 600, "rounds": 0})
    cap = plan(base).picks[0].candidate.cap("c")
    spec = base.model_copy(update={"classes": [base.classes[0].model_copy(update={"rate": 3 * cap})],
                                   "check": base.check.model_copy(update={"rounds": 3})})
    res = plan(spec)
    first = res.rounds[0]
    assert first.objective == pytest.approx(3 * 3.0) and first.checks[0].attainment < 0.9 and first.tightened
    assert len(res.rounds) >= 2 and res.rounds[1].objective > first.objective  # more replicas after the cut
    assert res.picks[0].candidate.cap("c") < cap


def test_infeasible_inventory_names_the_binding_hardware(capsys):
    args = ["plan", "--model", "llama-3.1-70b", "--hw", "h100-sxm:8", "--rate", "50", "--input-len", "2048",
            "--output-len", "256", "--ttft", "1", "--tpot", "0.05", "--rounds", "0"]
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "inventory has 8" in err
    needed = int(err.split("needs ")[1].split(" ")[0])
    # independently: the fewest h100-sxm devices that serve the demand with no inventory limit
    free = plan(PlanSpec(model="llama-3.1-70b", objective="devices", check={"rounds": 0},
                         classes=[{"name": "default", "rate": 50, "input_len": 2048, "output_len": 256,
                                   "ttft_s": 1.0, "tpot_s": 0.05}], inventory=[{"hw": "h100-sxm"}]))
    assert needed == sum(p.replicas * p.candidate.devices for p in free.picks)


def test_plan_json_keys_are_stable(capsys):
    assert run(["plan", "--model", "llama-3.1-8b", "--hw", "h100-sxm:16", "--rate", "5", "--input-len", "1024",
                "--output-len", "128", "--ttft", "1", "--tpot", "0.05", "--rounds", "1", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("total_usd_per_hour", "devices", "replicas", "slo_attainment", "solver_status", "solve_time_s", "rounds"):
        assert key in d
    assert d["solver_status"] == "optimal" and d["devices"]["h100-sxm"] == sum(r["devices"] for r in d["replicas"])
    r = d["replicas"][0]
    assert {"hardware", "layout", "role", "count"} <= set(r) and r["count"] * r["capacity_rps"] >= 5.0 * (1 - 1e-9)
    assert np.isfinite(d["slo_attainment"]["default"])


def test_bad_plan_files_are_one_line_errors(tmp_path, capsys):
    p = tmp_path / "p.yaml"
    p.write_text("model: llama-3.1-8b\nclasses: [{name: a, rate: 1, input_len: 10, output_len: 5, ttft_s: 1, tpot_s: 0.1}]\n"
                 "inventory: [{hw: h100-sxm}]\nobjectiv: usd\n")
    assert run(["plan", str(p)]) == 2
    assert "objectiv" in capsys.readouterr().err
    assert run(["plan", "no-such-plan"]) == 2
    assert "unknown plan 'no-such-plan'" in capsys.readouterr().err


def test_owned_hardware_is_priced_by_amortisation_and_electricity():
    from simulator.planner.candidates import score

    spec = PlanSpec(model="llama-3.1-8b", classes=[{"name": "c", "rate": 1, "input_len": 1000, "output_len": 100,
                                                    "ttft_s": 1, "tpot_s": 0.1}],
                    inventory=[{"hw": "h100-sxm", "purchase_usd": 35040, "power_w": 700}],
                    amortization_years=4, usd_per_kwh=0.2, layouts={"tp": [2], "pp": [1], "cp": [1]})
    cand = score(spec)[0].candidate
    # 35040 $ over 4 x 8760 h = 1.00 $/h, plus 0.7 kW x 0.2 $/kWh = 0.14 $/h; two devices
    assert cand.usd_per_hour == pytest.approx(2 * 1.14) and cand.power_w == 1400


def test_the_python_api_plans_a_shipped_plan_with_updates():
    import simulator

    res = simulator.plan("long-context-128k", check={"rounds": 0}, objective="devices")
    assert res.ok and res.spec.objective == "devices" and res.spec.check.rounds == 0 and not res.rounds[0].checks


def _million(ttft_s, hw="h100-sxm", **update):
    """llama-3.1-70b, 1M-token prompts: only context parallelism brings the prefill near a minute."""
    return PlanSpec(model="llama-3.1-70b", inventory=[{"hw": hw}], check={"rounds": 0},
                    classes=[{"name": "docs-1m", "rate": 0.01, "input_len": 1_000_000, "output_len": 256,
                              "ttft_s": ttft_s, "tpot_s": 0.2}], **update)


def test_an_infeasible_class_names_the_layout_that_came_closest():
    from simulator.planner.candidates import score

    res = plan(_million(30.0))  # TP8 CP8 prefills 1M tokens in ~36 s; TP8 PP8 in ~5 min
    assert not res.ok
    detail = next(b for b in res.binding if "closest" in b)
    name = detail.split("closest ")[1].split(":")[0]
    scored = {s.candidate.name: s.detail["docs-1m"] for s in score(res.spec)}
    assert scored[name].closeness == max(c.closeness for c in scored.values()) > 0
    assert name == "h100-sxm TP8 CP8 both" and "over the TTFT SLO of 30 s" in detail
    assert scored[name].closeness == pytest.approx(30.0 / scored[name].ttft_s)
    assert scored["h100-sxm TP8 PP8 both"].closeness < scored[name].closeness
    # with 40 s to spare, the same layout meets the SLO and is planned
    ok = plan(_million(40.0))
    assert ok.ok and {ok.layouts[p.candidate.name].name() for p in ok.picks} == {"TP8 CP8"}


def test_decode_pools_take_context_parallelism_only_where_the_kv_needs_it():
    from simulator.planner.candidates import score

    layouts = {"tp": [8], "pp": [1], "cp": [1, 2, 4]}
    # A100 40GB at TP8: 17.6 GB of weights leave room for fewer than 1M tokens of KV; H100 80GB holds one request
    small = score(_million(60.0, "a100-40gb-sxm", disaggregation=True, layouts=layouts))
    big = score(_million(60.0, "h100-sxm", disaggregation=True, layouts=layouts))
    decode_cp = lambda scored: {s.layout.cp for s in scored if s.candidate.role == "decode"}  # noqa: E731
    assert decode_cp(big) == {1}
    assert max(decode_cp(small)) > 1
    assert all(s.detail["docs-1m"].closeness == 0.0 for s in small if s.candidate.role == "decode" and s.layout.cp == 1)


def test_plan_json_says_what_produced_it(capsys):
    assert run(["plan", "--model", "llama-3.1-8b", "--hw", "h100-sxm:4", "--rate", "2", "--input-len", "512",
                "--output-len", "64", "--ttft", "1", "--tpot", "0.05", "--rounds", "0", "--format", "json"]) == 0
    from tests.fuzz.harness import strict_json

    d = strict_json(capsys.readouterr().out)
    cfg = d["config"]
    assert cfg["model"] == "llama-3.1-8b" and cfg["objective"] == "usd" and cfg["disaggregation"] is False
    assert cfg["classes"][0] == {"name": "default", "rate": 2.0, "input_len": 512, "output_len": 64, "ttft_s": 1.0,
                                 "tpot_s": 0.05}
    assert cfg["inventory"][0]["hw"] == "h100-sxm" and cfg["inventory"][0]["count"] == 4
    assert cfg["check"]["rounds"] == 0 and cfg["calibrated"] == {"h100-sxm": False} and cfg["infercast_version"]
    assert d["slo_attainment"] == {"default": None}  # not simulated: null, never NaN


def test_a_model_no_layout_holds_is_named_as_such():
    # deepseek-v3: 671B parameters, 1.34 TB in bf16; 64 T4s hold 64 x 14.4 GiB = 0.99 TB
    res = plan(PlanSpec(model="deepseek-v3", inventory=[{"hw": "t4"}], check={"rounds": 0},
                        classes=[{"name": "c", "rate": 1, "input_len": 1024, "output_len": 64, "ttft_s": 2,
                                  "tpot_s": 0.1}]))
    assert not res.ok and res.candidates == 0
    assert "class c: no layout of t4 up to 64 devices leaves room for KV beside deepseek-v3's weights" in res.binding
