"""The decode steps of a static batch: contexts per step, sampled when there are many steps."""

from __future__ import annotations

import numpy as np

MAX_EXACT_STEPS = 1024


def decode_contexts(input_len: int, output_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Contexts of decode steps 1..output_len-1 (step j attends to input_len + j tokens: the prompt,
    j-1 generated tokens and its own) and trapezoid weights whose sum is the number of steps.
    Beyond MAX_EXACT_STEPS steps, evenly spaced samples are integrated (the step time is piecewise
    linear in context, so the trapezoid rule is near exact)."""
    n = output_len - 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if n <= MAX_EXACT_STEPS:
        return input_len + np.arange(1, n + 1, dtype=np.int64), np.ones(n)
    j = np.unique(np.linspace(1, n, MAX_EXACT_STEPS + 1).round().astype(np.int64))
    w = np.zeros(len(j))
    gaps = np.diff(j).astype(np.float64)
    w[:-1] += gaps / 2
    w[1:] += gaps / 2
    w *= n / w.sum()  # trapezoid over [1, n] spans n - 1; spread to n steps
    return input_len + j, w
