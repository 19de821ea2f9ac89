"""Decode attention (one new query token per sequence) over a paged KV cache.

Paging as in PagedAttention / vLLM (Kwon et al., arXiv:2309.06180): k_cache and v_cache are
pools [num_blocks, block_size, kv_heads, head_dim]; token t of sequence b lives in pool block
block_table[b, t // block_size], slot t % block_size.

Split-K, i.e. flash-decoding: the context is cut into num_splits ranges so that short batches
still fill the machine; each (sequence, kv head, split) program produces a partial output
(normalised) plus its log-sum-exp, and a second kernel merges the splits:
    o = sum_s exp(lse_s - lse) o_s,   lse = log sum_s exp(lse_s).
GQA: one program serves all heads // kv_heads query heads that share a KV head, so each KV
tile is read once per group (the group is padded to 16 rows, tl.dot's minimum).
"""

import math

import torch
import triton
import triton.language as tl

__all__ = ["attention_decode", "flops", "bytes", "reference"]


@triton.jit
def _split_kernel(q_ptr, k_ptr, v_ptr, table_ptr, lens_ptr, o_ptr, lse_ptr,
                  group, qk_scale, tokens_per_split, HEAD_DIM, BLOCK_SIZE,
                  sqb, sqh, skn, sks, skh, svn, svs, svh, stb, sob, soh, sos, slb, slh,
                  BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                  PRECISION: tl.constexpr):
    b = tl.program_id(0)
    kvh = tl.program_id(1)
    split = tl.program_id(2)
    ctx = tl.load(lens_ptr + b)
    start = split * tokens_per_split
    end = tl.minimum(start + tokens_per_split, ctx)

    rh = tl.arange(0, BLOCK_H)
    rn = tl.arange(0, BLOCK_N)
    rd = tl.arange(0, BLOCK_D)
    h_ok = rh < group
    d_ok = rd < HEAD_DIM
    heads = kvh * group + rh                          # the query heads of this KV head
    q = tl.load(q_ptr + b * sqb + heads[:, None] * sqh + rd[None, :],
                mask=h_ok[:, None] & d_ok[None, :], other=0.0)

    m_i = tl.full((BLOCK_H,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_H,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_H, BLOCK_D), dtype=tl.float32)
    for n0 in range(start, end, BLOCK_N):
        t = n0 + rn
        t_ok = t < end
        page = tl.load(table_ptr + b * stb + t // BLOCK_SIZE, mask=t_ok, other=0)
        slot = t % BLOCK_SIZE
        kv_mask = t_ok[:, None] & d_ok[None, :]
        k = tl.load(k_ptr + page[:, None] * skn + slot[:, None] * sks + kvh * skh + rd[None, :],
                    mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale    # log2 domain
        s = tl.where(t_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_ptr + page[:, None] * svn + slot[:, None] * svs + kvh * svh + rd[None, :],
                    mask=kv_mask, other=0.0)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PRECISION)
        m_i = m_new
    # An empty split (context shorter than its start) reports lse = -inf and o = 0.
    nonempty = l_i > 0
    out = tl.where(nonempty[:, None], acc / tl.where(nonempty, l_i, 1.0)[:, None], 0.0)
    lse = tl.where(nonempty, m_i + tl.math.log2(tl.where(nonempty, l_i, 1.0)), float("-inf"))
    tl.store(o_ptr + b * sob + heads[:, None] * soh + split * sos + rd[None, :], out,
             mask=h_ok[:, None] & d_ok[None, :])
    tl.store(lse_ptr + b * slb + heads * slh + split, lse, mask=h_ok)


@triton.jit
def _merge_kernel(part_ptr, lse_ptr, o_ptr, heads, num_splits, HEAD_DIM,
                  spb, sph, sps, slb, slh, sob, soh,
                  BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr):
    """Log-sum-exp merge of the split partials (base-2 logs, as the split kernel writes)."""
    bh = tl.program_id(0)
    b = bh // heads
    h = bh % heads
    rs = tl.arange(0, BLOCK_S)
    rd = tl.arange(0, BLOCK_D)
    s_ok = rs < num_splits
    lse = tl.load(lse_ptr + b * slb + h * slh + rs, mask=s_ok, other=float("-inf"))
    w = tl.math.exp2(lse - tl.max(lse, 0))
    w = w / tl.sum(w, 0)
    part = tl.load(part_ptr + b * spb + h * sph + rs[:, None] * sps + rd[None, :],
                   mask=s_ok[:, None] & (rd[None, :] < HEAD_DIM), other=0.0)
    out = tl.sum(part * w[:, None], 0)
    tl.store(o_ptr + b * sob + h * soh + rd, out.to(o_ptr.dtype.element_ty), mask=rd < HEAD_DIM)


def attention_decode(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                     block_table: torch.Tensor, context_lens: torch.Tensor,
                     scale: float | None = None, num_splits: int | None = None,
                     block_n: int | None = None) -> torch.Tensor:
    """o[B, H, D] for q [B, H, D] over the paged caches (see the module docstring).
    block_table [B, max_blocks] and context_lens [B] are integer tensors (every length >= 1);
    num_splits defaults to enough (sequence, kv head, split) programs to fill the GPU."""
    B, H, D = q.shape
    _, block_size, KVH, _ = k_cache.shape
    assert k_cache.shape == v_cache.shape and k_cache.shape[3] == D and H % KVH == 0
    assert q.stride(2) == 1 and k_cache.stride(3) == 1 and v_cache.stride(3) == 1
    group = H // KVH
    max_ctx = block_table.shape[1] * block_size      # an upper bound known without a host sync
    bn = block_n or (32 if q.is_cuda else 16)
    if num_splits is None:
        target = 2 * torch.cuda.get_device_properties(q.device).multi_processor_count if q.is_cuda else 1
        num_splits = max(1, min(triton.cdiv(target, B * KVH), triton.cdiv(max_ctx, 256)))
    tokens_per_split = triton.cdiv(triton.cdiv(max_ctx, num_splits), bn) * bn
    num_splits = triton.cdiv(max_ctx, tokens_per_split)
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    block_d = max(16, triton.next_power_of_2(D))

    part = torch.empty((B, H, num_splits, D), device=q.device, dtype=torch.float32)
    lse = torch.empty((B, H, num_splits), device=q.device, dtype=torch.float32)
    table = block_table.to(device=q.device, dtype=torch.int32)
    lens = context_lens.to(device=q.device, dtype=torch.int32)
    precision = "ieee" if q.dtype == torch.float32 else None   # None: target default; only fp32 cares
    _split_kernel[(B, KVH, num_splits)](
        q, k_cache, v_cache, table, lens, part, lse, group, scale * 1.4426950408889634,
        tokens_per_split, D, block_size, q.stride(0), q.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2), table.stride(0),
        part.stride(0), part.stride(1), part.stride(2), lse.stride(0), lse.stride(1),
        BLOCK_H=max(16, triton.next_power_of_2(group)), BLOCK_N=bn, BLOCK_D=block_d,
        PRECISION=precision)
    o = torch.empty_like(q)
    _merge_kernel[(B * H,)](part, lse, o, H, num_splits, D, part.stride(0), part.stride(1),
                            part.stride(2), lse.stride(0), lse.stride(1), o.stride(0), o.stride(1),
                            BLOCK_S=triton.next_power_of_2(num_splits), BLOCK_D=block_d)
    return o


