"""The shipped hardware specs (hwspecs/*.yaml): they load, carry what the simulator needs, agree
with the reference datasheet table, and bad files fail with a one-line error naming file and key."""

import copy
import csv
import re
from pathlib import Path

import pytest
import yaml

from simulator.catalog import hardware_ids, load_hardware
from simulator.errors import InfercastError

CSV_PATH = Path(__file__).resolve().parents[1] / "validate" / "data" / "hw_specs_public.csv"

SHIPPED = [
    "a100-40gb-sxm", "a100-80gb-sxm", "a100-80gb-pcie", "h100-sxm", "h100-pcie", "h200-sxm", "b200",
    "l40s", "rtx-4090", "a10g", "t4", "mi250x", "mi300x", "mi325x", "gaudi2", "gaudi3",
    "tpu-v5e", "tpu-v5p", "xeon-8480p", "epyc-9654", "m2-ultra", "snapdragon-8gen3",
]

# The vendor publishes no power figure; these files leave `power` out rather than guess.
NO_PUBLIC_TDP = {"tpu-v5e", "tpu-v5p", "snapdragon-8gen3"}

# Spec ID -> row of validate/data/hw_specs_public.csv.
CSV_ROW = {
    "a100-40gb-sxm": "a100_40g_sxm", "a100-80gb-sxm": "a100_80g_sxm", "a100-80gb-pcie": "a100_80g_pcie",
    "h100-sxm": "h100_sxm", "h100-pcie": "h100_pcie", "h200-sxm": "h200_sxm", "b200": "b200",
    "l40s": "l40s", "rtx-4090": "rtx4090", "a10g": "a10g", "t4": "t4",
    "mi250x": "mi250x", "mi300x": "mi300x", "mi325x": "mi325x",
    "gaudi2": "gaudi2", "gaudi3": "gaudi3", "tpu-v5e": "tpu_v5e", "tpu-v5p": "tpu_v5p",
    "xeon-8480p": "xeon_8480p", "epyc-9654": "epyc_9654", "m2-ultra": "m2_ultra",
    "snapdragon-8gen3": "sd8gen3_hexagon",
}
GPUS = [i for i in CSV_ROW if load_hardware(i).kind == "gpu"]

T, G = 1e12, 1e9


def csv_rows() -> dict[str, dict[str, str]]:
    with CSV_PATH.open(newline="") as f:
        return {row["hw_id"]: row for row in csv.DictReader(f)}


def leading_number(cell: str) -> float | None:
    """The number a cell starts with ('165.2 (FP32 acc) / 330.3' -> 165.2, '~7.2 AVX' -> 7.2)."""
    m = re.match(r"\s*~?\s*(\d+(?:\.\d+)?)", cell or "")
    return float(m.group(1)) if m else None


def test_every_listed_id_ships():
    assert set(SHIPPED) <= set(hardware_ids())


@pytest.mark.parametrize("hw_id", SHIPPED)
def test_loads_with_memory_peak_and_power(hw_id):
    spec = load_hardware(hw_id)
    assert spec.id == hw_id
    assert spec.memory.device.capacity > 0 and spec.memory.device.bandwidth > 0
    peaks = spec.engine.peak
    assert any(peaks.get(d, 0) > 0 for d in ("bf16", "fp16", "int8")), peaks
    if hw_id in NO_PUBLIC_TDP:
        assert spec.power is None, f"{hw_id} now has a power block: drop it from NO_PUBLIC_TDP"
    else:
        assert spec.power is not None and spec.power.tdp > 0


@pytest.mark.parametrize("hw_id", SHIPPED)
def test_every_source_reference_resolves_and_every_source_is_used(hw_id):
    spec = load_hardware(hw_id)
    used = {key for _, block in spec._sourced_blocks() for key in block.source_keys()}
    assert used <= set(spec.sources)
    assert set(spec.sources) <= used, f"unused sources: {set(spec.sources) - used}"


@pytest.mark.parametrize("hw_id", GPUS)
def test_gpu_bf16_peak_matches_csv(hw_id):
    row = csv_rows()[CSV_ROW[hw_id]]
    expected = leading_number(row["bf16_tflops_dense"])
    peaks = load_hardware(hw_id).engine.peak
    if expected is None:  # e.g. T4: no BF16 on the device
        assert "bf16" not in peaks
    else:
        assert peaks["bf16"] == pytest.approx(expected * T)


