"""Measure the kernels the operator model asks about on this CPU with torch (the Triton kernels
run only in the interpreter here, whose timings mean nothing): GEMM (F.linear, weights [N, K] as
models store them; CPU BLAS runs x @ W^T by other kernels than x @ W) over M from 1 to 16K, causal
prefill attention (scaled_dot_product_attention) over sequence lengths, decode attention over
batch x context, copies over sizes, RMSNorm and SiLU-and-mul, and a tiny Llama's decode step (what
the framework's dispatch of the small unlisted ops costs per layer). Timing: torch.utils.benchmark Timer,
blocked_autorange, median. Rows go to a CSV with provenance lines; shapes already in the CSV are
skipped, so an interrupted run resumes."""

from __future__ import annotations

import csv
import datetime
import platform
from pathlib import Path

from .kernel_fit import COLUMNS

GEMM_M = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
GEMM_NK = [(1024, 1024), (4096, 1024), (1024, 4096), (2048, 2048)]
QUICK_M = [1, 4, 16, 64, 256, 1024, 4096, 16384]
PREFILL_L = [512, 1024, 2048, 4096, 8192]
DECODE = [(b, c) for b in (1, 4, 16) for c in (512, 2048, 8192)]
COPY_BYTES = [2**p for p in range(14, 29)]  # every power of two: the caches make the curve bumpy
ELEMS = [2**p for p in range(12, 23)]  # up to 16 MiB of fp32: activations of a few thousand tokens


