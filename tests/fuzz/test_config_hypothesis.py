"""Generated config files: a hardware or model spec with random keys changed to junk, or random
bytes, is either refused with InfercastError or loads as a spec whose numbers are finite and
positive -- never another exception. A valid random device answers a what-if whose TTFT is > 0 and
whose decode is no faster than reading the weights once per token at the memory bandwidth allows,
whose prefill is no faster than its FLOP/s allow, and which is the same on a second run."""

from __future__ import annotations

import copy
import itertools
import json
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.catalog import load_hardware, load_model_spec
from simulator.errors import InfercastError
from simulator.layers import param_count
from simulator.limits import MAX_QUANTITY
from simulator.modelspec import ModelSpec
from tests.conftest import TOY_HW
from tests.fuzz.harness import run_cli, strict_json
from tests.fuzz.test_config_corpus import TOY_MODEL

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
_names = itertools.count()  # loaders cache by path: every generated file gets its own name

JUNK = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 0.0, -0.0, 1.5, 10**30, -10**30, 10**400, 1e300, -1e300,
                     math.inf, -math.inf, math.nan, "", " ", "abc", "1e300 GiB", "-5 GB", "inf", "nan",
                     "1 TB/s", "100 TFLOP/s", "4096", "true", "0x10", "\n", "\x7f", [], {}, [[[{}]]],
                     {"a": {"b": [1, 2]}}, [1, "two", None]]),
    st.integers(), st.floats(), st.text(max_size=12),
).map(copy.deepcopy)  # a later change may descend into a drawn dict: never into the shared constant


def paths(tree: dict, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a nested dict (branches and leaves)."""
    out = []
    for key, value in tree.items():
        out.append(prefix + (key,))
        if isinstance(value, dict):
            out += paths(value, prefix + (key,))
    return out


@st.composite
def mutations(draw, base: dict) -> dict:
    """`base` with 1-3 changes: a key set to junk, removed, or an unknown key added."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        options = paths(data)
        if not options:
            break
        *parents, last = draw(st.sampled_from(options))
        node = data
        for part in parents:
            node = node[part]
        action = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
        if action == "delete":
            del node[last]
        elif action == "add":
            node[f"extra_{draw(st.integers(0, 9))}"] = draw(JUNK)
        else:
            node[last] = draw(JUNK)
    return data


def write(tmp_path, suffix: str, content) -> str:
    path = tmp_path / f"gen{next(_names)}{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(yaml.safe_dump(content) if suffix == ".yaml" else json.dumps(content))
    return str(path)


def positive_finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@FUZZ
@given(data=mutations(TOY_HW))
def test_mutated_hardware_is_refused_or_sane(tmp_path, data):
    try:
        spec = load_hardware(write(tmp_path, ".yaml", data))
    except InfercastError as exc:
        assert "\n" not in str(exc)
        return
    tiers = [t for t in (spec.memory.device, spec.memory.host, spec.memory.nvme) if t is not None]
    rates = [r for e in spec.engines.values() for r in (*e.peak.values(), *e.measured_matmul.values())]
    numbers = [t.capacity for t in tiers] + [t.bandwidth for t in tiers] + rates
    numbers += [link.bandwidth_per_dir for link in (spec.links.scaleup, spec.links.host, spec.links.scaleout) if link]
    numbers += [spec.power.tdp] if spec.power else []
    numbers += [p for p in (spec.price.cloud_usd_per_hour, spec.price.purchase_usd) if p] if spec.price else []
    assert rates and all(positive_finite(x) for x in numbers), numbers
    assert spec.memory.device.capacity <= MAX_QUANTITY["bytes"]


def assert_sane_model(spec: ModelSpec) -> None:
    dims = [spec.hidden_size, spec.num_layers, spec.num_heads, spec.num_kv_heads, spec.intermediate_size,
            spec.vocab_size, spec.head_size]
    assert all(type(d) is int and d > 0 for d in dims), dims
    assert spec.num_heads % spec.num_kv_heads == 0
    assert 0 < param_count(spec) < 2**63


@FUZZ
@given(data=mutations(TOY_MODEL))
def test_mutated_model_is_refused_or_sane_and_answers(tmp_path, data):
    path = write(tmp_path, ".yaml", data)
    try:
        spec = load_model_spec(path)
    except InfercastError as exc:
        assert "\n" not in str(exc)
        return
    assert_sane_model(spec)
    out = run_cli(["whatif", "--format", "json", "--hw", "h100-sxm", "--model", path, "--input-len", "256",
                   "--output-len", "4"])
    assert out.kind in ("ok", "error"), (data, out.kind, out.err[-2000:])


HF_BASE = {"model_type": "llama", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 16,
           "num_key_value_heads": 4, "intermediate_size": 4096, "vocab_size": 32000,
           "max_position_embeddings": 8192, "tie_word_embeddings": False}


@FUZZ
@given(data=mutations(HF_BASE))
def test_mutated_config_json_is_refused_or_sane(tmp_path, data):
    try:
        spec = load_model_spec(write(tmp_path, ".json", data))
    except InfercastError as exc:
        assert "\n" not in str(exc)
        return
    assert_sane_model(spec)


@FUZZ
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
       suffix=st.sampled_from([".yaml", ".json"]))
def test_random_bytes_are_refused(tmp_path, content, suffix):
    path = write(tmp_path, suffix, content)
    loader = load_hardware if suffix == ".yaml" else load_model_spec
    try:
        loader(path)
    except InfercastError as exc:
        assert "\n" not in str(exc)
    else:
        raise AssertionError(f"{content!r} loaded as a spec")


@st.composite
def devices(draw) -> dict:
    """TOY_HW with random but physical bandwidth, bf16 rate and capacity (an 8B model fits)."""
    data = copy.deepcopy(TOY_HW)
    data["memory"]["device"]["bandwidth"] = f"{draw(st.floats(10, 20_000)):.6g} GB/s"
    data["engines"]["gpu"]["peak"] = {"bf16": f"{draw(st.floats(1, 5_000)):.6g} TFLOP/s"}
    data["memory"]["device"]["capacity"] = f"{draw(st.floats(40, 2_000)):.6g} GiB"
    data["engines"]["gpu"]["compute_units"] = draw(st.integers(1, 1000))
    return data


@FUZZ
@given(data=devices(), input_len=st.integers(16, 4096), batch=st.integers(1, 4))
def test_valid_device_answers_within_its_bounds(tmp_path, data, input_len, batch):
    path = write(tmp_path, ".yaml", data)
    argv = ["whatif", "--format", "json", "--hw", path, "--model", "llama-3.1-8b", "--input-len", str(input_len),
            "--output-len", "4", "--batch", str(batch)]
    out = run_cli(argv)
    assert out.kind == "ok", out.err
    res = strict_json(out.out)
    assert res["fits"] is True and res["ttft_s"] > 0
    spec, model = load_hardware(path), load_model_spec("llama-3.1-8b")
    # each decode step reads every weight at least once (one device: TP1 PP1)
    assert res["tpot_s"] >= res["weights_bytes"] / spec.memory.device.bandwidth * (1 - 1e-9)
    # each prompt token costs at least 2 FLOPs per weight of the layers (embedding and LM head aside)
    layer_params = param_count(model) - 2 * model.vocab_size * model.hidden_size
    assert res["prefill_tok_s"] <= max(spec.engine.peak.values()) / (2 * layer_params) * (1 + 1e-9)
    assert run_cli(argv).out == out.out  # the same input gives byte-identical JSON
