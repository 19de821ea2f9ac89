"""End-to-end check on this machine's CPU: time a torch Llama decoder (validate/torch_llama.py) at
several prefill and decode shapes and compare with infercast's prediction for `--hw local`.

Predictions take the device as `simulator.step.device("local")` gives it: the detected spec with
hwspecs/calibration/local.yaml when `infercast calibrate` has written one, else the defaults, so
the comparison improves by itself once a profile exists (`--resume` re-predicts measured points
without timing them again). Output: a CSV with a provenance header (default
validate/data/local-cpu/e2e.csv), the table and error statistics on stdout, and the report of
validate/e2e_report.py (PNG and Markdown next to the CSV).

    infercast validate e2e [--quick] [--out PATH] [--force | --resume] [--models 100m,300m] [--dtype fp32]
"""

from __future__ import annotations

import ctypes
import datetime as dt
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from simulator.errors import InfercastError

from .e2e_report import (
    DEFAULT_CSV,
    error_stats,
    read_csv,
    stats_lines,
    table_lines,
    write_csv,
)
from .torch_llama import DTYPES, PRESETS, TorchLlama, preset, to_model_spec


@dataclass(frozen=True)
class Point:
    phase: str  # prefill | decode
    batch: int
    length: int  # prompt tokens (prefill) or context tokens including the new one (decode)

    @property
    def key(self) -> tuple[str, int, int]:
        return self.phase, self.batch, self.length


def _grid(prefill: list[tuple[int, int]], batches: list[int], contexts: list[int]) -> list[Point]:
    return [Point("prefill", b, t) for b, t in prefill] + [Point("decode", b, c) for b in batches for c in contexts]


# Full run: ~3 minutes on 2 cores (Zen 4, fp32; 28 points); quick: ~40 s (13 points, the 300m at 3 shapes).
PLANS: dict[str, dict[str, list[Point]]] = {
    "full": {
        "100m": _grid([(1, 128), (1, 512), (1, 1024), (1, 2048), (4, 512)], [1, 4, 16], [256, 1024, 2048]),
        "300m": _grid([(1, 128), (1, 512), (1, 1024), (1, 2048), (4, 256)], [1, 4, 16], [256, 1024, 2048]),
        "1b": _grid([(1, 128), (1, 512)], [1, 4], [256, 1024]),
        "tiny": _grid([(1, 16), (2, 64)], [1, 4], [32, 128]),
    },
    "quick": {
        "100m": _grid([(1, 128), (1, 512), (1, 1024), (4, 128)], [1, 4, 16], [256, 1024]),
        "300m": _grid([(1, 128)], [1, 16], [1024]),
        "1b": _grid([(1, 128)], [1], [256]),
        "tiny": _grid([(1, 16)], [2], [32]),
    },
}
DEFAULT_MODELS = {"full": ["100m", "300m"], "quick": ["100m", "300m"]}
POINT_BUDGET_S = {"full": 6.0, "quick": 2.5}  # timed seconds per point, within min/max repeats


def local_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _quiet_allocator() -> bool:
    """Keep freed activation buffers up to 32 MiB in glibc's heap instead of returning them to
    the kernel after every op: without this each call re-faults its pages (minor faults and page
    zeroing in system time, which varies a lot on a VM) -- cost an inference engine with a caching
    allocator does not pay and the operator model does not describe."""
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**30))
    except (OSError, AttributeError):
        return False


def _load() -> str:
    """1-minute load average against the cores: other work on the machine slows the timings."""
    return f"{os.getloadavg()[0]:.2f} (1-min load average, {local_cores()} cores)" if hasattr(os, "getloadavg") else "?"


CLEAN_SHARE = 0.9  # a call whose process CPU time is below this share of threads x wall time was descheduled


def time_calls(fn: Callable[[], object], budget_s: float, min_reps: int, max_reps: int,
               threads: int) -> dict[str, float]:
    """Warm up once, then time min..max calls (as many as fit the budget). The machine may be
    shared: a call during which this process got less than CLEAN_SHARE of `threads` cores (CPU time
    over wall time; idle OpenMP workers spin, so an undisturbed call scores ~0.95-1) is discarded and
    retried, up to 3x the repeats. Returns the median and fastest of the kept calls, how many were
    kept and dropped, and their median CPU share (all calls kept if none was clean)."""
    def once() -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        fn()
        w, c = time.perf_counter() - w, time.process_time() - c
        return w, c / (w * threads) if w > 0 else 1.0

    warm, _ = once()
    reps = max(min_reps, min(max_reps, int(budget_s / max(warm, 1e-6))))
    calls = []
    while len(calls) < 3 * reps and sum(share >= CLEAN_SHARE for _, share in calls) < reps:
        calls.append(once())
    clean = [c for c in calls if c[1] >= CLEAN_SHARE] or calls
    walls = [w for w, _ in clean]
    return {"measured_s": statistics.median(walls), "measured_min_s": min(walls), "repeats": len(clean),
            "dropped": len(calls) - len(clean) if len(clean) < len(calls) else 0,
            "cpu_share": statistics.median(share for _, share in clean)}


