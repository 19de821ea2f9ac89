"""Memory plan: weights, KV, the largest batch, and the does-not-fit answer."""

import pytest

from simulator.catalog import load_model_spec
from simulator.layers import param_count
from simulator.memory import memory_plan, weights_bytes
from simulator.phases import Layout
from simulator.precision import Precision
from simulator.step import device
from simulator.closed_form import whatif

BF16 = Precision("bf16", "bf16", "bf16")


def test_weights_bytes_are_two_per_parameter_in_bf16():
    m = load_model_spec("llama-3.1-8b")
    assert weights_bytes(m, Layout(), BF16) == 2 * param_count(m)


def test_weights_split_over_tp_and_pp():
    m = load_model_spec("llama-2-70b")
    full = weights_bytes(m, Layout(), BF16)
    assert weights_bytes(m, Layout(tp=4), BF16) == pytest.approx(full / 4, rel=0.01)
    assert weights_bytes(m, Layout(pp=2), BF16) < 0.52 * full


def test_max_batch_by_hand(toy_hw_path):
    # toy: 100 GB x 0.9 usable = 90 GB. llama-3.1-8b bf16 weights 16.06 GB; KV 131,072 B/token.
    m = load_model_spec("llama-3.1-8b")
    dev = device(toy_hw_path)
    plan = memory_plan(m, dev, Layout(), BF16, batch=1, context=10000, prefill_tokens=1000)
    per_req = 131072 * 10000
    assert plan.kv_bytes_per_request == per_req
    act = plan.activation_bytes
    expected = int((90e9 - 2 * param_count(m) - act) // per_req)
    assert plan.max_batch == expected


def test_does_not_fit_is_an_answer_not_a_number():
    r = whatif(model="llama-3.1-405b", hw="h200-sxm", input_len=1024, output_len=16)
    assert not r.fits and r.ttft_s is None and r.throughput_tok_s is None
    assert r.message.startswith("does not fit: needs ") and "GiB" in r.message


def test_sliding_window_bounds_kv_memory():
    short = whatif(model="mistral-7b", hw="h200-sxm", input_len=4000, output_len=96)
    long = whatif(model="mistral-7b", hw="h200-sxm", input_len=30000, output_len=96)
    assert long.kv_cache_bytes == short.kv_cache_bytes