def _total(context_lens) -> int:
    return int(sum(int(n) for n in context_lens))


def flops(heads: int, head_dim: int, context_lens) -> int:
    """q.k and p.v, 2 * head_dim each per (query head, cached token)."""
    return 4 * head_dim * heads * _total(context_lens)


def bytes(heads: int, kv_heads: int, head_dim: int, context_lens, elem_bytes: int = 2) -> int:
    """Read q and every cached K, V row once, write o (block table and split partials not counted)."""
    return elem_bytes * head_dim * (2 * heads * len(context_lens) + 2 * kv_heads * _total(context_lens))


def reference(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
              block_table: torch.Tensor, context_lens: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Gather each sequence's tokens from the pages, then plain fp32 attention."""
    B, H, D = q.shape
    block_size, KVH = k_cache.shape[1], k_cache.shape[2]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    out = torch.empty_like(q)
    for b in range(B):
        n = int(context_lens[b])
        t = torch.arange(n, device=q.device)
        pages = block_table[b].to(q.device).long()[t // block_size]
        k = k_cache[pages, t % block_size].float().repeat_interleave(H // KVH, dim=1)  # [n, H, D]
        v = v_cache[pages, t % block_size].float().repeat_interleave(H // KVH, dim=1)
        s = torch.einsum("hd,nhd->hn", q[b].float(), k) * scale
        out[b] = torch.einsum("hn,nhd->hd", torch.softmax(s, dim=-1), v).to(q.dtype)
    return out
