"""Fu 2024, "Challenges in Deploying Long-Context Transformers" (arXiv:2405.08944): its running
example (Yi-34B shape, 50K context, A100 80GB NVLink) from the specs and model alone.

The paper's body was not available here; the figures marked "secondary" are the paper's numbers as
reported by a third-party summary (app.argminai.com/arxiv-dashboard/papers/2405.08944v1)."""

import pytest

from simulator.catalog import load_model_spec
from simulator.layers import param_count
from simulator.memory import kv_bytes_per_token
from simulator.phases import Layout
from simulator.precision import Precision
from validate.long_context_example import PEAK, example

A100_BW = 2039e9  # hwspecs/a100-80gb-sxm.yaml, NVIDIA datasheet
A100_HBM = 80 * 2**30


@pytest.fixture(scope="module")
def one_gpu():
    return example(tp=1, calibration=PEAK)


def test_kv_cache_of_one_50k_request():
    m = load_model_spec("yi-34b")
    per_token = kv_bytes_per_token(m, Layout(), Precision())  # 60 layers x 2 x 8 heads x 128 x 2 B
    assert per_token == 245_760
    assert per_token * 50_000 == 12_288_000_000  # 12.3 GB (11.4 GiB) for one 50K-token user


def test_decode_is_weights_plus_kv_over_bandwidth(one_gpu):
    # 249 decode steps (the first of 250 tokens comes from prefill); each reads all weights and the
    # KV cache at its context, at 100% of 2.039 TB/s: sum over contexts 50,001 .. 50,249. The
    # embedding table is not read (one row per token), so weights = 2 B x (params - 64,000 x 7,168).
    weights = 2 * (param_count(load_model_spec("yi-34b")) - 64_000 * 7_168)
    kv = 245_760 * sum(range(50_001, 50_250))
    assert one_gpu["decode_50k_s"] == pytest.approx((249 * weights + kv) / A100_BW, rel=0.01)
    assert one_gpu["decode_50k_s"] == pytest.approx(9.8, rel=0.05)  # secondary: 9.8 s
    assert one_gpu["decode_4k_s"] == pytest.approx(8.5, rel=0.05)  # secondary: 8.5 s


def test_prefill_4k_is_two_flops_per_parameter_per_token_at_peak(one_gpu):
    assert one_gpu["prefill_4k_s"] == pytest.approx(0.89, rel=0.10)  # secondary: 0.89 s
    # at 50K attention adds 4 x 7168 x 60 x 50,000^2 / 2 FLOP, a third of the linear layers' work
    assert one_gpu["prefill_50k_s"] > 14.1


def test_concurrency_50k_on_four_gpus():
    four = example(tp=4, calibration=PEAK)
    weights = 2 * param_count(load_model_spec("yi-34b")) / 4
    per_user = 245_760 * 50_250 / 4
    upper = int((A100_HBM - weights) // per_user)  # 22 without activation memory
    assert upper - 2 <= four["max_concurrent_50k"] <= upper
    assert example(tp=1, calibration=PEAK)["max_concurrent_50k"] <= 1  # 68.8 GB of weights leave room for one at most
