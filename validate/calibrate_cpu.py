"""Measure the kernels the operator model asks about on this CPU with torch (the Triton kernels
run only in the interpreter here, whose timings mean nothing): GEMM (F.linear, weights [N, K] as
models store them; CPU BLAS runs x @ W^T by other kernels than x @ W) over M from 1 to 16K, causal
prefill attention (scaled_dot_product_attention) over sequence lengths, decode attention over
batch x context, copies over sizes, RMSNorm and SiLU-and-mul, and a tiny Llama's decode step (what
the framework's dispatch of the small unlisted ops costs per layer).

Timing: every shape once per round over several interleaved rounds (validate/timing_rounds.py), so
the VM's drifting speed slows all shapes alike; each shape's time is the trimmed mean of its
round-corrected times, at the median round's speed. Raw timings go to <csv>.raw.csv as they are taken (a killed run resumes); the table
of shapes, with provenance lines, is written from them at the end."""

from __future__ import annotations

import csv
import datetime
import math
import platform
import random
from pathlib import Path

from .kernel_fit import COLUMNS

GEMM_M = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
GEMM_NK = [(1024, 1024), (4096, 1024), (1024, 4096), (2048, 2048)]
# reduction lengths and widths of small and large models' projections (K 512..8192, N to 16K), at M up
# to EXTRA_MAX_M: skinny GEMMs' rate depends on K and N, and their big-M shapes would take many seconds
GEMM_NK_EXTRA = [(8192, 512), (512, 8192), (16384, 1024), (2048, 512)]
EXTRA_MAX_M = 1024
# tiny GEMMs, all dispatch: without them a GEMM's fixed overhead trades freely against the skinny
# curve (fits put it at 100+ us, and a tiny Llama's 4 GEMMs per layer then took more than its step)
GEMM_NK_SMALL, SMALL_MAX_M = [(256, 256)], 64
# matrix-vector shapes of real models (decode at batch 1 to 4 is nearly all GEMV on a CPU): K of
# 768 to 4096 and N to 11K. A GEMV's rate doubles from K = 512 to 4096, and with one weight shape per
# K a held-out split that drew both of its GEMVs left the fit nothing to set that K's rate by
GEMM_NK_GEMV, GEMV_MAX_M = [(768, 768), (3072, 768), (768, 3072), (1536, 1536), (4096, 4096), (11008, 4096)], 4
QUICK_BIG_M = 2048  # the quick sweep runs GEMMs from this M up for the first N x K only: they take seconds
PREFILL_L = [512, 1024, 2048, 4096, 8192]
# decode attention: batch x keys per sequence on a grid (at equal FLOPs, the rate follows the keys
# per sequence), and long contexts at batch 1 and 2 to 64K (the rate keeps falling past 8K: a curve
# fitted to 8K and 32K alone missed 16K by a third)
DECODE = [(b, c) for b in (1, 2, 4, 8, 16) for c in (256, 512, 1024, 2048, 4096, 8192)] + \
    [(1, 16384), (1, 32768), (1, 65536), (2, 16384), (2, 32768)]
# and other query and KV head counts (the grid has 16 over 4) at a few of its points: this CPU's SDPA
# time is a per-query-head term plus a per-KV-head one, which one grouping cannot tell apart, and real
# models group 2 to 8 query heads per KV head (the 300m of validate e2e: 16 over 8)
DECODE_HEADS, DECODE_HEADS_AT = [(16, 8), (16, 16), (32, 8), (8, 2)], [(4, 1024), (16, 2048), (1, 8192), (8, 512)]
# copies and elementwise ops every half power of two: their rates fall off a cliff as their operands
# spill out of the caches (RMSNorm's passes: 5 GB/s at 2 MiB, 2.3 GB/s at 16 MiB), and a curve can
# follow a cliff only where the sweep samples it
COPY_BYTES = sorted({4096 * round(2 ** (p / 2) / 4096) for p in range(28, 57)})  # 16 KiB to 256 MiB
ELEMS = sorted({1024 * round(2 ** (p / 2) / 1024) for p in range(24, 45)})  # 4K to 4M fp32: up to 4K tokens x 1024


