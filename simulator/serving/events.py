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
        self.next_s = float("nan")  # a run stopped at max_time: when its next event was due
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
                self.next_s = heap[0][0]
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


class Backlog:
    """Requests that reached a replica and wait for their first admission to a batch, over all
    replicas (KV handovers in flight count too): O(1) per arrival and admission.

    It notes when the backlog last went from empty to non-empty (its onset), the onset of its
    largest busy period (the one that reached the peak) and when that period emptied, and calls
    `on_full` once, when the backlog first reaches `bound` requests (an overloaded deployment:
    simulate.py stops the arrivals); requests that all arrived at one instant are a batch, not a
    rate, and do not count as overload. `rejects` counts requests refused outright, by reason."""

    def __init__(self, loop: EventLoop, bound: float = float("inf"), on_full: Callable[[], None] | None = None):
        self.loop, self.bound, self.on_full = loop, bound, on_full
        self.n = 0
        self.onset_s = 0.0
        self.period = 0  # busy periods begun
        self.peak = 0
        self.peak_period = 0
        self.peak_onset_s = float("nan")
        self.peak_end_s = float("nan")  # when the peak's busy period emptied (NaN: it never did)
        self.full_s: float | None = None  # when it reached the bound
        self.rejects: dict[str, int] = {}

    def arrive(self) -> None:
        n = self.n = self.n + 1
        if n == 1:
            self.onset_s, self.period = self.loop.now, self.period + 1
        if n > self.peak:
            self.peak = n
            if self.peak_period != self.period:
                self.peak_period, self.peak_onset_s, self.peak_end_s = self.period, self.onset_s, float("nan")
            if n >= self.bound and self.full_s is None and self.loop.now > self.onset_s:  # not one instant's burst
                self.full_s = self.loop.now
                if self.on_full is not None:
                    self.on_full()

    def leave(self, count: int = 1) -> None:
        """`count` requests were admitted (or left the link, for handovers)."""
        n = self.n = self.n - count
        if n == 0 and self.period == self.peak_period:
            self.peak_end_s = self.loop.now

    def reject(self, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1
