"""Traffic: request arrivals and lengths, drawn from a seeded numpy Generator (no global state).

A length spec (a class's input_len, output_len, turns, turn_input_len; --input-len) is checked
whole when it is read, so a spec that cannot be drawn from is refused before a run starts:
    1024                                          fixed: a whole number from 1 to MAX_TOKENS
    {uniform: [lo, hi]}                           whole numbers, 1 <= lo <= hi <= MAX_TOKENS
    {lognormal: {mean: m, sigma: s}}              both given: 1 <= m <= MAX_TOKENS (the mean of
                                                  the lengths), 0 <= s <= MAX_SIGMA (of their log)
    {empirical: {values: [...], weights: [...]}}  values whole, 1 to MAX_TOKENS, at least one;
                                                  weights (default: equal) one per value, finite,
                                                  >= 0, summing above 0
Draws are rounded and held in [1, MAX_TOKENS].
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Annotated, Any, Union

import numpy as np
from pydantic import BeforeValidator, PlainSerializer

from ..checks import EXPONENT_FORM, plain_number
from ..errors import InfercastError, bad_input, show
from ..limits import MAX_TOKENS

# Above this sigma of the log, the median length is under e^-4.5 (1%) of the mean: most draws of a
# lognormal of a few thousand tokens' mean would be 1 token, which no real length histogram does.
MAX_SIGMA = 3.0
LENGTH_FORMS = "a whole number of tokens or one of {uniform: [lo, hi]}, {lognormal: {mean, sigma}}, " \
               "{empirical: {values, weights}}"


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
    admitted_s: float | None = None  # first admission to its last stage's batch (disaggregated: the decode pool's)
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
    reject_reason: str = ""


@dataclass(frozen=True)
class FixedLength:
    tokens: int

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(n, self.tokens, dtype=np.int64)

    def as_spec(self) -> Any:
        return self.tokens


@dataclass(frozen=True)
class UniformLength:
    low: int
    high: int

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(self.low, self.high + 1, n)

    def as_spec(self) -> Any:
        return {"uniform": [self.low, self.high]}


@dataclass(frozen=True)
class LognormalLength:
    mean: float  # of the lengths
    sigma: float  # of their log

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        mu = np.log(self.mean) - self.sigma**2 / 2  # E[X] = exp(mu + sigma^2 / 2)
        return np.rint(rng.lognormal(mu, self.sigma, n))

    def as_spec(self) -> Any:
        return {"lognormal": {"mean": self.mean, "sigma": self.sigma}}


@dataclass(frozen=True)
class EmpiricalLength:
    values: tuple[int, ...]
    weights: tuple[float, ...] | None  # None: equal

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        w = np.asarray(self.weights if self.weights is not None else np.ones(len(self.values)), dtype=float)
        return rng.choice(np.asarray(self.values), n, p=w / w.sum())

    def as_spec(self) -> Any:
        arg: dict = {"values": list(self.values)}
        if self.weights is not None:
            arg["weights"] = list(self.weights)
        return {"empirical": arg}


Length = Union[FixedLength, UniformLength, LognormalLength, EmpiricalLength]


def shortest(spec: Length) -> float:
    """The shortest length a spec draws, in practice: its smallest value (a lognormal's: its
    median, since half its draws are shorter and its smallest is always 1)."""
    if isinstance(spec, FixedLength):
        return spec.tokens
    if isinstance(spec, UniformLength):
        return spec.low
    if isinstance(spec, LognormalLength):
        return spec.mean * math.exp(-spec.sigma**2 / 2)
    return min(v for k, v in enumerate(spec.values) if spec.weights is None or spec.weights[k] > 0)


def mean_of(spec: Length) -> float:
    """The mean length a spec asks for."""
    if isinstance(spec, FixedLength):
        return float(spec.tokens)
    if isinstance(spec, UniformLength):
        return (spec.low + spec.high) / 2
    if isinstance(spec, LognormalLength):
        return spec.mean
    w = spec.weights if spec.weights is not None else (1.0,) * len(spec.values)
    return sum(v * x for v, x in zip(spec.values, w)) / sum(w)


def _tokens(value: object) -> int | None:
    """`value` as a whole number of tokens in [1, MAX_TOKENS], or None."""
    if isinstance(value, str) and EXPONENT_FORM.fullmatch(value.strip()):
        value = float(value)  # YAML 1.2's `1e3`, which PyYAML reads as a string
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= MAX_TOKENS:
        return None
    return int(value)


def _uniform(arg: object) -> UniformLength:
    pair = [_tokens(x) for x in arg] if isinstance(arg, list) and len(arg) == 2 else [None]
    if None in pair:
        raise ValueError(f"uniform: must be [lo, hi], two whole numbers from 1 to {MAX_TOKENS:,} "
                         f"(got {show(arg)})")
    if pair[0] > pair[1]:
        raise ValueError(f"uniform: low must be <= high (got {show(arg)})")
    return UniformLength(*pair)


def _lognormal(arg: object) -> LognormalLength:
    if not isinstance(arg, dict) or set(arg) != {"mean", "sigma"}:
        raise ValueError(f"lognormal: needs exactly the keys mean and sigma (got {show(arg)})")
    mean, sigma = plain_number(arg["mean"]), plain_number(arg["sigma"])
    if mean is None or not 1 <= mean <= MAX_TOKENS:
        raise ValueError(f"lognormal: mean must be a finite number of tokens from 1 to {MAX_TOKENS:,} "
                         f"(got {show(arg['mean'])})")
    if sigma is None or not 0 <= sigma <= MAX_SIGMA:
        raise ValueError(f"lognormal: sigma must be a finite number from 0 to {MAX_SIGMA:g}, the spread of the "
                         f"log (got {show(arg['sigma'])})")
    return LognormalLength(mean, sigma)


def _empirical(arg: object) -> EmpiricalLength:
    if not isinstance(arg, dict) or "values" not in arg or not set(arg) <= {"values", "weights"}:
        raise ValueError(f"empirical: needs the key values and may have weights, nothing else (got {show(arg)})")
    raw = arg["values"]
    values = [_tokens(v) for v in raw] if isinstance(raw, list) else [None]
    if not values or None in values:
        raise ValueError(f"empirical: values must be a non-empty list of whole numbers from 1 to "
                         f"{MAX_TOKENS:,} (got {show(raw)})")
    if arg.get("weights") is None:
        return EmpiricalLength(tuple(values), None)
    raw = arg["weights"]
    weights = [plain_number(w) for w in raw] if isinstance(raw, list) else [None]
    if len(weights) != len(values):
        raise ValueError(f"empirical: weights must give one number per value ({len(values)} values, got {show(raw)})")
    if None in weights or min(weights) < 0 or not sum(weights) > 0:
        raise ValueError(f"empirical: weights must be finite numbers >= 0 summing above 0 (got {show(raw)})")
    return EmpiricalLength(tuple(values), tuple(weights))


_FORMS = {"uniform": _uniform, "lognormal": _lognormal, "empirical": _empirical}


def length_spec(value: object) -> Length:
    """A length spec read whole (see the module docstring); a ValueError says what is wrong."""
    if isinstance(value, (FixedLength, UniformLength, LognormalLength, EmpiricalLength)):
        return value
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in _FORMS:
            raise ValueError(f"must be {LENGTH_FORMS} (got {show(value)})")
        (kind, arg), = value.items()
        return _FORMS[kind](arg)
    tokens = _tokens(value)
    if tokens is None:
        if isinstance(value, (numbers.Real, bool)):
            raise ValueError(f"must be a whole number from 1 to {MAX_TOKENS:,}")
        raise ValueError(f"must be {LENGTH_FORMS}")
    return FixedLength(tokens)


def _written(spec: Length | None) -> Any:
    return None if spec is None else spec.as_spec()


# A length spec field of a config model: read whole on load, written back as the spec it came from.
LengthSpec = Annotated[Any, BeforeValidator(length_spec), PlainSerializer(_written)]
OptionalLengthSpec = Annotated[Any, BeforeValidator(lambda v: None if v is None else length_spec(v)),
                               PlainSerializer(_written)]


def parse_length(value: object, where: str) -> Length:
    """A length spec from a flag or a caller: an InfercastError naming `where` if it is not one."""
    try:
        return length_spec(value)
    except ValueError as exc:
        scalar = value is None or isinstance(value, (str, int, float, bool))
        raise bad_input(where, str(exc), value if scalar else ...) from None


def lengths(spec: object, n: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """n token counts drawn from a length spec (or a raw one, read with `what` naming it)."""
    return np.clip(parse_length(spec, what).draw(n, rng), 1, MAX_TOKENS).astype(np.int64)


def arrival_times(kind: str, n: int, rate: float, rng: np.random.Generator, cv: float = 1.0) -> np.ndarray:
    """n arrival times: offline (all at 0), constant (1/rate apart), poisson (exponential gaps),
    gamma (gaps with coefficient of variation `cv`: shape 1/cv^2, mean 1/rate). The caller has
    checked n, rate and cv (scenario.Arrival); these checks guard direct calls."""
    if n < 1:
        raise bad_input("--num-requests", "must be >= 1", n)
    if kind == "offline":
        return np.zeros(n)
    if not (math.isfinite(rate) and rate > 0):
        raise bad_input("--rate", f"must be a finite number of requests/s > 0 for '{kind}' arrivals", rate)
    if kind == "constant":
        gaps = np.full(n, 1.0 / rate)
    elif kind == "poisson":
        gaps = rng.exponential(1.0 / rate, n)
    elif kind == "gamma":
        if not (math.isfinite(cv) and cv > 0):
            raise bad_input("--cv", "must be a finite number > 0", cv)
        shape = 1.0 / cv**2
        gaps = rng.gamma(shape, 1.0 / (rate * shape), n)
    else:
        raise InfercastError(f"--arrival: '{kind}' is not one of offline, constant, poisson, gamma")
    return np.cumsum(gaps) - gaps[0]


def make_requests(n: int, arrival: str, rate: float, input_len, output_len, seed: int, cv: float = 1.0) -> list[Request]:
    rng = np.random.default_rng(seed)
    t = arrival_times(arrival, n, rate, rng, cv)
    i = lengths(input_len, n, rng, "--input-len")
    o = lengths(output_len, n, rng, "--output-len")
    return [Request(k, float(t[k]), int(i[k]), int(o[k])) for k in range(n)]
