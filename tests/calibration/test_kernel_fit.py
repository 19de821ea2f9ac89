"""Fitting calibration profiles: recovering a known profile from its own timings, held-out error,
profile files, and the `local` device taking measured rates."""

import numpy as np
import pytest
import yaml

from simulator.calibration import Calibration, Curve, OpCal
from simulator.catalog import load_hardware
from simulator.roofline import Device, op_time
from validate.kernel_fit import errors, fit_profile, held_out, measured_peaks, predict_row, summary
from validate.profile_io import write_profile


def _rows():
    """Shapes like the CPU sweep's, in CSV row form, without times."""
    out = []
    for m in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096):
        for n, k in ((1024, 1024), (4096, 1024)):
            out.append({"op": "gemm", "dtype": "fp32", "m": m, "n": n, "k": k, "flops": 2.0 * m * n * k,
                        "bytes": 4.0 * (k * n + m * k + m * n)})
    for L in (256, 512, 1024, 2048, 4096, 8192):
        out.append({"op": "attention_prefill", "dtype": "fp32", "flops": 4.0 * 8 * 64 * L * (L + 1) / 2,
                    "bytes": 4.0 * (2 * 8 * L * 64 + 2 * 2 * L * 64)})
    for b in (1, 4, 16):
        for c in (512, 2048, 8192):
            out.append({"op": "attention_decode", "dtype": "fp32", "batch": b, "kv_len": c, "flops": 4.0 * b * 16 * 64 * c,
                        "bytes": 4.0 * (2 * b * 16 * 64 + 2 * b * 4 * c * 64)})
    for e in (2**p for p in range(12, 25, 2)):
        out.append({"op": "copy", "dtype": "fp32", "flops": 0.0, "bytes": 8.0 * e})
        out.append({"op": "rmsnorm", "dtype": "fp32", "flops": 4.0 * e, "bytes": 8.0 * e})
        out.append({"op": "silu_mul", "dtype": "fp32", "flops": 4.0 * e, "bytes": 12.0 * e})
    for layers in (4, 8, 16):  # a tiny Llama's decode step: the framework's per-layer cost
        out.append({"op": "layer", "dtype": "fp32", "m": layers, "n": 64, "k": 128, "heads": 4, "kv_heads": 2,
                    "head_dim": 16, "elems": 256, "batch": 1, "kv_len": 64, "flops": 0.0, "bytes": 0.0})
    return [{"m": 0, "n": 0, "k": 0, **r} for r in out]


def _timed_gemms(spec, truth: Calibration, ms, pairs, seed: int) -> list[dict]:
    """fp32 GEMM rows over M x (N, K), timed by the `truth` profile with 2% log-normal noise."""
    rows, rng = [], np.random.default_rng(seed)
    for m in ms:
        for n, k in pairs:
            r = {"op": "gemm", "dtype": "fp32", "m": m, "n": n, "k": k, "flops": 2.0 * m * n * k,
                 "bytes": 4.0 * (m * k + k * n + m * n)}
            r["time_s"] = predict_row(spec, truth, r) * float(np.exp(rng.normal(0, 0.02)))
            rows.append(r)
    return rows


TRUTH = {  # a made-up CPU profile with shapes the fit must find
    "gemm": {"efficiency": {"fp32": {"size": [1, 16, 256, 4096], "efficiency": [0.1, 0.3, 0.8, 0.9]}},
             "size": "rows", "overhead": "3 us"},
    "attention": {"efficiency": {"size": [1e8, 1e11], "efficiency": [0.3, 0.7]}, "overhead": "10 us",
                  "decode_efficiency": 0.15},
    "memory": {"efficiency": {"size": [1e5, 1e7, 1e9], "efficiency": [0.9, 0.6, 0.3]}, "overhead": "2 us"},
    "elementwise": {"efficiency": 0.5, "overhead": "5 us",
                    "by_op": {"norm": {"efficiency": 0.2, "overhead": "12 us"}, "act": {"efficiency": 0.4, "overhead": "6 us"}}},
    "overlap_norm": 4.0,
    "layer_overhead": "50 us",
}


@pytest.fixture
def cpu():
    spec = load_hardware("epyc-9654")
    truth = Calibration.model_validate({"device": "t", "calibrated": True, **TRUTH})
    rows = _rows()
    rng = np.random.default_rng(1)
    for r in rows:
        r["time_s"] = predict_row(spec, truth, r) * float(np.exp(rng.normal(0, 0.02)))  # 2% timing noise
    return spec, rows


