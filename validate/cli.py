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
