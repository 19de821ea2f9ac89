"""`infercast validate`: compare predictions with published measurements (reading validate/data/),
time a model on this CPU against the prediction (`e2e`, writing under $INFERCAST_HOME or --out), and
commit a run as reference data (`publish`, into a source checkout's validate/data/)."""

from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(add_completion=False, help="Compare infercast's predictions with published and measured results.",
                  invoke_without_command=True)


@app.callback()
def validate(
    ctx: typer.Context,
    group: str = typer.Option("trtllm_v0.6.1_static", help="Group of validate/data/published_points_dev.csv."),
    points: bool = typer.Option(True, "--points/--summary", help="Print every point, or the summary only."),
) -> None:
    """Predict every point of a published group and print median and worst relative error."""
    if ctx.invoked_subcommand is not None:
        from simulator.errors import bad_input

        for flag, param in (("--group", "group"), ("--points/--summary", "points")):
            if getattr(ctx.get_parameter_source(param), "name", "DEFAULT") != "DEFAULT":  # given on the command line
                raise bad_input(flag, f"applies to `infercast validate` alone, not to `validate {ctx.invoked_subcommand}`")
        return
    from .published import print_report, run_group
    from .serving_points import REPORTS

    if group in REPORTS:  # groups run through the serving simulator
        run, report = REPORTS[group]
        report(run(), show_points=points)
    else:
        print_report(run_group(group), show_points=points)


@app.command("e2e")
def e2e(
    quick: bool = typer.Option(False, "--quick", help="Under a minute: fewer shapes, the ~300M model at three."),
    out: Optional[str] = typer.Option(None, "--out", help="Folder for the run's files: e2e.csv, its raw timings, "
                                      "kernel table, fitted profile and report; e2e-1.csv, ... when a run is there "
                                      "(default: $INFERCAST_HOME/validate/local-cpu; never infercast's own folders)."),
    force: bool = typer.Option(False, "--force", help="Measure afresh as e2e.csv; the earlier run's files are kept "
                                                      "under a dated name (nothing is overwritten)."),
    resume: bool = typer.Option(False, "--resume",
                                help="Continue the folder's last run: keep the points its raw timings hold from this "
                                     "machine, measure the rest, redo every prediction (with the current calibration)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated sizes: tiny, 100m, 300m, 1b (default: 100m,300m)."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32 or bf16."),
    threads: int = typer.Option(0, "--threads", help="torch threads, 1 up to the cores this process may use "
                                                     "(0: all of them)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the PNG and Markdown report next to the CSV."),
) -> None:
    """Time a torch Llama decoder on this CPU and compare with infercast's prediction for --hw local.
    Every file goes to --out or $INFERCAST_HOME/validate/local-cpu; to commit a run as the reference
    data of validate/data/local-cpu, run `infercast validate publish <folder>/e2e.csv` from a source checkout."""
    import time

    from simulator.errors import InfercastError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise InfercastError("validate e2e needs torch (pip install 'infercast[kernels]')") from None
    from .e2e_cpu import DEFAULT_MODELS, check_args, print_summary, run

    sizes = _sizes(models) or DEFAULT_MODELS["quick" if quick else "full"]
    check_args(sizes, dtype, force, resume, threads or None)
    csv_path = _e2e_table(out, resume)
    t0 = time.perf_counter()
    path, rows = run(out=csv_path, quick=quick, force=force, resume=resume, models=sizes, dtype=dtype,
                     threads=threads or None)
    print_summary(path, rows, time.perf_counter() - t0)
    if report and rows:
        from .e2e_report import make_report

        png, md = make_report(path)
        print(f"report: {png} and {md}")


def _sizes(models: str | None) -> list[str]:
    """--models as a list: empty when not given (the default), else each size once (an empty
    value, ',' or ' ' names none and is refused)."""
    from simulator.errors import bad_input

    if models is None:
        return []
    sizes = [m.strip() for m in models.split(",") if m.strip()]
    if not sizes:  # given, yet naming none ("", "," or " ")
        raise bad_input("--models", "must name sizes, comma-separated (tiny, 100m, 300m, 1b)", models)
    twice = next((m for m in sizes if sizes.count(m) > 1), None)
    if twice is not None:
        raise bad_input("--models", f"must name each size once ('{twice}' is there twice)", models)
    return sizes


def _e2e_table(out: str | None, resume: bool):
    """The CSV a run writes (or, with `resume`, the folder's last run), its folder checked first."""
    from simulator.errors import bad_input

    from .boundary import home_folder, newest_run, output_folder

    folder = output_folder(out, "--out") if out is not None else home_folder("validate/local-cpu")
    if not resume:
        return folder / "e2e.csv"
    last = newest_run(folder)
    if last is None:
        raise bad_input("--resume", f"no run to continue in {folder} (none has its raw timings there)")
    return last


@app.command("publish")
def publish(
    run: str = typer.Argument(..., metavar="RUN", help="The run's table: an e2e CSV of `validate e2e` (e.g. "
                              "~/.infercast/validate/local-cpu/e2e.csv) or the kernels.csv of `calibrate`."),
    name: Optional[str] = typer.Option(None, "--as", help="The reference folder validate/data/NAME (default: "
                                       "local-cpu for this CPU's runs; the GPU's hwspec ID for a GPU sweep)."),
    replace: bool = typer.Option(False, "--replace", help="Replace reference files already there (git keeps "
                                                          "the committed ones)."),
) -> None:
    """Commit a run as reference data: copy it into validate/data/NAME of the source checkout this
    infercast runs from (refused for an installed package), under the reference names (e2e.csv,
    e2e.raw.csv, e2e-kernels.csv, e2e-calibration.yaml; or kernels.csv and kernels.raw.csv), and draw
    an end-to-end run's report there afresh. `validate e2e` and `calibrate` never write there themselves."""
    from .publish import publish as copy_run

    written = copy_run(run, name, replace)
    for path in written:
        print(f"wrote {path}")
    if not written:
        again = "" if replace else " (--replace redraws its report)"
        print(f"nothing to copy: {run} is the reference data already{again}")


@app.command("kernels")
def kernels() -> None:
    """Held-out error of the kernel calibration (fit on 70% of each op class's measured shapes,
    predict the rest) on every committed sweep, and the published GEMM timings uncalibrated
    against calibrated (leave one out)."""
    from .kernels_report import print_kernels_report

    print_kernels_report()
