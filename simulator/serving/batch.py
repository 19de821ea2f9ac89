"""The running batch of a replica as parallel numpy arrays (one row per admitted request, in
admission order), kept in absolute step coordinates so that decode steps change no row.

A replica counts its steps (step index t = steps completed before it). A row decodes, emitting one
token per step, from step `since` on; before that (prompt still prefilling) since = PREFILL. So for
a decoding row, with `gen` its generated tokens before step `since`:
- generated before step t:            gen + t - since
- context attended in step t:         c0 + t, c0 = input_len + gen - since
- tokens in its own blocks in step t: c0 - shared + t
- it finishes once `fin` = since + output_len - gen steps have run.
These are constant while it decodes, so a stretch of decode steps is one counter (Replica.sn) and
only rows that join, finish prefilling or leave touch the arrays. Token times come from the
replica's step log (StepLog) when a row leaves.

The integer fields are columns of one (rows, fields) array and the times columns of another, so
adding or dropping rows is two array operations; update fields in place (`b.held += x`), never by
rebinding them."""

from __future__ import annotations

import numpy as np

from .traffic import Request

PREFILL = 2**40  # `since` and `fin` of rows still prefilling: later than any step
FIELDS = ("input_len", "output_len", "target", "prefilled", "gen", "since", "fin", "c0", "held", "shared", "prefix")
TIMES = ("first_s", "last_s", "itl_max")  # as of the row's joining (token times before it)


class RunningBatch:
    def __init__(self):
        self._ints = np.zeros((0, len(FIELDS)), dtype=np.int64)
        self._times = np.zeros((0, len(TIMES)))
        self.reqs: list[Request] = []
        self._bind()

    def _bind(self) -> None:
        for k, f in enumerate(FIELDS):
            setattr(self, f, self._ints[:, k])
        for k, f in enumerate(TIMES):
            setattr(self, f, self._times[:, k])

    def __len__(self) -> int:
        return len(self.reqs)

    def add(self, req: Request, target: int, generated: int, held: int, shared: int, prefix: int, output_len: int,
            decode_from: int | None) -> None:
        """A new row: `target` tokens to prefill, `shared` of them in a cached prefix's blocks (already
        prefilled); `decode_from` is the step it decodes from when it arrives with its KV (swapped
        in, handed over), else None (it prefills first). `output_len` may differ from the
        request's (a prefill-only replica generates one token)."""
        if decode_from is None:
            since, fin, prefilled = PREFILL, PREFILL, shared
        else:
            since, fin, prefilled = decode_from, decode_from + output_len - generated, target
        row = (req.input_len, output_len, target, prefilled, generated, since, fin, req.input_len + generated - since,
               held, shared, prefix)
        times = (np.nan if req.first_token_s is None else req.first_token_s,
                 np.nan if req.last_token_s is None else req.last_token_s, req.itl_max_s)
        self._ints = np.concatenate([self._ints, np.array([row], dtype=np.int64)])
        self._times = np.concatenate([self._times, np.array([times])])
        self.reqs.append(req)
        self._bind()

    def start_decoding(self, i: int, step: int) -> None:
        """Row i finished its prompt in step `step`, emitting its first token there."""
        self.since[i] = step
        self.fin[i] = step + self.output_len[i] - self.gen[i]
        self.c0[i] = self.input_len[i] + self.gen[i] - step

    def keep(self, mask: np.ndarray) -> None:
        self._ints, self._times = self._ints[mask], self._times[mask]
        self.reqs = [r for r, k in zip(self.reqs, mask.tolist()) if k]
        self._bind()

    def generated(self, i: int, sn: int) -> int:
        return int(self.gen[i]) + max(sn - int(self.since[i]), 0)

    def save(self, i: int, sn: int, log: "StepLog") -> Request:
        """Write row i's progress after `sn` steps back to its Request (on finish or preemption)."""
        r, since = self.reqs[i], int(self.since[i])
        first, last, itl = float(self.first_s[i]), float(self.last_s[i]), float(self.itl_max[i])
        if sn > since:  # it emitted in steps since .. sn-1, back to back
            if not np.isnan(last):
                itl = max(itl, log.end(since) - last)
            itl = max(itl, log.max_dt(since + 1, sn))
            first = log.end(since) if np.isnan(first) else first
            last = log.end(sn - 1)
        r.first_token_s = None if np.isnan(first) else first
        r.last_token_s = None if np.isnan(last) else last
        r.itl_max_s = itl
        return r

    def own_tokens(self, step: int) -> np.ndarray:
        """Tokens in each decoding row's own blocks (beyond a shared prefix) in step `step`
        (meaningless for rows still prefilling; their blocks_for is negative)."""
        return self.c0 - self.shared + step

    def work(self, i: int, sn: int) -> int:
        """Tokens row i has left to process: prompt (or recompute) tokens and output tokens."""
        return int(self.target[i] - self.prefilled[i] + self.output_len[i]) - self.generated(i, sn)


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
        return float(self._dt[a - self.base: b - self.base].max()) if b > a else 0.0
