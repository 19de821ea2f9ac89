"""Step cost of a mixed batch (prefill chunks and decodes together) for the serving simulator.

The same operator model and roofline as the what-if, regrouped so a step costs a few lookups:
ops that depend only on the step's token count are cached by that count, the LM head by the
number of logits rows, and attention - linear in its query-key pairs and streamed keys - is
evaluated from coefficients taken once from the operator model (two tiny probes). MLA's prefill
kv_b projection depends on the keys, so MLA prefill is built op by op. For one request alone this
is exactly the what-if's sum (tests/serving/test_step_model.py).

A cost is (seconds, FLOPs, device-memory bytes) per device; FLOPs and bytes feed MFU and MBU.
The operator model sums one TP rank's ops over every pipeline stage (a step's critical path), so
under pipeline parallelism FLOPs and bytes are divided by pp: each stage's devices hold 1/pp of
the layers."""

from __future__ import annotations

import math

import numpy as np

from ..attention_cost import (
    attention_ops,
    causal_pairs,
    kv_bytes_per_token_layer,
    tiled_key_reads,
)
from ..calibration import Curve, evaluate
from ..collectives import collective_seconds
from ..modelspec import ModelSpec
from ..ops import build_ops
from ..phases import Decode, Layout, Prefill
from ..precision import Precision
from ..roofline import Device, combine, op_time
from .count_table import count_costs, count_ops

PER_SEQUENCE = {"lm_head", "logits_all_gather"}
KEY_DEPENDENT = {"attention", "kv_b_proj"}
PER_DECODE_ROW = {"kv_b_proj", "cp_merge"}  # decode rows only: MLA's absorbed kv_b, context-parallel merges
TOKEN_ONLY = lambda name: name not in KEY_DEPENDENT | PER_SEQUENCE | PER_DECODE_ROW  # noqa: E731
NETWORK = ("collective", "p2p")
TABLE_BLOCK = 1024  # counts tabulated at once


def _attention_op(model, phase, layout, prec, tile=128):
    return next(o for o in attention_ops(model, phase, layout, prec, tile) if o.name == "attention")


