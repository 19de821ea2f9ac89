"""Hand-written corpus for `infercast validate` and `infercast calibrate` (issue 15, items 1, 7, 8):
a bad flag or output folder is one line naming it, exit 2, before anything is measured; the
published-point reports run; stubbed `validate e2e` and `calibrate` runs write under --out or
$INFERCAST_HOME only, never overwrite a run, resume from raw timings, and leave the package's
validate/data/ untouched; `validate publish` is the one step that writes reference data.

Nothing here times anything: every round's calls are replaced by a stand-in timer (seconds from
each shape's FLOPs and bytes), and the sweep by six small shapes."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

import validate
from tests.fuzz.harness import run_cli
from validate.boundary import local_cores
from validate.kernel_fit import COLUMNS

PACKAGE = Path(validate.__file__).resolve().parent
DATA = PACKAGE / "data"
SIMULATOR = PACKAGE.parent / "simulator"
TINY_SHAPES = [{"op": "gemm", "dtype": "fp32", "m": m, "n": 64, "k": 64} for m in (1, 8, 64)] + \
              [{"op": "copy", "dtype": "fp32", "elems": e} for e in (1024, 4096, 16384)]
DATED = re.compile(r"^e2e\.\d{8}-\d{6}\.csv$")


def _stand_in_seconds(key: str) -> float:
    """A job's 'time': a model point's grows with its tokens; a kernel's with its FLOPs and bytes."""
    from validate import calibrate_cpu

    parts = key.split("|")
    if parts[0] == "model":  # model|size|phase|batch|length
        return 1e-5 * int(parts[3]) * int(parts[4]) * (3.0 if parts[2] == "prefill" else 1.0)
    row = {c: (v if c in ("op", "dtype") else int(v)) for c, v in zip(calibrate_cpu.COLUMNS[:12], parts)}
    flops, nbytes = calibrate_cpu.work(row)
    return 2e-6 + flops / 50e9 + nbytes / 10e9


@pytest.fixture(autouse=True)
def no_real_timing(monkeypatch):
    """Rounds run without building or calling anything; the sweep is six small shapes."""
    from validate import calibrate_cpu, timing_rounds

    real = timing_rounds.run_rounds

    def stand_in(jobs, *args, **kwargs):
        idle = [dataclasses.replace(j, setup=lambda: (lambda: None)) for j in jobs]
        kwargs["timer"] = lambda call, job: (_stand_in_seconds(job.key), 1.0)
        return real(idle, *args, **kwargs)

    rows = [{c: r.get(c, 0) for c in calibrate_cpu.COLUMNS[:12]} for r in TINY_SHAPES]
    monkeypatch.setattr(timing_rounds, "run_rounds", stand_in)
    monkeypatch.setattr(calibrate_cpu, "shapes", lambda quick: rows)
    monkeypatch.setattr(calibrate_cpu, "ROUNDS", {"full": 3, "quick": 3})


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def package_untouched():
    before = _listing(DATA)
    yield
    assert _listing(DATA) == before, "validate/data/ changed"


# -- the corpus -----------------------------------------------------------------------------------------
class Case(NamedTuple):
    name: str
    argv: list[str] | Callable[[Path], list[str]]  # a builder gets a fresh folder to put files in
    expected: str  # "error" | "ok"
    needle: str  # error: what the one line names (the flag); ok: what stdout holds
    home: Callable[[Path], str] | None = None  # $INFERCAST_HOME for the case (default: the session's)


def _file(tmp: Path) -> str:
    (tmp / "a-file").write_text("not a folder\n")
    return str(tmp / "a-file")


def _e2e(*flags: str) -> list[str]:
    return ["validate", "e2e", "--quick", "--models", "tiny", "--no-report", *flags]


def _cal(*flags: str) -> list[str]:
    return ["calibrate", "--device", "cpu", "--quick", *flags]


