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


def _curved(dev):
    """The device with efficiency curves (and a finite overlap norm) in place of the fixed figures."""
    from simulator.calibration import Curve
    from simulator.roofline import Device

    curve = Curve(size=[1e6, 1e9, 1e12], efficiency=[0.1, 0.5, 0.8])
    cal = dev.cal.model_copy(update={
        "gemm": dev.cal.gemm.model_copy(update={"efficiency": {"bf16": curve, "fp8": curve}}),
        "memory": dev.cal.memory.model_copy(update={"efficiency": Curve(size=[1e4, 1e8], efficiency=[0.2, 0.9])}),
        "elementwise": dev.cal.elementwise.model_copy(update={"efficiency": curve}),
        "overlap_norm": 3.0})
    return Device(dev.spec, cal)


@pytest.mark.parametrize("model,hw,tp,dtype,curves", [
    ("llama-3.1-8b", "h100-sxm", 1, "bf16", False), ("llama-3.1-8b", "h100-sxm", 1, "bf16", True),
    ("mistral-7b", "a100-80gb-sxm", 1, "bf16", False), ("llama-2-70b", "h200-sxm", 4, "fp8", True),
    ("deepseek-v3", "h200-sxm", 8, "fp8", False), ("deepseek-v3", "h200-sxm", 8, "fp8", True),
    ("mixtral-8x7b", "h200-sxm", 2, "bf16", True),
    # a TP group across two NVLink domains, expert and context parallelism, a per-step collective latency
    ("llama-3.1-70b", "h100-sxm", Layout(tp=16), "bf16", "steps"),
    ("mixtral-8x7b", "h200-sxm", Layout(tp=8, ep=4, ep_imbalance=1.3), "bf16", "steps"),
    ("llama-3.1-70b", "h100-sxm", Layout(tp=8, pp=2, cp=2), "bf16", False)])
def test_tabulated_counts_equal_the_ops_costed_one_by_one(model, hw, tp, dtype, curves):
    from simulator.roofline import Device
    from simulator.serving.step_model import PER_DECODE_ROW, PER_SEQUENCE, TOKEN_ONLY

    m, dev, layout = load_model_spec(model), device(hw), tp if isinstance(tp, Layout) else Layout(tp=tp)
    if curves == "steps":  # one-shot all-reduce wins small messages once steps cost latency
        coll = dev.cal.collective.model_copy(update={"step_latency": 2e-6})
        dev = Device(dev.spec, dev.cal.model_copy(update={"collective": coll}))
    dev = _curved(dev) if curves is True else dev
    sm = StepModel(m, dev, layout, resolve_precision(dev.spec, dtype))
    for n in [1, 2, 3, 7, 64, 127, 128, 129, 255, 256, 1000, 1023, 1024, 1025, 2047, 4096, 5000, 8191, 8192, 8300]:
        ops = sm._ops(Decode.of(n, 1))
        by_ops = [sm._cost(ops, TOKEN_ONLY), sm._cost(ops, lambda x: x in PER_SEQUENCE),
                  sm._cost(ops, lambda x: x in PER_DECODE_ROW)]
        for got, want in zip([sm.by_tokens(n), sm.by_rows(n), sm.by_rows(-n)], by_ops):
            assert got == pytest.approx(want, rel=1e-12, abs=0.0)


def _additive(dev):
    """The device with decode attention's math and KV read added (decode_overlap 1, as a CPU's SDPA)."""
    from simulator.roofline import Device

    return Device(dev.spec, dev.cal.model_copy(update={"attention": dev.cal.attention.model_copy(update={"decode_overlap": 1.0})}))


