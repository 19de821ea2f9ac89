"""Hand-written `simulate` cases. Each bad case is one class of mistake: a shipped scenario with one
key made wrong (length specs that cannot be drawn from, counts over their ceilings, non-finite
rates, keys the rest of the file makes meaningless), a trace with one bad row or a file that is
not a trace, a bad flag, a flag that conflicts with its scenario. Each must be refused in one line
(exit 2) naming the key or flag. Each good case must answer with strict JSON whose numbers are
sane (TTFT > 0, finished + rejected = requests) and whose `config` says what ran."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from simulator.catalog import data_dir
from simulator.limits import MAX_REPLICAS, MAX_REQUESTS, MAX_TOKENS
from tests.fuzz.harness import Case, run_case, run_cli, strict_json

SCENARIOS = data_dir("workloads.scenarios")
SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
FAST = ["--num-requests", "30", "--no-progress"]
DELETE = object()
GENERIC = "arrival_s,input_len,output_len\n"



def _set(data: dict, key: str, value: object) -> None:
    *parents, last = key.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data.setdefault(part, {})
    if value is DELETE:
        del data[last]
    else:
        data[last] = value


def _scenario(tmp: Path, base: str, changes: dict) -> Path:
    data = yaml.safe_load((SCENARIOS / f"{base}.yaml").read_text())
    for key, value in changes.items():
        _set(data, key, value)
    if base == "azure-sample":
        shutil.copy(SCENARIOS / "azure_format_sample.csv", tmp)
    path = tmp / f"{base}-changed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def key(name: str, key_path: str, value: object, base: str = "chat", needle: str | None = None, **more) -> Case:
    """A shipped scenario with `key_path` set to `value` (and `more`, '__' for '.'): refused naming the key."""
    changes = {key_path: value, **{k.replace("__", "."): v for k, v in more.items()}}
    return Case(f"key-{name}", lambda tmp: ["simulate", str(_scenario(tmp, base, changes)), *FAST], "error",
                (f"{base}-changed.yaml", needle or key_path))


def trace(name: str, text: str | bytes, needle: str, suffix: str = ".csv", fmt: str = "generic") -> Case:
    """A trace scenario over a file holding `text`: refused naming the file (and line)."""
    def build(tmp: Path) -> list[str]:
        path = tmp / f"t{suffix}"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["simulate", str(_scenario(tmp, "azure-sample", {"trace": {"path": path.name, "format": fmt}})), *FAST]
    return Case(f"trace-{name}", build, "error", (needle,))


def trace_path(name: str, path: str, needle: str) -> Case:
    return Case(f"trace-{name}", lambda tmp: ["simulate", str(_scenario(tmp, "azure-sample", {"trace.path": path})),
                                              *FAST], "error", (needle,))


def flag(name: str, argv: list[str], needle: str) -> Case:
    """Flags (with a scenario or alone) refused naming `needle`."""
    return Case(f"flag-{name}", lambda tmp: ["simulate", *argv, "--no-progress"], "error", (needle,))


def raw(name: str, content: str | bytes | None, needle: str) -> Case:
    """A scenario file that is not a scenario (None: a directory)."""
    def build(tmp: Path) -> list[str]:
        path = tmp / "s.yaml"
        if content is None:
            path.mkdir()
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return ["simulate", str(path)]
    return Case(f"file-{name}", build, "error", (needle,))


def _dangling(tmp: Path) -> str:
    link = tmp / "dangling.json"
    link.symlink_to(tmp / "nowhere" / "x.json")
    return str(link)


def _yaml(tmp: Path, base: str, old: str, new: str) -> Path:
    """A shipped scenario's text with `old` replaced (YAML 1.2 spellings PyYAML reads as strings)."""
    path = tmp / f"{base}-text.yaml"
    path.write_text((SCENARIOS / f"{base}.yaml").read_text().replace(old, new))
    return path


def _jsonl_trace(tmp: Path, name: str) -> Path:
    """A generic trace of JSON lines in a file called `name` (the format goes by the suffix, in any case)."""
    (tmp / name).write_text('{"arrival_s": 0, "input_len": 100, "output_len": 5}\n'
                            '{"arrival_s": 0.5, "input_len": 200, "output_len": 5}\n')
    return _scenario(tmp, "azure-sample", {"trace": {"path": name, "format": "generic"}})


def ok(name: str, argv: list[str]) -> Case:
    return Case(f"ok-{name}", lambda tmp: ["simulate", *argv, *FAST, "--format", "json"], "ok")


