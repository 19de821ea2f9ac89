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


def _moe(cfg: dict) -> dict | None:
    experts = _first(cfg, "num_local_experts", "n_routed_experts", "num_experts")
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
    return cfg


def _json_kind(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")


def _reject_constant(name: str):
    raise ValueError(name)


def load_hf_config(path: Path) -> ModelSpec:
    path = Path(path)
    if exists(path) and path.is_dir():
        path = path / "config.json"
    where = one_line(path)
    text = read_text_file(path, "config.json", MAX_CONFIG_BYTES)
    try:
        cfg = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InfercastError(f"{where}: line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}") from None
    except ValueError as exc:  # NaN, Infinity
        raise bad_input(where, "malformed JSON: NaN and Infinity are not JSON numbers", Given(str(exc))) from None
    except RecursionError:
        raise bad_input(where, "malformed JSON: nested too deeply") from None
    check_hf_config(cfg, where)
    model_id = one_line(path.parent.name or path.stem, 200)
    try:
        return ModelSpec.model_validate(spec_from_hf_config(cfg, model_id))
    except ValidationError as exc:
        rename = {ours: next((k for k in keys if cfg.get(k) is not None), ours) for ours, keys in SOURCE_KEYS.items()}
        raise InfercastError(f"{where}: {describe_validation_error(exc, ModelSpec, rename)}") from None
