"""The CLI: answers, stable JSON keys, and one-line errors with exit code 2 for bad input."""

import csv
import io
import json
import subprocess
import sys

import pytest

from simulator.cli import run


def call(capsys, *argv):
    code = run(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_default_whatif_table(capsys):
    code, out, _ = call(capsys, "whatif")
    assert code == 0
    assert "llama-3.1-8b" in out and "TTFT" in out and "TPOT" in out and "$/Mtoken output" in out


def test_json_keys_are_stable(capsys):
    code, out, _ = call(capsys, "whatif", "--format", "json", "--batch", "2", "--input-len", "1024", "--output-len", "64")
    d = json.loads(out)
    for k in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s", "weights_bytes", "kv_cache_bytes", "max_batch",
              "bound_prefill", "bound_decode", "usd_per_mtok_output", "calibrated"):
        assert k in d
    assert d["batch"] == 2 and d["calibrated"] is False


def test_breakdown_csv_has_one_row_per_op(capsys):
    code, out, _ = call(capsys, "whatif", "--format", "csv", "--breakdown", "--input-len", "512", "--output-len", "8")
    lines = out.strip().splitlines()
    assert lines[0].startswith("phase,op,kind,count")
    assert any(line.startswith("prefill,attention,") for line in lines)
    assert any(line.startswith("decode,attention,") for line in lines)


def test_unknown_model_suggests_nearest(capsys):
    code, _, err = call(capsys, "whatif", "--model", "llama3.1-8b")
    assert_one_line_error(code, err, "--model", "llama3.1-8b", "llama-3.1-8b")


def test_unknown_hardware_suggests_nearest(capsys):
    code, _, err = call(capsys, "whatif", "--hw", "h200")
    assert_one_line_error(code, err, "--hw", "h200-sxm")


