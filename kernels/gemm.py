"""GEMM: C = A @ B with fp32 accumulation (fp16/bf16 inputs; fp8 only on Hopper).

Tiled over BLOCK_M x BLOCK_N output tiles, stepping BLOCK_K along the reduction, with
"grouped" tile ordering (GROUP_M row-tiles share the B columns they read, so those stay
in L2).  Masks on every edge make any M, N, K legal, M = 1 (the decode GEMV) included.
"""

import torch
import triton
import triton.language as tl

__all__ = ["gemm", "flops", "bytes", "reference", "fp8_supported"]


@triton.jit
def _gemm_kernel(a_ptr, b_ptr, c_ptr, M, N, K,
                 stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                 GROUP_M: tl.constexpr, PRECISION: tl.constexpr):
    # Grouped ordering: walk GROUP_M tile-rows down one tile-column before moving right.
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * tiles_n
    group = pid // per_group
    first_m = group * GROUP_M
    rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % rows_in_group
    pid_n = (pid % per_group) // rows_in_group

    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak
    b_ptrs = b_ptr + rk[:, None] * stride_bk + rn[None, :] * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_left = K - k0
        a = tl.load(a_ptrs, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0.0)
        b = tl.load(b_ptrs, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    c_ptrs = c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


_FP8 = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n))


def fp8_supported(device=None) -> bool:
    """fp8 tensor-core GEMM is offered only on Hopper (compute capability 9.x) here."""
    if not torch.cuda.is_available() or not _FP8:
        return False
    return torch.cuda.get_device_capability(device)[0] == 9


def _blocks(M, N, K, on_gpu):
    """Tile sizes: a 16-row tile for GEMV-like M, bigger tiles as M grows (tl.dot needs >= 16)."""
    bm = 16 if M <= 16 else (32 if M <= 32 else (64 if M <= 64 or not on_gpu else 128))
    bn = 64 if (M <= 16 or not on_gpu) else 128
    bk = 64 if on_gpu else 32
    return bm, bn, bk


def gemm(a: torch.Tensor, b: torch.Tensor, out_dtype: torch.dtype | None = None,
         block_m: int | None = None, block_n: int | None = None, block_k: int | None = None,
         group_m: int = 8) -> torch.Tensor:
    """C[M, N] = A[M, K] @ B[K, N], accumulated in fp32, stored as `out_dtype` (default: A's
    dtype; fp16 for fp8 inputs).  Any strides (a transposed B is fine)."""
    assert a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0], (a.shape, b.shape)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    if a.dtype in _FP8:
        if not fp8_supported(a.device):
            raise NotImplementedError("fp8 GEMM needs a Hopper GPU (compute capability 9.x)")
        out_dtype = out_dtype or torch.float16
    else:
        assert a.dtype in (torch.float16, torch.bfloat16, torch.float32), a.dtype
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), device=a.device, dtype=out_dtype or a.dtype)
    bm, bn, bk = _blocks(M, N, K, a.is_cuda)
    if a.dtype == torch.float32:
        bk = min(bk, 32)                               # 4-byte tiles: keep the pipelined smem modest
    bm, bn, bk = block_m or bm, block_n or bn, block_k or bk
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    # fp32 inputs are multiplied exactly ("ieee"), not in TF32, so they can serve as a reference.
    precision = "ieee" if a.dtype == torch.float32 else None   # None: target default; only fp32 cares
    _gemm_kernel[grid](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                       c.stride(0), c.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                       GROUP_M=group_m, PRECISION=precision, num_warps=8 if bm * bn >= 128 * 128 else 4)
    return c


def flops(M: int, N: int, K: int) -> int:
    """One multiply and one add per (m, n, k)."""
    return 2 * M * N * K


def bytes(M: int, N: int, K: int, in_bytes: int = 2, out_bytes: int | None = None) -> int:
    """Minimum traffic: read A and B once, write C once."""
    out_bytes = in_bytes if out_bytes is None else out_bytes
    return (M * K + K * N) * in_bytes + M * N * out_bytes


def reference(a: torch.Tensor, b: torch.Tensor, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """fp32 matmul, cast to the output dtype."""
    out = out_dtype or (torch.float16 if a.dtype in _FP8 else a.dtype)
    return (a.float() @ b.float()).to(out)
