"""Utilisation, KV occupancy and the per-request frame, against arithmetic on hand-built results."""

import math

import pytest

from simulator.serving.metrics import (
    REQUEST_COLUMNS,
    kv_occupancy,
    replica_layout,
    requests_frame,
    summary,
    utilisation,
)
from simulator.serving.simulate import SimResult, quick
from simulator.serving.traffic import Request

# (replica, start_s, duration_s, n_steps, decode_tokens, prefill_tokens, flops, bytes, kv_blocks_used)
TWO_STEPS = [(0, 0.0, 2.0, 1, 4, 1000, 6e12, 2e10, 50),
             (0, 3.0, 1.0, 10, 40, 0, 2e12, 1e10, 80)]


def _request(**kw):
    r = Request(0, 0.0, 1000, 11)
    r.scheduled_s, r.first_token_s, r.finish_s, r.replica = 0.0, 2.0, 4.0, 0
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def _result(steps=TWO_STEPS, replicas=1, pools=(), requests=None, **kw):
    return SimResult(requests if requests is not None else [_request()], list(steps), 5.0, "idle",
                     kv_blocks_per_replica=100, devices_per_replica=2, peak_flops=4e12, mem_bandwidth=2e10,
                     replicas=replicas, pools=list(pools), **kw)


def test_utilisation_of_two_hand_made_steps():
    u = utilisation(_result())
    assert u["mfu"] == pytest.approx((6e12 + 2e12) / (4e12 * 5.0))  # 0.4
    assert u["mbu"] == pytest.approx((2e10 + 1e10) / (2e10 * 5.0))  # 0.3
    assert u["busy_fraction"] == pytest.approx((2.0 + 1.0) / 5.0)  # 0.6
    assert u["mfu_busy"] == pytest.approx(8e12 / (4e12 * 3.0))
    assert u["mbu_busy"] == pytest.approx(3e10 / (2e10 * 3.0))


def test_an_idle_replica_halves_utilisation():
    one, two = utilisation(_result()), utilisation(_result(replicas=2))
    for k in ("mfu", "mbu", "busy_fraction"):
        assert two[k] == pytest.approx(one[k] / 2)
    assert two["mfu_busy"] == pytest.approx(one["mfu_busy"])  # busy time is the same steps


def test_replica_count_comes_from_the_steps_when_the_result_understates_it():
    steps = TWO_STEPS + [(1, 0.0, 5.0, 1, 8, 0, 4e12, 5e10, 10)]
    u = utilisation(_result(steps=steps, replicas=1))
    assert u["mfu"] == pytest.approx((8e12 + 4e12) / (4e12 * 5.0 * 2))
    assert u["busy_fraction"] == pytest.approx((3.0 + 5.0) / (5.0 * 2))


def test_pools_of_different_tp_are_weighted_by_devices():
    # replica 0: a TP4 prefill replica of 100 blocks; replica 1: a TP1 decode replica of 200 blocks
    steps = [(0, 0.0, 2.0, 1, 0, 4000, 6e12, 2e10, 50), (1, 1.0, 4.0, 1, 8, 0, 2e12, 6e10, 150)]
    res = _result(steps=steps, replicas=2, pools=[("prefill", 1, 4, 100), ("decode", 1, 1, 200)])
    tp, blocks, roles = replica_layout(res)[:3]
    assert tp.tolist() == [4, 1] and blocks.tolist() == [100, 200] and roles == ["prefill", "decode"]
    u = utilisation(res)
    assert u["mfu"] == pytest.approx((6e12 * 4 + 2e12 * 1) / (4e12 * 5.0 * 5))
    assert u["busy_fraction"] == pytest.approx((2.0 * 4 + 4.0 * 1) / (5.0 * 5))
    kv = kv_occupancy(res)
    assert kv.kv_fraction.tolist() == pytest.approx([50 / 100, 150 / 200])


