"""The weight matrices of a model, in one place: parameter counts, weight bytes and GEMM shapes
all derive from this list, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .modelspec import ModelSpec

# How a matrix is split under tensor parallelism (Megatron-LM, Shoeybi et al. 2019):
# col = output features split, row = input features split, rep = replicated on every rank.
Split = Literal["col", "row", "rep"]


@dataclass(frozen=True)
class Linear:
    name: str
    in_features: int
    out_features: int
    bias: bool
    split: Split
    layers: int  # how many transformer layers hold it (0 for embedding / LM head)
    copies: int = 1  # identical matrices per layer (experts)

    @property
    def params(self) -> int:
        one = self.in_features * self.out_features + (self.out_features if self.bias else 0)
        return one * self.copies * max(self.layers, 1)


def attention_linears(m: ModelSpec) -> list[Linear]:
    L, d, H, hd = m.num_layers, m.hidden_size, m.num_heads, m.head_size
    if m.mla is None:
        qkv_out = (H + 2 * m.num_kv_heads) * hd
        return [
            Linear("qkv_proj", d, qkv_out, m.qkv_bias, "col", L),
            Linear("o_proj", H * hd, d, m.out_bias, "row", L),
        ]
    a = m.mla  # DeepSeek-V2 paper (arXiv:2405.04434) section 2.1: low-rank q and joint kv compression
    qk = a.qk_nope_head_dim + a.qk_rope_head_dim
    q = (
        [Linear("q_a_proj", d, a.q_lora_rank, False, "rep", L), Linear("q_b_proj", a.q_lora_rank, H * qk, False, "col", L)]
        if a.q_lora_rank
        else [Linear("q_proj", d, H * qk, False, "col", L)]
    )
    return q + [
        Linear("kv_a_proj", d, a.kv_lora_rank + a.qk_rope_head_dim, False, "rep", L),
        Linear("kv_b_proj", a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim), False, "col", L),
        Linear("o_proj", H * a.v_head_dim, d, m.out_bias, "row", L),
    ]


def _mlp(prefix: str, d: int, ff: int, m: ModelSpec, layers: int, copies: int = 1) -> list[Linear]:
    if m.mlp == "gated":  # SwiGLU (Shazeer 2020): gate and up fused in one GEMM, then down
        return [
            Linear(f"{prefix}gate_up_proj", d, 2 * ff, m.mlp_bias, "col", layers, copies),
            Linear(f"{prefix}down_proj", ff, d, m.mlp_bias, "row", layers, copies),
        ]
    return [
        Linear(f"{prefix}up_proj", d, ff, m.mlp_bias, "col", layers, copies),
        Linear(f"{prefix}down_proj", ff, d, m.mlp_bias, "row", layers, copies),
    ]


def mlp_linears(m: ModelSpec) -> list[Linear]:
    d = m.hidden_size
    if m.moe is None:
        return _mlp("", d, m.intermediate_size, m, m.num_layers)
    e, n_moe = m.moe, m.num_moe_layers
    out = _mlp("dense_", d, m.intermediate_size, m, e.dense_layers) if e.dense_layers else []
    out.append(Linear("router", d, e.num_experts, False, "rep", n_moe))
    out += _mlp("expert_", d, e.expert_intermediate_size, m, n_moe, copies=e.num_experts)
    if e.num_shared_experts:
        ff = (e.shared_intermediate_size or e.expert_intermediate_size) * e.num_shared_experts
        out += _mlp("shared_", d, ff, m, n_moe)
    return out


def head_linears(m: ModelSpec) -> list[Linear]:
    """Embedding (a lookup table, split by vocabulary) and LM head; one matrix when tied."""
    emb = Linear("embedding", m.vocab_size, m.hidden_size, False, "row", 0)
    if m.tie_embeddings:
        return [emb]
    return [emb, Linear("lm_head", m.hidden_size, m.vocab_size, m.lm_head_bias, "col", 0)]


def norm_params(m: ModelSpec) -> int:
    per = m.hidden_size * (2 if m.norm == "layernorm" else 1)
    per_layer = per * (1 if m.parallel_block else 2)
    if m.mla is not None:  # q_a_layernorm and kv_a_layernorm (RMSNorm)
        per_layer += (m.mla.q_lora_rank or 0) + m.mla.kv_lora_rank
    router_bias = m.moe.num_experts * m.num_moe_layers if (m.moe and m.moe.router_bias) else 0
    return per_layer * m.num_layers + per + router_bias


def all_linears(m: ModelSpec) -> list[Linear]:
    return attention_linears(m) + mlp_linears(m) + head_linears(m)


def compute_linears(m: ModelSpec) -> list[Linear]:
    """The linears a forward pass multiplies by: all_linears, plus a tied model's LM head -- the
    embedding matrix used again, transposed, for the logits: no parameters of its own, but a
    full GEMM (vocab x hidden) every step."""
    tied = [Linear("lm_head", m.hidden_size, m.vocab_size, m.lm_head_bias, "col", 0)] if m.tie_embeddings else []
    return all_linears(m) + tied


def param_count(m: ModelSpec) -> int:
    return sum(x.params for x in all_linears(m)) + norm_params(m)


def active_param_count(m: ModelSpec) -> int:
    """Parameters one token uses: all but the experts it is not routed to (and the embedding table,
    of which it reads one row, is counted whole, as papers do)."""
    total = param_count(m)
    if m.moe is None:
        return total
    expert = sum(x.params for x in mlp_linears(m) if x.name.startswith("expert_"))
    return total - expert + expert * m.moe.experts_per_token // m.moe.num_experts
