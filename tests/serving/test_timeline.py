"""The decode timeline holds each decoding row's future; planning reads it instead of the rows."""

import numpy as np
import pytest

from simulator.catalog import load_model_spec
from simulator.phases import Layout
from simulator.precision import resolve_precision
from simulator.serving.step_model import StepModel
from simulator.serving.timeline import DecodeTimeline
from simulator.step import device


def _brute(rows, s, k, bs, window):
    """rows: (a, fin, c0, o0, grow_from). Per step: decoding rows, keys, new blocks, by definition."""
    out = []
    for t in range(s, s + k):
        live = [r for r in rows if r[0] <= t < r[1]]
        keys = sum(min(c0 + t, window) if window else c0 + t for _, _, c0, _, _ in live)
        # a new block when the row's own tokens in step t need more blocks than in step t-1
        grow = sum(1 for a, fin, c0, o0, g in rows if g <= t < fin and -(-(o0 + t) // bs) > -(-(o0 + t - 1) // bs))
        out.append((len(live), keys, grow))
    return out


@pytest.mark.parametrize("window", [None, 700])
def test_timeline_matches_the_rows_step_by_step(window):
    rng = np.random.default_rng(3)
    bs, tl, rows = 16, DecodeTimeline(16, window, size=64), []
    for _ in range(40):  # rows starting at various steps; the buffer moves and grows on the way
        a = int(rng.integers(0, 200))
        fin = a + int(rng.integers(1, 300))
        c0, o0 = int(rng.integers(-a, 2000)), int(rng.integers(-a, 2000))
        g = a + int(rng.integers(0, 2))
        rows.append((a, fin, c0, o0, g))
    rows.sort()
    for r in rows:
        tl.add(*r, now=rows[0][0])
    s = rows[0][0]
    got = [tl.at(t) for t in range(s, s + 400)]
    assert got == _brute(rows, s, 400, bs, window)
    gone = rows.pop(5)  # preempted at step 150: out of the timeline from there
    tl.remove(*gone, now=150)
    assert [tl.at(t) for t in range(150, 450)] == _brute(rows, 150, 300, bs, window)
    assert tl.new_blocks(150, 450) == sum(x[2] for x in _brute(rows, 150, 300, bs, window))


def test_decode_into_equals_single_steps():
    m, dev = load_model_spec("llama-3.1-8b"), device("h100-sxm")
    sm = StepModel(m, dev, Layout(), resolve_precision(dev.spec, "bf16"))
    rows, keys = np.array([40, 40, 39, 12, 1]), np.array([80_000, 80_040, 79_100, 30_000, 5_000])
    out = np.empty((3, len(rows)))
    sm.decode_into(out, np.array([rows, keys]))
    for j in range(len(rows)):
        assert tuple(out[:, j]) == pytest.approx(sm.cost_keys([], int(rows[j]), float(keys[j]), int(rows[j])), rel=1e-12)
