"""Report of an end-to-end CPU check (validate/e2e_cpu.py): the CSV it writes, error statistics,
a predicted-against-measured scatter plot (PNG) and a short Markdown summary next to the CSV.

torch-free: reads and writes the CSV only.  `python -m validate.e2e_report [CSV]` (default: the newest
run in $INFERCAST_HOME/validate/local-cpu; the committed run's report is rewritten by
`infercast validate publish validate/data/local-cpu/e2e.csv`).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np

COLUMNS = ["model", "params", "dtype", "phase", "batch", "length", "measured_s", "rounds", "spread", "cpu_share",
           "predicted_s", "rel_error", "bound"]
COLUMN_NOTES = {
    "length": "prompt tokens per sequence (prefill from an empty cache) or context tokens per sequence "
              "including the one generated (decode step)",
    "measured_s": "seconds per call at the median round: median polish of the per-round timings (validate/timing_rounds.py)",
    "rounds": "interleaved rounds in which the point was timed (with the calibration kernels)",
    "spread": "median |relative residual| of the point's rounds after the point and round effects",
    "cpu_share": "median over the rounds of process CPU time / (threads x wall time); ~1 on an idle machine",
    "predicted_s": "infercast step_time(model, local, phase, TP1, precision).total_s",
    "rel_error": "predicted_s / measured_s - 1",
    "bound": "infercast's dominant limit for the step (compute or memory)",
}
BAND = 0.15


# -- CSV with a provenance header ---------------------------------------------------------------
def write_csv(path: Path, provenance: dict[str, str], rows: list[dict]) -> None:
    """`# key: value` provenance lines, then a plain CSV; written to a temporary file and renamed,
    so an interrupted run leaves the last complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        for k, v in provenance.items():
            f.write(f"# {k}: {v}\n")
        for k, v in COLUMN_NOTES.items():
            f.write(f"# column {k}: {v}\n")
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in COLUMNS})
    tmp.replace(path)


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def read_csv(path: Path) -> tuple[dict[str, str], list[dict]]:
    """(provenance, rows) with numbers parsed."""
    prov: dict[str, str] = {}
    lines = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition(":")
            if not key.startswith("column "):
                prov[key.strip()] = value.strip()
        elif line.strip():
            lines.append(line)
    rows = []
    for r in csv.DictReader(lines):
        for k in ("params", "batch", "length", "rounds"):
            r[k] = int(r[k]) if r.get(k) else None
        for k in ("measured_s", "spread", "cpu_share", "predicted_s", "rel_error"):
            r[k] = float(r[k]) if r.get(k) else math.nan
        rows.append(r)
    return prov, rows


# -- statistics ---------------------------------------------------------------------------------
def error_stats(rows: list[dict]) -> dict[str, dict]:
    """Per phase (and all): points, median, 90th percentile and worst |relative error|."""
    out = {}
    for phase in ("prefill", "decode", "all"):
        errs = np.array([abs(r["rel_error"]) for r in rows
                         if (phase == "all" or r["phase"] == phase) and math.isfinite(r["rel_error"])])
        if errs.size:
            out[phase] = {"points": int(errs.size), "median": float(np.median(errs)),
                          "p90": float(np.percentile(errs, 90)), "worst": float(errs.max()),
                          "signed_median": float(np.median([r["rel_error"] for r in rows
                                                            if (phase == "all" or r["phase"] == phase)
                                                            and math.isfinite(r["rel_error"])]))}
    return out


def stats_lines(stats: dict[str, dict]) -> list[str]:
    lines = [f"{'phase':<8} {'points':>6} {'median':>8} {'p90':>8} {'worst':>8} {'bias':>8}"]
    for phase, s in stats.items():
        lines.append(f"{phase:<8} {s['points']:>6} {s['median']:>8.1%} {s['p90']:>8.1%} {s['worst']:>8.1%} "
                     f"{s['signed_median']:>+8.1%}")
    return lines


def table_lines(rows: list[dict]) -> list[str]:
    head = f"{'model':<6} {'dtype':<5} {'phase':<8} {'batch':>5} {'length':>6} {'measured':>10} {'predicted':>10} {'error':>8}  bound"
    lines = [head]
    for r in rows:
        lines.append(f"{r['model']:<6} {r['dtype']:<5} {r['phase']:<8} {r['batch']:>5} {r['length']:>6} "
                     f"{_ms(r['measured_s']):>10} {_ms(r['predicted_s']):>10} {r['rel_error']:>+8.1%}  {r['bound']}")
    return lines


