"""Model architecture schema: workloads/models/*.yaml, or a HuggingFace-style config.json."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, PositiveInt, model_validator

from .quantity_types import STRICT


class MoE(BaseModel):
    """Mixture of experts in the MLP (Mixtral; DeepSeek-V3 with shared experts and dense first layers)."""

    model_config = STRICT
    num_experts: PositiveInt
    experts_per_token: PositiveInt
    expert_intermediate_size: PositiveInt
    num_shared_experts: int = Field(0, ge=0)
    shared_intermediate_size: PositiveInt | None = None  # per shared expert; default = expert size
    dense_layers: int = Field(0, ge=0)  # the first k layers use a dense MLP of `intermediate_size`
    router_bias: bool = False  # DeepSeek-V3's e_score_correction_bias

    @model_validator(mode="after")
    def _k(self) -> "MoE":
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token must be <= num_experts")
        return self


class MLA(BaseModel):
    """Multi-head latent attention (DeepSeek-V2/V3): KV compressed to a latent of kv_lora_rank."""

    model_config = STRICT
    q_lora_rank: PositiveInt | None = None  # None: plain q projection
    kv_lora_rank: PositiveInt
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


class ModelSource(BaseModel):
    model_config = STRICT
    url: str
    note: str = ""


class ModelSpec(BaseModel):
    model_config = STRICT
    id: str
    name: str
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt | None = None  # default hidden_size // num_heads
    intermediate_size: PositiveInt
    vocab_size: PositiveInt
    mlp: Literal["gated", "plain"] = "gated"  # gated: SwiGLU (3 matrices); plain: GELU (2 matrices)
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"  # layernorm has a bias
    tie_embeddings: bool = False
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False
    parallel_block: bool = False  # GPT-J: attention and MLP read the same normed input
    sliding_window: PositiveInt | None = None
    max_context: PositiveInt | None = None
    moe: MoE | None = None
    mla: MLA | None = None
    published_params: PositiveInt | None = None  # total parameters as published, for checks
    sources: dict[str, ModelSource] = Field(default_factory=dict)
    note: str = ""

    @model_validator(mode="after")
    def _heads(self) -> "ModelSpec":
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
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
