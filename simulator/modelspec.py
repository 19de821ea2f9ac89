"""Model architecture schema: workloads/models/*.yaml, or a HuggingFace-style config.json.

Every dimension is a whole number (not `true`, not 4096.5) under a ceiling about 100x today's
largest models, and the model as a whole under MAX_PARAMS, so a typo is refused with a line
instead of overflowing later.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, model_validator

from .limits import MAX_TOKENS
from .quantity_types import STRICT, Label, whole_number

# Ceilings: Llama-3.1-405B has 126 layers, hidden 16,384, MLP 53,248; DeepSeek-V3 256 experts,
# vocab 129,280. Each ceiling is far above any model published.
MAX_LAYERS = 10_000
MAX_WIDTH = 2**20  # hidden size, head dimension, latent ranks: 1,048,576
MAX_HEADS = 2**16
MAX_MLP_WIDTH = 2**24  # intermediate sizes: 16,777,216
MAX_VOCAB = 2**24
MAX_EXPERTS = 2**14
MAX_PARAMS = 10**15  # 1,000x DeepSeek-V3's 671B

Layers = Annotated[int, whole_number(1, MAX_LAYERS)]
Width = Annotated[int, whole_number(1, MAX_WIDTH)]
Heads = Annotated[int, whole_number(1, MAX_HEADS)]
MlpWidth = Annotated[int, whole_number(1, MAX_MLP_WIDTH)]
Vocab = Annotated[int, whole_number(1, MAX_VOCAB)]
Experts = Annotated[int, whole_number(1, MAX_EXPERTS)]
Tokens = Annotated[int, whole_number(1, MAX_TOKENS)]


class MoE(BaseModel):
    """Mixture of experts in the MLP (Mixtral; DeepSeek-V3 with shared experts and dense first layers)."""

    model_config = STRICT
    num_experts: Experts
    experts_per_token: Experts
    expert_intermediate_size: MlpWidth
    num_shared_experts: Annotated[int, whole_number(0, MAX_EXPERTS)] = 0
    shared_intermediate_size: MlpWidth | None = None  # per shared expert; default = expert size
    dense_layers: Annotated[int, whole_number(0, MAX_LAYERS)] = 0  # the first k layers use a dense MLP of `intermediate_size`
    router_bias: StrictBool = False  # DeepSeek-V3's e_score_correction_bias

    @model_validator(mode="after")
    def _k(self) -> "MoE":
        if self.experts_per_token > self.num_experts:
            raise ValueError(f"experts_per_token ({self.experts_per_token:,}) must be <= num_experts "
                             f"({self.num_experts:,})")
        return self


class MLA(BaseModel):
    """Multi-head latent attention (DeepSeek-V2/V3): KV compressed to a latent of kv_lora_rank."""

    model_config = STRICT
    q_lora_rank: Width | None = None  # None: plain q projection
    kv_lora_rank: Width
    qk_nope_head_dim: Width
    qk_rope_head_dim: Width
    v_head_dim: Width


class ModelSource(BaseModel):
    model_config = STRICT
    url: str
    note: str = ""


class ModelSpec(BaseModel):
    model_config = STRICT
    id: Label
    name: Label
    hidden_size: Width
    num_layers: Layers
    num_heads: Heads
    num_kv_heads: Heads
    head_dim: Width | None = None  # default hidden_size // num_heads
    intermediate_size: MlpWidth
    vocab_size: Vocab
    mlp: Literal["gated", "plain"] = "gated"  # gated: SwiGLU (3 matrices); plain: GELU (2 matrices)
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"  # layernorm has a bias
    tie_embeddings: StrictBool = False
    qkv_bias: StrictBool = False
    out_bias: StrictBool = False
    mlp_bias: StrictBool = False
    lm_head_bias: StrictBool = False
    parallel_block: StrictBool = False  # GPT-J: attention and MLP read the same normed input
    sliding_window: Tokens | None = None
    max_context: Tokens | None = None
    moe: MoE | None = None
    mla: MLA | None = None
    published_params: Annotated[int, whole_number(1, MAX_PARAMS)] | None = None  # total as published, for checks
    # the weights' dtype a checkpoint declares (config.json's quantization_config or torch_dtype):
    # informational, costs use --dtype; a what-if says so when the two differ
    declared_dtype: Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4", "fp4"] | None = None
    declared_from: Label | None = None  # the config.json key(s) it was read from, e.g. "quantization_config (gptq, 4 bits)"
    sources: dict[str, ModelSource] = Field(default_factory=dict)
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> "ModelSpec":
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads:,}) must be a multiple of num_kv_heads ({self.num_kv_heads:,})")
        if self.head_dim is None and (self.hidden_size < self.num_heads or self.hidden_size % self.num_heads):
            raise ValueError(f"without head_dim, hidden_size ({self.hidden_size:,}) must be a multiple of num_heads "
                             f"({self.num_heads:,}): each head is hidden_size / num_heads wide (give head_dim "
                             "where heads are narrower)")
        if self.moe is not None and self.moe.dense_layers > self.num_layers:
            raise ValueError(f"moe.dense_layers ({self.moe.dense_layers:,}) must be <= num_layers ({self.num_layers:,})")
        from .layers import param_count  # layers builds on this module

        if (params := param_count(self)) > MAX_PARAMS:
            raise ValueError(f"the model has {params:,} parameters; at most {MAX_PARAMS:,} are supported")
        return self

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.moe.dense_layers if self.moe else 0
