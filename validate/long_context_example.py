"""The running example of Fu, "Challenges in Deploying Long-Context Transformers: A Theoretical
Peak Performance Analysis" (arXiv:2405.08944): a 34B model of Yi-34B's shape at 50K context on
A100 80GB NVLink, against 4K context. infercast computes it from the specs and model alone, twice:
under the paper's theoretical-peak assumptions (100% of peak FLOP/s and bandwidth, no overheads,
all HBM usable) and with infercast's default efficiencies.

Run: .venv/bin/python -m validate.long_context_example
"""

from __future__ import annotations

from simulator import whatif
from simulator.calibration import Calibration

PEAK = Calibration.model_validate({
    "device": "theoretical-peak", "calibrated": False,
    "note": "100% of datasheet peak FLOP/s and bandwidth, no overheads, every byte of HBM usable",
    "gemm": {"efficiency": {"bf16": 1.0, "fp16": 1.0}, "overhead": 0},
    "attention": {"efficiency": 1.0, "overhead": 0}, "memory": {"efficiency": 1.0, "overhead": 0},
    "elementwise": {"efficiency": 1.0, "overhead": 0}, "collective": {"efficiency": 1.0, "latency": 0},
    "memory_budget": {"usable_fraction": 1.0},
})
# Figures attributed to the paper by a third-party summary (app.argminai.com/arxiv-dashboard/papers/2405.08944v1);
# the paper's body text was not available to check them against.
SECONDARY = {"prefill_50k_s": 14.1, "prefill_4k_s": 0.89, "decode_50k_s": 9.8, "decode_4k_s": 8.5}
OUTPUT_LEN = 250  # decode figures consistent with 250 generated tokens (68 GB x 250 / 2 TB/s = 8.5 s)


def example(tp: int = 1, calibration: Calibration | None = PEAK) -> dict[str, float]:
    out = {}
    for name, n in (("50k", 50_000), ("4k", 4_000)):
        r = whatif(model="yi-34b", hw="a100-80gb-sxm", tp=tp, input_len=n, output_len=OUTPUT_LEN, dtype="bf16",
                   calibration=calibration, check_memory=False)
        out[f"kv_per_request_{name}_bytes"] = r.kv_cache_bytes * tp
        out[f"max_concurrent_{name}"] = r.max_batch
        out[f"prefill_{name}_s"] = r.ttft_s
        out[f"decode_{name}_s"] = r.tpot_s * (OUTPUT_LEN - 1)
    return out


if __name__ == "__main__":
    rows = {"1x A100, peak": example(1), "1x A100, defaults": example(1, None),
            "4x A100 TP4, peak": example(4), "4x A100 TP4, defaults": example(4, None)}
    keys = list(next(iter(rows.values())))
    print(f"{'':28s}" + "".join(f"{k:>26s}" for k in rows))
    for k in keys:
        vals = "".join(f"{v[k] / 1e9:>26.2f}" if "bytes" in k else f"{v[k]:>26.2f}" for v in rows.values())
        print(f"{k.replace('_bytes', ' (GB)'):28s}{vals}")
    print("secondary-source figures:", SECONDARY)
