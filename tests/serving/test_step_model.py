"""The serving step model regroups the operator model; alone, a request costs what the what-if says."""

import numpy as np
import pytest

from simulator.catalog import load_model_spec
from simulator.phases import Decode, Layout, Prefill
from simulator.precision import resolve_precision
from simulator.serving.step_model import StepModel
from simulator.step import device, step_time


@pytest.mark.parametrize("model,tp", [("llama-3.1-8b", 1), ("llama-2-70b", 4), ("deepseek-v3", 8), ("mixtral-8x7b", 2)])
def test_prefill_and_decode_steps_equal_the_operator_model(model, tp):
    m, dev, layout = load_model_spec(model), device("h200-sxm"), Layout(tp=tp)
    prec = resolve_precision(dev.spec, "fp8")
    sm = StepModel(m, dev, layout, prec)
    pre = float(step_time(m, dev, Prefill.of(1, 3000), layout, prec).total_s)
    assert sm.time([(3000, 0)], np.zeros(0), 1) == pytest.approx(pre, rel=1e-12)
    ctx = np.array([100, 5000, 20000])
    dec = float(step_time(m, dev, Decode(ctx), layout, prec).total_s)
    assert sm.time([], ctx, 3) == pytest.approx(dec, rel=1e-12)


def test_mixed_step_costs_less_than_separate_steps():
    m, dev = load_model_spec("llama-3.1-8b"), device("h100-sxm")
    sm = StepModel(m, dev, Layout(), resolve_precision(dev.spec, "bf16"))
    ctx = np.full(32, 2000)
    mixed = sm.time([(512, 0)], ctx, 32)
    assert mixed < sm.time([(512, 0)], np.zeros(0), 0) + sm.time([], ctx, 32)  # weights read once
