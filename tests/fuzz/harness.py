"""Run the CLI in process on one input and classify what came back: the fuzz suite's one runner.

An outcome is `error` (exit 2, one line on stderr starting 'error: '), `ok` (exit 0), `traceback`
(an exception escaped the CLI), `hang` (over the time limit) or `other` (any other exit or a
multi-line error). Strict JSON: NaN and Infinity are refused, as jq and strict parsers do."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import traceback
from pathlib import Path
from typing import Callable, NamedTuple


class Outcome(NamedTuple):
    kind: str  # error | ok | traceback | hang | other
    code: int | None
    out: str
    err: str


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_cli(argv: list[str], timeout_s: int = 60) -> Outcome:
    from simulator.cli import run

    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(list(argv))
    except Hang:
        return Outcome("hang", None, out.getvalue(), err.getvalue())
    except BaseException:  # noqa: BLE001 - anything escaping the CLI is a traceback to its user
        return Outcome("traceback", None, out.getvalue(), traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    e = err.getvalue()
    if code == 2 and _one_error_line(e):
        return Outcome("error", 2, out.getvalue(), e)
    if code == 0:
        return Outcome("ok", 0, out.getvalue(), e)
    return Outcome("other", code, out.getvalue(), e)


def _one_error_line(err: str) -> bool:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


def _refuse(name: str):
    raise ValueError(f"not strict JSON: {name}")


def strict_json(text: str):
    """Parse `text` as JSON, refusing NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_refuse)


class Case(NamedTuple):
    """One hand-written input of a corpus: one class of mistake (or a valid variant)."""

    name: str
    build: Callable[[Path], list[str]]  # tmp_path -> argv after `infercast`
    expected: str  # "error" | "ok"
    needles: tuple[str, ...] = ()  # what the one error line must name (file, key, flag)


def run_case(case: Case, tmp_path: Path, timeout_s: int = 60):
    """Run a corpus case and assert its kind (and, for an error, its needles); an ok case's strict
    JSON output comes back for the caller's checks, an error's None."""
    out = run_cli(case.build(tmp_path), timeout_s=timeout_s)
    assert out.kind == case.expected, (out.kind, out.err[-2000:])
    if case.expected == "error":
        for needle in case.needles:
            assert needle in out.err, (needle, out.err)
        return None
    return strict_json(out.out)