# -- prediction -------------------------------------------------------------------------------
def predict(spec, dev, prec, point: Point) -> tuple[float, str]:
    from simulator.phases import Decode, Layout, Prefill
    from simulator.step import step_time

    phase = Prefill.of(point.batch, point.length) if point.phase == "prefill" else Decode.of(point.batch, point.length)
    st = step_time(spec, dev, phase, Layout(), prec)
    return float(st.total_s), st.bound(dev)


def local_device():
    from simulator.step import device

    return device("local")


def provenance(dev, threads: int, dtype: str) -> dict[str, str]:
    eng = dev.spec.engine
    cal = dev.cal
    peaks = ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in eng.peak.items())
    prov = {
        "what": "infercast end-to-end CPU check (validate/e2e_cpu.py): torch Llama decoder timed vs step_time for --hw local",
        "cpu": dev.spec.name,
        "cores": str(local_cores()),
        "threads": str(threads),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "dtype": dtype,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "calibrated": "true" if cal.calibrated else "false",
        "calibration": (f"hwspecs/calibration/local.yaml ({cal.provenance.date or 'undated'}; {cal.provenance.method})"
                        if cal.calibrated else "none: hwspecs/calibration/defaults.yaml"),
        "device_peaks": f"{peaks}; memory {dev.mem_bandwidth / 1e9:.1f} GB/s",
        "isa": dev.spec.note,
    }
    return prov


def _same_machine(old: dict[str, str], new: dict[str, str]) -> bool:
    return all(old.get(k) == new.get(k) for k in ("cpu", "cores", "threads", "torch", "dtype"))


