"""Overload is an answer: open-loop runs whose arrivals outrun the deployment stop at a bound and say
so (stop_reason, offered against served rate, the stable part's latency); requests that can never
fit are rejected with their reason counted; a figure with nothing to measure is NaN with a reason."""

import json
import math
import time

import numpy as np
import pytest

from simulator.serving.events import Backlog, EventLoop
from simulator.serving.metrics import requests_frame, summary
from simulator.serving.simulate import SimConfig, SimResult, quick, simulate
from simulator.serving.traffic import Request, make_requests
from simulator.strict_json import dumps

SMALL = dict(hw="a10g", input_len=1024, output_len=64)  # one A10G serves a few requests/s of these
LATENCY = ("ttft", "tpot", "e2e")


def _strict(text: str) -> dict:
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_backlog_notes_onset_peak_and_bound():
    loop = EventLoop()
    full = []
    b = Backlog(loop, bound=3, on_full=lambda: full.append(loop.now))
    b.arrive()  # a busy period at 0 that empties at once
    b.leave()
    loop.now = 2.0
    b.arrive()  # the next one begins at 2 s
    loop.now = 3.0
    b.arrive()
    b.leave()
    b.arrive()
    assert (b.n, b.peak, b.onset_s, b.peak_onset_s) == (2, 2, 2.0, 2.0) and math.isnan(b.peak_end_s)
    b.arrive()  # 3 waiting: the bound, reached once (after the onset: not one instant's burst)
    b.leave(3)
    b.arrive()
    b.arrive()
    b.arrive()
    assert full == [3.0] and b.full_s == 3.0 and b.peak_end_s == 3.0 and b.peak_onset_s == 2.0


def test_an_overloaded_run_stops_at_the_bound_and_reports_offered_against_served():
    t = time.perf_counter()
    res = quick(num_requests=200_000, arrival="constant", rate=1000.0, **SMALL)
    s = summary(res)
    assert time.perf_counter() - t < 20  # 200,000 requests asked for; a few hundred simulated
    assert res.stop_reason == s["stop_reason"] == "overloaded"
    assert s["requests"] == 200_000 and s["arrived"] == len(res.requests) < 2_000
    assert s["finished"] == s["arrived"]  # every request that arrived before the stop is served
    assert s["offered_rps"] == pytest.approx(1000.0, rel=1e-9)  # constant gaps of 1 ms: (n - 1) / ((n - 1) ms)
    assert 0 < s["served_rps"] < 0.05 * s["offered_rps"]
    admitted = sorted(r.admitted_s for r in res.requests)  # served: n - 1 over the span of the admissions
    assert s["served_rps"] == pytest.approx((len(admitted) - 1) / (admitted[-1] - admitted[0]))
    assert 0 < s["overload_onset_s"] == res.overload_onset_s < 1.0
    assert s["metrics_cover"].startswith("stable part: arrivals before") and s["no_value_reason"] is None
    body = _strict(dumps(s))
    assert body["reject_reasons"] == {} and body["stop_reason"] == "overloaded"


def test_a_short_overloaded_run_is_judged_when_it_ends():
    res = quick(num_requests=300, arrival="constant", rate=1000.0, **SMALL)  # under the bound of 1,024
    s = summary(res)
    assert res.stop_reason == "overloaded" and s["arrived"] == s["finished"] == 300
    assert s["served_rps"] < 0.05 * s["offered_rps"] and s["stable_requests"] < 300
    same = simulate(make_requests(300, "constant", 1000.0, 1024, 64, 0), SimConfig(hw="a10g"))
    assert same.stop_reason == "idle"  # a caller that does not say open loop (the planner) gets the plain run


def test_a_run_shorter_than_a_batch_is_judged_overloaded_when_its_queue_outlasts_its_arrivals():
    # 50 requests at 1000/s on one A10G: its KV takes ~30 at once, so few wait long for admission
    # while a batch's service stretches; the queue still lasts ~400 times the arrivals' 55 ms
    s = summary(quick(num_requests=50, arrival="poisson", rate=1000.0, hw="a10g"))
    assert s["stop_reason"] == "overloaded" and s["metrics_cover"] != "all" and s["stable_requests"] < 5
    assert s["served_rps"] < 0.01 * s["offered_rps"]
    for rate in (0.5, 2.0):  # the same 50 requests at rates the A10G keeps up with
        s = summary(quick(num_requests=50, arrival="poisson", rate=rate, hw="a10g", seed=1))
        assert s["stop_reason"] == "idle" and s["served_rps"] == pytest.approx(s["offered_rps"], rel=0.1)


def test_a_burst_at_one_instant_is_a_batch_not_an_overload():
    burst = [Request(k, 0.0, 64, 4) for k in range(300)]  # over the bound of 256, all at 0 s
    res = simulate(burst, SimConfig(max_batch=8), open_loop=True)
    assert res.stop_reason == "idle" and summary(res)["finished"] == 300