@pytest.mark.parametrize("curves", [False, True, "additive", "curved additive"])
def test_decode_stretch_equals_single_steps(curves):
    m, dev = load_model_spec("mistral-7b"), device("a100-80gb-sxm")
    dev = _curved(dev) if curves in (True, "curved additive") else dev
    dev = _additive(dev) if curves in ("additive", "curved additive") else dev
    if curves in ("additive", "curved additive"):  # and the step model's decode steps are step_time's
        sm = StepModel(m, dev, Layout(), resolve_precision(dev.spec, "bf16"))
        ctx = np.array([100, 5000, 20000])
        want = float(step_time(m, dev, Decode(ctx), Layout(), resolve_precision(dev.spec, "bf16")).total_s)
        assert sm.time([], ctx, 3) == pytest.approx(want, rel=1e-12)
        assert want > float(step_time(m, device("a100-80gb-sxm") if curves == "additive" else _curved(
            device("a100-80gb-sxm")), Decode(ctx), Layout(), resolve_precision(dev.spec, "bf16")).total_s)
    sm = StepModel(m, dev, Layout(), resolve_precision(dev.spec, "bf16"))
    rows, keys = np.array([300, 40, 39, 12, 1]), np.array([900_000, 80_040, 79_100, 30_000, 4_000])
    out = np.empty((3, len(rows)))
    sm.decode_into(out, np.array([rows, keys]))
    for j in range(len(rows)):
        want = sm.cost_keys([], int(rows[j]), float(keys[j]), int(rows[j]))
        assert tuple(out[:, j]) == pytest.approx(want, rel=1e-12, abs=0.0)


def test_counts_costed_one_by_one_equal_the_tables():
    m, dev = load_model_spec("llama-3.1-70b"), device("h100-sxm")
    prec = resolve_precision(dev.spec, "bf16")
    tab, one = (StepModel(m, dev, Layout(tp=8, cp=2), prec, tables=t) for t in (True, False))
    for n in (1, 255, 1024, 5000, 8192):
        for a, b in ((tab.by_tokens(n), one.by_tokens(n)), (tab.by_rows(n), one.by_rows(n)), (tab.by_rows(-n), one.by_rows(-n))):
            assert a == pytest.approx(b, rel=1e-12, abs=0.0)
    assert 8192 in one._by_tokens and 8193 not in one._by_tokens  # costed alone, not a block


@pytest.mark.parametrize("layout", [Layout(), Layout(tp=2, cp=2)])
def test_a_decode_curve_over_keys_per_sequence_costs_alike_in_the_step_model(layout):
    """decode_size "context": decode attention's efficiency follows the keys each sequence attends,
    in the operator model and in the serving step model's own decode path alike."""
    from simulator.calibration import Curve
    from simulator.roofline import Device, op_time

    m, dev = load_model_spec("llama-3.1-8b"), device("h100-sxm")
    att = dev.cal.attention.model_copy(update={
        "decode_efficiency": Curve(size=[512, 8192], efficiency=[0.006, 0.002]), "decode_size": "context"})
    dev = Device(dev.spec, dev.cal.model_copy(update={"attention": att, "overlap_norm": float("inf")}))
    prec = resolve_precision(dev.spec, "bf16")
    sm = StepModel(m, dev, layout, prec)
    ctx = np.array([100, 5000, 20000])
    assert sm.time([], ctx, 3) == pytest.approx(float(step_time(m, dev, Decode(ctx), layout, prec).total_s), rel=1e-12)
    rows, keys = np.array([16, 3, 1]), np.array([16 * 512, 3 * 5000, 8192])
    out = np.empty((3, len(rows)))
    sm.decode_into(out, np.array([rows, keys]))
    for j in range(len(rows)):
        assert tuple(out[:, j]) == pytest.approx(sm.cost_keys([], int(rows[j]), float(keys[j]), int(rows[j])), rel=1e-12)

    def attention(contexts):
        ops = sm._ops(Decode(np.array(contexts)))
        return next(float(op_time(o, dev)) for o in ops if o.name == "attention")
    # the same keys and FLOPs: one sequence of 8192 keys (per rank: 8192 / cp) against 16 of 512
    one, many = attention([8192]), attention([512] * 16)
    if layout.cp == 1:  # compute-bound at these efficiencies (134 MFLOP a layer at 0.2% of 989 TFLOP/s: 68 us,
        # against 8 us for its 33.5 MB of KV): the time goes as 1 / efficiency, 0.002 against 0.006
        over = dev.cal.attention.overhead * 32
        assert (one - over) / (many - over) == pytest.approx(3.0, rel=0.05)
    assert one > many
