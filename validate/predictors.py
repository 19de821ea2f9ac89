"""One predictor per group of published points: each turns a CSV row into infercast's prediction
with the shipped specs and profiles only (nothing is fitted to the rows)."""

from __future__ import annotations

import re

from simulator.closed_form import whatif
from simulator.collectives import TRAFFIC, collective_seconds
from simulator.ops import Op
from simulator.precision import Precision
from simulator.roofline import op_time
from simulator.serving.kv_transfer import host_bandwidth
from simulator.step import device

HW = {"h100_sxm": "h100-sxm", "h200_sxm": "h200-sxm", "l40s": "l40s", "a100_80g_sxm": "a100-80gb-sxm",
      "a100_80g_pcie": "a100-80gb-pcie", "b200": "b200", "mi300x": "mi300x", "mi325x": "mi325x",
      "gaudi2": "gaudi2", "gaudi3": "gaudi3"}
MODELS = {"GPT-J-6B": "gpt-j-6b", "Llama-2-7B": "llama-2-7b", "Llama-2-70B": "llama-2-70b"}
DTYPE = {"FP8": "fp8", "FP16": "fp16", "BF16": "bf16"}


def trtllm_args(row: dict) -> dict:
    """whatif keyword arguments of a TensorRT-LLM static-batch row: model, hw, tp (= the row's
    devices), batch, input_len, output_len, dtype and kv_dtype (= the weight precision)."""
    dtype = DTYPE[row["weight_precision"]]
    return {"model": MODELS[row["model"]], "hw": HW[row["hw_id"]], "tp": int(row["num_devices"]),
            "batch": int(row["batch_or_concurrency"]), "input_len": int(row["input_len"]),
            "output_len": int(row["output_len"]), "dtype": dtype, "kv_dtype": dtype}


def per_gpu_divisor(row: dict) -> int:
    """What a whole-system output throughput is divided by to match the row's scope: the device
    count for per-GPU rows and for the A100 TP>1 rows, whose scope the source leaves ambiguous
    (read as per GPU like the H100 table of the same document); 1 for system rows."""
    return int(row["num_devices"]) if row["scope"].startswith(("per GPU", "AMBIGUOUS")) else 1


def trtllm_label(row: dict, model: str, hw: str) -> str:
    """One-line configuration of a TensorRT-LLM row, with infercast's resolved model and hw ids."""
    a = trtllm_args(row)
    return f"{hw} TP{a['tp']} {model} {a['dtype']} b{a['batch']} {a['input_len']}/{a['output_len']}"


def trtllm(row: dict) -> tuple[float, str, bool] | None:
    """TensorRT-LLM static batch: batch-1 first-token latency (ms) or output tokens/s (per GPU where
    the table says so, see per_gpu_divisor). Memory fit is reported, not enforced."""
    r = whatif(**trtllm_args(row), check_memory=False)
    config = trtllm_label(row, r.model, r.hw)
    if row["metric"] == "ttft":
        return r.ttft_s * 1e3, config, r.fits
    return r.throughput_tok_s / per_gpu_divisor(row), config, r.fits


GEMM = re.compile(r"GEMM \[(\d+)x(\d+)\]x\[(\d+)x(\d+)\]")


def kernel_gemm(row: dict) -> tuple[float, str, bool] | None:
    """An isolated fp16 GEMM [M x K] x [K x N] timed in ms. The max-achievable-matmul rows are
    inputs of the model (hwspecs measured_matmul), so they are not predicted."""
    m = GEMM.search(row["metric"])
    if not m:
        return None
    M, K, _, N = map(int, m.groups())
    dev = device(HW[row["hw_id"]])
    prec = Precision("fp16", "fp16", "fp16")
    a = prec.act_bytes
    op = Op("gemm", "gemm", 1, 2.0 * M * N * K, K * N * prec.weight_bytes + (M * K + M * N) * a, "fp16", (M, N, K))
    return float(op_time(op, dev)) * 1e3, f"{dev.spec.id} GEMM {M}x{K}x{N} fp16", True


BUSBW_PAYLOAD = 4 * 2**30  # bytes: the busbw rows' stated payload (4 GiB); assumed where not stated


def interconnect(row: dict) -> tuple[float, str, bool] | None:
    """NCCL all-reduce times (ms, payload in the point id), all-reduce bus bandwidth (GB/s: 2 (n-1)/n
    x payload / time) and copies over one link (GB/s: NVLink peer copy as a send/recv; host-to-device
    over PCIe at serving.kv_transfer's rate, whose efficiency was taken from that very row)."""
    n, metric = int(row["num_devices"]), row["metric"]
    dev = device(HW[row["hw_id"]])
    cal, spec = dev.cal.collective, dev.spec
    if metric == "all_reduce time":
        size = int(row["point_id"].rsplit("_", 1)[1])
        t = collective_seconds("all_reduce", n, size, spec, cal)
        return t * 1e3, f"{spec.id} all-reduce {size:,} B x{n}", True
    if "all_reduce busbw" in metric:
        t = collective_seconds("all_reduce", n, BUSBW_PAYLOAD, spec, cal)
        note = "" if "4 GiB" in metric else ", payload assumed"
        return TRAFFIC["all_reduce"](n) * BUSBW_PAYLOAD / t / 1e9, f"{spec.id} all-reduce busbw x{n} (4 GiB{note})", True
    if metric == "device_to_device_memcpy_write_ce":
        t = collective_seconds("send_recv", 2, BUSBW_PAYLOAD, spec, cal)
        return BUSBW_PAYLOAD / t / 1e9, f"{spec.id} peer copy over {spec.links.scaleup.name}", True
    if metric == "host_to_device_memcpy_ce":
        return host_bandwidth(spec) / 1e9, f"{spec.id} host-to-device over PCIe (in-sample)", True
    return None


PREDICTORS = {"trtllm_v0.6.1_static": trtllm, "kernel_gemm": kernel_gemm, "interconnect": interconnect}
