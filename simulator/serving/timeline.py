"""A replica's decode timeline: for each future step index t, the rows decoding in it (rows[t]),
the keys they attend (keys[t]) and the new KV blocks they need (blocks[t]).

A decoding row's future is fixed when it starts decoding (batch.py): it decodes in steps
a .. fin-1, attending c0 + t keys (min(c0 + t, window) with a sliding window), and needs a new
block whenever its own tokens o0 + t cross a block boundary. So a row is added once and removed
only when preempted; a stretch of k decode steps from step s reads rows[s:s+k] and
keys[s:s+k] as they are, with no per-row work. Arrays are indexed from `base`, moved up as steps
complete, so memory follows the longest remaining generation, not the run."""

from __future__ import annotations

import numpy as np


class DecodeTimeline:
    def __init__(self, block_size: int, window: int | None, size: int = 4096):
        self.bs, self.window = block_size, window
        self.base = 0
        self._alloc(size)

    def _alloc(self, size: int) -> None:
        self.rows_keys = np.zeros((2, size), dtype=np.int64)  # one array: a stretch reads both at once
        self.rows, self.keys = self.rows_keys
        self.blocks = np.zeros(size, dtype=np.int64)
        self._t = np.arange(size, dtype=np.int64)

    def reach(self, now: int, end: int) -> None:
        """Make room for steps now .. end-1 (forgetting steps before `now`)."""
        if end - self.base <= len(self.rows):
            return
        old = (self.rows, self.keys, self.blocks)
        lo, hi = now - self.base, len(self.rows)
        size = len(self.rows)
        while end - now > size // 2:
            size *= 2
        self._alloc(size)
        for new, o in zip((self.rows, self.keys, self.blocks), old):
            new[: hi - lo] = o[lo:hi]
        self.base = now

    def _span(self, a: int, g: int, fin: int, c0: int, o0: int, sign: int) -> None:
        """Rows and keys of steps a .. fin-1; new blocks from step g on."""
        i, j = a - self.base, fin - self.base
        if j > i:
            self.rows[i:j] += sign
            ctx = self._t[i:j] + (c0 + self.base)
            if self.window is not None:
                np.minimum(ctx, self.window, out=ctx)
            if sign > 0:
                self.keys[i:j] += ctx
            else:
                self.keys[i:j] -= ctx
        # a new block in step t when the own tokens before it, o0 + t - 1, fill whole blocks
        first = g + (-(o0 + g - 1)) % self.bs
        if first < fin:
            self.blocks[first - self.base: j: self.bs] += sign

    def add(self, a: int, fin: int, c0: int, o0: int, grow_from: int, now: int) -> None:
        """A row decoding in steps a .. fin-1 (context c0 + t, own tokens o0 + t in step t), holding
        the blocks of the tokens before step `grow_from`."""
        self.reach(now, fin)
        self._span(a, grow_from, fin, c0, o0, 1)

    def remove(self, a: int, fin: int, c0: int, o0: int, grow_from: int, now: int) -> None:
        """Take a row out from step `now` on (a preempted row)."""
        self._span(max(a, now), max(grow_from, now), fin, c0, o0, -1)

    def decoding(self, s: int, horizon: int) -> int:
        """Steps from s (at most `horizon`) that have decoding rows, up to the first without any."""
        seg = self.rows[s - self.base: s - self.base + horizon]
        return int(np.count_nonzero(seg))

    def new_blocks(self, a: int, b: int) -> int:
        return int(np.add.reduce(self.blocks[a - self.base: b - self.base]))

    def at(self, s: int) -> tuple[int, int, int]:
        """(rows, keys, new blocks) of step s."""
        i = s - self.base
        return int(self.rows[i]), int(self.keys[i]), int(self.blocks[i])

    def span(self, s: int, k: int) -> np.ndarray:
        """(2, k) view: rows and keys of steps s .. s+k-1."""
        i = s - self.base
        return self.rows_keys[:, i: i + k]
