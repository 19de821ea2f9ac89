"""Serving metrics as tidy DataFrames, with vLLM's benchmark definitions: TTFT = first token -
arrival; TPOT = (E2E - TTFT) / (output tokens - 1); ITL = gaps between consecutive tokens;
E2E = finish - arrival; the mean ITL equals TPOT, so ITL is summarised by its maximum. Goodput counts requests that meet both SLOs, per second of makespan."""

from __future__ import annotations

import numpy as np

from .simulate import SimResult

STEP_COLUMNS = ("replica", "start_s", "duration_s", "n_steps", "decode_tokens", "prefill_tokens", "flops", "bytes",
                "kv_blocks_used")


def requests_frame(res: SimResult):
    import pandas as pd

    rows = []
    for r in res.requests:
        done = r.finish_s is not None
        rows.append({
            "rid": r.rid, "replica": r.replica, "arrival_s": r.arrival_s, "input_len": r.input_len,
            "output_len": r.output_len, "finished": done, "rejected": r.rejected,
            "queue_s": (r.scheduled_s - r.arrival_s) if r.scheduled_s is not None else np.nan,
            "ttft_s": (r.first_token_s - r.arrival_s) if r.first_token_s is not None else np.nan,
            "tpot_s": ((r.finish_s - r.first_token_s) / (r.output_len - 1)) if done and r.output_len > 1 else np.nan,
            "itl_max_s": r.itl_max_s if done and r.output_len > 1 else np.nan,
            "e2e_s": (r.finish_s - r.arrival_s) if done else np.nan,
            "preemptions": r.preemptions,
        })
    return pd.DataFrame(rows)


def steps_frame(res: SimResult):
    import pandas as pd

    return pd.DataFrame(res.steps, columns=list(STEP_COLUMNS))


def summary(res: SimResult, ttft_slo_s: float = float("inf"), tpot_slo_s: float = float("inf")) -> dict:
    df = requests_frame(res)
    fin = df[df.finished]
    span = res.makespan_s or float("nan")
    q = lambda col, p: float(np.nanpercentile(fin[col], p)) if len(fin) else float("nan")  # noqa: E731
    good = fin[(fin.ttft_s <= ttft_slo_s) & (fin.tpot_s.fillna(0) <= tpot_slo_s)]
    return {
        "requests": len(df), "finished": int(df.finished.sum()), "rejected": int(df.rejected.sum()),
        "throughput_tok_s": float((fin.input_len.sum() + fin.output_len.sum()) / span),
        "output_throughput_tok_s": float(fin.output_len.sum() / span), "requests_per_s": len(fin) / span,
        "ttft_p50_s": q("ttft_s", 50), "ttft_p99_s": q("ttft_s", 99), "tpot_p50_s": q("tpot_s", 50),
        "tpot_p99_s": q("tpot_s", 99), "e2e_p50_s": q("e2e_s", 50), "e2e_p99_s": q("e2e_s", 99),
        "goodput_rps": len(good) / span, "preemptions": int(df.preemptions.sum()), "makespan_s": span,
        "stop_reason": res.stop_reason,
    }
