"""`infercast calibrate` on this CPU with a tiny sweep: CSV with provenance, resuming, the profile
written where the `local` device finds it; and `infercast validate kernels`."""

import pytest

from simulator.cli import run


def test_a_tiny_sweep_measures_resumes_and_fits(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from validate import calibrate_cpu
    from validate.calibrate_cli import fit_and_write
    from validate.kernel_fit import read_csv

    tiny = [{"op": "gemm", "dtype": "fp32", "m": m, "n": 64, "k": 64} for m in (1, 8, 64)] + \
           [{"op": "copy", "dtype": "fp32", "elems": e} for e in (1024, 4096, 16384)]
    full = [{c: r.get(c, 0) for c in calibrate_cpu.COLUMNS[:12]} for r in tiny]
    monkeypatch.setattr(calibrate_cpu, "shapes", lambda quick: full)
    path = tmp_path / "run" / "kernels.csv"
    assert calibrate_cpu.measure(path, quick=True, budget_s=0.005, rounds=2) == 12  # 6 shapes x 2 rounds
    assert calibrate_cpu.measure(path, quick=True, budget_s=0.005, rounds=2) == 0  # everything already measured
    assert calibrate_cpu.raw_path(path).exists()
    data = read_csv(path)
    assert len(data.rows) == 6 and {"device", "torch", "date", "method", "rounds"} <= set(data.provenance)
    assert all(r["time_s"] > 0 and r["bytes"] > 0 for r in data.rows)
    assert data.rows[1]["flops"] == 2.0 * 8 * 64 * 64  # hand arithmetic: 2 M N K
    dest = tmp_path / "home" / "local.yaml"
    written, held = fit_and_write(path, dest)
    assert written == dest and dest.exists() and held["points"] >= 1


def test_calibrate_refuses_cuda_without_a_gpu(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert run(["calibrate", "--device", "cuda"]) == 2
    assert "--device cuda" in capsys.readouterr().err


def test_validate_kernels_prints_held_out_and_published_side_by_side(capsys):
    assert run(["validate", "kernels"]) == 0
    out = capsys.readouterr().out
    assert "Held-out kernel error" in out and "uncalibrated against calibrated" in out
    assert "median |error|: uncalibrated" in out
