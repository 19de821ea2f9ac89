"""Serving metrics as tidy DataFrames, with vLLM's benchmark definitions: TTFT = first token -
arrival; TPOT = (E2E - TTFT) / (output tokens - 1); ITL = gaps between consecutive tokens;
E2E = finish - arrival; the mean ITL equals TPOT, so ITL is summarised by its maximum. Goodput counts requests that meet both SLOs, per second of makespan.

Utilisation (MFU, MBU) is achieved FLOP/s (device-memory bytes/s) per device over the makespan,
divided by the device's dense peak (memory bandwidth); step records hold per-device FLOPs and
bytes, so a replica's devices share its figure, and the result is the average over all devices of
all replicas (over replicas, when every replica has the same TP), idle replicas included."""

from __future__ import annotations

import numpy as np

from ..human import seconds
from .simulate import SimResult, offered_rate

STEP_COLUMNS = ("replica", "start_s", "duration_s", "n_steps", "decode_tokens", "prefill_tokens", "flops", "bytes",
                "kv_blocks_used")
REQUEST_COLUMNS = ("rid", "replica", "arrival_s", "input_len", "output_len", "finished", "rejected", "reject_reason",
                   "queue_s", "ttft_s",
                   "tpot_s", "itl_max_s", "e2e_s", "preemptions", "swaps", "prefix_hit_tokens", "kv_tier", "session", "turn")


