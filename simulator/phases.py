"""What one engine step computes: a prefill chunk or a decode step, and the parallel layout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InfercastError
from .modelspec import ModelSpec


@dataclass(frozen=True, eq=False)
class Prefill:
    """Prefill of `chunk_lens[i]` new tokens for sequence i after `prior_lens[i]` cached tokens."""

    chunk_lens: np.ndarray  # (B,)
    prior_lens: np.ndarray  # (B,)

    @classmethod
    def of(cls, batch: int, chunk: int, prior: int = 0) -> "Prefill":
        return cls(np.full(batch, chunk, dtype=np.int64), np.full(batch, prior, dtype=np.int64))

    @property
    def tokens(self) -> int:
        return int(self.chunk_lens.sum())

    @property
    def sequences(self) -> int:
        return len(self.chunk_lens)


@dataclass(frozen=True, eq=False)
class Decode:
    """One decode step of a batch; `context_lens[..., i]` counts request i's cached tokens including
    the one generated in this step. A leading axis evaluates many steps at once (shape (S, B))."""

    context_lens: np.ndarray  # (B,) or (S, B)

    @classmethod
    def of(cls, batch: int, context: int) -> "Decode":
        return cls(np.full(batch, context, dtype=np.int64))

    @property
    def tokens(self) -> int:
        return int(self.context_lens.shape[-1])

    @property
    def sequences(self) -> int:
        return self.tokens


Phase = Prefill | Decode


@dataclass(frozen=True)
class Layout:
    """Tensor parallel degree (Megatron-LM) and pipeline parallel stages."""

    tp: int = 1
    pp: int = 1

    @property
    def devices(self) -> int:
        return self.tp * self.pp


def check_layout(model: ModelSpec, layout: Layout) -> None:
    """A TP degree must split heads, KV heads (or replicate them) and MLP columns evenly."""
    tp, pp = layout.tp, layout.pp
    if tp < 1 or pp < 1:
        raise InfercastError(f"--tp/--pp must be >= 1 (got tp={tp}, pp={pp})")
    if not _splits(model, tp):
        kv = model.num_kv_heads
        allowed = [t for t in range(1, model.num_heads + 1) if _splits(model, t)]
        raise InfercastError(
            f"--tp {tp}: {model.id} has {model.num_heads} attention heads and {kv} KV heads; "
            f"allowed TP degrees: {', '.join(map(str, allowed))}"
        )
    if pp > model.num_layers:
        raise InfercastError(f"--pp {pp}: {model.id} has only {model.num_layers} layers")


def _splits(model: ModelSpec, tp: int) -> bool:
    kv = model.num_kv_heads
    ffs = [model.intermediate_size] + ([model.moe.expert_intermediate_size] if model.moe else [])
    return model.num_heads % tp == 0 and (kv % tp == 0 or tp % kv == 0) and all(f % tp == 0 for f in ffs)
