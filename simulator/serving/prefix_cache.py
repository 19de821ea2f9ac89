"""Prefix caching (vLLM's automatic prefix caching; SGLang's RadixAttention, Zheng et al. 2024):
the KV blocks of a shared prompt prefix stay in the pool once computed, are shared by every request
that starts with it, and are evicted least recently used when free blocks run short.

A prefix is named by the request's `prefix_id` and covers its first `prefix_len` tokens, rounded
down to whole blocks (only full blocks are shared). An entry is created when the first request with
that prefix finishes prefilling it: its blocks move from the request to the cache.

Multi-turn sessions: a request whose session has another turn leaves its whole context (prompt and
reply) in the cache when it finishes (`keep`), under the key its next turn asks for. The entry
extends the prefix the request shared, as a child in a radix tree: it holds only its own blocks and
keeps its parent (a system prompt, or the session's previous context) from being evicted while
it lives. Eviction takes idle entries, least recently used first; a parent becomes idle when its
last child and user are gone."""

from __future__ import annotations

from collections import OrderedDict

from .kv_blocks import BlockPool

OWN, USERS, PARENT, TOTAL = range(4)  # an entry: [own blocks, holders (requests and children), parent id, blocks
#                                       from the start of the prompt, the parent's included]


class PrefixCache:
    def __init__(self, pool: BlockPool, enabled: bool = True):
        self.pool, self.enabled = pool, enabled
        self.entries: OrderedDict[int, list[int]] = OrderedDict()  # id -> entry; least recently used first
        self.idle_blocks = 0  # own blocks of entries nothing holds (evictable)
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
        self._hold(e)
        self.entries.move_to_end(pid)
        return e[TOTAL] * self.pool.block_size

    def _hold(self, e: list[int]) -> None:
        if e[USERS] == 0:
            self.idle_blocks -= e[OWN]
        e[USERS] += 1

    def release(self, pid: int) -> None:
        e = self.entries[pid]
        e[USERS] -= 1
        if e[USERS] == 0:
            self.idle_blocks += e[OWN]

    def insert(self, pid: int, prefix_len: int) -> int:
        """Blocks a request that just prefilled prefix `pid` hands to the cache (it keeps using them);
        0 when caching is off or another request cached the prefix first."""
        blocks = self.shareable_tokens(prefix_len) // self.pool.block_size
        if not self.enabled or pid < 0 or blocks == 0 or pid in self.entries:
            return 0
        self.entries[pid] = [blocks, 1, -1, blocks]
        return blocks

    def keep(self, key: int, blocks: int, via: int) -> int:
        """A finished request leaves the first `blocks` whole blocks of its context cached as entry
        `key` (for its session's next turn). `via`: the entry it shared (-1: none); its hold on that
        entry passes to the new one. Returns how many of the request's own blocks went to the cache;
        when it is -1 nothing was kept (caching off, or `key` held by another request), and the
        request frees its blocks and releases `via` as usual."""
        if not self.enabled or key < 0:
            return -1
        old = self.entries.get(key)
        if old is not None and key != via:
            if old[USERS]:
                return -1
            self._drop(key)
        if key == via:  # the session's entry grows by this turn's prompt and reply
            e = self.entries[key]
            add = max(blocks - e[TOTAL], 0)
            e[OWN] += add
            e[TOTAL] += add
            self.entries.move_to_end(key)
            self.release(key)
            return add
        base = self.entries[via][TOTAL] if via >= 0 else 0
        own = max(blocks - base, 0)
        self.entries[key] = [own, 0, via, base + own]
        self.idle_blocks += own
        return own

    def _drop(self, pid: int) -> None:
        """Evict idle entry `pid`: its blocks go back to the pool, its parent loses a holder."""
        e = self.entries.pop(pid)
        self.idle_blocks -= e[OWN]
        self.pool.free += e[OWN]
        if e[PARENT] >= 0:
            self.release(e[PARENT])

    def make_room(self, blocks: int) -> None:
        """Evict idle entries, least recently used first, until `blocks` blocks are free (or none idle)."""
        while self.pool.free < blocks and self.idle_blocks:
            for pid in [p for p, e in self.entries.items() if e[USERS] == 0]:
                self._drop(pid)
                if self.pool.free >= blocks:
                    return

    def available(self) -> int:
        """Blocks free now or after evicting idle prefixes."""
        return self.pool.free + self.idle_blocks
