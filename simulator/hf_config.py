"""Read a HuggingFace-style config.json (from a local path; never the network) into a ModelSpec."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from .config_io import describe_validation_error
from .errors import InfercastError
from .modelspec import ModelSpec


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
    return moe


def _mla(cfg: dict) -> dict | None:
    if not cfg.get("kv_lora_rank"):
        return None
    keys = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
    return {k: cfg.get(k) for k in keys}


def spec_from_hf_config(cfg: dict, model_id: str) -> dict:
    """Map HF config keys (Llama, Mistral, Mixtral, Qwen2, GPT-J, DeepSeek-V3 families) to our schema."""
    gptj = cfg.get("model_type") == "gptj"
    d = _first(cfg, "hidden_size", "n_embd")
    heads = _first(cfg, "num_attention_heads", "n_head")
    spec = {
        "id": model_id,
        "name": model_id,
        "hidden_size": d,
        "num_layers": _first(cfg, "num_hidden_layers", "n_layer"),
        "num_heads": heads,
        "num_kv_heads": _first(cfg, "num_key_value_heads", default=heads),
        "head_dim": cfg.get("head_dim"),
        "intermediate_size": _first(cfg, "intermediate_size", "n_inner", default=4 * d if d else None),
        "vocab_size": cfg.get("vocab_size"),
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "qkv_bias": bool(cfg.get("attention_bias", False)) or cfg.get("model_type") == "qwen2",
        "out_bias": bool(cfg.get("attention_bias", False)),
        "mlp_bias": bool(cfg.get("mlp_bias", False)) or gptj,
        "sliding_window": cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None,
        "max_context": _first(cfg, "max_position_embeddings", "n_positions"),
        "moe": _moe(cfg),
        "mla": _mla(cfg),
    }
    if gptj:
        spec.update(mlp="plain", norm="layernorm", lm_head_bias=True, parallel_block=True)
    if spec["moe"] and spec["moe"]["dense_layers"] == 0 and "moe_intermediate_size" not in cfg:
        spec["intermediate_size"] = spec["moe"]["expert_intermediate_size"]
    return {k: v for k, v in spec.items() if v is not None}


def load_hf_config(path: Path) -> ModelSpec:
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except OSError as exc:
        raise InfercastError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InfercastError(f"{path}: line {exc.lineno}, column {exc.colno}: malformed JSON: {exc.msg}") from None
    model_id = path.parent.name or path.stem
    try:
        return ModelSpec.model_validate(spec_from_hf_config(cfg, model_id))
    except ValidationError as exc:
        raise InfercastError(f"{path}: {describe_validation_error(exc, ModelSpec)}") from None
