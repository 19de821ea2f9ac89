"""`infercast validate publish RUN`: the one explicit step that commits a run as reference data.

Measuring commands (`validate e2e`, `calibrate`) write under $INFERCAST_HOME or --out only. Publishing
copies one run into validate/data/<name>/ of the source checkout this infercast runs from (never an
installed package's folder), under the names the reference data uses:

- an end-to-end run (<stem>.csv of `validate e2e`): e2e.csv, e2e.raw.csv, e2e-kernels.csv and
  e2e-calibration.yaml, with the names inside them rewritten, then its report (e2e.png, e2e.md)
  drawn afresh beside them;
- a kernel sweep (kernels.csv of `calibrate`): kernels.csv and kernels.raw.csv, which
  `infercast validate kernels` then reports on.

Reference files already there are replaced only with --replace (git keeps the committed ones); that
includes the report of the reference run itself, which is redrawn only with --replace. A sweep is
checked before it is copied (validate/sweep_check.py), so a published folder never breaks
`infercast validate kernels`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable, NamedTuple

from simulator.errors import bad_input

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,59}$")


class Copy(NamedTuple):
    source: Path
    dest: Path
    edit: Callable[[str], str] | None = None  # rewrites the text on the way (names, paths); None: a plain copy


def _renamed(names: dict[str, str]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        for old, new in names.items():
            text = text.replace(old, new)
        return text
    return edit


def _data_line(path: str) -> Callable[[str], str]:
    """The profile's provenance line naming the kernel table it was fitted to."""
    return lambda text: re.sub(r"(?m)^(  data: ).*$", lambda m: m.group(1) + path, text, count=1)


def checkout_data(here: Path | None = None) -> Path:
    """validate/data of the source checkout this infercast runs from (`here`: the validate package's
    folder); one line when it is an installed package (site-packages), whose folders no command writes to."""
    here = here or Path(__file__).resolve().parent
    root = here.parent
    if not ((root / ".git").exists() and (root / "pyproject.toml").is_file()):
        raise bad_input("validate publish", "needs a source checkout of infercast (git clone, then pip install -e .), "
                        f"whose validate/data/ the run is committed to; this infercast is installed at {here}")
    return here / "data"


def run_kind(run: Path) -> str:
    """'e2e' or 'sweep', from the provenance lines at the top of the run's table."""
    from .timing_rounds import read_header

    if not run.is_file():
        raise bad_input("RUN", "must be the table of a run: an e2e CSV of `validate e2e` or the kernels.csv "
                               "of `calibrate`", str(run))
    try:
        prov = read_header(run)
    except (UnicodeDecodeError, OSError):
        prov = {}
    if prov.get("what", "").startswith("infercast end-to-end"):
        return "e2e"
    if "method" in prov and run.with_suffix(".raw.csv").is_file():
        return "sweep"
    raise bad_input("RUN", "is not the table of a run with its raw timings beside it (an e2e CSV of "
                           "`validate e2e`, or the kernels.csv of `calibrate`)", str(run))


def default_name(run: Path, kind: str) -> str:
    """local-cpu for this CPU's runs; a GPU sweep's hwspec ID (from the device its provenance names)."""
    from .calibrate_gpu import hw_id
    from .timing_rounds import read_header

    prov = read_header(run)
    if kind == "sweep" and "triton" in prov:
        hw = hw_id(prov.get("device", ""))
        if hw is None:
            raise bad_input("--as", f"names the reference folder; no shipped hwspec matches the GPU "
                                    f"'{prov.get('device', '?')}', so name one")
        return hw
    return "local-cpu"


def copies(run: Path, kind: str, dest: Path) -> list[Copy]:
    """What to copy where; names inside the files follow the files' new names."""
    raw = run.with_suffix(".raw.csv")
    if kind == "sweep":
        return [Copy(run, dest / "kernels.csv"), Copy(raw, dest / "kernels.raw.csv")]
    from .boundary import e2e_files

    table, raw_e2e, kernels, profile = e2e_files(run)[:4]
    missing = [f.name for f in (raw_e2e, kernels, profile) if not f.is_file()]
    if missing:
        raise bad_input("RUN", f"an end-to-end run needs its raw timings, kernel table and profile beside it "
                               f"(missing: {', '.join(missing)})", str(run))
    names = {f"{run.stem}-calibration.yaml": "e2e-calibration.yaml", f"{run.stem}-kernels.csv": "e2e-kernels.csv"}
    return [Copy(table, dest / "e2e.csv", _renamed(names)), Copy(raw_e2e, dest / "e2e.raw.csv"),
            Copy(kernels, dest / "e2e-kernels.csv"),
            Copy(profile, dest / "e2e-calibration.yaml", _data_line(f"validate/data/{dest.name}/e2e-kernels.csv"))]


def _write(copy: Copy) -> bool:
    """Copy one file; False when source and destination are one file (the reference run itself)."""
    if copy.source.resolve() == copy.dest.resolve():
        return False
    if copy.edit is None:
        shutil.copyfile(copy.source, copy.dest)
    else:
        copy.dest.write_text(copy.edit(copy.source.read_text()))
    return True


def publish(run: str | Path, name: str | None = None, replace: bool = False, data: Path | None = None) -> list[Path]:
    """Copy the run whose table is `run` into `data`/<name> (default: the checkout's validate/data);
    returns the files written: none when `run` is that reference data already (with `replace`, an
    end-to-end run's report is drawn afresh). A sweep must parse as one the fit reads (sweep_check)."""
    run = Path(run).expanduser()
    kind = run_kind(run)
    if kind == "sweep":
        from .sweep_check import check_sweep

        check_sweep(run, f"RUN {run}")  # `infercast validate kernels` reads every published sweep
    name = default_name(run, kind) if name is None else name  # --as '' is a name, and refused below
    if not NAME.match(name):
        raise bad_input("--as", "must be a folder name: lowercase letters, digits, '.', '_' or '-', up to 60", name)
    data = data or checkout_data()
    if (data / name).exists() and not (data / name).is_dir():
        raise bad_input("--as", f"names a file of {data}, not a reference folder; give another name", name)
    dest = data / name
    todo = copies(run, kind, dest)
    report = [dest / "e2e.png", dest / "e2e.md"] if kind == "e2e" else []
    same = all(c.source.resolve() == c.dest.resolve() for c in todo)  # the reference run itself
    if same and not replace:
        return []  # nothing to copy; its report is redrawn only with --replace
    there = [f.name for f in [c.dest for c in todo if not same] + report if f.exists()]
    if there and not replace:
        raise bad_input("--replace", f"is needed to replace reference data already in {dest} "
                                     f"({', '.join(there)}; git keeps the committed files)")
    dest.mkdir(parents=True, exist_ok=True)
    written = [c.dest for c in todo if _write(c)]
    if kind == "e2e":
        from .e2e_report import make_report

        written += [p for p in make_report(dest / "e2e.csv") if p is not None]
    return written
