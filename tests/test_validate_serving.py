"""The serving simulator on the published static-batch throughput points (validate.serving_points)."""

import math

import pytest

from simulator import whatif
from simulator.cli import run
from simulator.errors import InfercastError
from validate import serving_points
from validate.predictors import per_gpu_divisor, trtllm_args
from validate.serving_points import (
    GROUP,
    run_sim_group,
    simulate_static_batch,
    summarize_sim,
    throughput_rows,
)

# cheap points whose whole batch fits in memory (no preemption): three hardware, two models
CHEAP = ["trt061_l40s_llama27b_outp_16_1_2048_2048", "trt061_h100_sxm_gptj6b_outp_64_1_2048_128",
         "trt061_l40s_gptj6b_outp_64_1_128_128"]


def _row(point_id: str) -> dict:
    return next(r for r in throughput_rows() if r["point_id"] == point_id)


@pytest.mark.parametrize("point_id", CHEAP)
def test_simulated_static_batch_agrees_with_the_closed_form(point_id):
    args = trtllm_args(_row(point_id))
    cf = whatif(**args)  # memory is checked: these batches fit
    assert cf.fits and cf.throughput_tok_s > 0
    sim, preemptions = simulate_static_batch(**args)
    assert preemptions == 0
    assert sim == pytest.approx(cf.throughput_tok_s, rel=0.05)


def test_group_report_has_one_row_per_point_with_finite_errors():
    rows = throughput_rows()
    points = run_sim_group()
    assert len(points) == len(rows) == 31
    assert [p.point_id for p in points] == [r["point_id"] for r in rows]
    for p, r in zip(points, rows):
        assert p.simulated is not None, p.note
        assert math.isfinite(p.sim_error) and math.isfinite(p.closed_form_error)
        assert p.measured == float(r["value"])
    s = summarize_sim(points)
    assert s["points"] == s["simulated"] == 31 and not s["not_simulated"]
    for who in ("simulator", "closed_form"):
        assert s[who]["points"] == 31 and 0 <= s[who]["median"] <= s[who]["worst"] < math.inf


def test_per_gpu_points_are_divided_by_the_tp_degree():
    row = next(r for r in throughput_rows() if r["scope"].startswith("per GPU") and int(r["num_devices"]) > 1)
    p = run_sim_group([row])[0]
    assert p.simulated == pytest.approx(simulate_static_batch(**trtllm_args(row))[0] / int(row["num_devices"]))
    assert per_gpu_divisor(row) == int(row["num_devices"])


def test_a_point_the_simulator_refuses_is_kept_with_its_message(monkeypatch):
    def refuse(**kw):
        raise InfercastError("KV cache: does not fit")

    monkeypatch.setattr(serving_points, "simulate_static_batch", refuse)
    p = run_sim_group([_row(CHEAP[0])])[0]
    assert p.simulated is None and p.note == "KV cache: does not fit" and math.isnan(p.sim_error)
    assert math.isfinite(p.closed_form_error)
    s = summarize_sim([p])
    assert s["simulated"] == 0 and s["not_simulated"] == {CHEAP[0]: "KV cache: does not fit"}


def test_validate_cli_runs_the_simulator_group(capsys):
    assert run(["validate", "--group", GROUP, "--summary"]) == 0
    out = capsys.readouterr().out
    assert "simulator" in out and "closed form" in out and "median" in out and "31 of 31" in out
