"""`infercast validate`: compare predictions with published measurements."""

from __future__ import annotations

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
    out: str = typer.Option("", "--out", help="CSV to write [default: validate/data/local-cpu/e2e.csv]."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing CSV (else a new file is written beside it)."),
    resume: bool = typer.Option(False, "--resume",
                                help="Keep the points an existing CSV measured on this machine, measure the rest, "
                                     "redo every prediction (with the current calibration)."),
    models: str = typer.Option("", "--models", help="Comma-separated sizes: tiny, 100m, 300m, 1b [default: 100m,300m]."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32 or bf16."),
    threads: int = typer.Option(0, "--threads", help="torch threads [default: the cores this process may use]."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the PNG and Markdown report next to the CSV."),
) -> None:
    """Time a torch Llama decoder on this CPU and compare with infercast's prediction for --hw local."""
    import time

    from simulator.errors import InfercastError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise InfercastError("validate e2e needs torch (pip install 'infercast[kernels]')") from None
    from .e2e_cpu import DEFAULT_CSV, print_summary, run

    t0 = time.perf_counter()
    path, rows = run(out=out or DEFAULT_CSV, quick=quick, force=force, resume=resume,
                     models=[m.strip() for m in models.split(",") if m.strip()] or None, dtype=dtype,
                     threads=threads if threads else None)
    print_summary(path, rows, time.perf_counter() - t0)
    if report and rows:
        from .e2e_report import make_report

        png, md = make_report(path)
        print(f"report: {png} and {md}")


@app.command("kernels")
def kernels() -> None:
    """Held-out error of the kernel calibration (fit on 70% of each op class's measured shapes,
    predict the rest) on every committed sweep, and the published GEMM timings uncalibrated
    against calibrated (leave one out)."""
    from .kernels_report import print_kernels_report

    print_kernels_report()
