"""Prefix caching, prefix-affinity routing and swap preemption."""

import numpy as np

from simulator.serving.metrics import requests_frame, steps_frame, summary
from simulator.serving.simulate import SimConfig, quick, simulate
from simulator.serving.traffic import Request


def _shared_prefix_requests(n, prefix_len, input_len, gap_s, prefixes=1):
    return [Request(k, k * gap_s, input_len, 32, prefix_id=k % prefixes, prefix_len=prefix_len) for k in range(n)]


def test_prefix_cache_serves_the_shared_prompt_after_the_first_request():
    reqs = _shared_prefix_requests(20, 4000, 5000, gap_s=0.5)
    on = simulate(reqs, SimConfig(hw="h100-sxm"))
    off = simulate(_shared_prefix_requests(20, 4000, 5000, gap_s=0.5), SimConfig(hw="h100-sxm", prefix_caching=False))
    hit = [r.prefix_hit_tokens for r in on.requests]
    assert hit[0] == 0 and hit[1:] == [4000] * 19  # 4000 = 250 whole blocks of 16
    assert on.prefix_hits == 19 and on.prefix_misses == 1
    # prefill work: the first request's 5000 tokens, then 1000 new tokens each
    assert steps_frame(on).prefill_tokens.sum() == 5000 + 19 * 1000
    assert steps_frame(off).prefill_tokens.sum() == 20 * 5000
    assert summary(on)["ttft_p50_s"] < 0.5 * summary(off)["ttft_p50_s"]


def test_partial_blocks_of_a_prefix_are_not_shared():
    reqs = _shared_prefix_requests(3, 1000, 2000, gap_s=1.0)  # 1000 = 62 blocks of 16 + 8 tokens
    res = simulate(reqs, SimConfig(hw="h100-sxm"))
    assert [r.prefix_hit_tokens for r in res.requests] == [0, 992, 992]


def test_idle_prefixes_are_evicted_when_blocks_run_short():
    # one prefix per request, each used once: the cache fills, then LRU eviction frees room
    reqs = [Request(k, k * 0.05, 30000, 8, prefix_id=k, prefix_len=29000) for k in range(40)]
    res = simulate(reqs, SimConfig(hw="l40s", model="llama-3.1-8b"))
    s = summary(res)
    assert s["finished"] == 40 and s["rejected"] == 0 and res.prefix_hits == 0


def test_prefix_affinity_router_keeps_prefixes_on_one_replica():
    def run(router):
        reqs = _shared_prefix_requests(200, 6000, 7000, gap_s=0.1, prefixes=4)
        return simulate(reqs, SimConfig(hw="h100-sxm", replicas=3, router=router))

    aff, rr = run("prefix_affinity"), run("round_robin")
    assert aff.prefix_misses == 4 and rr.prefix_misses == 12  # round robin computes each prefix on all 3
    df = requests_frame(aff)
    homes = df.assign(p=np.arange(len(df)) % 4).groupby("p").replica.nunique()
    assert (homes == 1).all()  # light load: every prefix stays home


def test_swap_preemption_moves_kv_instead_of_recomputing():
    kw = dict(num_requests=64, arrival="offline", input_len=1000, output_len=6000, hw="l40s", max_batch=64)
    rec, swp = quick(**kw), quick(**kw, preemption="swap", swap_space_gib=64)
    assert summary(rec)["preemptions"] > 0 and summary(swp)["preemptions"] > 0
    assert all(r.swaps == r.preemptions for r in swp.requests)
    assert steps_frame(swp).prefill_tokens.sum() == 64 * 1000  # nothing prefilled twice
    assert steps_frame(rec).prefill_tokens.sum() > 64 * 1000
    assert summary(swp)["finished"] == 64


def test_swap_space_too_small_falls_back_to_recompute():
    kw = dict(num_requests=64, arrival="offline", input_len=1000, output_len=6000, hw="l40s", max_batch=64)
    res = quick(**kw, preemption="swap", swap_space_gib=0)
    assert summary(res)["preemptions"] > 0 and all(r.swaps == 0 for r in res.requests)