@pytest.mark.parametrize("hw_id", list(CSV_ROW))
def test_memory_bandwidth_and_tdp_match_csv(hw_id):
    row = csv_rows()[CSV_ROW[hw_id]]
    spec = load_hardware(hw_id)
    assert spec.memory.device.bandwidth == pytest.approx(leading_number(row["mem_bw_GBps"]) * G)
    if (tdp := leading_number(row["tdp_w"])) is not None:
        assert spec.power.tdp == pytest.approx(tdp)


@pytest.fixture
def toy(toy_hw_path):
    return yaml.safe_load(Path(toy_hw_path).read_text())


def write(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def test_dangling_source_key_fails_naming_the_key(tmp_path, toy):
    bad = copy.deepcopy(toy)
    bad["engines"]["gpu"]["source"] = "no_such_source"
    path = write(tmp_path, "dangling.yaml", bad)
    with pytest.raises(InfercastError) as err:
        load_hardware(path)
    assert "no_such_source" in str(err.value)
    assert "dangling.yaml" in str(err.value)


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path, toy):
    bad = copy.deepcopy(toy)
    device = bad["memory"]["device"]
    device["bandwith"] = device.pop("bandwidth")
    path = write(tmp_path, "typo.yaml", bad)
    with pytest.raises(InfercastError) as err:
        load_hardware(path)
    msg = str(err.value)
    assert "typo.yaml" in msg and "memory.device.bandwith" in msg
    assert "allowed" in msg and "bandwidth" in msg


def test_broken_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "broken.yaml", "id: x\nengines:\n  gpu: {peak: [1, 2\nmemory: 3\n")
    with pytest.raises(InfercastError) as err:
        load_hardware(path)
    assert "broken.yaml" in str(err.value) and "line" in str(err.value)


@pytest.mark.parametrize("block,key,value,allowed", [
    (("memory", "device"), "capacity", "1e300 GiB", "at most 1 EiB"),  # once a traceback
    (("engines", "gpu", "peak"), "bf16", float("inf"), "finite"),  # once accepted as infinite FLOP/s
    (("memory", "device"), "bandwidth", 0, "> 0"),
    (("engines", "gpu"), "compute_units", True, "whole number"),  # once read as 1
    (("price",), "cloud_usd_per_hour", float("inf"), "finite"),
])
def test_unphysical_number_fails_naming_key_and_value(tmp_path, toy, block, key, value, allowed):
    bad = copy.deepcopy(toy)
    node = bad
    for part in block:
        node = node[part]
    node[key] = value
    path = write(tmp_path, f"{key}.yaml", bad)
    with pytest.raises(InfercastError) as err:
        load_hardware(path)
    msg = str(err.value)
    assert f"{key}.yaml" in msg and ".".join((*block, key)) in msg and allowed in msg and "(got " in msg


@pytest.mark.parametrize("content,got", [
    ("- a\n- b\n", "a list"), ("", "an empty file"), ("just words\n", "a string"),
])
def test_top_level_must_be_a_mapping(tmp_path, content, got):
    with pytest.raises(InfercastError, match=f"mapping of keys at the top level \\(got {got}\\)"):
        load_hardware(write(tmp_path, "top.yaml", content))


def test_special_files_are_refused_without_reading_them(tmp_path):
    import os

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # opening it would block until a writer came
    for path, got in ((str(fifo), "fifo"), ("/dev/zero", "device"), (str(tmp_path), "directory")):
        with pytest.raises(InfercastError, match=got):
            load_hardware(path)


def test_a_calibration_profile_is_looked_up_by_a_plain_id_only(tmp_path, monkeypatch):
    """An ID is never a path to another file (B1): the lookup refuses anything but a plain name."""
    from simulator.calibration import profile_path

    (tmp_path / "calibration" / "x" / "calibration").mkdir(parents=True)
    (tmp_path / "calibration" / "evil.yaml").write_text("hello: world\n")  # home/calibration/../../evil.yaml
    monkeypatch.setenv("INFERCAST_HOME", str(tmp_path / "calibration" / "x"))
    assert profile_path("../../evil") is None and profile_path(str(tmp_path / "calibration" / "evil")) is None
    assert profile_path("defaults") is not None  # a plain name still finds a profile
