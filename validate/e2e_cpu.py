"""End-to-end check on this machine's CPU: time a torch Llama decoder (validate/torch_llama.py) at
several prefill and decode shapes and compare with infercast's prediction for the calibrated
`local` device.

The model's steps and the calibration sweep's kernels (validate/calibrate_cpu.py) are timed in the
same interleaved rounds (validate/timing_rounds.py): this VM's speed drifts by up to 1.4x between
minutes, so a profile measured at another time would compare two machines. The profile is fitted to
the kernels alone (never to the model's timings) and written beside the CSV with the kernel table;
predictions use it. Output, in the run folder ($INFERCAST_HOME/validate/local-cpu, or --out; never
infercast's own package folders): a CSV with a provenance header (e2e.csv; e2e-1.csv, ... when a run
is there already), its raw per-round timings (<csv>.raw.csv, so a killed run resumes), the table and
error statistics on stdout, and the report of validate/e2e_report.py (PNG and Markdown next to the
CSV). `infercast validate publish` commits a run as the reference data of validate/data/local-cpu.

    infercast validate e2e [--quick] [--out FOLDER] [--force | --resume] [--models 100m,300m] [--threads N]
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

from .boundary import e2e_folder, free_run, keep_dated, local_cores, threads_flag
from .e2e_report import error_stats, stats_lines, table_lines, write_csv
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


CLEAN_SHARE = 0.9  # a round whose process CPU time is below this share of threads x wall time was descheduled
ROUNDS = {"full": 5, "quick": 3}  # rounds for the model steps (and the sweep's long kernels)


# -- prediction -------------------------------------------------------------------------------
def predict(spec, dev, prec, point: Point) -> tuple[float, str]:
    from simulator.phases import Decode, Layout, Prefill
    from simulator.step import step_time

    phase = Prefill.of(point.batch, point.length) if point.phase == "prefill" else Decode.of(point.batch, point.length)
    st = step_time(spec, dev, phase, Layout(), prec)
    return float(st.total_s), st.bound(dev)


def provenance(threads: int, dtype: str) -> dict[str, str]:
    from simulator.local_device import detect_local

    return {
        "what": "infercast end-to-end CPU check (validate/e2e_cpu.py): torch Llama decoder timed vs step_time for --hw local",
        "cpu": detect_local(use_profile=False).name,
        "cores": str(local_cores()),
        "threads": str(threads),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "dtype": dtype,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _keep_measured(prov: dict[str, str], raw: Path) -> bool:
    """A resumed run (its raw timings exist) keeps the measurement's own date and load in `prov`,
    not the resume's; returns whether it is one."""
    from .timing_rounds import read_header

    if not raw.exists():
        return False
    kept = read_header(raw)
    prov.update({k: kept[k] for k in ("date", "load_before") if k in kept})
    return True


def fitted_device(kernel_csv: Path):
    """(Device, profile path): the `local` spec with the measured rates and the profile fitted to
    the kernel table, written next to it (an older one there is kept under a dated name)."""
    from simulator.calibration import Calibration
    from simulator.config_io import load_model
    from simulator.local_device import detect_local
    from simulator.roofline import Device

    from .calibrate_cli import fit_and_write
    from .kernel_fit import measured_peaks, read_csv

    prof, _ = fit_and_write(kernel_csv, kernel_csv.with_name(kernel_csv.stem.replace("-kernels", "") + "-calibration.yaml"))
    spec = detect_local(measured=measured_peaks(read_csv(kernel_csv).rows))
    return Device(spec, load_model(prof, Calibration)), prof


def _same_machine(old: dict[str, str], new: dict[str, str]) -> bool:
    return all(old.get(k) == new.get(k) for k in ("cpu", "cores", "threads", "torch", "dtype"))


def check_args(models: list[str], dtype: str, force: bool, resume: bool, threads: int | None) -> None:
    """The flags of `validate e2e` but --out (boundary.output_folder checks the folder)."""
    if force and resume:
        raise InfercastError("--force and --resume exclude each other (measure afresh, or continue the last run)")
    unknown = [m for m in models if m not in PRESETS]
    if unknown or not models:
        raise InfercastError(f"--models: unknown size '{','.join(unknown)}' (known: {', '.join(PRESETS)})")
    if dtype not in DTYPES:
        raise InfercastError(f"--dtype: '{dtype}' not supported here (allowed: {', '.join(DTYPES)})")
    if threads is not None:
        threads_flag(threads)


