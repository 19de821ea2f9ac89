"""The running batch of a replica as parallel numpy arrays (one row per admitted request, in
admission order), so a step costs a few vector operations whatever the batch size.

The integer fields are columns of one (rows, fields) array and the times columns of another, so
adding or dropping rows is two array operations; update fields in place (`b.held += x`,
`b.last_s[:] = y`), never by rebinding them."""

from __future__ import annotations

import numpy as np

from .traffic import Request

FIELDS = ("input_len", "output_len", "target", "prefilled", "generated", "held", "shared", "prefix")
TIMES = ("first_s", "last_s", "itl_max")


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

    def add(self, req: Request, target: int, generated: int, held: int, shared: int = 0, prefix: int = -1,
            output_len: int | None = None) -> None:
        """A new row; `shared` prompt tokens sit in a cached prefix's blocks (already prefilled);
        `output_len` overrides the request's (a prefill-only replica generates one token)."""
        row = (req.input_len, req.output_len if output_len is None else output_len, target, shared, generated, held, shared, prefix)
        times = (np.nan if req.first_token_s is None else req.first_token_s,
                 np.nan if req.last_token_s is None else req.last_token_s, req.itl_max_s)
        self._ints = np.concatenate([self._ints, np.array([row], dtype=np.int64)])
        self._times = np.concatenate([self._times, np.array([times])])
        self.reqs.append(req)
        self._bind()

    def keep(self, mask: np.ndarray) -> None:
        self._ints, self._times = self._ints[mask], self._times[mask]
        self.reqs = [r for r, k in zip(self.reqs, mask.tolist()) if k]
        self._bind()

    def save(self, i: int) -> Request:
        """Write row i's progress back to its Request (on finish or preemption)."""
        r = self.reqs[i]
        r.first_token_s = None if np.isnan(self.first_s[i]) else float(self.first_s[i])
        r.last_token_s = None if np.isnan(self.last_s[i]) else float(self.last_s[i])
        r.itl_max_s = float(self.itl_max[i])
        return r

    @property
    def context(self) -> np.ndarray:
        """Tokens cached once this step's token is in (decode rows)."""
        return self.input_len + self.generated

    @property
    def own_tokens(self) -> np.ndarray:
        """Cached tokens in the row's own blocks (beyond a shared prefix) once this step's token is in."""
        return self.input_len + self.generated - self.shared

    @property
    def decoding(self) -> np.ndarray:
        return self.prefilled >= self.target

    def work(self) -> np.ndarray:
        """Tokens each row has left to process: prompt (or recompute) tokens and output tokens."""
        return self.target - self.prefilled + self.output_len - self.generated
