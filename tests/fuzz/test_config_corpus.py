"""Hand-written config-file mistakes through the CLI: a hardware YAML (`whatif --hw FILE`), a model
YAML or a HuggingFace config.json (`whatif --model FILE`), and odd --hw / --model references.

Each case is one class of mistake, made by changing one key of a valid file (conftest's TOY_HW,
TOY_MODEL below, a Llama config.json) or by writing a file that is no config at all. Every one must
be refused in one line (exit 2) that names the file (or flag) and the key; the "ok" cases (units,
ints for floats) must answer with strict JSON whose latencies are finite and positive."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from simulator.limits import MAX_CONFIG_BYTES
from tests.conftest import TOY_HW
from tests.fuzz.harness import Case, run_case

# A small Llama-shaped model: round numbers, fits TOY_HW many times over.
TOY_MODEL = {
    "id": "toy-llama", "name": "Toy Llama", "hidden_size": 1024, "num_layers": 4, "num_heads": 16,
    "num_kv_heads": 4, "intermediate_size": 4096, "vocab_size": 32000, "max_context": 8192,
}
LLAMA_CONFIG = {
    "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072,
}
DELETE = object()  # a mutation value: remove the key
WHATIF = ["whatif", "--format", "json", "--input-len", "512", "--output-len", "8"]



def mutated(base: dict, key: str, value: Any) -> dict:
    """`base` with the dotted `key` set to `value` (DELETE removes it)."""
    data = copy.deepcopy(base)
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


def write_yaml(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def hw(name: str, key: str, value: Any, needle: str | None = None) -> Case:
    """TOY_HW with one key changed, as --hw; the line must name the file and `needle` (the key)."""
    def build(tmp_path: Path) -> list[str]:
        return WHATIF + ["--model", "llama-3.1-8b", "--hw", write_yaml(tmp_path, name, mutated(TOY_HW, key, value))]
    return Case(f"hw-{name}", build, "error", (f"{name}.yaml", needle or key))


def model(name: str, key: str, value: Any, needle: str | None = None) -> Case:
    """TOY_MODEL with one key changed, as --model."""
    def build(tmp_path: Path) -> list[str]:
        return WHATIF + ["--hw", "h100-sxm", "--model", write_yaml(tmp_path, name, mutated(TOY_MODEL, key, value))]
    return Case(f"model-{name}", build, "error", (f"{name}.yaml", needle or key))


def hf(name: str, key: str, value: Any, needle: str | None = None) -> Case:
    """A Llama config.json with one key changed, given by its folder as --model."""
    def build(tmp_path: Path) -> list[str]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(mutated(LLAMA_CONFIG, key, value)))
        return WHATIF + ["--hw", "h100-sxm", "--model", str(folder)]
    return Case(f"hf-{name}", build, "error", ("config.json", needle or key))


def raw(name: str, content: bytes | str, flag: str = "--hw", suffix: str = ".yaml", needle: str = "") -> Case:
    """A file holding `content` (no config at all), as `flag`."""
    def build(tmp_path: Path) -> list[str]:
        path = tmp_path / f"{name}{suffix}"
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        other = ["--model", "llama-3.1-8b"] if flag == "--hw" else ["--hw", "h100-sxm"]
        return WHATIF + other + [flag, str(path)]
    return Case(f"raw-{name}", build, "error", tuple(n for n in (f"{name}{suffix}", needle) if n))


def ref(name: str, flag: str, given: str | Callable[[Path], str], needle: str) -> Case:
    """An odd reference (not a config file) given as `flag`."""
    def build(tmp_path: Path) -> list[str]:
        value = given(tmp_path) if callable(given) else given
        other = ["--model", "llama-3.1-8b"] if flag == "--hw" else ["--hw", "h100-sxm"]
        return WHATIF + other + [flag, value]
    return Case(f"ref-{name}", build, "error", (needle,))


def ok(name: str, flag: str, base: dict, key: str | None = None, value: Any = None) -> Case:
    """A valid variant (units, ints for floats) that must answer."""
    def build(tmp_path: Path) -> list[str]:
        data = mutated(base, key, value) if key else base
        if base is LLAMA_CONFIG:
            path = tmp_path / "config.json"
            path.write_text(json.dumps(data))
            return WHATIF + ["--hw", "h100-sxm", "--model", str(path)]
        other = ["--model", "llama-3.1-8b"] if flag == "--hw" else ["--hw", "h100-sxm"]
        return WHATIF + other + [flag, write_yaml(tmp_path, name, data)]
    return Case(f"ok-{name}", build, "ok")


def fifo(tmp_path: Path) -> str:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return str(path)


def oversized(tmp_path: Path) -> str:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.write(b"id: toy\n")
        f.truncate(MAX_CONFIG_BYTES + 1)  # sparse: a NUL tail, but the size check comes first
    return str(path)


CAP, BW, BF16 = "memory.device.capacity", "memory.device.bandwidth", "engines.gpu.peak.bf16"
CASES = [
    # quantities: overflow, non-finite, sign, unit, type
    hw("cap-overflow", CAP, "1e300 GiB"),
    hw("cap-inf", CAP, math.inf),
    hw("cap-negative", CAP, "-80 GB"),
    hw("cap-zero", CAP, 0),
    hw("cap-wrong-unit", CAP, "100 GB/s"),
    hw("cap-word", CAP, "lots"),
    hw("cap-bool", CAP, True),
    hw("cap-huge-int", CAP, 10**400),
    hw("cap-over-ceiling", CAP, "2 EiB"),
    hw("bw-nan", BW, math.nan),
    hw("bw-wrong-unit", BW, "1 TB"),
    hw("bw-over-ceiling", BW, "2 EB/s"),
    hw("bf16-inf", BF16, math.inf),
    hw("bf16-zero", BF16, 0),
    hw("bf16-negative", BF16, "-5 TFLOP/s"),
    hw("link-inf", "links.scaleup.bandwidth_per_dir", math.inf),
    hw("tdp-zero", "power.tdp", "0 W"),
    hw("tdp-wrong-unit", "power.tdp", "500 V"),
    hw("idle-above-tdp", "power.idle", "600 W", "idle"),
    # whole numbers
    hw("units-bool", "engines.gpu.compute_units", True),
    hw("units-fraction", "engines.gpu.compute_units", 1.5),
    hw("units-string", "engines.gpu.compute_units", "100"),
    hw("units-huge", "engines.gpu.compute_units", 10**7),
    hw("domain-zero", "links.scaleup.domain_size", 0),
    hw("domain-huge", "links.scaleup.domain_size", 10**9),
    # money and flags
    hw("price-inf", "price.cloud_usd_per_hour", math.inf),
    hw("price-negative", "price.cloud_usd_per_hour", -1),
    hw("price-string", "price.cloud_usd_per_hour", "3.6"),
    hw("estimate-string", "price.estimate", "yes"),
    # labels, enums, structure
    hw("id-empty", "id", ""),
    hw("name-newline", "name", "two\nlines"),
    hw("id-list", "id", ["a", "b"]),
    hw("kind-unknown", "kind", "fpga"),
    hw("dtype-unknown", "engines.gpu.peak.bf17", "1 TFLOP/s", "bf17"),
    hw("peak-empty", "engines.gpu.peak", {}),
    hw("peak-list", "engines.gpu.peak", [1, 2]),
    hw("engines-empty", "engines", {}),
    hw("engines-missing", "engines", DELETE),
    hw("bw-missing", BW, DELETE),
    hw("typo-key", "memory.device.bandwith", "1 TB/s", "bandwith"),
    hw("source-dangling", "engines.gpu.source", "nowhere", "nowhere"),
    hw("source-empty", "sources.hand", {}, "sources.hand"),
    hw("default-engine", "default_engine", "npu", "default_engine"),
    hw("memory-string", "memory", "lots", "memory"),
    hw("nested-junk", "memory.device", [[[{}]]], "memory.device"),
    # not a config file at all
    raw("binary", bytes(range(256)), needle="text"),
    raw("latin1", "id: caf\xe9\n".encode("latin-1"), needle="UTF-8"),
    raw("empty", b"", needle="empty"),
    raw("top-list", "- 1\n- 2\n", needle="mapping"),
    raw("top-scalar", "hello\n", needle="mapping"),
    raw("malformed", "id: x\nengines:\n  gpu: {peak: [1, 2\n", needle="line"),
    raw("python-tag", "!!python/object/apply:os.system ['true']\n", needle="tag"),
    raw("deep", "[" * 10_000, needle="nest"),
    raw("duplicate-key", yaml.safe_dump(TOY_HW) + "id: other\n", needle="'id' appears twice"),
    raw("alias-bomb", "\n".join([f"a0: &a0 [{', '.join(['x'] * 9)}]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]), needle="aliases"),
    raw("model-binary", b"\x89PNG\r\n\x1a\n\x00\x00", flag="--model", needle="text"),
    raw("json-list", "[1, 2]", flag="--model", suffix=".json", needle="object"),
    raw("json-nan", '{"model_type": "llama", "hidden_size": NaN}', flag="--model", suffix=".json", needle="NaN"),
    raw("json-malformed", '{"model_type": ', flag="--model", suffix=".json", needle="line 1"),
    # odd references
    ref("directory", "--hw", lambda t: str(t), "directory"),
    ref("dev-zero", "--hw", "/dev/zero", "/dev/zero"),
    ref("dev-zero-model", "--model", "/dev/zero", "/dev/zero"),
    ref("fifo", "--hw", fifo, "pipe.yaml"),
    ref("oversized", "--hw", oversized, "at most 1 MiB (1,048,576 bytes) (got 1,048,577 bytes)"),
    ref("missing", "--hw", lambda t: str(t / "nope.yaml"), "nope.yaml"),
    ref("empty", "--hw", "", "--hw"),
    ref("empty-model", "--model", "", "--model"),
    ref("nul", "--hw", "h100\x00sxm", "--hw"),
    ref("nul-model", "--model", "llama\x00.yaml", "--model"),
    ref("long", "--hw", "x" * 100_000, "--hw"),
    ref("long-path", "--model", "/" + "x" * 300 + ".yaml", "too long"),
    ref("traversal", "--hw", "../../../../../../nonexistent/passwd", "passwd"),
    ref("newline-id", "--hw", "h100\nsxm", "--hw"),
    ref("shipped-as-file", "--hw", "h100-sxm.yaml", "h100-sxm"),
    ref("model-as-hw", "--hw", "llama-3.1-8b", "--model"),
    ref("hw-as-model", "--model", "h100-sxm", "--hw"),
    ref("folder-without-config", "--model", lambda t: str(t), "config.json"),
    # model YAML
    model("layers-bool", "num_layers", True),
    model("hidden-fraction", "hidden_size", 4096.5),
    model("hidden-string", "hidden_size", "1024"),
    model("heads-huge", "num_heads", 10**9),
    model("vocab-zero", "vocab_size", 0),
    model("layers-inf", "num_layers", math.inf),
    model("kv-heads-not-divisor", "num_kv_heads", 5, "num_kv_heads"),
    model("tie-string", "tie_embeddings", "no"),
    model("mlp-unknown", "mlp", "swiglu"),
    model("context-inf", "max_context", math.inf),
    model("hidden-missing", "hidden_size", DELETE),
    model("typo-key", "num_layer", 4, "num_layer"),
    model("heads-wider-than-hidden", "num_heads", 2048, "hidden_size"),
    model("dense-layers-above-layers", "moe", {"num_experts": 8, "experts_per_token": 2,
                                               "expert_intermediate_size": 1024, "dense_layers": 9}, "dense_layers"),
    model("top-k-above-experts", "moe", {"num_experts": 4, "experts_per_token": 8,
                                         "expert_intermediate_size": 1024}, "experts_per_token"),
    model("too-many-params", "moe", {"num_experts": 16_384, "experts_per_token": 1,
                                     "expert_intermediate_size": 2**24}, "parameters"),
    # HuggingFace config.json
    hf("bert", "model_type", "bert", "llama"),
    hf("t5", "is_encoder_decoder", True),
    hf("whisper", "model_type", "whisper", "mixtral"),
    hf("type-missing", "model_type", DELETE),
    hf("type-list", "model_type", ["llama"]),
    hf("layers-missing", "num_hidden_layers", DELETE),
    hf("hidden-string", "hidden_size", "4096"),
    hf("layers-bool", "num_hidden_layers", True),
    hf("vocab-fraction", "vocab_size", 1.5),
    hf("kv-heads-zero", "num_key_value_heads", 0),
    hf("tie-string", "tie_word_embeddings", "false"),
    hf("hidden-huge", "hidden_size", 10**30),
    # valid variants
    ok("toy", "--hw", TOY_HW),
    ok("binary-prefix", "--hw", TOY_HW, CAP, "93.1 GiB"),
    ok("thousands", "--hw", TOY_HW, BW, "1,000 GB/s"),
    ok("plain-si", "--hw", TOY_HW, BF16, 1e14),
    ok("int-for-float", "--hw", TOY_HW, "power.tdp", 500),
    ok("int-price", "--hw", TOY_HW, "price.cloud_usd_per_hour", 3),
    ok("toy-model", "--model", TOY_MODEL),
    ok("integral-float", "--model", TOY_MODEL, "num_layers", 4.0),
    ok("llama-config", "--model", LLAMA_CONFIG),
]


def test_corpus_is_large_and_named_uniquely():
    assert len(CASES) >= 45
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, tmp_path):
    result = run_case(case, tmp_path, timeout_s=20)
    if result is None:
        return
    assert result["fits"] is True
    for key in ("ttft_s", "tpot_s", "throughput_tok_s"):
        assert math.isfinite(result[key]) and result[key] > 0, (key, result[key])
