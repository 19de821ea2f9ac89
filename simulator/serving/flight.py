"""What a replica has in flight: one engine step, or a stretch of pure-decode steps advanced in one
event. A stretch is exact: step j's batch holds the rows with more than j tokens left, each
attending its context plus j keys, so the step times are those of running the steps one by one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Flight:
    start: float
    dt: np.ndarray  # (k,) seconds of each step
    flops: np.ndarray  # (k,) FLOPs per device
    nbytes: np.ndarray  # (k,) device-memory bytes per device
    rows: np.ndarray  # (k,) decoding rows in each step
    chunk: np.ndarray  # prefill tokens per batch row (single steps; zeros in stretches)
    decoding: np.ndarray  # batch rows decoding (single steps)
    kv_used: int  # blocks in use when it started
    rem: np.ndarray | None = None  # stretches: tokens each row had left to generate
    need: np.ndarray | None = None  # stretches: blocks reserved per row for all k steps
    head: bool = False  # stretches: step 0 is a mixed step (chunk, decoding), the decode stretch follows

    def __post_init__(self):
        self.ends = self.start + np.cumsum(self.dt)  # end time of each step
        self.planned = len(self.dt)
        self._cum_rows = None

    @property
    def k(self) -> int:
        return len(self.dt)

    def truncate(self, k: int) -> None:
        self.dt, self.flops, self.nbytes, self.rows = self.dt[:k], self.flops[:k], self.nbytes[:k], self.rows[:k]
        self.ends = self.ends[:k]
        self._cum_rows = None

    def tokens_done(self, now: float, head_tokens: int = 0) -> int:
        """Tokens processed by the steps that have ended by `now`: decodes, and in a mixed head step
        its prompt tokens and first tokens too (`head_tokens` in place of its decode rows)."""
        done = int(np.searchsorted(self.ends, now, side="right"))
        if done == 0:
            return 0
        if self._cum_rows is None:
            self._cum_rows = np.cumsum(self.rows)
        return int(self._cum_rows[done - 1]) + (head_tokens - int(self.rows[0]) if self.head else 0)

    def record(self, replica: int) -> tuple:
        """(replica, start_s, duration_s, n_steps, decode_tokens, prefill_tokens, flops, bytes, kv_blocks_used)."""
        return (replica, self.start, float(self.dt.sum()), self.k, int(self.rows.sum()), int(self.chunk.sum()),
                float(self.flops.sum()), float(self.nbytes.sum()), self.kv_used)


def stretch_profile(ctx: np.ndarray, rem: np.ndarray, k: int, window: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, keys) of k pure-decode steps: rows[j] = rows with rem > j; keys[j] = their attended
    keys, min(ctx + j, window) summed (ctx counts the cached tokens with step 0's token in)."""
    j = np.arange(k, dtype=np.int64)
    if window is None:
        order = np.argsort(rem, kind="stable")
        first = np.searchsorted(rem[order], j, side="right")  # rows from `first` on have rem > j
        csum = np.concatenate(([0], np.cumsum(ctx[order])))
        rows = len(rem) - first
        return rows, (csum[-1] - csum[first] + j * rows).astype(np.float64)
    live = rem[None, :] > j[:, None]
    keys = (np.minimum(ctx[None, :] + j[:, None], window) * live).sum(axis=1)
    return live.sum(axis=1), keys.astype(np.float64)
