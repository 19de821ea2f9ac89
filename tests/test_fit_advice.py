"""Does-not-fit advice (simulator.fit_advice): the smallest change that fits, computed with the real
memory plan, checked by hand arithmetic on a toy model and device and by probing one step smaller."""

from dataclasses import replace

import pytest
import yaml

from simulator.catalog import load_model_spec
from simulator.closed_form import whatif
from simulator.fit_advice import advise, largest, smallest
from simulator.memory import memory_plan
from simulator.phases import Layout, check_layout
from simulator.precision import resolve_precision
from simulator.step import device

# A dense model of round shapes: per layer q, o 8192 x 8192, k, v 8192 x 1024, gated MLP 3 x 8192 x
# 24,576 = 754,974,720 parameters; 40 layers = 30.2 B, 60.4 GB in bf16 (embeddings 33.6 MB more).
# KV per token: 2 x 8 heads x 128 x 2 B x 40 layers = 163,840 B (split by TP up to 8).
TOY_MODEL = {"id": "toy-30b", "name": "Toy 30B", "hidden_size": 8192, "num_layers": 40, "num_heads": 64,
             "num_kv_heads": 8, "intermediate_size": 24576, "vocab_size": 1024}
WEIGHTS = 40 * 754_974_720 * 2 + 2 * 1024 * 8192 * 2 + (2 * 40 + 1) * 8192 * 2  # bytes, TP1
KV_PER_TOKEN = 163_840
# Prefill activations per token: residual + normed input (2 x 8192) and the gated MLP's 3 x 24,576 / tp, 2 B each.
ACT_PER_TOKEN = {tp: (2 * 8192 + 3 * 24576 / tp) * 2 for tp in (1, 2, 4, 8)}
USABLE = 0.9 * 100e9  # the toy device: 100 GB, 90% usable
BATCH, INPUT, OUTPUT = 4, 99_999, 1  # context 100,000 tokens


@pytest.fixture
def toy_model_path(tmp_path):
    path = tmp_path / "toy-model.yaml"
    path.write_text(yaml.safe_dump(TOY_MODEL))
    return str(path)


def _hw(tmp_path, toy_hw_path, **memory):
    """The toy device of conftest, with its scale-up domain and memory tiers changed."""
    spec = yaml.safe_load(open(toy_hw_path).read())
    domain = memory.pop("domain", 8)
    spec["links"]["scaleup"]["domain_size"] = domain
    spec["memory"].update(memory)
    path = tmp_path / f"toy-{domain}-{len(memory)}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _need(tp: int, cp: int = 1, batch: int = BATCH, kv_bytes: float = 2.0) -> float:
    """Bytes per device by hand: weights / tp, KV / (tp cp), activations of the batch's prefill / cp."""
    tokens = batch * INPUT / cp
    kv = batch * (INPUT + OUTPUT) * KV_PER_TOKEN * kv_bytes / 2 / (tp * cp)
    return WEIGHTS / tp + kv + tokens * ACT_PER_TOKEN[tp]


def test_hand_arithmetic_of_the_toy_need(toy_model_path, toy_hw_path):
    r = whatif(model=toy_model_path, hw=toy_hw_path, batch=BATCH, input_len=INPUT, output_len=OUTPUT)
    assert r.weights_bytes == WEIGHTS
    assert r.kv_cache_bytes == BATCH * (INPUT + OUTPUT) * KV_PER_TOKEN
    assert r.weights_bytes + r.kv_cache_bytes + r.activation_bytes == pytest.approx(_need(1), rel=1e-4)
    assert not r.fits and _need(1) > USABLE


