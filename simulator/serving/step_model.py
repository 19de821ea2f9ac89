"""Step time of a mixed batch (prefill chunks and decodes together) for the serving simulator.

The same operator model and roofline as the what-if, regrouped so a step costs a few dictionary
lookups: ops that depend only on the step's token count are cached by that count, the LM head by
the number of logits rows; attention (and MLA's kv_b projection, which depends on the keys) is
evaluated for the actual chunks and contexts. For one request alone this is the what-if's sum."""

from __future__ import annotations

import numpy as np

from ..attention_cost import attention_ops
from ..modelspec import ModelSpec
from ..ops import build_ops
from ..phases import Decode, Layout, Prefill
from ..precision import Precision
from ..roofline import Device, op_time

KEY_DEPENDENT = {"attention", "kv_b_proj"}
PER_SEQUENCE = {"lm_head", "logits_all_gather"}


class StepModel:
    def __init__(self, model: ModelSpec, dev: Device, layout: Layout, prec: Precision):
        self.model, self.dev, self.layout, self.prec = model, dev, layout, prec
        self.tile = dev.cal.attention.query_tile * (dev.spec.engine.compute_units or 1)
        self._by_tokens: dict[int, float] = {}
        self._by_rows: dict[int, float] = {}

    def _sum(self, ops, keep) -> float:
        return float(sum(np.sum(op_time(op, self.dev)) for op in ops if keep(op.name)))

    def by_tokens(self, tokens: int) -> float:
        if tokens not in self._by_tokens:
            ops = build_ops(self.model, Decode.of(tokens, 1), self.layout, self.prec, self.tile)
            self._by_tokens[tokens] = self._sum(ops, lambda n: n not in KEY_DEPENDENT | PER_SEQUENCE | {"rope_kv_write"})
        return self._by_tokens[tokens]

    def by_rows(self, rows: int) -> float:
        if rows not in self._by_rows:
            ops = build_ops(self.model, Decode.of(rows, 1), self.layout, self.prec, self.tile)
            self._by_rows[rows] = self._sum(ops, lambda n: n in PER_SEQUENCE)
        return self._by_rows[rows]

    def _key_ops(self, phase) -> float:
        t = self._sum(attention_ops(self.model, phase, self.layout, self.prec, self.tile), lambda n: True)
        if self.model.mla is not None:
            ops = build_ops(self.model, phase, self.layout, self.prec, self.tile)
            t += self._sum(ops, lambda n: n == "kv_b_proj")
        return t

    def decode_stretch(self, contexts: np.ndarray, steps: int) -> np.ndarray:
        """Seconds of each of `steps` consecutive pure-decode steps of one batch whose contexts start
        at `contexts` and grow by one token a step (shape (steps,))."""
        b = len(contexts)
        grid = contexts[None, :] + np.arange(steps, dtype=np.int64)[:, None]  # (steps, B)
        t = np.full(steps, self.by_tokens(b) + self.by_rows(b))
        phase = Decode(grid)
        for op in attention_ops(self.model, phase, self.layout, self.prec, self.tile):
            t = t + op_time(op, self.dev)
        if self.model.mla is not None:
            t = t + sum(op_time(op, self.dev) for op in build_ops(self.model, phase, self.layout, self.prec, self.tile)
                        if op.name == "kv_b_proj")
        return t

    def time(self, chunks: list[tuple[int, int]], decode_contexts: np.ndarray, logits_rows: int) -> float:
        """Seconds of one step: prefill `chunks` (new tokens, cached tokens before them), decodes at
        `decode_contexts` (cached tokens including the new one), `logits_rows` sequences sampled."""
        tokens = sum(c for c, _ in chunks) + len(decode_contexts)
        if tokens == 0:
            return 0.0
        t = self.by_tokens(tokens) + self.by_rows(logits_rows)
        if chunks:
            c = np.array([x for x, _ in chunks], dtype=np.int64)
            p = np.array([y for _, y in chunks], dtype=np.int64)
            t += self._key_ops(Prefill(c, p))
        if len(decode_contexts):
            t += self._key_ops(Decode(np.asarray(decode_contexts, dtype=np.int64)))
        return t
