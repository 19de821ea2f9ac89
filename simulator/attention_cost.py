"""Attention cost: prefill as a tiled FlashAttention kernel, decode as a read of the KV cache.

Prefill (Dao et al. 2022, arXiv:2205.14135; FA-2 arXiv:2307.08691): each tile of `query_tile`
queries streams the keys it can see from HBM once (step.py widens the tile to a wave of thread
blocks sharing K/V through L2); the causal mask skips tiles above the diagonal. A KV head's tile is shared by its GQA group (grouped heads packed in one block, as
FlashInfer and FA-3 do). Decode: every cached key and value of the batch is read once per layer.
Sliding windows (Mistral, arXiv:2310.06825) cap the keys each query sees; MLA (DeepSeek-V2,
arXiv:2405.04434) caches a latent of kv_lora_rank + rope dims that decode reads directly
(absorbed projections) and prefill decompresses into full heads.
"""

from __future__ import annotations

import numpy as np

from .modelspec import ModelSpec
from .phases import Decode, Layout, Phase, Prefill
from .precision import Precision


def causal_pairs(chunk: np.ndarray, prior: np.ndarray, window: int | None) -> np.ndarray:
    """Query-key pairs of a causal chunk after `prior` cached tokens: query at position j (1-based)
    sees min(j, window) keys, summed over j in (prior, prior + chunk]."""

    def s(n):  # sum_{j=1..n} min(j, w)
        n = np.asarray(n, dtype=np.float64)
        if window is None:
            return n * (n + 1) / 2
        w = float(window)
        return np.where(n <= w, n * (n + 1) / 2, w * (w + 1) / 2 + (n - w) * w)

    return s(prior + chunk) - s(prior)


def tiled_key_reads(chunk: int, prior: int, tile: int, window: int | None) -> float:
    """Keys streamed from memory by a causal tiled kernel: sum over query tiles of the keys the
    tile's queries see (the tile's last row sees prior + its end; a window caps at window + tile)."""
    nq = -(-chunk // tile)
    if window is None:  # closed form: tiles end at tile, 2 tile, ..., chunk
        return float(nq * prior + tile * (nq - 1) * nq // 2 + chunk) if chunk > 0 else 0.0
    ends = np.minimum(np.arange(1, nq + 1) * tile, chunk) + prior  # (nq,) last query position
    starts = np.arange(nq) * tile + prior + 1  # first query position
    seen = ends if window is None else np.minimum(ends, ends - np.maximum(starts - window, 0))
    return float(seen.sum())


def head_split(layout: Layout) -> Layout:
    """The layout attention sees: Ulysses context parallelism gives each rank all tokens of
    num_heads / (tp x cp) heads, which is tensor parallelism of degree tp x cp for attention."""
    return Layout(layout.tp * layout.cp) if layout.cp > 1 and layout.cp_kind == "ulysses" else layout


def kv_bytes_per_token_layer(model: ModelSpec, layout: Layout, prec: Precision) -> float:
    """KV cache bytes one token adds to one layer on one device. GQA/MQA heads are split over TP
    ranks (replicated when TP > KV heads); an MLA latent is not split (each rank holds it whole)."""
    if model.mla is not None:
        return (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * prec.kv_bytes
    kv_heads = -(-model.num_kv_heads // layout.tp)
    return 2 * kv_heads * model.head_size * prec.kv_bytes


def _head_dims(model: ModelSpec) -> tuple[int, int]:
    if model.mla is not None:
        return model.mla.qk_nope_head_dim + model.mla.qk_rope_head_dim, model.mla.v_head_dim
    return model.head_size, model.head_size


def _prefill(model: ModelSpec, ph: Prefill, layout: Layout, prec: Precision, tile: int):
    """One rank's attention FLOPs and bytes; context parallelism splits every query's work over
    the cp ranks (load-balanced causal halves), so a rank does 1/cp of it."""
    heads = model.num_heads // layout.tp
    dqk, dv = _head_dims(model)
    pairs = float(causal_pairs(ph.chunk_lens, ph.prior_lens, model.sliding_window).sum())
    flops = 2.0 * heads * (dqk + dv) * pairs  # QK^T and PV
    reads = sum(tiled_key_reads(int(c), int(p), tile, model.sliding_window)
                for c, p in zip(ph.chunk_lens, ph.prior_lens))
    if model.mla is not None:  # decompressed keys/values: one per query head, activation dtype
        per_key = heads * (dqk + dv) * prec.act_bytes
    else:
        per_key = -(-model.num_kv_heads // layout.tp) * (dqk + dv) * prec.kv_bytes
    q_o = ph.tokens * heads * (dqk + dv) * prec.act_bytes
    return flops / layout.cp, (reads * per_key + q_o) / layout.cp


def _decode_keys(model: ModelSpec, ph: Decode, layout: Layout):
    """Keys one rank's decode attention reads, over all sequences: (S,) or a scalar."""
    ctx = ph.context_lens if model.sliding_window is None else np.minimum(ph.context_lens, model.sliding_window)
    return ctx.sum(axis=-1).astype(np.float64) / layout.cp


def _decode(model: ModelSpec, ph: Decode, layout: Layout, prec: Precision):
    """One rank's decode attention: under context parallelism it attends its 1/cp shard of the keys."""
    heads = model.num_heads // layout.tp
    keys = _decode_keys(model, ph, layout)
    if model.mla is not None:  # absorbed: scores over latent+rope, values over the latent
        a = model.mla
        flops = 2.0 * heads * (2 * a.kv_lora_rank + a.qk_rope_head_dim) * keys
        q_o = ph.tokens * heads * (a.kv_lora_rank * 2 + a.qk_rope_head_dim) * prec.act_bytes
    else:
        flops = 4.0 * heads * model.head_size * keys
        q_o = 2 * ph.tokens * heads * model.head_size * prec.act_bytes
    return flops, keys * kv_bytes_per_token_layer(model, layout, prec) + q_o


def attention_ops(model: ModelSpec, phase: Phase, layout: Layout, prec: Precision, query_tile: int = 128):
    from .ops import Op

    L = model.num_layers
    attn = head_split(layout)
    context = 0.0
    if isinstance(phase, Prefill):
        flops, nbytes = _prefill(model, phase, attn, prec, query_tile)
    else:
        flops, nbytes = _decode(model, phase, attn, prec)
        context = _decode_keys(model, phase, attn) / np.maximum(phase.sequences, 1)
    # RoPE on q and k, then the new tokens' K and V (or latent) written to the cache
    dqk, _ = _head_dims(model)
    rope_heads = model.num_heads // layout.tp + (0 if model.mla else -(-model.num_kv_heads // layout.tp))
    tokens = phase.tokens / layout.cp  # a rank's share (decode: new tokens' KV lands on one rank each)
    rope_bytes = 2 * tokens * rope_heads * dqk * prec.act_bytes
    kv_write = tokens * kv_bytes_per_token_layer(model, layout, prec)
    return [
        Op("rope_kv_write", "elementwise", L, 4.0 * tokens * rope_heads * dqk, rope_bytes + kv_write,
           prec.attention_dtype),
        Op("attention", "attention", L, flops, nbytes, prec.attention_dtype,
           phase="prefill" if isinstance(phase, Prefill) else "decode", context=context),
    ]
