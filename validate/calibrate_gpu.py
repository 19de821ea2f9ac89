"""Measure the Triton kernels (kernels/) on a GPU over the shapes the operator model asks about, in
the kernel table format of the CPU sweep (validate/kernel_fit.COLUMNS), so one fit serves both:
GEMM (bf16; M from 1 to 16K on Llama-3-8B/70B projection shapes; fp8 on Hopper), causal prefill
attention (FlashAttention-style, GQA) from 512 to 128K tokens, split-K decode attention over a
paged KV cache (batch x context), KV block copies between pools, RMSNorm and SiLU-and-mul.

Timing: kernels/bench.time_kernel -- triton.testing.do_bench, median, which clears the L2 cache
between repetitions (operands stream from HBM, as a real layer's weights and KV do), and its
CUDA-graph variant for kernels under 20 us, where launch overhead would swamp them. A GPU's speed
does not drift as a shared VM's does, so one round suffices; the raw file still makes a killed
sweep resume. FLOPs and bytes are the kernels' own analytic counts."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

from .kernel_fit import COLUMNS

GEMM_M = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
GEMM_NK = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336), (8192, 8192)]  # qkv, o, gate_up, down; 70B o
PREFILL_L = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
DECODE_B = [1, 8, 32, 128]
DECODE_CTX = [1024, 8192, 32768, 131072]
MAX_DECODE_TOKENS = 2**21  # batch x context: 2M tokens of 8 KV heads x 128 in bf16 = 8 GiB of K and V
COPY_BLOCKS = [2**p for p in range(2, 15)]  # blocks of 16 tokens x 8 KV heads x 128 (32 KiB in bf16)
ROWS = [1, 4, 16, 64, 256, 1024, 4096, 16384]
HEADS, KV_HEADS, HEAD_DIM, BLOCK = 32, 8, 128, 16


def shapes(quick: bool, fp8: bool = False) -> list[dict]:
    """Partial rows (op, dtype and dimensions) to measure; quick: fewer GEMM shapes and contexts."""
    out = []
    for dtype in ("bf16",) + (("fp8",) if fp8 else ()):
        for m in GEMM_M[::2] if quick else GEMM_M:
            for n, k in GEMM_NK[:2] if quick else GEMM_NK:
                out.append({"op": "gemm", "dtype": dtype, "m": m, "n": n, "k": k})
    for L in PREFILL_L[:6] if quick else PREFILL_L:
        out.append({"op": "attention_prefill", "dtype": "bf16", "batch": 1, "heads": HEADS, "kv_heads": KV_HEADS,
                    "q_len": L, "kv_len": L, "head_dim": HEAD_DIM})
    for b in DECODE_B:
        for c in DECODE_CTX[:3] if quick else DECODE_CTX:
            if b * c <= MAX_DECODE_TOKENS:
                out.append({"op": "attention_decode", "dtype": "bf16", "batch": b, "heads": HEADS, "kv_heads": KV_HEADS,
                            "q_len": 1, "kv_len": c, "head_dim": HEAD_DIM})
    for nb in COPY_BLOCKS[::2] if quick else COPY_BLOCKS:
        out.append({"op": "copy", "dtype": "bf16", "elems": nb * BLOCK * KV_HEADS * HEAD_DIM, "batch": nb})
    for rows in ROWS:
        out.append({"op": "rmsnorm", "dtype": "bf16", "elems": rows * 4096, "n": 4096})
        out.append({"op": "silu_mul", "dtype": "bf16", "elems": rows * 14336, "n": 14336})
    return [{c: r.get(c, 0) for c in COLUMNS if c not in ("flops", "bytes", "time_s")} for r in out]


def work(r: dict) -> tuple[float, float]:
    """(FLOPs, bytes) of a shape: the kernel module's own counts."""
    from kernels import attention_decode, attention_prefill, elementwise, gemm, kv_copy, rmsnorm

    op = r["op"]
    if op == "gemm":
        e = 1 if r["dtype"] == "fp8" else 2
        return gemm.flops(r["m"], r["n"], r["k"]), gemm.bytes(r["m"], r["n"], r["k"], e, 2)
    if op == "attention_prefill":
        args = (r["batch"], r["heads"], r["q_len"], r["kv_len"], r["head_dim"])
        return attention_prefill.flops(*args), attention_prefill.bytes(r["batch"], r["heads"], r["kv_heads"],
                                                                       r["q_len"], r["kv_len"], r["head_dim"], 2)
    if op == "attention_decode":
        lens = [r["kv_len"]] * r["batch"]
        return attention_decode.flops(r["heads"], r["head_dim"], lens), \
            attention_decode.bytes(r["heads"], r["kv_heads"], r["head_dim"], lens, 2)
    if op == "copy":
        return 0.0, kv_copy.bytes(r["batch"], r["elems"] // r["batch"], 2)
    rows = r["elems"] // r["n"]
    if op == "rmsnorm":
        return rmsnorm.flops(rows, r["n"]), rmsnorm.bytes(rows, r["n"], 2)
    return elementwise.flops(rows, r["n"]), elementwise.bytes(rows, r["n"], 2)


def setup(r: dict, device: str = "cuda"):
    """The call that runs one instance of the shape's Triton kernel on `device`."""
    import torch

    from kernels import attention_decode, attention_prefill, elementwise, gemm, kv_copy, rmsnorm

    dt = torch.bfloat16 if device == "cuda" else torch.float16  # the interpreter's bf16 is wrong
    op = r["op"]
    if op == "gemm":
        a = torch.randn(r["m"], r["k"], device=device, dtype=dt)
        w = torch.randn(r["n"], r["k"], device=device, dtype=dt)  # weights [N, K]: x @ W^T, as models run
        if r["dtype"] == "fp8":
            a, w = a.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
        return lambda: gemm.gemm(a, w.t())
    if op == "attention_prefill":
        q = torch.randn(r["batch"], r["heads"], r["q_len"], r["head_dim"], device=device, dtype=dt)
        k = torch.randn(r["batch"], r["kv_heads"], r["kv_len"], r["head_dim"], device=device, dtype=dt)
        v = torch.randn_like(k)
        return lambda: attention_prefill.attention_prefill(q, k, v)
    if op == "attention_decode":
        B, c = r["batch"], r["kv_len"]
        blocks = -(-c // BLOCK)
        table = torch.randperm(B * blocks, device=device).view(B, blocks).to(torch.int32)
        kc = torch.randn(B * blocks, BLOCK, r["kv_heads"], r["head_dim"], device=device, dtype=dt)
        vc = torch.randn_like(kc)
        q = torch.randn(B, r["heads"], r["head_dim"], device=device, dtype=dt)
        lens = torch.full((B,), c, device=device, dtype=torch.int32)
        return lambda: attention_decode.attention_decode(q, kc, vc, table, lens)
    if op == "copy":
        nb = r["batch"]
        src = torch.randn(2 * nb, BLOCK, KV_HEADS, HEAD_DIM, device=device, dtype=dt)
        dst = torch.zeros_like(src)
        si, di = torch.randperm(2 * nb, device=device)[:nb], torch.randperm(2 * nb, device=device)[:nb]
        return lambda: kv_copy.copy_blocks(src, dst, si, di)
    rows = r["elems"] // r["n"]
    if op == "rmsnorm":
        x, g = torch.randn(rows, r["n"], device=device, dtype=dt), torch.randn(r["n"], device=device, dtype=dt)
        return lambda: rmsnorm.rmsnorm(x, g)
    x = torch.randn(rows, 2 * r["n"], device=device, dtype=dt)
    return lambda: elementwise.silu_and_mul(x)


def provenance(quick: bool) -> dict[str, str]:
    import torch
    import triton

    props = torch.cuda.get_device_properties(0)
    return {"device": props.name, "driver": f"CUDA {torch.version.cuda}", "torch": torch.__version__,
            "triton": triton.__version__, "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "method": "triton.testing.do_bench median (do_bench_cudagraph under 20 us), L2 cleared between "
                      "repetitions; Triton kernels of kernels/" + (" (quick sweep)" if quick else "")}


def gpu_timer(fn, job) -> tuple[float, float]:
    from kernels.bench import time_kernel

    return time_kernel(fn, "cuda"), 1.0


def measure(path: Path, quick: bool = False, progress=None, device: str = "cuda", timer=gpu_timer,
            prov: dict[str, str] | None = None) -> int:
    """Time every shape not in <path>.raw.csv (one round), then write the kernel table `path`.
    `device` and `timer` are for tests (the interpreter on a CPU, a stand-in timer)."""
    import torch

    from .calibrate_cpu import key_text, raw_path, write_table
    from .timing_rounds import Job, median_polish, read_raw, run_rounds

    fp8 = device == "cuda" and torch.cuda.get_device_capability()[0] >= 9
    todo = shapes(quick, fp8)
    prov = prov or provenance(quick)
    jobs = [Job(key_text(r), (lambda r=r: setup(r, device)), 1, 0.0) for r in todo]
    n = run_rounds(jobs, 1, raw_path(path), 1, header=prov, progress=progress, timer=timer)
    write_table(path, todo, prov, median_polish(read_raw(raw_path(path))), work=work)
    return n


GPU_IDS = (("h200", "h200-sxm"), ("h100 pcie", "h100-pcie"), ("h100", "h100-sxm"), ("b200", "b200"),
           ("a100-sxm4-40", "a100-40gb-sxm"), ("a100-pcie", "a100-80gb-pcie"), ("a100", "a100-80gb-sxm"),
           ("l40s", "l40s"), ("a10g", "a10g"), ("rtx 4090", "rtx-4090"), ("t4", "t4"))


def hw_id(name: str) -> str | None:
    """The shipped hwspec of a GPU, from the name CUDA reports ("NVIDIA H200" -> h200-sxm)."""
    low = name.lower()
    return next((hw for key, hw in GPU_IDS if key in low), None)
