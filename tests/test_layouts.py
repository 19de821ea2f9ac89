"""Context and expert parallelism: per-device work, memory and traffic against hand arithmetic."""

import numpy as np
import pytest

from simulator.attention_cost import kv_bytes_per_token_layer
from simulator.catalog import load_model_spec
from simulator.closed_form import whatif
from simulator.errors import InfercastError
from simulator.memory import kv_bytes_per_token, weights_bytes
from simulator.ops import build_ops
from simulator.phases import Decode, Layout, Prefill, check_layout
from simulator.precision import Precision

BF16 = Precision("bf16", "bf16", "bf16")
L70 = load_model_spec("llama-3.1-70b")


def op(ops, name):
    return next(o for o in ops if o.name == name)


def total_flops(ops, name):
    return sum(float(np.sum(o.flops)) * o.count for o in ops if o.name == name)


def test_context_parallel_prefill_splits_tokens_and_attention_over_the_ranks():
    ph = Prefill.of(1, 65536)
    one, four = (build_ops(L70, ph, Layout(tp=8, cp=cp), BF16) for cp in (1, 4))
    # dense layers see 65536 / 4 tokens per rank; attention does 1/4 of the query-key pairs
    assert op(four, "qkv_proj").shape[0] == 16384 and op(one, "qkv_proj").shape[0] == 65536
    assert total_flops(four, "attention") == pytest.approx(total_flops(one, "attention") / 4)
    # each rank passes its 16384 tokens' K/V three hops around the ring in every layer
    ring = op(four, "cp_ring_kv")
    assert ring.count == 80 and ring.comm_bytes == 3 * 16384 * kv_bytes_per_token_layer(L70, Layout(tp=8), BF16)
    assert ring.hidden_under == "attention"


def test_context_parallel_decode_reads_a_shard_of_the_kv_and_merges_partial_outputs():
    ph = Decode.of(4, 100_000)
    one, four = (build_ops(L70, ph, Layout(tp=8, cp=cp), BF16) for cp in (1, 4))
    kv = 4 * 100_000 * kv_bytes_per_token_layer(L70, Layout(tp=8), BF16)
    assert op(four, "attention").bytes == pytest.approx(op(one, "attention").bytes - 0.75 * kv)
    assert op(four, "qkv_proj").shape[0] == 4  # the dense layers run replicated on every cp rank
    # merge: 4 ranks x 4 tokens x 64/8 heads x (128 values + 1 log-sum-exp) x 4 B, gathered per layer
    merge = op(four, "cp_merge")
    assert merge.collective == "all_gather" and merge.comm_bytes == 4 * 4 * 8 * 129 * 4 and merge.count == 80


def test_context_parallel_memory_shards_the_kv_not_the_weights():
    assert kv_bytes_per_token(L70, Layout(tp=8, cp=4), BF16) == kv_bytes_per_token(L70, Layout(tp=8), BF16) / 4
    assert weights_bytes(L70, Layout(tp=8, cp=4), BF16) == weights_bytes(L70, Layout(tp=8), BF16)
    assert Layout(tp=8, pp=2, cp=4).devices == 64


def test_context_parallelism_cuts_long_prompt_ttft_nearly_linearly():
    kw = dict(model="llama-3.1-70b", hw="h100-sxm", tp=8, input_len=131072, output_len=64)
    one, four = whatif(**kw), whatif(**kw, cp=4)
    assert four.devices == 32 and 0.24 < four.ttft_s / one.ttft_s < 0.3


def test_expert_parallel_keeps_whole_experts_and_adds_all_to_all():
    m = load_model_spec("mixtral-8x7b")
    ph = Prefill.of(1, 4096)
    tp8, ep8 = (build_ops(m, ph, Layout(tp=8, ep=ep), BF16) for ep in (1, 8))
    # TP8 splits each expert's 2 x 14336 gate/up columns 8 ways; EP8 keeps them whole
    assert op(tp8, "expert_gate_up_proj").shape[1] == 2 * 14336 // 8
    assert op(ep8, "expert_gate_up_proj").shape[1] == 2 * 14336
    # the same FLOPs per device under uniform routing, the same weights per device
    assert total_flops(ep8, "expert_gate_up_proj") == pytest.approx(total_flops(tp8, "expert_gate_up_proj"))
    assert weights_bytes(m, Layout(tp=8, ep=8), BF16) == pytest.approx(weights_bytes(m, Layout(tp=8), BF16))
    # dispatch: a rank's 4096 / 8 tokens, each to 2 experts, 4096 hidden x 2 B, in every layer
    d = op(ep8, "ep_dispatch")
    assert d.collective == "all_to_all" and d.comm_bytes == 4096 / 8 * 2 * 4096 * 2 and d.count == 32
    assert op(ep8, "tp_all_reduce").count == 2 * 32 - 32  # one all-reduce's traffic left per MoE layer


def test_expert_imbalance_scales_the_busiest_rank():
    m = load_model_spec("mixtral-8x7b")
    ph = Prefill.of(1, 4096)
    even, skew = (build_ops(m, ph, Layout(tp=8, ep=8, ep_imbalance=f), BF16) for f in (1.0, 1.5))
    assert total_flops(skew, "expert_down_proj") == pytest.approx(1.5 * total_flops(even, "expert_down_proj"))