def test_the_advised_tp_is_the_smallest_that_fits(toy_model_path, toy_hw_path):
    # TP2 needs 30.2 + 32.8 + 42.6 = 105.6 GB > 90; TP4 needs 15.1 + 16.4 + 27.9 = 59.3 GB
    assert _need(2) > USABLE > _need(4)
    r = whatif(model=toy_model_path, hw=toy_hw_path, batch=BATCH, input_len=INPUT, output_len=OUTPUT)
    first = r.advice["fits_with"]
    assert first["change"] == {"tp": 4} and first["devices"] == 4
    assert first["needed_bytes_per_device"] == pytest.approx(_need(4), rel=1e-3)
    assert "fits with --tp 4 (4 devices, " in r.message
    no = whatif(model=toy_model_path, hw=toy_hw_path, tp=2, batch=BATCH, input_len=INPUT, output_len=OUTPUT)
    assert not no.fits  # one TP degree less does not fit
    assert "more than" not in r.message and "e+" not in r.message  # every number human-formatted


def test_beyond_the_scale_up_domain_the_advice_is_the_smallest_cp(tmp_path, toy_model_path, toy_hw_path):
    # domain of 2: TP2 (105.6 GB) is the widest and does not fit; CP shards KV and activations:
    # 60.4 + 137.5 / cp <= 90 from cp = 5 (87.9 GB); cp = 4 needs 94.8 GB
    hw = _hw(tmp_path, toy_hw_path, domain=2)
    assert _need(1, cp=4) > USABLE > _need(1, cp=5)
    r = whatif(model=toy_model_path, hw=hw, batch=BATCH, input_len=INPUT, output_len=OUTPUT)
    assert r.advice["fits_with"]["change"] == {"cp": 5}
    assert r.advice["fits_with"]["needed_bytes_per_device"] == pytest.approx(_need(1, cp=5), rel=1e-3)
    # on one device: one request needs 60.4 + 16.4 + 18.0 = 94.8 GB, with a one-byte KV 86.6 GB
    assert _need(1, batch=1) > USABLE > _need(1, batch=1, kv_bytes=1)
    one = [o for o in r.advice["options"] if o["devices"] == 1]
    assert [o["change"] for o in one] == [{"kv_dtype": "fp8", "batch": 1}]
    assert "fits with --cp 5 (5 devices, " in r.message and ", or --kv-dtype fp8 --batch 1 (1 device, " in r.message


def test_host_offload_holds_the_kv_over_capacity(tmp_path, toy_model_path, toy_hw_path):
    hw = _hw(tmp_path, toy_hw_path, domain=1, host={"capacity": "500 GB", "bandwidth": "50 GB/s", "source": "hand"})
    r = whatif(model=toy_model_path, hw=hw, batch=1, input_len=INPUT, output_len=OUTPUT)
    offload = next(o for o in r.advice["options"] if "kv_offload" in o["change"])
    assert offload["host_kv_bytes"] == pytest.approx(_need(1, batch=1) - USABLE, rel=1e-3)  # 4.8 GB
    assert offload["change"]["kv_offload"] == "host:5GiB" and offload["devices"] == 1
    assert offload["command"] == "simulate"  # whatif has no --kv-offload: the serving simulator models the tier
    assert all(o["command"] == "whatif" for o in r.advice["options"] if o is not offload)
    # before it in the order: CP2 (60.4 + 34.4 / 2 = 77.6 GB), and on one device a one-byte KV
    # (60.4 + 8.2 + 18.0 = 86.6 GB), which the message names beside it
    assert [o["change"] for o in r.advice["options"]] == [{"cp": 2}, {"kv_dtype": "fp8"}, offload["change"], {"pp": 2}]
    assert r.advice["options"][1]["needed_bytes_per_device"] == pytest.approx(_need(1, batch=1, kv_bytes=1), rel=1e-3)
    assert "fits with --cp 2 (2 devices, " in r.message and ", or --kv-dtype fp8 (1 device, " in r.message


