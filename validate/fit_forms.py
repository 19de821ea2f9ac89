"""The model forms a kernel fit tries and the knots of their curves (validate/kernel_fit.py fits
them): per op class how many knots, where a GEMM curve's M knots and a surface's M x N knots lie,
the factors' K and N knots, and how many rows a CPU BLAS runs as matrix-vector products. No torch."""

from __future__ import annotations

import numpy as np

from simulator.ops import Op

KNOTS = {"gemm": 4, "attention": 3, "memory": 4, "norm": 5, "act": 5}
EXTEND = {"gemm", "attention"}  # classes whose curves extrapolate their trend (compute-bound ones)

# GEMM model forms, simplest first: the curve over FLOPs or over rows M, alone or times factors over
# N and/or K (on its rate: n, k; on its memory rate: s); last a surface over M and N
GEMM_FORMS = [(by, side) for side in ("", "n", "k", "nk", "s", "ns") for by in ("flops", "rows")] + \
    [("surface", ""), ("surface", "s"), ("surface", "sr")]  # r: a weight re-read by a GEMV's rows, from cache
# attention: the decode curve over FLOPs, or over the keys each sequence attends; with the device's
# overlap of score math and KV read, or (a) none: the two add, as in this CPU's SDPA
FORMS = {"gemm": GEMM_FORMS, "attention": [(by, side) for side in ("", "a") for by in ("flops", "context")]}
ROW_GRID = [2.0**i for i in range(7)] + [4.0**i for i in range(4, 8)]  # a curve's M knots: per factor 2 to 64, then 4
SURFACE_ROWS = [4.0**i for i in range(8)]  # a surface's M knots: per factor 4
SURFACE_COLS = 4  # and its N knots (at most)
REREAD_KNOTS = 3  # the re-read share's knots over bytes
GEMV_SHARE = 0.75  # M rows run as M matrix-vector products take M times one; a GEMM kernel far less
STREAM_KNOTS = 6  # the stream factor's K knots (at most; other factors 4): a GEMV's rate doubles from K = 512 to 4096


def row_knots(sel: list[Op], grid: list[float], gemv: int = 0) -> list[float]:
    """The grid's M knots within a factor 4 of the measured rows above `gemv` (BLAS kernels change
    with M's register and cache blocking; up to gemv_rows a GEMM is matrix-vector products whose
    arithmetic hides under their weight stream, so its efficiency there means nothing)."""
    size = np.array([float(o.shape[0]) for o in sel if o.shape[0] > gemv] or [float(o.shape[0]) for o in sel])
    return [x for x in grid if size.min() / 4 < x < size.max() * 4] or knots(size, 3)


def knot_sets(ops: list[Op], cls: str, by: str, gemv: int = 0) -> list | None:
    """Per group of ops (attention: prefill, then decode) a curve's knots, or a surface's (M knots,
    N knots); None when the form cannot be fitted (a surface over GEMMs that share one N)."""
    groups = [[o.phase != "decode" for o in ops], [o.phase == "decode" for o in ops]] if cls == "attention" \
        else [[True] * len(ops)]
    out: list = []
    for gi, g in enumerate(groups):
        sel = [o for o, keep in zip(ops, g) if keep] or ops
        if by == "context" and gi == 1:  # attention's decode curve over keys per sequence, flat beyond the data
            size = np.array([o.context for o in sel])
            out.append(knots(size, max(1, min(KNOTS[cls], len(set(size.tolist())) - 1)), extend=False))
        elif by == "surface":
            cols = side_knots(sel, "n", SURFACE_COLS)
            if not cols:
                return None
            out.append((row_knots(sel, SURFACE_ROWS, gemv), cols))
        elif by == "rows":
            out.append(row_knots(sel, ROW_GRID, gemv))
        else:
            size = np.array([o.bytes if cls == "memory" else o.flops for o in sel])  # the axis op_time evaluates
            out.append(knots(size, max(1, min(KNOTS[cls], len(set(size.tolist())) - 1)),  # fewer knots than points
                              extend=cls in EXTEND))
    return out


def knots(sizes: np.ndarray, n: int, extend: bool = True) -> list[float]:
    """n knots spanning the sizes, plus (`extend`) one a decade beyond each end: the smoothness
    penalty carries the curve's trend there, so shapes just outside the fitted range extrapolate
    it. Without, the curve is flat beyond the data: a streaming op's rate settles once its
    operands spill to DRAM."""
    lo, hi = np.log10(max(sizes.min(), 1.0)), np.log10(max(sizes.max(), 10.0))
    if n == 1:
        return [float(10 ** ((lo + hi) / 2))]
    if hi - lo < 1e-6:
        hi = lo + 1.0
    inner = np.linspace(lo, hi, n)
    return list(10 ** (np.concatenate([[lo - 1.0], inner, [hi + 1.0]]) if extend else inner))


def side_knots(ops: list[Op], side: str, most: int = 4, gemv: int = 0) -> list[float]:
    """Knots of the GEMM factor against N or K (`side` "n", "k", or "s" for the stream factor), or
    (`side` "r") of the re-read share against the bytes of the GEMMs that re-read (1 < M <= `gemv`):
    the measured values (at most `most` spread over them); none when the GEMMs share one value."""
    if side == "r":
        ks = sorted({float(o.bytes) for o in ops if 1 < o.shape[0] <= gemv})
        return list(np.geomspace(ks[0], ks[-1], min(most, REREAD_KNOTS))) if len(ks) > 1 else []
    axis = 1 if side == "n" else 2  # "k" and "s" are both against K
    ks = sorted({float(o.shape[axis]) for o in ops if o.shape[axis] > 0})
    if len(ks) < 2:
        return []
    return ks if len(ks) <= most else list(np.geomspace(ks[0], ks[-1], most))


def gemv_rows(rows: list[dict]) -> int:
    """The most rows M (at least 2) up to which the measured GEMMs take (median over the N x K
    measured at M and at M = 1) at least GEMV_SHARE of M times their one-row time: each row streams
    the weight on its own. 0 when no such M (or no one-row GEMM) was measured."""
    one = {(r["n"], r["k"]): r["time_s"] for r in rows if r["m"] == 1}
    out = 0
    for m in sorted({r["m"] for r in rows if r["m"] > 1}):
        share = [r["time_s"] / (m * one[(r["n"], r["k"])]) for r in rows if r["m"] == m and (r["n"], r["k"]) in one]
        if not share or np.median(share) < GEMV_SHARE:
            break
        out = int(m)
    return out

