"""Memory on one device: weights, KV cache, activations and workspace; the largest batch that fits."""

from __future__ import annotations

from dataclasses import dataclass

from .attention_cost import head_split, kv_bytes_per_token_layer
from .layers import all_linears, norm_params
from .modelspec import ModelSpec
from .ops import local_shape, split_degree
from .phases import Layout
from .precision import Precision
from .roofline import Device


def weights_bytes(model: ModelSpec, layout: Layout, prec: Precision) -> float:
    """Weights on the fullest device: its share of the layers, plus the embedding (first stage) or
    LM head (last stage). Embedding and LM head stay 16-bit, as quantisation recipes keep them."""
    layer, head = 0.0, []
    for lin in all_linears(model):
        k, n = local_shape(lin, split_degree(lin, layout))
        one = k * n + (n if lin.bias else 0)
        copies = lin.copies // layout.ep if lin.name.startswith("expert_") else lin.copies
        if lin.layers:
            layer += one * copies * lin.layers * prec.weight_bytes
        else:
            head.append(one * prec.act_bytes)
    per_stage_layers = layer / layout.pp
    heads = sum(head) if layout.pp == 1 else max(head)
    return per_stage_layers + heads + norm_params(model) * prec.act_bytes / layout.pp


def kv_bytes_per_token(model: ModelSpec, layout: Layout, prec: Precision) -> float:
    """KV bytes one token holds on one device (its stage's layers; its 1/cp share under context
    parallelism, which shards every sequence's KV over the cp ranks)."""
    layers = -(-model.num_layers // layout.pp)
    attn = head_split(layout)
    if attn is not layout:  # Ulysses: KV split by heads (replicated where a rank has under one KV head)
        return kv_bytes_per_token_layer(model, attn, prec) * layers
    return kv_bytes_per_token_layer(model, layout, prec) * layers / layout.cp


def cached_tokens(model: ModelSpec, context: int) -> int:
    """Tokens a request keeps cached: a sliding window keeps only the last `window` (ring buffer)."""
    return min(context, model.sliding_window) if model.sliding_window else context


def activation_bytes(model: ModelSpec, tokens: int, sequences: int, layout: Layout, prec: Precision) -> float:
    """Peak transient memory of a step of `tokens`: residual stream, normed input and the widest
    MLP intermediate (gate/up output plus activation), plus fp32 logits of `sequences` rows; a
    context-parallel rank holds its 1/cp of the tokens."""
    d, tp, a = model.hidden_size, layout.tp, prec.act_bytes
    tokens = -(-tokens // layout.cp)
    if model.moe is not None:
        rows_ff = tokens * model.moe.experts_per_token * model.moe.expert_intermediate_size
        rows_ff = max(rows_ff, tokens * model.intermediate_size * (model.moe.dense_layers > 0))
    else:
        rows_ff = tokens * model.intermediate_size
    widest = 3 * rows_ff / tp if model.mlp == "gated" else 2 * rows_ff / tp
    qkv = tokens * (model.num_heads + 2 * model.num_kv_heads) * model.head_size / tp
    return (2 * tokens * d + max(widest, qkv)) * a + sequences * model.vocab_size / tp * 4


@dataclass(frozen=True)
class MemoryPlan:
    capacity_bytes: float  # usable device memory (capacity x usable fraction - reserved)
    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    kv_bytes_per_request: float
    max_batch: int

    @property
    def needed_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes

    @property
    def fits(self) -> bool:
        return self.needed_bytes <= self.capacity_bytes


def memory_plan(model: ModelSpec, dev: Device, layout: Layout, prec: Precision,
                batch: int, context: int, prefill_tokens: int) -> MemoryPlan:
    budget = dev.cal.memory_budget
    capacity = dev.spec.memory.device.capacity * budget.usable_fraction - budget.reserved
    w = weights_bytes(model, layout, prec)
    per_req = kv_bytes_per_token(model, layout, prec) * cached_tokens(model, context)
    act = activation_bytes(model, prefill_tokens, batch, layout, prec)
    free = capacity - w - activation_bytes(model, prefill_tokens // max(batch, 1), 1, layout, prec)
    max_batch = int(max(free, 0) // per_req) if per_req > 0 else 0
    return MemoryPlan(capacity, w, per_req * batch, act, per_req, max_batch)
