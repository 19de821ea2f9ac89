"""Traffic: request arrivals and lengths, drawn from a seeded numpy Generator (no global state)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InfercastError


@dataclass(slots=True)
class Request:
    rid: int
    arrival_s: float
    input_len: int
    output_len: int
    prefix_id: int = -1  # requests with the same id share their first `prefix_len` prompt tokens
    prefix_len: int = 0
    user: int = -1  # closed-loop user who sent it
    session: int = -1  # multi-turn session it is a turn of (-1: a single request)
    turn: int = 0  # its turn in the session, from 0
    keep_id: int = -1  # prefix id its whole context stays cached under when it finishes (next turn's)
    # filled in by the simulation
    first_token_s: float | None = None
    finish_s: float | None = None
    scheduled_s: float | None = None
    last_token_s: float | None = None
    itl_max_s: float = 0.0  # largest gap between consecutive tokens (mean ITL = TPOT)
    preemptions: int = 0
    swaps: int = 0  # preemptions that swapped the KV to host memory (the rest recomputed)
    prefix_hit_tokens: int = 0  # prompt tokens served from the prefix cache
    replica: int = -1
    decode_replica: int = -1  # disaggregated: the decode replica its KV was handed to
    handover_s: float | None = None  # disaggregated: when its KV arrived at the decode replica
    kv_tier: str = "device"  # where its KV lived: device, or an offload tier for part of its life
    rejected: bool = False


def arrival_times(kind: str, n: int, rate: float, rng: np.random.Generator, cv: float = 1.0) -> np.ndarray:
    """n arrival times: offline (all at 0), constant (1/rate apart), poisson (exponential gaps),
    gamma (gaps with coefficient of variation `cv`: shape 1/cv^2, mean 1/rate)."""
    if n < 1:
        raise InfercastError(f"--num-requests: must be >= 1 (got {n})")
    if kind == "offline":
        return np.zeros(n)
    if not rate > 0:
        raise InfercastError(f"--rate: must be > 0 requests/s for '{kind}' arrivals (got {rate})")
    if kind == "constant":
        gaps = np.full(n, 1.0 / rate)
    elif kind == "poisson":
        gaps = rng.exponential(1.0 / rate, n)
    elif kind == "gamma":
        if not cv > 0:
            raise InfercastError(f"--cv: must be > 0 (got {cv})")
        shape = 1.0 / cv**2
        gaps = rng.gamma(shape, 1.0 / (rate * shape), n)
    else:
        raise InfercastError(f"--arrival: '{kind}' is not one of offline, constant, poisson, gamma")
    return np.cumsum(gaps) - gaps[0]


def lengths(spec: dict | int, n: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """n token counts from a length spec: an int (fixed), {uniform: [lo, hi]},
    {lognormal: {mean: m, sigma: s}} (mean of the distribution, sigma of the log), or
    {empirical: {values: [...], weights: [...]}} (a histogram)."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        if spec < 1:
            raise InfercastError(f"{what}: must be >= 1 (got {spec})")
        return np.full(n, int(spec), dtype=np.int64)
    if not isinstance(spec, dict) or len(spec) != 1:
        raise InfercastError(f"{what}: a length is an int or one of uniform, lognormal, empirical (got {spec!r})")
    (kind, arg), = spec.items()
    if kind == "uniform":
        lo, hi = arg
        out = rng.integers(lo, hi + 1, n)
    elif kind == "lognormal":
        sigma = float(arg["sigma"])
        mu = np.log(float(arg["mean"])) - sigma**2 / 2  # E[X] = exp(mu + sigma^2 / 2)
        out = np.rint(rng.lognormal(mu, sigma, n))
    elif kind == "empirical":
        w = np.asarray(arg.get("weights", np.ones(len(arg["values"]))), dtype=float)
        out = rng.choice(np.asarray(arg["values"]), n, p=w / w.sum())
    else:
        raise InfercastError(f"{what}: '{kind}' is not one of uniform, lognormal, empirical")
    return np.maximum(out, 1).astype(np.int64)


def make_requests(n: int, arrival: str, rate: float, input_len, output_len, seed: int, cv: float = 1.0) -> list[Request]:
    rng = np.random.default_rng(seed)
    t = arrival_times(arrival, n, rate, rng, cv)
    i = lengths(input_len, n, rng, "--input-len")
    o = lengths(output_len, n, rng, "--output-len")
    return [Request(k, float(t[k]), int(i[k]), int(o[k])) for k in range(n)]
