"""Copy KV-cache blocks between two pools by index lists: dst[dst_idx[i]] = src[src_idx[i]].

A pool is [num_blocks, *block_shape] (e.g. [num_blocks, block_size, kv_heads, head_dim], the
paged layout of PagedAttention, arXiv:2309.06180); both pools share block_shape and dtype.
This is the swap / offload / prefix-cache move between memory tiers.  Same device: one Triton
program per (block pair, chunk) streams the block.  Different devices (GPU <-> host): a
gather on the source device into a contiguous staging buffer, one transfer, a scatter on the
destination (a GPU kernel cannot dereference host pointers unless the memory is mapped).
"""

import os

import torch
import triton
import triton.language as tl

__all__ = ["copy_blocks", "flops", "bytes", "reference"]


@triton.jit
def _copy_kernel(src_ptr, dst_ptr, src_idx_ptr, dst_idx_ptr, block_numel, src_stride, dst_stride,
                 BLOCK: tl.constexpr):
    i = tl.program_id(0)
    chunk = tl.program_id(1)
    s = tl.load(src_idx_ptr + i).to(tl.int64)          # int64: pools can exceed 2**31 elements
    d = tl.load(dst_idx_ptr + i).to(tl.int64)
    offs = chunk * BLOCK + tl.arange(0, BLOCK)
    ok = offs < block_numel
    x = tl.load(src_ptr + s * src_stride + offs, mask=ok)
    tl.store(dst_ptr + d * dst_stride + offs, x, mask=ok)


def _triton_can_run(src: torch.Tensor, dst: torch.Tensor) -> bool:
    if src.device != dst.device:
        return False
    return src.is_cuda or os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def copy_blocks(src: torch.Tensor, dst: torch.Tensor, src_idx, dst_idx, block: int | None = None) -> torch.Tensor:
    """Copy src[src_idx[i]] -> dst[dst_idx[i]] for every i, in place on `dst` (returned).
    Indices are int sequences or tensors; dst_idx must not repeat."""
    assert src.shape[1:] == dst.shape[1:] and src.dtype == dst.dtype, (src.shape, dst.shape)
    src_idx = torch.as_tensor(src_idx, dtype=torch.int64)
    dst_idx = torch.as_tensor(dst_idx, dtype=torch.int64)
    assert src_idx.shape == dst_idx.shape and src_idx.dim() == 1, (src_idx.shape, dst_idx.shape)
    n = src_idx.numel()
    if n == 0:
        return dst
    if not _triton_can_run(src, dst):
        staged = src.index_select(0, src_idx.to(src.device))
        dst.index_copy_(0, dst_idx.to(dst.device), staged.to(dst.device, non_blocking=True))
        return dst
    src_flat = src.view(src.shape[0], -1)              # each block must be contiguous
    dst_flat = dst.view(dst.shape[0], -1)
    assert src_flat.stride(1) == 1 and dst_flat.stride(1) == 1, "blocks must be contiguous"
    block_numel = src_flat.shape[1]
    bl = block or min(4096 if src.is_cuda else 1024, triton.next_power_of_2(block_numel))
    si = src_idx.to(device=src.device, dtype=torch.int32)
    di = dst_idx.to(device=src.device, dtype=torch.int32)
    _copy_kernel[(n, triton.cdiv(block_numel, bl))](src_flat, dst_flat, si, di, block_numel,
                                                    src_flat.stride(0), dst_flat.stride(0), BLOCK=bl)
    return dst


def flops(num_blocks: int, block_numel: int) -> int:
    """A copy does no arithmetic."""
    return 0


def bytes(num_blocks: int, block_numel: int, elem_bytes: int = 2) -> int:
    """Read each block once, write it once (the index lists are negligible and not counted)."""
    return 2 * num_blocks * block_numel * elem_bytes


def reference(src: torch.Tensor, dst: torch.Tensor, src_idx, dst_idx) -> torch.Tensor:
    """A copy of `dst` with the blocks moved (the input pool is left untouched)."""
    out = dst.clone()
    out[torch.as_tensor(dst_idx, dtype=torch.int64)] = src[torch.as_tensor(src_idx, dtype=torch.int64)].to(dst.device)
    return out