def test_kv_occupancy_series_and_its_mean_and_peak():
    res = _result(steps=list(reversed(TWO_STEPS)) + [(1, 1.0, 2.0, 1, 2, 0, 0.0, 0.0, 20)], replicas=2)
    kv = kv_occupancy(res)
    assert list(kv.columns) == ["time_s", "replica", "kv_blocks_used", "kv_fraction"]
    assert kv.time_s.tolist() == [0.0, 3.0, 1.0] and kv.replica.tolist() == [0, 0, 1]  # by replica, then time
    assert kv.kv_fraction.tolist() == pytest.approx([0.5, 0.8, 0.2])
    assert kv_occupancy(res, replica=1).kv_blocks_used.tolist() == [20]
    s = summary(res)
    # each value holds while its step runs, idle time is empty: replica 0 (0.5*2 + 0.8*1)/5, replica 1 0.2*2/5
    assert s["kv_occupancy_mean"] == pytest.approx(((0.5 * 2 + 0.8 * 1) / 5 + 0.2 * 2 / 5) / 2)
    assert s["kv_occupancy_peak"] == pytest.approx(0.8)


def test_summary_keeps_its_keys_and_appends_the_new_ones():
    res = _result(requests=[_request(swaps=1, preemptions=2), _request(swaps=2, preemptions=2)],
                  prefix_hits=3, prefix_misses=1)
    s = summary(res)
    old = ["requests", "finished", "rejected", "throughput_tok_s", "output_throughput_tok_s", "requests_per_s",
           "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "e2e_p50_s", "e2e_p99_s", "goodput_rps",
           "preemptions", "makespan_s", "stop_reason"]
    new = ["mfu", "mbu", "busy_fraction", "kv_occupancy_mean", "kv_occupancy_peak", "prefix_hit_rate", "swaps",
           "prompt_cached_fraction"]
    overload = ["arrived", "offered_rps", "served_rps", "overload_onset_s", "metrics_cover", "stable_requests",
                "reject_reasons", "no_value_reason"]
    assert list(s) == old + new + overload
    assert s["prefix_hit_rate"] == pytest.approx(3 / 4) and s["swaps"] == 3 and s["preemptions"] == 4
    assert s["mfu"] == pytest.approx(0.4) and s["mbu"] == pytest.approx(0.3) and s["busy_fraction"] == pytest.approx(0.6)
    assert s["kv_occupancy_mean"] == pytest.approx((0.5 * 2 + 0.8 * 1) / 5) and s["kv_occupancy_peak"] == 0.8
    assert s["prompt_cached_fraction"] == 0.0  # no prompt token came from the cache
    assert math.isnan(summary(_result())["prefix_hit_rate"])  # no prefix lookups


def test_empty_and_zero_length_results_give_nan_not_errors():
    res = SimResult([], [], 0.0, "idle", kv_blocks_per_replica=100)
    u = utilisation(res)
    assert all(math.isnan(v) for v in u.values())
    assert len(kv_occupancy(res)) == 0 and list(requests_frame(res).columns) == list(REQUEST_COLUMNS)


def test_request_frame_has_swaps_prefix_hits_and_kv_tier():
    r = _request(swaps=1, prefix_hit_tokens=512, kv_tier="host")
    df = requests_frame(_result(requests=[r, _request()]))
    assert df.swaps.tolist() == [1, 0] and df.prefix_hit_tokens.tolist() == [512, 0]
    assert df.kv_tier.tolist() == ["host", "device"]


def test_request_without_a_kv_tier_attribute_reads_as_device():
    class Old:  # a request from before kv_tier existed
        rid, replica, arrival_s, input_len, output_len, rejected = 0, 0, 0.0, 10, 1, False
        scheduled_s = first_token_s = finish_s = 1.0
        itl_max_s, preemptions, swaps, prefix_hit_tokens = 0.0, 0, 0, 0

    assert requests_frame(_result(requests=[Old()])).kv_tier.tolist() == ["device"]


def test_a_real_run_is_between_idle_and_peak():
    res = quick(num_requests=200, rate=5.0, seed=1)
    s, u = summary(res), utilisation(res)
    assert 0 < s["mfu"] < 1 and 0 < s["mbu"] < 1
    assert 0 < s["busy_fraction"] <= 1 + 1e-9 and u["mfu_busy"] >= s["mfu"] * (1 - 1e-9)
    assert 0 < s["kv_occupancy_mean"] <= s["kv_occupancy_peak"] <= 1
    kv = kv_occupancy(res)
    assert len(kv) == len(res.steps) and (kv.kv_blocks_used <= res.kv_blocks_per_replica).all()