class StepModel:
    def __init__(self, model: ModelSpec, dev: Device, layout: Layout, prec: Precision, tables: bool = True):
        """`tables`: cost token counts a block at a time (a simulation meets thousands of counts);
        False costs counts past the first block one by one (the planner asks for a few per layout)."""
        self.model, self.dev, self.layout, self.prec = model, dev, layout, prec
        self.tables = tables
        self.tile = dev.cal.attention.query_tile * (dev.spec.engine.compute_units or 1)
        self._by_tokens: dict[int, tuple] = {}
        self._by_rows: dict[int, tuple] = {}
        self._base = np.zeros((3, 1))  # decode step less attention, by batch size (see _fill_base)
        self._coefficients()
        cal = dev.cal  # attention with fixed efficiencies: seconds per FLOP and per byte (decode, prefill)
        effs = (cal.attention.eff(True), cal.attention.eff(False), cal.memory.efficiency)
        fixed = not any(isinstance(e, Curve) for e in effs)
        self._fast = (1.0 / (self._peak * effs[0]), 1.0 / (dev.mem_bandwidth * effs[2]), cal.overlap("attention", "decode")) \
            if fixed else None
        self._fast_prefill = (1.0 / (self._peak * effs[1]), self._fast[1], cal.overlap("attention", "prefill")) if fixed else None
        self._per_key = np.array([[0.0, self._a], [self._c, self._b]])  # decode attention by (rows, keys)
        self._fast_rates = None if self._fast is None else np.array(self._fast[:2])[:, None]
        # context parallelism: a rank's dense layers see 1/cp of the prompt tokens; its K/V shard
        # passes around the ring under the prefill attention, per layer and per ring-pass byte
        self._cp, self._pp = layout.cp, layout.pp
        self._per_stage = 1.0 / layout.pp  # FLOPs and bytes of one device: its stage's share of the layers
        kvb = kv_bytes_per_token_layer(model, layout, prec)
        self._ring = (lambda shard: model.num_layers * collective_seconds(
            "send_recv", 2, (layout.cp - 1) * shard * kvb, dev.spec, dev.cal.collective, layout.tp * layout.cp))

    def _ops(self, phase):
        return build_ops(self.model, phase, self.layout, self.prec, self.tile)

    def _cost(self, ops, keep) -> tuple[float, float, float]:
        t = f = b = 0.0
        for op in ops:
            if keep(op.name):
                t += float(op_time(op, self.dev))
                f += float(op.flops) * op.count
                b += 0.0 if op.kind in NETWORK else float(op.bytes) * op.count
        return t, f, b

    def _coefficients(self) -> None:
        """Attention per layer: decode FLOPs = a K, bytes = b K + c B (K cached keys, B rows);
        prefill FLOPs = pa P, bytes = pb R + pc T (P query-key pairs, R streamed keys, T tokens)."""
        m, lay, prec = self.model, self.layout, self.prec
        one, two = (_attention_op(m, Decode(np.array([k])), lay, prec) for k in (1, 2))
        self._count, self._dtype = one.count, one.dtype
        self._a, self._b = float(one.flops), float(two.bytes - one.bytes)
        self._c = float(one.bytes) - self._b
        p1, p2 = (_attention_op(m, Prefill(np.array([1]), np.array([k])), lay, prec) for k in (0, 1))
        self._pa, self._pb = float(p1.flops), float(p2.bytes - p1.bytes)  # probes: (P, R) = (1, 1), (2, 2)
        self._pc = float(p1.bytes) - self._pb
        self._peak = self.dev.peak(one.dtype)
        self._ctx_key = float(one.context)  # keys per sequence on a rank, per key of the step (1 / cp)

    def _attention(self, flops, nbytes, context):
        """Seconds of all layers' decode attention from one layer's FLOPs, bytes and keys per
        sequence (arrays)."""
        cal, dev = self.dev.cal, self.dev
        compute = flops / (self._peak * cal.attention.decode_rate(flops, context))
        memory = nbytes / (dev.mem_bandwidth * evaluate(cal.memory.efficiency, nbytes))
        return self._count * (combine(compute, memory, cal.overlap("attention", "decode")) + cal.attention.overhead)

    def _attention1(self, flops: float, nbytes: float, decode: bool = True, context: float = 0.0) -> float:
        """All layers' attention of one step (decode rows with `context` keys each, or `decode`
        False: prompt chunks), in plain floats (the hot path of mixed steps)."""
        cal = self.dev.cal
        if self._fast is None:
            ce = cal.attention.decode_rate(flops, context) if decode else evaluate(cal.attention.efficiency, flops)
            me = evaluate(cal.memory.efficiency, nbytes)
            compute = flops / (self._peak * float(ce))
            memory = nbytes / (self.dev.mem_bandwidth * float(me))
            p = cal.overlap("attention", "decode" if decode else "prefill")
            return self._count * (combine(float(compute), float(memory), p) + cal.attention.overhead)
        fast = self._fast if decode else self._fast_prefill  # plain floats in, plain floats out
        return self._count * (combine(flops * fast[0], nbytes * fast[1], fast[2]) + cal.attention.overhead)

    def _keys(self, contexts: np.ndarray):
        w = self.model.sliding_window
        return (contexts if w is None else np.minimum(contexts, w)).sum(axis=-1)

    def _tabulate(self, n: int) -> None:
        """Cache by_tokens and by_rows for the block of TABLE_BLOCK counts holding n (>= 1), all
        at once (count_table.py): the same sums as costing each count's ops one by one."""
        lo = n - n % TABLE_BLOCK
        counts = np.arange(max(lo, 1), lo + TABLE_BLOCK)
        ops = count_ops(self.model, self.layout, self.prec, counts, self.tile)
        keys = counts.tolist()
        for cache, sign, keep in ((self._by_tokens, 1, TOKEN_ONLY),
                                  (self._by_rows, 1, lambda x: x in PER_SEQUENCE),
                                  (self._by_rows, -1, lambda x: x in PER_DECODE_ROW)):
            t, f, b = count_costs(ops, self.dev, len(counts), keep)
            cache.update(zip(keys if sign > 0 else [-k for k in keys], zip(t.tolist(), f.tolist(), b.tolist())))

    def _single(self, n: int) -> None:
        """Cache by_tokens(n), by_rows(n) and by_rows(-n) from n's ops, costed one by one."""
        ops = self._ops(Decode.of(n, 1))
        self._by_tokens[n] = self._cost(ops, TOKEN_ONLY)
        self._by_rows[n] = self._cost(ops, lambda x: x in PER_SEQUENCE)
        self._by_rows[-n] = self._cost(ops, lambda x: x in PER_DECODE_ROW)

    def _miss(self, n: int) -> None:
        if self.tables or n < TABLE_BLOCK:
            self._tabulate(n)
        else:
            self._single(n)

    def by_tokens(self, tokens: int) -> tuple:
        """Every op but attention, the LM head and logits gather (and MLA's kv_b) of a step of
        `tokens` tokens."""
        hit = self._by_tokens.get(tokens)
        if hit is not None:
            return hit
        if tokens >= 1:
            self._miss(tokens)
        else:
            ops = self._ops(Decode.of(tokens, 1))
            self._by_tokens[tokens] = self._cost(ops, TOKEN_ONLY)
        return self._by_tokens[tokens]

    def by_rows(self, rows: int) -> tuple:
        """LM head and logits gather of `rows` sequences (MLA's absorbed kv_b in decode: key -rows)."""
        if rows not in self._by_rows:
            if rows:
                self._miss(abs(rows))
            else:  # no logits: the LM head still reads its weights
                self._by_rows[0] = self._cost(self._ops(Decode.of(0, 1)), lambda n: n in PER_SEQUENCE)
        return self._by_rows[rows]

    def _fill_base(self, top: int) -> None:
        """Table of pure-decode steps of 0..top rows less their attention: (seconds, FLOPs, bytes)
        by row count, as columns."""
        old = self._base.shape[1]
        grown = np.zeros((3, max(top + 1, 2 * old)))
        grown[:, :old] = self._base
        for b in range(max(old, 1), grown.shape[1]):
            grown[:, b] = np.add(np.add(self.by_tokens(b), self.by_rows(b)), self.by_rows(-b))
        self._base = grown

    def decode_into(self, out: np.ndarray, rows_keys: np.ndarray) -> None:
        """out[0..2] = seconds, FLOPs, bytes of pure-decode steps with rows_keys[0, j] (> 0) rows
        and rows_keys[1, j] attended keys (after any sliding window) in step j. Few numpy calls:
        the stretches are short (16 steps typically), so each call's overhead is most of the cost."""
        if self._pp > 1:  # a step = one micro-batch's pass: min(rows, pp) micro-batches of 1/m of the work
            m = np.minimum(rows_keys[0], self._pp)
            self._decode_core(out, -(-rows_keys[0] // m), np.array([-(-rows_keys[0] // m), rows_keys[1] / m]))
            out[1:3] *= m * self._per_stage
            return
        self._decode_core(out, rows_keys[0], rows_keys)

    def _decode_core(self, out: np.ndarray, rows: np.ndarray, rows_keys: np.ndarray) -> None:
        try:
            base = self._base.take(rows, axis=1)
        except IndexError:
            self._fill_base(int(rows.max()))
            base = self._base.take(rows, axis=1)
        # one layer's attention: FLOPs a K, bytes b K + c B (integers, so exact in any order)
        fb = self._per_key @ rows_keys
        if self._fast is None:
            out[0] = self._attention(fb[0], fb[1], rows_keys[1] * self._ctx_key / np.maximum(rows_keys[0], 1))
        else:
            tm = fb * self._fast_rates  # compute and memory seconds
            p = self._fast[2]
            if math.isinf(p):
                t = np.maximum(tm[0], tm[1], out=out[0])
            else:
                tm **= p
                t = np.add(tm[0], tm[1], out=out[0])
                t **= 1.0 / p
            t += self.dev.cal.attention.overhead
            t *= self._count
        np.multiply(fb, self._count, out=out[1:3])
        out += base

    def _prefill_attention(self, chunks: list[tuple[int, int]]) -> tuple[float, float, float]:
        if self.model.mla is not None:  # decompressing kv_b depends on the keys: build the ops
            ph = Prefill(np.array([c for c, _ in chunks]), np.array([p for _, p in chunks]))
            return self._cost(self._ops(ph), lambda n: n in KEY_DEPENDENT)
        w, tile = self.model.sliding_window, self.tile
        pairs = reads = tokens = 0  # one pass over the chunks (usually one or two)
        for c, p in chunks:
            if w is None:
                pairs += c * p + c * (c + 1) // 2
            reads += tiled_key_reads(c, p, tile, w)
            tokens += c
        if w is not None:
            pairs = float(causal_pairs(np.array([c for c, _ in chunks]), np.array([p for _, p in chunks]), w).sum())
        flops, nbytes = self._pa * pairs, self._pb * reads + self._pc * tokens
        return self._attention1(flops, nbytes, decode=False), self._count * flops, self._count * nbytes

    def cost(self, chunks: list[tuple[int, int]], decode_contexts: np.ndarray, logits_rows: int) -> tuple:
        """(seconds, FLOPs, bytes) of one step: prefill `chunks` (new tokens, cached tokens before
        them), decodes at `decode_contexts` (cached tokens including the new one), `logits_rows`
        sequences sampled."""
        rows = len(decode_contexts)
        return self.cost_keys(chunks, rows, float(self._keys(decode_contexts)) if rows else 0.0, logits_rows)

    def cost_keys(self, chunks: list[tuple[int, int]], rows: int, keys: float, logits_rows: int) -> tuple:
        """cost() with the decodes given as `rows` rows attending `keys` keys in all (after any window).
        With pipeline stages the step's sequences run as m = min(sequences, pp) micro-batches that
        all advance in one pass of the full pipeline (serving's steady state; step.step_time): the
        step takes one micro-batch's pass, 1/m of the tokens, rows and keys; FLOPs and bytes are x m."""
        m = min(rows + len(chunks), self._pp)
        if m > 1:
            return self._cost_pipelined(chunks, rows, keys, logits_rows, m)
        prompt = 0
        for c, _ in chunks:
            prompt += c
        if prompt + rows == 0:
            return 0.0, 0.0, 0.0
        shard = -(-prompt // self._cp)  # a rank's prompt tokens (all of them without context parallelism)
        t, f, b = self.by_tokens(shard + rows)
        t1, f1, b1 = self.by_rows(logits_rows)
        t, f, b = t + t1, f + f1, b + b1
        if chunks:
            t1, f1, b1 = self._prefill_attention(chunks)
            t, f, b = t + t1, f + f1, b + b1
            if self._cp > 1:  # the ring's excess over the attention it hides under
                t += max(self._ring(shard) - t1, 0.0)
        if rows:
            t1, f1, b1 = self.by_rows(-rows)
            flops, nbytes = self._a * keys, self._b * keys + self._c * rows
            t += t1 + self._attention1(flops, nbytes, context=keys * self._ctx_key / rows)
            f += f1 + self._count * flops
            b += b1 + self._count * nbytes
        if self._pp > 1:  # one micro-batch on a pipeline: a device holds one stage
            f, b = f * self._per_stage, b * self._per_stage
        return float(t), float(f), float(b)

    def _cost_pipelined(self, chunks, rows: int, keys: float, logits_rows: int, m: int) -> tuple:
        prompt = sum(c for c, _ in chunks)
        shard = -(-prompt // self._cp)
        t, f, b = self.by_tokens(-(-(shard + rows) // m))
        t1, f1, b1 = self.by_rows(-(-logits_rows // m))
        t, f, b = t + t1, f + f1, b + b1
        if chunks:
            t1, f1, b1 = self._prefill_attention(chunks)
            t, f, b = t + t1 / m, f + f1 / m, b + b1 / m
            if self._cp > 1:
                t += max(self._ring(shard / m) - t1 / m, 0.0)
        if rows:
            r = -(-rows // m)
            t1, f1, b1 = self.by_rows(-r)
            flops, nbytes = self._a * keys / m, self._b * keys / m + self._c * r
            t += t1 + self._attention1(flops, nbytes, context=keys / m * self._ctx_key / r)
            f += f1 + self._count * flops
            b += b1 + self._count * nbytes
        return float(t), float(f * m * self._per_stage), float(b * m * self._per_stage)

    def time(self, chunks: list[tuple[int, int]], decode_contexts: np.ndarray, logits_rows: int) -> float:
        return self.cost(chunks, decode_contexts, logits_rows)[0]
