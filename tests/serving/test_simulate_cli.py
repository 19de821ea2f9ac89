import json
import re

import pytest

from simulator.cli import run

KEYS = {"throughput_tok_s", "output_throughput_tok_s", "requests_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s",
        "tpot_p99_s", "e2e_p50_s", "goodput_rps", "preemptions", "makespan_s"}


def test_simulate_json_keys(capsys):
    assert run(["simulate", "--num-requests", "50", "--rate", "5", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert KEYS <= set(d) and d["finished"] == 50


def test_simulate_csv_has_a_row_per_request(capsys):
    assert run(["simulate", "--num-requests", "20", "--arrival", "offline", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("rid,replica,arrival_s") and len(lines) == 21


def test_bad_flags_are_one_line_errors(capsys):
    for argv in (["--replicas", "0"], ["--rate", "-1"], ["--num-requests", "0"], ["--router", "random"]):
        assert run(["simulate", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ")


def test_simulate_a_shipped_scenario_with_an_override(capsys):
    assert run(["simulate", "azure-sample", "--replicas", "2", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["finished"] == 200 and KEYS <= set(d)


def test_unknown_scenario_is_one_line(capsys):
    assert run(["simulate", "no-such-scenario"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chat" in err


def test_disaggregated_offloaded_run_from_flags_with_a_chrome_trace(tmp_path, capsys):
    trace = tmp_path / "steps.json"
    argv = ["simulate", "--num-requests", "40", "--rate", "4", "--disagg", "1:2", "--kv-offload", "host:32GiB",
            "--preemption", "swap", "--no-prefix-caching", "--chrome-trace", str(trace), "--format", "json"]
    assert run(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["finished"] == 40
    events = json.loads(trace.read_text())["traceEvents"]
    assert {e["pid"] for e in events if e["ph"] == "X"} <= {0, 1, 2}
    before = trace.read_text()
    assert run(argv) == 2  # never overwrites a file
    assert "exists" in capsys.readouterr().err and trace.read_text() == before


def test_bad_new_flags_are_one_line_errors(capsys):
    for argv in (["--disagg", "1"], ["--disagg", "0:2"], ["--kv-offload", "disk:1GB"], ["--kv-offload", "host:lots"],
                 ["--preemption", "drop"], ["--prefill-tp", "2"]):
        assert run(["simulate", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err


def _config(argv):
    from simulator.serving.cli import scenario_with_flags
    from simulator.serving.shapes import run_config

    sc, _ = scenario_with_flags(argv[0] if argv else None, dict(argv[1:]) if argv else {})
    return run_config(sc, sc.num_requests)


def test_a_disaggregated_title_counts_every_pool():
    from simulator.serving.cli import title

    assert "on 1x prefill TP4 + 3x decode TP4 = 16 h100-sxm;" in title(_config(["disaggregated-chat"]))
    resized = title(_config(["disaggregated-chat", ("disagg", "2:2"), ("decode_tp", 8)]))
    assert "on 2x prefill TP4 + 2x decode TP8 = 24 h100-sxm;" in resized
    assert title(_config([])).startswith("flags: llama-3.1-8b bf16 on 1x h100-sxm TP1; 500 requests, poisson 4 req/s")


def test_json_says_what_was_simulated(capsys):
    assert run(["simulate", "rag-long-document", "--num-requests", "20", "--no-progress", "--format", "json"]) == 0
    c = json.loads(capsys.readouterr().out)["config"]
    assert c["pools"] == [{"role": "both", "hw": "h200-sxm", "layout": "TP1", "tp": 1, "pp": 1, "cp": 1, "ep": 1,
                           "replicas": 4, "devices": 4, "kv_dtype": "bf16", "compute_dtype": "bf16",
                           "calibrated": c["calibrated"]}]
    assert c["arrival"] == {"process": "gamma", "rate": 0.5, "cv": 2.0, "users": None, "think_time_s": 0.0}
    assert (c["requests"], c["seed"], c["max_batched_tokens"], c["router"]) == (20, 0, 16384, "least_outstanding")
    assert isinstance(c["calibrated"], bool) and c["infercast_version"]


def test_a_run_without_values_is_strict_json_with_nulls_and_dashes(capsys):
    argv = ["simulate", "--input-len", "2000000", "--num-requests", "4", "--no-progress"]
    assert run([*argv, "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(name))
    assert d["rejected"] == 4 and d["ttft_p50_s"] is None and d["no_value_reason"]
    assert run(argv) == 0
    table = capsys.readouterr().out
    assert "NaN" not in table and "nan" not in table and re.search(r"ttft_p50_s\s+│\s+- │", table)
