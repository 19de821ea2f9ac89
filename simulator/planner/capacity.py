"""Requests/s one replica sustains for a request class within its TTFT and TPOT SLOs, from the
operator model (the serving simulator's step model), with queueing headroom.

For a class with prompt I, output O (means) on a replica:
- t_p: the prompt prefilled alone, in chunks of max_batched_tokens as the engine runs it (past
  EXACT_CHUNKS chunks, sampled: prefill_seconds).
- T(B): a decode step of B running requests at the mean context I + O/2 (whole array of B at once).
- Prompts queue for the prefill work at utilisation rho = lambda t_p (M/D/1; wait_quantile): the
  q-quantile TTFT t_p + W_q(rho) must meet the SLO (q = the plan's attainment), which caps rho at
  rho_max. With chunked prefill the decodes share the device with the prompts: they
  get 1 - rho of it, so TPOT = T(B) / (1 - rho).
- Little's law on the running batch: B = lambda O TPOT, i.e. lambda(B) = B / (O T(B) + B t_p).
Co-located capacity = max over B <= B_max (max_batch, and the KV that fits B requests at I + O) of
min(lambda(B), rho_max / t_p) where TPOT meets its SLO. A prefill-only replica serves rho_max / t_p;
a decode-only replica max B / (O T(B)) with T(B) within the TPOT SLO. All times `headroom`.
A candidate that cannot serve a class says why, and how close it comes: the smallest of SLO /
achieved over the SLOs its role answers for, at the lightest load (one request alone), 0 where the
KV of one request does not fit; the planner names the closest when no candidate serves a class.
These are means; the planner checks the chosen plan in the discrete-event simulator and tightens
a candidate that misses (planner.plan)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..human import count, seconds
from ..serving.step_model import StepModel

EXACT_CHUNKS = 64  # prefill chunks of one prompt costed one by one; more are sampled (prefill_seconds)


@dataclass(frozen=True)
class ClassShape:
    name: str
    input_len: int
    output_len: int
    ttft_s: float
    tpot_s: float


@dataclass(frozen=True)
class Capacity:
    rate_rps: float  # 0: cannot serve the class within its SLOs
    batch: int = 0  # running requests at that rate
    ttft_s: float = float("nan")  # TTFT quantile predicted at that rate
    tpot_s: float = float("nan")
    why: str = ""  # why it cannot serve
    closeness: float = 1.0  # cannot serve: min over its SLOs of SLO / achieved alone (0: the KV does not fit)


def prefill_seconds(sm: StepModel, prompt: int, chunk: int) -> float:
    """A prompt alone, in chunks of `chunk` tokens, the last one sampling the first token. Up to
    EXACT_CHUNKS full chunks are costed one by one; more (a long prompt in small chunks) are cut
    into EXACT_CHUNKS runs of consecutive chunks, each costed as its length times the mean of its
    one or two middle chunks: a chunk's cost grows smoothly with the tokens cached before it, so
    the midpoint rule stays within a fraction of a percent at a bounded cost."""
    if prompt <= 0:
        return 0.0
    full, last = divmod(prompt, chunk)
    if last == 0:
        full, last = full - 1, chunk
    t = sm.cost_keys([(last, full * chunk)], 0, 0.0, 1)[0]  # the last chunk samples the first token
    runs = min(full, EXACT_CHUNKS)
    edges = [full * g // runs for g in range(runs + 1)] if runs else [0]
    for lo, hi in zip(edges, edges[1:]):
        middle = {(lo + hi - 1) // 2, (lo + hi) // 2}
        t += (hi - lo) * sum(sm.cost_keys([(chunk, j * chunk)], 0, 0.0, 0)[0] for j in middle) / len(middle)
    return t


def decode_seconds(sm: StepModel, batch_max: int, context: float) -> np.ndarray:
    """T(B) for B = 1 .. batch_max, every request at `context` tokens (after any sliding window)."""
    w = sm.model.sliding_window
    ctx = int(round(min(context, w) if w else context))
    rows = np.arange(1, batch_max + 1, dtype=np.int64)
    out = np.empty((3, batch_max))
    sm.decode_into(out, np.array([rows, rows * ctx]))
    return out[0]


def wait_quantile(rho: float, t_p: float, q: float) -> float:
    """q-quantile of the prompt queue's wait at utilisation rho: M/D/1's mean wait rho t_p / (2 (1 -
    rho)) (Pollaczek-Khinchine) spread as the usual exponential tail, P(W > t) = rho exp(-rho t /
    E[W]) (exact for M/M/1, Kingman's heavy-traffic form otherwise). The 100th percentile (q = 1)
    of a queue that is ever busy is unbounded (plan files refuse attainment 1)."""
    if rho <= 1 - q:
        return 0.0
    if q >= 1:
        return float("inf")
    return t_p / (2 * (1 - rho)) * np.log(rho / (1 - q))


def rho_max(t_p: float, ttft_slo: float, q: float) -> float:
    """Highest prefill utilisation at which the q-quantile TTFT (t_p + wait) meets the SLO."""
    if t_p >= ttft_slo:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_p + wait_quantile(mid, t_p, q) <= ttft_slo else (lo, mid)
    return lo


def capacity(sm: StepModel, kv_tokens: int, cls: ClassShape, role: str, headroom: float, max_batch: int,
             max_batched_tokens: int, quantile: float = 0.9) -> Capacity:
    I, O = cls.input_len, cls.output_len
    if kv_tokens < I + (O if role != "prefill" else 1):
        return Capacity(0.0, why=f"KV for one {count(I + O)}-token request does not fit (room for "
                                 f"{count(kv_tokens)} tokens)", closeness=0.0)
    t_p = prefill_seconds(sm, I, max_batched_tokens) if role != "decode" else 0.0
    if role != "decode":
        r_max = rho_max(t_p, cls.ttft_s, quantile)
        if r_max <= 0:
            return _too_slow_prefill(sm, cls, role, t_p)
        if role == "prefill":
            return Capacity(headroom * r_max / t_p, 1, t_p + wait_quantile(r_max, t_p, quantile), float("nan"))
    b_max = int(min(max_batch, kv_tokens // (I + O)))
    T = decode_seconds(sm, b_max, I + O / 2)
    B = np.arange(1, b_max + 1)
    if role == "decode":
        lam, rho = B / (O * T), np.zeros(b_max)
    else:
        lam = np.minimum(B / (O * T + B * t_p), r_max / t_p)
        rho = lam * t_p
    tpot = T / (1 - rho)
    ok = tpot <= cls.tpot_s
    if not ok.any():
        return Capacity(0.0, ttft_s=t_p if role != "decode" else float("nan"), tpot_s=float(T[0]),
                        why=f"a decode step takes {seconds(T[0])}, over the TPOT SLO of {seconds(cls.tpot_s)}",
                        closeness=float(cls.tpot_s / T[0]))
    j = int(np.argmax(np.where(ok, lam, -1.0)))
    ttft = t_p + wait_quantile(float(rho[j]), t_p, quantile) if role != "decode" else float("nan")
    return Capacity(float(headroom * lam[j]), int(B[j]), float(ttft), float(tpot[j]))


def _too_slow_prefill(sm: StepModel, cls: ClassShape, role: str, t_p: float) -> Capacity:
    """A prompt alone misses the TTFT SLO; co-located, how close the decode step comes counts too."""
    near = cls.ttft_s / t_p
    tpot = float("nan")
    if role == "both":
        tpot = float(decode_seconds(sm, 1, cls.input_len + cls.output_len / 2)[0])
        near = min(near, cls.tpot_s / tpot)
    return Capacity(0.0, ttft_s=t_p, tpot_s=tpot, closeness=float(near),
                    why=f"prefill alone takes {seconds(t_p)}, over the TTFT SLO of {seconds(cls.ttft_s)}")
