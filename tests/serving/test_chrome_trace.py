"""Chrome trace of the engine steps: events, times, metadata, and refusing to overwrite files."""

import json
from itertools import pairwise

import pytest

from simulator.errors import InfercastError
from simulator.serving.chrome_trace import chrome_trace, step_name, write_chrome_trace
from simulator.serving.simulate import SimResult, quick

STEPS = [(0, 0.0, 0.002, 1, 4, 1000, 1e12, 1e9, 50),
         (0, 0.003, 0.5, 64, 256, 0, 1e12, 1e9, 80),
         (1, 0.001, 0.25, 1, 0, 2048, 1e12, 1e9, 30)]


def _hand_result():
    return SimResult([], list(STEPS), 0.503, "idle", kv_blocks_per_replica=100, replicas=2)


def _of(trace, ph):
    return [e for e in trace["traceEvents"] if e["ph"] == ph]


@pytest.mark.parametrize("dec,pre,n,name", [(4, 1000, 1, "prefill+decode"), (0, 2048, 1, "prefill"),
                                            (8, 0, 1, "decode"), (256, 0, 64, "decode x64"),
                                            (35, 1024, 36, "prefill, then decode x35")])
def test_step_names(dec, pre, n, name):
    assert step_name(dec, pre, n) == name


def test_hand_made_steps_become_events_in_microseconds():
    t = chrome_trace(_hand_result())
    assert t["displayTimeUnit"] == "ms"
    x = _of(t, "X")
    assert [(e["pid"], e["name"]) for e in x] == [(0, "prefill+decode"), (0, "decode x64"), (1, "prefill")]
    assert [e["ts"] for e in x] == pytest.approx([0.0, 3000.0, 1000.0])
    assert [e["dur"] for e in x] == pytest.approx([2000.0, 500_000.0, 250_000.0])
    assert x[1]["args"] == {"decode_tokens": 256, "prefill_tokens": 0, "n_steps": 64, "kv_blocks_used": 80}
    c = _of(t, "C")
    assert [(e["pid"], e["ts"], e["args"]["blocks"]) for e in c] == [(0, 0.0, 50), (0, 3000.0, 80), (1, 1000.0, 30)]
    names = {e["pid"]: e["args"]["name"] for e in _of(t, "M") if e["name"] == "process_name"}
    assert names == {0: "replica 0", 1: "replica 1"}


def _check_trace(res):
    t = json.loads(json.dumps(chrome_trace(res)))  # JSON round trip
    x = _of(t, "X")
    assert len(x) == len(res.steps) and len(_of(t, "C")) == len(res.steps)
    assert all(e["ts"] >= 0 and e["dur"] > 0 for e in x)
    for pid in {e["pid"] for e in x}:  # each replica runs one step at a time
        mine = sorted((e["ts"], e["dur"]) for e in x if e["pid"] == pid)
        assert all(a_ts + a_dur <= b_ts + 1e-6 for (a_ts, a_dur), (b_ts, _) in pairwise(mine))
    assert max(e["ts"] + e["dur"] for e in x) == pytest.approx(res.makespan_s * 1e6)
    return t


def test_real_run_with_two_replicas():
    res = quick(num_requests=200, rate=5.0, seed=1, replicas=2)
    t = _check_trace(res)
    assert {e["pid"] for e in _of(t, "X")} == {0, 1}
    names = {e["name"] for e in _of(t, "X")}
    assert any(n.startswith("prefill") for n in names) and any(n.startswith("decode x") for n in names)


def test_disaggregated_run_names_the_roles():
    res = quick(num_requests=60, rate=4.0, input_len=2000, output_len=100, hw="h100-sxm",
                disaggregation={"prefill_replicas": 1, "decode_replicas": 2})
    t = _check_trace(res)
    names = {e["pid"]: e["args"]["name"] for e in _of(t, "M") if e["name"] == "process_name"}
    assert names == {0: "replica 0 (prefill)", 1: "replica 1 (decode)", 2: "replica 2 (decode)"}


def test_write_refuses_to_overwrite_unless_asked(tmp_path):
    res = _hand_result()
    path = tmp_path / "trace.json"
    write_chrome_trace(res, path)
    assert json.loads(path.read_text()) == chrome_trace(res)
    path.write_text("keep me")
    with pytest.raises(InfercastError, match="trace.json exists") as err:
        write_chrome_trace(res, path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert path.read_text() == "keep me"
    write_chrome_trace(res, str(path), overwrite=True)
    assert len(json.loads(path.read_text())["traceEvents"]) == 4 + 2 * len(STEPS)


def test_write_into_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(InfercastError, match="cannot write"):
        write_chrome_trace(_hand_result(), tmp_path / "no" / "trace.json")
