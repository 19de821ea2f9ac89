"""What a replica has in flight: one engine step, or a stretch of pure-decode steps advanced in one
event, possibly after one mixed step (its head). A stretch is exact: step j's batch holds the rows
with more than j tokens left, each attending its context plus j keys, so the step times are those
of running the steps one by one."""

from __future__ import annotations

from bisect import bisect_right

import numpy as np


class Flight:
    """Its steps as one (5, k) array: seconds, FLOPs per device, device-memory bytes per device,
    decoding rows (those that had started decoding before it) and tokens processed (prompt
    chunks, decodes and first tokens) in each step."""

    def __init__(self, start: float, s0: int, steps: np.ndarray, prefill_tokens: int, kv_used: int,
                 need: int | None = None):
        self.start, self.s0, self.prefill_tokens, self.kv_used = start, s0, prefill_tokens, kv_used
        self.need = need  # stretches: KV blocks reserved for its decode steps (None: a single step)
        self.steps = steps
        cum = np.add.accumulate(steps[::4], axis=1)  # seconds and tokens (cumsum, less overhead)
        cum[0] += start
        self.ends = cum[0]  # end time of each step
        # as lists, for bisect: the router asks every flight on every arrival
        self.end_list, self.cum_tokens = cum.tolist()
        self.planned = self.k = steps.shape[1]

    @property
    def dt(self) -> np.ndarray:
        return self.steps[0]

    def truncate(self, k: int) -> None:
        self.steps, self.ends, self.k = self.steps[:, :k], self.ends[:k], k
        del self.end_list[k:], self.cum_tokens[k:]

    def steps_ended(self, now: float) -> int:
        return bisect_right(self.end_list, now)

    def tokens_done(self, now: float) -> int:
        """Tokens processed by the steps that have ended by `now`."""
        done = bisect_right(self.end_list, now)
        return int(self.cum_tokens[done - 1]) if done else 0

    def record(self, replica: int) -> tuple:
        """(replica, start_s, duration_s, n_steps, decode_tokens, prefill_tokens, flops, bytes, kv_blocks_used)."""
        _, flops, nbytes, rows, _ = np.add.reduce(self.steps, axis=1).tolist()
        return (replica, self.start, self.end_list[-1] - self.start, self.k, int(rows), self.prefill_tokens, flops,
                nbytes, self.kv_used)