IN = "classes.0.input_len"
CASES = [
    # length specs, checked whole
    key("uniform-reversed", IN, {"uniform": [2000, 100]}), key("uniform-one-bound", IN, {"uniform": [5]}),
    key("uniform-fraction", IN, {"uniform": [1.5, 10]}), key("uniform-zero", IN, {"uniform": [0, 10]}),
    key("lognormal-negative-sigma", IN, {"lognormal": {"mean": 1024, "sigma": -1}}),
    key("lognormal-zero-mean", IN, {"lognormal": {"mean": 0, "sigma": 0.5}}),
    key("lognormal-mean-only", IN, {"lognormal": {"mean": 0}}),
    key("lognormal-huge-sigma", IN, {"lognormal": {"mean": 1024, "sigma": 50}}),
    key("lognormal-inf-mean", IN, {"lognormal": {"mean": float("inf"), "sigma": 0.5}}),
    key("lognormal-nan-sigma", IN, {"lognormal": {"mean": 1024, "sigma": float("nan")}}),
    key("empirical-empty", IN, {"empirical": {"values": []}}),
    key("empirical-weights-short", IN, {"empirical": {"values": [10, 20], "weights": [1]}}),
    key("empirical-weight-negative", IN, {"empirical": {"values": [10, 20], "weights": [1, -1]}}),
    key("empirical-weights-zero", IN, {"empirical": {"values": [10, 20], "weights": [0, 0]}}),
    key("empirical-value-zero", IN, {"empirical": {"values": [0, 500]}}),
    key("length-string", IN, "lots"), key("length-zero", IN, 0), key("length-bool", IN, True),
    key("length-huge", IN, MAX_TOKENS + 1), key("length-two-forms", IN, {"uniform": [1, 2], "lognormal": {}}),
    key("output-negative", "classes.0.output_len", -5),
    key("prefix-longer-than-prompts", "classes.0.prefix_len", 5000),
    key("prefix-negative", "classes.0.prefix_len", -1),
    key("turns-zero", "classes.0.turns", {"uniform": [0, 3]}),
    key("turn-input-empty", "classes.0.turn_input_len", {"empirical": {"values": []}}, classes__0__turns=3),
    key("weight-zero", "classes.0.weight", 0),
    # counts, seeds and rates
    key("seed-negative", "seed", -1), key("seed-huge", "seed", 2**64), key("seed-fraction", "seed", 1.5),
    key("requests-huge", "num_requests", MAX_REQUESTS + 1), key("requests-zero", "num_requests", 0),
    key("rate-inf", "arrival.rate", float("inf")), key("rate-negative", "arrival.rate", -5),
    key("rate-missing", "arrival.rate", DELETE), key("rate-past-the-time-bound", "arrival.rate", 1e-6), key("rate-string", "arrival.rate", "fast"),
    key("cv-on-poisson", "arrival.cv", 2.0), key("process-unknown", "arrival.process", "burst"),
    key("users-on-poisson", "arrival.users", 8),
    key("closed-loop-without-users", "arrival.users", DELETE, base="agentic-multiturn"),
    key("think-time-negative", "arrival.think_time_s", -1, base="agentic-multiturn"),
    key("slo-negative", "slo.ttft_s", -1), key("slo-zero", "slo.tpot_s", 0),
    key("max-time-inf", "max_time_s", float("inf")),
    # the deployment
    key("replicas-huge", "deployment.replicas", MAX_REPLICAS * 10), key("tp-huge", "deployment.tp", 5000),
    key("tp-bool", "deployment.tp", True), key("max-batch-zero", "deployment.max_batch", 0),
    key("batched-tokens-huge", "deployment.max_batched_tokens", 10**9),
    key("block-size-huge", "deployment.block_size", 10**6),
    key("offload-overflow", "deployment.kv_offload", {"tier": "host", "capacity": "1e300 GiB"},
        needle="deployment.kv_offload.capacity"),
    key("offload-tier", "deployment.kv_offload", {"tier": "disk", "capacity": "1 TB"},
        needle="deployment.kv_offload.tier"),
    key("swap-negative", "deployment.swap_space_gib", -1), key("router-unknown", "deployment.router", "random"),
    key("dtype-unknown", "deployment.dtype", "fp12"), key("prefix-caching-string", "deployment.prefix_caching", "maybe"),
    key("disagg-zero-prefill", "deployment.disaggregation.prefill_replicas", 0, base="disaggregated-chat"),
    key("disagg-and-replicas", "deployment.disaggregation", {"prefill_replicas": 1, "decode_replicas": 1},
        needle="deployment.replicas"),
    key("imbalance-over-ep", "deployment.ep_imbalance", 3.0),
    # keys that do not belong
    key("unknown-key", "arival", {"rate": 3}), key("classes-and-trace", "trace", {"path": "x.csv"}, needle="classes"),
    key("no-classes", "classes", DELETE), key("trace-and-arrival", "arrival", {"rate": 3}, base="azure-sample"),
    # traces
    trace_path("a-directory", ".", "a trace must be a file"), trace_path("missing", "nope.csv", "nope.csv"),
    trace_path("a-device", "/dev/zero", "/dev/zero"),
    trace("binary", b"\x00\x01\x02\x03", "t.csv"), trace("no-output-column", "arrival_s,input_len\n0,10\n", "output_len"),
    trace("negative-length", GENERIC + "0,10,5\n1,-3,5\n", "t.csv:3"),
    trace("zero-length", GENERIC + "0,0,5\n", "t.csv:2"), trace("non-numeric", GENERIC + "0,lots,5\n", "t.csv:2"),
    trace("fraction", GENERIC + "0,10.5,5\n", "t.csv:2"), trace("nan-time", GENERIC + "nan,10,5\n", "t.csv:2"),
    trace("negative-time", GENERIC + "-1,10,5\n", "t.csv:2"),
    trace("back-in-time", GENERIC + "1,10,5\n0.5,10,5\n", "t.csv:3"), trace("header-only", GENERIC, "no rows"),
    trace("huge-length", GENERIC + f"0,{MAX_TOKENS + 1},5\n", "t.csv:2"),
    trace("jsonl-not-json", '{"arrival_s": 0,\n', "t.jsonl:1", ".jsonl"),
    trace("jsonl-a-list", "[0, 10, 5]\n", "t.jsonl:1", ".jsonl"),
    trace("jsonl-bool", '{"arrival_s": 0, "input_len": true, "output_len": 5}\n', "t.jsonl:1", ".jsonl"),
    trace("azure-bad-date", "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,10,5\n", "TIMESTAMP", fmt="azure"),
    # scenario files that are not scenarios
    raw("a-directory", None, "s.yaml"), raw("binary", b"\x00\x01name: x", "s.yaml"), raw("a-list", "- 1\n- 2\n", "s.yaml"),
    raw("empty", "", "s.yaml"), raw("bad-yaml", "name: [unclosed\n", "s.yaml"),
    flag("unknown-scenario", ["nope"], "SCENARIO"),
    # flags
    flag("seed-negative", ["--seed", "-1"], "--seed"), flag("rate-inf", ["--rate", "inf"], "--rate"),
    flag("rate-nan", ["--rate", "nan"], "--rate"), flag("rate-huge", ["--rate", "1e300"], "--rate"),
    flag("rate-past-the-time-bound", ["--rate", "1e-9"], "--rate"),
    flag("ttft-slo-negative", ["--ttft-slo", "-1"], "--ttft-slo"), flag("tpot-slo-zero", ["--tpot-slo", "0"], "--tpot-slo"),
    flag("requests-huge", ["--num-requests", "1000000000000"], "--num-requests"),
    flag("replicas-huge", ["--replicas", "100000"], "--replicas"), flag("tp-huge", ["--tp", "5000"], "--tp"),
    flag("pp-zero", ["--pp", "0"], "--pp"), flag("cp-negative", ["--cp", "-1"], "--cp"), flag("ep-zero", ["--ep", "0"], "--ep"),
    flag("max-batch-zero", ["--max-batch", "0"], "--max-batch"),
    flag("batched-tokens-huge", ["--max-batched-tokens", "1000000000"], "--max-batched-tokens"),
    flag("input-len-zero", ["--input-len", "0"], "--input-len"),
    flag("output-len-huge", ["--output-len", str(MAX_TOKENS + 1)], "--output-len"),
    flag("arrival-unknown", ["--arrival", "burst"], "--arrival"),
    flag("cv-zero", ["--arrival", "gamma", "--cv", "0"], "--cv"), flag("cv-inf", ["--arrival", "gamma", "--cv", "inf"], "--cv"),
    flag("offload-overflow", ["--kv-offload", "host:1e300GiB"], "--kv-offload"),
    flag("offload-tier", ["--kv-offload", "disk:1GB"], "--kv-offload"),
    flag("offload-no-capacity", ["--kv-offload", "host:"], "--kv-offload"),
    flag("disagg-zero", ["--disagg", "0:2"], "--disagg"), flag("disagg-one-number", ["--disagg", "1"], "--disagg"),
    flag("disagg-huge", ["--disagg", "99999:1"], "--disagg"), flag("router-unknown", ["--router", "random"], "--router"),
    flag("dtype-unknown", ["--dtype", "fp12"], "--dtype"), flag("cp-kind-unknown", ["--cp-kind", "star"], "--cp-kind"),
    flag("preemption-unknown", ["--preemption", "drop"], "--preemption"),
    # flags that conflict with the scenario (or with each other)
    flag("rate-negative-with-file", ["chat", "--rate", "-5"], "--rate"),
    flag("cv-on-poisson", ["chat", "--cv", "2"], "--cv"), flag("cv-alone", ["--cv", "2"], "--cv"),
    flag("rate-offline", ["--arrival", "offline", "--rate", "3"], "--rate"),
    flag("rate-closed-loop", ["agentic-multiturn", "--rate", "3"], "--rate"),
    flag("arrival-needs-rate", ["agentic-multiturn", "--arrival", "poisson"], "--arrival"),
    flag("lengths-of-two-classes", ["rag-long-document", "--input-len", "100"], "--input-len"),
    flag("prompt-shorter-than-prefix", ["chat", "--input-len", "100"], "--input-len"),
    flag("trace-rate", ["azure-sample", "--rate", "3"], "--rate"), flag("trace-seed", ["azure-sample", "--seed", "1"], "--seed"),
    flag("trace-lengths", ["azure-sample", "--output-len", "10"], "--output-len"),
    flag("trace-arrival", ["azure-sample", "--arrival", "offline"], "--arrival"),
    flag("replicas-of-disaggregated", ["disaggregated-chat", "--replicas", "3"], "--replicas"),
    flag("disagg-and-replicas", ["--disagg", "1:3", "--replicas", "2"], "--replicas"),
    flag("prefill-tp-alone", ["--prefill-tp", "2"], "--prefill-tp"),
    # found by an adversarial tester: each refused in one line, naming the key or flag the user set
    key("rate-400-digits", "arrival.rate", int("9" * 400)), key("cv-400-digits", "arrival.cv", -int("9" * 400)),
    key("batched-tokens-one", "deployment.max_batched_tokens", 1),
    flag("batched-tokens-one-long-prompts", ["--input-len", "400000", "--output-len", "10", "--num-requests", "20",
                                             "--max-batched-tokens", "1"], "--max-batched-tokens"),
    flag("prefill-steps-past-the-bound", ["--input-len", str(MAX_TOKENS), "--num-requests", "1000"],
         "max_batched_tokens"),
    key("link-one-byte-per-s", "deployment.disaggregation.link_bandwidth", "1 B/s", base="disaggregated-chat"),
    key("link-bare-number", "deployment.disaggregation.link_bandwidth", 5, base="disaggregated-chat"),
    key("no-link-from-the-file", "deployment.tp", 2, deployment__hw="m2-ultra", needle="needs a link between devices"),
    flag("no-link-tp", ["--hw", "m2-ultra", "--tp", "2", "--num-requests", "3"], "--tp: needs a link"),
    key("tp-from-the-file", "deployment.tp", 3), key("pp-past-the-layers", "deployment.pp", 64),
    key("ep-of-a-dense-model", "deployment.ep", 2), key("model-unknown", "deployment.model", "nope"),
    key("decode-hw-unknown", "deployment.disaggregation.decode_hw", "nonexist", base="disaggregated-chat"),
    key("does-not-fit", "deployment.model", "llama-3.1-405b", needle="deployment.tp"),
    flag("prefill-tp-names-its-flag", ["--disagg", "1:1", "--prefill-tp", "3"], "--prefill-tp"),
    flag("rate-1e-300", ["--rate", "1e-300", "--num-requests", "30"], "over more than 30 years"),
    key("max-time-tiny", "max_time_s", 0.001, needle="key 'max_time_s'"),
    flag("offload-one-byte", ["--kv-offload", "host:1"], "--kv-offload"),
    key("offload-16-bytes", "deployment.kv_offload", {"tier": "host", "capacity": 16},
        needle="deployment.kv_offload.capacity"),
    flag("offload-past-the-tier", ["--kv-offload", "nvme:1EiB"], "--kv-offload"),
    flag("offload-tier-missing", ["--hw", "a10g", "--kv-offload", "nvme:1TB"], "--kv-offload"),
    key("swap-past-the-host", "deployment.swap_space_gib", 1e9, deployment__preemption="swap"),
    key("swap-with-recompute", "deployment.swap_space_gib", 8),
    key("class-names-twice", "classes", [{"name": "chat", "input_len": 10, "output_len": 10}] * 2,
        needle="classes.1.name"),
    key("turn-input-on-one-turn", "classes.0.turn_input_len", 100),
    key("ulysses-with-cp-one", "deployment.cp_kind", "ulysses", deployment__cp=1),
    flag("disagg-arabic-indic-digits", ["--disagg", "\u0661:\u0662"], "--disagg"),
    trace("duplicate-column", "arrival_s,input_len,output_len,input_len\n0,100,10,5\n", "t.csv:1"),
    trace("underscore-digits", GENERIC + "0,1_000,5\n", "t.csv:2"),
    trace("arabic-indic-digits", GENERIC + "0,\u0661\u0660\u0660,5\n", "t.csv:2"),
    trace("jsonl-duplicate-key", '{"arrival_s": 0, "input_len": 5, "output_len": 5, "input_len": 100}\n', "t.jsonl:1",
          ".jsonl"),
    trace("azure-mixed-zones", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-03-12 01:59:00+00:00,10,5\n"
                               "2023-03-12 03:00:00,10,5\n", "t.csv:3", fmt="azure"),
    flag("chrome-trace-empty", ["--chrome-trace", ""], "--chrome-trace: needs the path"),
    Case("flag-chrome-trace-dangling-link", lambda tmp: ["simulate", "--chrome-trace", _dangling(tmp), "--no-progress"],
         "error", ("--chrome-trace", "already exists")),
    Case("flag-chrome-trace-missing-folder", lambda tmp: ["simulate", "--chrome-trace", str(tmp / "nodir" / "x.json"),
                                                          "--no-progress"], "error", ("--chrome-trace", "nodir")),
    Case("ok-rate-written-1e1", lambda tmp: ["simulate", str(_yaml(tmp, "chat", "rate: 20", "rate: 1e1")), *FAST,
                                            "--format", "json"], "ok"),
    # round 2 of the adversarial findings
    Case("flag-max-batch-past-memory", lambda tmp: ["simulate", "--max-batch", "200000", *FAST], "error",
         ("--max-batch:", "max_batch up to 117,748")),
    Case("flag-max-batched-tokens-past-memory", lambda tmp: ["simulate", "--max-batched-tokens", "2000000", *FAST],
         "error", ("--max-batched-tokens:", "max_batched_tokens up to")),
    key("disagg-prefill-on-linkless-cpu", "deployment.disaggregation",
        {"prefill_replicas": 1, "decode_replicas": 1, "prefill_hw": "epyc-9654"},
        needle="deployment.disaggregation.prefill_hw", deployment__replicas=DELETE),
    flag("disagg-on-linkless-cpu", ["--hw", "epyc-9654", "--disagg", "1:1", "--num-requests", "3"],
         "--disagg: the KV handover"),
    trace("row-past-the-time-bound", GENERIC + "0,100,10\n1e300,100,10\n", "t.csv:3: the row arrives"),
    trace("azure-rows-millennia-apart", "TIMESTAMP,ContextTokens,GeneratedTokens\n0001-01-01 00:00:00,10,5\n"
                                        "9999-12-31 00:00:00,10,5\n", "past the run's time bound", fmt="azure"),
    trace("csv-row-longer-than-header", GENERIC + "0,100,10,99\n", "t.csv:2: malformed trace row: 4 cells"),
    trace("suffix-not-a-trace-format", GENERIC + "0,100,10\n", "must end in .csv", suffix=".txt"),
    flag("chrome-trace-stdout", ["--chrome-trace", "-"], "'-' (stdout) is not supported"),
    flag("chrome-trace-into-the-package", ["--chrome-trace", str(SCENARIOS / "x.json")], "package folder"),
    Case("flag-chrome-trace-trailing-slash", lambda tmp: ["simulate", "--chrome-trace", f"{tmp}/newdir/",
                                                          "--no-progress"], "error", ("--chrome-trace", "folder")),
    flag("cp-past-the-prompt", ["--cp", "8", "--input-len", "4"], "--cp: context parallelism"),
    flag("ulysses-with-cp-one", ["--cp-kind", "ulysses"], "--cp-kind"),
    Case("flag-rate-slower-than-the-bound", lambda tmp: ["simulate", "--rate", "1e-6", *FAST], "error",
         ("--rate", "one request every")),
    Case("flag-rate-sub-denormal", lambda tmp: ["simulate", "--num-requests", "3", "--rate", "1e-320",
                                                "--no-progress"], "error",
         ("--rate", "less than one request every 30 years", "arrive over more than 30 years")),
    Case("flag-ttft-slo-under-a-microsecond", lambda tmp: ["simulate", "--ttft-slo", "1e-300", *FAST], "error",
         ("--ttft-slo", "at least 1 us")),
    Case("flag-tpot-slo-under-a-microsecond", lambda tmp: ["simulate", "--tpot-slo", "1e-7", *FAST], "error",
         ("--tpot-slo", "at least 1 us")),
    key("slo-under-a-microsecond", "slo.ttft_s", 1e-9),
    Case("flag-disaggregated-pools-do-not-fit", lambda tmp: ["simulate", "disaggregated-chat", "--hw", "a10g", *FAST],
         "error", ("--hw", "fits from --prefill-tp 8", "decode pool", "--decode-tp 8")),
    ok("moe-prompt-past-the-step-budget", ["--model", "mixtral-8x7b", "--tp", "2", "--input-len", "8193",
                                           "--output-len", "4", "--arrival", "offline"]),
    ok("moe-small-chunks", ["--model", "mixtral-8x7b", "--tp", "2", "--input-len", "300", "--output-len", "4",
                            "--max-batched-tokens", "64"]),
    Case("ok-trace-suffix-upper-case-jsonl", lambda tmp: ["simulate", str(_jsonl_trace(tmp, "t.JSONL")),
                                                          "--no-progress", "--format", "json"], "ok"),
    Case("ok-trace-suffix-json", lambda tmp: ["simulate", str(_jsonl_trace(tmp, "t.json")), "--no-progress",
                                              "--format", "json"], "ok"),
    # good runs: every shipped scenario, and flags that override one
    *(ok(f"shipped-{name}", [name]) for name in SHIPPED),
    ok("flags", []), ok("offline", ["--arrival", "offline"]), ok("gamma", ["--arrival", "gamma", "--cv", "3"]),
    ok("disaggregated", ["--disagg", "1:2", "--prefill-tp", "2"]),
    ok("offload-swap", ["--kv-offload", "host:32GiB", "--preemption", "swap"]),
    ok("chat-overrides", ["chat", "--rate", "5", "--seed", "3", "--input-len", "300", "--ttft-slo", "0.5"]),
    ok("closed-loop-to-poisson", ["agentic-multiturn", "--arrival", "poisson", "--rate", "0.5"]),
    ok("disaggregated-pools", ["disaggregated-chat", "--disagg", "2:2", "--decode-tp", "8"]),
]


