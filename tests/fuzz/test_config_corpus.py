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

from simulator.catalog import data_dir
from simulator.limits import MAX_CONFIG_BYTES
from tests.conftest import TOY_HW
from tests.fuzz.harness import Case, run_case, run_cli

# A small Llama-shaped model: round numbers, fits TOY_HW many times over.
TOY_MODEL = {
    "id": "toy-llama", "name": "Toy Llama", "hidden_size": 1024, "num_layers": 4, "num_heads": 16,
    "num_kv_heads": 4, "intermediate_size": 4096, "vocab_size": 32000, "max_context": 8192,
}
LLAMA_CONFIG = {
    "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072,
}
DEEPSEEK_CONFIG = {  # DeepSeek-V3's keys at a fraction of its size
    "model_type": "deepseek_v3", "hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 16,
    "num_key_value_heads": 16, "intermediate_size": 4096, "moe_intermediate_size": 512, "vocab_size": 32000,
    "n_routed_experts": 16, "num_experts_per_tok": 4, "n_shared_experts": 1, "first_k_dense_replace": 1,
    "q_lora_rank": 384, "kv_lora_rank": 128, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32, "v_head_dim": 64,
    "max_position_embeddings": 8192, "topk_method": "noaux_tc",
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


def ds(name: str, key: str, value: Any, needle: str | None = None) -> Case:
    """A (small) DeepSeek-V3 config.json with one key changed, given by its folder as --model."""
    def build(tmp_path: Path) -> list[str]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(mutated(DEEPSEEK_CONFIG, key, value)))
        return WHATIF + ["--hw", "h100-sxm", "--model", str(folder)]
    return Case(f"ds-{name}", build, "error", ("config.json", needle or key))


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
        if base is LLAMA_CONFIG or base is DEEPSEEK_CONFIG:
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
    # adversarial findings: an ID used as a file name, a shipped ID on a user's file (B1)
    hw("id-traversal", "id", "../../evil"),
    hw("id-absolute", "id", "/tmp/evil"),
    hw("id-hidden", "id", ".hidden"),
    hw("id-shipped", "id", "h100-sxm", "its own"),
    hw("id-local", "id", "local", "its own"),
    # a rate measured above the dense peak (B3); floors on hardware numbers (B8)
    hw("measured-above-peak", "engines.gpu.measured_matmul", {"bf16": "200 TFLOP/s"}, "measured_matmul.bf16"),
    hw("bf16-tiny", BF16, "1e-30 FLOP/s", "at least 1 GFLOP/s"),
    hw("bf16-bare", BF16, "989", "a bare number is SI"),
    hw("bw-one-byte", BW, "1 B/s", "at least 1 MB/s"),
    hw("cap-one-byte", CAP, "1 B", "at least 1 MiB"),
    hw("link-one-byte", "links.scaleup.bandwidth_per_dir", "1 B/s", "links.scaleup.bandwidth_per_dir"),
    hw("price-tiny", "price.cloud_usd_per_hour", 1e-12, "$0.001"),
    hw("tdp-kilowatts", "power.tdp", "700 kW", "at most 100 kW"),
    hw("source-empty-list", "engines.gpu.source", [], "engines.gpu.source"),
    hw("source-empty-name", "memory.device.source", "", "memory.device.source"),
    # model shapes (B4), YAML 1.1 base-60 numbers (B9)
    model("hidden-not-multiple", "hidden_size", 1023, "multiple of num_heads"),
    raw("model-base-60", yaml.safe_dump({k: v for k, v in TOY_MODEL.items() if k != "max_context"})
        + "max_context: 1:00:00\n", flag="--model", needle="base-60"),
    raw("hw-base-60-float", yaml.safe_dump(mutated(TOY_HW, "price", DELETE)) + "price: {cloud_usd_per_hour: 1:30.5, "
        "source: hand}\n", needle="base-60"),
    # config.json: a key twice (B5), a number too long (C3), MoE and MLA keys dropped (B6)
    raw("json-duplicate-key", json.dumps(LLAMA_CONFIG)[:-1] + ', "num_hidden_layers": 320}', flag="--model",
        suffix=".json", needle="'num_hidden_layers' appears twice"),
    raw("json-bigint", '{"model_type": "llama", "hidden_size": ' + "9" * 5001 + "}", flag="--model", suffix=".json",
        needle="4,300 digits"),
    hf("experts-per-token-alone", "num_experts_per_tok", 2, "num_local_experts"),
    hf("hidden-not-multiple", "hidden_size", 4095, "multiple of num_attention_heads"),
    ds("mla-rank-zero", "kv_lora_rank", 0),
    ds("mla-rank-missing", "kv_lora_rank", DELETE),
    ds("experts-zero", "n_routed_experts", 0),
    ds("expert-width-missing", "moe_intermediate_size", DELETE),
    ds("quantization-not-object", "quantization_config", "gptq"),
    ds("torch-dtype-number", "torch_dtype", 16),
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
    ok("deepseek-config", "--model", DEEPSEEK_CONFIG),
    ok("quantised-config", "--model", LLAMA_CONFIG, "quantization_config", {"quant_method": "gptq", "bits": 4}),
    Case("ok-shipped-file-by-path", lambda t: WHATIF + ["--model", "llama-3.1-8b", "--hw",
                                                        str(data_dir("hwspecs") / "h100-sxm.yaml")], "ok"),
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


@pytest.mark.parametrize("declared, dtype, note", [
    ({"quantization_config": {"quant_method": "gptq", "bits": 4}}, "bf16", "--dtype int4"),
    ({"quantization_config": {"quant_method": "awq", "bits": 4}}, "int4", None),
    ({"torch_dtype": "float8_e4m3fn"}, "bf16", "--dtype fp8"),
    ({"torch_dtype": "bfloat16"}, "bf16", None),
    ({"quantization_config": {"quant_method": "hqq"}}, "bf16", "does not map"),
])
def test_a_declared_weight_dtype_is_named_when_dtype_costs_otherwise(tmp_path, declared, dtype, note):
    """config.json's quantization_config / torch_dtype are never dropped without a word (B7)."""
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA_CONFIG, **declared}))
    out = run_cli(WHATIF + ["--hw", "h100-sxm", "--model", str(tmp_path), "--dtype", dtype], timeout_s=20)
    assert out.kind == "ok", out
    notes = [n for n in json.loads(out.out)["notes"] if "declares" in n]
    assert (notes == []) if note is None else (len(notes) == 1 and note in notes[0]), notes
