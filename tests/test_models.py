"""Model architectures: parameter counts against published totals, KV sizes by hand, config.json."""

import json

import pytest

from simulator.attention_cost import kv_bytes_per_token_layer
from simulator.catalog import load_model_spec, model_ids
from simulator.layers import active_param_count, param_count
from simulator.memory import kv_bytes_per_token
from simulator.phases import Layout
from simulator.precision import Precision

FP16 = Precision("fp16", "fp16", "fp16")
REQUIRED = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
            "gpt-j-6b", "mistral-7b", "mixtral-8x7b", "yi-34b", "qwen2.5-72b", "deepseek-v3"]


def test_required_models_ship():
    assert set(REQUIRED) <= set(model_ids())


@pytest.mark.parametrize("model_id", REQUIRED)
def test_param_count_matches_published_total(model_id):
    m = load_model_spec(model_id)
    assert m.published_params and m.sources
    assert param_count(m) == pytest.approx(m.published_params, rel=0.005)


@pytest.mark.parametrize("model_id,active", [
    ("mixtral-8x7b", 12.9e9),  # arXiv:2401.04088: 13B active ("12.9B" on the model card)
    ("deepseek-v3", 37e9),  # arXiv:2412.19437: 37B activated
])
def test_active_params_of_moe(model_id, active):
    assert active_param_count(load_model_spec(model_id)) == pytest.approx(active, rel=0.02)


@pytest.mark.parametrize("model_id,expected", [
    ("llama-2-7b", 32 * 2 * 32 * 128 * 2),  # 524,288: MHA, 32 layers x K,V x 32 heads x 128 x 2 bytes
    ("llama-3.1-8b", 32 * 2 * 8 * 128 * 2),  # 131,072: GQA with 8 KV heads
    ("yi-34b", 60 * 2 * 8 * 128 * 2),  # 245,760
    ("deepseek-v3", 61 * (512 + 64) * 2),  # 70,272: MLA latent 512 + decoupled RoPE key 64
])
def test_kv_bytes_per_token_fp16(model_id, expected):
    assert kv_bytes_per_token(load_model_spec(model_id), Layout(), FP16) == expected


def test_kv_heads_split_then_replicated_under_tp():
    m = load_model_spec("llama-3.1-8b")  # 8 KV heads
    one = kv_bytes_per_token_layer(m, Layout(tp=1), FP16)
    assert kv_bytes_per_token_layer(m, Layout(tp=4), FP16) == one / 4
    assert kv_bytes_per_token_layer(m, Layout(tp=16), FP16) == one / 8  # one head per rank, replicated


def test_hf_config_json_matches_shipped_yaml(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
           "max_position_embeddings": 131072, "tie_word_embeddings": False}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    m = load_model_spec(str(tmp_path / "config.json"))
    assert param_count(m) == param_count(load_model_spec("llama-3.1-8b"))


def test_hf_config_deepseek_v3(tmp_path):
    cfg = {"model_type": "deepseek_v3", "hidden_size": 7168, "num_hidden_layers": 61, "num_attention_heads": 128,
           "num_key_value_heads": 128, "intermediate_size": 18432, "moe_intermediate_size": 2048,
           "vocab_size": 129280, "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
           "first_k_dense_replace": 3, "topk_method": "noaux_tc", "q_lora_rank": 1536, "kv_lora_rank": 512,
           "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    m = load_model_spec(str(tmp_path))
    assert param_count(m) == param_count(load_model_spec("deepseek-v3"))


def _write_model(tmp_path, name, **change):
    import yaml

    base = {"id": "m", "name": "m", "hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 4,
            "intermediate_size": 128, "vocab_size": 100}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**base, **change}))
    return str(path)


@pytest.mark.parametrize("key,value", [
    ("num_layers", True),  # once read as 1 layer
    ("hidden_size", 64.5),
    ("hidden_size", "64"),
    ("vocab_size", 10**12),
    ("tie_embeddings", "no"),
])
def test_dimensions_are_whole_numbers_in_range(tmp_path, key, value):
    from simulator.errors import InfercastError

    with pytest.raises(InfercastError, match=f"key '{key}'"):
        load_model_spec(_write_model(tmp_path, f"{key}-{value}", **{key: value}))


def test_integral_float_is_a_whole_number(tmp_path):
    assert load_model_spec(_write_model(tmp_path, "float-layers", num_layers=2.0)).num_layers == 2


def _write_config(tmp_path, cfg) -> str:
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path / "config.json")


@pytest.mark.parametrize("cfg,needle", [
    ([{"model_type": "llama"}], "JSON object"),  # once an AttributeError traceback
    ({"model_type": "bert", "hidden_size": 768}, "llama, mistral, mixtral, qwen2"),  # once costed as a decoder
    ({"model_type": "llama", "is_encoder_decoder": True}, "decoder-only"),
    ({"hidden_size": 768}, "missing key 'model_type'"),
    ({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "vocab_size": 10}, "num_hidden_layers"),
    ({"model_type": "llama", "hidden_size": "4096", "num_hidden_layers": 2, "num_attention_heads": 32,
      "vocab_size": 10, "intermediate_size": 64}, "key 'hidden_size'"),
])
def test_hf_config_refusals_name_the_key(tmp_path, cfg, needle):
    from simulator.errors import InfercastError

    with pytest.raises(InfercastError, match=needle):
        load_model_spec(_write_config(tmp_path, cfg))


def test_hf_config_errors_use_its_own_key_names(tmp_path):
    from simulator.errors import InfercastError

    cfg = {"model_type": "gptj", "n_embd": 64, "n_layer": 2.5, "n_head": 4, "vocab_size": 100}
    with pytest.raises(InfercastError, match="key 'n_layer'"):
        load_model_spec(_write_config(tmp_path, cfg))