def test_bad_layouts_name_the_flag():
    with pytest.raises(InfercastError, match="--ep 2: llama-3.1-70b has no experts"):
        check_layout(L70, Layout(tp=8, ep=2))
    with pytest.raises(InfercastError, match="--ep 3: must divide --tp"):
        check_layout(load_model_spec("mixtral-8x7b"), Layout(tp=8, ep=3))
    with pytest.raises(InfercastError, match="--cp"):
        check_layout(L70, Layout(cp=0))


@pytest.mark.parametrize("cp", [2, 4])
def test_one_request_alone_in_the_simulator_matches_the_whatif_under_context_parallelism(cp):
    from simulator.serving.metrics import requests_frame
    from simulator.serving.simulate import quick

    kw = dict(model="llama-3.1-70b", hw="h100-sxm", tp=8, cp=cp, input_len=65536, output_len=64)
    w = whatif(**kw)
    r = requests_frame(quick(num_requests=1, rate=1.0, max_batched_tokens=70000, **kw)).iloc[0]
    # the simulator's prefill is one step of a rank's 65536 / cp tokens, ring passing hidden
    assert r.ttft_s == pytest.approx(w.ttft_s, rel=0.01) and r.tpot_s == pytest.approx(w.tpot_s, rel=0.01)


def _full_pass(model, phase, layout):
    """Seconds of one pass of `phase` through every stage, op by op (no micro-batching)."""
    from simulator.ops import build_ops as ops_of
    from simulator.roofline import op_time
    from simulator.step import device, hide_overlapped

    dev = device("h100-sxm")
    tile = dev.cal.attention.query_tile * dev.spec.engine.compute_units
    ops = ops_of(model, phase, layout, BF16, tile)
    return float(np.sum(hide_overlapped(ops, [op_time(o, dev) for o in ops])))


def test_pipeline_stages_run_the_batch_as_micro_batches():
    from simulator.step import device, step_time

    lay, dev = Layout(tp=2, pp=4), device("h100-sxm")
    # decode, batch 8 over 4 stages: 4 micro-batches of 2 in a full pipeline, 4 slots of 1/4 pass each
    dec = step_time(L70, dev, Decode.of(8, 4096), lay, BF16)
    assert float(dec.total_s) == pytest.approx(_full_pass(L70, Decode.of(2, 4096), lay))
    # a static batch's prefill fills and drains the pipeline: (4 + 4 - 1) slots of 1/4 pass
    pre = step_time(L70, dev, Prefill.of(8, 2048), lay, BF16, pipeline_fill=True)
    assert float(pre.total_s) == pytest.approx(7 / 4 * _full_pass(L70, Prefill.of(2, 2048), lay))
    # one sequence: no micro-batching, one pass; FLOPs reported for the whole batch
    one = step_time(L70, dev, Decode.of(1, 4096), lay, BF16)
    assert float(one.total_s) == pytest.approx(_full_pass(L70, Decode.of(1, 4096), lay))
    f = lambda st: sum(float(np.sum(o.flops)) * o.count for o in st.ops if o.kind == "gemm")  # noqa: E731
    assert f(dec) == pytest.approx(4 * f(step_time(L70, dev, Decode.of(2, 4096), Layout(tp=2), BF16)))


def test_the_serving_step_model_pipelines_like_the_step_time():
    from simulator.serving.step_model import StepModel
    from simulator.step import device, step_time

    lay, dev = Layout(tp=2, pp=4), device("h100-sxm")
    sm = StepModel(L70, dev, lay, BF16)
    want = step_time(L70, dev, Decode.of(8, 4096), lay, BF16)
    assert sm.cost_keys([], 8, 8 * 4096.0, 8)[0] == pytest.approx(float(want.total_s), rel=1e-9)
    rows = np.array([8, 5, 3, 1])
    keys = rows * 4096
    out = np.empty((3, 4))
    sm.decode_into(out, np.array([rows, keys]))
    for j in range(4):
        assert tuple(out[:, j]) == pytest.approx(sm.cost_keys([], int(rows[j]), float(keys[j]), int(rows[j])), rel=1e-12)


def test_ulysses_trades_the_ring_for_all_to_alls_around_attention():
    lay = Layout(tp=4, cp=4, cp_kind="ulysses")
    ops = build_ops(L70, Prefill.of(1, 65536), lay, BF16)
    names = {o.name for o in ops}
    assert {"cp_a2a_qkv", "cp_a2a_out"} <= names and "cp_ring_kv" not in names
    # a rank sends its 16384 tokens' q (64/4 heads) and k, v (8/4 KV heads) of 128 dims, 2 B each
    assert op(ops, "cp_a2a_qkv").comm_bytes == 16384 * (16 * 128 + 2 * 2 * 128) * 2
    # the same attention FLOPs per rank as the ring: all tokens of a quarter of the heads
    ring = build_ops(L70, Prefill.of(1, 65536), Layout(tp=4, cp=4), BF16)
    assert total_flops(ops, "attention") == pytest.approx(total_flops(ring, "attention"))
    # 8 KV heads over 16 ranks: each keeps one whole head, so Ulysses holds twice the ring's KV
    assert kv_bytes_per_token(L70, lay, BF16) == 2 * kv_bytes_per_token(L70, Layout(tp=4, cp=4), BF16)
    with pytest.raises(InfercastError, match="--cp-kind ulysses"):
        check_layout(L70, Layout(tp=8, cp=16, cp_kind="ulysses"))
