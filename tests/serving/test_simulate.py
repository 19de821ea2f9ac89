"""Serving simulator against the what-if, queueing theory and itself."""

import numpy as np
import pytest

from simulator import whatif
from simulator.serving.metrics import requests_frame, summary
from simulator.serving.simulate import SimConfig, quick, simulate
from simulator.serving.traffic import Request


def test_one_request_alone_gets_the_whatif_latency():
    res = quick(num_requests=1, arrival="offline", input_len=8192, output_len=128, hw="h200-sxm",
                max_batched_tokens=16384)
    df = requests_frame(res)
    w = whatif(model="llama-3.1-8b", hw="h200-sxm", input_len=8192, output_len=128)
    assert df.ttft_s[0] == pytest.approx(w.ttft_s, rel=0.01)
    assert df.e2e_s[0] == pytest.approx(w.e2e_s, rel=0.01)


def test_offline_batch_matches_the_closed_form_batch():
    res = quick(num_requests=16, arrival="offline", input_len=1024, output_len=200, hw="h100-sxm",
                max_batched_tokens=16 * 1024)
    w = whatif(model="llama-3.1-8b", hw="h100-sxm", batch=16, input_len=1024, output_len=200)
    s = summary(res)
    assert s["output_throughput_tok_s"] == pytest.approx(w.throughput_tok_s, rel=0.05)
    assert s["makespan_s"] == pytest.approx(w.e2e_s, rel=0.05)


def test_same_seed_same_result_other_seed_differs():
    a = summary(quick(num_requests=200, rate=5.0, seed=7))
    b = summary(quick(num_requests=200, rate=5.0, seed=7))
    c = summary(quick(num_requests=200, rate=5.0, seed=8))
    assert a == b and a["ttft_p50_s"] != c["ttft_p50_s"]


def test_md1_waiting_time():
    """One request at a time (max_batch 1) of fixed lengths is a deterministic server: the mean wait
    of Poisson arrivals is rho / (2 mu (1 - rho)) (Pollaczek-Khinchine with zero service variance)."""
    service = whatif(model="llama-3.1-8b", hw="h100-sxm", input_len=256, output_len=4).e2e_s
    rho = 0.7
    res = quick(num_requests=20000, arrival="poisson", rate=rho / service, input_len=256, output_len=4,
                max_batch=1, seed=3)
    wait = requests_frame(res).queue_s.mean()
    assert wait == pytest.approx(rho * service / (2 * (1 - rho)), rel=0.05)


def test_littles_law():
    res = quick(num_requests=3000, arrival="gamma", cv=2.0, rate=8.0, input_len={"uniform": [100, 3000]},
                output_len={"lognormal": {"mean": 200, "sigma": 0.6}}, replicas=2, seed=11)
    df = requests_frame(res)
    # time-average number in system from arrivals and departures = lambda x mean time in system
    events = np.concatenate([np.c_[df.arrival_s, np.ones(len(df))], np.c_[df.arrival_s + df.e2e_s, -np.ones(len(df))]])
    events = events[np.argsort(events[:, 0], kind="stable")]
    n_in = np.cumsum(events[:, 1])[:-1]
    area = float(np.sum(n_in * np.diff(events[:, 0])))
    horizon = events[-1, 0] - events[0, 0]
    lam = len(df) / horizon
    assert area / horizon == pytest.approx(lam * df.e2e_s.mean(), rel=0.02)


def test_request_longer_than_kv_capacity_is_rejected_not_hung():
    res = simulate([Request(0, 0.0, 2_000_000, 10), Request(1, 0.0, 100, 10)], SimConfig(hw="l40s", model="llama-3.1-8b"))
    s = summary(res)
    assert s["rejected"] == 1 and s["finished"] == 1 and res.stop_reason == "idle"


def test_memory_pressure_preempts_and_still_finishes():
    res = quick(num_requests=64, arrival="offline", input_len=1000, output_len=6000, hw="l40s", max_batch=64)
    s = summary(res)
    assert s["finished"] == 64 and s["preemptions"] > 0


@pytest.mark.parametrize("arrival,rate", [("poisson", 6.0), ("offline", 1.0)])
def test_decode_stretches_are_exact(arrival, rate):
    kw = dict(num_requests=300, arrival=arrival, rate=rate, input_len={"uniform": [200, 4000]},
              output_len={"uniform": [10, 600]}, replicas=2, seed=5, hw="l40s")
    a = requests_frame(quick(**kw, stretch=True))
    b = requests_frame(quick(**kw, stretch=False))
    for col in ("ttft_s", "e2e_s", "tpot_s", "itl_max_s"):
        assert np.allclose(a[col], b[col], rtol=1e-9, equal_nan=True), col
    assert (a.preemptions == b.preemptions).all()
