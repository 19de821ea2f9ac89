"""One serving replica: iteration-level (continuous) batching with chunked prefill over a paged
KV cache (Orca, Yu et al. 2022; vLLM, Kwon et al. 2023; Sarathi-Serve, Agrawal et al. 2024).

Each step: every running request that finished its prompt decodes one token; the remaining token
budget goes to prompt chunks, first of requests already admitted, then of new ones (FCFS) while
KV blocks last. When a decode cannot get a block, the latest admitted request is preempted and
recomputed later (its prompt and generated tokens prefilled again). Stretches of pure decode are
advanced in one event when nothing can change the batch in between (exactly the same result)."""

from __future__ import annotations

from collections import deque
from typing import Callable

import numpy as np

from .batch import RunningBatch
from .events import EventLoop
from .kv_blocks import BlockPool
from .step_model import StepModel
from .traffic import Request

STRETCH_MAX = 4096  # most decode steps advanced in one event


class Replica:
    def __init__(self, idx: int, loop: EventLoop, steps: StepModel, blocks: BlockPool, max_batch: int,
                 max_batched_tokens: int, on_done: Callable[[Request], None], on_step: Callable | None = None,
                 next_arrival: Callable[[], float] | None = None):
        self.idx, self.loop, self.steps, self.blocks = idx, loop, steps, blocks
        self.max_batch, self.max_tokens = max_batch, max_batched_tokens
        self.on_done, self.on_step = on_done, on_step
        self.next_arrival = next_arrival  # time of the next arrival anywhere; None disables stretches
        self.waiting: deque[tuple[Request, int]] = deque()  # (request, tokens generated before preemption)
        self.waiting_tokens = 0
        self.run = RunningBatch()
        self.busy = False
        self._stretch_ends: tuple[int, np.ndarray] | None = None  # (rows, step end times) in flight

    def outstanding_tokens(self) -> int:
        """Prompt and output tokens not yet processed (for the least-outstanding-tokens router),
        counting the steps of a decode stretch in flight that have ended by now."""
        b = self.run
        left = int((b.target - b.prefilled).sum() + (b.output_len - b.generated).sum()) + self.waiting_tokens
        if self._stretch_ends is not None:
            rows, ends = self._stretch_ends
            left -= rows * int(np.searchsorted(ends, self.loop.now, side="right"))
        return left

    def submit(self, req: Request) -> None:
        req.replica = self.idx
        if not self.blocks.fits_ever(req.input_len + req.output_len):
            req.rejected = True  # longer than this replica's whole KV cache: it could never finish
            self.on_done(req)
            return
        self._enqueue(req, 0, front=False)
        if not self.busy:
            self._step()

    def _enqueue(self, req: Request, generated: int, front: bool) -> None:
        (self.waiting.appendleft if front else self.waiting.append)((req, generated))
        self.waiting_tokens += req.input_len + req.output_len

    def _preempt_latest(self) -> None:
        b, i = self.run, len(self.run) - 1
        req, generated = b.save(i), int(b.generated[i])
        self.blocks.free += int(b.held[i])
        req.preemptions += 1
        b.keep(np.arange(len(b)) < i)
        self._enqueue(req, generated, front=True)

    def _grow_decodes(self) -> np.ndarray:
        """Blocks for this step's token of every decoding row; preempt the latest rows until they fit."""
        while len(self.run):
            b = self.run
            need = np.where(b.decoding, np.maximum(self.blocks.blocks_for(b.context) - b.held, 0), 0)
            total = int(need.sum())
            if total <= self.blocks.free:
                b.held += need
                self.blocks.free -= total
                return b.decoding
            self._preempt_latest()
        return np.zeros(0, dtype=bool)

    def _admit(self, budget: int) -> None:
        while self.waiting and budget > 0 and len(self.run) < self.max_batch:
            req, generated = self.waiting[0]
            target = req.input_len + generated
            if not self.blocks.can_admit(target):
                break
            self.waiting.popleft()
            self.waiting_tokens -= req.input_len + req.output_len
            held = int(self.blocks.blocks_for(target))
            self.blocks.free -= held
            self.run.add(req, target, generated, held)
            if req.scheduled_s is None:
                req.scheduled_s = self.loop.now
            budget -= target

    def _plan(self) -> tuple[np.ndarray, np.ndarray]:
        """(decode mask, prefill chunk per row) of the next step."""
        decoding = self._grow_decodes()
        budget = self.max_tokens - int(decoding.sum())
        rem = self.run.target - self.run.prefilled
        if budget > 0 and (rem.sum() < budget):
            self._admit(budget - int(rem.sum()))
        b = self.run
        decoding = np.concatenate([decoding, np.zeros(len(b) - len(decoding), dtype=bool)])
        rem = b.target - b.prefilled
        before = np.cumsum(rem) - rem
        chunk = np.clip(budget - before, 0, rem)
        return decoding, chunk

    def _step(self) -> None:
        decoding, chunk = self._plan()
        n_dec, b = int(decoding.sum()), self.run
        if n_dec == 0 and not chunk.any():
            self.busy = False
            return
        self.busy = True
        if not chunk.any() and self.next_arrival is not None and self._stretch(n_dec):
            return
        rows = np.nonzero(chunk)[0]
        finishing = int((b.prefilled[rows] + chunk[rows] == b.target[rows]).sum())
        dt = self.steps.time(list(zip(chunk[rows].tolist(), b.prefilled[rows].tolist())), b.context[decoding],
                             n_dec + finishing)
        if self.on_step is not None:
            self.on_step(self, self.loop.now, dt, n_dec, int(chunk.sum()), 1)
        self.loop.after(dt, lambda: self._complete(decoding, chunk, 1, np.array([dt])))

    def _stretch(self, n_dec: int) -> bool:
        """Advance the pure-decode batch k steps in one event when nothing can change it in between:
        no request finishes before the last step, KV blocks suffice, and no arrival comes before the
        last step starts (an arrival joins at the next step boundary)."""
        b = self.run
        k = min(int((b.output_len - b.generated).min()), STRETCH_MAX)
        while k > 1 and int(np.maximum(self.blocks.blocks_for(b.context + k - 1) - b.held, 0).sum()) > self.blocks.free:
            k //= 2
        if k <= 1:
            return False
        dt = self.steps.decode_stretch(b.context, k)
        starts = self.loop.now + np.concatenate(([0.0], np.cumsum(dt)[:-1]))
        k = int(np.searchsorted(starts, self.next_arrival(), side="right"))
        if k <= 1:
            return False
        dt = dt[:k]
        need = np.maximum(self.blocks.blocks_for(b.context + k - 1) - b.held, 0)
        b.held += need
        self.blocks.free -= int(need.sum())
        if self.on_step is not None:
            self.on_step(self, self.loop.now, float(dt.sum()), n_dec, 0, k)
        self._stretch_ends = (n_dec, self.loop.now + np.cumsum(dt))
        self.loop.after(float(dt.sum()), lambda: self._complete(np.ones(len(b), dtype=bool), np.zeros(len(b), dtype=np.int64), k, dt))
        return True

    def _complete(self, decoding: np.ndarray, chunk: np.ndarray, k: int, dt: np.ndarray) -> None:
        """A step (k = 1) or a decode stretch of k steps ended now."""
        self._stretch_ends = None
        b, now = self.run, self.loop.now
        b.prefilled += chunk
        emit = decoding | ((chunk > 0) & (b.prefilled >= b.target))
        first = emit & np.isnan(b.first_s)
        # largest gap between tokens: the gap to this stretch's first token, then the steps inside it
        inner = float(dt[1:].max()) if k > 1 else 0.0
        gap = now - float(dt.sum()) + float(dt[0]) - b.last_s
        upd = emit & ~first
        b.itl_max[upd] = np.maximum(b.itl_max[upd], np.maximum(gap[upd], inner))
        b.first_s[first] = now
        b.last_s[emit] = now
        b.generated[emit] += k
        done = emit & (b.generated >= b.output_len)
        if done.any():
            for i in np.nonzero(done)[0]:
                req = b.save(int(i))
                req.finish_s = now
                self.blocks.free += int(b.held[i])
                self.on_done(req)
            b.keep(~done)
        self._step()