def test_corpus_is_large_and_named_uniquely():
    assert sum(c.expected == "error" for c in CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, tmp_path):
    d = run_case(case, tmp_path, timeout_s=30)
    if d is None:
        return
    assert d["finished"] + d["rejected"] == d["requests"] > 0
    assert d["ttft_p50_s"] > 0 and d["ttft_p99_s"] >= d["ttft_p50_s"]
    config = d["config"]
    assert config["infercast_version"] and config["pools"] and config["devices"] >= config["replicas"] >= 1
    assert config["requests"] == (30 if config["arrival"]["process"] != "trace" else d["requests"])


def test_flags_given_with_a_scenario_replace_its_values():
    d = strict_json(run_cli(["simulate", "chat", *FAST, "--rate", "5", "--seed", "3", "--input-len", "300",
                             "--ttft-slo", "0.5", "--tp", "2", "--format", "json"]).out)
    c = d["config"]
    assert (c["arrival"]["rate"], c["seed"], c["slo"]["ttft_s"], c["pools"][0]["tp"]) == (5.0, 3, 0.5, 2)
    assert c["replicas"] == 2 and d["requests"] == 30  # the file's replicas stay


def test_the_same_seed_gives_byte_identical_json():
    argv = ["simulate", "chat", *FAST, "--format", "json"]
    first, second = run_cli(argv), run_cli(argv)
    assert first.kind == "ok" and first.out == second.out
    assert run_cli([*argv, "--seed", "1"]).out != first.out


def test_num_requests_replays_the_first_rows_of_a_trace():
    d = strict_json(run_cli(["simulate", "azure-sample", *FAST, "--format", "json"]).out)
    assert d["requests"] == d["config"]["requests"] == 30  # the trace has 200 rows
