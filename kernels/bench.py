"""Timing harness: achieved TFLOP/s and GB/s of each kernel from its analytic flops/bytes.

On CUDA the Triton kernel is timed with triton.testing.do_bench (do_bench_cudagraph when a
call takes only microseconds, where launch overhead would swamp it).  On CPU the torch
reference is timed with torch.utils.benchmark (blocked_autorange, median): the Triton
interpreter's timings mean nothing.

    python -m kernels.bench            # a default set of shapes on the best device present
"""

import torch

from kernels import (
    attention_decode,
    attention_prefill,
    elementwise,
    gemm,
    kv_copy,
    rmsnorm,
)

__all__ = ["time_kernel", "benchmark_gemm", "benchmark_attention_prefill", "benchmark_attention_decode",
           "benchmark_kv_copy", "benchmark_rmsnorm", "benchmark_silu_and_mul", "main"]

CUDAGRAPH_BELOW_S = 20e-6   # calls shorter than this are re-timed inside a CUDA graph


def time_kernel(fn, device, min_run_time: float = 0.2) -> float:
    """Median seconds per call of fn() on `device` (a torch.device or string)."""
    if torch.device(device).type == "cuda":
        import triton.testing

        ms = triton.testing.do_bench(fn, warmup=5, rep=20, return_mode="median")
        if ms * 1e-3 < CUDAGRAPH_BELOW_S:
            ms = triton.testing.do_bench_cudagraph(fn, rep=50, return_mode="median")   # own stream
        else:
            ms = triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
        return ms * 1e-3
    from torch.utils import benchmark

    return benchmark.Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def _device(device):
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _run(name, triton_fn, ref_fn, device, n_flops, n_bytes, min_run_time, quiet):
    on_gpu = device.type == "cuda"
    s = time_kernel(triton_fn if on_gpu else ref_fn, device, min_run_time)
    row = {"kernel": name, "impl": "triton" if on_gpu else "torch-reference", "device": str(device),
           "seconds": s, "tflops": n_flops / s / 1e12, "gbps": n_bytes / s / 1e9,
           "flops": n_flops, "bytes": n_bytes}
    if not quiet:
        rate = f"{row['tflops']:8.3f} TFLOP/s  " if n_flops else " " * 18
        print(f"{name:48s} {row['impl']:15s} {s * 1e6:10.1f} us  {rate}{row['gbps']:8.1f} GB/s")
    return row


def benchmark_gemm(M, N, K, dtype=torch.float16, device=None, min_run_time=0.2, quiet=False):
    dev = _device(device)
    a = torch.randn(M, K, device=dev, dtype=dtype)
    b = torch.randn(K, N, device=dev, dtype=dtype)
    e = a.element_size()
    return _run(f"gemm M={M} N={N} K={K}", lambda: gemm.gemm(a, b), lambda: gemm.reference(a, b), dev,
                gemm.flops(M, N, K), gemm.bytes(M, N, K, e), min_run_time, quiet)


def benchmark_attention_prefill(batch, heads, kv_heads, q_len, kv_len, head_dim, dtype=torch.float16,
                                device=None, min_run_time=0.2, quiet=False):
    dev = _device(device)
    q = torch.randn(batch, heads, q_len, head_dim, device=dev, dtype=dtype)
    k = torch.randn(batch, kv_heads, kv_len, head_dim, device=dev, dtype=dtype)
    v = torch.randn_like(k)
    name = f"prefill B={batch} H={heads}/{kv_heads} q={q_len} kv={kv_len} d={head_dim}"
    return _run(name, lambda: attention_prefill.attention_prefill(q, k, v),
                lambda: attention_prefill.reference(q, k, v), dev,
                attention_prefill.flops(batch, heads, q_len, kv_len, head_dim),
                attention_prefill.bytes(batch, heads, kv_heads, q_len, kv_len, head_dim, q.element_size()),
                min_run_time, quiet)


