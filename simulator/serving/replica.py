"""One serving replica: iteration-level (continuous) batching with chunked prefill over a paged
KV cache (Orca, Yu et al. 2022; vLLM, Kwon et al. 2023; Sarathi-Serve, Agrawal et al. 2024).

Each step: every running request that finished its prompt decodes one token; the remaining token
budget goes to prompt chunks, first of requests already admitted, then of new ones (FCFS) while
KV blocks last. When a decode cannot get a block, the latest admitted request is preempted: its
KV is swapped to host memory over the host link (when `swap_blocks` has room) or dropped and
recomputed later. Shared prompt prefixes are cached (prefix_cache.py).

Stretches of pure decode run as one event (flight.py) - exactly the same result as step by step:
a stretch runs through requests finishing when nobody waits, and an arrival cuts it at the end of
the step in progress (it joins at the next step boundary, as in an engine). Rows live in absolute
step coordinates (batch.py), so a stretch touches no row until one joins or leaves."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .batch import PREFILL, RunningBatch, StepLog
from .events import EventLoop
from .flight import Flight, stretch_profile
from .kv_blocks import BlockPool
from .prefix_cache import PrefixCache
from .step_model import StepModel
from .traffic import Request

STRETCH_MAX = 4096  # most decode steps advanced in one event


@dataclass
class ReplicaOptions:
    max_batch: int = 256
    max_batched_tokens: int = 8192
    role: str = "both"  # both | prefill (prompt only, then hand over) | decode (receives KV)
    stretch: bool = True  # advance pure-decode stretches in one event
    through_finishes: bool = True  # stretches run past finishing requests (off for closed loops)
    prefix_caching: bool = True
    swap_blocks: int = 0  # host swap space for preempted KV, in blocks (0: recompute)
    swap_s_per_block: float = 0.0
    device_blocks: int | None = None  # blocks in device memory; the pool beyond them is an offload tier
    tier: str = ""  # name of the offload tier (host, nvme)
    tier_s_per_block: float = 0.0  # seconds to read one block of tier-resident KV each step


class Replica:
    def __init__(self, idx: int, loop: EventLoop, steps: StepModel, pool: BlockPool, opts: ReplicaOptions,
                 on_done: Callable[[Request], None], on_step: Callable | None = None):
        self.idx, self.loop, self.steps, self.blocks, self.opts = idx, loop, steps, pool, opts
        self.max_batch, self.max_tokens = opts.max_batch, opts.max_batched_tokens
        self.on_done, self.on_step = on_done, on_step
        self.cache = PrefixCache(pool, opts.prefix_caching)
        self.swap_free, self.swap_s_per_block = opts.swap_blocks, opts.swap_s_per_block
        self.device_blocks = pool.total if opts.device_blocks is None else opts.device_blocks
        self.window = steps.model.sliding_window
        # (request, generated, blocks of KV held elsewhere, whether they are in host swap space)
        self.waiting: deque[tuple[Request, int, int, bool]] = deque()
        self.work = 0  # tokens to process, waiting and running, as of the last step boundary
        self.horizon = 64  # steps planned per stretch; adapts to how long stretches run before a cut
        self.run = RunningBatch()
        self.log = StepLog()
        self.sn = 0  # steps completed
        self.busy = self._kicked = False
        self.fly: Flight | None = None
        self._token = 0  # completion events carry it; a cut stretch's old event finds it stale
        self._swap_s = 0.0  # swap transfer seconds of the step being planned

    # -- arrivals --------------------------------------------------------------------------
    def outstanding_tokens(self) -> int:
        """Prompt and output tokens not yet processed (for the least-outstanding-tokens router),
        counting the steps in flight that have ended by now."""
        fly = self.fly
        return self.work if fly is None else self.work - fly.tokens_done(self.loop.now)

    def out_len(self, req: Request) -> int:
        return 1 if self.opts.role == "prefill" else req.output_len

    def submit(self, req: Request) -> None:
        req.replica = self.idx
        if not self.blocks.fits_ever(req.input_len + self.out_len(req)):
            req.rejected = True  # longer than this replica's whole KV cache: it could never finish
            self.on_done(req)
            return
        self._enqueue(req, 0, 0, False, front=False)
        self._wake()

    def receive(self, req: Request) -> None:
        """A prefilled request whose KV (prompt and first token) just arrived from a prefill replica."""
        req.decode_replica = self.idx
        if not self.blocks.fits_ever(req.input_len + req.output_len):
            req.rejected = True
            self.on_done(req)
            return
        self._enqueue(req, 1, int(self.blocks.blocks_for(req.input_len + 1)), False, front=False)
        self._wake()

    def _wake(self) -> None:
        if not self.busy and not self._kicked:  # start once every arrival of this instant is queued
            self._kicked = True
            self.loop.at(self.loop.now, self._kick, priority=2)
        elif self.fly is not None and self.fly.need is not None:
            self._cut()

    def _kick(self) -> None:
        self._kicked = False
        if not self.busy:
            self._step()

    def _cut(self) -> None:
        """End the stretch in flight at the end of the step in progress."""
        fly = self.fly
        k = int(fly.ends.searchsorted(self.loop.now, side="right")) + 1
        if k < fly.k:
            fly.truncate(k)
            self.horizon = max(16, 2 * k)
            self._schedule(float(fly.ends[-1]))

    def _enqueue(self, req: Request, generated: int, kv: int, host: bool, front: bool) -> None:
        (self.waiting.appendleft if front else self.waiting.append)((req, generated, kv, host))
        self.work += (0 if kv else req.input_len + generated) + self.out_len(req) - generated

    # -- KV blocks -------------------------------------------------------------------------
    def _release(self, i: int) -> None:
        b = self.run
        self.blocks.free += int(b.held[i])
        if b.shared[i]:
            self.cache.release(int(b.prefix[i]))

    def _take(self, blocks: int) -> None:
        self.cache.make_room(blocks)
        self.blocks.free -= blocks

    def _preempt_latest(self) -> None:
        b, i, sn = self.run, len(self.run) - 1, self.sn
        generated, work = b.generated(i, sn), b.work(i, sn)
        req = b.save(i, sn, self.log)
        swap = self.blocks.blocks_for(int(b.input_len[i]) + generated) if b.since[i] <= sn else 0
        if not (0 < swap <= self.swap_free):
            swap = 0  # recompute: drop the KV, prefill prompt and generated tokens again later
        self.swap_free -= swap
        self._swap_s += swap * self.swap_s_per_block
        req.preemptions += 1
        req.swaps += bool(swap)
        self._release(i)
        self.work -= work
        b.keep(np.arange(len(b)) < i)
        self._enqueue(req, generated, swap, True, front=True)

    def _grow_decodes(self, s0: int) -> None:
        """Blocks for step s0's token of every decoding row; preempt the latest rows until they fit."""
        while len(self.run):
            b = self.run
            need = np.maximum(self.blocks.blocks_for(b.own_tokens(s0)) - b.held, 0)
            total = int(need.sum())
            if total <= self.cache.available():
                b.held += need
                self._take(total)
                return
            self._preempt_latest()

    def _admit(self, budget: int, s0: int) -> None:
        while self.waiting and budget > 0 and len(self.run) < self.max_batch:
            req, generated, kv, host = self.waiting[0]
            target = req.input_len + generated
            shared = 0 if kv else self.cache.acquire(req.prefix_id, req.prefix_len)
            need = kv or int(self.blocks.blocks_for(target - shared))
            if need > self.cache.available() - self.blocks.reserve:
                if shared:
                    self.cache.release(req.prefix_id)
                break
            self.waiting.popleft()
            out = self.out_len(req)
            self.work -= (0 if kv else target) + out - generated
            self._take(need)
            # with its KV (swapped in, handed over) or its whole prompt cached, it decodes in this step
            direct = bool(kv) or shared >= target
            self.run.add(req, target, generated, need, shared, req.prefix_id, out, s0 if direct else None)
            if host:
                self.swap_free += kv
                self._swap_s += kv * self.swap_s_per_block
            req.prefix_hit_tokens += shared
            self.work += self.run.work(len(self.run) - 1, s0)
            if req.scheduled_s is None:
                req.scheduled_s = self.loop.now
            budget -= 0 if direct else target - shared

    # -- steps -----------------------------------------------------------------------------
    def _plan(self, s0: int) -> tuple[int, list[tuple[int, int]]]:
        """(rows decoding, [(row, prefill chunk)]) of step s0."""
        self._swap_s = 0.0
        self._grow_decodes(s0)
        b = self.run
        budget = self.max_tokens - int((b.since <= s0).sum())
        left = int((b.target - b.prefilled).sum())
        if budget > 0 and left < budget:
            self._admit(budget - left, s0)
            b = self.run
        chunks, before = [], 0
        prefilling = np.flatnonzero(b.since == PREFILL).tolist()
        for i in prefilling:
            rem = int(b.target[i] - b.prefilled[i])
            c = min(max(budget - before, 0), rem)
            before += rem
            if c > 0:
                chunks.append((i, c))
        return len(b) - len(prefilling), chunks

    def _step(self) -> None:
        s0 = self.sn
        n_dec, chunks = self._plan(s0)
        b = self.run
        if n_dec == 0 and not chunks:
            self.busy = False
            return
        self.busy = True
        if not chunks and n_dec == len(b):  # pure decode: a stretch
            if self.opts.stretch and self._start_flight(None, s0, 0):
                return
        done_prompt = [i for i, c in chunks if b.prefilled[i] + c >= b.target[i]]
        t, f, nbytes = self.steps.cost_keys([(c, int(b.prefilled[i])) for i, c in chunks], n_dec,
                                            self._keys(s0), n_dec + len(done_prompt))
        t = max(t, self._tier_fetch_s()) + self._swap_s
        prefill = sum(c for _, c in chunks)
        head = (t, f, nbytes, n_dec, prefill + n_dec + len(done_prompt))  # a column of Flight.steps
        for i, c in chunks:  # the head's effect on its rows: nothing reads them before it ends
            b.prefilled[i] += c
        for i in done_prompt:
            b.start_decoding(i, s0)
            if b.prefix[i] >= 0 and b.shared[i] == 0:
                self._share_prefix(i)
        if self.opts.stretch and not self.waiting and n_dec + len(done_prompt) == len(b):
            # every row decodes after this step: run the decode stretch that follows in the same event
            if self._start_flight(head, s0 + 1, prefill):
                return
        self.fly = Flight(self.loop.now, s0, np.array(head, dtype=np.float64)[:, None], prefill, self._used())
        self._schedule(float(self.fly.ends[-1]))

    def _keys(self, s: int) -> float:
        """Keys the decoding rows attend in step s (after any sliding window)."""
        b = self.run
        c0 = b.c0[b.since <= s]
        if self.window is None:
            return float(int(c0.sum()) + len(c0) * s)
        return float(np.minimum(c0 + s, self.window).sum())

    def _share_prefix(self, i: int) -> None:
        """Row i just prefilled its prompt: hand its prefix blocks to the prefix cache."""
        b = self.run
        blocks = self.cache.insert(int(b.prefix[i]), b.reqs[i].prefix_len)
        b.held[i] -= blocks
        b.shared[i] = blocks * self.blocks.block_size

    def _tier_fetch_s(self) -> float:
        """Seconds to read this step's tier-resident KV over the link. Cold KV goes to the tier first
        (idle cached prefixes), then the rows admitted last; attention reads every running row's KV
        each step, so the part in the tier crosses the link every step, prefetched layer by layer
        under the step's compute (the step takes the longer of the two)."""
        over = self._used() - self.cache.idle_blocks - self.device_blocks
        if over <= 0:
            return 0.0
        b = self.run
        cum = self._used() - self.cache.idle_blocks - int(b.held.sum()) + np.cumsum(b.held)
        for i in np.nonzero(cum > self.device_blocks)[0].tolist():
            b.reqs[i].kv_tier = self.opts.tier
        return over * self.opts.tier_s_per_block

    def _used(self) -> int:
        return self.blocks.total - self.blocks.free

    def _schedule(self, t: float) -> None:
        self._token += 1
        token = self._token
        self.loop.at(t, lambda: self._complete(token))

    def _blocks_through(self, end: int) -> np.ndarray:
        """Blocks each decoding row needs for its tokens of the steps before `end`."""
        b = self.run
        return self.blocks.blocks_for(b.c0 - b.shared + np.minimum(b.fin, end) - 1)

    def _start_flight(self, head: tuple | None, s: int, prefill: int) -> bool:
        """Plan up to `horizon` pure-decode steps from step s in one event, after the mixed step
        `head` when there is one: through requests finishing when nobody waits (else up to the
        first finish), as far as the free KV blocks reach."""
        b = self.run
        rem = b.fin - s
        through = self.opts.through_finishes and not self.waiting
        k = min(int(rem.max() if through else rem.min()), self.horizon)
        need = np.maximum(self._blocks_through(s + k) - b.held, 0)
        while k > 1 and int(need.sum()) > self.cache.available():
            k //= 2
            need = np.maximum(self._blocks_through(s + k) - b.held, 0)
        if k < (1 if head else 2) or int(need.sum()) > self.cache.available():
            return False
        self._take(int(need.sum()))
        b.held += need
        rows, keys = stretch_profile(b.c0 + s, rem, k, self.window)
        h = head is not None
        steps = np.empty((5, k + h))
        self.steps.decode_into(steps[:3, h:], rows, keys)
        steps[3, h:] = rows
        steps[4, h:] = rows
        fetch = self._tier_fetch_s()
        if fetch:  # blocks for all k steps are taken: an upper bound
            np.maximum(steps[0, h:], fetch, out=steps[0, h:])
        if h:
            steps[:, 0] = head
        else:
            steps[0, 0] += self._swap_s
        self.fly = Flight(self.loop.now, s - h, steps, prefill, self._used(), need)
        self._schedule(float(self.fly.ends[-1]))
        return True

    def _complete(self, token: int) -> None:
        if token != self._token:
            return  # a stretch cut short: its original end is stale
        fly, self.fly = self.fly, None
        self.sn = end = fly.s0 + fly.k
        self.log.append(fly.ends, fly.dt, lambda: int(self.run.since.min()) if len(self.run) else end)
        self.work -= int(fly.cum_tokens[-1])
        if fly.need is not None:
            if fly.k == fly.planned:  # ran to its planned end: plan longer ones
                self.horizon = min(2 * self.horizon, STRETCH_MAX)
            else:  # cut: give back the blocks reserved for the steps that did not run
                b = self.run
                before = b.held - fly.need
                final = np.maximum(self._blocks_through(end) - before, 0)
                self.blocks.free += int(fly.need.sum() - final.sum())
                b.held[:] = before + final
        self._retire(end)
        if self.on_step is not None:
            self.on_step(self, fly)
        self._step()

    def _retire(self, sn: int) -> None:
        b = self.run
        done = b.fin <= sn
        if not done.any():
            return
        fin = b.fin
        for i in sorted(np.flatnonzero(done).tolist(), key=lambda i: (int(fin[i]), i)):
            req = b.save(i, int(fin[i]), self.log)
            req.finish_s = req.last_token_s
            self._release(i)
            self.on_done(req)
        b.keep(~done)
