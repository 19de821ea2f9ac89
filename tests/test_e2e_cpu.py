"""The end-to-end CPU check: the torch Llama decoder, its ModelSpec, and a tiny run of validate e2e.
Where the CLI writes (never over a run, never into the package) and resuming through the CLI:
tests/fuzz/test_validate_corpus.py, with a stand-in timer."""

import math

import pytest

torch = pytest.importorskip("torch")

from simulator.cli import run as cli_run  # noqa: E402
from simulator.layers import param_count  # noqa: E402
from validate.e2e_cpu import Point, run  # noqa: E402
from validate.e2e_report import COLUMNS, read_csv  # noqa: E402
from validate.torch_llama import PRESETS, TorchLlama, preset, to_model_spec  # noqa: E402

TINY = preset("tiny")
TINY_KERNELS = [{"op": "gemm", "dtype": "fp32", "m": m, "n": 64, "k": 64} for m in (1, 8, 64)] + \
               [{"op": "copy", "dtype": "fp32", "elems": e} for e in (1024, 4096, 16384)]


@pytest.fixture(autouse=True)
def small_sweep(monkeypatch):
    """The calibration kernels timed with the model: six small shapes, two rounds."""
    from validate import calibrate_cpu

    rows = [{c: r.get(c, 0) for c in calibrate_cpu.COLUMNS[:12]} for r in TINY_KERNELS]
    monkeypatch.setattr(calibrate_cpu, "shapes", lambda quick: rows)
    monkeypatch.setattr(calibrate_cpu, "ROUNDS", {"full": 2, "quick": 2})


@pytest.mark.parametrize("tie", [True, False])
def test_prefill_then_decode_matches_a_full_forward(tie):
    cfg = TINY.with_(tie_embeddings=tie, max_context=64)
    model = TorchLlama(cfg, seed=3).eval()
    tokens = torch.randint(0, cfg.vocab_size, (3, 24), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = model(tokens)  # [3, 24, vocab], no cache reuse
        last = model.prefill(tokens[:, :16])
        assert model.pos == 16
        torch.testing.assert_close(last, full[:, 15], rtol=1e-4, atol=1e-5)
        for i in range(16, 24):
            torch.testing.assert_close(model.decode_step(tokens[:, i]), full[:, i], rtol=1e-4, atol=1e-5)
        # a chunk after cached tokens (explicit causal mask with an offset)
        model.prefill(tokens[:, :10])
        torch.testing.assert_close(model.prefill(tokens[:, 10:20], allocate=False), full[:, 19], rtol=1e-4, atol=1e-5)
    assert full.abs().max() > 0.01  # not trivially zero


def test_decode_at_a_set_position_attends_to_the_whole_context():
    model = TorchLlama(TINY.with_(max_context=32)).eval()
    with torch.inference_mode():
        model.allocate_cache(2, 32, fill=0.01)
        model.set_position(31)
        model.decode_step(torch.zeros(2, dtype=torch.long))
    assert model.pos == 32
    with pytest.raises(ValueError):
        model.set_position(32)


@pytest.mark.parametrize("name", ["tiny", "100m", "300m", "1b"])
def test_model_spec_has_the_torch_module_parameter_count(name):
    cfg = PRESETS[name]
    spec = to_model_spec(cfg)
    assert spec.num_kv_heads == cfg.num_kv_heads and spec.head_size == cfg.head_dim
    if name in ("tiny", "100m"):  # build the module (the big ones: count from the shapes)
        assert param_count(spec) == TorchLlama(cfg).num_params()
    else:
        d, L, ff, V = cfg.hidden_size, cfg.num_layers, cfg.intermediate_size, cfg.vocab_size
        qkv = d * (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.head_dim
        per_layer = qkv + cfg.num_heads * cfg.head_dim * d + 3 * d * ff + 2 * d
        assert param_count(spec) == L * per_layer + d + V * d * (1 if cfg.tie_embeddings else 2)


def test_tiny_end_to_end_run_writes_a_csv_with_finite_predictions(tmp_path):
    out = tmp_path / "e2e.csv"
    points = {"tiny": [Point("prefill", 1, 32), Point("decode", 2, 64)]}
    path, rows = run(out=out, points=points, log=lambda s: None)
    assert path == out and len(rows) == 2
    prov, read = read_csv(out)
    assert {"cpu", "cores", "torch", "date", "calibrated", "threads"} <= set(prov)
    assert prov["calibrated"] in ("true", "false")
    assert list(read[0]) == COLUMNS
    for r in read:
        assert r["measured_s"] > 0 and math.isfinite(r["predicted_s"]) and r["predicted_s"] > 0
        assert math.isclose(r["rel_error"], r["predicted_s"] / r["measured_s"] - 1, rel_tol=1e-4, abs_tol=1e-5)
    # resume keeps the measurement and redoes the prediction
    path2, rows2 = run(out=out, points=points, resume=True, log=lambda s: None)
    assert path2 == out and [r["measured_s"] for r in rows2] == pytest.approx([r["measured_s"] for r in read], rel=1e-5)
    # the kernels were timed in the same rounds, and the profile fitted to them predicts the points
    assert (tmp_path / "e2e-kernels.csv").exists() and (tmp_path / "e2e-calibration.yaml").exists()
    assert all(r["rounds"] == 2 for r in read) and prov["rounds"] == "2"


@pytest.mark.parametrize("extra,flag", [(["--models", "7b"], "--models"), (["--threads", "-1"], "--threads"),
                                        (["--force", "--resume"], "--force"), (["--dtype", "int4"], "--dtype")])
def test_bad_input_is_a_one_line_error(tmp_path, capsys, extra, flag):
    args = ["validate", "e2e", "--quick", "--models", "tiny", "--out", str(tmp_path / "run"), "--no-report"]
    assert cli_run(args + extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err


def test_report_writes_png_and_markdown(tmp_path):
    from validate.e2e_report import make_report

    out = tmp_path / "e2e.csv"
    run(out=out, points={"tiny": [Point("prefill", 1, 16), Point("decode", 1, 32)]}, log=lambda s: None)
    png, md = make_report(out)
    assert png.exists() and png.stat().st_size > 1000
    text = md.read_text()
    assert "| prefill |" in text and "| decode |" in text and "e2e.png" in text
