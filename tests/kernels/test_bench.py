import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from kernels import bench, gemm  # noqa: E402


def test_time_kernel_on_cpu_is_positive():
    x = torch.randn(64, 64)
    assert 0 < bench.time_kernel(lambda: x @ x, "cpu", min_run_time=0.01) < 1


def test_benchmarks_report_rates_from_the_analytic_counts(capsys):
    """On CPU the torch references are timed; the rates are flops/bytes over the time."""
    row = bench.benchmark_gemm(8, 32, 48, device="cpu", min_run_time=0.01)
    assert row["impl"] == "torch-reference" and row["flops"] == gemm.flops(8, 32, 48)
    assert row["tflops"] == pytest.approx(row["flops"] / row["seconds"] / 1e12)
    assert row["gbps"] == pytest.approx(gemm.bytes(8, 32, 48) / row["seconds"] / 1e9)
    assert "gemm M=8 N=32 K=48" in capsys.readouterr().out
    kw = {"device": "cpu", "min_run_time": 0.01, "quiet": True}
    rows = [bench.benchmark_attention_prefill(1, 4, 2, 8, 16, 16, **kw),
            bench.benchmark_attention_decode([5, 9], 4, 2, 16, block_size=4, **kw),
            bench.benchmark_kv_copy(2, (4, 2, 16), **kw),
            bench.benchmark_rmsnorm(4, 32, **kw),
            bench.benchmark_silu_and_mul(4, 32, **kw)]
    assert all(r["seconds"] > 0 and r["gbps"] > 0 for r in rows)
