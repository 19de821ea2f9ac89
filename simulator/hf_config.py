"""Read a HuggingFace-style config.json (from a local path; never the network) into a ModelSpec.

Only the decoder-only families whose keys map onto infercast's schema are costed (SUPPORTED); an
encoder (BERT), an encoder-decoder (T5, Whisper) or any other architecture is refused by name,
since costing it as a decoder would answer with numbers for a model that does not exist.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from .config_io import Given, describe_validation_error, exists, one_line, read_text_file
from .errors import InfercastError, bad_input
from .limits import MAX_CONFIG_BYTES
from .modelspec import ModelSpec

# model_type -> family; each maps onto ModelSpec by spec_from_hf_config
SUPPORTED = {"llama": "Llama", "mistral": "Mistral", "mixtral": "Mixtral", "qwen2": "Qwen2", "gptj": "GPT-J",
             "deepseek_v2": "DeepSeek-V2", "deepseek_v3": "DeepSeek-V3"}
# ModelSpec key -> the config.json keys it is read from, first present wins
HF_KEYS = {"hidden_size": ("hidden_size", "n_embd"), "num_layers": ("num_hidden_layers", "n_layer"),
           "num_heads": ("num_attention_heads", "n_head"), "vocab_size": ("vocab_size",)}
# every ModelSpec key read from config.json -> its keys there, to name in errors what the user wrote
SOURCE_KEYS = {**HF_KEYS, "num_kv_heads": ("num_key_value_heads",), "intermediate_size": ("intermediate_size", "n_inner"),
               "max_context": ("max_position_embeddings", "n_positions"), "tie_embeddings": ("tie_word_embeddings",)}
_BOOLS = ("tie_word_embeddings", "attention_bias", "mlp_bias", "use_sliding_window", "is_encoder_decoder")


def _first(cfg: dict, *keys: str, default=None):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


EXPERT_COUNT = ("num_local_experts", "n_routed_experts", "num_experts")
MOE_KEYS = ("num_experts_per_tok", "moe_top_k", "n_shared_experts", "moe_intermediate_size")
MLA_KEYS = ("q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
DEEPSEEK = ("deepseek_v2", "deepseek_v3")


def _moe(cfg: dict) -> dict | None:
    experts = _first(cfg, *EXPERT_COUNT)
    if not experts:
        return None
    moe = {
        "num_experts": experts,
        "experts_per_token": _first(cfg, "num_experts_per_tok", "moe_top_k"),
        "expert_intermediate_size": _first(cfg, "moe_intermediate_size", "intermediate_size"),
        "num_shared_experts": _first(cfg, "n_shared_experts", default=0),
        "dense_layers": _first(cfg, "first_k_dense_replace", default=0),
    }
    if cfg.get("topk_method") == "noaux_tc":  # DeepSeek-V3's bias-corrected routing
        moe["router_bias"] = True
    return {k: v for k, v in moe.items() if v is not None}


def _mla(cfg: dict) -> dict | None:
    if not cfg.get("kv_lora_rank"):
        return None
    keys = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
    return {k: cfg.get(k) for k in keys if cfg.get(k) is not None}


def spec_from_hf_config(cfg: dict, model_id: str) -> dict:
    """Map HF config keys (Llama, Mistral, Mixtral, Qwen2, GPT-J, DeepSeek-V2/V3 families) to our schema."""
    gptj = cfg.get("model_type") == "gptj"
    d = _first(cfg, *HF_KEYS["hidden_size"])
    heads = _first(cfg, *HF_KEYS["num_heads"])
    spec = {
        "id": model_id,
        "name": model_id,
        "hidden_size": d,
        "num_layers": _first(cfg, *HF_KEYS["num_layers"]),
        "num_heads": heads,
        "num_kv_heads": _first(cfg, "num_key_value_heads", default=heads),
        "head_dim": cfg.get("head_dim"),
        "intermediate_size": _first(cfg, "intermediate_size", "n_inner", default=4 * d if type(d) is int else None),
        "vocab_size": cfg.get("vocab_size"),
        "tie_embeddings": cfg.get("tie_word_embeddings", False),
        "qkv_bias": cfg.get("attention_bias", False) or cfg.get("model_type") == "qwen2",
        "out_bias": cfg.get("attention_bias", False),
        "mlp_bias": cfg.get("mlp_bias", False) or gptj,
        "sliding_window": cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None,
        "max_context": _first(cfg, "max_position_embeddings", "n_positions"),
        "moe": _moe(cfg),
        "mla": _mla(cfg),
    }
    if gptj:
        spec.update(mlp="plain", norm="layernorm", lm_head_bias=True, parallel_block=True)
    if spec["moe"] and spec["moe"].get("dense_layers") == 0 and "moe_intermediate_size" not in cfg:
        spec["intermediate_size"] = spec["moe"].get("expert_intermediate_size")
    return {k: v for k, v in spec.items() if v is not None}


def check_hf_config(cfg: object, where: str) -> dict:
    """Refuse what cannot be costed: not an object, an unsupported or encoder architecture, a
    required key missing, a flag that is not true/false."""
    if not isinstance(cfg, dict):
        raise bad_input(where, "a config.json must hold a JSON object at the top level", Given(f"a JSON {_json_kind(cfg)}"))
    supported = ", ".join(sorted(SUPPORTED))
    model_type = cfg.get("model_type")
    if model_type is None:
        raise bad_input(where, f"missing key 'model_type' (supported: {supported})")
    if not isinstance(model_type, str) or model_type not in SUPPORTED:
        raise bad_input(f"{where}: key 'model_type'", f"infercast costs decoder-only models of type {supported}",
                        model_type)
    if cfg.get("is_encoder_decoder") is True:
        raise bad_input(f"{where}: key 'is_encoder_decoder'", "infercast costs decoder-only models", True)
    for ours, keys in HF_KEYS.items():
        if _first(cfg, *keys) is None:
            raise bad_input(where, f"missing key '{keys[0]}'" + (f" (or '{keys[1]}')" if len(keys) > 1 else ""))
    for key in _BOOLS:
        if key in cfg and not isinstance(cfg[key], bool):
            raise bad_input(f"{where}: key '{key}'", "must be true or false", cfg[key])
    _check_heads(cfg, where)
    _check_moe_mla(cfg, where)
    return cfg


def _check_heads(cfg: dict, where: str) -> None:
    """Without head_dim each head is hidden / heads wide: a hidden size the heads do not divide
    names a model that does not exist (named by the keys the file uses)."""
    hidden_key, heads_key = (next(k for k in HF_KEYS[ours] if cfg.get(k) is not None)
                             for ours in ("hidden_size", "num_heads"))
    d, h = cfg[hidden_key], cfg[heads_key]
    if type(d) is int and type(h) is int and h > 0 and d % h and cfg.get("head_dim") is None:
        raise bad_input(f"{where}: key '{hidden_key}'", f"must be a multiple of {heads_key} ({h:,}) without "
                        "head_dim: each head is hidden / heads wide", d)


def _given(cfg: dict, key: str) -> bool:
    """A key present with a value that says something (not null, not 0)."""
    return cfg.get(key) not in (None, 0, False)


def _refuse(cfg: dict, where: str, key: str, must_be: str):
    if key not in cfg:
        raise bad_input(where, f"missing key '{key}': must be {must_be}")
    raise bad_input(f"{where}: key '{key}'", f"must be {must_be}", cfg[key])


def _check_moe_mla(cfg: dict, where: str) -> None:
    """Keys that would otherwise be dropped without a word: MoE keys without an expert count, a
    DeepSeek model without its latent attention, DeepSeek experts without their own width."""
    experts_key = next((k for k in EXPERT_COUNT if k in cfg), EXPERT_COUNT[1 if cfg["model_type"] in DEEPSEEK else 0])
    moe_keys = [k for k in MOE_KEYS if _given(cfg, k)]
    if moe_keys and not _given(cfg, experts_key):
        _refuse(cfg, where, experts_key, f"a number of experts >= 1 where the file sets {', '.join(moe_keys)} (a dense "
                                         "model sets none of them)")
    if cfg["model_type"] not in DEEPSEEK:
        return
    if not _given(cfg, "kv_lora_rank"):
        _refuse(cfg, where, "kv_lora_rank", f">= 1: {cfg['model_type']} attention is multi-head latent attention "
                                           f"(with {', '.join(MLA_KEYS)})")
    if _given(cfg, experts_key) and not _given(cfg, "moe_intermediate_size"):
        raise bad_input(where, f"missing key 'moe_intermediate_size': {cfg['model_type']} experts have their own "
                               "width (intermediate_size is the dense layers')")


def _json_kind(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")


class _NotJson(ValueError):
    """A constant (NaN, Infinity) or a key written twice: what json.loads would take silently."""


def _reject_constant(name: str):
    raise _NotJson(f"NaN and Infinity are not JSON numbers (got {name})")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice is not None:
        raise _NotJson(f"key {one_line(twice, 60)!r} appears twice in one object (the last would win)")
    return dict(pairs)


def parse_json(text: str, where: str) -> object:
    """json.loads, refusing NaN, Infinity and keys written twice; every failure one line."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InfercastError(f"{where}: line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}") from None
    except _NotJson as exc:
        raise InfercastError(f"{where}: malformed JSON: {exc}") from None
    except ValueError as exc:  # an integer of thousands of digits (Python's int_max_str_digits)
        if "digits" in str(exc):
            raise bad_input(where, "malformed JSON: an integer may have at most 4,300 digits",
                            Given("a longer one")) from None
        raise InfercastError(f"{where}: malformed JSON: {one_line(exc, 100)}") from None
    except RecursionError:
        raise bad_input(where, "malformed JSON: nested too deeply") from None


