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
step coordinates (batch.py) and a decoding row's whole future is in the decode timeline
(timeline.py), so planning a stretch reads slices of it and touches no row."""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .batch import Row, StepLog
from .events import Backlog, EventLoop
from .flight import Flight
from .kv_blocks import BlockPool
from .prefix_cache import PrefixCache
from .step_model import StepModel
from .timeline import DecodeTimeline
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
                 on_done: Callable[[Request], None], on_step: Callable | None = None, backlog: Backlog | None = None):
        self.idx, self.loop, self.steps, self.blocks, self.opts = idx, loop, steps, pool, opts
        # shared by the run's replicas (an instance keeps under 30 attributes: CPython 3.11 reads those faster)
        self.backlog = Backlog(loop) if backlog is None else backlog
        self.max_batch, self.max_tokens = opts.max_batch, opts.max_batched_tokens
        self.on_done, self.on_step = on_done, on_step
        self.cache = PrefixCache(pool, opts.prefix_caching)
        self.swap_free, self.swap_s_per_block = opts.swap_blocks, opts.swap_s_per_block
        self.device_blocks = pool.total if opts.device_blocks is None else opts.device_blocks
        # (request, generated, blocks of KV held elsewhere, whether they are in host swap space)
        self.waiting: deque[tuple[Request, int, int, bool]] = deque()
        self.work = 0  # tokens to process, waiting and running, as of the last step boundary
        self.horizon = 64  # steps planned per stretch; adapts to how long stretches run before a cut
        self.rows: list[Row] = []  # running, in admission order
        self.prefilling: list[Row] = []  # those still prefilling, in admission order
        self.finishing: list[tuple[int, int, Row]] = []  # heap of (fin, seq, row) of decoding rows
        self.timeline = DecodeTimeline(pool.block_size, steps.model.sliding_window)
        self._seq = 0
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
        fly = self.fly  # Flight.tokens_done inlined: the router asks every replica on every arrival
        if fly is None:
            return self.work
        done = bisect_right(fly.end_list, self.loop.now)
        return self.work - int(fly.cum_tokens[done - 1]) if done else self.work

    def out_len(self, req: Request) -> int:
        return 1 if self.opts.role == "prefill" else req.output_len

    def submit(self, req: Request) -> None:
        req.replica = self.idx
        if not self.blocks.fits_ever(req.input_len + self.out_len(req)):
            self._reject(req)  # longer than this replica's whole KV cache: it could never finish
            return
        self._enqueue(req, 0, 0, False, front=False)
        self.backlog.arrive()
        self._wake()

    def receive(self, req: Request) -> None:
        """A prefilled request whose KV (prompt and first token) just arrived from a prefill replica."""
        req.decode_replica = self.idx
        if not self.blocks.fits_ever(req.input_len + req.output_len):
            self._reject(req)
            return
        self._enqueue(req, 1, int(self.blocks.blocks_for(req.input_len + 1)), False, front=False)
        self.backlog.arrive()
        self._wake()

    def _reject(self, req: Request) -> None:
        pool = self.blocks
        cap = (pool.total - pool.reserve) * pool.block_size
        where = "a replica" if self.opts.role == "both" else f"a {self.opts.role} replica"
        req.reject_reason = f"longer than {where}'s KV capacity ({cap:,} tokens of prompt + output)"
        self.backlog.reject(req.reject_reason)
        req.rejected = True
        self.on_done(req)

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
        k = fly.steps_ended(self.loop.now) + 1
        if k < fly.k:
            fly.truncate(k)
            self.horizon = max(16, 2 * k)
            self._schedule(fly.end_list[-1])

    def _enqueue(self, req: Request, generated: int, kv: int, host: bool, front: bool) -> None:
        (self.waiting.appendleft if front else self.waiting.append)((req, generated, kv, host))
        self.work += (0 if kv else req.input_len + generated) + self.out_len(req) - generated

    # -- KV blocks -------------------------------------------------------------------------
    def _release(self, row: Row, sn: int) -> None:
        self.blocks.free += row.blocks(sn, self.blocks.block_size)
        if row.shared:
            self.cache.release(row.prefix)

    def _leave(self, row: Row) -> None:
        """A finished row frees its blocks; one whose session has another turn first leaves the
        whole blocks of its context (prompt and reply, all but the last token) in the prefix cache."""
        req, bs = row.req, self.blocks.block_size
        kept = -1
        if req.keep_id >= 0 and self.opts.role != "decode":
            kept = self.cache.keep(req.keep_id, (req.input_len + row.out - 1) // bs, row.prefix if row.shared else -1)
        if kept < 0:
            self._release(row, row.fin)
        else:
            self.blocks.free += row.blocks(row.fin, bs) - kept

    def _take(self, blocks: int) -> None:
        self.cache.make_room(blocks)
        self.blocks.free -= blocks

    def _preempt_latest(self) -> None:
        row, sn = self.rows.pop(), self.sn
        row.alive = False
        generated, work = row.generated(sn), row.work(sn)
        req = row.save(sn, self.log)
        decoding = row.since <= sn
        swap = self.blocks.blocks_for(req.input_len + generated) if decoding else 0
        if not (0 < swap <= self.swap_free):
            swap = 0  # recompute: drop the KV, prefill prompt and generated tokens again later
        self.swap_free -= swap
        self._swap_s += swap * self.swap_s_per_block
        req.preemptions += 1
        req.swaps += bool(swap)
        self._release(row, sn)
        self.work -= work
        if decoding:
            self.timeline.remove(row.a, row.fin, row.c0, row.o0, row.since + 1, sn)
        else:
            self.prefilling.remove(row)
        self._enqueue(req, generated, swap, True, front=True)

    def _grow_decodes(self, s0: int) -> None:
        """Blocks for step s0's token of every decoding row; preempt the latest rows until they fit."""
        while self.rows:
            total = self.timeline.at(s0)[2]
            if total <= self.cache.available():
                self._take(total)
                return
            self._preempt_latest()

    def _decode(self, row: Row, since: int, first: int) -> None:
        """Row decodes (emits a token) in every step from `since` on; its decode steps (its token
        fed back) from `first`: `since` when it came with its KV, since + 1 after its prompt."""
        row.start_decoding(since, first)
        self.timeline.add(first, row.fin, row.c0, row.o0, since + 1, self.sn)
        heapq.heappush(self.finishing, (row.fin, row.seq, row))

    def _admit(self, budget: int, s0: int) -> None:
        """Admit waiting requests FCFS while the token budget, batch size and KV blocks allow."""
        while self.waiting and budget > 0 and len(self.rows) < self.max_batch:
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
            self._seq += 1
            row = Row(req, self._seq, target, generated, need, shared, out, shared)
            self.rows.append(row)
            if kv or shared >= target:  # with its KV (swapped in, handed over) or all cached: decodes now
                row.prefilled = target
                self._decode(row, s0, s0)
            else:
                self.prefilling.append(row)
            if host:  # a preempted request back
                self.swap_free += kv
                self._swap_s += kv * self.swap_s_per_block
            else:
                self.backlog.leave()
                req.admitted_s = self.loop.now
            req.prefix_hit_tokens += shared
            self.work += row.work(s0)
            if req.scheduled_s is None:
                req.scheduled_s = self.loop.now
            budget -= target - row.prefilled

    # -- steps -----------------------------------------------------------------------------
    def _plan(self, s0: int) -> list[tuple[Row, int]]:
        """[(row, prefill chunk)] of step s0; the rows in the timeline at s0 decode."""
        self._swap_s = 0.0
        self._grow_decodes(s0)
        budget = self.max_tokens - (len(self.rows) - len(self.prefilling))
        left = sum(r.target - r.prefilled for r in self.prefilling)
        if budget > 0 and left < budget:
            self._admit(budget - left, s0)
        chunks, before = [], 0
        for r in self.prefilling:
            rem = r.target - r.prefilled
            c = min(max(budget - before, 0), rem)
            before += rem
            if c > 0:
                chunks.append((r, c))
        return chunks

    def _step(self) -> None:
        s0 = self.sn
        self.timeline.reach(s0, s0 + self.horizon + 2)
        chunks = self._plan(s0)
        n_dec, keys, _ = self.timeline.at(s0)
        if n_dec == 0 and not chunks:
            self.busy = False
            return
        self.busy = True
        if not chunks and not self.prefilling:  # pure decode: a stretch
            if self.opts.stretch and self._start_flight(None, s0, 0):
                return
        done_prompt = [r for r, c in chunks if r.prefilled + c >= r.target]
        t, f, nbytes = self.steps.cost_keys([(c, r.prefilled) for r, c in chunks], n_dec, float(keys),
                                            n_dec + len(done_prompt))
        t = max(t, self._tier_fetch_s()) + self._swap_s
        prefill = sum(c for _, c in chunks)
        head = (t, f, nbytes, n_dec, prefill + n_dec + len(done_prompt))  # a column of Flight.steps
        for r, c in chunks:  # the head's effect on its rows: nothing reads them before it ends
            r.prefilled += c
        for r in done_prompt:
            self.prefilling.remove(r)
            self._decode(r, s0, s0 + 1)
            if r.prefix >= 0 and r.shared == 0:
                self._share_prefix(r)
        if self.opts.stretch and not self.waiting and not self.prefilling:
            # every row decodes after this step: run the decode stretch that follows in the same event
            if self._start_flight(head, s0 + 1, prefill):
                return
        self.fly = Flight(self.loop.now, s0, np.array(head, dtype=np.float64)[:, None], prefill, self._used())
        self._schedule(self.fly.end_list[-1])

    def _share_prefix(self, row: Row) -> None:
        """Row just prefilled its prompt: hand its prefix blocks to the prefix cache."""
        blocks = self.cache.insert(row.prefix, row.req.prefix_len)
        row.held -= blocks
        row.shared = blocks * self.blocks.block_size
        row.o0 -= row.shared

    def _tier_fetch_s(self) -> float:
        """Seconds to read this step's tier-resident KV over the link. Cold KV goes to the tier first
        (idle cached prefixes), then the rows admitted last; attention reads every running row's KV
        each step, so the part in the tier crosses the link every step, prefetched layer by layer
        under the step's compute (the step takes the longer of the two)."""
        over = self._used() - self.cache.idle_blocks - self.device_blocks
        if over <= 0:
            return 0.0
        held = [r.blocks(self.sn, self.blocks.block_size) for r in self.rows]
        cum = self._used() - self.cache.idle_blocks - sum(held)
        for r, h in zip(self.rows, held):
            cum += h
            if cum > self.device_blocks:
                r.req.kv_tier = self.opts.tier
        return over * self.opts.tier_s_per_block

    def _used(self) -> int:
        return self.blocks.total - self.blocks.free

    def _schedule(self, t: float) -> None:
        self._token += 1
        token = self._token
        self.loop.at(t, lambda: self._complete(token))

    def _start_flight(self, head: tuple | None, s: int, prefill: int) -> bool:
        """Plan up to `horizon` pure-decode steps from step s in one event, after the mixed step
        `head` when there is one: through requests finishing when nobody waits (else up to the
        first finish), as far as the free KV blocks reach."""
        tl, heap = self.timeline, self.finishing
        if self.opts.through_finishes and not self.waiting:
            k = tl.decoding(s, self.horizon)
        else:
            while heap and not heap[0][2].alive:
                heapq.heappop(heap)
            k = min(heap[0][0] - s, self.horizon) if heap else 0
        grown = s if head else s + 1  # step s0's blocks were taken before the plan
        need = tl.new_blocks(grown, s + k)
        while k > 1 and need > self.cache.available():
            k //= 2
            need = tl.new_blocks(grown, s + k)
        if k < (1 if head else 2) or need > self.cache.available():
            return False
        self._take(need)
        rows_keys = tl.span(s, k)
        h = head is not None
        steps = np.empty((5, k + h))
        self.steps.decode_into(steps[:3, h:], rows_keys)
        steps[3:, h:] = rows_keys[0]
        fetch = self._tier_fetch_s()
        if fetch:  # blocks for all k steps are taken: an upper bound
            np.maximum(steps[0, h:], fetch, out=steps[0, h:])
        if h:
            steps[:, 0] = head
        else:
            steps[0, 0] += self._swap_s
        self.fly = Flight(self.loop.now, s - h, steps, prefill, self._used(), need)
        self._schedule(self.fly.end_list[-1])
        return True

    def _complete(self, token: int) -> None:
        if token != self._token:
            return  # a stretch cut short: its original end is stale
        fly, self.fly = self.fly, None
        self.sn = end = fly.s0 + fly.k
        self.log.append(fly.ends, fly.dt, lambda: min((r.since for r in self.rows), default=end))
        self.work -= int(fly.cum_tokens[-1])
        if fly.need is not None:
            if fly.k == fly.planned:  # ran to its planned end: plan longer ones
                self.horizon = min(2 * self.horizon, STRETCH_MAX)
            else:  # cut: give back the blocks reserved for the steps that did not run
                self.blocks.free += self.timeline.new_blocks(end, fly.s0 + fly.planned)
        self._retire(end)
        if self.on_step is not None:
            self.on_step(self, fly)
        self._step()

    def _retire(self, sn: int) -> None:
        heap, done = self.finishing, []
        while heap and heap[0][0] <= sn:
            fin, _, row = heapq.heappop(heap)
            if row.alive:
                done.append(row)
        for row in done:
            row.alive = False
            req = row.save(row.fin, self.log)
            req.finish_s = req.last_token_s
            self._leave(row)
            self.on_done(req)
        for row in done:
            self.rows.remove(row)
