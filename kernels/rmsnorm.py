"""RMSNorm with a weight: y = x / sqrt(mean(x^2) + eps) * w over the last dimension.

One program per row; the row sits in registers (BLOCK_D >= D), statistics in fp32.
"""

import torch
import triton
import triton.language as tl

__all__ = ["rmsnorm", "flops", "bytes", "reference"]


@triton.jit
def _rmsnorm_kernel(x_ptr, w_ptr, y_ptr, D, eps, sx, sy, BLOCK_D: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    rd = tl.arange(0, BLOCK_D)
    ok = rd < D
    x = tl.load(x_ptr + row * sx + rd, mask=ok, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + rd, mask=ok, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, 0) / D + eps)
    tl.store(y_ptr + row * sy + rd, (x * rstd * w).to(y_ptr.dtype.element_ty), mask=ok)


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """y has x's shape and dtype; weight is [D] with D = x.shape[-1]."""
    D = x.shape[-1]
    assert weight.shape == (D,), (weight.shape, D)
    x2 = x.reshape(-1, D)
    if x2.stride(1) != 1:
        x2 = x2.contiguous()
    y = torch.empty((x2.shape[0], D), device=x.device, dtype=x.dtype)
    if x2.shape[0]:
        _rmsnorm_kernel[(x2.shape[0],)](x2, weight.contiguous(), y, D, eps, x2.stride(0), y.stride(0),
                                        BLOCK_D=triton.next_power_of_2(D))
    return y.view(x.shape)


def flops(rows: int, dim: int) -> int:
    """Per element: square, accumulate, scale by rstd, scale by w (the per-row rsqrt not counted)."""
    return 4 * rows * dim


def bytes(rows: int, dim: int, elem_bytes: int = 2, weight_bytes: int | None = None) -> int:
    """Read x, write y, read the weight once."""
    return 2 * rows * dim * elem_bytes + dim * (elem_bytes if weight_bytes is None else weight_bytes)


def reference(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)
