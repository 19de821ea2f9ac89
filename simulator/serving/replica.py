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
                 max_batched_tokens: int, on_done: Callable[[Request], None], on_step: Callable | None = None):
        self.idx, self.loop, self.steps, self.blocks = idx, loop, steps, blocks
        self.max_batch, self.max_tokens = max_batch, max_batched_tokens
        self.on_done, self.on_step = on_done, on_step
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        self.busy = False

    def outstanding_tokens(self) -> int:
        """Prompt and output tokens not yet processed (for the least-outstanding-tokens router)."""
        return sum(s.target - s.prefilled + s.req.output_len - s.generated for s in (*self.running, *self.waiting))

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
        finishing = sum(1 for s, c in chunks if s.prefilled + c == s.target)
        ctx = np.fromiter((s.context for s in decodes), dtype=np.int64, count=len(decodes))
        dt = self.steps.time([(c, s.prefilled) for s, c in chunks], ctx, len(decodes) + finishing)
        if self.on_step is not None:
            self.on_step(self, self.loop.now, dt, len(decodes), sum(c for _, c in chunks))
        self.loop.after(dt, lambda: self._complete(decodes, chunks))

    def _emit(self, s: Seq) -> None:
        now = self.loop.now
        s.generated += 1
        s.req.token_times.append(now)
        if s.req.first_token_s is None:
            s.req.first_token_s = now
        if s.generated >= s.req.output_len:
            s.req.finish_s = now
            self.running.remove(s)
            self.blocks.release(s.req.rid)
            self.on_done(s.req)

    def _complete(self, decodes: list[Seq], chunks: list[tuple[Seq, int]]) -> None:
        for s, c in chunks:
            s.prefilled += c
        for s in decodes:
            self._emit(s)
        for s, _ in chunks:
            if not s.in_prefill and s in self.running:
                self._emit(s)
        self._step()