def shapes(quick: bool) -> list[dict]:
    """Every shape to measure, as partial CSV rows (op, dtype and its dimensions). The quick sweep
    leaves out the second-long ones (GEMMs of M >= QUICK_BIG_M but for the first N x K, the 8K
    prefill) and thins the rest: real models' GEMVs at M = 1 only, copies and elementwise ops every
    power of two (not every half), decode at 64K left out, other head counts at two points only. It stays within 3 minutes on 2 cores."""
    out = []
    for m in GEMM_M:
        pairs = GEMM_NK[:1] if quick and m >= QUICK_BIG_M else GEMM_NK
        for n, k in pairs + (GEMM_NK_EXTRA if m <= EXTRA_MAX_M else []) + (GEMM_NK_SMALL if m <= SMALL_MAX_M else []) \
                + (GEMM_NK_GEMV if m <= (1 if quick else GEMV_MAX_M) else []):
            out.append({"op": "gemm", "dtype": "fp32", "m": m, "n": n, "k": k})
    for L in PREFILL_L[:4] if quick else PREFILL_L:
        out.append({"op": "attention_prefill", "dtype": "fp32", "batch": 1, "heads": 8, "kv_heads": 2, "q_len": L,
                    "kv_len": L, "head_dim": 64})
    heads = [(b, c, 16, 4) for b, c in DECODE if not quick or c <= 32768] + \
        [(b, c, h, hk) for b, c in DECODE_HEADS_AT[:2 if quick else None] for h, hk in DECODE_HEADS]
    for b, c, h, hk in heads:
        out.append({"op": "attention_decode", "dtype": "fp32", "batch": b, "heads": h, "kv_heads": hk, "q_len": 1,
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
    the cache on a GPU for the same reason): together at least 4 x the last-level cache. A copy
    of 32 KiB rotates over 4,097 views of the pool: a cap (64 copies, before) left small shapes in
    the cache, and the measured curve jumped at the cache's size, which no smooth fit follows."""
    return max(1, int(4 * _llc_bytes() // max(nbytes, 1)) + 1)


_POOL: list = []
_PLACE = random.Random(0)
ALIGN = 16  # floats: 64 bytes, the alignment of torch's CPU allocator


def _offset(room: int) -> int:
    """A random 64-byte-aligned start within `room` floats. Where an operand lies against the others
    sets a BLAS kernel's cache-set conflicts: one 512 x 2048 x 2048 GEMM ran 67-104 ms over eight
    placements of its weight, the slowest at the pool's start, where every round put it. Each
    round now draws a placement, so a shape's average over rounds is its typical time, not one draw
    kept for the whole sweep (which another sweep redraws: shapes moved +-25% between sweeps)."""
    return _PLACE.randrange(0, max(room, 0) // ALIGN + 1) * ALIGN


def _placed(*shape: int):
    """A fresh operand (filled with 0.5) at a random 64-byte-aligned offset in the first 4 KiB
    of its buffer: the operands that stay put within a round (activations, queries)."""
    import torch

    n = math.prod(shape)
    return torch.empty(n + 1024).fill_(0.5)[(o := _offset(1024)):o + n].view(shape)


def _pool():
    """One flat fp32 buffer of 8 x the last-level cache, filled once: the operands that stream from
    memory are views into it, so a round sets up each shape without allocating (or page-faulting)
    its rotation again."""
    import torch

    if not _POOL:
        _POOL.append(torch.empty(8 * _llc_bytes() // 4).uniform_(-1, 1))
    return _POOL[0]


def _streamed(*shapes: tuple[int, ...]) -> list[tuple]:
    """Rotation sets of operands of these shapes (fp32): views into the pool when the whole
    rotation fits there, else one freshly filled set."""
    import torch

    sizes = [math.prod(s) for s in shapes]
    per_set = sum(-(-n // 64) * 64 for n in sizes)  # 256-byte aligned
    copies = _rotation(4 * per_set)
    pool = _pool()
    if copies * per_set > pool.numel():
        return [tuple(torch.empty(s).fill_(0.5) for s in shapes)]  # values do not change fp32 BLAS or copy speed
    sets, off = [], _offset(pool.numel() - copies * per_set)  # this round's placement
    for _ in range(copies):
        views = []
        for s, n in zip(shapes, sizes):
            views.append(pool[off:off + n].view(s))
            off += -(-n // 64) * 64
        sets.append(tuple(views))
    return sets


def _setup(r: dict):
    """A callable running one instance of the shape; the operands that stream from memory
    (weights, KV, copy sources) rotate over several copies."""
    import itertools

    import torch
    import torch.nn.functional as F

    op = r["op"]
    if op == "layer":
        return _tiny_llama(r)
    if op == "gemm":  # as a model's linear layers run: weights stored [N, K], x @ W^T
        a = _placed(r["m"], r["k"])
        nxt = itertools.cycle(_streamed((r["n"], r["k"]))).__next__
        return lambda: F.linear(a, nxt()[0])
    if op.startswith("attention"):
        B, H, Hk, q, kv, d = (int(r[c]) for c in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"))
        Q = _placed(B, H, q, d)
        nxt = itertools.cycle(_streamed((B, Hk, kv, d), (B, Hk, kv, d))).__next__
        causal = op == "attention_prefill"

        def attend():
            K, V = nxt()
            return F.scaled_dot_product_attention(Q, K, V, is_causal=causal, enable_gqa=True)
        return attend
    e = int(r["elems"])
    if op == "copy":
        nxt = itertools.cycle(_streamed((e,), (e,))).__next__

        def copy():
            src, dst = nxt()
            dst.copy_(src)
        return copy
    if op == "rmsnorm":
        n = int(r["n"])
        g = torch.ones(n)
        nxt = itertools.cycle(_streamed((e // n, n))).__next__
        return lambda: F.rms_norm(nxt()[0], (n,), g)
    nxt = itertools.cycle(_streamed((2, e))).__next__

    def silu_mul():
        x = nxt()[0]
        return F.silu(x[0]) * x[1]
    return silu_mul


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
    return step


ROUNDS = {"full": 25, "quick": 7}  # rounds for kernels under timing_rounds.LONG_S a call
LONG_ROUNDS = {"full": 8, "quick": 3}  # rounds for longer ones
BUDGET_S = {"full": 0.04, "quick": 0.03}  # timed seconds per shape and round


def provenance(quick: bool, rounds: int) -> dict[str, str]:
    import torch

    from simulator.local_device import detect_local

    from .e2e_cpu import _quiet_allocator

    spec = detect_local(use_profile=False)
    return {"allocator": "glibc mallopt: mmap threshold 32 MiB, no trim (as validate e2e)" if _quiet_allocator()
            else "default", "device": spec.name, "cpu_threads": str(torch.get_num_threads()), "torch": torch.__version__,
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "method": METHOD + (" (quick sweep)" if quick else "")}


METHOD = ("time.perf_counter over blocks of calls, median per round; interleaved rounds, median polish, "
          "10%-trimmed mean of round-corrected times "
          "(validate/timing_rounds.py)")


def raw_path(path: Path) -> Path:
    return Path(path).with_suffix(".raw.csv")


def key_text(r: dict) -> str:
    return "|".join(map(str, key(r)))


def jobs(todo: list[dict], budget_s: float) -> list:
    from .timing_rounds import Job

    return [Job(key_text(r), (lambda r=r: _setup(r)), 1, budget_s) for r in todo]


def measure(path: Path, quick: bool = False, progress=None, budget_s: float | None = None,
            rounds: int | None = None) -> int:
    """Time every shape in interleaved rounds (raw timings in <path>.raw.csv, resumable), then write
    `path`: one row per shape, its time at the median round's speed. Returns how many timings were taken."""
    import torch

    from .e2e_cpu import _quiet_allocator
    from .timing_rounds import median_polish, read_raw, run_rounds

    _quiet_allocator()  # the same heap behaviour as the end-to-end timings
    mode = "quick" if quick else "full"
    rounds = rounds or ROUNDS[mode]
    prov = provenance(quick, rounds)
    path = Path(path)
    if path.exists() and not raw_path(path).exists():  # a table from elsewhere: kept under a dated name
        stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
        path.rename(path.with_name(f"{path.stem}.{stamp}{path.suffix}"))
    n = run_rounds(jobs(shapes(quick), budget_s or BUDGET_S[mode]), rounds, raw_path(path), torch.get_num_threads(),
                   header=prov, progress=progress, long_rounds=min(rounds, LONG_ROUNDS[mode]))
    write_table(path, shapes(quick), prov, median_polish(read_raw(raw_path(path))))
    return n


def write_table(path: Path, todo: list[dict], prov: dict[str, str], pol, work=work) -> None:
    """The kernel table: each shape's polished time (`pol`, timing_rounds.Polished), with
    FLOPs and bytes (`work` of a row), under provenance lines."""
    factors = sorted(pol.round_factor.values())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prov = {**prov, "rounds": str(len(factors)),
            "round_speed": f"slowest round x{factors[-1]:.3f}, fastest x{factors[0]:.3f} of the median round",
            "noise": f"median |residual| after job and round effects {100 * pol.spread:.1f}%"}
    with Path(path).open("w", newline="") as f:
        for k, v in prov.items():
            f.write(f"# {k}: {v}\n")
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        for r in todo:
            t = pol.times.get(key_text(r))
            if t is not None:
                flops, nbytes = work(r)
                w.writerow({**r, "flops": flops, "bytes": nbytes, "time_s": f"{t:.6e}"})