def run(out: Path | None = None, quick: bool = False, force: bool = False, resume: bool = False,
        models: list[str] | None = None, dtype: str = "fp32", threads: int | None = None,
        points: dict[str, list[Point]] | None = None, log: Callable[[str], None] = print,
        kernel_shapes: list[dict] | None = None, rounds: int | None = None) -> tuple[Path, list[dict]]:
    """Time the model's points and the calibration sweep's kernels in interleaved rounds, fit the profile
    to the kernels, predict the points, write the CSV `out` (default $INFERCAST_HOME/validate/local-cpu/
    e2e.csv); returns (the path, its rows). `points` overrides the plan, `kernel_shapes` the sweep."""
    from simulator.precision import resolve_precision

    from . import calibrate_cpu
    from .timing_rounds import median_polish, read_raw, run_rounds

    mode = "quick" if quick else "full"
    out = Path(out) if out is not None else e2e_folder() / "e2e.csv"
    models = list(points) if points else (models or DEFAULT_MODELS[mode])
    check_args(models, dtype, force, resume, threads)
    threads = threads or local_cores()
    torch.set_num_threads(threads)
    prov = provenance(threads, dtype)
    prov["plan"] = mode if points is None else "custom"
    prov["load_before"] = _load()
    prov["allocator"] = "glibc mallopt: mmap threshold 32 MiB, no trim" if _quiet_allocator() else "default"
    out, raw = _files(out, prov, force, resume, log)
    resumed = _keep_measured(prov, raw)
    plan = points or {m: PLANS[mode][m] for m in models}
    shapes = calibrate_cpu.shapes(quick) if kernel_shapes is None else kernel_shapes
    rounds = rounds or calibrate_cpu.ROUNDS[mode]
    jobs = _model_jobs(plan, dtype) + calibrate_cpu.jobs(shapes, calibrate_cpu.BUDGET_S[mode])
    log(f"device local: {prov['cpu']}, {threads} threads; torch {torch.__version__}, {dtype}; "
        f"{sum(map(len, plan.values()))} model points and {len(shapes)} kernels, up to {rounds} rounds")
    t0 = time.perf_counter()
    run_rounds(jobs, rounds, raw, threads, header=prov, long_rounds=min(rounds, ROUNDS[mode]),
               progress=_progress(log))
    timings = read_raw(raw)
    pol = median_polish(timings)
    kernel_csv = out.with_name(out.stem + "-kernels.csv")
    calibrate_cpu.write_table(kernel_csv, shapes, {**prov, "method": calibrate_cpu.METHOD}, pol)
    dev, profile = fitted_device(kernel_csv)
    prec = resolve_precision(dev.spec, dtype)
    factors = sorted(pol.round_factor.values())
    prov.update({"calibrated": "true", "calibration": f"{profile.name}: fitted to {kernel_csv.name}, timed in the same rounds",
                 "device_peaks": ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in dev.spec.engine.peak.items())
                 + f"; memory {dev.mem_bandwidth / 1e9:.1f} GB/s",
                 "rounds": str(len(factors)), "round_speed": f"x{factors[0]:.3f} to x{factors[-1]:.3f} of the median round",
                 "noise": f"median |residual| after job and round effects {100 * pol.spread:.1f}%",
                 "measure_seconds": f"{time.perf_counter() - t0:.0f}" + (" (this resumed run)" if resumed else ""),
                 "load_after": _load()})
    rows = _compare(plan, dtype, dev, prec, pol, timings, _shares(raw))
    write_csv(out, prov, rows)
    return out, rows