def benchmark_attention_decode(context_lens, heads, kv_heads, head_dim, block_size=16, num_splits=None,
                               dtype=torch.float16, device=None, min_run_time=0.2, quiet=False):
    dev = _device(device)
    B = len(context_lens)
    max_blocks = max(-(-n // block_size) for n in context_lens)
    table = torch.randperm(B * max_blocks, device=dev).view(B, max_blocks).to(torch.int32)
    k_cache = torch.randn(B * max_blocks, block_size, kv_heads, head_dim, device=dev, dtype=dtype)
    v_cache = torch.randn_like(k_cache)
    q = torch.randn(B, heads, head_dim, device=dev, dtype=dtype)
    lens = torch.tensor(context_lens, device=dev, dtype=torch.int32)
    name = f"decode B={B} H={heads}/{kv_heads} ctx={max(context_lens)} d={head_dim} page={block_size}"
    return _run(name,
                lambda: attention_decode.attention_decode(q, k_cache, v_cache, table, lens, num_splits=num_splits),
                lambda: attention_decode.reference(q, k_cache, v_cache, table, lens), dev,
                attention_decode.flops(heads, head_dim, context_lens),
                attention_decode.bytes(heads, kv_heads, head_dim, context_lens, q.element_size()),
                min_run_time, quiet)


def benchmark_kv_copy(num_blocks, block_shape, pool_blocks=None, dtype=torch.float16, device=None,
                      min_run_time=0.2, quiet=False):
    dev = _device(device)
    pool_blocks = pool_blocks or 2 * num_blocks
    src = torch.randn(pool_blocks, *block_shape, device=dev, dtype=dtype)
    dst = torch.zeros_like(src)
    si = torch.randperm(pool_blocks, device=dev)[:num_blocks]   # on the device: no copies under a graph
    di = torch.randperm(pool_blocks, device=dev)[:num_blocks]
    numel = src[0].numel()

    def ref():   # in place, as the kernel: gather then scatter
        dst.index_copy_(0, di, src.index_select(0, si))

    return _run(f"kv_copy blocks={num_blocks} block={tuple(block_shape)}",
                lambda: kv_copy.copy_blocks(src, dst, si, di), ref, dev,
                kv_copy.flops(num_blocks, numel), kv_copy.bytes(num_blocks, numel, src.element_size()),
                min_run_time, quiet)


def benchmark_rmsnorm(rows, dim, dtype=torch.float16, device=None, min_run_time=0.2, quiet=False):
    dev = _device(device)
    x = torch.randn(rows, dim, device=dev, dtype=dtype)
    w = torch.randn(dim, device=dev, dtype=dtype)
    return _run(f"rmsnorm rows={rows} d={dim}", lambda: rmsnorm.rmsnorm(x, w), lambda: rmsnorm.reference(x, w),
                dev, rmsnorm.flops(rows, dim), rmsnorm.bytes(rows, dim, x.element_size()), min_run_time, quiet)


def benchmark_silu_and_mul(rows, d, dtype=torch.float16, device=None, min_run_time=0.2, quiet=False):
    dev = _device(device)
    x = torch.randn(rows, 2 * d, device=dev, dtype=dtype)
    return _run(f"silu_and_mul rows={rows} d={d}", lambda: elementwise.silu_and_mul(x),
                lambda: elementwise.reference(x), dev, elementwise.flops(rows, d),
                elementwise.bytes(rows, d, x.element_size()), min_run_time, quiet)


def main(device=None):
    """A handful of Llama-8B-like shapes (smaller on CPU, where only torch references run)."""
    dev = _device(device)
    big = dev.type == "cuda"
    rows = []
    for M in (1, 16, 4096 if big else 256):
        rows.append(benchmark_gemm(M, 4096 if big else 1024, 4096 if big else 1024, device=dev))
    rows.append(benchmark_attention_prefill(1, 32, 8, 4096 if big else 256, 4096 if big else 256, 128, device=dev))
    rows.append(benchmark_attention_prefill(1, 32, 8, 512 if big else 64, 8192 if big else 512, 128, device=dev))
    rows.append(benchmark_attention_decode([4096 if big else 512] * (32 if big else 4), 32, 8, 128, device=dev))
    rows.append(benchmark_kv_copy(256 if big else 32, (16, 8, 128), device=dev))
    rows.append(benchmark_rmsnorm(4096 if big else 256, 4096, device=dev))
    rows.append(benchmark_silu_and_mul(4096 if big else 256, 14336 if big else 4096, device=dev))
    return rows


if __name__ == "__main__":
    main()
