"""A running request on a replica (Row), kept in absolute step coordinates so that decode steps
change no row, and the replica's step log.

A replica counts its steps (step index t = steps completed before it). A row decodes, emitting one
token per step, from step `since` on; before that (prompt still prefilling) since = PREFILL. For a
decoding row, with `gen` its generated tokens before step `since`:
- generated before step t:            gen + t - since
- context attended in step t:         c0 + t, c0 = input_len + gen - since
- tokens in its own blocks in step t: o0 + t, o0 = c0 - shared
- it finishes once `fin` = since + output_len - gen steps have run.
These are fixed when it starts decoding, so its whole future goes into the replica's decode
timeline (timeline.py) at once. Token times come from the step log when a row leaves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .traffic import Request

PREFILL = 2**40  # `since` and `fin` of rows still prefilling: later than any step


@dataclass(slots=True, eq=False)
class Row:
    req: Request
    seq: int  # admission order on its replica
    target: int  # tokens to prefill (prompt, or prompt and generated tokens to recompute)
    gen: int  # generated tokens (before step `since` once decoding)
    held: int  # KV blocks held before decoding growth (after prefix sharing)
    shared: int  # prompt tokens in a cached prefix's blocks
    out: int  # tokens to generate here (1 on a prefill-only replica)
    prefilled: int = 0
    since: int = PREFILL
    a: int = PREFILL  # first step it is a decode row in (its token fed back)
    fin: int = PREFILL
    c0: int = 0
    o0: int = 0
    alive: bool = True

    @property
    def prefix(self) -> int:
        return self.req.prefix_id

    def start_decoding(self, step: int, first: int) -> None:
        """It decodes (emits a token) in every step from `step` on; it is a decode row (its last
        token fed back) from step `first`: `step` when it came with its KV, step + 1 after its prompt."""
        self.since, self.a = step, first
        self.fin = step + self.out - self.gen
        self.c0 = self.req.input_len + self.gen - step
        self.o0 = self.c0 - self.shared

    def generated(self, sn: int) -> int:
        return self.gen + max(sn - self.since, 0)

    def blocks(self, sn: int, bs: int) -> int:
        """KV blocks it holds after `sn` steps."""
        if sn <= self.since:
            return self.held
        return max(self.held, -(-(self.o0 + min(sn, self.fin) - 1) // bs))

    def work(self, sn: int) -> int:
        """Tokens it has left to process: prompt (or recompute) tokens and output tokens."""
        return self.target - self.prefilled + self.out - self.generated(sn)

    def save(self, sn: int, log: "StepLog") -> Request:
        """Write its progress after `sn` steps back to its Request (on finish or preemption); token
        times as of its joining are still on the Request."""
        r, since = self.req, self.since
        if sn > since:  # it emitted in steps since .. sn-1, back to back
            first, last, itl = r.first_token_s, r.last_token_s, r.itl_max_s
            if last is not None:
                itl = max(itl, log.end(since) - last)
            r.itl_max_s = max(itl, log.max_dt(since + 1, sn))
            r.first_token_s = log.end(since) if first is None else first
            r.last_token_s = log.end(sn - 1)
        return r


class StepLog:
    """End times and durations of a replica's steps by step index, kept back to the oldest step a
    running row still needs (its decode start), so memory follows the active rows."""

    def __init__(self):
        self.base = 0  # step index of _ends[0]
        self._ends = np.zeros(1024)
        self._dt = np.zeros(1024)
        self.n = 0  # steps logged (step index of the next one)

    def append(self, ends: np.ndarray, dt: np.ndarray, oldest) -> None:
        """Log the steps from index n on; `oldest()` gives the earliest step index still needed."""
        k, at = len(ends), self.n - self.base
        if at + k > len(self._ends):
            lo = min(oldest(), self.n) - self.base
            keep = at - lo
            size = max(len(self._ends), 2 * (keep + k))
            for name in ("_ends", "_dt"):
                grown = np.zeros(size)
                grown[:keep] = getattr(self, name)[lo:at]
                setattr(self, name, grown)
            self.base += lo
            at = keep
        self._ends[at: at + k] = ends
        self._dt[at: at + k] = dt
        self.n += k

    def end(self, t: int) -> float:
        return float(self._ends[t - self.base])

    def max_dt(self, a: int, b: int) -> float:
        """Largest duration of steps a .. b-1 (0 when none)."""
        return float(np.maximum.reduce(self._dt[a - self.base: b - self.base])) if b > a else 0.0
