"""The boundary of `infercast validate` and `infercast calibrate`: their flag checks, and where their
runs write. Runs write under $INFERCAST_HOME (default ~/.infercast) or a folder the user names with
--out, never into infercast's own package folders (for a pip-installed user, site-packages);
committing a run as reference data is the explicit step `infercast validate publish`
(validate/publish.py). Every check runs before any measurement starts."""

from __future__ import annotations

import datetime
import os
import re
import tempfile
from pathlib import Path

from simulator.calibration import infercast_home
from simulator.checks import whole_number
from simulator.errors import bad_input
from simulator.own_folders import package_folders, protected_roots



def e2e_folder() -> Path:
    """Where `validate e2e` writes without --out (the layout of the committed validate/data/local-cpu)."""
    return infercast_home() / "validate" / "local-cpu"


def local_cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_flag(value: object, where: str = "--threads") -> int | None:
    """--threads: 0 means the cores this process may use (None), else 1 up to those cores."""
    n = whole_number(value, where, low=0, high=local_cores(), why_high=", the cores this process may use")
    return n or None


# -- the package's own folders --------------------------------------------------------------------
def inside_package(path: Path) -> Path | None:
    """The protected folder `path` lies in or is (protected_roots), or the package folder it holds
    (every folder above a checkout or site-packages holds them), else None."""
    full = Path(path).expanduser().resolve()
    inside = next((r for r in protected_roots() if full == r or r in full.parents), None)
    return inside or next((p for p in package_folders() if full in p.parents), None)


def output_folder(path: str | Path, where: str) -> Path:
    """`path` as a folder runs may write to: created if missing, never a file, never inside
    infercast's own package folders nor holding one (a checkout's root, site-packages), and writable (a file is created there and removed), else one line
    naming `where` (--out, or $INFERCAST_HOME for the default)."""
    given = str(path)
    if not given.strip() or "\x00" in given:
        raise bad_input(where, "must name a folder", given)
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise bad_input(where, "must be a folder, and this is a file", given)
    pkg = inside_package(folder)
    if pkg is not None:
        how = "lie outside" if pkg == folder.resolve() or pkg in folder.resolve().parents else "not hold"
        raise bad_input(where, f"must {how} infercast's own folder {pkg} (runs write under "
                               "$INFERCAST_HOME or --out; `infercast validate publish` commits one as reference data)",
                        given)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".infercast-probe-"):
            pass
    except OSError as exc:
        raise bad_input(where, f"cannot write to this folder ({exc.strerror or type(exc).__name__})", given) from None
    return folder


def home_folder(sub: str | Path) -> Path:
    """A folder under $INFERCAST_HOME, checked as output_folder does (where: $INFERCAST_HOME)."""
    home = infercast_home()
    return output_folder(home / sub, f"$INFERCAST_HOME ({home})")


# -- the files of one end-to-end run ----------------------------------------------------------------
RUN_NAME = re.compile(r"^e2e(-\d+)?$")


def e2e_files(csv_path: Path) -> list[Path]:
    """Every file an end-to-end run whose table is `csv_path` writes: the table, its raw timings,
    the kernel table, the fitted profile and the report (PNG, Markdown)."""
    p = Path(csv_path)
    return [p, p.with_suffix(".raw.csv"), p.with_name(p.stem + "-kernels.csv"),
            p.with_name(p.stem + "-calibration.yaml"), p.with_suffix(".png"), p.with_suffix(".md")]


def free_run(csv_path: Path) -> Path:
    """`csv_path` if none of its run's files exist, else the first free <stem>-<n>.csv beside it."""
    alt, n = csv_path, 0
    while any(f.exists() for f in e2e_files(alt)):
        n += 1
        alt = csv_path.with_name(f"{csv_path.stem}-{n}{csv_path.suffix}")
    return alt


def newest_run(folder: Path) -> Path | None:
    """The table of the run (e2e.csv, e2e-1.csv, ...) in `folder` whose raw timings changed last."""
    runs = [raw for raw in Path(folder).glob("e2e*.raw.csv") if RUN_NAME.match(raw.name[: -len(".raw.csv")])]
    if not runs:
        return None
    raw = max(runs, key=lambda f: f.stat().st_mtime)
    return raw.with_name(raw.name[: -len(".raw.csv")] + ".csv")


def keep_dated(csv_path: Path) -> Path | None:
    """Rename the existing files of the run `csv_path` to <stem>.<date-time> (from the newest one's
    modification time), so a fresh run can take the name; returns the new table's path, or None
    when the run had no files."""
    present = [f for f in e2e_files(csv_path) if f.exists()]
    if not present:
        return None
    stamp = datetime.datetime.fromtimestamp(max(f.stat().st_mtime for f in present)).strftime("%Y%m%d-%H%M%S")
    kept = free_run(csv_path.with_name(f"{csv_path.stem}.{stamp}{csv_path.suffix}"))
    for old, new in zip(e2e_files(csv_path), e2e_files(kept)):
        if old.exists():
            old.rename(new)
    return kept
