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
    """How one replica spreads over devices: tensor parallel (Megatron-LM, Shoeybi et al. 2019),
    pipeline stages, context parallel and expert parallel.

    - cp: context parallelism. Prefill splits each prompt's tokens over cp ranks (load-balanced
      causal halves) and passes K/V around a ring under the attention (ring attention, Liu et al.
      2023, arXiv:2310.01889; as Meta serves 1M-token prefill, arXiv:2411.01783). Decode keeps each
      sequence's KV sharded over the cp ranks; every rank attends its shard and the partial outputs
      are merged (pass-Q decode, same paper), while the other layers run replicated on the cp ranks.
      Weights are replicated across cp; devices = tp x pp x cp. With cp_kind "ulysses" (DeepSpeed-
      Ulysses, Jacobs et al. 2023, arXiv:2309.14509) all-to-alls trade the sequence split for a head
      split around each attention instead: no ring, but the traffic is not hidden, and each rank's
      heads (num_heads / tp) must split over cp.
    - ep: expert parallelism inside the TP group (ep divides tp): each rank holds num_experts / ep
      whole experts (TP-split by tp / ep); tokens are sequence-sharded over the group and sent to
      their experts' ranks and back by all-to-all (Megatron-LM EP with sequence parallelism); the
      busiest rank gets `ep_imbalance` x the mean token load (1: uniform routing).
    """

    tp: int = 1
    pp: int = 1
    cp: int = 1
    ep: int = 1
    ep_imbalance: float = 1.0
    cp_kind: str = "ring"  # ring | ulysses

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.cp

    @property
    def expert_tp(self) -> int:
        """TP degree each expert is split by."""
        return self.tp // self.ep

    def name(self) -> str:
        parts = [f"TP{self.tp}"] + [f"{k.upper()}{v}" for k, v in (("pp", self.pp), ("cp", self.cp), ("ep", self.ep)) if v > 1]
        return " ".join(parts)


def check_layout(model: ModelSpec, layout: Layout) -> None:
    """A TP degree must split heads, KV heads (or replicate them) and MLP columns evenly; EP splits
    the experts of a MoE model inside the TP group."""
    tp, pp, cp, ep = layout.tp, layout.pp, layout.cp, layout.ep
    if min(tp, pp, cp, ep) < 1:
        raise InfercastError(f"--tp/--pp/--cp/--ep must be >= 1 (got tp={tp}, pp={pp}, cp={cp}, ep={ep})")
    if not _splits(model, tp):
        kv = model.num_kv_heads
        allowed = [t for t in range(1, model.num_heads + 1) if _splits(model, t)]
        raise InfercastError(
            f"--tp {tp}: {model.id} has {model.num_heads} attention heads and {kv} KV heads; "
            f"allowed TP degrees: {', '.join(map(str, allowed))}"
        )
    if pp > model.num_layers:
        raise InfercastError(f"--pp {pp}: {model.id} has only {model.num_layers} layers")
    if ep > 1:
        if model.moe is None:
            raise InfercastError(f"--ep {ep}: {model.id} has no experts (expert parallelism needs a MoE model)")
        if tp % ep or model.moe.num_experts % ep:
            raise InfercastError(f"--ep {ep}: must divide --tp ({tp}) and {model.id}'s {model.moe.num_experts} experts")
    if layout.cp_kind not in ("ring", "ulysses"):
        raise InfercastError(f"--cp-kind: '{layout.cp_kind}' is not one of ring, ulysses")
    if layout.cp_kind == "ulysses" and (model.num_heads // tp) % cp:
        raise InfercastError(f"--cp {cp} with --cp-kind ulysses: {model.id}'s {model.num_heads // tp} heads per TP rank "
                             f"do not split over {cp} ranks")
    if not layout.ep_imbalance >= 1.0:
        raise InfercastError(f"--ep-imbalance: must be >= 1 (the busiest rank's load over the mean; got {layout.ep_imbalance})")


def _splits(model: ModelSpec, tp: int) -> bool:
    kv = model.num_kv_heads
    ffs = [model.intermediate_size] + ([model.moe.expert_intermediate_size] if model.moe else [])
    return model.num_heads % tp == 0 and (kv % tp == 0 or tp % kv == 0) and all(f % tp == 0 for f in ffs)
