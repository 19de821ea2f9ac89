"""Compile every kernel ahead of time for a GPU target, with no GPU present.

The interpreter (TRITON_INTERPRET=1) is lax about types and layouts; this lowers each kernel
through Triton's real pipeline (TTIR -> TTGIR -> LLVM -> PTX -> cubin with the ptxas bundled
in the triton wheel) for, by default, Hopper (sm_90), at the block sizes the wrappers use.

    TRITON_INTERPRET=0 python -m kernels.aot [arch ...]
"""

import os
import sys

FLOAT_ARGS = {"qk_scale", "eps"}


def _compile(fn, ptrs, constexprs, arch):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig = {}
    for p in fn.params:
        sig[p.name] = ("constexpr" if p.is_constexpr else ptrs.get(p.name)
                       or ("fp32" if p.name in FLOAT_ARGS else "i32"))
    return triton.compile(ASTSource(fn, sig, constexprs), target=GPUTarget("cuda", arch, 32))


def cases():
    """(name, kernel, pointer types, constexprs) at representative GPU configurations."""
    from kernels import attention_decode as ad
    from kernels import attention_prefill as ap
    from kernels import elementwise as ew
    from kernels import gemm, kv_copy, rmsnorm

    out = []
    for dt in ("fp16", "bf16"):
        p = "*" + dt
        out += [
            (f"gemm {dt} 128x128x64", gemm._gemm_kernel, dict(a_ptr=p, b_ptr=p, c_ptr=p),
             dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=64, GROUP_M=8, PRECISION=None)),
            (f"gemm {dt} GEMV 16x64x64", gemm._gemm_kernel, dict(a_ptr=p, b_ptr=p, c_ptr=p),
             dict(BLOCK_M=16, BLOCK_N=64, BLOCK_K=64, GROUP_M=8, PRECISION=None)),
            (f"prefill {dt} d=128", ap._prefill_kernel, dict(q_ptr=p, k_ptr=p, v_ptr=p, o_ptr=p),
             dict(BLOCK_M=64, BLOCK_N=64, BLOCK_D=128, PRECISION=None)),
            (f"decode split {dt} d=128", ad._split_kernel,
             dict(q_ptr=p, k_ptr=p, v_ptr=p, table_ptr="*i32", lens_ptr="*i32", o_ptr="*fp32", lse_ptr="*fp32"),
             dict(BLOCK_H=16, BLOCK_N=32, BLOCK_D=128, PRECISION=None)),
            (f"decode merge {dt}", ad._merge_kernel, dict(part_ptr="*fp32", lse_ptr="*fp32", o_ptr=p),
             dict(BLOCK_S=8, BLOCK_D=128)),
            (f"kv_copy {dt}", kv_copy._copy_kernel,
             dict(src_ptr=p, dst_ptr=p, src_idx_ptr="*i32", dst_idx_ptr="*i32"), dict(BLOCK=4096)),
            (f"rmsnorm {dt}", rmsnorm._rmsnorm_kernel, dict(x_ptr=p, w_ptr=p, y_ptr=p), dict(BLOCK_D=4096)),
            (f"silu_and_mul {dt}", ew._silu_mul_kernel, dict(x_ptr=p, out_ptr=p), dict(BLOCK=1024)),
            (f"add {dt}", ew._add_kernel, dict(x_ptr=p, y_ptr=p, out_ptr=p), dict(BLOCK=1024)),
        ]
    out.append(("gemm fp32 ieee", gemm._gemm_kernel, dict(a_ptr="*fp32", b_ptr="*fp32", c_ptr="*fp32"),
                dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=32, GROUP_M=8, PRECISION="ieee")))
    out.append(("gemm fp8e4nv", gemm._gemm_kernel, dict(a_ptr="*fp8e4nv", b_ptr="*fp8e4nv", c_ptr="*fp16"),
                dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=64, GROUP_M=8, PRECISION=None)))
    return out


def main(archs=(90,)):
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise SystemExit("unset TRITON_INTERPRET: the interpreter replaces the compiler")
    for arch in archs:
        for name, fn, ptrs, consts in cases():
            if "fp8" in name and arch < 89:
                continue
            k = _compile(fn, ptrs, consts, arch)
            print(f"sm_{arch} {name:28s} ok  shared={k.metadata.shared} B  warps={k.metadata.num_warps}")


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or (90,))
