"""The event loop: a heap of (time, priority, sequence, action). SimPy's core design, our code.

No global state: each simulation owns its loop, so two runs in one process are independent.
Equal times run in priority order, then in scheduling order (the sequence number), which makes
a run deterministic.
"""

from __future__ import annotations

import heapq
from typing import Callable

from ..errors import InfercastError


class EventLoop:
    def __init__(self, max_time_s: float = float("inf"), max_events: int = 50_000_000):
        self.now = 0.0
        self.events = 0
        self.max_time_s = max_time_s
        self.max_events = max_events
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, time_s: float, action: Callable[[], None], priority: int = 0) -> None:
        """Run `action` at absolute time `time_s` (never in the past)."""
        if time_s < self.now:
            raise ValueError(f"cannot schedule at {time_s} before now ({self.now})")
        heapq.heappush(self._heap, (time_s, priority, self._seq, action))
        self._seq += 1

    def after(self, delay_s: float, action: Callable[[], None], priority: int = 0) -> None:
        self.at(self.now + delay_s, action, priority)

    def run(self, tick: Callable[[], None] | None = None, every: int = 4096) -> str:
        """Run until no events remain or a bound is hit; returns why it stopped:
        'idle', 'max_time' or 'max_events' (runs are bounded, never a hang). `tick` is called
        every `every` events (progress reporting)."""
        heap = self._heap
        while heap:
            if heap[0][0] > self.max_time_s:
                return "max_time"
            if self.events >= self.max_events:
                return "max_events"
            time_s, _, _, action = heapq.heappop(heap)
            self.now = time_s
            self.events += 1
            action()
            if tick is not None and self.events % every == 0:
                tick()
        return "idle"

    @property
    def pending(self) -> int:
        return len(self._heap)


def check_bounds(max_time_s: float, max_events: int) -> None:
    if not max_time_s > 0:
        raise InfercastError(f"--max-time: must be > 0 seconds (got {max_time_s})")
    if max_events < 1:
        raise InfercastError(f"--max-events: must be >= 1 (got {max_events})")