def test_weights_too_big_for_any_layout_say_so(tmp_path, toy_model_path, toy_hw_path):
    # 100 MB x 0.9: the weights over TP8 x PP40 are 60.4 GB / 320 = 189 MB (+ norms and embeddings)
    hw = _hw(tmp_path, toy_hw_path, device={"capacity": "100 MB", "bandwidth": "1 TB/s", "source": "hand"})
    r = whatif(model=toy_model_path, hw=hw, input_len=100, output_len=10)
    assert r.advice["options"] == [] and r.advice["fits_with"] is None
    assert "the weights alone need" in r.message and "--tp 8 --pp 40" in r.message and "MiB" in r.message


CASES = [
    dict(model="llama-3.1-70b", hw="h100-sxm", tp=4, batch=8, input_len=131072, output_len=1024),
    dict(model="llama-3.1-70b", hw="h100-sxm", tp=2, batch=4, input_len=8192, output_len=512),
    dict(model="llama-3.1-405b", hw="h100-sxm", tp=8, input_len=1024, output_len=64),
    dict(model="deepseek-v3", hw="h200-sxm", tp=8, dtype="fp8", batch=64, input_len=32768, output_len=512),
    dict(model="llama-3.1-70b", hw="h100-sxm", tp=8, cp=2, cp_kind="ulysses", batch=16, input_len=65536, output_len=64),
    dict(model="llama-3.1-8b", hw="t4", batch=4, input_len=32768, output_len=64),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['model']}-{c['hw']}-tp{c.get('tp', 1)}-b{c.get('batch', 1)}")
def test_every_option_fits_and_one_step_less_does_not(case):
    r = whatif(**case)
    assert not r.fits and r.advice["options"]
    m, dev = load_model_spec(case["model"]), device(case["hw"])
    prec = resolve_precision(dev.spec, case.get("dtype", "bf16"))
    base = Layout(case.get("tp", 1), 1, case.get("cp", 1), 1, 1.0, case.get("cp_kind", "ring"))

    def fits(layout=base, kv=None, batch=r.batch):
        p = replace(prec, kv=kv) if kv else prec
        return memory_plan(m, dev, layout, p, batch, r.input_len + r.output_len, batch * r.input_len).fits

    for opt in r.advice["options"]:
        ch = opt["change"]
        if "kv_offload" in ch:
            continue
        lay = replace(base, **{k: v for k, v in ch.items() if k in ("tp", "pp", "cp")})
        assert fits(lay, ch.get("kv_dtype"), ch.get("batch", r.batch)), ch
        if set(ch) == {"tp"}:  # no valid TP degree between the asked and the advised fits
            for t in range(base.tp + 1, ch["tp"]):
                lay_t = replace(base, tp=t)
                try:
                    check_layout(m, lay_t)
                except ValueError:
                    continue
                assert not fits(lay_t), t
        if set(ch) == {"cp"} and base.cp_kind == "ring":
            assert ch["cp"] == base.cp + 1 or not fits(replace(base, cp=ch["cp"] - 1))
        if "batch" in ch and set(ch) <= {"batch", "kv_dtype"}:  # the largest batch that fits
            assert not fits(base, ch.get("kv_dtype"), ch["batch"] + 1)


def test_bisection_helpers_find_the_edges():
    assert smallest(1, 100, lambda x: x >= 37) == 37 and smallest(1, 100, lambda x: x > 100) is None
    assert largest(1, 100, lambda x: x <= 37) == 37 and largest(1, 100, lambda x: x < 1) is None
    assert smallest(5, 4, lambda x: True) is None and largest(1, 1, lambda x: True) == 1


def test_advise_runs_only_on_a_non_fit_and_is_fast():
    import time

    m, dev = load_model_spec("llama-3.1-70b"), device("h100-sxm")
    prec = resolve_precision(dev.spec, "bf16")
    t = time.perf_counter()
    a = advise(m, dev, Layout(4), prec, 8, 131072, 1024)
    assert time.perf_counter() - t < 0.5 and a.options
    assert whatif(model="llama-3.1-8b", hw="h200-sxm", input_len=1024, output_len=8).advice is None
