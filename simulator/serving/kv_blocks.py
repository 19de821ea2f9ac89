"""Paged KV cache (vLLM's PagedAttention, Kwon et al. 2023): fixed-size blocks per request."""

from __future__ import annotations


class BlockManager:
    def __init__(self, total_blocks: int, block_size: int = 16, watermark: float = 0.01):
        self.total = total_blocks
        self.block_size = block_size
        self.reserve = int(watermark * total_blocks)  # kept free when admitting new prefills
        self.free = total_blocks
        self.held: dict[int, int] = {}  # request id -> blocks

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def can_admit(self, tokens: int) -> bool:
        return self.blocks_for(tokens) <= self.free - self.reserve

    def grow(self, rid: int, tokens: int) -> bool:
        """Hold enough blocks for `tokens` tokens of request `rid`; False if memory ran out."""
        need = self.blocks_for(tokens) - self.held.get(rid, 0)
        if need > self.free:
            return False
        if need > 0:
            self.free -= need
            self.held[rid] = self.held.get(rid, 0) + need
        return True

    def release(self, rid: int) -> None:
        self.free += self.held.pop(rid, 0)

    @property
    def used_fraction(self) -> float:
        return 1.0 - self.free / self.total if self.total else 0.0