def test_the_fit_recovers_a_known_profile_within_the_noise(cpu):
    spec, rows = cpu
    cal = fit_profile(spec, rows, "t")
    s = summary(errors(spec, cal, rows))
    assert s["median"] < 0.03 and s["p90"] < 0.06
    assert cal.gemm.size == "rows" and cal.attention.decode_efficiency is not None
    assert set(cal.elementwise.by_op) == {"norm", "act"}
    assert cal.layer_overhead == pytest.approx(50e-6, rel=0.25)


def test_held_out_shapes_are_predicted_within_the_targets(cpu):
    spec, rows = cpu
    for seed in (0, 1, 2):
        _, test, errs = held_out(spec, rows, "t", seed=seed)
        s = summary(errs)
        assert len(test) > 0.25 * len(rows) and s["median"] < 0.05 and s["p90"] < 0.15


def test_measured_peaks_are_the_best_rates_seen(cpu):
    _, rows = cpu
    p = measured_peaks(rows)
    assert p.memory_bandwidth == max(r["bytes"] / r["time_s"] for r in rows if r["op"] == "copy")
    assert p.peak["fp32"] == max(r["flops"] / r["time_s"] for r in rows if r["op"] == "gemm")


def test_profiles_are_written_readable_and_never_overwritten(tmp_path, cpu):
    spec, rows = cpu
    cal = fit_profile(spec, rows, "local")
    dest = tmp_path / "local.yaml"
    write_profile(cal, dest)
    again = write_profile(cal, dest)
    assert again == dest and len(list(tmp_path.glob("local*.yaml"))) == 2  # the first kept under a dated name
    back = Calibration.model_validate(yaml.safe_load(dest.read_text()))
    assert back.gemm.size == cal.gemm.size and back.calibrated


def test_decode_attention_and_elementwise_families_use_their_own_efficiency():
    from simulator.ops import Op

    spec = load_hardware("epyc-9654")
    cal = Calibration.model_validate({"device": "t", "calibrated": True, "overlap_norm": float("inf"),
                                      "attention": {"efficiency": 0.5, "decode_efficiency": 0.25, "overhead": 0},
                                      "elementwise": {"efficiency": 0.5, "overhead": 0,
                                                      "by_op": {"norm": {"efficiency": 0.1, "overhead": 0}}}})
    dev = Device(spec, cal)
    peak = dev.peak("fp32")
    pre = Op("attention", "attention", 1, 1e12, 1.0, "fp32", phase="prefill")
    dec = Op("attention", "attention", 1, 1e12, 1.0, "fp32", phase="decode")
    assert op_time(pre, dev) == pytest.approx(1e12 / (0.5 * peak))
    assert op_time(dec, dev) == pytest.approx(1e12 / (0.25 * peak))
    norm, add = (Op(n, "elementwise", 1, 1e12, 1.0, "fp32") for n in ("norm", "residual_add"))
    assert op_time(norm, dev) == pytest.approx(1e12 / (0.1 * peak))
    assert op_time(add, dev) == pytest.approx(1e12 / (0.5 * peak))
    assert isinstance(Curve(size=[1, 2], efficiency=[0.5, 0.5]), Curve) and OpCal().overhead >= 0


def test_a_gemm_factor_over_k_scales_the_efficiency_and_the_fit_finds_it():
    from simulator.ops import Op

    spec = load_hardware("epyc-9654")
    truth = Calibration.model_validate({
        "device": "t", "calibrated": True, "overlap_norm": float("inf"),
        "gemm": {"efficiency": {"fp32": {"size": [1, 64, 4096], "efficiency": [0.1, 0.5, 0.9]}}, "size": "rows",
                 "overhead": 0, "k_efficiency": {"size": [512, 4096], "efficiency": [0.5, 1.0]}}})
    dev = Device(spec, truth)
    peak = dev.peak("fp32")
    long_k = Op("g", "gemm", 1, 2.0 * 4096 * 1024 * 4096, 1.0, "fp32", (4096, 1024, 4096))
    short_k = Op("g", "gemm", 1, 2.0 * 4096 * 8192 * 512, 1.0, "fp32", (4096, 8192, 512))
    # same FLOPs and rows: K = 512 runs at half the efficiency of K = 4096 (hand arithmetic: 0.9 x 0.5),
    # times the waves of 128 x 128 tiles over 96 cores: 32 x 8 = 256 tiles in 3 waves, 32 x 64 = 2048 in 22
    assert spec.engine.compute_units == 96
    assert op_time(long_k, dev) == pytest.approx(long_k.flops / (0.9 * 256 / 288 * peak), rel=1e-9)
    assert op_time(short_k, dev) == pytest.approx(short_k.flops / (0.45 * 2048 / 2112 * peak), rel=1e-9)
    rows = _timed_gemms(spec, truth, (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),  # enough shapes
                        ((1024, 1024), (4096, 1024), (1024, 4096), (8192, 512), (512, 8192)), seed=2)
    cal = fit_profile(spec, rows, "t")
    assert cal.gemm.k_efficiency is not None
    assert summary(errors(spec, cal, rows))["median"] < 0.03