TOO_MANY = str(local_cores() + 1)
CASES = [
    # validate: published groups
    Case("group-unknown", ["validate", "--group", "nope"], "error", "--group"),
    Case("group-empty", ["validate", "--group", ""], "error", "--group"),
    Case("group-before-subcommand", ["validate", "--group", "kernel_gemm", "kernels"], "error", "--group"),
    Case("summary-before-subcommand", ["validate", "--summary", "e2e"], "error", "--points/--summary"),
    Case("validate-unknown-flag", ["validate", "--bogus"], "error", "--bogus"),
    Case("validate-unknown-subcommand", ["validate", "bogus"], "error", "bogus"),
    Case("summary-default-group", ["validate", "--summary"], "ok", "median"),
    Case("gemm-group", ["validate", "--group", "kernel_gemm", "--summary"], "ok", "median"),
    Case("interconnect-points", ["validate", "--group", "interconnect"], "ok", "Predicted against published"),
    # validate e2e: flags
    Case("e2e-threads-negative", _e2e("--threads", "-1"), "error", "--threads"),
    Case("e2e-threads-fraction", _e2e("--threads", "0.5"), "error", "--threads"),
    Case("e2e-threads-inf", _e2e("--threads", "inf"), "error", "--threads"),
    Case("e2e-threads-huge", _e2e("--threads", str(10**30)), "error", "--threads"),
    Case("e2e-threads-over-cores", _e2e("--threads", TOO_MANY), "error", "--threads"),
    Case("e2e-models-unknown", ["validate", "e2e", "--quick", "--no-report", "--models", "7b"], "error", "--models"),
    Case("e2e-models-one-unknown", ["validate", "e2e", "--models", "tiny,huge"], "error", "--models"),
    Case("e2e-dtype-unknown", _e2e("--dtype", "int4"), "error", "--dtype"),
    Case("e2e-force-and-resume", _e2e("--force", "--resume"), "error", "--force"),
    Case("e2e-resume-nothing", lambda t: _e2e("--resume", "--out", str(t)), "error", "--resume"),
    # validate e2e: where it writes
    Case("e2e-out-a-file", lambda t: _e2e("--out", _file(t)), "error", "--out"),
    Case("e2e-out-under-a-file", lambda t: _e2e("--out", _file(t) + "/sub"), "error", "--out"),
    Case("e2e-out-empty", _e2e("--out", ""), "error", "--out"),
    Case("e2e-out-package-data", _e2e("--out", str(DATA / "local-cpu")), "error", "--out"),
    Case("e2e-out-package-new-folder", _e2e("--out", str(SIMULATOR / "runs")), "error", "--out"),
    Case("e2e-out-unwritable", _e2e("--out", "/proc/infercast-runs"), "error", "--out"),
    Case("e2e-home-a-file", _e2e(), "error", "$INFERCAST_HOME", home=_file),
    Case("e2e-home-in-package", _e2e(), "error", "$INFERCAST_HOME", home=lambda t: str(PACKAGE)),
    # calibrate
    Case("cal-threads-negative", _cal("--threads", "-3"), "error", "--threads"),
    Case("cal-threads-huge", _cal("--threads", "1000000000"), "error", "--threads"),
    Case("cal-threads-nan", _cal("--threads", "nan"), "error", "--threads"),
    Case("cal-threads-over-cores", _cal("--threads", TOO_MANY), "error", "--threads"),
    Case("cal-device-unknown", ["calibrate", "--device", "tpu"], "error", "--device"),
    Case("cal-device-empty", ["calibrate", "--device", ""], "error", "--device"),
    Case("cal-hw-on-cpu", _cal("--hw", "h100-sxm"), "error", "--hw"),
    Case("cal-hw-unknown-on-cpu", _cal("--hw", "no-such-gpu"), "error", "--hw"),
    Case("cal-out-package-data", _cal("--out", str(DATA / "local-cpu")), "error", "--out"),
    Case("cal-out-a-file", lambda t: _cal("--out", _file(t)), "error", "--out"),
    Case("cal-out-unwritable", _cal("--out", "/proc/infercast-sweep"), "error", "--out"),
    Case("cal-fit-only-nothing", lambda t: _cal("--fit-only", "--out", str(t)), "error", "--fit-only"),
    Case("cal-fit-only-a-file", lambda t: _cal("--fit-only", "--out", _file(t)), "error", "--out"),
    Case("cal-home-a-file", _cal(), "error", "$INFERCAST_HOME", home=_file),
    Case("cal-unknown-subcommand", ["calibrate", "now"], "error", "now"),
    # publish
    Case("publish-missing", ["validate", "publish", "/no/such/e2e.csv"], "error", "RUN"),
    Case("publish-a-folder", lambda t: ["validate", "publish", str(t)], "error", "RUN"),
    Case("publish-not-a-run", lambda t: ["validate", "publish", _file(t)], "error", "RUN"),
    Case("publish-a-device", ["validate", "publish", "/dev/zero"], "error", "RUN"),
    Case("publish-bad-name", ["validate", "publish", str(DATA / "local-cpu" / "e2e.csv"), "--as", "../up"],
         "error", "--as"),
    # adversarial findings: an empty --as is no --as; a name that is a data file; folders holding the packages
    Case("publish-as-empty", ["validate", "publish", str(DATA / "local-cpu" / "e2e.csv"), "--as", ""], "error", "--as"),
    Case("publish-as-a-data-file", ["validate", "publish", str(DATA / "local-cpu" / "e2e.csv"), "--as",
                                    "published_points_dev.csv"], "error", "--as"),
    Case("cal-out-checkout-root", _cal("--out", str(PACKAGE.parent)), "error", "--out"),
    Case("e2e-out-checkout-root", _e2e("--out", str(PACKAGE.parent)), "error", "--out"),
    Case("e2e-out-checkout-tests", _e2e("--out", str(PACKAGE.parent / "tests" / "runs")), "error", "--out"),
    Case("cal-out-python-prefix", _cal("--out", str(Path(sys.prefix) / "lib")), "error", "--out"),
    Case("e2e-out-filesystem-root", _e2e("--out", "/"), "error", "--out"),
    Case("e2e-home-checkout-root", _e2e(), "error", "$INFERCAST_HOME", home=lambda t: str(PACKAGE.parent)),
    Case("e2e-models-comma", ["validate", "e2e", "--quick", "--no-report", "--models", ","], "error", "--models"),
    Case("e2e-models-blank", ["validate", "e2e", "--quick", "--no-report", "--models", " "], "error", "--models"),
    Case("e2e-models-empty", ["validate", "e2e", "--quick", "--no-report", "--models", ""], "error", "--models"),
    Case("e2e-models-twice", ["validate", "e2e", "--quick", "--no-report", "--models", "tiny,tiny"], "error",
         "--models"),
    Case("e2e-option-twice", _e2e("--threads", "1", "--threads", "1"), "error", "--threads"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case, tmp_path, monkeypatch, package_untouched):
    argv = case.argv(tmp_path) if callable(case.argv) else case.argv
    if argv[0] == "calibrate" or argv[:2] == ["validate", "e2e"]:
        pytest.importorskip("torch")
    if case.home is not None:
        monkeypatch.setenv("INFERCAST_HOME", case.home(tmp_path))
    got = run_cli(argv, timeout_s=20)
    assert got.kind == case.expected, (got.kind, got.err[-500:])
    if case.expected == "error":
        assert case.needle in got.err, got.err
        assert "Traceback" not in got.err
    else:
        assert case.needle in got.out


def test_the_corpus_is_large_and_names_each_case_once():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


# -- stubbed runs: where they write ---------------------------------------------------------------------
def test_e2e_writes_under_infercast_home_by_default(tmp_path, monkeypatch, package_untouched):
    pytest.importorskip("torch")
    monkeypatch.setenv("INFERCAST_HOME", str(tmp_path / "home"))
    got = run_cli(_e2e(), timeout_s=30)
    assert got.kind == "ok", got.err
    run = tmp_path / "home" / "validate" / "local-cpu"
    assert sorted(f.name for f in run.iterdir()) == ["e2e-calibration.yaml", "e2e-kernels.csv", "e2e.csv", "e2e.raw.csv"]


def test_e2e_never_overwrites_and_resumes_from_its_raw_timings(tmp_path, package_untouched):
    pytest.importorskip("torch")
    out = tmp_path / "runs"
    assert run_cli(_e2e("--out", str(out)), timeout_s=30).kind == "ok"
    first = (out / "e2e.csv").read_bytes()
    again = run_cli(_e2e("--out", str(out)), timeout_s=30)  # a second run takes a new name
    assert again.kind == "ok" and "e2e-1.csv" in again.out
    assert (out / "e2e.csv").read_bytes() == first and (out / "e2e-1.csv").exists()
    forced = run_cli(_e2e("--out", str(out), "--force"), timeout_s=30)  # afresh as e2e.csv; the old one kept
    assert forced.kind == "ok", forced.err
    kept = [f for f in out.iterdir() if DATED.match(f.name)]
    assert len(kept) == 1 and kept[0].read_bytes() == first
    # a killed run: the newest raw file loses its last timings; --resume takes only those again
    raw = out / "e2e.raw.csv"
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text("".join(lines[:-3]))
    resumed = run_cli(_e2e("--out", str(out), "--resume"), timeout_s=30)
    assert resumed.kind == "ok", resumed.err
    assert "resuming" in resumed.out and raw.read_text().count("\n") == len(lines)


def test_calibrate_writes_its_sweep_and_profile_under_infercast_home(tmp_path, monkeypatch, package_untouched):
    pytest.importorskip("torch")
    home = tmp_path / "home"
    monkeypatch.setenv("INFERCAST_HOME", str(home))
    got = run_cli(_cal(), timeout_s=30)
    assert got.kind == "ok", got.err
    assert len(list((home / "calibration" / "runs").glob("*/kernels.raw.csv"))) == 1
    assert (home / "calibration" / "local.yaml").is_file()
    sweep = tmp_path / "sweep"
    assert run_cli(_cal("--out", str(sweep)), timeout_s=30).kind == "ok"
    assert (sweep / "kernels.csv").is_file() and (sweep / "kernels.raw.csv").is_file()
    assert len(list((home / "calibration").glob("local.*.yaml"))) == 1  # the first profile, kept dated


# -- publish: the explicit step ---------------------------------------------------------------------
def test_publish_copies_a_run_under_the_reference_names(tmp_path, monkeypatch, package_untouched):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from validate import publish

    runs, data = tmp_path / "runs", tmp_path / "checkout-data"
    monkeypatch.setattr(publish, "checkout_data", lambda: data)
    for _ in range(2):
        assert run_cli(_e2e("--out", str(runs)), timeout_s=30).kind == "ok"
    got = run_cli(["validate", "publish", str(runs / "e2e-1.csv")], timeout_s=30)
    assert got.kind == "ok", got.err
    ref = data / "local-cpu"
    assert sorted(f.name for f in ref.iterdir()) == ["e2e-calibration.yaml", "e2e-kernels.csv", "e2e.csv", "e2e.md",
                                                     "e2e.png", "e2e.raw.csv"]
    assert "e2e-1" not in (ref / "e2e.csv").read_text() and "e2e-calibration.yaml" in (ref / "e2e.csv").read_text()
    assert "  data: validate/data/local-cpu/e2e-kernels.csv" in (ref / "e2e-calibration.yaml").read_text()
    assert (ref / "e2e.raw.csv").read_bytes() == (runs / "e2e-1.raw.csv").read_bytes()
    assert "(e2e.png)" in (ref / "e2e.md").read_text()
    again = run_cli(["validate", "publish", str(runs / "e2e.csv")], timeout_s=30)
    assert again.kind == "error" and "--replace" in again.err
    assert run_cli(["validate", "publish", str(runs / "e2e.csv"), "--replace"], timeout_s=30).kind == "ok"
    assert (ref / "e2e.raw.csv").read_bytes() == (runs / "e2e.raw.csv").read_bytes()


def test_publish_takes_a_calibration_sweep_and_refuses_an_installed_package(tmp_path, monkeypatch,
                                                                          package_untouched):
    pytest.importorskip("torch")
    from simulator.errors import InfercastError
    from validate import publish

    data, real_checkout = tmp_path / "checkout-data", publish.checkout_data
    monkeypatch.setattr(publish, "checkout_data", lambda: data)
    assert run_cli(_cal("--out", str(tmp_path / "sweep")), timeout_s=30).kind == "ok"
    got = run_cli(["validate", "publish", str(tmp_path / "sweep" / "kernels.csv"), "--as", "this-cpu"], timeout_s=30)
    assert got.kind == "ok", got.err
    for name in ("kernels.csv", "kernels.raw.csv"):
        assert (data / "this-cpu" / name).read_bytes() == (tmp_path / "sweep" / name).read_bytes()
    installed = tmp_path / "site-packages" / "validate"
    installed.mkdir(parents=True)
    with pytest.raises(InfercastError, match="source checkout"):
        real_checkout(installed)
    assert real_checkout() == DATA  # this checkout


# -- publish and `validate kernels` (adversarial findings A1 and A4) -------------------------------------
def _reference_copy(tmp_path: Path) -> Path:
    """The committed end-to-end run, copied as a checkout's validate/data/local-cpu would hold it."""
    ref = tmp_path / "checkout-data" / "local-cpu"
    ref.mkdir(parents=True)
    for f in (DATA / "local-cpu").iterdir():
        if f.name.startswith("e2e"):
            (ref / f.name).write_bytes(f.read_bytes())
    return ref


def test_publishing_the_reference_run_onto_itself_rewrites_nothing(tmp_path, monkeypatch, package_untouched):
    from validate import publish

    ref = _reference_copy(tmp_path)
    monkeypatch.setattr(publish, "checkout_data", lambda: ref.parent)
    before = _listing(ref)
    got = run_cli(["validate", "publish", str(ref / "e2e.csv")], timeout_s=30)
    assert got.kind == "ok" and "nothing to copy" in got.out and "--replace" in got.out, got
    assert _listing(ref) == before  # e2e.md and e2e.png not redrawn without --replace


BAD_SWEEPS = {  # kernels.csv, kernels.raw.csv -> what the one line names
    "two-columns": ("# method: fake\nop,time_s\ngemm,-1\ngemm,-2\n", "key,round,time_s\na,0,1\n", "columns"),
    "nan-flops": ("# method: x\n" + ",".join(COLUMNS) + "\n" + "gemm,fp32,1,1,1,0,0,0,0,0,0,0,nan,5,1\n" * 2,
                  "key,round,time_s\na,0,1\n", "flops"),
    "negative-time": ("# method: x\n" + ",".join(COLUMNS) + "\n" + "gemm,fp32,1,1,1,0,0,0,0,0,0,0,2,5,-1\n" * 2,
                      "key,round,time_s\na,0,1\n", "time_s"),
    "unknown-op": ("# method: x\n" + ",".join(COLUMNS) + "\n" + "conv,fp32,1,1,1,0,0,0,0,0,0,0,2,5,1\n" * 2,
                   "key,round,time_s\na,0,1\n", "conv"),
    "one-shape": ("# method: x\n" + ",".join(COLUMNS) + "\n" + "gemm,fp32,1,1,1,0,0,0,0,0,0,0,2,5,1\n",
                  "key,round,time_s\na,0,1\n", "fewer than 2 shapes"),
    "raw-garbage": ("# method: x\n" + ",".join(COLUMNS) + "\n" + "gemm,fp32,1,1,1,0,0,0,0,0,0,0,2,5,1\n" * 2,
                    "garbage\n", "kernels.raw.csv"),
}


def _sweep(folder: Path, name: str) -> Path:
    table, raw, _ = BAD_SWEEPS[name]
    folder.mkdir(parents=True)
    (folder / "kernels.csv").write_text(table)
    (folder / "kernels.raw.csv").write_text(raw)
    return folder / "kernels.csv"


@pytest.mark.parametrize("name", sorted(BAD_SWEEPS))
def test_publish_refuses_a_sweep_the_fit_cannot_read(name, tmp_path, monkeypatch, package_untouched):
    from validate import publish

    data = tmp_path / "checkout-data"
    monkeypatch.setattr(publish, "checkout_data", lambda: data)
    got = run_cli(["validate", "publish", str(_sweep(tmp_path / "run", name)), "--as", "fake1"], timeout_s=30)
    assert got.kind == "error" and "RUN" in got.err and BAD_SWEEPS[name][2] in got.err, got
    assert not data.exists()  # nothing copied


@pytest.mark.parametrize("name", ["two-columns", "nan-flops"])
def test_validate_kernels_names_a_malformed_committed_sweep_in_one_line(name, tmp_path, monkeypatch):
    from validate import kernels_report

    monkeypatch.setattr(kernels_report, "DATA", tmp_path)
    table = _sweep(tmp_path / "fake1", name)
    got = run_cli(["validate", "kernels"], timeout_s=30)
    assert got.kind == "error" and str(table) in got.err and "fake1" in got.err, got
