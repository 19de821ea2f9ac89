"""Every README example, shipped scenario and shipped plan runs, and its JSON parses strictly
(Python's json with NaN and Infinity refused, as jq does)."""

from __future__ import annotations

import pytest

from simulator.catalog import data_dir
from tests.fuzz.harness import run_cli, strict_json
from tests.fuzz.readme_examples import examples, measures_this_machine

HAS_JSON = ("whatif", "simulate", "plan")  # commands with --format json
README_EXAMPLES = [e for e in examples() if not measures_this_machine(e)]


def _quiet(argv: list[str]) -> list[str]:
    return argv + ["--no-progress"] if argv[0] == "simulate" else argv


def _as_json(argv: list[str]) -> list[str]:
    if "--format" in argv:
        i = argv.index("--format")
        argv = argv[:i] + argv[i + 2:]
    argv = [a for a in argv if a != "--breakdown"]
    return argv + ["--format", "json"]


def test_the_readme_has_examples_of_each_command():
    assert {e[0] for e in README_EXAMPLES} >= {"whatif", "simulate", "plan", "list", "validate"}


@pytest.mark.parametrize("argv", README_EXAMPLES, ids=[" ".join(e)[:60] for e in README_EXAMPLES])
def test_readme_example_runs_and_its_json_is_strict(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write (--chrome-trace) write here
    shown = run_cli(_quiet(argv), timeout_s=300)
    assert shown.kind == "ok", shown.err
    if argv[0] in HAS_JSON:
        monkeypatch.chdir(tmp_path.parent)
        as_json = run_cli(_quiet(_as_json([a for a in argv if a != "steps.json" and a != "--chrome-trace"])), 300)
        assert as_json.kind == "ok", as_json.err
        assert isinstance(strict_json(as_json.out), dict)


def test_the_first_whatif_example_fits():
    """README's first example answers with times (the issue: it used to answer 'does not fit')."""
    first = next(e for e in README_EXAMPLES if e[0] == "whatif")
    out = strict_json(run_cli(_as_json(first)).out)
    assert out["fits"] is True and out["ttft_s"] > 0 and out["tpot_s"] > 0


SCENARIOS = sorted(p.stem for p in data_dir("workloads.scenarios").glob("*.yaml"))
PLANS = sorted(p.stem for p in data_dir("workloads.plans").glob("*.yaml"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_shipped_scenario_json_is_strict(scenario):
    out = run_cli(["simulate", scenario, "--format", "json", "--no-progress"], timeout_s=300)
    assert out.kind == "ok", out.err
    summary = strict_json(out.out)
    assert summary["finished"] + summary["rejected"] <= summary["requests"]
    assert summary["finished"] > 0 and summary["ttft_p50_s"] > 0


@pytest.mark.parametrize("plan", PLANS)
def test_shipped_plan_json_is_strict(plan):
    out = run_cli(["plan", plan, "--format", "json"], timeout_s=300)
    assert out.kind == "ok", out.err
    assert strict_json(out.out)["total_usd_per_hour"] > 0