def test_decode_attention_can_add_its_math_and_its_kv_read():
    """decode_overlap 1: decode attention's compute and memory seconds add (this CPU's SDPA), while
    prefill attention and GEMMs keep the device's overlap (here the pure roofline max)."""
    from simulator.ops import Op

    spec = load_hardware("epyc-9654")
    cal = Calibration.model_validate({"device": "t", "calibrated": True, "overlap_norm": float("inf"),
                                      "memory": {"efficiency": 0.5, "overhead": 0},
                                      "attention": {"efficiency": 0.5, "decode_efficiency": 0.25, "overhead": 0,
                                                    "decode_overlap": 1.0}})
    dev = Device(spec, cal)
    peak, bw = dev.peak("fp32"), dev.mem_bandwidth
    dec = Op("attention", "attention", 1, 1e12, 1e11, "fp32", phase="decode")
    pre = Op("attention", "attention", 1, 1e12, 1e11, "fp32", phase="prefill")
    math_s, read_s = 1e12 / (0.25 * peak), 1e11 / (0.5 * bw)
    assert op_time(dec, dev) == pytest.approx(math_s + read_s)
    assert op_time(pre, dev) == pytest.approx(max(1e12 / (0.5 * peak), read_s))
    assert cal.overlap("gemm") == cal.overlap("attention", "prefill") == float("inf")


def test_the_fit_adds_decode_attention_s_terms_when_kv_heads_cost_apart_from_query_heads():
    """Decode rows over query and KV head counts, timed by a profile whose math and KV read add:
    with one grouping (16 over 4) a curve over FLOPs alone could absorb the read, but across
    groupings only the additive form fits, and cross-validation must pick it."""
    from simulator.calibration import evaluate

    spec = load_hardware("epyc-9654")
    truth = Calibration.model_validate({"device": "t", "calibrated": True, **TRUTH, "attention": {
        **TRUTH["attention"], "decode_efficiency": 0.01, "decode_overlap": 1.0}})
    rows, rng = [], np.random.default_rng(3)
    for b, c in ((1, 512), (1, 8192), (4, 1024), (4, 4096), (16, 512), (16, 2048), (8, 8192)):
        for h, hk in ((16, 4), (16, 8), (16, 16), (32, 8), (8, 2)):
            r = {"op": "attention_decode", "dtype": "fp32", "m": 0, "n": 0, "k": 0, "batch": b, "heads": h,
                 "kv_heads": hk, "kv_len": c, "flops": 4.0 * b * h * 64 * c, "bytes": 4.0 * (2 * b * h * 64 + 2 * b * hk * c * 64)}
            r["time_s"] = predict_row(spec, truth, r) * float(np.exp(rng.normal(0, 0.02)))
            rows.append(r)
    # the read is a real share of the time: at 16 over 16 heads and the most keys, over 30%
    dev = Device(spec, truth)
    one = max((r for r in rows if r["heads"] == 16 and r["kv_heads"] == 16), key=lambda r: r["bytes"])
    assert one["bytes"] / (dev.mem_bandwidth * evaluate(truth.memory.efficiency, one["bytes"])) > 0.3 * one["time_s"]
    prefill = [r for r in _rows() if r["op"] == "attention_prefill"]
    for r in prefill:
        r["time_s"] = predict_row(spec, truth, r)
    cal = fit_profile(spec, rows + prefill, "t", base=truth)
    assert cal.attention.decode_overlap == 1.0
    s = summary(errors(spec, cal, rows))
    assert s["median"] < 0.03 and s["p90"] < 0.06


