"""Interleaved timing rounds, for a machine whose speed drifts (a shared VM: this sandbox's 2-core
EPYC ran the same GEMV 1.4x slower at one hour than at another, and +-10% within a minute).

Every job is timed once per round, round after round, in a shuffled order, so a slow spell slows
all jobs alike instead of whichever shapes happened to run then. Tukey's median polish then splits
log(time) into a job effect and a round effect (the machine's speed in that round). A job's time is
the trimmed mean of its round-corrected times, at the median round's speed: this VM also switches
between a fast and a ~1.5x slower state for a second or more at a time, shorter than a round, so a
job's 40 ms in a round lands in one state or the other. The median over rounds then sits in
whichever state held the majority of that job's rounds (neighbouring sizes of one op jumped +-15%),
while a long model step spans both states and takes their mean. On three full sweeps of this CPU,
the mean took held-out p90 from 16.0/12.6/16.0% to 12.6/12.2/12.2%.

Raw timings go to a CSV (key, round, seconds, CPU share), one line per job and round, written as
they are taken: a killed run resumes where it stopped."""

from __future__ import annotations

import csv
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

RAW_COLUMNS = ("key", "round", "time_s", "cpu_share")
BLOCK_S = 0.002  # calls per timed block: enough for a block to last this long
LONG_S = 0.1  # calls this long are timed once per round


@dataclass
class Job:
    key: str
    setup: Callable[[], Callable[[], object]]  # builds the operands, returns the call; all dropped after the round
    warm: int = 1  # untimed calls before timing (a full rotation of the operands that stream from memory)
    budget_s: float = 0.05  # timed seconds per round (at least one call)


def time_call(fn: Callable[[], object], budget_s: float, warm: int, threads: int) -> tuple[float, float]:
    """(median seconds per call over blocks of at least BLOCK_S, share of `threads` cores the
    process got while timing: below ~0.9 it was descheduled). A call of LONG_S or more is timed
    once per round: its one-time costs are small beside it, and rounds repeat it. Timed with
    time.perf_counter directly: torch.utils.benchmark.Timer.timeit adds two untimed warm-up calls
    per measurement, which would triple the sweep's second-long GEMMs."""
    def block(n: int) -> tuple[float, float, float]:
        w, c = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        return (time.perf_counter() - w) / n, time.perf_counter() - w, time.process_time() - c

    first, wall, cpu = block(1)
    if first >= LONG_S:
        return first, cpu / (wall * threads)
    for _ in range(max(warm - 1, 0)):
        fn()
    per_block = max(1, math.ceil(BLOCK_S / max(first, 1e-9)))
    times, wall, cpu = [], 0.0, 0.0
    while (wall < budget_s or len(times) < 3) and len(times) < 200:
        t, w, c = block(per_block)
        times.append(t)
        wall, cpu = wall + w, cpu + c
    return float(np.median(times)), cpu / (wall * threads)


def read_header(path: Path) -> dict[str, str]:
    """The `# key: value` lines at the top of a raw file."""
    out = {}
    with Path(path).open() as f:
        for line in f:
            if not line.startswith("#"):
                break
            k, _, v = line[1:].partition(":")
            out[k.strip()] = v.strip()
    return out


def read_raw(path: Path) -> dict[str, dict[int, float]]:
    """key -> {round: seconds}."""
    out: dict[str, dict[int, float]] = {}
    if Path(path).exists():
        with Path(path).open() as f:
            for r in csv.DictReader(line for line in f if not line.startswith("#")):
                out.setdefault(r["key"], {})[int(r["round"])] = float(r["time_s"])
    return out


