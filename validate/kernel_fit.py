"""Fit a calibration profile to kernel measurements, and measure how well it predicts shapes it
never saw. No torch here: the measurements come as CSV rows (validate/calibrate_cpu.py writes them).

Each row becomes the simulator's own Op (FLOPs, bytes, GEMM shape) and is predicted by
roofline.op_time, so the fitted profile means exactly what the simulator will do with it. Per op
class an efficiency curve (piecewise linear in log10 of FLOPs, or of bytes for memory traffic, at
fixed knots spanning the data) and a fixed overhead are fitted by scipy least_squares on log
residuals (soft-L1 loss), in order: memory (copies) -> norms -> activations (each their own
elementwise family) -> GEMM (a curve over FLOPs or rows M, times factors over N and K, or a
surface over M and N; its memory rate may take a factor over K; up to gemv_rows, read off the
sweep, each row streams the weight; the form is chosen by 3-fold cross-validation among the four
that fit best, on mean |log error|) -> attention (a prefill and a decode curve: a KV
read is not a FlashAttention tile loop; the decode curve over FLOPs or over the keys each sequence
attends, its math and KV read overlapped as the device's other kernels or added; cross-validation
picks; one overhead); the forms and their knots are in fit_forms.py. Every
shape is costed at once (batch_times): a whole profile, with its cross-validation, fits in about
30 s on this sandbox's CPU. The held-out error fits on a random 70% of the rows and predicts the
other 30%."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from simulator.calibration import Calibration, Curve, MeasuredPeaks, OpCal, Surface, calibration_dir
from simulator.config_io import load_model
from simulator.ops import Op
from simulator.roofline import Device, op_time
from simulator.serving.count_table import op_seconds

from .fit_forms import FORMS, STREAM_KNOTS, gemv_rows, knot_sets, side_knots

COLUMNS = ("op", "dtype", "m", "n", "k", "batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim", "elems",
           "flops", "bytes", "time_s")
KIND = {"gemm": "gemm", "attention_prefill": "attention", "attention_decode": "attention", "copy": "memory",
        "rmsnorm": "elementwise", "silu_mul": "elementwise"}
CLASS = {"gemm": "gemm", "attention_prefill": "attention", "attention_decode": "attention", "copy": "memory",
         "rmsnorm": "norm", "silu_mul": "act", "layer": "layer"}
NAME = {"rmsnorm": "norm", "silu_mul": "mlp_act"}  # the operator model's op names (calibration.elementwise_family)
SMOOTH = 0.2  # weight of the curve's second differences (in logits) among the residuals: a smooth curve


@dataclass
class Measurements:
    rows: list[dict]
    provenance: dict[str, str]


def read_csv(path: Path) -> Measurements:
    """Rows and the `# key: value` provenance lines above the header."""
    prov, lines = {}, []
    with Path(path).open() as f:
        for line in f:
            if line.startswith("#"):
                key, _, value = line[1:].partition(":")
                prov[key.strip()] = value.strip()
            else:
                lines.append(line)
    rows = []
    for r in csv.DictReader(lines):
        rows.append({k: (r[k] if k in ("op", "dtype") else float(r[k] or 0)) for k in COLUMNS})
    return Measurements(rows, prov)


def to_op(r: dict) -> Op:
    kind = KIND[r["op"]]
    shape = (int(r["m"]), int(r["n"]), int(r["k"])) if kind == "gemm" else (0, 0, 0)
    phase = {"attention_prefill": "prefill", "attention_decode": "decode"}.get(r["op"], "")
    context = float(r.get("kv_len", 0)) if phase == "decode" else 0.0  # keys per sequence
    return Op(NAME.get(r["op"], r["op"]), kind, 1, float(r["flops"]), float(r["bytes"]), r["dtype"], shape, phase=phase,
              context=context)


def layer_model(r: dict):
    """The tiny Llama of a `layer` row (m layers, n hidden, k MLP width, heads, kv_heads, head_dim,
    elems vocabulary): a decode step of it is nearly all framework dispatch."""
    from simulator.modelspec import ModelSpec

    return ModelSpec.model_validate({
        "id": "calibration-layer", "name": "tiny Llama timed by infercast calibrate", "hidden_size": int(r["n"]),
        "num_layers": int(r["m"]), "num_heads": int(r["heads"]), "num_kv_heads": int(r["kv_heads"]),
        "head_dim": int(r["head_dim"]), "intermediate_size": int(r["k"]), "vocab_size": int(r["elems"]),
        "tie_embeddings": True})


def batched(ops: list[Op]) -> list[tuple[np.ndarray, Op]]:
    """The ops grouped by kind, phase, name and dtype, each group one Op whose FLOPs, bytes and
    GEMM shape are arrays: (the group's positions, that Op), for batch_times."""
    groups: dict[tuple, list[int]] = {}
    for i, o in enumerate(ops):
        groups.setdefault((o.kind, o.phase, o.name, o.dtype), []).append(i)
    out = []
    for idx in groups.values():
        g = [ops[i] for i in idx]
        shape = tuple(np.array([o.shape[a] for o in g], dtype=np.int64) for a in range(3))
        out.append((np.array(idx), replace(g[0], count=1, flops=np.array([o.flops for o in g], dtype=np.float64),
                                           bytes=np.array([o.bytes for o in g], dtype=np.float64), shape=shape,
                                           context=np.array([o.context for o in g], dtype=np.float64))))
    return out


def batch_times(batches: list[tuple[np.ndarray, Op]], dev: Device, size: int) -> np.ndarray:
    """op_time of every op of `batched` at once (count 1), in the ops' order: what a fit evaluates
    a few thousand times."""
    t = np.zeros(size)
    for idx, op in batches:
        t[idx] = op_seconds(op, dev)
    return t


def predict_row(spec, cal: Calibration, r: dict) -> float:
    """Predicted seconds of a measured row: its op through op_time, or (a `layer` row) the tiny
    model's decode step through step_time."""
    dev = Device(spec, cal)
    if r["op"] != "layer":
        return float(op_time(to_op(r), dev))
    from simulator.phases import Decode, Layout
    from simulator.precision import resolve_precision
    from simulator.step import step_time

    prec = resolve_precision(spec, r["dtype"])
    return float(step_time(layer_model(r), dev, Decode.of(int(r["batch"]), int(r["kv_len"])), Layout(), prec).total_s)


def _fit_layer_overhead(spec, cal: Calibration, rows: list[dict]) -> Calibration:
    """layer_overhead: the median, over the `layer` rows, of the decode step time the fitted kernels
    leave unexplained, per layer."""
    lay = [r for r in rows if r["op"] == "layer"]
    if not lay:
        return cal
    base = cal.model_copy(update={"layer_overhead": 0.0})
    extra = [(r["time_s"] - predict_row(spec, base, r)) / r["m"] for r in lay]
    return cal.model_copy(update={"layer_overhead": max(0.0, float(np.median(extra)))})


def measured_peaks(rows: list[dict]) -> MeasuredPeaks:
    """The best copy bandwidth and the best GEMM rate per dtype seen in the measurements."""
    bw = max((r["bytes"] / r["time_s"] for r in rows if r["op"] == "copy"), default=None)
    peak: dict[str, float] = {}
    for r in rows:
        if r["op"] == "gemm":
            peak[r["dtype"]] = max(peak.get(r["dtype"], 0.0), r["flops"] / r["time_s"])
    return MeasuredPeaks(memory_bandwidth=bw, peak=peak)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def _with(cal: Calibration, cls: str, curves: list[Curve], overhead: float, dtype: str, by: str = "flops",
          additive: bool = False) -> Calibration:
    if cls == "gemm":
        g = cal.gemm.model_copy(update={"efficiency": {**cal.gemm.efficiency, dtype: curves[0]}, "overhead": overhead,
                                        "size": "rows" if by == "surface" else by})
        return cal.model_copy(update={"gemm": g})
    if cls == "attention":  # prefill and decode curves, one kernel overhead
        a = cal.attention.model_copy(update={"efficiency": curves[0], "decode_efficiency": curves[1], "overhead": overhead,
                                             "decode_size": "context" if by == "context" else "flops",
                                             "decode_overlap": 1.0 if additive else None})
        return cal.model_copy(update={"attention": a})
    if cls in ("norm", "act"):
        e = cal.elementwise
        own = OpCal(efficiency=curves[0], overhead=overhead)
        return cal.model_copy(update={"elementwise": e.model_copy(update={"by_op": {**e.by_op, cls: own}})})
    return cal.model_copy(update={cls: getattr(cal, cls).model_copy(update={"efficiency": curves[0], "overhead": overhead})})


def _fit_class(spec, cal: Calibration, rows: list[dict], cls: str) -> Calibration:
    """Fit one class's curve and overhead (memory: copies, whose curve every op's traffic then uses).
    GEMM fits each of its model forms; among the best few by fit cost, cross-validation picks the
    one that predicts shapes it was not fitted to best (a richer form always fits its own shapes
    better, and its extra parameters may only chase their noise)."""
    mine = [r for r in rows if CLASS[r["op"]] == cls]
    if not mine or cls == "layer":
        return cal
    if cls == "gemm":
        cal = cal.model_copy(update={"gemm": cal.gemm.model_copy(update={"gemv_rows": gemv_rows(mine)})})
    fits = _fit_forms(spec, cal, mine, cls, FORMS.get(cls, [("flops", "")]))
    ranked = sorted((c, i) for i, (_, c, _) in enumerate(fits) if math.isfinite(c))
    if not ranked:
        return fits[0][0]
    if CV_FOLDS and len(ranked) > 1 and len(mine) >= 6 * CV_FOLDS:
        forms = [fits[i][2] for _, i in ranked[:CV_CANDIDATES]]
        scores = _cv_errors(spec, cal, mine, cls, forms)
        return fits[ranked[int(np.argmin(scores))][1]][0]
    return fits[ranked[0][1]][0]


_SIDE_FIELD = {"n": "n_efficiency", "k": "k_efficiency", "s": "k_stream_efficiency", "r": "gemv_reread"}
RISING = "sr"  # factors that never fall (_rising): the stream factor with K, the re-read share with bytes
CV_FOLDS = 3  # folds of the cross-validation that picks a GEMM form (0: the lowest fit cost)
CV_CANDIDATES = 4  # forms, by fit cost, that it compares


def _fit_forms(spec, cal: Calibration, mine: list[dict], cls: str, forms, counted: bool = True) -> list[tuple]:
    """(profile, fit cost, form) per form; a form with memory-term factors (stream, re-read) starts
    from its form without the last of them, else without both. `counted`: hold richer forms to their
    shapes-per-parameter rule (a cross-validation fold does not: the rule was met by the whole set
    its form is chosen for)."""
    out, found = [], {}
    for by, side in forms:
        below = [p for p in _parents(side)[:-1] if found.get((by, p)) is not None]
        parent = found[(by, below[-1])] if below else None
        fitted, cost, found[(by, side)] = _fit_curve(spec, cal, mine, cls, by, side, parent, counted)
        out.append((fitted, cost, (by, side)))
    return out


def _cv_errors(spec, cal: Calibration, mine: list[dict], cls: str, forms: list[tuple[str, str]]) -> list[float]:
    """Per form, its mean |log error| on each fold's shapes, fitted to the other folds (shuffled
    with a fixed seed: the choice is reproducible); inf where a fold's fit fails. Each fold fits
    every form and the forms on their way once (_parents: the candidates share them). The mean,
    not the median: the held-out report judges the 90th percentile too, and a form that misses a
    few shapes (the one-row GEMVs) by 50% must lose to one that misses none by much."""
    idx = np.random.default_rng(12345).permutation(len(mine))
    chain = list(dict.fromkeys((by, p) for by, side in forms for p in _parents(side)))
    errs: dict[tuple, list | None] = {f: [] for f in forms}
    for fold in range(CV_FOLDS):
        test = sorted(idx[fold::CV_FOLDS].tolist())
        held = set(test)
        train = [r for i, r in enumerate(mine) if i not in held]
        fits = {form: (fitted, cost) for fitted, cost, form in _fit_forms(spec, cal, train, cls, chain, False)}
        for f in forms:
            fitted, cost = fits[f]
            if errs[f] is not None and math.isfinite(cost):
                errs[f] += list(np.log1p(errors(spec, fitted, [mine[i] for i in test])))
            else:
                errs[f] = None
    return [math.inf if e is None else float(np.mean(np.abs(e))) for e in (errs[f] for f in forms)]


def _parents(side: str) -> list[str]:
    """The forms to fit on the way to `side`: without its memory-term factors (s, r), then with the
    stream factor only, then `side`."""
    chain = [side.replace("s", "").replace("r", ""), side.replace("r", ""), side]
    return [c for i, c in enumerate(chain) if c not in chain[:i]]


def _fit_curve(spec, cal: Calibration, mine: list[dict], cls: str, by: str, side: str = "",
               start: dict | None = None, counted: bool = True) -> tuple[Calibration, float, dict | None]:
    """One curve per group of rows (attention: prefill, then decode), or for GEMM one surface over
    M and N (`by` "surface"), and one overhead: (profile, fit cost, fitted parameters by block).
    `start`: the parameters of a nested simpler form to start from (its blocks by name; a block
    it lacks starts neutral), so that the richer form fits at least as well."""
    dtype = mine[0]["dtype"]
    ops = [to_op(r) for r in mine]
    t = np.array([r["time_s"] for r in mine])
    gemv = cal.gemm.gemv_rows if cls == "gemm" else 0
    sets = knot_sets(ops, cls, by, gemv)
    if sets is None:
        return cal, math.inf, None
    dims = [(len(k[0]), len(k[1])) if isinstance(k, tuple) else (len(k), 1) for k in sets]
    cuts = np.cumsum([0] + [r * c for r, c in dims])
    n = int(cuts[-1])
    sides = [(d, side_knots(ops, d, STREAM_KNOTS if d == "s" else 4, gemv)) for d in side if d in _SIDE_FIELD]
    sides = [(d, k) for d, k in sides if k]
    side_cuts = np.cumsum([n] + [len(k) for _, k in sides])
    n_k = int(side_cuts[-1]) - n
    if counted and (n_k or by == "surface") and len(mine) < 2 * (n + n_k + 1):  # richer forms: 2 shapes per parameter
        return cal, math.inf, None

    def build(v):
        curves = []
        for k, a, b in zip(sets, cuts[:-1], cuts[1:]):
            e = np.clip(_sig(v[a:b]), 1e-4, 1.0)
            curves.append(Surface(rows=k[0], cols=k[1], efficiency=e.reshape(len(k[0]), len(k[1])).tolist())
                          if isinstance(k, tuple) else Curve(size=k, efficiency=list(e)))
        fitted = _with(cal, cls, curves, float(np.exp(v[-1]) * 1e-6), dtype, by, "a" in side)
        for (d, at), a, b in zip(sides, side_cuts[:-1], side_cuts[1:]):
            kc = Curve(size=at, efficiency=list(np.clip(_sig(_rising(v[a:b]) if d in RISING else v[a:b]), 1e-4, 1.0)))
            fitted = fitted.model_copy(update={"gemm": fitted.gemm.model_copy(update={_SIDE_FIELD[d]: kc})})
        return fitted

    def smooth(v):  # second differences of each curve, and of a surface along M and along N
        out = []
        for (r, c), a, b in zip(dims, cuts[:-1], cuts[1:]):
            x = v[a:b].reshape(r, c)
            out += [np.diff(x, 2, axis=0).ravel()] + ([np.diff(x, 2, axis=1).ravel()] if c > 2 else [])
        return np.concatenate(out)

    batches = batched(ops)

    def resid(v):
        fit = np.log(batch_times(batches, Device(spec, build(v)), len(ops))) - np.log(t)
        return np.concatenate([fit, SMOOTH * smooth(v)])

    blocks = ["curve"] + [d for d, _ in sides] + ["overhead"]
    sizes = [n] + [len(k) for _, k in sides] + [1]
    neutral = {"curve": _logit(0.5), "n": _logit(0.9), "k": _logit(0.9), "s": _logit(0.98), "r": _logit(0.9),
               "overhead": math.log(4.0)}
    start = start or {}
    x0 = np.concatenate([start[b] if b in start and len(start[b]) == m else
                         np.r_[neutral[b], np.full(m - 1, -4.0)] if b in RISING else np.full(m, neutral[b])
                         for b, m in zip(blocks, sizes)])
    bounds = ([-9.0] * (n + n_k) + [math.log(0.01)], [9.0] * (n + n_k) + [math.log(10_000.0)])  # overhead 0.01 us..10 ms
    fit = least_squares(resid, x0, bounds=bounds, loss="soft_l1", f_scale=0.1, max_nfev=400)
    params = dict(zip(blocks, np.split(fit.x, np.cumsum(sizes)[:-1])))
    return build(fit.x), float(fit.cost), params


def _rising(x: np.ndarray) -> np.ndarray:
    """Logits that never fall: the first, then positive steps exp(x[1:]). The stream factor rises
    with K (a longer dot product amortises its set-up further); free knots let a K measured on one
    weight shape alone (K = 256: only 256 x 256) bend it the wrong way."""
    return x[0] + np.concatenate([[0.0], np.cumsum(np.exp(x[1:]))])


def fit_profile(spec, rows: list[dict], device_id: str, base: Calibration | None = None) -> Calibration:
    """A calibrated profile of `spec` fitted to all `rows` (spec carries the measured peaks)."""
    cal = (base or load_model(calibration_dir() / "defaults.yaml", Calibration)).model_copy(
        update={"device": device_id, "calibrated": True, "overlap_norm": 4.0})
    for cls in ("memory", "norm", "act", "gemm", "attention"):
        cal = _fit_class(spec, cal, rows, cls)
    return _fit_layer_overhead(spec, cal, rows)


def errors(spec, cal: Calibration, rows: list[dict]) -> np.ndarray:
    """Relative errors (predicted - measured) / measured of each row."""
    pred = np.array([predict_row(spec, cal, r) for r in rows])
    meas = np.array([r["time_s"] for r in rows])
    return pred / meas - 1


def held_out(spec, rows: list[dict], device_id: str, seed: int = 0, train: float = 0.7):
    """(profile fitted on a random `train` share of each op class's shapes, the other rows, their
    relative errors)."""
    rng = np.random.default_rng(seed)
    fit_rows, test_rows = [], []
    for cls in sorted(set(CLASS.values())):  # stratified: `train` of each class's shapes
        mine = [r for r in rows if CLASS[r["op"]] == cls]
        idx = rng.permutation(len(mine))
        cut = int(round(train * len(mine)))
        fit_rows += [mine[i] for i in idx[:cut]]
        test_rows += [mine[i] for i in idx[cut:]]
    cal = fit_profile(spec, fit_rows, device_id)
    return cal, test_rows, errors(spec, cal, test_rows)


def summary(errs: np.ndarray) -> dict:
    a = np.abs(errs)
    return {"points": int(len(a)), "median": float(np.median(a)) if len(a) else math.nan,
            "p90": float(np.percentile(a, 90)) if len(a) else math.nan, "worst": float(a.max()) if len(a) else math.nan}