def test_the_fit_s_batched_timing_equals_op_time_op_by_op(cpu):
    """The fit costs every shape at once (kernel_fit.batch_times); it must be op_time's answer, on a
    GPU spec too, where the waves of GEMM tiles matter and N varies within the batch."""
    from validate.kernel_fit import batch_times, batched, to_op

    _, rows = cpu
    rows = [r for r in rows if r["op"] != "layer"]
    ops = [to_op(r) for r in rows]
    for hw in ("epyc-9654", "h200-sxm"):
        spec = load_hardware(hw)
        cal = Calibration.model_validate({"device": "t", "calibrated": True, **TRUTH, "gemm": {
            **TRUTH["gemm"], "n_efficiency": {"size": [1024, 4096], "efficiency": [1.0, 0.8]},
            "k_stream_efficiency": {"size": [512, 4096], "efficiency": [0.5, 1.0]}, "gemv_rows": 2,
            "gemv_reread": {"size": [1e6, 1e8], "efficiency": [0.4, 1.0]}},
            "attention": {**TRUTH["attention"], "decode_size": "context", "decode_overlap": 1.0,
                          "decode_efficiency": {"size": [512, 8192], "efficiency": [0.3, 0.1]}}})
        dev = Device(spec, cal)
        one_by_one = np.array([float(op_time(o, dev)) for o in ops])
        assert len(batched(ops)) < len(ops)
        np.testing.assert_allclose(batch_times(batched(ops), dev, len(ops)), one_by_one, rtol=1e-12)


def test_a_stream_factor_over_k_slows_a_gemv_but_not_a_large_gemm():
    """k_stream_efficiency divides the GEMM's memory rate: a memory-bound GEMV slows by it in full,
    a compute-bound GEMM not at all (pure roofline: overlap_norm infinite)."""
    from simulator.ops import Op

    spec = load_hardware("epyc-9654")
    cal = Calibration.model_validate({
        "device": "t", "calibrated": True, "overlap_norm": float("inf"),
        "memory": {"efficiency": 0.5, "overhead": 0},
        "gemm": {"efficiency": {"fp32": 0.5}, "overhead": 0, "k_stream_efficiency": {"size": [512, 4096], "efficiency": [0.25, 1.0]}}})
    dev = Device(spec, cal)
    bw = spec.memory.device.bandwidth
    gemv = Op("g", "gemm", 1, 2.0 * 8192 * 512, 4.0 * 8192 * 512, "fp32", (1, 8192, 512))
    assert op_time(gemv, dev) == pytest.approx(gemv.bytes / (bw * 0.5 * 0.25), rel=1e-9)  # hand: BW x 0.5 x 0.25
    big = Op("g", "gemm", 1, 2.0 * 4096 * 384 * 512, 4.0 * (4096 * 512 + 384 * 512 + 4096 * 384), "fp32", (4096, 384, 512))
    # 32 x 3 tiles: one wave on 96 cores. 1.6 GFLOP at half the peak against 15.5 MB at an eighth of the
    # bandwidth: compute wins
    assert spec.engine.compute_units == 96
    assert big.flops / (0.5 * dev.peak("fp32")) > 1.5 * big.bytes / (bw * 0.5 * 0.25)
    assert op_time(big, dev) == pytest.approx(big.flops / (0.5 * dev.peak("fp32")), rel=1e-9)