def requests_frame(res: SimResult):
    import pandas as pd

    reqs = res.requests
    col = lambda name, default=None: [getattr(r, name, default) for r in reqs]  # noqa: E731
    num = lambda name: np.array([np.nan if v is None else v for v in col(name)], dtype=np.float64)  # noqa: E731
    arrival, scheduled, first, finish = num("arrival_s"), num("scheduled_s"), num("first_token_s"), num("finish_s")
    out_len = np.array(col("output_len"), dtype=np.int64)
    done = ~np.isnan(finish)
    multi = done & (out_len > 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(multi, (finish - first) / np.maximum(out_len - 1, 1), np.nan)
    frame = {
        "rid": col("rid"), "replica": col("replica"), "arrival_s": arrival, "input_len": col("input_len"),
        "output_len": out_len, "finished": done, "rejected": col("rejected"),
        "reject_reason": col("reject_reason", ""), "queue_s": scheduled - arrival,
        "ttft_s": first - arrival, "tpot_s": tpot, "itl_max_s": np.where(multi, num("itl_max_s"), np.nan),
        "e2e_s": finish - arrival, "preemptions": col("preemptions"), "swaps": col("swaps"),
        "prefix_hit_tokens": col("prefix_hit_tokens"), "kv_tier": col("kv_tier", "device"),
        "session": col("session", -1), "turn": col("turn", 0),
    }
    return pd.DataFrame(frame, columns=list(REQUEST_COLUMNS))


def steps_frame(res: SimResult):
    import pandas as pd

    return pd.DataFrame(res.steps, columns=list(STEP_COLUMNS))


def replica_layout(res: SimResult) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """(devices, KV blocks, role, peak FLOP/s per device, memory bytes/s per device) of every
    replica, by index: from the result's pools (replica indices run through the pools in order),
    else the single-pool fields. The replica count is the largest of `res.replicas` and the highest
    index any step or request names, plus one."""
    n = int(getattr(res, "replicas", 0) or 0)
    if res.steps:
        n = max(n, max(int(s[0]) for s in res.steps) + 1)
    for r in res.requests:
        n = max(n, int(r.replica) + 1, int(getattr(r, "decode_replica", -1)) + 1)
    n = max(n, 1)
    devices = np.full(n, max(int(res.devices_per_replica), 1), dtype=np.int64)
    blocks = np.full(n, int(res.kv_blocks_per_replica), dtype=np.int64)
    peak, bw = np.full(n, float(res.peak_flops)), np.full(n, float(res.mem_bandwidth))
    roles = ["both"] * n
    i = 0
    for pool in getattr(res, "pools", None) or []:
        role, count, dev, pblocks = pool[:4]
        for j in range(i, min(i + int(count), n)):
            devices[j], blocks[j], roles[j] = int(dev), int(pblocks), str(role)
            if len(pool) >= 6:  # pools on different hardware
                peak[j], bw[j] = float(pool[4]), float(pool[5])
        i += int(count)
    return devices, blocks, roles, peak, bw


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 and np.isfinite(den) else np.nan


def utilisation(res: SimResult) -> dict:
    """mfu, mbu: achieved FLOP/s and device-memory bytes/s per device over the makespan, over the
    per-device peak and bandwidth, averaged over devices (idle replicas count); busy_fraction: the
    share of device time with a step in flight; mfu_busy, mbu_busy: the same ratios over busy time
    only. NaN where the makespan, peak or bandwidth is zero."""
    devices, _, _, peak, bw = replica_layout(res)
    span = float(res.makespan_s or 0.0)
    busy = busy_peak = busy_bw = flops = nbytes = 0.0
    if res.steps:
        a = np.asarray([s[:9] for s in res.steps], dtype=np.float64)
        rep = a[:, 0].astype(np.int64)
        w = devices[rep]  # devices of the replica each step ran on
        flops, nbytes, busy = float((a[:, 6] * w).sum()), float((a[:, 7] * w).sum()), float((a[:, 2] * w).sum())
        busy_peak, busy_bw = float((a[:, 2] * w * peak[rep]).sum()), float((a[:, 2] * w * bw[rep]).sum())
    device_s = span * float(devices.sum())  # device-seconds of the run
    return {
        "mfu": _ratio(flops, span * float((devices * peak).sum())),
        "mbu": _ratio(nbytes, span * float((devices * bw).sum())),
        "busy_fraction": _ratio(busy, device_s),
        "mfu_busy": _ratio(flops, busy_peak), "mbu_busy": _ratio(nbytes, busy_bw),
    }


def kv_occupancy(res: SimResult, replica: int | None = None):
    """KV blocks in use, one row per step event (time_s = its start), by replica then time: a step
    function whose value holds while that step (or decode stretch) runs. A stretch reserves the
    blocks of all its steps when it starts, so its value is the stretch's high mark. kv_fraction =
    kv_blocks_used / the replica's KV blocks (device and offload tier together)."""
    import pandas as pd

    blocks = replica_layout(res)[1]
    rows = sorted((int(s[0]), float(s[1]), int(s[8])) for s in res.steps if replica is None or int(s[0]) == replica)
    df = pd.DataFrame(rows, columns=["replica", "time_s", "kv_blocks_used"])
    total = blocks[df.replica.to_numpy(dtype=np.int64)].astype(np.float64)
    df["kv_fraction"] = np.divide(df.kv_blocks_used.to_numpy(dtype=np.float64), total,
                                  out=np.full(len(df), np.nan), where=total > 0)
    return df[["time_s", "replica", "kv_blocks_used", "kv_fraction"]].reset_index(drop=True)


def kv_occupancy_stats(res: SimResult) -> tuple[float, float]:
    """(time-weighted mean, peak) of the KV fraction in use. The mean is over the makespan, averaged
    over replicas: each step's value counts for its duration and a replica with no step in flight
    has no running requests, so its idle time counts as empty (evictable cached prefixes aside)."""
    tp, blocks = replica_layout(res)[:2]
    span = float(res.makespan_s or 0.0)
    if not res.steps or span <= 0:
        return np.nan, np.nan
    a = np.asarray([s[:9] for s in res.steps], dtype=np.float64)
    total = blocks[a[:, 0].astype(np.int64)].astype(np.float64)
    frac = np.divide(a[:, 8], total, out=np.full(len(a), np.nan), where=total > 0)
    if np.isnan(frac).any():
        return np.nan, np.nan
    return float((frac * a[:, 2]).sum() / (span * len(tp))), float(frac.max())


def summary(res: SimResult, ttft_slo_s: float = float("inf"), tpot_slo_s: float = float("inf")) -> dict:
    """The run's figures (README "Output"). Latency percentiles cover every finished request, or
    for an overloaded run those that arrived before the backlog's onset (`metrics_cover`,
    `stable_requests`); rates and throughputs cover the whole run. offered_rps and served_rps are
    the arrivals' and the admissions' rates (served_rate). A figure with nothing to measure is NaN
    (JSON null) and `no_value_reason` says why."""
    df = requests_frame(res)
    fin = df[df.finished]
    span = res.makespan_s or float("nan")
    cover, stable = _covered(df, res)
    cov = cover[cover.finished]
    q = lambda col, p: _percentile(cov[col], p)  # noqa: E731
    good = fin[(fin.ttft_s <= ttft_slo_s) & (fin.tpot_s.fillna(0) <= tpot_slo_s)]
    util = utilisation(res)
    kv_mean, kv_peak = kv_occupancy_stats(res)
    lookups = res.prefix_hits + res.prefix_misses
    arrived = df[df.replica >= 0]
    requested = max(len(df), int(getattr(res, "requested", -1))) if res.stop_reason == "overloaded" else len(df)
    onset = float(getattr(res, "overload_onset_s", float("nan")))
    return {
        "requests": requested, "finished": int(df.finished.sum()), "rejected": int(df.rejected.sum()),
        "throughput_tok_s": float((fin.input_len.sum() + fin.output_len.sum()) / span),
        "output_throughput_tok_s": float(fin.output_len.sum() / span), "requests_per_s": len(fin) / span,
        "ttft_p50_s": q("ttft_s", 50), "ttft_p99_s": q("ttft_s", 99), "tpot_p50_s": q("tpot_s", 50),
        "tpot_p99_s": q("tpot_s", 99), "e2e_p50_s": q("e2e_s", 50), "e2e_p99_s": q("e2e_s", 99),
        "goodput_rps": len(good) / span, "preemptions": int(df.preemptions.sum()), "makespan_s": span,
        "stop_reason": res.stop_reason,
        "mfu": util["mfu"], "mbu": util["mbu"], "busy_fraction": util["busy_fraction"],
        "kv_occupancy_mean": kv_mean, "kv_occupancy_peak": kv_peak,
        "prefix_hit_rate": res.prefix_hits / lookups if lookups else np.nan,
        "swaps": int(sum(r.swaps for r in res.requests)),
        "prompt_cached_fraction": _ratio(float(fin.prefix_hit_tokens.sum()), float(fin.input_len.sum())),
        "arrived": len(arrived), "offered_rps": offered_rate(arrived.arrival_s),
        "served_rps": served_rate(res.requests),
        "overload_onset_s": onset,
        "metrics_cover": "all" if stable is None else f"stable part: arrivals before {seconds(onset)}",
        "stable_requests": int((cover.replica >= 0).sum()),  # arrived ones only: never above `arrived`
        "reject_reasons": dict(getattr(res, "reject_reasons", None) or {}),
        "no_value_reason": None if len(cov) else _no_value_reason(df, res, stable),
    }


def served_rate(requests) -> float:
    """Requests per second the deployment took in: n - 1 over the span of their first admissions to
    a batch (a disaggregated run's, to the decode pool), as offered_rps is over the arrivals'. A run
    that keeps up admits requests as they arrive, so the two agree; an overloaded one admits them
    as fast as it frees room, its service rate. The drain after the last arrival is not a rate
    (with 10 requests of 30 s each it would halve a healthy run's figure), so it is left out."""
    return offered_rate([r.admitted_s for r in requests if getattr(r, "admitted_s", None) is not None])


def _covered(df, res: SimResult):
    """(the requests the latency percentiles cover, the stable part's mask or None): all of them,
    or for an overloaded run those that arrived before the backlog's onset."""
    onset = float(getattr(res, "overload_onset_s", float("nan")))
    if res.stop_reason != "overloaded" or not np.isfinite(onset):
        return df, None
    stable = (df.arrival_s < onset).to_numpy()
    return df[stable], stable


def _percentile(values, p: float) -> float:
    v = values.to_numpy(dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(np.percentile(v, p)) if len(v) else float("nan")


def _no_value_reason(df, res: SimResult, stable) -> str:
    """Why no finished request backs the latency figures."""
    n, rejected = len(df), int(df.rejected.sum())
    if n == 0:
        return "no requests"
    if rejected == n:
        why = "; ".join(f"{c:,} {r}" for r, c in (getattr(res, "reject_reasons", None) or {}).items())
        return f"all {n:,} requests rejected" + (f": {why}" if why else "")
    if stable is not None:
        if not df.finished.any():
            return "overloaded before any request finished"
        if not stable.any():
            return "overloaded from the first arrival: none arrived before the backlog began"
        return f"overloaded: none of the {int(stable.sum()):,} requests before the backlog finished"
    if res.stop_reason == "max_time":
        due = float(getattr(res, "next_event_s", float("nan")))
        bound = float(getattr(res, "max_time_s", float("nan")))
        why = f": the next step or KV transfer would end at {seconds(due)}" if np.isfinite(due) else ""
        return (f"no request finished before the run's time bound (max_time_s: {seconds(bound)}){why}; "
                f"{seconds(res.makespan_s)} simulated")
    bound = {"max_events": "within the event bound"}.get(res.stop_reason, "")
    return f"no request finished {bound}".strip()
