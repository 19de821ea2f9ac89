"""Disaggregated prefill/decode pools with a KV handover, and KV offload to host memory or NVMe."""

import pytest

from simulator.serving.metrics import requests_frame, summary
from simulator.serving.simulate import SimConfig, quick, simulate
from simulator.serving.traffic import Request

KV_PER_TOKEN = 2 * 8 * 128 * 2 * 32  # llama-3.1-8b, bf16: K and V, 8 KV heads of 128, 32 layers = 131,072 B


def _one(cfg, input_len=8191, output_len=64):
    return requests_frame(simulate([Request(0, 0.0, input_len, output_len)], cfg)).iloc[0]


@pytest.mark.parametrize("layerwise", [True, False])
def test_lone_request_pays_the_handover_between_its_first_and_second_token(layerwise):
    co = _one(SimConfig(hw="h100-sxm", max_batched_tokens=8192))
    dis = _one(SimConfig(hw="h100-sxm", max_batched_tokens=8192, disaggregation={
        "prefill_replicas": 1, "decode_replicas": 1, "link_bandwidth": "10 GB/s", "layerwise": layerwise}))
    transfer = 8192 * KV_PER_TOKEN / 10e9  # prompt + first token, 0.107 s
    assert dis.ttft_s == pytest.approx(co.ttft_s, rel=1e-12)  # the prefill replica computes the first token
    # layer-wise: the last of 32 layers leaves after the prefill; the rest went under it (prefill > transfer)
    gap = max(transfer - co.ttft_s, transfer / 32) if layerwise else transfer
    assert dis.e2e_s - co.e2e_s == pytest.approx(gap, rel=1e-9)


def test_handovers_to_one_decode_replica_queue_on_its_link():
    cfg = SimConfig(hw="h100-sxm", max_batched_tokens=8192, disaggregation={
        "prefill_replicas": 2, "decode_replicas": 1, "link_bandwidth": "10 GB/s", "layerwise": False})
    res = simulate([Request(k, 0.0, 8191, 16) for k in range(2)], cfg)
    a, b = sorted(r.handover_s for r in res.requests)
    assert b - a == pytest.approx(8192 * KV_PER_TOKEN / 10e9, rel=1e-9)
    assert res.handover_bytes == 2 * 8192 * KV_PER_TOKEN


def test_disaggregated_run_finishes_everything_with_separate_pools():
    res = quick(num_requests=300, rate=6.0, input_len={"uniform": [500, 6000]}, output_len={"uniform": [20, 400]},
                hw="h100-sxm", disaggregation={"prefill_replicas": 1, "decode_replicas": 2})
    df = requests_frame(res)
    assert summary(res)["finished"] == 300
    assert set(df.replica) == {0} and res.pools[0][:2] == ("prefill", 1) and res.pools[1][:2] == ("decode", 2)
    assert {r.decode_replica for r in res.requests} == {1, 2}


def test_offload_tier_holds_the_overflow_instead_of_preempting_and_slows_decode():
    # 64 x 8000 tokens = 512K tokens of KV; an H100 holds about 450K of llama-3.1-8b's
    kw = dict(num_requests=64, arrival="offline", input_len=2000, output_len=6000, hw="h100-sxm", max_batch=64)
    base = quick(**kw)
    host = quick(**kw, kv_offload={"tier": "host", "capacity": "64 GiB"})
    nvme = quick(**kw, kv_offload={"tier": "nvme", "capacity": "64 GiB"})
    assert summary(base)["preemptions"] > 0
    for res in (host, nvme):
        assert summary(res)["preemptions"] == 0 and summary(res)["finished"] == 64
        assert any(r.kv_tier != "device" for r in res.requests)
    # the same work, but the overflow is read over PCIe every step: NVMe (6.5 GB/s) is slower than host DRAM
    assert summary(nvme)["tpot_p50_s"] > summary(host)["tpot_p50_s"]
