"""One serving replica: iteration-level (continuous) batching with chunked prefill over a paged
KV cache (Orca, Yu et al. 2022; vLLM, Kwon et al. 2023; Sarathi-Serve, Agrawal et al. 2024).

Each step: every running request that finished its prompt decodes one token; the remaining token
budget goes to prompt chunks, first of requests already admitted, then of new ones (FCFS) while
KV blocks last. When a decode cannot get a block, the latest admitted request is preempted: its
KV is swapped to host memory over the host link (when `swap_blocks` has room) or dropped and
recomputed later. Shared prompt prefixes are cached (prefix_cache.py).

Stretches of pure decode run as one event (flight.py) - exactly the same result as step by step:
a stretch runs through requests finishing when nobody waits, and an arrival cuts it at the end of
the step in progress (it joins at the next step boundary, as in an engine)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .batch import RunningBatch
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
        # (request, generated, blocks of KV held elsewhere, whether they are in host swap space)
        self.waiting: deque[tuple[Request, int, int, bool]] = deque()
        self.work = 0  # tokens to process, waiting and running, as of the last step boundary
        self.horizon = 64  # steps planned per stretch; adapts to how long stretches run before a cut
        self.run = RunningBatch()
        self.busy = self._kicked = False
        self.fly: Flight | None = None
        self._token = 0  # completion events carry it; a cut stretch's old event finds it stale
        self._swap_s = 0.0  # swap transfer seconds of the step being planned
        self._head_tokens = 0

    # -- arrivals --------------------------------------------------------------------------
    def outstanding_tokens(self) -> int:
        """Prompt and output tokens not yet processed (for the least-outstanding-tokens router),
        counting the steps of a decode stretch in flight that have ended by now."""
        fly = self.fly
        if fly is None or fly.rem is None:
            return self.work
        return self.work - fly.tokens_done(self.loop.now, self._head_tokens)

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
        elif self.fly is not None and self.fly.rem is not None:
            self._cut()

    def _kick(self) -> None:
        self._kicked = False
        if not self.busy:
            self._step()

    def _cut(self) -> None:
        """End the stretch in flight at the end of the step in progress."""
        fly = self.fly
        k = int(np.searchsorted(fly.ends, self.loop.now, side="right")) + 1
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
        b, i = self.run, len(self.run) - 1
        req, generated = b.save(i), int(b.generated[i])
        tokens = int(b.input_len[i]) + generated
        swap = self.blocks.blocks_for(tokens) if b.decoding[i] else 0
        if not (0 < swap <= self.swap_free):
            swap = 0  # recompute: drop the KV, prefill prompt and generated tokens again later
        self.swap_free -= swap
        self._swap_s += swap * self.swap_s_per_block
        req.preemptions += 1
        req.swaps += bool(swap)
        self._release(i)
        self.work -= int(b.work()[i])
        b.keep(np.arange(len(b)) < i)
        self._enqueue(req, generated, swap, True, front=True)

    def _grow_decodes(self) -> np.ndarray:
        """Blocks for this step's token of every decoding row; preempt the latest rows until they fit."""
        while len(self.run):
            b = self.run
            need = np.where(b.decoding, np.maximum(self.blocks.blocks_for(b.own_tokens) - b.held, 0), 0)
            total = int(need.sum())
            if total <= self.cache.available():
                b.held += need
                self._take(total)
                return b.decoding
            self._preempt_latest()
        return np.zeros(0, dtype=bool)

    def _admit(self, budget: int) -> None:
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
            self.work -= (0 if kv else target) + self.out_len(req) - generated
            self._take(need)
            self.run.add(req, target, generated, need, shared, req.prefix_id, self.out_len(req))
            if kv:  # the KV is swapped back in or was handed over: no prefill left
                self.run.prefilled[-1] = target
            if host:
                self.swap_free += kv
                self._swap_s += kv * self.swap_s_per_block
            req.prefix_hit_tokens += shared
            self.work += int(self.run.work()[-1])
            if req.scheduled_s is None:
                req.scheduled_s = self.loop.now
            budget -= target - int(self.run.prefilled[-1])

    # -- steps -----------------------------------------------------------------------------
    def _plan(self) -> tuple[np.ndarray, np.ndarray]:
        """(decode mask, prefill chunk per row) of the next step."""
        self._swap_s = 0.0
        decoding = self._grow_decodes()
        budget = self.max_tokens - int(decoding.sum())
        rem = self.run.target - self.run.prefilled
        if budget > 0 and (rem.sum() < budget):
            self._admit(budget - int(rem.sum()))
        b = self.run
        # rows admitted with their KV (swapped in, handed over) decode in this step, as in vLLM
        decoding = np.concatenate([decoding, b.decoding[len(decoding):]])
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
        if not chunk.any() and n_dec == len(b):  # pure decode: a stretch
            if self.opts.stretch and self._start_flight(None, b.output_len - b.generated, b.context, 0):
                return
        rows = np.nonzero(chunk)[0]
        ends_prompt = (chunk > 0) & (b.prefilled + chunk >= b.target)
        t, f, nbytes = self.steps.cost(list(zip(chunk[rows].tolist(), b.prefilled[rows].tolist())),
                                       b.context[decoding], n_dec + int(ends_prompt.sum()))
        t = max(t, self._tier_fetch_s()) + self._swap_s
        head = (t, f, nbytes, n_dec, chunk, decoding)
        emit = (decoding | ends_prompt).astype(np.int64)
        self._head_tokens = int(chunk.sum()) + int(emit.sum())  # what the head step takes off `work`
        if self.opts.stretch and not self.waiting and (decoding | ends_prompt).all():
            # every row decodes after this step: run the decode stretch that follows in the same event
            if self._start_flight(head, b.output_len - b.generated - emit, b.context + emit, emit):
                return
        self.fly = Flight(self.loop.now, np.array([t]), np.array([f]), np.array([nbytes]), np.array([n_dec]), chunk,
                          decoding, self._used())
        self._schedule(self.loop.now + t)

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

    def _stretch_need(self, rem: np.ndarray, k: int, extra=0) -> np.ndarray:
        """Blocks each row needs beyond those it holds for k more decode steps (`extra` tokens it
        gains before them)."""
        b = self.run
        return np.maximum(self.blocks.blocks_for(b.own_tokens + extra + np.minimum(rem, k) - 1) - b.held, 0)

    def _start_flight(self, head: tuple | None, rem: np.ndarray, ctx: np.ndarray, extra) -> bool:
        """Plan up to `horizon` pure-decode steps in one event, after the mixed step `head` when there
        is one: through requests finishing when nobody waits (else up to the first finish), as far
        as the free KV blocks reach. `rem`, `ctx`: tokens left and context of each row after `head`."""
        through = self.opts.through_finishes and not self.waiting
        k = min(int(rem.max() if through else rem.min()), self.horizon)
        need = self._stretch_need(rem, k, extra)
        while k > 1 and int(need.sum()) > self.cache.available():
            k //= 2
            need = self._stretch_need(rem, k, extra)
        if k < (1 if head else 2) or int(need.sum()) > self.cache.available():
            return False
        self._take(int(need.sum()))
        rows, keys = stretch_profile(ctx, rem, k, self.steps.model.sliding_window)
        dt, flops, nbytes = self.steps.decode_steps(rows, keys)
        dt = np.maximum(dt, self._tier_fetch_s())  # blocks for all k steps are taken: an upper bound
        n = len(self.run)
        if head is None:
            dt[0] += self._swap_s
            chunk, decoding = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
        else:
            t, f, nb, n_dec, chunk, decoding = head
            dt, flops, nbytes, rows = (np.concatenate(([x], a)) for x, a in ((t, dt), (f, flops), (nb, nbytes),
                                                                                (n_dec, rows)))
        self.fly = Flight(self.loop.now, dt, flops, nbytes, rows, chunk, decoding, self._used(), rem, need,
                          head is not None)
        self._schedule(self.loop.now + float(dt.sum()))
        return True

    def _complete(self, token: int) -> None:
        if token != self._token:
            return  # a stretch cut short: its original end is stale
        fly, self.fly = self.fly, None
        finish = np.full(len(self.run), np.nan)  # finish time of each row that finished
        if fly.rem is None or fly.head:
            self._apply_head(fly, float(fly.ends[0]), finish)
        if fly.rem is not None:
            if fly.k == fly.planned:  # ran to its planned end: plan longer ones
                self.horizon = min(2 * self.horizon, STRETCH_MAX)
            self._apply_tail(fly, finish)
        self._retire(finish)
        if self.on_step is not None:
            self.on_step(self, fly)
        self._step()

    def _apply_head(self, fly: Flight, now: float, finish: np.ndarray) -> None:
        """The flight's single (possibly mixed) first step ended at `now`."""
        b = self.run
        b.prefilled += fly.chunk
        prefilled = (fly.chunk > 0) & (b.prefilled >= b.target)
        emit = fly.decoding | prefilled
        first = emit & np.isnan(b.first_s)
        upd = emit & ~first
        b.itl_max[upd] = np.maximum(b.itl_max[upd], now - b.last_s[upd])
        b.first_s[first] = now
        b.last_s[emit] = now
        b.generated[emit] += 1
        self.work -= int(fly.chunk.sum()) + int(emit.sum())
        for i in np.nonzero(prefilled & (b.prefix >= 0) & (b.shared == 0))[0].tolist():
            self._share_prefix(i)
        finish[emit & (b.generated >= b.output_len)] = now

    def _share_prefix(self, i: int) -> None:
        """Row i just prefilled its prompt: hand its prefix blocks to the prefix cache."""
        b = self.run
        blocks = self.cache.insert(int(b.prefix[i]), b.reqs[i].prefix_len)
        b.held[i] -= blocks
        b.shared[i] = blocks * self.blocks.block_size

    def _apply_tail(self, fly: Flight, finish: np.ndarray) -> None:
        """The flight's pure-decode steps (all of them, or those after its head) ended."""
        b, h = self.run, int(fly.head)
        dt, ends, rem = fly.dt[h:], fly.ends[h:], fly.rem
        k = len(dt)
        final = self._stretch_need(rem, k)
        self.blocks.free += int(fly.need.sum() - final.sum())  # give back what a cut stretch left unused
        b.held += final
        if k == 0:
            return
        steps = np.minimum(rem, k)  # steps each row took part in
        live = steps > 0
        inner = np.maximum.accumulate(np.concatenate(([0.0], dt[1:])))  # largest gap inside, by step
        gap = np.maximum(b.itl_max, np.maximum(ends[0] - b.last_s, inner[steps - 1]))
        b.itl_max[:] = np.where(live, gap, b.itl_max)
        b.last_s[:] = np.where(live, ends[steps - 1], b.last_s)
        b.generated += steps
        self.work -= int(steps.sum())
        done = live & (b.generated >= b.output_len)
        finish[done] = b.last_s[done]

    def _retire(self, finish: np.ndarray) -> None:
        done = ~np.isnan(finish)
        if not done.any():
            return
        b = self.run
        for i in sorted(np.nonzero(done)[0].tolist(), key=lambda i: (finish[i], i)):
            req = b.save(i)
            req.finish_s = float(finish[i])
            self._release(i)
            self.on_done(req)
        b.keep(~done)