@pytest.mark.parametrize("flag", ["--input-len", "--output-len", "--batch"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_non_positive_lengths(capsys, flag, value):
    code, _, err = call(capsys, "whatif", flag, value)
    assert_one_line_error(code, err, flag)


def test_tp_that_does_not_split_the_model(capsys):
    code, _, err = call(capsys, "whatif", "--model", "llama-2-7b", "--tp", "3")
    assert_one_line_error(code, err, "--tp 3", "allowed TP degrees: 1, 2, 4")


def test_unknown_dtype(capsys):
    code, _, err = call(capsys, "whatif", "--dtype", "fp12")
    assert_one_line_error(code, err, "--dtype", "fp8")


def test_malformed_yaml_names_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nname: [unclosed\nvendor: x\n")
    code, _, err = call(capsys, "whatif", "--hw", str(bad))
    assert_one_line_error(code, err, "bad.yaml", "line")


def test_unknown_key_names_its_path(capsys, tmp_path, toy_hw_path):
    from pathlib import Path

    import yaml

    # Not `from conftest import TOY_HW`: conftests outside packages share the module name
    # "conftest", so the last one loaded (e.g. tests/kernels/conftest.py) would answer.
    spec = {**yaml.safe_load(Path(toy_hw_path).read_text()), "memory": {"device": {"capacity": "10 GB", "bandwith": "1 TB/s", "source": "hand"}}}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, _, err = call(capsys, "whatif", "--hw", str(path))
    assert_one_line_error(code, err, "typo.yaml", "memory.device.bandwith", "bandwidth")


def test_unknown_model_key(capsys, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("id: m\nname: m\nhidden_size: 64\nnum_layers: 2\nnum_heads: 4\nnum_kv_heads: 4\n"
                    "intermediate_size: 128\nvocab_size: 100\nnum_experts: 8\n")
    code, _, err = call(capsys, "whatif", "--model", str(path), "--input-len", "16", "--output-len", "4")
    assert_one_line_error(code, err, "m.yaml", "num_experts")


def test_bad_flag_value_is_one_line(capsys):
    code, _, err = call(capsys, "whatif", "--tp", "two")
    assert_one_line_error(code, err, "--tp")


def test_does_not_fit_message(capsys):
    code, out, _ = call(capsys, "whatif", "--model", "llama-3.1-405b", "--input-len", "1024", "--output-len", "8")
    assert code == 0 and "does not fit: needs" in out


def test_list_commands(capsys):
    code, out, _ = call(capsys, "list", "models")
    assert code == 0 and "deepseek-v3" in out and "MLA" in out
    code, out, _ = call(capsys, "list", "hw")
    assert code == 0 and "h200-sxm" in out and "local" in out


def test_console_script_exit_code_and_no_traceback():
    p = subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()", "whatif", "--model", "nope"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1


def test_numbers_in_messages_are_human_formatted():
    from simulator.human import count, rate, seconds, size

    assert size(212.4 * 2**30) == "212.4 GiB" and size(1.5 * 2**40) == "1.5 TiB" and size(512) == "512 B"
    assert size(2.17e34) == "more than 1 EiB" and size(float("nan")) == "not a number"
    assert seconds(0.0123) == "12.3 ms" and seconds(850e-6) == "850 us" and seconds(284) == "4.7 min"
    assert seconds(2 * 3600) == "2.0 h" and seconds(12 * 86400) == "12.0 days" and seconds(float("inf")) == "infinite"
    assert count(2_000_000) == "2,000,000" and count(1e300) == "more than 1,000,000,000,000,000"
    assert rate(0.00646, "req/s") == "0.00646 req/s" and rate(40597.3, "tokens/s") == "40,597 tokens/s"


def test_a_huge_request_is_answered_in_human_numbers(capsys):
    code, out, _ = call(capsys, "whatif", "--batch", "1000000", "--input-len", "100000000", "--output-len", "1000",
                        "--format", "json")
    d = json.loads(out, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert code == 0 and d["fits"] is False and "more than 1 EiB" in d["message"] and "e+" not in d["message"]
    assert d["advice"]["fits_with"]["needed_bytes_per_device"] <= d["memory_capacity_bytes"]


def test_whatif_title_names_the_layout_as_the_json_does(capsys):
    argv = ("whatif", "--model", "llama-3.1-70b", "--hw", "h100-sxm", "--tp", "4", "--cp", "2",
            "--input-len", "512", "--output-len", "8")
    code, out, _ = call(capsys, *argv)
    _, js, _ = call(capsys, *argv, "--format", "json")
    name = json.loads(js)["config"]["layout"]["name"]
    assert code == 0 and name == "TP4 CP2" and f"8x h100-sxm ({name})" in out


def test_tiny_and_huge_prices_are_not_shown_as_zero_or_forty_digits():
    from simulator.whatif_output import _usd

    assert _usd(3.5) == "$3.50" and _usd(0.0244) == "$0.0244" and _usd(None) == "-"
    tiny = _usd(1.5e-9)
    assert tiny.startswith("$") and tiny.strip("$0.") != "" and len(tiny) <= 16, tiny  # not "$0.0000"
    assert len(_usd(1e40)) <= 40, _usd(1e40)


def test_list_tables_use_thousands_separators_and_full_names(capsys):
    code, out, _ = call(capsys, "list", "models")
    assert code == 0 and "7,168" in out and "163,840" in out  # deepseek-v3's hidden size and context
    code, out, _ = call(capsys, "list", "hw")
    assert code == 0 and "…" not in out and "figures)" in out  # a10g's name, wrapped rather than cut
    assert "624.0 TF" in out  # the 8-bit column carries the unit the 16-bit one does


@pytest.mark.parametrize("argv", [
    ["simulate", "--no-prefix-caching", "--prefix-caching", "--num-requests", "2"],
    ["plan", "--disagg", "--no-disagg", "--rounds", "0"],
    ["whatif", "--tp", "1", "--tp=2"],
    ["validate", "--summary", "--points"],  # an on/off pair not spelled --no-
])
def test_an_option_given_twice_or_against_its_negation_is_refused(capsys, argv):
    code, _, err = call(capsys, *argv)
    assert_one_line_error(code, err)
    assert "given twice" in err or "contradicts" in err


def test_a_non_fit_breakdown_in_csv_is_its_summary_row(capsys):
    """No ops to break down: the CSV says fits False and why, not an empty table."""
    argv = ["whatif", "--model", "llama-3.1-70b", "--hw", "h100-sxm", "--tp", "4", "--batch", "8", "--input-len",
            "130048", "--output-len", "1024", "--format", "csv", "--breakdown"]
    code, out, _ = call(capsys, *argv)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 1
    assert rows[0]["fits"] == "False" and rows[0]["message"].startswith("does not fit") and "fits with" in rows[0]["message"]
