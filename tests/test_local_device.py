from simulator.catalog import load_hardware
from simulator.closed_form import whatif


def test_local_device_is_detected():
    spec = load_hardware("local")
    assert spec.id == "local" and spec.kind == "cpu"
    assert spec.engine.peak["fp32"] > 1e9  # any CPU of this decade exceeds 1 GFLOP/s
    assert spec.memory.device.capacity > 2**30
    assert spec.engine.compute_units >= 1


def test_whatif_on_local_small_model(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("id: tiny\nname: tiny\nhidden_size: 256\nnum_layers: 4\nnum_heads: 4\nnum_kv_heads: 2\n"
                    "intermediate_size: 512\nvocab_size: 1000\n")
    r = whatif(model=str(path), hw="local", input_len=256, output_len=16)
    assert r.fits and r.ttft_s > 0 and r.usd_per_hour is None
