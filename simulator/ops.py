"""Operator model: a model, a phase and a layout expand to ops with FLOPs and bytes per device.

Quantities are per device (one TP rank) and per op instance; `count` instances run one after
another on the critical path of one step (all pipeline stages are traversed). FLOPs count a
multiply-add as 2. Quantised weights and KV change bytes, not FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .attention_cost import attention_ops
from .layers import Linear, all_linears, compute_linears
from .modelspec import ModelSpec
from .phases import Layout, Phase, Prefill
from .precision import Precision


@dataclass(frozen=True, eq=False)
class Op:
    name: str
    kind: str  # gemm | attention | memory | elementwise | collective | p2p | overhead (fixed, per layer)
    count: int  # instances per step
    flops: Any = 0.0  # per instance; an array over steps where it varies (decode attention)
    bytes: Any = 0.0  # device-memory bytes per instance
    dtype: str = "bf16"  # dtype of the FLOPs (GEMM compute dtype, attention dtype)
    shape: tuple[int, int, int] = (0, 0, 0)  # GEMM (M, N, K) on one device
    comm_bytes: float = 0.0  # payload of a collective / p2p transfer
    group: int = 1  # devices in the collective
    collective: str = ""  # all_reduce | all_gather | reduce_scatter | all_to_all | send_recv
    span: int = 0  # devices the group is spread over, for the link it takes (0: the group itself)
    hidden_under: str = ""  # runs under this op (ring attention's K/V passing): only its excess counts
    phase: str = ""  # attention: "prefill" or "decode" (their kernels calibrate apart)
    context: Any = 0.0  # decode attention: keys each sequence attends on this device (mean; an array over steps)


def local_shape(lin: Linear, tp: int) -> tuple[int, int]:
    """(in, out) features of one TP rank's slice."""
    if lin.split == "col":
        return lin.in_features, -(-lin.out_features // tp)
    if lin.split == "row":
        return -(-lin.in_features // tp), lin.out_features
    return lin.in_features, lin.out_features


def split_degree(lin: Linear, layout: Layout) -> int:
    """TP degree a matrix is split by: experts by tp / ep under expert parallelism."""
    return layout.expert_tp if lin.name.startswith("expert_") else layout.tp


def rank_tokens(phase: Phase, layout: Layout) -> int:
    """Tokens one rank's dense layers process: a context-parallel prefill splits them over cp ranks;
    decode runs them replicated on every cp rank."""
    return -(-phase.tokens // layout.cp) if isinstance(phase, Prefill) else phase.tokens


def gemm(name: str, m: int, k: int, n: int, count: int, prec: Precision, weight_copies: float = 1.0) -> Op:
    """C[m,n] = A[m,k] @ W[k,n]: reads W (weight dtype) and A, writes C (activation dtype)."""
    a = prec.act_bytes
    nbytes = weight_copies * k * n * prec.weight_bytes + (m * k + m * n) * a
    return Op(name, "gemm", count, 2.0 * m * n * k, nbytes, prec.compute, (m, n, k))


def _linear_ops(model: ModelSpec, phase: Phase, layout: Layout, prec: Precision) -> list[Op]:
    T, ops = rank_tokens(phase, layout), []
    moe = model.moe
    for lin in compute_linears(model):
        k, n = local_shape(lin, split_degree(lin, layout))
        if lin.name == "embedding":
            continue
        if lin.name == "lm_head":  # kept 16-bit by quantisation recipes (as memory.weights_bytes assumes)
            half = replace(prec, weights=prec.attention_dtype, compute=prec.attention_dtype)
            rows = -(-phase.sequences // layout.cp) if isinstance(phase, Prefill) else phase.sequences
            ops.append(gemm("lm_head", rows, k, n, 1, half))
        elif lin.name.startswith("expert_"):
            # token-expert pairs on this rank: its EP slot's share of T k, times the imbalance
            routed = T * moe.experts_per_token / layout.ep * layout.ep_imbalance
            # experts touched by T tokens under uniform top-k routing: E (1 - (1 - k/E)^T), E/ep of them here
            touched = moe.num_experts / layout.ep * (1.0 - (1.0 - moe.experts_per_token / moe.num_experts) ** T)
            # no tokens of this phase in the step (a chunked step's absent decode or prefill part):
            # no expert is touched, so the op moves no weights and does no math
            m_avg = max(1, round(routed / touched)) if touched > 0 else 1
            op = gemm(lin.name, routed, k, n, lin.layers, prec, weight_copies=touched)
            ops.append(Op(op.name, op.kind, op.count, op.flops, op.bytes, op.dtype, (m_avg, n, k)))
        elif lin.name == "kv_b_proj" and isinstance(phase, Prefill):
            # prefill decompresses the latent of every key it attends to (DeepSeek-V2 sec. 2.1.2)
            m = int((phase.chunk_lens + phase.prior_lens).sum())
            ops.append(gemm(lin.name, m, k, n, lin.layers, prec))
        else:
            ops.append(gemm(lin.name, T, k, n, lin.layers, prec))
    return ops


def _elementwise_ops(model: ModelSpec, phase: Phase, layout: Layout, prec: Precision) -> list[Op]:
    """Norms, residual adds and the MLP activation: memory-bound, ~4 FLOP per element."""
    T, d, a, L = rank_tokens(phase, layout), model.hidden_size, prec.act_bytes, model.num_layers

    def ew(name: str, elems_in: float, elems_out: float, count: int) -> Op:
        return Op(name, "elementwise", count, 4.0 * elems_out, (elems_in + elems_out) * a, prec.attention_dtype)

    norms = 1 if model.parallel_block else 2
    ops = [
        ew("embedding_lookup", T * d, T * d, 1),
        ew("norm", T * d, T * d, norms * L),
        ew("residual_add", 2 * T * d * (1.5 if model.parallel_block else 1), T * d, norms * L),
        ew("final_norm", T * d, T * d, 1),
    ]
    for lin in all_linears(model):
        if lin.name.endswith(("down_proj",)) and lin.layers:
            ff = -(-lin.in_features // split_degree(lin, layout))
            expert = lin.name.startswith("expert_")
            rows = T * model.moe.experts_per_token / layout.ep * layout.ep_imbalance if expert else T
            gated = model.mlp == "gated"
            ops.append(ew(lin.name.replace("down_proj", "act"), (2 if gated else 1) * rows * ff, rows * ff, lin.layers))
    return ops


def _comm_ops(model: ModelSpec, phase: Phase, layout: Layout, prec: Precision) -> list[Op]:
    T, d, a, tp, L = rank_tokens(phase, layout), model.hidden_size, prec.act_bytes, layout.tp, model.num_layers
    ops = []
    if tp > 1:
        per_layer = 1 if model.parallel_block else 2  # after attention and after the MLP (Megatron-LM)
        ep_layers = model.num_moe_layers if layout.ep > 1 else 0
        # under EP a MoE layer's two all-reduces become a reduce-scatter and an all-gather (one
        # all-reduce of traffic) around the dispatch and combine all-to-alls of the routed tokens
        ops.append(Op("tp_all_reduce", "collective", per_layer * L - ep_layers, comm_bytes=T * d * a,
                      group=tp, collective="all_reduce"))
        if ep_layers:
            routed = T / tp * model.moe.experts_per_token * d * a  # sent by one rank
            for name in ("ep_dispatch", "ep_combine"):
                ops.append(Op(name, "collective", ep_layers, comm_bytes=routed, group=layout.ep,
                              collective="all_to_all"))
        rows = -(-phase.sequences // layout.cp) if isinstance(phase, Prefill) else phase.sequences
        ops.append(Op("logits_all_gather", "collective", 1, comm_bytes=rows * model.vocab_size * a,
                      group=tp, collective="all_gather"))
    if layout.cp > 1:
        ops += _cp_ops(model, phase, layout, prec)
    if layout.pp > 1:
        ops.append(Op("pp_send_recv", "p2p", layout.pp - 1, comm_bytes=T * d * a, group=2, collective="send_recv",
                      span=layout.devices))
    return ops


def _cp_ops(model: ModelSpec, phase: Phase, layout: Layout, prec: Precision) -> list[Op]:
    """Context parallelism's traffic per layer. Prefill: each rank passes its K/V shard around the
    ring, cp - 1 hops of its tokens' KV, under the attention. Decode: the ranks' partial attention
    outputs and log-sum-exps (fp32) are gathered and merged."""
    from .attention_cost import kv_bytes_per_token_layer

    cp, L = layout.cp, model.num_layers
    if layout.cp_kind == "ulysses":
        return _ulysses_ops(model, phase, layout, prec)
    if isinstance(phase, Prefill):
        shard = rank_tokens(phase, layout) * kv_bytes_per_token_layer(model, layout, prec)
        return [Op("cp_ring_kv", "p2p", L, comm_bytes=(cp - 1) * shard, group=2, collective="send_recv",
                   span=layout.tp * cp, hidden_under="attention")]
    heads = model.num_heads // layout.tp
    dv = model.mla.kv_lora_rank if model.mla is not None else model.head_size
    partial = phase.tokens * heads * (dv + 1) * 4.0
    return [Op("cp_merge", "collective", L, comm_bytes=cp * partial, group=cp, collective="all_gather",
               span=layout.tp * cp)]


def _ulysses_ops(model: ModelSpec, phase: Phase, layout: Layout, prec: Precision) -> list[Op]:
    """DeepSpeed-Ulysses per layer: an all-to-all turns a rank's sequence shard of q, k, v into all
    tokens of its heads, another turns the attention output back. Decode queries are replicated, so
    only the outputs of each rank's heads are gathered."""
    T, a, tp, cp, L = rank_tokens(phase, layout), prec.act_bytes, layout.tp, layout.cp, model.num_layers
    dqk = model.head_size if model.mla is None else model.mla.qk_nope_head_dim + model.mla.qk_rope_head_dim
    dv = model.head_size if model.mla is None else model.mla.v_head_dim
    heads, kv = model.num_heads / tp, (model.num_kv_heads if model.mla is None else model.num_heads) / tp
    span = tp * cp
    out = T * heads * dv * a
    if not isinstance(phase, Prefill):
        return [Op("cp_gather_heads", "collective", L, comm_bytes=out, group=cp, collective="all_gather", span=span)]
    qkv = T * (heads * dqk + kv * (dqk + dv)) * a
    return [Op("cp_a2a_qkv", "collective", L, comm_bytes=qkv, group=cp, collective="all_to_all", span=span),
            Op("cp_a2a_out", "collective", L, comm_bytes=out, group=cp, collective="all_to_all", span=span)]


def build_ops(model: ModelSpec, phase: Phase, layout: Layout, prec: Precision, query_tile: int = 128) -> list[Op]:
    """All ops of one step (prefill chunk or decode step) on one device, whole pipeline traversed."""
    return (
        _linear_ops(model, phase, layout, prec)
        + attention_ops(model, phase, layout, prec, query_tile)
        + _elementwise_ops(model, phase, layout, prec)
        + _comm_ops(model, phase, layout, prec)
        + overhead_ops(model, layout)
    )


def overhead_ops(model: ModelSpec, layout: Layout) -> list[Op]:
    """The fixed per-layer cost of a step (calibration.layer_overhead), every stage's layers."""
    return [Op("layer_overhead", "overhead", -(-model.num_layers // layout.pp) * layout.pp)]