def test_up_to_gemv_rows_each_row_streams_the_weight_and_its_arithmetic_hides():
    """gemv_rows 2: M = 1 and M = 2 are matrix-vector products, each reading the weight (memory
    time x M, compute hidden however low the GEMM efficiency); M = 4 is a GEMM again."""
    from simulator.ops import Op

    spec = load_hardware("epyc-9654")
    cal = Calibration.model_validate({
        "device": "t", "calibrated": True, "overlap_norm": float("inf"), "memory": {"efficiency": 0.5, "overhead": 0},
        "gemm": {"efficiency": {"fp32": 0.001}, "overhead": 0, "gemv_rows": 2}})
    dev, bw = Device(spec, cal), spec.memory.device.bandwidth

    def gemm(m):
        n, k = 4096, 1024
        return Op("g", "gemm", 1, 2.0 * m * n * k, 4.0 * (n * k + m * k + m * n), "fp32", (m, n, k))
    assert op_time(gemm(1), dev) == pytest.approx(gemm(1).bytes / (bw * 0.5), rel=1e-9)
    assert op_time(gemm(2), dev) == pytest.approx(2 * gemm(2).bytes / (bw * 0.5), rel=1e-9)
    # M = 4: 33.6 MFLOP at 0.1% of the peak, far above its 16.8 MB at half the bandwidth
    assert op_time(gemm(4), dev) == pytest.approx(gemm(4).flops / (0.001 * dev.peak("fp32")), rel=1e-9)
    off = Device(spec, cal.model_copy(update={"gemm": cal.gemm.model_copy(update={"gemv_rows": 0})}))
    assert op_time(gemm(1), off) == pytest.approx(gemm(1).flops / (0.001 * dev.peak("fp32")), rel=1e-9)
    # a weight re-read from cache: the second row's read costs the re-read share at the op's bytes
    # (16.8 MB: 4x of the 16x from 4.2 MB to 67 MB, halfway in log10: 0.4 + (1.0 - 0.4) / 2 = 0.7)
    small = Device(spec, cal.model_copy(update={"gemm": cal.gemm.model_copy(update={
        "gemv_reread": Curve(size=[4.2e6, 6.72e7], efficiency=[0.4, 1.0])})}))
    share = 0.4 + 0.6 * np.log10(gemm(2).bytes / 4.2e6) / np.log10(6.72e7 / 4.2e6)
    assert share == pytest.approx(0.7, abs=0.002)
    assert op_time(gemm(2), small) == pytest.approx((1 + share) * gemm(2).bytes / (bw * 0.5), rel=1e-9)
    assert op_time(gemm(1), small) == pytest.approx(op_time(gemm(1), dev), rel=1e-12)  # one row: one read


def test_gemv_rows_is_read_off_how_time_grows_from_one_row():
    from validate.fit_forms import gemv_rows

    def rows(ratios):  # time at M over time at M = 1, for two N x K
        return [{"m": m, "n": n, "k": 1024, "time_s": 1e-3 * n / 1024 * r} for m, r in ratios for n in (1024, 4096)]
    # a CPU BLAS: M = 2 takes 1.9x one row (a GEMV per row), M = 4 2.2x (a GEMM kernel)
    assert gemv_rows(rows([(1, 1.0), (2, 1.9), (4, 2.2), (8, 2.5)])) == 2
    assert gemv_rows(rows([(1, 1.0), (2, 1.05), (4, 1.1)])) == 0  # a GPU: one pass over the weight
    assert gemv_rows(rows([(2, 1.0), (4, 1.9)])) == 0  # no one-row GEMMs measured: no way to tell


def test_a_surface_interpolates_bilinearly_in_log_m_and_log_n():
    from simulator.calibration import Surface

    s = Surface(rows=[1, 100], cols=[10, 1000], efficiency=[[0.1, 0.2], [0.5, 0.9]])
    assert s(1, 10) == pytest.approx(0.1) and s(100, 1000) == pytest.approx(0.9)
    # M = 10 and N = 100 lie halfway in log10 on both axes: the mean of the four corners
    assert s(10, 100) == pytest.approx((0.1 + 0.2 + 0.5 + 0.9) / 4)
    assert s(1e6, 1) == pytest.approx(0.5)  # flat beyond the knots: the M = 100, N = 10 corner
    np.testing.assert_allclose(s(np.array([1, 10, 100]), np.array([10, 100, 1000])), [0.1, 0.425, 0.9])
    with pytest.raises(ValueError):
        Surface(rows=[1, 100], cols=[10], efficiency=[[0.1, 0.2], [0.5, 0.9]])


def test_the_fit_finds_a_gemm_surface_over_m_and_n_when_n_matters_only_at_middling_m():
    """A made-up CPU whose wide GEMMs are slow at M = 64 but not at M = 1 or 4096: no curve times a
    factor over N follows it, the surface form does."""
    spec = load_hardware("epyc-9654")
    truth = Calibration.model_validate({
        "device": "t", "calibrated": True, "overlap_norm": 4.0,
        "gemm": {"efficiency": {"fp32": {"rows": [1, 64, 4096], "cols": [512, 16384],
                                         "efficiency": [[0.1, 0.1], [0.6, 0.3], [0.9, 0.9]]}}, "overhead": "5 us"}})
    rows = _timed_gemms(spec, truth, (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
                        ((512, 4096), (1024, 1024), (4096, 1024), (16384, 1024), (2048, 2048)), seed=3)
    cal = fit_profile(spec, rows, "t")
    from simulator.calibration import Surface

    assert isinstance(cal.gemm.efficiency["fp32"], Surface)
    assert summary(errors(spec, cal, rows))["median"] < 0.03
