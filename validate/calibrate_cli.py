"""`infercast calibrate`: measure this machine's kernels, fit its calibration profile, report the
held-out error. The profile goes to $INFERCAST_HOME/calibration/local.yaml (default ~/.infercast),
where the `local` device finds it; an older profile there is kept under a dated name. The sweep goes
to --out or $INFERCAST_HOME/calibration/runs/<device>, never into infercast's own folders; every flag
and both folders are checked before anything is measured."""

from __future__ import annotations

import datetime
import re
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, invoke_without_command=True,
                  help="Measure kernels on this machine and fit its calibration profile. The sweep goes to --out or "
                       "$INFERCAST_HOME/calibration/runs/<device>, the profile to $INFERCAST_HOME/calibration/<device>.yaml "
                       "(an older one is kept under a dated name); `infercast validate publish <folder>/kernels.csv`, "
                       "from a source checkout, commits a sweep as reference data.")


class Target(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


@app.callback()
def calibrate(
    device: Target = typer.Option(Target.auto, "--device", help="auto (a GPU if torch sees one), cpu or cuda."),
    quick: bool = typer.Option(False, "--quick", help="A short sweep (under 3 minutes on 2 cores)."),
    out: Optional[str] = typer.Option(None, help="Folder for the sweep (kernels.csv and its raw timings; a sweep "
                                      "there is resumed) (default: $INFERCAST_HOME/calibration/runs/<device>; never "
                                      "infercast's own folders)."),
    fit_only: bool = typer.Option(False, "--fit-only", help="Fit the kernels.csv already in --out without measuring."),
    threads: int = typer.Option(0, "--threads", help="CPU: torch threads to calibrate, 1 up to the cores this process "
                                "may use (0: all of them); on a small shared VM, fewer threads than vCPUs time far "
                                "more steadily."),
    hw: Optional[str] = typer.Option(None, "--hw", help="GPU: the hwspec ID the profile is for (default: from the "
                                     "GPU's name)."),
) -> None:
    """Sweep GEMM, attention, copy and elementwise shapes, fit efficiency curves and overheads,
    write the profile and print its held-out error (fit on 70% of shapes, predict the other 30%).
    CPU: torch kernels; GPU: the Triton kernels of kernels/, timed with do_bench. To commit a sweep
    as reference data, run `infercast validate publish <out>/kernels.csv` from a source checkout."""
    from .boundary import home_folder, threads_flag

    n_threads = threads_flag(threads)
    torch = _torch()
    gpu = _on_gpu(device, n_threads, hw)
    spec, device_id = _gpu_spec(hw) if gpu else _cpu_spec(n_threads)
    csv_path = _sweep_table(out, fit_only, _slug(device_id if gpu else spec.name))
    profiles = home_folder("calibration")  # where the profile goes: writable before anything is measured
    if not fit_only:
        from simulator.serving.progress import ProgressBar

        from . import calibrate_cpu, calibrate_gpu

        bar = ProgressBar("measuring", force=False)
        try:
            n = (calibrate_gpu if gpu else calibrate_cpu).measure(csv_path, quick,
                                                                  progress=lambda i, total: bar(i, total, 0.0))
        finally:
            bar.close()
        print(f"took {n} new timings ({csv_path.with_suffix('.raw.csv').name}); kernel table {csv_path}")
    prof, held = fit_and_write(csv_path, profiles / f"{device_id}.yaml", spec if gpu else None, device_id)
    print(f"held-out error (fit on 70%, predict 30%, {held['points']} shapes): median {100 * held['median']:.1f}%, "
          f"90th percentile {100 * held['p90']:.1f}%, worst {100 * held['worst']:.1f}%")
    noise = read_csv_noise(csv_path)
    if not gpu and noise is not None and noise > 0.05 and torch.get_num_threads() > 1:
        print(f"note: timings scattered by {100 * noise:.1f}% within rounds; on a shared VM, --threads "
              f"{torch.get_num_threads() - 1} usually times far more steadily")
    print(f"profile written to {prof}")


def _torch():
    from simulator.errors import InfercastError

    try:
        import torch
    except ImportError:
        raise InfercastError("calibrate: needs torch (pip install -e '.[kernels]')") from None
    return torch


def _on_gpu(device: Target, threads: int | None, hw: str | None) -> bool:
    """Whether this run calibrates the GPU; a flag that belongs to the other kind of run is refused."""
    from simulator.errors import InfercastError, bad_input

    cuda = _torch().cuda.is_available()
    if device is Target.cuda and not cuda:
        raise InfercastError("--device cuda: torch sees no CUDA device on this machine")
    gpu = device is Target.cuda or (device is Target.auto and cuda)
    if gpu and threads:
        raise bad_input("--threads", "sets a CPU calibration's torch threads (--device cpu); this run calibrates the GPU",
                        threads)
    if not gpu and hw is not None:
        raise bad_input("--hw", "names the GPU a GPU calibration is for; this run calibrates the CPU "
                                "(torch sees no GPU, or --device cpu)", hw)
    return gpu


def _sweep_table(out: str | None, fit_only: bool, run_name: str) -> Path:
    """The sweep's kernels.csv: in --out or $INFERCAST_HOME/calibration/runs/<run_name>, a folder
    that must be writable to measure into, or hold a table to fit (--fit-only only reads it)."""
    from simulator.errors import bad_input

    from .boundary import home_folder, output_folder

    if fit_only:
        if out is not None and not out.strip():
            raise bad_input("--out", "must name a folder", out)
        folder = Path(out).expanduser() if out else user_runs() / run_name
        if out and folder.is_file():
            raise bad_input("--out", "must be a folder holding kernels.csv, and this is a file", out)
        if not (folder / "kernels.csv").is_file():
            raise bad_input("--fit-only", f"needs the kernel table of an earlier sweep, {folder / 'kernels.csv'}; "
                                          "measure one first (without --fit-only)")
        return folder / "kernels.csv"
    folder = output_folder(out, "--out") if out is not None else home_folder(Path("calibration", "runs", run_name))
    return folder / "kernels.csv"


def user_runs() -> Path:
    from simulator.calibration import user_calibration_dir

    return user_calibration_dir() / "runs"


def _cpu_spec(threads: int | None):
    import torch

    from simulator.local_device import detect_local

    from .boundary import local_cores

    torch.set_num_threads(threads or local_cores())
    return detect_local(use_profile=False), "local"


def _gpu_spec(hw: str | None):
    """(the GPU's hwspec, its ID): --hw, else the shipped spec matching the name CUDA reports."""
    import torch

    from simulator.catalog import load_hardware
    from simulator.errors import InfercastError

    from .calibrate_gpu import hw_id

    name = torch.cuda.get_device_name(0)
    hw = hw or hw_id(name)
    if hw is None:
        raise InfercastError(f"--hw: no shipped hwspec matches the GPU '{name}'; name one (infercast list hw)")
    spec = load_hardware(hw)
    return spec, spec.id  # a spec file given by path: its profile is named by its ID, not the path


def read_csv_noise(csv_path: Path) -> float | None:
    """The within-round scatter a sweep's provenance reports (None for older sweeps)."""
    from .kernel_fit import read_csv

    m = re.search(r"([\d.]+)%", read_csv(csv_path).provenance.get("noise", ""))
    return float(m.group(1)) / 100 if m else None


def fit_and_write(csv_path: Path, dest: Path, spec=None, device_id: str = "local") -> tuple[Path, dict]:
    """Fit the profile of the measurements in `csv_path` and write it to `dest` (an existing file
    there is renamed, never overwritten). Returns (path written, held-out summary). `spec`: the
    device's hwspec (default: this CPU, with the measured rates)."""
    from simulator.calibration import Calibration
    from simulator.local_device import detect_local

    from .kernel_fit import fit_profile, held_out, measured_peaks, read_csv, summary
    from .profile_io import write_profile

    data = read_csv(csv_path)
    peaks = measured_peaks(data.rows)
    spec = spec or detect_local(measured=peaks)
    _, _, errs = held_out(spec, data.rows, device_id)
    held = summary(errs)
    cal = fit_profile(spec, data.rows, device_id)
    prov = data.provenance
    cal = Calibration.model_validate({
        **cal.model_dump(),
        "measured": peaks.model_dump(),
        "held_out_error": {"median": held["median"], "p90": held["p90"], "points": held["points"]},
        "provenance": {"device": prov.get("device", spec.name), "driver": prov.get("driver", ""),
                       "libraries": {k: prov[k] for k in ("torch", "triton") if prov.get(k)},
                       "date": prov.get("date", datetime.date.today().isoformat()),
                       "method": prov.get("method", ""), "data": str(csv_path)},
        "note": "fitted by infercast calibrate (validate/kernel_fit.py) to this machine's kernel measurements",
    })
    return write_profile(cal, dest), held
