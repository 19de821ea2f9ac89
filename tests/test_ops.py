"""Operator model: FLOPs and bytes against hand arithmetic."""

import numpy as np
import pytest

from simulator.attention_cost import causal_pairs, tiled_key_reads
from simulator.catalog import load_model_spec
from simulator.layers import param_count
from simulator.ops import build_ops
from simulator.phases import Decode, Layout, Prefill
from simulator.precision import Precision

BF16 = Precision("bf16", "bf16", "bf16")


def flops(ops, kind=None, name=None):
    return sum(float(np.sum(o.flops)) * o.count for o in ops
               if (kind is None or o.kind == kind) and (name is None or o.name == name))


def test_decode_flops_are_two_per_parameter_per_token():
    m = load_model_spec("llama-2-7b")
    ops = build_ops(m, Decode.of(1, 1), Layout(), BF16)
    # every weight but the embedding table (a lookup) does one multiply-add per token
    gemm_params = param_count(m) - m.vocab_size * m.hidden_size - (2 * m.num_layers + 1) * m.hidden_size
    assert flops(ops, "gemm") == 2 * gemm_params
    assert flops(ops) == pytest.approx(2 * param_count(m), rel=0.03)


def test_decode_flops_of_moe_follow_active_parameters():
    m = load_model_spec("mixtral-8x7b")
    ops = build_ops(m, Decode.of(1, 1), Layout(), BF16)
    expert = 2 * 32 * 2 * 3 * 4096 * 14336  # 2 FLOP x 32 layers x top-2 x 3 matrices x d x ff
    assert flops(ops, name="expert_gate_up_proj") + flops(ops, name="expert_down_proj") == expert


def test_moe_batch_touches_more_experts_and_reads_their_weights():
    m = load_model_spec("mixtral-8x7b")
    one = build_ops(m, Decode.of(1, 100), Layout(), BF16)
    many = build_ops(m, Decode.of(64, 100), Layout(), BF16)
    w = {o.name: o.bytes for o in one}
    w64 = {o.name: o.bytes for o in many}
    # batch 1 touches k=2 experts; 64 tokens touch 8 (1 - (6/8)^64 ~ 1): 4x the expert weights
    assert w64["expert_down_proj"] / w["expert_down_proj"] == pytest.approx(4.0, rel=0.01)


