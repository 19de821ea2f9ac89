"""Generated command lines: every one either answers (exit 0, strict JSON, finite and consistent
numbers) or is refused in one line with exit 2. Never a traceback, a hang or another exit."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import run_cli, strict_json

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

INTS = st.one_of(st.integers(-3, 3), st.integers(1, 64), st.sampled_from([0, -1, 2**31, 10**12, 10**30]))
NUMBERS = st.one_of(INTS.map(str), st.sampled_from(["inf", "-inf", "nan", "1e308", "0.5", "-0.0", "1e-300",
                                                     "abc", "", " ", "1,000", "0x10", "true"]))
WHATIF_FLAGS = ["--tp", "--pp", "--cp", "--ep", "--batch", "--input-len", "--output-len", "--ep-imbalance"]
WORDS = ["--dtype", "--kv-dtype", "--compute-dtype"]
DTYPES = st.sampled_from(["bf16", "fp16", "fp8", "int8", "int4", "fp4", "fp32", "BF16", "fp64", "", "none"])
HW = st.sampled_from(["h100-sxm", "h200-sxm", "a10g", "mi300x", "t4", "epyc-9654", "h100", "", "local"])
MODEL = st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "deepseek-v3", "llama", ""])


@st.composite
def whatif_argv(draw) -> list[str]:
    argv = ["whatif", "--format", "json", "--hw", draw(HW), "--model", draw(MODEL)]
    for flag in draw(st.lists(st.sampled_from(WHATIF_FLAGS), max_size=4, unique=True)):
        argv += [flag, draw(NUMBERS)]
    for flag in draw(st.lists(st.sampled_from(WORDS), max_size=2, unique=True)):
        argv += [flag, draw(DTYPES)]
    return argv


@FUZZ
@given(whatif_argv())
def test_whatif_answers_or_refuses_in_one_line(argv):
    out = run_cli(argv)
    assert out.kind in ("ok", "error"), (argv, out.kind, out.err[-2000:])
    if out.kind == "ok":
        res = strict_json(out.out)
        if res["fits"]:
            assert res["ttft_s"] > 0 and res["e2e_s"] >= res["ttft_s"]
            # a decode step reads every weight byte on the device at least once (memory bound from below)
            assert res["tpot_s"] is None or res["output_len"] == 1 or res["tpot_s"] > 0


@st.composite
def simulate_argv(draw) -> list[str]:
    argv = ["simulate", "--format", "json", "--no-progress", "--num-requests", str(draw(st.integers(1, 25)))]
    argv += ["--rate", draw(st.one_of(st.sampled_from(["0.5", "4", "50"]), NUMBERS))]
    argv += ["--input-len", draw(st.one_of(st.sampled_from(["64", "2048", "100000"]), NUMBERS))]
    argv += ["--output-len", draw(st.one_of(st.sampled_from(["1", "16", "300"]), NUMBERS))]
    argv += ["--seed", draw(st.one_of(st.integers(0, 5).map(str), NUMBERS))]
    for flag in draw(st.lists(st.sampled_from(["--tp", "--replicas", "--max-batch", "--ttft-slo", "--tpot-slo",
                                               "--max-batched-tokens", "--cv"]), max_size=3, unique=True)):
        argv += [flag, draw(NUMBERS)]
    if draw(st.booleans()):
        argv += ["--arrival", draw(st.sampled_from(["offline", "poisson", "gamma", "constant", "burst"]))]
    return argv


@FUZZ
@given(simulate_argv())
def test_simulate_answers_or_refuses_in_one_line(argv):
    out = run_cli(argv)
    assert out.kind in ("ok", "error"), (argv, out.kind, out.err[-2000:])
    if out.kind == "ok":
        s = strict_json(out.out)
        assert s["finished"] + s["rejected"] <= s["requests"]
        if s["finished"]:
            assert s["ttft_p50_s"] > 0 and s["e2e_p50_s"] >= s["ttft_p50_s"] * 0.999999
        else:
            assert s["ttft_p50_s"] is None


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.integers(0, 2**32), st.integers(1, 20), st.sampled_from(["poisson", "gamma", "constant", "offline"]))
def test_the_same_seed_gives_byte_identical_json(seed, n, arrival):
    argv = ["simulate", "--format", "json", "--no-progress", "--num-requests", str(n), "--seed", str(seed),
            "--arrival", arrival, "--input-len", "512", "--output-len", "32"]
    if arrival != "offline":  # an offline batch has no rate: the flag is refused
        argv += ["--rate", "20"]
    first, second = run_cli(argv), run_cli(argv)
    assert first.kind == "ok", first.err
    assert first.out == second.out


TOKENS = ["whatif", "simulate", "plan", "validate", "list", "hw", "models", "--format", "json", "csv", "table",
          "--tp", "--rate", "-5", "0", "inf", "nan", "--seed", "-1", "--model", "llama-3.1-8b", "--hw", "h100-sxm",
          "--disagg", "1:3", "0:0", "--kv-offload", "host:32GiB", "host:-1GiB", "nvme:", "--num-requests", "3",
          "chat", "--no-progress", "--input-len", "999999999999", "--preemption", "swap", "--cp", "8"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8))
def test_token_soup_never_escapes(argv):
    if argv[0] == "plan" or (argv[0] == "simulate" and "--num-requests" not in argv):
        argv = argv + ["--num-requests", "3"] if argv[0] == "simulate" else argv + ["--rounds", "0"]
    out = run_cli(argv, timeout_s=120)
    assert out.kind in ("ok", "error"), (argv, out.kind, out.err[-2000:])
