"""Step time of a mixed batch (prefill chunks and decodes together) for the serving simulator.

The same operator model and roofline as the what-if, regrouped so a step costs a few lookups:
ops that depend only on the step's token count are cached by that count, the LM head by the
number of logits rows, and decode attention - linear in the batch's cached keys - is evaluated
from coefficients taken once from the operator model. Prefill attention (and MLA's kv_b
projection, which depends on the keys) is built for the actual chunks. For one request alone
this is exactly the what-if's sum (tests/serving/test_step_model.py)."""

from __future__ import annotations

import numpy as np

from ..attention_cost import attention_ops
from ..calibration import evaluate
from ..modelspec import ModelSpec
from ..ops import build_ops
from ..phases import Decode, Layout, Prefill
from ..precision import Precision
from ..roofline import Device, combine, op_time

PER_SEQUENCE = {"lm_head", "logits_all_gather"}
KEY_DEPENDENT = {"attention", "kv_b_proj"}


class StepModel:
    def __init__(self, model: ModelSpec, dev: Device, layout: Layout, prec: Precision):
        self.model, self.dev, self.layout, self.prec = model, dev, layout, prec
        self.tile = dev.cal.attention.query_tile * (dev.spec.engine.compute_units or 1)
        self._by_tokens: dict[int, float] = {}
        self._by_rows: dict[int, float] = {}
        self._decode_coefficients()

    def _ops(self, phase):
        return build_ops(self.model, phase, self.layout, self.prec, self.tile)

    def _sum(self, ops, keep) -> float:
        return float(sum(float(op_time(op, self.dev)) for op in ops if keep(op.name)))

    def _decode_coefficients(self) -> None:
        """Decode attention: FLOPs = a K and bytes = b K + c B for K cached keys over B rows."""
        one, two = (next(o for o in attention_ops(self.model, Decode(np.array([k])), self.layout, self.prec)
                         if o.name == "attention") for k in (1, 2))
        self._att = one
        self._a, self._b = float(one.flops), float(two.bytes - one.bytes)
        self._c = float(one.bytes) - self._b
        self._peak = self.dev.peak(one.dtype)

    def decode_attention(self, keys, rows):
        """Seconds of decode attention over `keys` cached keys (scalar or array) and `rows` rows."""
        cal, dev = self.dev.cal, self.dev
        flops, nbytes = self._a * keys, self._b * keys + self._c * rows
        compute = flops / (self._peak * evaluate(cal.attention.efficiency, flops))
        memory = nbytes / (dev.mem_bandwidth * evaluate(cal.memory.efficiency, nbytes))
        return self._att.count * (combine(compute, memory, cal.overlap_norm) + cal.attention.overhead)

    def _keys(self, contexts: np.ndarray):
        w = self.model.sliding_window
        return (contexts if w is None else np.minimum(contexts, w)).sum(axis=-1)

    def by_tokens(self, tokens: int) -> float:
        if tokens not in self._by_tokens:
            ops = self._ops(Decode.of(tokens, 1))
            self._by_tokens[tokens] = self._sum(ops, lambda n: n not in KEY_DEPENDENT | PER_SEQUENCE)
        return self._by_tokens[tokens]

    def by_rows(self, rows: int) -> float:
        """LM head and logits gather of `rows` sequences (plus MLA's absorbed kv_b in decode)."""
        if rows not in self._by_rows:
            ops = self._ops(Decode.of(rows, 1))
            self._by_rows[rows] = self._sum(ops, lambda n: n in PER_SEQUENCE)
        return self._by_rows[rows]

    def _decode_kv_b(self, rows: int) -> float:
        if self.model.mla is None or rows == 0:
            return 0.0
        key = -rows  # shares the rows cache, negative keys
        if key not in self._by_rows:
            self._by_rows[key] = self._sum(self._ops(Decode.of(rows, 1)), lambda n: n == "kv_b_proj")
        return self._by_rows[key]

    def _prefill_key_ops(self, phase: Prefill) -> float:
        t = self._sum(attention_ops(self.model, phase, self.layout, self.prec, self.tile), lambda n: n == "attention")
        if self.model.mla is not None:
            t += self._sum(self._ops(phase), lambda n: n == "kv_b_proj")
        return t

    def decode_stretch(self, contexts: np.ndarray, steps: int) -> np.ndarray:
        """Seconds of each of `steps` consecutive pure-decode steps of one batch whose contexts start
        at `contexts` and grow by one token a step (shape (steps,))."""
        b = len(contexts)
        grid = contexts[None, :] + np.arange(steps, dtype=np.int64)[:, None]  # (steps, B)
        base = self.by_tokens(b) + self.by_rows(b) + self._decode_kv_b(b)
        return base + self.decode_attention(self._keys(grid).astype(np.float64), b)

    def time(self, chunks: list[tuple[int, int]], decode_contexts: np.ndarray, logits_rows: int) -> float:
        """Seconds of one step: prefill `chunks` (new tokens, cached tokens before them), decodes at
        `decode_contexts` (cached tokens including the new one), `logits_rows` sequences sampled."""
        rows = len(decode_contexts)
        tokens = sum(c for c, _ in chunks) + rows
        if tokens == 0:
            return 0.0
        t = self.by_tokens(tokens) + self.by_rows(logits_rows)
        if chunks:
            c = np.array([x for x, _ in chunks], dtype=np.int64)
            p = np.array([y for _, y in chunks], dtype=np.int64)
            t += self._prefill_key_ops(Prefill(c, p))
        if rows:
            t += self._decode_kv_b(rows) + float(self.decode_attention(float(self._keys(decode_contexts)), rows))
        return t
