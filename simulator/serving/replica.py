"""One serving replica: iteration-level (continuous) batching with chunked prefill over a paged
KV cache (Orca, Yu et al. 2022; vLLM, Kwon et al. 2023; Sarathi-Serve, Agrawal et al. 2024).

Each step: every running request that finished its prompt decodes one token; the remaining token
budget goes to prompt chunks, first of requests already admitted, then of new ones (FCFS) while
KV blocks last. When a decode cannot get a block, the latest admitted request is preempted and
recomputed later (its prompt and generated tokens prefilled again)."""

from __future__ import annotations

from collections import deque
from typing import Callable

import numpy as np

from .events import EventLoop
from .kv_blocks import BlockManager
from .step_model import StepModel
from .traffic import Request

STRETCH_MAX = 4096  # most decode steps advanced in one event


class Seq:
    __slots__ = ("req", "target", "prefilled", "generated")

    def __init__(self, req: Request):
        self.req, self.target, self.prefilled, self.generated = req, req.input_len, 0, 0

    @property
    def in_prefill(self) -> bool:
        return self.prefilled < self.target

    @property
    def context(self) -> int:  # tokens cached once this step's token is in
        return self.req.input_len + self.generated


class Replica:
    def __init__(self, idx: int, loop: EventLoop, steps: StepModel, blocks: BlockManager, max_batch: int,
                 max_batched_tokens: int, on_done: Callable[[Request], None], on_step: Callable | None = None,
                 next_arrival: Callable[[], float] | None = None):
        self.idx, self.loop, self.steps, self.blocks = idx, loop, steps, blocks
        self.max_batch, self.max_tokens = max_batch, max_batched_tokens
        self.on_done, self.on_step = on_done, on_step
        self.next_arrival = next_arrival  # time of the next arrival anywhere; None disables stretches
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        self.busy = False
        self._stretch_ends: tuple[int, np.ndarray] | None = None  # (rows, step end times) in flight

    def outstanding_tokens(self) -> int:
        """Prompt and output tokens not yet processed (for the least-outstanding-tokens router),
        counting the steps of a decode stretch in flight that have ended by now."""
        left = sum(s.target - s.prefilled + s.req.output_len - s.generated for s in (*self.running, *self.waiting))
        if self._stretch_ends is not None:
            rows, ends = self._stretch_ends
            left -= rows * int(np.searchsorted(ends, self.loop.now, side="right"))
        return left

    def submit(self, req: Request) -> None:
        req.replica = self.idx
        if self.blocks.blocks_for(req.input_len + req.output_len) > self.blocks.total - self.blocks.reserve:
            req.rejected = True  # longer than this replica's whole KV cache: it could never finish
            self.on_done(req)
            return
        self.waiting.append(Seq(req))
        if not self.busy:
            self._step()

    def _preempt_latest(self) -> None:
        victim = self.running.pop()
        self.blocks.release(victim.req.rid)
        victim.target, victim.prefilled = victim.req.input_len + victim.generated, 0
        victim.req.preemptions += 1
        self.waiting.appendleft(victim)

    def _plan(self):
        decodes = [s for s in self.running if not s.in_prefill]
        for s in list(decodes):
            while s in self.running and not self.blocks.grow(s.req.rid, s.context):
                self._preempt_latest()
        decodes = [s for s in self.running if not s.in_prefill]
        budget = self.max_tokens - len(decodes)
        chunks = []
        for s in self.running:
            if s.in_prefill and budget > 0:
                c = min(s.target - s.prefilled, budget)
                chunks.append((s, c))
                budget -= c
        while self.waiting and budget > 0 and len(self.running) < self.max_batch:
            s = self.waiting[0]
            if not self.blocks.can_admit(s.target) or not self.blocks.grow(s.req.rid, s.target):
                break
            self.waiting.popleft()
            self.running.append(s)
            if s.req.scheduled_s is None:
                s.req.scheduled_s = self.loop.now
            c = min(s.target, budget)
            chunks.append((s, c))
            budget -= c
        return decodes, chunks

    def _step(self) -> None:
        decodes, chunks = self._plan()
        if not decodes and not chunks:
            self.busy = False
            return
        self.busy = True
        if not chunks and self.next_arrival is not None and self._stretch(decodes):
            return
        finishing = sum(1 for s, c in chunks if s.prefilled + c == s.target)
        ctx = np.fromiter((s.context for s in decodes), dtype=np.int64, count=len(decodes))
        dt = self.steps.time([(c, s.prefilled) for s, c in chunks], ctx, len(decodes) + finishing)
        if self.on_step is not None:
            self.on_step(self, self.loop.now, dt, len(decodes), sum(c for _, c in chunks), 1)
        self.loop.after(dt, lambda: self._complete(decodes, chunks))

    def _stretch(self, decodes: list[Seq]) -> bool:
        """Advance a pure-decode batch several steps in one event when nothing can change it in
        between: no request finishes before the last step, KV blocks suffice, and no arrival comes
        before the last step starts (an arrival joins at the next step boundary)."""
        k = min(min(s.req.output_len - s.generated for s in decodes), STRETCH_MAX)
        ctx = np.fromiter((s.context for s in decodes), dtype=np.int64, count=len(decodes))
        while k > 1 and self._extra_blocks(decodes, k) > self.blocks.free:
            k //= 2
        if k <= 1:
            return False
        dt = self.steps.decode_stretch(ctx, k)
        starts = self.loop.now + np.concatenate(([0.0], np.cumsum(dt)[:-1]))
        k = int(np.searchsorted(starts, self.next_arrival(), side="right")) or 1
        if k <= 1:
            return False
        dt = dt[:k]
        for s in decodes:
            self.blocks.grow(s.req.rid, s.context + k - 1)
        if self.on_step is not None:
            self.on_step(self, self.loop.now, float(dt.sum()), len(decodes), 0, k)
        start = self.loop.now
        self._stretch_ends = (len(decodes), start + np.cumsum(dt))
        self.loop.after(float(dt.sum()), lambda: self._complete_stretch(decodes, dt, start))
        return True

    def _extra_blocks(self, decodes: list[Seq], k: int) -> int:
        b = self.blocks
        return sum(max(0, b.blocks_for(s.context + k - 1) - b.held.get(s.req.rid, 0)) for s in decodes)

    def _complete_stretch(self, decodes: list[Seq], dt: np.ndarray, start: float) -> None:
        self._stretch_ends = None
        inner = float(dt[1:].max()) if len(dt) > 1 else 0.0
        for s in decodes:
            self._emit(s, len(dt), max(inner, start - s.req.last_token_s + float(dt[0])))
        self._step()

    def _emit(self, s: Seq, tokens: int = 1, itl_max: float = 0.0) -> None:
        """`tokens` tokens of `s` came out, the last one now; `itl_max` is the largest gap among
        them after the first (a decode stretch)."""
        now, r = self.loop.now, s.req
        s.generated += tokens
        if r.first_token_s is None:
            r.first_token_s = now
        else:
            first_gap = now - r.last_token_s if tokens == 1 else itl_max
            r.itl_max_s = max(r.itl_max_s, first_gap, itl_max)
        r.last_token_s = now
        if s.generated >= r.output_len:
            r.finish_s = now
            self.running.remove(s)
            self.blocks.release(r.rid)
            self.on_done(r)

    def _complete(self, decodes: list[Seq], chunks: list[tuple[Seq, int]]) -> None:
        for s, c in chunks:
            s.prefilled += c
        for s in decodes:
            self._emit(s)
        for s, _ in chunks:
            if not s.in_prefill and s in self.running:
                self._emit(s)
        self._step()