def free_path(path: Path) -> Path:
    """`path` if free, else the first free <stem>-<n><suffix> beside it."""
    if not path.exists():
        return path
    n = 1
    while (alt := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return alt


def check_args(out: Path, models: list[str], dtype: str, force: bool, resume: bool, threads: int | None) -> None:
    if force and resume:
        raise InfercastError("--force and --resume exclude each other (overwrite, or continue the existing file)")
    if out.suffix != ".csv":
        raise InfercastError(f"--out: '{out}' must name a .csv file")
    if out.exists() and out.is_dir():
        raise InfercastError(f"--out: '{out}' is a directory; name a .csv file")
    unknown = [m for m in models if m not in PRESETS]
    if unknown or not models:
        raise InfercastError(f"--models: unknown size '{','.join(unknown)}' (known: {', '.join(PRESETS)})")
    if dtype not in DTYPES:
        raise InfercastError(f"--dtype: '{dtype}' not supported here (allowed: {', '.join(DTYPES)})")
    if threads is not None and threads < 1:
        raise InfercastError(f"--threads: must be at least 1 (got {threads})")


def run(out: Path = DEFAULT_CSV, quick: bool = False, force: bool = False, resume: bool = False,
        models: list[str] | None = None, dtype: str = "fp32", threads: int | None = None,
        points: dict[str, list[Point]] | None = None, log: Callable[[str], None] = print) -> tuple[Path, list[dict]]:
    """Measure, predict, write the CSV (after every point, so a killed run can `resume`); returns
    (the path written, its rows). `points` overrides the plan (model size -> points)."""
    mode = "quick" if quick else "full"
    out = Path(out)
    models = list(points) if points else (models or DEFAULT_MODELS[mode])
    check_args(out, models, dtype, force, resume, threads)
    threads = threads or local_cores()
    torch.set_num_threads(threads)
    dev = local_device()
    from simulator.precision import resolve_precision

    prec = resolve_precision(dev.spec, dtype)
    prov = provenance(dev, threads, dtype)
    prov["plan"] = mode if points is None else "custom"
    prov["load_before"] = _load()
    prov["allocator"] = "glibc mallopt: mmap threshold 32 MiB, no trim" if _quiet_allocator() else "default"

    out, done = _kept_points(out, prov, force, resume, log)
    log(f"device local: {prov['cpu']}, {threads} threads; calibrated: {prov['calibrated']}; torch {torch.__version__}, {dtype}")

    plan = points or {m: PLANS[mode][m] for m in models}
    budget = POINT_BUDGET_S[mode]
    rows: list[dict] = []
    t_start = time.perf_counter()
    for name in plan:
        cfg = preset(name).with_(dtype=dtype)
        spec = to_model_spec(cfg)
        todo = [p for p in plan[name] if (name, *p.key) not in done]
        model = None
        if todo:
            t0 = time.perf_counter()
            torch.manual_seed(0)
            model = TorchLlama(cfg).eval()
            log(f"{name}: {model.num_params() / 1e6:.1f}M parameters, built in {time.perf_counter() - t0:.1f} s")
        for p in plan[name]:
            if (name, *p.key) in done:
                row = dict(done[(name, *p.key)])
            else:
                row = {"model": name, "params": model.num_params(), "dtype": dtype, "phase": p.phase,
                       "batch": p.batch, "length": p.length, **measure(model, p, budget, threads)}
            row["predicted_s"], row["bound"] = predict(spec, dev, prec, p)
            row["rel_error"] = row["predicted_s"] / row["measured_s"] - 1.0
            rows.append(row)
            prov["measure_seconds"] = f"{time.perf_counter() - t_start:.0f}"
            prov["load_after"] = _load()
            write_csv(out, prov, rows)
            if (name, *p.key) not in done:
                log(f"  {p.phase:<7} batch {p.batch:>2} x {p.length:>4}: measured {row['measured_s'] * 1e3:9.1f} ms "
                    f"({row['repeats']} runs{_dropped(row)}), predicted {row['predicted_s'] * 1e3:9.1f} ms ({row['rel_error']:+.0%})")
        del model
    return out, rows


def _kept_points(out: Path, prov: dict, force: bool, resume: bool, log) -> tuple[Path, dict[tuple, dict]]:
    """(the CSV to write, points already measured on this machine that `resume` keeps): an existing
    file is continued with `resume`, replaced with `force`, else left alone for a new name."""
    if out.exists() and resume:
        old_prov, old_rows = read_csv(out)
        if _same_machine(old_prov, prov):
            log(f"resuming {out}: {len(old_rows)} measured points kept, predictions redone")
            return out, {(r["model"], r["phase"], r["batch"], r["length"]): r for r in old_rows}
        log(f"{out} was measured elsewhere ({old_prov.get('cpu')}, torch {old_prov.get('torch')}, "
            f"{old_prov.get('threads')} threads, {old_prov.get('dtype')}): measuring afresh")
    elif out.exists() and not force:
        new = free_path(out)
        log(f"{out} exists (use --force to overwrite, --resume to continue it): writing {new} instead")
        return new, {}
    return out, {}


def _dropped(row: dict) -> str:
    share = row.get("cpu_share") or 1.0
    extra = f", {row['dropped']} disturbed dropped" if row.get("dropped") else ""
    return extra + (f", CPU share {share:.2f}: machine busy" if share < CLEAN_SHARE else "")


def measure(model: TorchLlama, p: Point, budget: float, threads: int) -> dict[str, float]:
    cfg = model.cfg
    gen = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        if p.phase == "prefill":
            tokens = torch.randint(0, cfg.vocab_size, (p.batch, p.length), generator=gen)
            model.allocate_cache(p.batch, p.length)
            return time_calls(lambda: model.prefill(tokens), budget, 2, 5, threads)
        # decode at a fixed context: the cache holds length - 1 tokens (values written by `fill`),
        # the step writes the new token's K/V at length - 1 and attends to all `length` keys
        tokens = torch.randint(0, cfg.vocab_size, (p.batch,), generator=gen)
        model.allocate_cache(p.batch, p.length, fill=0.01)

        def step():
            model.set_position(p.length - 1)
            return model.decode_step(tokens)

        return time_calls(step, budget, 3, 9, threads)


def print_summary(path: Path, rows: list[dict], seconds: float, log: Callable[[str], None] = print) -> None:
    log("")
    log("\n".join(table_lines(rows)))
    log("")
    log("|relative error| (bias: median signed error, + = infercast predicts slower)")
    log("\n".join(stats_lines(error_stats(rows))))
    busy = [r for r in rows if (r.get("cpu_share") or 1.0) < CLEAN_SHARE]
    if busy:
        log(f"warning: {len(busy)} point(s) timed while other work held the CPU (cpu_share < {CLEAN_SHARE}); "
            "rerun them on a quiet machine (--force, or delete their rows and --resume)")
    log(f"wrote {path} ({len(rows)} points, {seconds:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    """`python -m validate.e2e_cpu [--quick] [--out PATH] [--force]`: the same as `infercast validate e2e`."""
    from simulator.cli import run as cli_run

    return cli_run(["validate", "e2e", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
