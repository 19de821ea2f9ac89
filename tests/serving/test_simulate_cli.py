import json

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
