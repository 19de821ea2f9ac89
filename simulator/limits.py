"""Ceilings on what one run may ask for, so that a typo gets a one-line answer instead of
exhausting memory or running for days. Each is far above any real deployment; a run that needs
more is split into several (or the ceiling raised here, with a reason).

Physical ceilings on hardware numbers are ~1000x today's largest parts (B200: 8 TB/s, 192 GB,
4.5 PFLOP/s dense fp8; a DGX rack's NVLink domain 72 GPUs), so a unit slip (GiB for TiB, a
missing prefix) passes but an overflow (1e300 GiB) does not.
"""

from __future__ import annotations

MAX_REQUESTS = 1_000_000  # requests in one simulated run: all are drawn up front (~330 MB and ~2.6 s
#                           per million here); split a larger workload into several runs
MAX_REPLICAS = 10_000  # replicas in one pool
MAX_DEVICES = 1_000_000  # devices of one layout, or in one plan's inventory of a type
MAX_DEGREE = 4096  # any one parallel degree (TP, PP, CP, EP)
MAX_BATCH = 1_000_000  # requests in one batch
MAX_TOKENS = 100_000_000  # tokens in one request (100M: ~100x the longest context served today)
MAX_SEED = 2**63 - 1  # numpy's SeedSequence takes any non-negative int; 64-bit keeps outputs portable
MAX_CONFIG_BYTES = 2**20  # a YAML or config.json file: real ones are under 100 KiB; libyaml reads ~0.3 MB/s of dense lists here
MAX_TRACE_BYTES = 4 * 2**30  # a request trace (CSV or JSONL)

MAX_QUANTITY = {  # SI, per device
    "bytes": 2.0**60,  # 1 EiB
    "bytes_per_s": 1e18,  # 1 EB/s
    "flops_per_s": 1e21,  # 1 ZFLOP/s
    "watts": 1e7,
    "hertz": 1e12,
    "seconds": 1e9,  # ~32 years
}