def _compare(plan: dict[str, list[Point]], dtype: str, dev, prec, pol, timings: dict, shares: dict) -> list[dict]:
    """One row per model point: its median-polished measured time against the prediction."""
    rows = []
    for name, pts in plan.items():
        spec = to_model_spec(preset(name).with_(dtype=dtype))
        for p in pts:
            key = _key(name, p)
            row = {"model": name, "params": _params(spec), "dtype": dtype, "phase": p.phase, "batch": p.batch,
                   "length": p.length, "measured_s": pol.times[key], "rounds": len(timings[key]),
                   "spread": pol.job_spread.get(key, 0.0), "cpu_share": shares.get(key, 1.0)}
            row["predicted_s"], row["bound"] = predict(spec, dev, prec, p)
            row["rel_error"] = row["predicted_s"] / row["measured_s"] - 1.0
            rows.append(row)
    return rows


def _key(name: str, p: Point) -> str:
    return f"model|{name}|{p.phase}|{p.batch}|{p.length}"


def _params(spec) -> int:
    from simulator.layers import param_count

    return int(param_count(spec))


def _progress(log: Callable[[str], None]) -> Callable[[int, int], None]:
    t0, last = time.perf_counter(), [0.0]

    def tick(i: int, total: int) -> None:
        now = time.perf_counter() - t0
        if now - last[0] >= 15 or i == total:
            last[0] = now
            log(f"  {i}/{total} timings, {now:.0f} s")
    return tick


def _shares(raw: Path) -> dict[str, float]:
    """Median CPU share of each job over its rounds."""
    import csv

    by: dict[str, list[float]] = {}
    with raw.open() as f:
        for r in csv.DictReader(line for line in f if not line.startswith("#")):
            by.setdefault(r["key"], []).append(float(r["cpu_share"]))
    return {k: statistics.median(v) for k, v in by.items()}


def _model_jobs(plan: dict[str, list[Point]], dtype: str) -> list:
    """A timing job per model point; each model is built once (seeded), on first use."""
    from .timing_rounds import Job

    built: dict[str, TorchLlama] = {}

    def model(name: str) -> TorchLlama:
        if name not in built:
            torch.manual_seed(0)
            built[name] = TorchLlama(preset(name).with_(dtype=dtype)).eval()
        return built[name]

    return [Job(_key(name, p), (lambda name=name, p=p: _point_call(model(name), p)), warm=1, budget_s=0.3)
            for name, pts in plan.items() for p in pts]


def _point_call(model: TorchLlama, p: Point) -> Callable[[], object]:
    """The call that runs one point: a prefill of `length` tokens per sequence from an empty cache,
    or one decode step at a fixed context (the cache holds length - 1 tokens, written by `fill`;
    the step writes the new token's K/V at length - 1 and attends to all `length` keys)."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(1)
    if p.phase == "prefill":
        tokens = torch.randint(0, cfg.vocab_size, (p.batch, p.length), generator=gen)
        model.allocate_cache(p.batch, p.length)

        def prefill():
            with torch.inference_mode():
                return model.prefill(tokens)
        return prefill
    tokens = torch.randint(0, cfg.vocab_size, (p.batch,), generator=gen)
    model.allocate_cache(p.batch, p.length, fill=0.01)

    def step():
        model.set_position(p.length - 1)
        with torch.inference_mode():
            return model.decode_step(tokens)
    return step


def _files(out: Path, prov: dict, force: bool, resume: bool, log) -> tuple[Path, Path]:
    """(the CSV to write, its raw timings file): an existing run is continued with `resume` (when it
    was measured on this machine); with `force` its files are kept under a dated name and the run
    takes its name afresh; else it is left alone and the run takes a new name. Nothing is overwritten."""
    from .timing_rounds import read_header

    raw = out.with_suffix(".raw.csv")
    if resume and raw.exists():
        old = read_header(raw)
        if _same_machine(old, prov):
            log(f"resuming {raw}: its timings are kept")
            return out, raw
        log(f"{raw} was measured elsewhere ({old.get('cpu')}, torch {old.get('torch')}, {old.get('threads')} threads, "
            f"{old.get('dtype')}): measuring afresh")
    if force:
        kept = keep_dated(out)
        if kept is not None:
            log(f"kept the earlier run {out.name} as {kept.name}")
        return out, raw
    new = free_run(out)
    if new != out:
        log(f"{out} exists (--force measures afresh under its name, --resume continues it): writing {new} instead")
    return new, new.with_suffix(".raw.csv")


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
