"""The `local` device: this machine's CPU, detected (cores, ISA features, memory size).

Peaks are derived from the core count, clock and FLOP/cycle of the widest vector or matrix unit
the CPU reports; memory bandwidth is not detectable without measuring and is an assumption until
a calibration profile (hwspecs/calibration/local.yaml, written by `infercast calibrate`) exists.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from .hwspec import HardwareSpec

# FP32 FLOP per cycle per core: 2 FMA pipes x lanes x 2 (Intel/AMD optimisation manuals).
FP32_FLOP_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("avx", 16), ("sse2", 8))
# BF16 via AMX tiles: 1024 FLOP/cycle/core (Intel Sapphire Rapids); AVX512-BF16 dot products: 2x fp32.
ASSUMED_BW_PER_CORE = 8e9  # bytes/s, typical DDR share per core on servers; an assumption
ASSUMED_BW_MAX = 200e9


def _cpuinfo() -> tuple[set[str], float | None, str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split()) if "flags" in text else set()
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
    bogo = re.search(r"^bogomips\s*:\s*([\d.]+)", text, re.M | re.I)
    ghz = float(mhz.group(1)) / 1e3 if mhz else (float(bogo.group(1)) / 2e3 if bogo else None)
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    return flags, ghz, name.group(1).strip() if name else platform.processor() or platform.machine()


def _memory_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def detect_local(measured=None, use_profile: bool = True) -> HardwareSpec:
    """This machine's spec; `measured` (calibration.MeasuredPeaks) replaces the assumed bandwidth and
    raises the derived peaks, by default the ones in this machine's calibration profile."""
    flags, ghz, name = _cpuinfo()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    ghz = ghz or 2.0
    per_cycle = next((f for flag, f in FP32_FLOP_PER_CYCLE if flag in flags), 8)
    fp32 = cores * ghz * 1e9 * per_cycle
    if "amx_bf16" in flags:
        half = cores * ghz * 1e9 * 1024
    elif "avx512_bf16" in flags:
        half = 2 * fp32
    else:
        half = fp32  # no 16-bit matrix unit: 16-bit GEMMs run at the fp32 rate at best
    isa = sorted(flags & {"avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "avx2", "fma"})
    bw = min(cores * ASSUMED_BW_PER_CORE, ASSUMED_BW_MAX)
    peaks, bw_source = {"fp32": fp32, "bf16": half, "fp16": half}, ["detected", "assumed"]
    measured = measured if measured is not None or not use_profile else _measured()
    if measured is not None:  # `infercast calibrate` measured this machine: its rates replace the guesses
        if measured.memory_bandwidth:
            bw, bw_source = measured.memory_bandwidth, ["detected", "measured"]
        for d, v in measured.peak.items():
            peaks[d] = max(peaks.get(d, 0.0), v)
    return HardwareSpec.model_validate({
        "id": "local", "name": f"{name} ({cores} cores)", "vendor": platform.system() or "unknown", "kind": "cpu",
        "sources": {
            "detected": {"note": f"detected on this machine: {cores} cores, {ghz:.2f} GHz, ISA {' '.join(isa) or 'baseline'}"},
            "assumed": {"note": f"assumption until calibrated: {ASSUMED_BW_PER_CORE / 1e9:.0f} GB/s per core, at most {ASSUMED_BW_MAX / 1e9:.0f} GB/s"},
            "measured": {"note": "best copy bandwidth and GEMM rate measured by `infercast calibrate` (calibration profile `local`)"},
        },
        "engines": {"cpu": {"peak": peaks, "compute_units": cores, "source": "detected",
                            "note": f"derived: cores x clock x {per_cycle} FP32 FLOP/cycle"}},
        "memory": {"device": {"capacity": _memory_bytes(), "bandwidth": bw, "type": "DRAM", "source": bw_source}},
        "note": "ISA features: " + (", ".join(isa) or "none of AVX2/AVX-512/AMX"),
    })


def _measured():
    """Rates measured on this machine, from its calibration profile (None before `infercast calibrate`)."""
    from .calibration import load_calibration

    cal = load_calibration("local")
    return cal.measured if cal.calibrated else None