def run_rounds(jobs: list[Job], rounds: int, raw: Path, threads: int, header: dict[str, str] | None = None,
               progress: Callable[[int, int], None] | None = None, seed: int = 0, long_rounds: int | None = None,
               timer: Callable | None = None) -> int:
    """Time every (job, round) not already in `raw`, round by round; returns how many were timed.
    Jobs whose calls take LONG_S or more stop after `long_rounds` rounds (default: all): a second-
    long call varies little, while a microsecond kernel needs many rounds to average out the
    machine's spells. `timer(call, job)` -> (seconds, CPU share) replaces time_call (a GPU's do_bench)."""
    raw = Path(raw)
    done = read_raw(raw)
    long_rounds = rounds if long_rounds is None else min(long_rounds, rounds)
    new = not raw.exists()
    raw.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    total = len(jobs) * long_rounds + (rounds - long_rounds) * len(jobs) - sum(len(v) for v in done.values())
    i = 0
    with raw.open("a", newline="") as f:
        if new:
            for k, v in (header or {}).items():
                f.write(f"# {k}: {v}\n")
        w = csv.DictWriter(f, fieldnames=list(RAW_COLUMNS))
        if new:
            w.writeheader()
        for r in range(rounds):
            mine = [j for j in jobs if r not in done.get(j.key, {})
                    and (r < long_rounds or float(np.median(list(done.get(j.key, {0: 0.0}).values()))) < LONG_S)]
            rng.shuffle(mine)
            for j in mine:
                fn = j.setup()
                t, share = timer(fn, j) if timer else time_call(fn, j.budget_s, j.warm, threads)
                w.writerow({"key": j.key, "round": r, "time_s": f"{t:.6e}", "cpu_share": f"{share:.3f}"})
                f.flush()
                done.setdefault(j.key, {})[r] = t
                i += 1
                if progress is not None:
                    progress(i, max(total, i))
    return i


@dataclass
class Polished:
    times: dict[str, float]  # key -> seconds at the median round's speed (trimmed mean over rounds)
    round_factor: dict[int, float]  # round -> its speed relative to the median round (>1: slower)
    spread: float  # median |residual| after removing job and round effects (relative)
    job_spread: dict[str, float]  # the same, per job


TRIM = 0.1  # share of a job's rounds dropped at each end before averaging its times


def median_polish(raw: dict[str, dict[int, float]], sweeps: int = 10, average: str = "mean") -> Polished:
    """Tukey's median polish of log(time) over jobs x rounds (missing cells allowed). A job's time is
    then, with average="mean", the mean of its round-corrected times after dropping TRIM of its
    rounds at each end; with "median", its median (the polish's job effect)."""
    keys = sorted(raw)
    rounds = sorted({r for v in raw.values() for r in v})
    x = np.full((len(keys), len(rounds)), np.nan)
    for i, k in enumerate(keys):
        for j, r in enumerate(rounds):
            if r in raw[k]:
                x[i, j] = math.log(raw[k][r])
    row, col = np.zeros(len(keys)), np.zeros(len(rounds))
    res = x.copy()
    for _ in range(sweeps):
        d = np.nanmedian(res, axis=1)
        row, res = row + d, res - d[:, None]
        c = np.nanmedian(res, axis=0)
        c = np.where(np.isnan(c), 0.0, c)
        col, res = col + c, res - c[None, :]
    mid = float(np.median(col)) if len(col) else 0.0
    scale = np.array([_trimmed_mean(np.exp(r[np.isfinite(r)])) for r in res]) if average == "mean" else np.ones(len(keys))
    times = {k: math.exp(row[i] + mid) * float(scale[i]) for i, k in enumerate(keys)}
    factor = {r: math.exp(col[j] - mid) for j, r in enumerate(rounds)}
    dev = np.abs(np.expm1(res))
    spread = float(np.nanmedian(dev)) if np.isfinite(res).any() else 0.0
    per_job = {k: float(np.nanmedian(dev[i])) for i, k in enumerate(keys) if np.isfinite(dev[i]).any()}
    return Polished(times, factor, spread, per_job)


def _trimmed_mean(x: np.ndarray) -> float:
    """Mean of `x` without its TRIM lowest and TRIM highest values (1.0 when empty)."""
    if not len(x):
        return 1.0
    x, cut = np.sort(x), int(TRIM * len(x))
    return float(np.mean(x[cut:len(x) - cut]))
