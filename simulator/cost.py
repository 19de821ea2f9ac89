"""Cost line: $/hour of a configuration and $ per million tokens, from the specs' prices.

Input tokens pay for prefill time and output tokens for decode time, so that
input_tokens x usd_per_mtok_input + output_tokens x usd_per_mtok_output = the run's cost.
With one output token per request there is no decode step: that token comes out of the prefill,
already priced per input token, so the output price is None (null), never a misleading $0.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hwspec import HardwareSpec


@dataclass(frozen=True)
class CostLine:
    usd_per_hour: float | None
    usd_per_mtok_input: float | None
    usd_per_mtok_output: float | None
    usd_per_mtok_blended: float | None
    price_is_estimate: bool


def cost_line(spec: HardwareSpec, devices: int, prefill_s: float, decode_s: float,
              input_tokens: int, output_tokens: int) -> CostLine:
    price = spec.price.cloud_usd_per_hour if spec.price else None
    if price is None:
        return CostLine(None, None, None, None, False)
    per_hour = price * devices
    per_s = per_hour / 3600.0

    def per_mtok(seconds: float, tokens: int) -> float | None:
        return per_s * seconds / tokens * 1e6 if tokens > 0 else None

    return CostLine(
        per_hour,
        per_mtok(prefill_s, input_tokens),
        per_mtok(decode_s, output_tokens) if decode_s > 0 else None,
        per_mtok(prefill_s + decode_s, input_tokens + output_tokens),
        bool(spec.price.estimate),
    )