def load_hf_config(path: Path) -> ModelSpec:
    path = Path(path)
    if exists(path) and path.is_dir():
        path = path / "config.json"
    where = one_line(path)
    cfg = parse_json(read_text_file(path, "config.json", MAX_CONFIG_BYTES), where)
    check_hf_config(cfg, where)
    model_id = one_line(path.parent.name or path.stem, 200)
    try:
        return ModelSpec.model_validate({**spec_from_hf_config(cfg, model_id), **declared_dtype(cfg, where)})
    except ValidationError as exc:
        rename = {ours: next((k for k in keys if cfg.get(k) is not None), ours) for ours, keys in SOURCE_KEYS.items()}
        raise InfercastError(f"{where}: {describe_validation_error(exc, ModelSpec, rename)}") from None


TORCH_DTYPES = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
QUANT_BITS = {4: "int4", 8: "int8"}  # weight-only integer methods (GPTQ, AWQ) by their bits


def _quantized(qc: dict) -> str | None:
    """The weights' dtype a quantization_config declares, None when infercast cannot tell."""
    method = str(qc.get("quant_method", "")).lower()
    if method in ("gptq", "awq"):
        bits = qc.get("bits", qc.get("w_bit"))
        return QUANT_BITS.get(bits) if type(bits) is int else None
    if method in ("fp8", "fbgemm_fp8"):
        return "fp8"
    if method == "mxfp4":
        return "fp4"
    if method == "bitsandbytes":
        return "int4" if qc.get("load_in_4bit") is True else "int8" if qc.get("load_in_8bit") is True else None
    return None


