"""Elementwise kernels of a transformer block: SiLU-and-mul (SwiGLU) and the residual add.

silu_and_mul: out = silu(x[..., :d]) * x[..., d:] for x [..., 2d] (the fused gate/up
projection's output), computed in fp32.  add: out = x + y (same shape and dtype).
"""

import torch
import triton
import triton.language as tl

__all__ = ["silu_and_mul", "add", "flops", "bytes", "reference",
           "add_flops", "add_bytes", "add_reference"]


@triton.jit
def _silu_mul_kernel(x_ptr, out_ptr, d, sx, so, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = cols < d
    gate = tl.load(x_ptr + row * sx + cols, mask=ok, other=0.0).to(tl.float32)
    up = tl.load(x_ptr + row * sx + d + cols, mask=ok, other=0.0).to(tl.float32)
    out = gate / (1.0 + tl.exp(-gate)) * up
    tl.store(out_ptr + row * so + cols, out.to(out_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < n
    x = tl.load(x_ptr + offs, mask=ok)
    y = tl.load(y_ptr + offs, mask=ok)
    tl.store(out_ptr + offs, x + y, mask=ok)


def silu_and_mul(x: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """[..., 2d] -> [..., d]."""
    two_d = x.shape[-1]
    assert two_d % 2 == 0, x.shape
    d = two_d // 2
    x2 = x.reshape(-1, two_d)
    if x2.stride(1) != 1:
        x2 = x2.contiguous()
    out = torch.empty((x2.shape[0], d), device=x.device, dtype=x.dtype)
    bl = block or min(1024, triton.next_power_of_2(d))
    if x2.shape[0]:
        _silu_mul_kernel[(x2.shape[0], triton.cdiv(d, bl))](x2, out, d, x2.stride(0), out.stride(0), BLOCK=bl)
    return out.view(*x.shape[:-1], d)


def add(x: torch.Tensor, y: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """Residual add, out = x + y."""
    assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)
    xc, yc = x.contiguous(), y.contiguous()
    out = torch.empty_like(xc)
    n = xc.numel()
    bl = block or (1024 if x.is_cuda else 256)
    if n:
        _add_kernel[(triton.cdiv(n, bl),)](xc, yc, out, n, BLOCK=bl)
    return out


# silu(g) = g / (1 + exp(-g)): negate, exp, add, divide = 4 flops; then one multiply by `up`.
SILU_FLOPS = 4


def flops(rows: int, d: int) -> int:
    """silu_and_mul over [rows, 2d]: (SILU_FLOPS + 1) per output element."""
    return (SILU_FLOPS + 1) * rows * d


def bytes(rows: int, d: int, elem_bytes: int = 2) -> int:
    """silu_and_mul: read 2d, write d per row."""
    return 3 * rows * d * elem_bytes


def reference(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1] // 2
    xf = x.float()
    return (torch.nn.functional.silu(xf[..., :d]) * xf[..., d:]).to(x.dtype)


def add_flops(numel: int) -> int:
    return numel


def add_bytes(numel: int, elem_bytes: int = 2) -> int:
    """Read x and y, write out."""
    return 3 * numel * elem_bytes


def add_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x + y
