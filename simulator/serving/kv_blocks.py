"""Paged KV cache (vLLM's PagedAttention, Kwon et al. 2023): a pool of fixed-size blocks; which
request holds how many lives with its running row (batch.Row.blocks)."""

from __future__ import annotations


class BlockPool:
    def __init__(self, total_blocks: int, block_size: int = 16, watermark: float = 0.01):
        self.total = total_blocks
        self.block_size = block_size
        self.reserve = int(watermark * total_blocks)  # kept free when admitting new prefills
        self.free = total_blocks

    def blocks_for(self, tokens):
        """Blocks holding `tokens` tokens (works on numpy arrays too)."""
        return -(-tokens // self.block_size)

    def can_admit(self, tokens: int) -> bool:
        return self.blocks_for(tokens) <= self.free - self.reserve

    def fits_ever(self, tokens: int) -> bool:
        return self.blocks_for(tokens) <= self.total - self.reserve
