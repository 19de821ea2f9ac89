"""Hand-written `whatif` flag cases: each bad one is one class of mistake (negative, zero, huge,
infinite, NaN, bool-ish, fractional, unknown dtype, bad --cp-kind, a layout too large, a TP degree
that does not split the heads, ...) and must be refused in one line (exit 2) naming its flag; each
good one must answer with strict JSON whose numbers are consistent (TTFT > 0, E2E = TTFT +
(output - 1) x TPOT) and carry its `config`; a configuration that does not fit answers with null
times, `fits: false` and an `advice` block, never NaN."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import pytest

from simulator.limits import MAX_BATCH, MAX_DEGREE, MAX_TOKENS
from tests.fuzz.harness import run_cli, strict_json

SHORT = ["--input-len", "512", "--output-len", "8"]  # quick to answer


class Case(NamedTuple):
    name: str
    argv: list[str]  # after `infercast whatif`
    expected: str  # "error" | "ok" | "nofit"
    needle: str = ""  # what the error line must name (its flag)


def bad(flag: str, value: str, needle: str | None = None, *extra: str) -> Case:
    """One flag set to a bad value (on a quick configuration, without SHORT's own value of the flag:
    an option given twice is refused for that alone); the line must name `needle` (the flag)."""
    quick = [x for k, v in zip(SHORT[::2], SHORT[1::2]) if k != flag for x in (k, v)]
    return Case(f"{flag.lstrip('-')}={value or 'empty'}", [*quick, *extra, flag, value], "error", needle or flag)


CASES = [
    # parallel degrees: zero, negative, over the ceiling, not a whole number
    bad("--tp", "0"), bad("--tp", "-1"), bad("--tp", str(MAX_DEGREE + 1)), bad("--tp", "99999999999999999999999"),
    bad("--tp", "2.5"), bad("--tp", "1e3"), bad("--tp", "true"), bad("--tp", "nan"),
    bad("--pp", "0"), bad("--pp", "-4"), bad("--pp", "5000"), bad("--pp", "100", "--pp 100"),  # 32 layers
    bad("--cp", "0"), bad("--cp", "-2"), bad("--cp", str(MAX_DEGREE + 1)),
    bad("--ep", "0"), bad("--ep", "5000"), bad("--ep", "2", "--ep 2"),  # llama has no experts
    # batch and lengths
    bad("--batch", "0"), bad("--batch", "-1"), bad("--batch", str(MAX_BATCH + 1)), bad("--batch", "1e6"),
    bad("--batch", "yes"),
    bad("--input-len", "0"), bad("--input-len", "-5"), bad("--input-len", str(MAX_TOKENS + 1)),
    bad("--input-len", "inf"), bad("--input-len", "nan"),
    bad("--output-len", "0"), bad("--output-len", str(MAX_TOKENS + 1)), bad("--output-len", "1.5"),
    # expert-parallel imbalance: finite, >= 1, at most the EP degree
    bad("--ep-imbalance", "nan"), bad("--ep-imbalance", "inf"), bad("--ep-imbalance", "-inf"),
    bad("--ep-imbalance", "0.5"), bad("--ep-imbalance", "0"), bad("--ep-imbalance", "2"),
    bad("--ep-imbalance", "1e308", None, "--model", "mixtral-8x7b", "--tp", "2", "--ep", "2"),
    bad("--ep-imbalance", "false"),
    # dtype names
    bad("--dtype", "fp12"), bad("--dtype", "BF16"), bad("--dtype", ""), bad("--dtype", "int3"),
    bad("--kv-dtype", "fp4"), bad("--kv-dtype", "bogus"), bad("--compute-dtype", "fp64"),
    bad("--compute-dtype", "int4", None, "--hw", "h100-sxm"),  # no int4 rate on Hopper
    bad("--cp-kind", "star"), bad("--cp-kind", "RING"), bad("--cp-kind", ""),
    # layouts: too many devices, degrees the model cannot split by
    bad("--pp", "4096", "--tp/--pp/--cp", "--tp", "4096"),
    bad("--cp", "1024", "--tp/--pp/--cp", "--tp", "1024", "--pp", "2"),
    bad("--tp", "3", "--tp 3"), bad("--tp", "64", "--tp 64"),  # llama-3.1-8b: 32 heads, 8 KV heads
    bad("--cp", "3", "--cp 3", "--cp-kind", "ulysses"),  # 32 heads do not split over 3 ranks
    bad("--ep", "4", "--ep 4", "--model", "mixtral-8x7b", "--tp", "2"),  # EP must divide TP
    bad("--format", "xml"), bad("--tpp", "2"),
    # adversarial findings: an option given twice (B9); devices with no link between them (B2);
    # a 16-bit GEMM on an int8-only NPU names the one flag that fixes it (C4)
    Case("tp-given-twice", [*SHORT, "--tp", "1", "--tp", "2"], "error", "--tp: given twice"),
    Case("dtype-given-twice", [*SHORT, "--dtype=bf16", "--dtype", "fp8"], "error", "--dtype: given twice"),
    Case("cp-over-the-prompt", ["--cp", "8", "--input-len", "4", "--output-len", "2", "--hw", "h100-sxm"], "error",
         "--cp: must be <= --input-len (4)"),
    Case("cp-kind-without-cp", [*SHORT, "--cp-kind", "ulysses"], "error", "--cp-kind ulysses: context parallelism needs"),
    Case("no-link-tp", [*SHORT, "--hw", "m2-ultra", "--tp", "2"], "error", "--tp 2: needs a link between devices"),
    Case("no-link-pp", [*SHORT, "--hw", "snapdragon-8gen3", "--compute-dtype", "int8", "--pp", "2"], "error",
         "--pp 2: needs a link between devices, and snapdragon-8gen3"),
    Case("no-link-cp", [*SHORT, "--hw", "epyc-9654", "--cp", "2"], "error", "--cp 2: needs a link"),
    Case("no-link-local", [*SHORT, "--hw", "local", "--tp", "8"], "error", "--tp 8: needs a link"),
    Case("npu-16-bit-gemm", [*SHORT, "--hw", "snapdragon-8gen3"], "error", "give --compute-dtype int8 (the weights stay"),
    # answers that fit
    Case("default-short", SHORT, "ok"),
    Case("tp2-pp2", [*SHORT, "--model", "llama-3.1-70b", "--hw", "h100-sxm", "--tp", "2", "--pp", "2"], "ok"),
    Case("cp2-ring", [*SHORT, "--model", "llama-3.1-70b", "--hw", "h100-sxm", "--tp", "4", "--cp", "2"], "ok"),
    Case("cp2-ulysses", [*SHORT, "--model", "llama-3.1-70b", "--hw", "h100-sxm", "--tp", "4", "--cp", "2",
                         "--cp-kind", "ulysses"], "ok"),
    Case("moe-ep", [*SHORT, "--model", "mixtral-8x7b", "--hw", "h100-sxm", "--tp", "2", "--ep", "2",
                    "--ep-imbalance", "1.5"], "ok"),
    Case("fp8-weights", [*SHORT, "--dtype", "fp8", "--hw", "h100-sxm"], "ok"),
    Case("int4-kv", [*SHORT, "--kv-dtype", "int4"], "ok"),
    Case("fp16-compute", [*SHORT, "--compute-dtype", "fp16"], "ok"),
    Case("one-output-token", ["--input-len", "2048", "--output-len", "1"], "ok"),
    Case("wide-batch", ["--input-len", "64", "--output-len", "4", "--batch", "1000", "--tp", "8"], "ok"),
    Case("long-output", ["--input-len", "128", "--output-len", "5000"], "ok"),
    Case("pcie-only-tp2", [*SHORT, "--hw", "a10g", "--tp", "2"], "ok"),  # a host link carries it
    Case("npu-int8-gemm", [*SHORT, "--hw", "snapdragon-8gen3", "--compute-dtype", "int8"], "ok"),
    Case("imbalance-at-ep", [*SHORT, "--model", "mixtral-8x7b", "--hw", "h200-sxm", "--tp", "2", "--ep", "2",
                             "--ep-imbalance", "2"], "ok"),
    # answers that do not fit: null times and advice
    Case("readme-70b-tp4-b8", ["--model", "llama-3.1-70b", "--hw", "h100-sxm", "--tp", "4", "--batch", "8",
                               "--input-len", "131072", "--output-len", "1024"], "nofit"),
    Case("405b-one-device", ["--model", "llama-3.1-405b", "--input-len", "1024", "--output-len", "8"], "nofit"),
    Case("405b-on-t4", ["--model", "llama-3.1-405b", "--hw", "t4", "--input-len", "1024", "--output-len", "8"], "nofit"),
    Case("huge-everything", ["--batch", str(MAX_BATCH), "--input-len", str(MAX_TOKENS), "--output-len",
                             str(MAX_TOKENS)], "nofit"),
    Case("max-degrees", ["--tp", "8", "--pp", "32", "--cp", "3000", "--batch", str(MAX_BATCH),
                         "--input-len", str(MAX_TOKENS), "--output-len", str(MAX_TOKENS)], "nofit"),
]


def test_the_corpus_is_large_and_names_are_unique():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


def _no_nan_text(text: str) -> None:
    assert not re.search(r"\b(nan|inf|infinity)\b", text, re.IGNORECASE), text


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_whatif_case(case):
    fmt = [] if case.expected == "error" else ["--format", "json"]
    out = run_cli(["whatif", *case.argv, *fmt], timeout_s=60)
    if case.expected == "error":
        assert out.kind == "error", out
        assert case.needle in out.err, (case.needle, out.err)
        return
    assert out.kind == "ok", out
    d = strict_json(out.out)
    cfg = d["config"]
    assert cfg["layout"]["devices"] == d["devices"] == d["tp"] * d["pp"] * d["cp"] and cfg["infercast_version"]
    assert cfg["batch"] == d["batch"] and cfg["input_len"] == d["input_len"] and "calibrated" in cfg
    if case.expected == "nofit":
        _check_nofit(d)
    else:
        _check_fit(d)


def _check_fit(d: dict) -> None:
    assert d["fits"] is True and d["advice"] is None
    ttft, tpot, e2e = d["ttft_s"], d["tpot_s"], d["e2e_s"]
    assert all(math.isfinite(x) for x in (ttft, tpot, e2e, d["throughput_tok_s"]))
    assert ttft > 0 and tpot >= 0 and (tpot > 0) == (d["output_len"] > 1)
    assert e2e == pytest.approx(ttft + (d["output_len"] - 1) * tpot, rel=1e-9)
    assert isinstance(d["memory_capacity_bytes"], int) and d["memory_capacity_bytes"] > 0  # whole bytes
    if d["usd_per_hour"] is not None:  # one output token comes out of the prefill: no output price, not $0
        assert (d["usd_per_mtok_output"] is None) == (d["output_len"] == 1), d["usd_per_mtok_output"]
    assert d["throughput_tok_s"] == pytest.approx(d["batch"] * d["output_len"] / e2e, rel=1e-9)


def _check_nofit(d: dict) -> None:
    assert d["fits"] is False
    assert all(d[k] is None for k in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s", "usd_per_mtok_output"))
    advice = d["advice"]
    assert advice is not None and advice["text"] and advice["text"] in d["message"]
    assert (advice["fits_with"] is None) == (advice["nothing_fits"] is not None)
    if advice["fits_with"] is not None:
        assert advice["fits_with"]["needed_bytes_per_device"] <= d["memory_capacity_bytes"]
        assert advice["fits_with"] == advice["options"][0]
    assert d["message"].startswith("does not fit: needs ")
    _no_nan_text(d["message"])
    assert "e+" not in d["message"]  # human-formatted numbers only


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_a_non_fit_in_table_and_csv_says_what_would(fmt):
    out = run_cli(["whatif", "--model", "llama-3.1-405b", "--input-len", "1024", "--output-len", "8", "--format", fmt])
    assert out.kind == "ok", out
    assert "does not fit" in out.out and "fits with --tp 8" in out.out.replace("\n", " ")
    _no_nan_text(out.out)
