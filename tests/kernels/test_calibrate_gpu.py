"""The GPU calibration sweep, run here on a CPU: the Triton kernels under the interpreter on tiny
shapes, a stand-in timer (do_bench needs CUDA), the kernel table and a fitted profile for a
shipped GPU spec."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

from simulator.catalog import load_hardware  # noqa: E402
from validate import calibrate_gpu  # noqa: E402
from validate.calibrate_cli import fit_and_write  # noqa: E402
from validate.kernel_fit import COLUMNS, read_csv  # noqa: E402

TINY = [{"op": "gemm", "dtype": "bf16", "m": m, "n": 64, "k": 32} for m in (1, 16, 64)] + [
    {"op": "attention_prefill", "dtype": "bf16", "batch": 1, "heads": 2, "kv_heads": 1, "q_len": 32, "kv_len": 32,
     "head_dim": 16},
    {"op": "attention_decode", "dtype": "bf16", "batch": 2, "heads": 2, "kv_heads": 1, "q_len": 1, "kv_len": 40,
     "head_dim": 16},
    {"op": "copy", "dtype": "bf16", "elems": 4 * 16 * 8 * 128, "batch": 4},
    {"op": "rmsnorm", "dtype": "bf16", "elems": 4 * 64, "n": 64},
    {"op": "silu_mul", "dtype": "bf16", "elems": 4 * 64, "n": 64},
]


def test_the_gpu_sweep_runs_each_kernel_and_writes_a_table_the_fit_reads(tmp_path, monkeypatch, device):
    if device == "cuda":
        pytest.skip("on a GPU the real sweep runs (infercast calibrate --device cuda)")
    rows = [{c: r.get(c, 0) for c in COLUMNS[:12]} for r in TINY]
    monkeypatch.setattr(calibrate_gpu, "shapes", lambda quick, fp8=False: rows)
    ran = []

    def timer(fn, job):  # runs the kernel once; a made-up roofline time stands in for do_bench
        fn()
        ran.append(job.key)
        return 1e-5 + 1e-6 * len(ran), 1.0

    path = tmp_path / "kernels.csv"
    prov = {"device": "interpreter", "date": "2026-12-02", "method": "test"}
    assert calibrate_gpu.measure(path, device="cpu", timer=timer, prov=prov) == len(TINY)
    assert len(ran) == len(TINY)
    assert calibrate_gpu.measure(path, device="cpu", timer=timer, prov=prov) == 0  # resumes: nothing left
    table = read_csv(path)
    assert len(table.rows) == len(TINY) and table.provenance["device"] == "interpreter"
    gemm = table.rows[1]
    assert gemm["flops"] == 2 * 16 * 64 * 32  # 2 M N K
    assert gemm["bytes"] == 2 * (16 * 32 + 32 * 64 + 16 * 64)  # bf16 A, B, C once each
    dec = table.rows[4]
    assert dec["bytes"] == 2 * 16 * (2 * 2 * 2 + 2 * 1 * 2 * 40)  # q and o per head, K and V per cached token
    dest = tmp_path / "h200-sxm.yaml"
    written, held = fit_and_write(path, dest, load_hardware("h200-sxm"), "h200-sxm")
    assert written == dest and "device: h200-sxm" in dest.read_text() and held["points"] >= 1


@pytest.mark.parametrize("name,hw", [("NVIDIA H200", "h200-sxm"), ("NVIDIA H100 80GB HBM3", "h100-sxm"),
                                     ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA A100-SXM4-40GB", "a100-40gb-sxm"),
                                     ("NVIDIA A100-SXM4-80GB", "a100-80gb-sxm"), ("NVIDIA L40S", "l40s"),
                                     ("Tesla T4", "t4"), ("NVIDIA GeForce GTX 1080", None)])
def test_a_gpu_name_maps_to_its_shipped_hwspec(name, hw):
    assert calibrate_gpu.hw_id(name) == hw
    if hw is not None:
        assert load_hardware(hw).id == hw
