"""Causal prefill attention, FlashAttention-2 style forward (Dao, arXiv:2307.08691).

One program owns BLOCK_M query rows of one (batch, head); it streams BLOCK_N key/value
tiles through SRAM with the online softmax (running max m, running sum l, unnormalised
accumulator; a single division at the end) and never materialises the score matrix.

GQA: query head h reads KV head h // (heads // kv_heads).  Layout [batch, heads, seq, dim].
Cached context: the q_len queries are the LAST q_len positions of the kv_len keys, so query
i sits at absolute position (kv_len - q_len) + i and sees keys 0..that position; a chunk of
a chunked prefill is q = the chunk, k/v = everything cached so far plus the chunk.
"""

import math

import torch
import triton
import triton.language as tl

__all__ = ["attention_prefill", "flops", "bytes", "reference"]


@triton.jit
def _prefill_kernel(q_ptr, k_ptr, v_ptr, o_ptr, q_len, kv_len, heads, group, qk_scale,
                    sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos, HEAD_DIM,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                    PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // heads
    h = bh % heads
    kvh = h // group
    offset = kv_len - q_len                            # cached context before the queries

    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)       # query rows (relative)
    rn = tl.arange(0, BLOCK_N)
    rd = tl.arange(0, BLOCK_D)
    d_ok = rd < HEAD_DIM
    q = tl.load(q_ptr + b * sqb + h * sqh + rm[:, None] * sqs + rd[None, :],
                mask=(rm[:, None] < q_len) & d_ok[None, :], other=0.0)
    k_base = k_ptr + b * skb + kvh * skh
    v_base = v_ptr + b * svb + kvh * svh

    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    q_pos = offset + rm                                # absolute positions of the queries
    # Causal skip: keys beyond the last query of this tile are never needed.
    hi = tl.minimum(kv_len, offset + (pid_m + 1) * BLOCK_M)
    for n0 in range(0, hi, BLOCK_N):
        kn = n0 + rn
        kv_mask = (kn[:, None] < kv_len) & d_ok[None, :]
        k = tl.load(k_base + kn[:, None] * sks + rd[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale   # log2 domain
        s = tl.where((kn[None, :] <= q_pos[:, None]) & (kn[None, :] < kv_len), s, float("-inf"))
        # Online softmax (FA-2): rescale the old state by exp(m_old - m_new).
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + kn[:, None] * svs + rd[None, :], mask=kv_mask, other=0.0)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision=PRECISION)
        m_i = m_new
    acc = acc / l_i[:, None]
    tl.store(o_ptr + b * sob + h * soh + rm[:, None] * sos + rd[None, :],
             acc.to(o_ptr.dtype.element_ty), mask=(rm[:, None] < q_len) & d_ok[None, :])


def attention_prefill(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None,
                      block_m: int | None = None, block_n: int | None = None) -> torch.Tensor:
    """o = causal softmax(q k^T * scale) v with q [B, H, q_len, D], k/v [B, KVH, kv_len, D],
    kv_len >= q_len (the queries are the last q_len positions); H % KVH == 0."""
    B, H, q_len, D = q.shape
    _, KVH, kv_len, _ = k.shape
    assert k.shape == v.shape and k.shape[0] == B and k.shape[3] == D, (q.shape, k.shape, v.shape)
    assert H % KVH == 0 and kv_len >= q_len, (H, KVH, q_len, kv_len)
    assert q.stride(3) == 1 and k.stride(3) == 1 and v.stride(3) == 1, "head_dim must be contiguous"
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    o = torch.empty_like(q)
    bm = block_m or (64 if q.is_cuda else 16)
    bn = block_n or (64 if q.is_cuda else 16)
    grid = (triton.cdiv(q_len, bm), B * H)
    precision = "ieee" if q.dtype == torch.float32 else None   # None: target default; only fp32 cares
    _prefill_kernel[grid](q, k, v, o, q_len, kv_len, H, H // KVH, scale * 1.4426950408889634,
                          q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
                          v.stride(0), v.stride(1), v.stride(2), o.stride(0), o.stride(1), o.stride(2),
                          D, BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=max(16, triton.next_power_of_2(D)),
                          PRECISION=precision)
    return o


def _pairs(q_len: int, kv_len: int) -> int:
    """Causal (query, key) pairs: query i (absolute position kv_len - q_len + i) sees pos + 1 keys."""
    return q_len * (kv_len - q_len) + q_len * (q_len + 1) // 2


def flops(batch: int, heads: int, q_len: int, kv_len: int, head_dim: int) -> int:
    """Q K^T and P V, 2 * head_dim each per causal pair (softmax not counted)."""
    return 4 * head_dim * batch * heads * _pairs(q_len, kv_len)


def bytes(batch: int, heads: int, kv_heads: int, q_len: int, kv_len: int, head_dim: int,
          elem_bytes: int = 2) -> int:
    """Read Q and K, V once (K, V at kv_heads), write O once."""
    return elem_bytes * head_dim * batch * (2 * heads * q_len + 2 * kv_heads * kv_len)


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Plain fp32 attention with the same offset-causal mask."""
    B, H, q_len, D = q.shape
    kv_len = k.shape[2]
    group = H // k.shape[1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    kf = k.float().repeat_interleave(group, dim=1)
    vf = v.float().repeat_interleave(group, dim=1)
    s = (q.float() @ kf.transpose(-1, -2)) * scale
    q_pos = torch.arange(q_len).unsqueeze(1) + (kv_len - q_len)
    s = s.masked_fill(torch.arange(kv_len).unsqueeze(0).to(s.device) > q_pos.to(s.device), float("-inf"))
    return (torch.softmax(s, dim=-1) @ vf).to(q.dtype)
