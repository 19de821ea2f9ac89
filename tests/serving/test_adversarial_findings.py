"""Regressions for an adversarial tester's findings against `infercast simulate` that a corpus case
(tests/fuzz/test_simulate_corpus.py) cannot state: what an error must not say, how long a refusal
may take, values read from a run's output, and behaviour under another time zone."""

from __future__ import annotations

import csv
import io
import os
import re
import time
import pytest

from simulator.catalog import data_dir
from simulator.checks import plain_number
from simulator.human import seconds, significant
from simulator.serving.metrics import summary
from simulator.serving.scenario import load_scenario
from simulator.serving.simulate import SimConfig, run_scenario, simulate
from simulator.serving.sources import trace_requests
from simulator.serving.traffic import Request
from tests.fuzz.harness import run_cli, strict_json

CHAT = (data_dir("workloads.scenarios") / "chat.yaml").read_text()


def test_numbers_too_large_for_a_float_and_yaml_1_2_exponents():
    assert plain_number(10**400) is None and plain_number(-(10**400)) is None
    assert plain_number("1e3") == 1000.0 and plain_number(" 2.5e-3 ") == 0.0025
    assert plain_number("12") is None and plain_number(True) is None and plain_number(float("nan")) is None


def test_tiny_and_huge_numbers_are_written_for_people():
    assert significant(1e-300) == "1e-300" and significant(2.5e-7) == "2.5e-7" and significant(0.00646) == "0.00646"
    assert significant(2.9e301) == "more than 1,000,000,000,000,000" and seconds(1e-9) == "1 ns"


def test_a_scenario_value_is_named_by_its_key_never_by_a_flag_nobody_gave(tmp_path):
    path = tmp_path / "tp3.yaml"
    path.write_text(CHAT.replace("tp: 1", "tp: 3"))
    out = run_cli(["simulate", str(path), "--no-progress"])
    assert out.kind == "error" and "key 'deployment.tp'" in out.err and "--tp" not in out.err
    flag = run_cli(["simulate", "--disagg", "1:1", "--prefill-tp", "3", "--no-progress"])
    assert flag.kind == "error" and flag.err.startswith("error: --prefill-tp:") and "--tp" not in flag.err


def test_refusals_print_human_numbers():
    out = run_cli(["simulate", "--rate", "1e-300", "--num-requests", "30", "--no-progress"])
    assert out.kind == "error" and len(out.err) < 400 and not re.search(r"\d{16,}", out.err)


def test_exponent_numbers_in_yaml_are_read_as_numbers(tmp_path):
    path = tmp_path / "chat.yaml"
    path.write_text(CHAT.replace("rate: 20", "rate: 1e1").replace("num_requests: 2000", "num_requests: 3e1"))
    d = strict_json(run_cli(["simulate", str(path), "--no-progress", "--format", "json"]).out)
    assert d["config"]["arrival"]["rate"] == 10.0 and d["requests"] == 30


def test_served_equals_offered_when_the_deployment_keeps_up():
    for name, n in (("chat", 30), ("long-generation", 10)):  # healthy runs whose drain is long beside their arrivals
        d = strict_json(run_cli(["simulate", name, "--num-requests", str(n), "--no-progress", "--format", "json"]).out)
        assert d["stop_reason"] == "idle" and d["served_rps"] == pytest.approx(d["offered_rps"], rel=0.05)
        assert d["requests_per_s"] < 0.7 * d["offered_rps"]  # what served_rps was: finished over the makespan


def test_a_run_cut_at_its_time_bound_states_the_bound_and_why(tmp_path):
    path = tmp_path / "slow-link.yaml"
    path.write_text("name: slow-link\nnum_requests: 3\narrival: {process: poisson, rate: 2}\n"
                    "classes: [{name: c, input_len: 1024, output_len: 16}]\nmax_time_s: 100\n"
                    "deployment: {disaggregation: {prefill_replicas: 1, decode_replicas: 1, link_bandwidth: 1 MB/s}}\n")
    sc, _ = load_scenario(str(path))
    res = run_scenario(sc)
    s = summary(res)
    # 1,024 tokens x 128 KiB of KV each (llama-3.1-8b bf16) over 1 MB/s: over two minutes, past the 100 s bound
    assert s["stop_reason"] == "max_time" and s["finished"] == 0 and res.makespan_s < 100 < res.next_event_s
    assert "max_time_s: 100 s" in s["no_value_reason"] and seconds(res.next_event_s) in s["no_value_reason"]