def _ms(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if math.isfinite(s) else "-"


# -- plot and summary ---------------------------------------------------------------------------
def plot(rows: list[dict], prov: dict[str, str], png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=120)
    ok = [r for r in rows if math.isfinite(r["measured_s"]) and math.isfinite(r["predicted_s"])]
    vals = [v for r in ok for v in (r["measured_s"], r["predicted_s"])] or [1e-3, 1.0]
    lo, hi = min(vals) / 1.6, max(vals) * 1.6
    xs = np.geomspace(lo, hi, 50)
    ax.fill_between(xs, xs * (1 - BAND), xs * (1 + BAND), color="0.85", label=f"±{BAND:.0%}")
    ax.plot(xs, xs, color="0.3", lw=1, label="predicted = measured")
    colors = {"prefill": "tab:blue", "decode": "tab:orange"}
    markers = ["o", "s", "^", "D", "v"]
    models = sorted({r["model"] for r in ok}, key=lambda m: min(r["params"] or 0 for r in ok if r["model"] == m))
    for phase, color in colors.items():
        for i, model in enumerate(models):
            pts = [r for r in ok if r["phase"] == phase and r["model"] == model]
            if pts:
                ax.scatter([r["measured_s"] for r in pts], [r["predicted_s"] for r in pts], color=color,
                           marker=markers[i % len(markers)], s=36, edgecolor="black", linewidth=0.4,
                           label=f"{phase}, {model}", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured step time (s), torch on this CPU")
    ax.set_ylabel("predicted step time (s), infercast --hw local")
    cal = "calibrated" if prov.get("calibrated") == "true" else "uncalibrated defaults"
    ax.set_title(f"{prov.get('cpu', 'local CPU')}, {prov.get('threads', '?')} threads\n"
                 f"{prov.get('dtype', '')} · {cal} · {prov.get('date', '')[:10]}", fontsize=9)
    ax.grid(True, which="both", color="0.92", lw=0.5)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def markdown(rows: list[dict], prov: dict[str, str], csv_path: Path, png: Path | None) -> str:
    stats = error_stats(rows)
    cal = "yes" if prov.get("calibrated") == "true" else "no (hwspecs/calibration/defaults.yaml)"
    out = [f"# End-to-end CPU check: {csv_path.name}", "",
           "A Llama-architecture decoder in plain torch (validate/torch_llama.py, random weights) timed on "
           "this CPU against infercast's prediction for `--hw local` of the same architecture.", "",
           f"- CPU: {prov.get('cpu', '?')}; {prov.get('cores', '?')} cores, {prov.get('threads', '?')} torch threads",
           f"- torch {prov.get('torch', '?')}, dtype {prov.get('dtype', '?')}, date {prov.get('date', '?')}",
           f"- local device calibrated: {cal}",
           f"- device used by the predictions: {prov.get('device_peaks', '?')}", ""]
    if stats:
        out += ["| phase | points | median abs. error | p90 | worst | median signed |", "|---|---:|---:|---:|---:|---:|"]
        out += [f"| {p} | {s['points']} | {s['median']:.1%} | {s['p90']:.1%} | {s['worst']:.1%} | {s['signed_median']:+.1%} |"
                for p, s in stats.items()]
        out.append("")
    busy = [r for r in rows if math.isfinite(r.get("cpu_share") or math.nan) and r["cpu_share"] < 0.9]
    out += [f"- timing: {prov.get('rounds', '?')} interleaved rounds of the model points and the calibration "
            f"kernels; machine speed by round {prov.get('round_speed', '?')}; {prov.get('noise', '')}",
            f"- calibration: {prov.get('calibration', '?')}", ""]
    out += [f"{len(busy)} point(s) ran on a busy machine (median CPU share < 0.9 of the threads)." if busy else
            "Every point had the CPU to itself (median process CPU share >= 0.9 of the threads).", ""]
    if png is not None:
        out += [f"![predicted against measured]({png.name})", ""]
    out += ["| model | dtype | phase | batch | length | measured (ms) | rounds | spread | predicted (ms) | error | bound |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    out += [f"| {r['model']} | {r['dtype']} | {r['phase']} | {r['batch']} | {r['length']} | {r['measured_s'] * 1e3:.1f} | "
            f"{r['rounds']} | {r.get('spread', math.nan):.1%} | {r['predicted_s'] * 1e3:.1f} | {r['rel_error']:+.1%} | "
            f"{r['bound']} |" for r in rows]
    out += ["", "Regenerate: `infercast validate e2e` (measures into $INFERCAST_HOME/validate/local-cpu or --out; "
            "`--resume` continues a killed run from its raw timings and refits); this page: `python -m "
            "validate.e2e_report CSV`; commit a run as reference data: `infercast validate publish CSV`.", ""]
    return "\n".join(out)


def make_report(csv_path: Path, with_plot: bool = True) -> tuple[Path | None, Path]:
    """Write <csv stem>.png and <csv stem>.md next to the CSV; returns their paths."""
    csv_path = Path(csv_path)
    prov, rows = read_csv(csv_path)
    png = plot(rows, prov, csv_path.with_suffix(".png")) if with_plot and rows else None
    md = csv_path.with_suffix(".md")
    md.write_text(markdown(rows, prov, csv_path, png))
    return png, md


def main(argv: list[str] | None = None) -> int:
    from .boundary import e2e_folder, inside_package, newest_run

    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else newest_run(e2e_folder())
    if path is None or not path.is_file():
        print(f"error: {path or e2e_folder()}: no such CSV (run `infercast validate e2e` first)", file=sys.stderr)
        return 2
    if inside_package(path) is not None:
        print(f"error: {path}: reference data; `infercast validate publish {path}` redraws its report",
              file=sys.stderr)
        return 2
    png, md = make_report(path)
    prov, rows = read_csv(path)
    print("\n".join(stats_lines(error_stats(rows))))
    print(f"wrote {png} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