def shapes(quick: bool) -> list[dict]:
    """Every shape to measure, as partial CSV rows (op, dtype and its dimensions)."""
    out = []
    for m in QUICK_M if quick else GEMM_M:
        for n, k in GEMM_NK[:2] if quick else GEMM_NK:
            out.append({"op": "gemm", "dtype": "fp32", "m": m, "n": n, "k": k})
    for L in PREFILL_L[:4] if quick else PREFILL_L:
        out.append({"op": "attention_prefill", "dtype": "fp32", "batch": 1, "heads": 8, "kv_heads": 2, "q_len": L,
                    "kv_len": L, "head_dim": 64})
    for b, c in DECODE[::2] if quick else DECODE:
        out.append({"op": "attention_decode", "dtype": "fp32", "batch": b, "heads": 16, "kv_heads": 4, "q_len": 1,
                    "kv_len": c, "head_dim": 64})
    for nbytes in COPY_BYTES[::2] if quick else COPY_BYTES:
        out.append({"op": "copy", "dtype": "fp32", "elems": nbytes // 4})
    for e in ELEMS[::2] if quick else ELEMS:
        out.append({"op": "rmsnorm", "dtype": "fp32", "elems": e, "n": 1024})
        out.append({"op": "silu_mul", "dtype": "fp32", "elems": e})
    for layers in (4, 8) if quick else (4, 8, 16):  # framework dispatch per layer: a tiny Llama's decode step
        out.append({"op": "layer", "dtype": "fp32", "m": layers, "n": 64, "k": 128, "heads": 4, "kv_heads": 2,
                    "head_dim": 16, "elems": 256, "batch": 1, "kv_len": 64})
    return [{c: r.get(c, 0) for c in COLUMNS if c not in ("flops", "bytes", "time_s")} for r in out]


def key(row: dict) -> tuple:
    return tuple(str(row[c]) if c in ("op", "dtype") else int(float(row[c])) for c in COLUMNS[:12])


def work(r: dict) -> tuple[float, float]:
    """(FLOPs, bytes) of a measured shape, as the operator model counts them (fp32: 4 bytes)."""
    b = 4
    op = r["op"]
    if op == "gemm":
        m, n, k = r["m"], r["n"], r["k"]
        return 2.0 * m * n * k, (k * n + m * k + m * n) * b
    if op.startswith("attention"):
        B, H, Hk, q, kv, d = r["batch"], r["heads"], r["kv_heads"], r["q_len"], r["kv_len"], r["head_dim"]
        pairs = q * (q + 1) / 2 + q * (kv - q)  # causal: query j of the last q sees kv - q + j keys
        return 4.0 * B * H * d * pairs, (2 * B * H * q * d + 2 * B * Hk * kv * d) * b
    if op == "layer":
        return 0.0, 0.0  # predicted through the whole tiny model (kernel_fit.predict_row)
    e = r["elems"]
    if op == "copy":
        return 0.0, 2.0 * e * b
    if op == "rmsnorm":
        return 4.0 * e, 2.0 * e * b
    return 4.0 * e, 3.0 * e * b  # silu_mul: reads gate and up, writes the product


def _llc_bytes() -> int:
    """The last-level cache (Linux sysfs), or 32 MiB when it cannot be read."""
    from pathlib import Path as P

    sizes = []
    for f in P("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip().upper()
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1], 1)
        sizes.append(int(text.rstrip("KMG")) * mult)
    return max(sizes, default=32 * 2**20)


def _rotation(nbytes: float) -> int:
    """Copies of an operand to cycle through so that successive calls find it in DRAM, not in the
    cache (as every layer's distinct weights and KV are in a real forward pass; do_bench flushes
    the cache on a GPU for the same reason): together at least 4 x the last-level cache."""
    return max(1, min(64, int(4 * _llc_bytes() // max(nbytes, 1)) + 1))


def _setup(r: dict):
    """(callable, keep-alive tensors) running one instance of the shape; the operands that stream
    from memory (weights, KV, copy sources) rotate over several copies."""
    import itertools

    import torch
    import torch.nn.functional as F

    op = r["op"]
    if op == "layer":
        return _tiny_llama(r)
    if op == "gemm":  # as a model's linear layers run: weights stored [N, K], x @ W^T
        a = torch.randn(r["m"], r["k"])
        ws = [torch.randn(r["n"], r["k"]) for _ in range(_rotation(4 * r["k"] * r["n"]))]
        nxt = itertools.cycle(ws).__next__
        return (lambda: F.linear(a, nxt())), (a, ws)
    if op.startswith("attention"):
        B, H, Hk, q, kv, d = (int(r[c]) for c in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"))
        Q = torch.randn(B, H, q, d)
        kvs = [(torch.randn(B, Hk, kv, d), torch.randn(B, Hk, kv, d)) for _ in range(_rotation(8 * B * Hk * kv * d))]
        nxt = itertools.cycle(kvs).__next__
        causal = op == "attention_prefill"

        def attend():
            K, V = nxt()
            return F.scaled_dot_product_attention(Q, K, V, is_causal=causal, enable_gqa=True)
        return attend, (Q, kvs)
    e = int(r["elems"])
    if op == "copy":
        pairs = [(torch.randn(e), torch.empty(e)) for _ in range(_rotation(8 * e))]
        nxt = itertools.cycle(pairs).__next__

        def copy():
            src, dst = nxt()
            dst.copy_(src)
        return copy, (pairs,)
    if op == "rmsnorm":
        n = int(r["n"])
        xs, g = [torch.randn(e // n, n) for _ in range(_rotation(4 * e))], torch.randn(n)
        nxt = itertools.cycle(xs).__next__
        return (lambda: F.rms_norm(nxt(), (n,), g)), (xs, g)
    xs = [torch.randn(2, e) for _ in range(_rotation(8 * e))]
    nxt = itertools.cycle(xs).__next__

    def silu_mul():
        x = nxt()
        return F.silu(x[0]) * x[1]
    return silu_mul, (xs,)


def _tiny_llama(r: dict):
    """A decode step of a tiny Llama (validate/torch_llama.py) at a fixed position."""
    import torch

    from .torch_llama import LlamaConfig, TorchLlama

    cfg = LlamaConfig("calibration", int(r["n"]), int(r["m"]), int(r["heads"]), int(r["kv_heads"]), int(r["k"]),
                      vocab_size=int(r["elems"]), max_context=256)
    model = TorchLlama(cfg).eval()
    tok = torch.zeros(int(r["batch"]), dtype=torch.long)
    ctx = int(r["kv_len"])
    with torch.inference_mode():
        model.prefill(torch.zeros(int(r["batch"]), ctx - 1, dtype=torch.long))

    def step():
        model.pos = ctx - 1
        with torch.inference_mode():
            return model.decode_step(tok)
    return step, (model,)


def time_shape(r: dict, min_run_s: float, repeats: int = 3) -> float:
    """The least of `repeats` medians: this VM's CPU jitters by +-15% from run to run, and the
    least-disturbed run is the kernel's own time."""
    import torch
    from torch.utils.benchmark import Timer

    fn, keep = _setup(r)
    fn()  # warm-up
    timer = Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())  # Timer's default is 1 thread
    return min(float(timer.blocked_autorange(min_run_time=min_run_s).median) for _ in range(repeats))


def provenance(quick: bool) -> dict[str, str]:
    import torch

    from simulator.local_device import detect_local

    from .e2e_cpu import _quiet_allocator

    spec = detect_local(use_profile=False)
    return {"allocator": "glibc mallopt: mmap threshold 32 MiB, no trim (as validate e2e)" if _quiet_allocator()
            else "default", "device": spec.name, "cpu_threads": str(torch.get_num_threads()), "torch": torch.__version__,
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "method": "torch.utils.benchmark.Timer blocked_autorange: least of 3 medians" + (" (quick sweep)" if quick else "")}


def measure(path: Path, quick: bool = False, progress=None, min_run_s: float | None = None) -> int:
    """Measure every shape not already in `path` (appending); returns how many were measured."""
    from .e2e_cpu import _quiet_allocator

    _quiet_allocator()  # the same heap behaviour as the end-to-end timings
    path = Path(path)
    done = set()
    if path.exists():
        from .kernel_fit import read_csv

        done = {key(r) for r in read_csv(path).rows}
    todo = [r for r in shapes(quick) if key(r) not in done]
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        if new:
            for k, v in provenance(quick).items():
                f.write(f"# {k}: {v}\n")
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        if new:
            w.writeheader()
        for i, r in enumerate(todo):
            flops, nbytes = work(r)
            t = time_shape(r, min_run_s if min_run_s is not None else (0.1 if quick else 0.3))
            w.writerow({**r, "flops": flops, "bytes": nbytes, "time_s": f"{t:.6e}"})
            f.flush()
            if progress is not None:
                progress(i + 1, len(todo))
    return len(todo)
