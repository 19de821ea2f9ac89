"""A progress bar for simulations that run longer than a second (on stderr, so piped JSON or CSV
on stdout stays clean); silent for short runs and when stderr is not a terminal."""

from __future__ import annotations

import sys
import time

SHOW_AFTER_S = 1.0


class ProgressBar:
    def __init__(self, label: str = "simulating", force: bool = False):
        self.label, self.force = label, force
        self.t0 = time.perf_counter()
        self._bar = self._task = None

    def __call__(self, done: int, total: int, sim_s: float) -> None:
        if self._bar is None:
            if time.perf_counter() - self.t0 < SHOW_AFTER_S or not (self.force or sys.stderr.isatty()):
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("requests, {task.fields[sim]} simulated"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total, sim="0 s")
        self._bar.update(self._task, completed=done, total=total, sim=f"{sim_s:,.0f} s")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
