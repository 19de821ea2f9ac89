"""Interleaved timing rounds: median polish separates a drifting machine's speed from the jobs'
times; rounds are resumable."""

import math

import numpy as np

from validate.timing_rounds import Job, median_polish, read_raw, run_rounds


def test_median_polish_recovers_job_times_under_drift():
    # jobs of 1, 10 and 100 ms; the machine runs 1.0x, 1.5x, 0.8x, 1.2x, 1.0x over five rounds
    # (as this VM does within minutes): every job slows by its round's factor, times 1 +- 1% noise
    rng = np.random.default_rng(0)
    true = {"a": 1e-3, "b": 1e-2, "c": 1e-1}
    speed = [1.0, 1.5, 0.8, 1.2, 1.0]
    raw = {k: {r: t * s * (1 + 0.01 * rng.standard_normal()) for r, s in enumerate(speed)} for k, t in true.items()}
    pol = median_polish(raw)
    for k, t in true.items():
        assert abs(pol.times[k] / t - 1) < 0.03
    # the fastest round is round 2 (0.8 against the median round's 1.0)
    assert min(pol.round_factor, key=pol.round_factor.get) == 2
    assert abs(pol.round_factor[1] / pol.round_factor[2] - 1.5 / 0.8) < 0.05
    # a job's plain median over rounds would be right too here, but the ratio between two jobs is
    # what the fit needs: it comes out within the noise
    assert abs(pol.times["b"] / pol.times["a"] - 10) < 0.3


def test_job_time_averages_a_two_speed_machine():
    # this VM switches between a fast and a slow state (x1.5) for a second or more at a time, so a
    # job's 40 ms in a round lands in one or the other. Job "a" met the slow state in 13 of 25
    # rounds, job "b" in 12: their medians fall in different states (1.5 against 1.0), while a
    # long model step, spanning both states, takes the time-weighted mean. The job's time is that
    # mean: a: (12 * 1.0 + 13 * 1.5) / 25 = 1.26, b: (13 * 1.0 + 12 * 1.5) / 25 = 1.24; trimming 2
    # rounds at each end (10% of 25) drops two of each state, which leaves those means unchanged
    # to within 0.01. Round effects come from 20 steady jobs timed alongside.
    slow_a, slow_b = set(range(13)), set(range(12, 24))
    raw = {f"s{i}": {r: 1.0 for r in range(25)} for i in range(20)}
    raw["a"] = {r: 1.5 if r in slow_a else 1.0 for r in range(25)}
    raw["b"] = {r: 1.5 if r in slow_b else 1.0 for r in range(25)}
    mean, median = median_polish(raw), median_polish(raw, average="median")
    assert median.times["a"] == 1.5 and median.times["b"] == 1.0
    assert abs(mean.times["a"] - 1.26) < 0.01 and abs(mean.times["b"] - 1.24) < 0.01


def test_median_polish_takes_missing_cells():
    raw = {"a": {0: 1.0, 1: 2.0}, "b": {0: 3.0, 1: 6.0, 2: 9.0}}
    pol = median_polish(raw)
    # b is 3x a in every round they share
    assert math.isclose(pol.times["b"] / pol.times["a"], 3.0, rel_tol=1e-9)


def test_rounds_resume_without_timing_again(tmp_path):
    calls = []

    def setup(name):
        def fn():
            calls.append(name)
        return fn

    jobs = [Job("x", lambda: setup("x"), warm=1, budget_s=0.001), Job("y", lambda: setup("y"), warm=1, budget_s=0.001)]
    raw = tmp_path / "t.raw.csv"
    assert run_rounds(jobs, 2, raw, threads=1, header={"device": "test"}) == 4
    assert run_rounds(jobs, 2, raw, threads=1) == 0
    n = len(calls)
    assert run_rounds(jobs, 3, raw, threads=1) == 2  # one more round: each job once more
    assert len(calls) > n
    got = read_raw(raw)
    assert set(got) == {"x", "y"} and all(sorted(v) == [0, 1, 2] for v in got.values())
    assert raw.read_text().startswith("# device: test")
