"""Scenario files, request classes, closed-loop users and trace replay."""

import numpy as np
import pytest

from simulator.catalog import data_dir
from simulator.errors import InfercastError
from simulator.serving.metrics import requests_frame, summary
from simulator.serving.scenario import load_scenario
from simulator.serving.simulate import run_scenario
from simulator.serving.sources import ClassSampler, trace_requests

SHIPPED = sorted(p.stem for p in data_dir("workloads.scenarios").glob("*.yaml"))


def test_the_promised_scenarios_ship():
    assert {"chat", "rag-long-document", "long-generation", "agentic-multiturn", "azure-sample"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_run(name):
    sc, path = load_scenario(name)
    small = sc.model_copy(update={"num_requests": min(sc.num_requests, 60)})
    res = run_scenario(small, path.parent)
    s = summary(res)
    assert s["finished"] + s["rejected"] == len(res.requests) > 0 and res.stop_reason == "idle"


def test_classes_mix_by_weight():
    sc, _ = load_scenario("agentic-multiturn")
    draws = ClassSampler(sc.classes, np.random.default_rng(0)).draw(4000)  # first turns
    long_out = np.mean([o > 300 for _, o, _, _, _ in draws])  # only the 'plan' class (weight 0.3) exceeds 300
    assert long_out == pytest.approx(0.3 * (1200 / 1201), abs=0.03)
    assert all(pl == 6000 and i > 6000 for i, _, _, pl, _ in draws)


def test_closed_loop_never_exceeds_its_users():
    sc, path = load_scenario("agentic-multiturn")
    sc = sc.model_copy(update={"num_requests": 120, "arrival": sc.arrival.model_copy(update={"users": 8})})
    df = requests_frame(run_scenario(sc, path.parent))
    assert len(df) == 120 and df.finished.all()
    t = np.sort(np.r_[df.arrival_s, df.arrival_s + df.e2e_s])
    mid = (t[:-1] + t[1:]) / 2
    in_system = [((df.arrival_s <= x) & (df.arrival_s + df.e2e_s > x)).sum() for x in mid]
    assert max(in_system) <= 8


def test_azure_trace_replay():
    reqs = trace_requests(data_dir("workloads.scenarios") / "azure_format_sample.csv", "azure")
    assert len(reqs) == 200 and reqs[0].arrival_s == 0.0
    assert all(a.arrival_s <= b.arrival_s for a, b in zip(reqs, reqs[1:]))


def test_malformed_trace_row_names_file_and_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,input_len,output_len\n0.0,100,10\n0.5,lots,10\n")
    with pytest.raises(InfercastError, match=r"t.csv:3: malformed trace row"):
        trace_requests(p, "generic")


def test_generic_jsonl_trace(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"arrival_s": 0.5, "input_len": 60, "output_len": 6}\n{"arrival_s": 1.0, "input_len": 50, "output_len": 5}\n')
    reqs = trace_requests(p, "generic")
    assert [(r.arrival_s, r.input_len) for r in reqs] == [(0.0, 60), (0.5, 50)]  # relative to the first row


def test_a_trace_out_of_arrival_order_names_its_line(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"arrival_s": 1.0, "input_len": 50, "output_len": 5}\n{"arrival_s": 0.5, "input_len": 60, "output_len": 6}\n')
    with pytest.raises(InfercastError, match=r"t.jsonl:2: .*arrival_s goes back in time"):
        trace_requests(p, "generic")


def test_a_trace_replays_its_first_rows_when_asked(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,input_len,output_len\n" + "".join(f"{k * 0.5},{10 + k},5\n" for k in range(6)))
    reqs = trace_requests(p, "generic", limit=4)
    assert [r.input_len for r in reqs] == [10, 11, 12, 13] and reqs[-1].arrival_s == 1.5


def test_scenario_errors(tmp_path):
    with pytest.raises(InfercastError, match="unknown scenario 'nope'"):
        load_scenario("nope")
    p = tmp_path / "s.yaml"
    p.write_text("name: s\narrival: {process: poisson}\nclasses: [{name: a, input_len: 10, output_len: 5}]\n")
    with pytest.raises(InfercastError, match="arrival.rate"):
        load_scenario(str(p))
    p.write_text("name: s\narival: {process: poisson}\n")
    with pytest.raises(InfercastError, match="unknown key 'arival'"):
        load_scenario(str(p))


def test_length_specs_are_read_whole_and_written_back_as_given():
    from simulator.serving.traffic import length_spec, mean_of, shortest

    for spec, mean, low in ((512, 512, 512), ({"uniform": [100, 300]}, 200, 100),
                            ({"lognormal": {"mean": 1000.0, "sigma": 0.0}}, 1000, 1000),
                            ({"empirical": {"values": [10, 30], "weights": [0.0, 2.0]}}, 30, 30)):
        parsed = length_spec(spec)
        assert (mean_of(parsed), shortest(parsed), parsed.as_spec()) == (mean, low, spec)
    sc, path = load_scenario("agentic-multiturn")
    import yaml

    assert sc.model_dump(exclude_unset=True)["classes"] == yaml.safe_load(path.read_text())["classes"]


def test_degenerate_specs_draw_what_they_say():
    from simulator.serving.traffic import lengths

    rng = np.random.default_rng(0)
    assert set(lengths({"uniform": [7, 7]}, 50, rng, "x")) == {7}
    assert set(lengths({"empirical": {"values": [3, 9], "weights": [0, 1]}}, 50, rng, "x")) == {9}
    assert set(lengths({"lognormal": {"mean": 640, "sigma": 0}}, 50, rng, "x")) == {640}


@pytest.mark.parametrize("spec, needle", [
    ({"uniform": [2000, 100]}, "low must be <= high"), ({"lognormal": {"mean": 1024, "sigma": -1}}, "sigma"),
    ({"lognormal": {"mean": 0}}, "mean and sigma"), ({"empirical": {"values": []}}, "non-empty"),
    ({"empirical": {"values": [1, 2], "weights": [1, 2, 3]}}, "one number per value"), (0, "from 1"),
])
def test_length_specs_that_cannot_be_drawn_from_are_refused(spec, needle):
    from simulator.serving.traffic import lengths

    with pytest.raises(InfercastError, match=f"--input-len: .*{needle}"):
        lengths(spec, 3, np.random.default_rng(0), "--input-len")


def test_a_shared_prefix_must_be_shorter_than_the_prompts(tmp_path):
    p = tmp_path / "s.yaml"
    base = "name: s\narrival: {process: poisson, rate: 1}\nclasses: [{name: a, output_len: 5, "
    p.write_text(base + "input_len: {uniform: [300, 900]}, prefix_len: 300}]\n")
    with pytest.raises(InfercastError, match=r"s.yaml: key 'classes.0.prefix_len': .*shortest is 300"):
        load_scenario(str(p))
    p.write_text(base + "input_len: {lognormal: {mean: 1000, sigma: 1.0}}, prefix_len: 700}]\n")  # median 607
    with pytest.raises(InfercastError, match="its median"):
        load_scenario(str(p))
    p.write_text(base + "input_len: {lognormal: {mean: 1000, sigma: 1.0}}, prefix_len: 600}]\n")
    assert load_scenario(str(p))[0].classes[0].prefix_len == 600


def test_a_scenario_with_num_requests_replays_that_many_trace_rows():
    from simulator.serving.sources import scenario_trace

    sc, path = load_scenario("azure-sample")
    assert len(scenario_trace(sc, path.parent)) == 200
    assert len(scenario_trace(sc.model_copy(update={"num_requests": 30}), path.parent)) == 30
