"""Hand-written `plan` cases. Each bad case is one class of mistake: the shipped plan with one key
made wrong (rates, SLOs, attainment, headroom, inventory counts over the ceiling, unknown hardware
or model, length specs that cannot be drawn from), a bad flag, a flag that has nothing to replace.
Each must be refused in one line (exit 2) naming the key or flag. The good cases (few: planning
takes a while; `--rounds 0` skips the simulated check) answer with strict JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.catalog import data_dir
from simulator.limits import MAX_DEVICES
from tests.fuzz.harness import Case, run_case, run_cli, strict_json

PLAN = data_dir("workloads.plans") / "long-context-128k.yaml"
DELETE = object()
QUICK = ["--rounds", "0"]



def _plan(tmp: Path, changes: dict) -> Path:
    data = yaml.safe_load(PLAN.read_text())
    for key_path, value in changes.items():
        *parents, last = key_path.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    path = tmp / "plan-changed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def key(name: str, key_path: str, value: object, needle: str | None = None) -> Case:
    """The shipped plan with `key_path` set to `value`: refused naming the file and key."""
    return Case(f"key-{name}", lambda tmp: ["plan", str(_plan(tmp, {key_path: value})), *QUICK], "error",
                ("plan-changed.yaml", needle or key_path))


def flag(name: str, argv: list[str], needle: str) -> Case:
    return Case(f"flag-{name}", lambda tmp: ["plan", *argv], "error", (needle,))


def one_class(tmp: Path) -> str:
    """The shipped plan cut to its first class."""
    data = yaml.safe_load(PLAN.read_text())
    data["classes"] = data["classes"][:1]
    path = tmp / "one-class.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def long_prompt_small_chunks(tmp: Path) -> str:
    """A 1M-token prompt in the smallest chunks allowed (16 tokens: 62,500 chunks): scored at once,
    not chunk by chunk; its check (1,500 requests by default) is refused as too long to simulate."""
    path = tmp / "long-prompt.yaml"
    path.write_text(yaml.safe_dump({
        "name": "long", "model": "llama-3.1-8b", "inventory": [{"hw": "h100-sxm", "count": 64}],
        "classes": [{"name": "long", "rate": 0.001, "input_len": 1_000_000, "output_len": 16, "ttft_s": 3600,
                     "tpot_s": 1}], "max_batched_tokens": 16}))
    return str(path)


CASES = [
    key("purchase-under-a-dollar", "inventory.0.purchase_usd", 0.001, "at least $1"),
    key("amortization-too-short", "amortization_years", 0.0001, "at least 0.25 years"),
    key("ttft-under-a-microsecond", "classes.0.ttft_s", 1e-9, "at least 1 us"),
    flag("ttft-under-a-microsecond", [*QUICK, "--ttft", "1e-9"], "--ttft: must be at least 1 us"),
    key("rate-negative", "classes.0.rate", -1), key("rate-inf", "classes.0.rate", float("inf")),
    key("rate-string", "classes.0.rate", "lots"), key("ttft-zero", "classes.1.ttft_s", 0),
    key("tpot-negative", "classes.1.tpot_s", -0.1), key("ttft-nan", "classes.0.ttft_s", float("nan")),
    key("lengths-reversed", "classes.0.input_len", {"uniform": [2000, 100]}),
    key("lognormal-negative-sigma", "classes.0.output_len", {"lognormal": {"mean": 256, "sigma": -1}}),
    key("empirical-empty", "classes.1.input_len", {"empirical": {"values": []}}),
    key("attainment-over-one", "attainment", 1.5), key("attainment-zero", "attainment", 0),
    key("headroom-zero", "headroom", 0), key("headroom-over-one", "headroom", 2),
    key("count-over-ceiling", "inventory.0.count", MAX_DEVICES + 1), key("count-negative", "inventory.0.count", -1),
    key("count-fraction", "inventory.1.count", 2.5), key("hw-unknown", "inventory.0.hw", "h100-xyz"),
    key("hw-twice", "inventory.1.hw", "h100-sxm", needle="inventory"), key("model-unknown", "model", "nope"),
    key("price-inf", "inventory.0.usd_per_hour", float("inf")), key("rounds-negative", "check.rounds", -1),
    key("check-requests-huge", "check.requests", 10**12), key("seed-negative", "check.seed", -1),
    key("tp-list-empty", "layouts.tp", []), key("tp-zero", "layouts.tp", [0, 2]),
    key("gap-one", "solver.gap", 1), key("objective-unknown", "objective", "speed"),
    key("no-classes", "classes", []), key("class-name-twice", "classes.1.name", "chat", needle="classes"),
    key("dtype-unknown", "dtype", "fp12"), key("unknown-key", "invetory", []),
    key("attainment-one", "attainment", 1, needle="'attainment': must be a share > 0 and < 1"),
    key("max-batched-tokens-one", "max_batched_tokens", 1,
        needle="'max_batched_tokens': must be a whole number from 16"),
    key("tp-splits-no-heads", "layouts.tp", [3], needle="'layouts.tp': no degree splits the model"),
    key("tp-beyond-domain", "layouts.tp", [16], needle="'layouts.tp': every degree that splits the model is beyond"),
    key("pp-over-layers", "layouts.pp", [128], needle="'layouts.pp': no degree fits: llama-3.1-70b has only 80 layers"),
    key("cp-over-max-devices", "layouts.cp", [4096], needle="'layouts.cp': every degree uses more than"),
    *(key(f"{name}-400-digits", key_path, 10**400 - 1) for name, key_path in (
        ("rate", "classes.0.rate"), ("ttft", "classes.0.ttft_s"), ("price", "inventory.0.usd_per_hour"),
        ("headroom", "headroom"), ("attainment", "attainment"), ("time-limit", "solver.time_limit_s"))),
    Case("check-too-long-to-simulate", lambda tmp: ["plan", long_prompt_small_chunks(tmp)], "error",
         ("key 'check.requests': class 'long': the check simulates at least 93,750,000 steps",)),
    flag("check-too-long-by-flag", ["--input-len", "20000000", "--rounds", "1"], "--input-len: class 'default'"),
    Case("no-kv-room-on-one-device", lambda tmp: ["plan", str(_plan(tmp, {"layouts.max_devices": 1})), *QUICK],
         "error", ("no layout of h100-sxm, h200-sxm up to 1 device leaves room for KV",)),
    flag("rate-inf", ["--rate", "inf"], "--rate"), flag("rate-negative", ["--rate", "-2"], "--rate"),
    flag("ttft-negative", ["--ttft", "-1"], "--ttft"), flag("tpot-zero", ["--tpot", "0"], "--tpot"),
    flag("input-len-zero", ["--input-len", "0"], "--input-len"), flag("hw-empty-part", ["--hw", ","], "--hw"),
    flag("hw-count-negative", ["--hw", "h100-sxm:-1"], "--hw"),
    flag("hw-count-huge", ["--hw", f"h100-sxm:{MAX_DEVICES + 1}"], "--hw"), flag("hw-unknown", ["--hw", "nope"], "--hw"),
    flag("model-unknown", ["--model", "nope"], "--model"), flag("rounds-negative", ["--rounds", "-1"], "--rounds"),
    flag("rounds-huge", ["--rounds", "1000"], "--rounds"), flag("objective-unknown", ["--objective", "speed"], "--objective"),
    flag("rate-of-two-classes", ["long-context-128k", "--rate", "3"], "--rate"),
    flag("ttft-of-two-classes", ["long-context-128k", "--ttft", "3"], "--ttft"),
    flag("hw-unknown-with-file", ["long-context-128k", "--hw", "h100-xyz", *QUICK], "--hw"),
    flag("unknown-plan", ["no-such-plan"], "PLAN"),
    key("power-w-one-watt", "inventory.0.power_w", 1, needle="'inventory.0.power_w': must be at least 5 W"),
    Case("power-objective-without-tdp", lambda tmp: ["plan", str(_plan(tmp, {"objective": "power", "inventory.0.hw":
                                                                            "tpu-v5e"})), *QUICK], "error",
         ("plan-changed.yaml: key 'inventory.0.power_w': objective power", "tpu-v5e's hwspec has no power.tdp")),
    flag("power-objective-without-tdp-by-flag", ["--hw", "tpu-v5e", "--objective", "power", *QUICK],
         "--hw: objective power ranks plans by watts"),
    Case("owned-without-tdp", lambda tmp: ["plan", str(_plan(tmp, {"inventory.0.hw": "tpu-v5e",
                                                                    "inventory.0.purchase_usd": 10000})), *QUICK],
         "error", ("key 'inventory.0.power_w': purchase_usd adds electricity at TDP",)),
    key("usd-objective-without-price", "inventory.0.hw", "m2-ultra",
        needle="key 'inventory.0': objective usd ranks plans by price, and m2-ultra's hwspec has no cloud price"),
    key("dtype-the-hardware-lacks", "inventory.1.hw", "snapdragon-8gen3",
        needle="key 'dtype': snapdragon-8gen3 (inventory.1) has no rate for bf16"),
    Case("ok-shipped", lambda tmp: ["plan", "long-context-128k", *QUICK, "--format", "json"], "ok"),
    Case("ok-tiny-rate", lambda tmp: ["plan", "--model", "llama-3.1-8b", "--hw", "h100-sxm:8", "--rate", "1e-7",
                                      *QUICK, "--format", "json"], "ok"),
    Case("ok-long-prompt-small-chunks", lambda tmp: ["plan", long_prompt_small_chunks(tmp), *QUICK, "--format", "json"],
         "ok"),
    Case("ok-flags", lambda tmp: ["plan", *QUICK, "--format", "json"], "ok"),
    Case("ok-file-with-flags", lambda tmp: ["plan", one_class(tmp), "--rate", "2", "--ttft", "1.5", "--hw",
                                            "h200-sxm:16", *QUICK, "--format", "json"], "ok"),
]


def test_corpus_is_large_and_named_uniquely():
    assert sum(c.expected == "error" for c in CASES) >= 20
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, tmp_path):
    d = run_case(case, tmp_path, timeout_s=60)
    if d is None:
        return
    assert d["solver_status"] and d["total_usd_per_hour"] > 0 and d["replicas"]


def test_flags_given_with_a_plan_file_replace_its_values(tmp_path):
    d = strict_json(run_cli(["plan", one_class(tmp_path), "--rate", "2", "--ttft", "1.5", "--hw", "h200-sxm:16",
                             *QUICK, "--format", "json"]).out)
    (cls,) = d["config"]["classes"]
    assert (cls["rate"], cls["ttft_s"]) == (2.0, 1.5)
    assert [s["hw"] for s in d["config"]["inventory"]] == ["h200-sxm"] == list(d["devices"])


def test_every_class_with_demand_gets_a_replica(tmp_path):
    """A class of 1e-9 req/s beside a busy one still gets hardware (not a plan that leaves it out)."""
    d = strict_json(run_cli(["plan", str(_plan(tmp_path, {"classes.0.rate": 1e-9})), *QUICK, "--format", "json"]).out)
    served = {r["class"] for r in d["replicas"] if r["count"] >= 1}
    assert served == {c["name"] for c in d["config"]["classes"]}
