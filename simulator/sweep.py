"""Sweeps: the what-if over a grid of options, as one tidy DataFrame (a row per configuration)."""

from __future__ import annotations

import itertools

from .errors import InfercastError
from .closed_form import whatif


def sweep(**grid):
    """`sweep(hw=["h100-sxm", "h200-sxm"], input_len=[8192, 32768, 131072], model="llama-3.1-8b")`:
    every combination of the listed values (scalars are held fixed). Configurations that do not fit
    stay in the frame with `fits` false and null times."""
    import pandas as pd

    keys = list(grid)
    values = [v if isinstance(v, (list, tuple, range)) else [v] for v in grid.values()]
    if any(len(v) == 0 for v in values):
        raise InfercastError("sweep: every swept option needs at least one value")
    rows = [_flat(whatif(**dict(zip(keys, combo))).to_dict()) for combo in itertools.product(*values)]
    return pd.DataFrame(rows)


def _flat(row: dict) -> dict:
    """A what-if's scalar fields: its `config` block repeats them, `advice` (a non-fit's) is nested."""
    return {k: v for k, v in row.items() if not isinstance(v, (dict, list))}
