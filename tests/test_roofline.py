"""Roofline times against hand arithmetic on a toy device with round numbers."""

import pytest

from simulator.calibration import Calibration, Curve
from simulator.catalog import load_hardware
from simulator.collectives import collective_time
from simulator.ops import Op
from simulator.roofline import Device, op_bound, op_time, wave_efficiency


@pytest.fixture
def dev(toy_hw_path):
    cal = Calibration.model_validate({
        "device": "toy", "calibrated": True,
        "gemm": {"efficiency": {"bf16": 0.5}, "overhead": "1 us", "tile_m": 128, "tile_n": 128},
        "memory": {"efficiency": 0.5, "overhead": "2 us"},
        "attention": {"efficiency": 0.25, "overhead": "3 us"},
        "collective": {"efficiency": 0.5, "latency": "10 us"},
    })
    return Device(load_hardware(toy_hw_path), cal)


def test_compute_bound_gemm(dev):
    # 1e12 FLOP at 100 TFLOP/s x 0.5 = 20 ms; 1 MB at 0.5 TB/s = 2 us; + 1 us overhead
    op = Op("g", "gemm", 1, flops=1e12, bytes=1e6, dtype="bf16", shape=(1280, 1000, 1))
    assert op_time(op, dev) == pytest.approx(20e-3 + 1e-6)
    assert op_bound(op, dev) == "compute"


def test_memory_bound_op_counts_instances(dev):
    # 1 GB at 1 TB/s x 0.5 = 2 ms, + 3 us overhead, x 4 layers
    op = Op("a", "attention", 4, flops=1e6, bytes=1e9, dtype="bf16")
    assert op_time(op, dev) == pytest.approx(4 * (2e-3 + 3e-6))
    assert op_bound(op, dev) == "memory"


def test_wave_quantisation():
    assert wave_efficiency(128, 128 * 100, 128, 128, 100) == 1.0  # exactly one wave
    assert wave_efficiency(128, 128 * 101, 128, 128, 100) == pytest.approx(101 / 200)  # a second, nearly empty wave
    assert wave_efficiency(128, 128 * 10, 128, 128, 100) == 1.0  # under one wave: split-K fills the device


def test_all_reduce_ring_time(dev):
    # ring all-reduce of 100 MB on 4 devices: 2 * 3/4 * 100 MB / (0.5 * 100 GB/s) = 3 ms, + 10 us
    op = Op("ar", "collective", 1, comm_bytes=100e6, group=4, collective="all_reduce")
    assert collective_time(op, dev.spec, dev.cal.collective) == pytest.approx(3e-3 + 10e-6)
    assert op_time(op, dev) == pytest.approx(3e-3 + 10e-6)


def test_efficiency_curve_interpolates_in_log_size():
    c = Curve(size=[1e6, 1e9], efficiency=[0.1, 0.7])
    assert c(1e3) == pytest.approx(0.1) and c(1e12) == pytest.approx(0.7)
    assert c(10**7.5) == pytest.approx(0.4)


def test_default_gemm_efficiency_uses_published_matmul_fraction(toy_hw_path, tmp_path):
    from pathlib import Path

    import yaml

    from simulator.calibration import load_calibration

    spec = yaml.safe_load(Path(toy_hw_path).read_text())   # the fixture, not `from conftest import` (see test_cli)
    spec["engines"] = {"gpu": {**spec["engines"]["gpu"], "measured_matmul": {"bf16": "80 TFLOP/s"}}}
    path = tmp_path / "toy2.yaml"
    path.write_text(yaml.safe_dump(spec))
    d = Device(load_hardware(str(path)), load_calibration("toy"))
    assert not d.calibrated
    assert d.gemm_efficiency("bf16", 128, 128, 1e9) == pytest.approx(0.8)
    assert d.gemm_efficiency("fp8", 128, 128, 1e9) == pytest.approx(d.cal.gemm.fallback)


def test_overlap_norm_between_max_and_sum():
    from simulator.roofline import combine

    assert combine(3.0, 4.0, float("inf")) == 4.0
    assert combine(3.0, 4.0, 1.0) == pytest.approx(7.0)
    assert combine(3.0, 4.0, 2.0) == pytest.approx(5.0)