def test_a_stable_run_is_idle_and_its_metrics_cover_all():
    res = quick(num_requests=60, arrival="constant", rate=0.5, **SMALL)
    s = summary(res)
    df = requests_frame(res)
    assert res.stop_reason == "idle" and s["metrics_cover"] == "all" and s["stable_requests"] == 60
    assert math.isnan(s["overload_onset_s"]) and s["no_value_reason"] is None
    assert s["offered_rps"] == pytest.approx(0.5, rel=1e-9)
    # a run that keeps up takes requests in as they come: served equals offered (the drain is no rate)
    assert s["served_rps"] == pytest.approx(0.5, rel=1e-3) and 60 / res.makespan_s < 0.5
    assert s["ttft_p50_s"] == pytest.approx(float(np.percentile(df.ttft_s, 50)))


def test_an_offline_batch_is_never_overloaded():
    res = quick(num_requests=600, arrival="offline", input_len=64, output_len=4, max_batch=8)  # 600 > the bound
    s = summary(res)
    assert res.stop_reason == "idle" and s["finished"] == 600 and s["metrics_cover"] == "all"
    assert math.isnan(s["offered_rps"])  # every arrival at 0: no span to divide by


def test_the_stable_part_metrics_are_those_of_the_run_truncated_by_hand():
    res = quick(num_requests=3000, arrival="poisson", rate=6.0, seed=2, **SMALL)
    s, df = summary(res), requests_frame(res)
    onset = res.overload_onset_s
    assert res.stop_reason == "overloaded"
    early = df[df.arrival_s < onset]
    assert s["stable_requests"] == len(early) >= 8 and early.finished.all()
    assert ((early.arrival_s + early.queue_s) <= onset).all()  # the backlog was empty at its onset
    for m in LATENCY:
        for p in (50, 99):
            assert s[f"{m}_p{p}_s"] == pytest.approx(float(np.percentile(early[f"{m}_s"], p)), rel=1e-12)
    late = df[df.arrival_s >= onset]
    assert late.queue_s.median() > late.e2e_s.sub(late.queue_s).median()  # after it, waits outgrew service


def test_the_bound_can_be_set_or_turned_off():
    kw = dict(num_requests=400, arrival="constant", rate=1000.0, **SMALL)
    small = quick(**kw, overload_backlog=50)
    assert small.stop_reason == "overloaded" and len(small.requests) < 100
    assert quick(**kw, overload_backlog=0).stop_reason == "idle"  # 0: never watched


def test_a_disaggregated_run_overloads_too():
    res = quick(num_requests=20_000, arrival="constant", rate=1000.0, input_len=1024, output_len=16, max_batch=16,
                disaggregation={"prefill_replicas": 1, "decode_replicas": 1})
    s = summary(res)
    assert res.stop_reason == "overloaded" and s["arrived"] < 2_000 and s["finished"] == s["arrived"]


def test_requests_that_never_fit_are_rejected_with_their_reason_and_no_metrics():
    res = simulate([Request(k, 0.0, 2_000_000, 10) for k in range(5)], SimConfig(hw="l40s"))
    s = summary(res)
    blocks = res.kv_blocks_per_replica
    capacity = (blocks - int(0.01 * blocks)) * 16  # all blocks but the admission watermark's, of 16 tokens
    key = f"longer than a replica's KV capacity ({capacity:,} tokens of prompt + output)"
    assert s["rejected"] == 5 and s["finished"] == 0 and s["reject_reasons"] == {key: 5}
    assert all(math.isnan(s[f"{m}_p{p}_s"]) for m in LATENCY for p in (50, 99))
    assert s["no_value_reason"] == f"all 5 requests rejected: 5 {key}"
    body = _strict(dumps(s))
    assert body["ttft_p50_s"] is None and body["served_rps"] is None


def test_a_mixed_run_counts_rejections_and_keeps_metrics():
    res = simulate([Request(0, 0.0, 2_000_000, 10), Request(1, 0.0, 100, 10)], SimConfig(hw="l40s"))
    s = summary(res)
    assert s["rejected"] == 1 and sum(s["reject_reasons"].values()) == 1 and s["no_value_reason"] is None
    assert s["ttft_p50_s"] > 0


def test_nothing_to_measure_gives_nan_and_a_reason_not_an_exception():
    empty = summary(SimResult([], [], 0.0, "idle", kv_blocks_per_replica=100))
    assert empty["no_value_reason"] == "no requests" and math.isnan(empty["served_rps"])
    assert all(math.isnan(v) for v in empty.values() if isinstance(v, float))
    cut = summary(quick(num_requests=5, arrival="offline", hw="a10g", max_time_s=0.05))
    assert cut["stop_reason"] == "max_time" and cut["finished"] == 0
    assert "time bound" in cut["no_value_reason"] and math.isnan(cut["ttft_p50_s"])
    _strict(dumps(cut))
