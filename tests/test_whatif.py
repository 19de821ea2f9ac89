"""The closed-form what-if: definitions, identities and monotonicity."""

import numpy as np
import pytest

from simulator import whatif
from simulator.decode_schedule import decode_contexts

STABLE_KEYS = {"ttft_s", "tpot_s", "e2e_s", "throughput_tok_s", "weights_bytes", "kv_cache_bytes", "max_batch",
               "bound_prefill", "bound_decode", "usd_per_mtok_output", "calibrated"}


def test_default_is_the_long_context_case():
    r = whatif()
    assert (r.model, r.hw, r.input_len, r.output_len) == ("llama-3.1-8b", "h200-sxm", 32768, 512)
    assert STABLE_KEYS <= set(r.to_dict())
    assert r.fits and r.calibrated is False


def test_latency_identities():
    r = whatif(batch=4, input_len=4096, output_len=300)
    assert r.e2e_s == pytest.approx(r.ttft_s + 299 * r.tpot_s)
    assert r.throughput_tok_s == pytest.approx(4 * 300 / r.e2e_s)


def test_cost_adds_up():
    r = whatif(batch=8, input_len=2048, output_len=256)
    total = r.usd_per_hour / 3600 * r.e2e_s
    assert 8 * 2048 * r.usd_per_mtok_input / 1e6 + 8 * 256 * r.usd_per_mtok_output / 1e6 == pytest.approx(total)


def test_prefill_compute_bound_and_decode_memory_bound_at_batch_one():
    r = whatif()
    assert r.bound_prefill == "compute" and r.bound_decode == "memory"


def test_longer_context_costs_more_per_token():
    a, b = whatif(input_len=8192), whatif(input_len=65536)
    assert b.ttft_s > 8 * a.ttft_s  # attention grows quadratically, the rest linearly
    assert b.tpot_s > a.tpot_s


def test_bigger_batch_raises_throughput_in_decode():
    a, b = whatif(batch=1, input_len=1024), whatif(batch=16, input_len=1024)
    assert b.throughput_tok_s > 5 * a.throughput_tok_s


def test_more_bandwidth_lowers_tpot():
    h100, h200 = whatif(hw="h100-sxm", input_len=8192), whatif(hw="h200-sxm", input_len=8192)
    assert h200.tpot_s < h100.tpot_s


def test_sampled_decode_schedule_matches_exact_sum():
    ctx, w = decode_contexts(1000, 5000)
    assert w.sum() == pytest.approx(4999)
    exact = np.arange(1001, 6000).sum()
    assert np.dot(ctx, w) == pytest.approx(exact, rel=1e-6)


def test_single_output_token_has_no_decode():
    r = whatif(input_len=128, output_len=1)
    assert r.tpot_s == 0.0 and r.e2e_s == r.ttft_s
    # the token comes out of the prefill, priced per input token: no output price, and a note why
    assert r.usd_per_mtok_output is None and r.usd_per_mtok_input > 0
    assert any("one output token" in n for n in r.notes)


def test_fp8_halves_weight_bytes_and_speeds_decode():
    b16 = whatif(model="llama-2-7b", hw="h100-sxm", input_len=512, output_len=128)
    f8 = whatif(model="llama-2-7b", hw="h100-sxm", input_len=512, output_len=128, dtype="fp8")
    assert f8.compute_dtype == "fp8" and f8.kv_dtype == "fp8"
    assert f8.tpot_s < 0.7 * b16.tpot_s


def test_sweep_is_the_product_of_the_grid():
    from simulator import sweep

    df = sweep(input_len=[1024, 4096, 16384], batch=[1, 2], output_len=32)
    assert len(df) == 6 and set(df["input_len"]) == {1024, 4096, 16384}
    row = df[(df.input_len == 4096) & (df.batch == 2)].iloc[0]
    assert row.ttft_s == whatif(input_len=4096, batch=2, output_len=32).ttft_s


@pytest.mark.parametrize("model", ["llama-2-7b", "deepseek-v3"])  # MHA and MLA: no GQA sharing of K/V
def test_long_prefill_attention_is_compute_bound(model):
    r = whatif(model=model, hw="h100-sxm", tp=8 if model == "deepseek-v3" else 1, input_len=32768, output_len=2,
               dtype="fp8", check_memory=False)
    att = [row for row in r.breakdown if row["phase"] == "prefill" and row["op"] == "attention"][0]
    assert att["bound"] == "compute"  # FlashAttention at long sequence runs at its math rate


def test_a_device_without_links_is_advised_single_device_changes_only():
    """m2-ultra's spec has no link between devices: the advice never spreads over several (B2)."""
    r = whatif(model="llama-3.1-70b", hw="m2-ultra", dtype="int4", input_len=500_000, output_len=8)
    assert not r.fits and r.advice["options"]
    assert all(o["devices"] == 1 and not {"tp", "pp", "cp"} & set(o["change"]) for o in r.advice["options"])
    big = whatif(model="llama-3.1-405b", hw="m2-ultra", input_len=512, output_len=8)
    assert not big.fits and "no link between devices" in big.advice["nothing_fits"]
