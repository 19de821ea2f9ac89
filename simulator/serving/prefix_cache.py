"""Prefix caching (vLLM's automatic prefix caching; SGLang's RadixAttention, Zheng et al. 2024):
the KV blocks of a shared prompt prefix stay in the pool once computed, are shared by every request
that starts with it, and are evicted least recently used when free blocks run short.

A prefix is named by the request's `prefix_id` and covers its first `prefix_len` tokens, rounded
down to whole blocks (only full blocks are shared). An entry is created when the first request with
that prefix finishes prefilling it: its blocks move from the request to the cache."""

from __future__ import annotations

from collections import OrderedDict

from .kv_blocks import BlockPool


class PrefixCache:
    def __init__(self, pool: BlockPool, enabled: bool = True):
        self.pool, self.enabled = pool, enabled
        self.entries: OrderedDict[int, list[int]] = OrderedDict()  # id -> [blocks, users]; LRU first
        self.idle_blocks = 0  # blocks of entries no running request uses (evictable)
        self.hits = self.misses = 0

    def shareable_tokens(self, prefix_len: int) -> int:
        return (prefix_len // self.pool.block_size) * self.pool.block_size

    def acquire(self, pid: int, prefix_len: int) -> int:
        """Tokens of the prompt already cached for prefix `pid` (0 on a miss); a hit holds the entry."""
        if not self.enabled or pid < 0 or self.shareable_tokens(prefix_len) == 0:
            return 0
        e = self.entries.get(pid)
        if e is None:
            self.misses += 1
            return 0
        self.hits += 1
        if e[1] == 0:
            self.idle_blocks -= e[0]
        e[1] += 1
        self.entries.move_to_end(pid)
        return e[0] * self.pool.block_size

    def release(self, pid: int) -> None:
        e = self.entries[pid]
        e[1] -= 1
        if e[1] == 0:
            self.idle_blocks += e[0]

    def insert(self, pid: int, prefix_len: int) -> int:
        """Blocks a request that just prefilled prefix `pid` hands to the cache (it keeps using them);
        0 when caching is off or another request cached the prefix first."""
        blocks = self.shareable_tokens(prefix_len) // self.pool.block_size
        if not self.enabled or pid < 0 or blocks == 0 or pid in self.entries:
            return 0
        self.entries[pid] = [blocks, 1]
        return blocks

    def make_room(self, blocks: int) -> None:
        """Evict idle entries, least recently used first, until `blocks` blocks are free (or none idle)."""
        if self.pool.free >= blocks or self.idle_blocks == 0:
            return
        for pid in [p for p, e in self.entries.items() if e[1] == 0]:
            n = self.entries.pop(pid)[0]
            self.idle_blocks -= n
            self.pool.free += n
            if self.pool.free >= blocks:
                return

    def available(self) -> int:
        """Blocks free now or after evicting idle prefixes."""
        return self.pool.free + self.idle_blocks