def test_azure_times_without_a_zone_are_utc_on_every_machine(tmp_path):
    path = tmp_path / "dst.csv"  # 01:59 then 03:00 on the night Los Angeles skips an hour
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-03-12 01:59:00,500,10\n2023-03-12 03:00:00,500,10\n")
    old = os.environ.get("TZ")
    try:
        for zone in ("UTC", "America/Los_Angeles"):
            os.environ["TZ"] = zone
            time.tzset()
            assert [r.arrival_s for r in trace_requests(path, "azure")] == [0.0, 3660.0]
    finally:
        os.environ.pop("TZ", None) if old is None else os.environ.__setitem__("TZ", old)
        time.tzset()


def test_csv_rows_say_why_a_request_was_rejected():
    out = run_cli(["simulate", "--input-len", "500000", "--num-requests", "3", "--no-progress", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out.out)))
    assert out.kind == "ok" and len(rows) == 3
    assert all(r["rejected"] == "True" and r["reject_reason"].startswith("longer than a replica's KV") for r in rows)
    fine = list(csv.DictReader(io.StringIO(run_cli(["simulate", "--num-requests", "3", "--no-progress", "--format",
                                                    "csv"]).out)))
    assert [r["reject_reason"] for r in fine] == ["", "", ""]


def test_a_bad_chrome_trace_path_is_refused_before_the_run(tmp_path):
    t = time.perf_counter()
    out = run_cli(["simulate", "--num-requests", "200000", "--chrome-trace", str(tmp_path / "no" / "x.json")])
    assert out.kind == "error" and time.perf_counter() - t < 5 and "overwrite=" not in out.err


def test_an_unworkable_step_budget_is_refused_at_once():
    t = time.perf_counter()
    out = run_cli(["simulate", "--input-len", "400000", "--num-requests", "200", "--max-batched-tokens", "16",
                   "--no-progress"])  # 5,000,000 prompt steps at the least
    assert out.kind == "error" and "raise max_batched_tokens to at least 40, or" in out.err
    assert time.perf_counter() - t < 5
    with pytest.raises(ValueError, match="max_batched_tokens"):  # a caller's own requests are checked too
        simulate([Request(k, 0.0, 1_000_000, 1) for k in range(40)], SimConfig(max_batched_tokens=16))


@pytest.mark.parametrize("model,tp", [("mixtral-8x7b", 2), ("deepseek-v3", 8)])
def test_moe_steps_missing_a_phase_cost_finite_time(model, tp):
    """A chunked step with no decode rows, or decodes with no prompt chunk, touches no expert for the
    absent part (finding 1.1: 0 / 0 experts)."""
    import math

    import numpy as np

    from simulator.catalog import load_model_spec
    from simulator.phases import Layout
    from simulator.precision import resolve_precision
    from simulator.serving.step_model import StepModel
    from simulator.step import device

    dev = device("h200-sxm")
    sm = StepModel(load_model_spec(model), dev, Layout(tp=tp), resolve_precision(dev.spec, "fp8"))
    prefill_only = sm.cost([(8192, 0)], np.zeros(0, dtype=np.int64), 0)  # mid-prompt chunk: no logits
    decode_only = sm.cost([], np.array([300, 9000]), 2)
    for t, f, b in (prefill_only, decode_only):
        assert all(math.isfinite(x) and x > 0 for x in (t, f, b))
    assert prefill_only[0] > decode_only[0]


def test_pipeline_stages_count_each_device_once_in_mfu_and_mbu():
    """Step FLOPs and bytes are per device: a stage holds 1/pp of the layers (finding 2.1: mbu 5.1 at pp 8).
    The same work done on more stages is the same total math, so FLOPs x devices does not grow with pp."""
    from simulator.serving.metrics import utilisation

    reqs = [Request(k, 0.0, 512, 64) for k in range(16)]
    total = {}
    for pp in (1, 2, 8):
        res = simulate(reqs, SimConfig(pp=pp))
        u = utilisation(res)
        assert 0 < u["mfu"] <= 1 and 0 < u["mbu"] <= 1 and u["mbu_busy"] <= 1
        total[pp] = sum(s[6] for s in res.steps) * res.devices_per_replica
    assert total[2] == pytest.approx(total[1], rel=0.05) and total[8] == pytest.approx(total[1], rel=0.05)