def test_prefill_attention_flops_grow_quadratically():
    m = load_model_spec("llama-3.1-8b")
    a8 = flops(build_ops(m, Prefill.of(1, 8192), Layout(), BF16), "attention")
    a2 = flops(build_ops(m, Prefill.of(1, 2048), Layout(), BF16), "attention")
    assert a8 / a2 == pytest.approx(16.0, rel=1e-3)  # causal n(n+1)/2: 8192*8193 / (2048*2049)
    # hand count: 4 FLOP per head-dim per query-key pair x 32 heads x 128 x 32 layers
    assert a2 == 4 * 32 * 128 * (2048 * 2049 // 2) * 32


def test_causal_pairs_with_prior_context_and_window():
    assert causal_pairs(np.array([3]), np.array([2]), None)[0] == 3 + 4 + 5
    assert causal_pairs(np.array([4]), np.array([0]), 2)[0] == 1 + 2 + 2 + 2


def test_tiled_key_reads_by_hand():
    # 256 queries in tiles of 128: tile 1 sees 128 keys, tile 2 sees 256
    assert tiled_key_reads(256, 0, 128, None) == 128 + 256
    # after 100 cached tokens each tile also reads those
    assert tiled_key_reads(256, 100, 128, None) == 228 + 356
    # window 200: the third tile (queries 257..384) sees keys 58..384
    assert tiled_key_reads(384, 0, 128, 200) == 128 + 256 + 327


def test_sliding_window_caps_decode_kv_reads():
    m = load_model_spec("mistral-7b")  # window 4096
    short = {o.name: o for o in build_ops(m, Decode.of(1, 4096), Layout(), BF16)}
    long = {o.name: o for o in build_ops(m, Decode.of(1, 32768), Layout(), BF16)}
    assert long["attention"].bytes == short["attention"].bytes


def test_decode_attention_reads_the_kv_cache():
    m = load_model_spec("llama-3.1-8b")
    att = {o.name: o for o in build_ops(m, Decode.of(2, 1000), Layout(), BF16)}["attention"]
    kv = 2 * 1000 * (2 * 8 * 128 * 2)  # 2 requests x 1000 tokens x K,V x 8 heads x 128 x 2 bytes
    q_o = 2 * 2 * 32 * 128 * 2  # q read + o written for 2 tokens
    assert att.bytes == kv + q_o


def test_decode_steps_vectorise_over_a_leading_axis():
    m = load_model_spec("llama-3.1-8b")
    ctx = np.array([[100, 200], [300, 400]])
    ops = {o.name: o for o in build_ops(m, Decode(ctx), Layout(), BF16)}
    one = {o.name: o for o in build_ops(m, Decode(ctx[1]), Layout(), BF16)}
    assert ops["attention"].flops.shape == (2,)
    assert ops["attention"].flops[1] == one["attention"].flops


def test_tensor_parallel_splits_gemms_and_adds_all_reduce():
    m = load_model_spec("llama-2-70b")
    t1 = build_ops(m, Prefill.of(1, 512), Layout(tp=1), BF16)
    t4 = build_ops(m, Prefill.of(1, 512), Layout(tp=4), BF16)
    assert flops(t4, "gemm") == pytest.approx(flops(t1, "gemm") / 4, rel=1e-9)
    ar = [o for o in t4 if o.collective == "all_reduce"][0]
    assert ar.count == 2 * 80 and ar.comm_bytes == 512 * 8192 * 2
    assert not [o for o in t1 if o.kind == "collective"]


def test_quantised_weights_change_bytes_not_flops():
    m = load_model_spec("llama-3.1-8b")
    b16 = {o.name: o for o in build_ops(m, Decode.of(1, 10), Layout(), BF16)}
    w4 = {o.name: o for o in build_ops(m, Decode.of(1, 10), Layout(), Precision("int4", "bf16", "bf16"))}
    g16, g4 = b16["gate_up_proj"], w4["gate_up_proj"]
    assert g16.flops == g4.flops
    weights = 4096 * 2 * 14336
    assert g16.bytes - g4.bytes == pytest.approx(weights * (2 - 0.5))


def test_mla_decode_reads_latent_not_full_heads():
    m = load_model_spec("deepseek-v3")
    att = {o.name: o for o in build_ops(m, Decode.of(1, 10000), Layout(tp=8), BF16)}["attention"]
    latent = 10000 * (512 + 64) * 2  # each TP rank reads the whole latent cache
    q_o = 1 * 16 * (2 * 512 + 64) * 2
    assert att.bytes == latent + q_o


def test_lm_head_stays_16_bit_under_weight_quantisation():
    m = load_model_spec("llama-3.1-8b")
    head = {o.name: o for o in build_ops(m, Decode.of(1, 10), Layout(), Precision("fp8", "fp8", "fp8"))}["lm_head"]
    assert head.dtype == "bf16"
    assert head.bytes == 4096 * 128256 * 2 + (4096 + 128256) * 2


def test_a_tied_lm_head_still_multiplies_every_step():
    # tied embeddings share one matrix (counted once in the parameters), but the logits are still
    # a [tokens, hidden] x [hidden, vocab] GEMM: decode FLOPs are those of the untied model
    untied = load_model_spec("llama-2-7b")
    tied = untied.model_copy(update={"tie_embeddings": True})
    assert param_count(untied) - param_count(tied) == untied.vocab_size * untied.hidden_size
    ops = build_ops(tied, Decode.of(4, 100), Layout(), BF16)
    head = [o for o in ops if o.name == "lm_head"]
    assert len(head) == 1 and head[0].shape == (4, tied.vocab_size, tied.hidden_size)
    assert flops(ops, "gemm") == flops(build_ops(untied, Decode.of(4, 100), Layout(), BF16), "gemm")
    assert flops(head) == 2 * 4 * tied.vocab_size * tied.hidden_size