def declared_dtype(cfg: dict, where: str) -> dict:
    """ModelSpec's declared_dtype and declared_from: what the file says its weights are stored in
    (quantization_config, else torch_dtype or dtype); {} when it says nothing. Costs still use
    --dtype; a what-if notes a difference instead of ignoring the keys without a word."""
    qc = cfg.get("quantization_config")
    if qc is not None:
        if not isinstance(qc, dict):
            raise bad_input(f"{where}: key 'quantization_config'", "must be an object", Given(f"a JSON {_json_kind(qc)}"))
        method = one_line(qc.get("quant_method", "?"), 40)
        bits = f", {qc['bits']} bits" if isinstance(qc.get("bits"), int) else ""
        return {"declared_dtype": _quantized(qc), "declared_from": f"quantization_config: {method}{bits}"}
    key = next((k for k in ("torch_dtype", "dtype") if cfg.get(k) is not None), None)
    if key is None:
        return {}
    name = cfg[key]
    if not isinstance(name, str):
        raise bad_input(f"{where}: key '{key}'", "must be a dtype name such as 'bfloat16'", name)
    dtype = "fp8" if name.startswith("float8") else TORCH_DTYPES.get(name.removeprefix("torch."))
    return {"declared_dtype": dtype, "declared_from": f"{key}: {one_line(name, 40)}"}
