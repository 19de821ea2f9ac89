"""The validate command predicts every point of each published group it knows."""

import math

import pytest

from simulator.cli import run
from validate.published import load_rows, run_group, summarize


@pytest.mark.parametrize("group,expected", [("trtllm_v0.6.1_static", 47), ("kernel_gemm", 12), ("interconnect", 10)])
def test_every_point_of_the_group_is_predicted(group, expected):
    points = run_group(group)
    assert len(points) == expected
    s = summarize(points)
    assert s["points"] == expected
    assert math.isfinite(s["median_abs_rel_error"]) and s["worst_abs_rel_error"] >= s["median_abs_rel_error"]


def test_trtllm_rows_are_all_read():
    assert len(load_rows("trtllm_v0.6.1_static")) == 47


def test_validate_cli_prints_the_summary(capsys):
    assert run(["validate", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "median" in out and "worst" in out


def test_unknown_group_is_a_one_line_error(capsys):
    assert run(["validate", "--group", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--group" in err and "trtllm_v0.6.1_static" in err
