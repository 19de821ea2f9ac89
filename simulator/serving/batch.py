"""The running batch of a replica as parallel numpy arrays (one row per admitted request, in
admission order), so a step costs a few vector operations whatever the batch size."""

from __future__ import annotations

import numpy as np

from .traffic import Request

FIELDS = ("input_len", "output_len", "target", "prefilled", "generated", "held")


class RunningBatch:
    def __init__(self):
        for f in FIELDS:
            setattr(self, f, np.zeros(0, dtype=np.int64))
        self.first_s = np.zeros(0)
        self.last_s = np.zeros(0)
        self.itl_max = np.zeros(0)
        self.reqs: list[Request] = []

    def __len__(self) -> int:
        return len(self.reqs)

    def add(self, req: Request, target: int, generated: int, held: int) -> None:
        vals = {"input_len": req.input_len, "output_len": req.output_len, "target": target, "prefilled": 0,
                "generated": generated, "held": held}
        for f in FIELDS:
            setattr(self, f, np.append(getattr(self, f), vals[f]))
        first = req.first_token_s if req.first_token_s is not None else np.nan
        last = req.last_token_s if req.last_token_s is not None else np.nan
        self.first_s = np.append(self.first_s, first)
        self.last_s = np.append(self.last_s, last)
        self.itl_max = np.append(self.itl_max, req.itl_max_s)
        self.reqs.append(req)

    def keep(self, mask: np.ndarray) -> None:
        for f in (*FIELDS, "first_s", "last_s", "itl_max"):
            setattr(self, f, getattr(self, f)[mask])
        self.reqs = [r for r, k in zip(self.reqs, mask) if k]

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
    def decoding(self) -> np.ndarray:
        return self.prefilled >= self.target
