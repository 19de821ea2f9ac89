"""Numbers in simulate's and plan's tables and in error prose are human-formatted: no e-notation
for ordinary magnitudes, no "infinite" where a duration belongs, "more than $..." for absurd money."""

from __future__ import annotations

import re

from simulator.human import duration, money, request_rate
from simulator.serving.cli import _cell
from tests.fuzz.harness import run_cli

EXPONENT = re.compile(r"\d[eE][+-]?\d")


def test_table_cells_have_separators_and_no_exponent():
    assert _cell(33915.2) == "33,915" and _cell(0.01221) == "0.01221" and _cell(0.3168) == "0.3168"
    assert not EXPONENT.search(_cell(3.391e4) + _cell(1.5e7) + _cell(2.5e-4))
    assert _cell(1.221e-05) == "1.221e-5"  # below 0.0001 a power of ten, as human.significant writes it
    assert _cell(float("nan")) == "-" and _cell(None) == "-"


def test_prose_durations_never_say_infinite():
    assert duration(float("inf")) == "more than 30 years"
    assert request_rate(1e-320) == "less than one request every 30 years"
    assert request_rate(1 / 86400) == "one request every 1.0 days"
    assert request_rate(4.0) == "4 requests/s"
    assert "infinite" not in duration(2 / 1e-320)


def test_money_is_plain_and_absurd_sums_say_so():
    assert money(3.0) == "$3.00" and money(1234.5) == "$1,234.50" and money(0.00123) == "$0.00123"
    assert money(723_379_629_630.0) == "more than $1,000,000,000"


def test_plan_table_for_a_tiny_rate_is_readable():
    out = run_cli(["plan", "--model", "llama-3.1-8b", "--rounds", "0", "--input-len", "1024", "--output-len", "128",
                   "--rate", "1e-12", "--hw", "h100-sxm:8"], timeout_s=60)
    assert out.kind == "ok", out.err
    text = " ".join(out.out.split())
    assert "more than $1,000,000,000" in text and "723,379" not in text
    assert "less than one request every 30 years" in text
