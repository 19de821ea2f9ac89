"""The planner at the edges of its inputs: attainment near 1, a long prompt in small chunks, a class
of tiny demand."""

import math

import pytest

from simulator.catalog import load_model_spec
from simulator.phases import Layout
from simulator.planner.capacity import EXACT_CHUNKS, prefill_seconds, rho_max, wait_quantile
from simulator.planner.mip import Candidate, solve
from simulator.precision import resolve_precision
from simulator.serving.step_model import StepModel
from simulator.step import device


def test_the_100th_percentile_of_a_busy_queue_is_unbounded():
    assert wait_quantile(0.5, 1.0, 1.0) == math.inf
    assert wait_quantile(0.0, 1.0, 1.0) == 0.0  # an idle queue never waits
    assert rho_max(0.1, 3.0, 1.0) == 0.0  # so no load meets the SLO for every request


class CountingSteps:
    """A real step model (llama-3.1-8b on one H100) that counts the steps it is asked to cost."""

    def __init__(self):
        dev = device("h100-sxm")
        self.sm = StepModel(load_model_spec("llama-3.1-8b"), dev, Layout(1, 1, 1),
                            resolve_precision(dev.spec, "bf16", None), tables=False)
        self.model, self.calls = self.sm.model, 0

    def cost_keys(self, chunks, rows, keys, logits):
        self.calls += 1
        return self.sm.cost_keys(chunks, rows, keys, logits)


def chunk_by_chunk(sm, prompt: int, chunk: int) -> float:
    """The reference: every chunk costed, the last one sampling."""
    t, done = 0.0, 0
    while done < prompt:
        c = min(chunk, prompt - done)
        t += sm.cost_keys([(c, done)], 0, 0.0, 1 if done + c >= prompt else 0)[0]
        done += c
    return t


@pytest.mark.parametrize("prompt, chunk", [(131_072, 8192), (131_073, 8192), (EXACT_CHUNKS * 16 + 1, 16)])
def test_a_prompt_of_few_chunks_is_costed_chunk_by_chunk(prompt, chunk):
    steps = CountingSteps()
    assert prefill_seconds(steps, prompt, chunk) == pytest.approx(chunk_by_chunk(steps.sm, prompt, chunk), rel=1e-12)


@pytest.mark.parametrize("prompt, chunk", [(100_000, 16), (1_000_000, 16), (200_000, 100)])
def test_a_prompt_of_many_chunks_costs_a_bounded_number_of_steps(prompt, chunk):
    steps = CountingSteps()
    sampled = prefill_seconds(steps, prompt, chunk)
    assert steps.calls <= 2 * EXACT_CHUNKS + 1  # 62,500 chunks at 1M / 16
    assert sampled == pytest.approx(chunk_by_chunk(steps.sm, prompt, chunk), rel=1e-4)


def test_a_class_of_tiny_demand_gets_a_whole_replica():
    # one replica serves 2 req/s for $4/h: any demand above 0, however small, needs that one replica
    a = Candidate("A", "h100-sxm", 1, 4.0, 700.0, "both", {"chat": 2.0})
    for demand in (1e-7, 1e-9, 1e-300):
        res = solve([a], {"chat": demand}, {"h100-sxm": 8}, gap=0.0)
        assert (res.status, res.objective) == ("optimal", 4.0), demand
        assert [(p.candidate.name, p.replicas, p.rate_rps) for p in res.picks] == [("A", 1, demand)]
    # disaggregated: 1 prefill ($3) + 1 decode ($5) beat 1 co-located ($10) at any small demand
    both = Candidate("both", "h100-sxm", 1, 10.0, 700.0, "both", {"chat": 1.0})
    pre = Candidate("pre", "h100-sxm", 1, 3.0, 700.0, "prefill", {"chat": 2.0})
    dec = Candidate("dec", "h100-sxm", 1, 5.0, 700.0, "decode", {"chat": 4.0})
    res = solve([both, pre, dec], {"chat": 1e-9}, {}, disaggregation=True, gap=0.0)
    assert res.objective == 8.0
    assert sorted((p.candidate.name, p.replicas) for p in res.picks) == [("dec", 1), ("pre", 1)]


def test_hardware_without_links_gets_single_device_layouts_only():
    """epyc-9654's spec has no `links:` block: a plan may only run it one device per replica, even at a
    rate and SLOs that a TP layout would serve more cheaply per request (collectives.check_links)."""
    from simulator.catalog import load_hardware, load_model_spec
    from simulator.planner.candidates import layouts
    from simulator.planner.spec import PlanSpec

    spec = PlanSpec(name="t", model="llama-3.1-8b", inventory=[{"hw": "epyc-9654", "count": 8}],
                    classes=[{"name": "a", "rate": 0.5, "input_len": 512, "output_len": 32, "ttft_s": 60, "tpot_s": 5}])
    found = layouts(spec, load_model_spec("llama-3.1-8b"), load_hardware("epyc-9654"))
    assert found and all(lay.devices == 1 for lay in found)
    assert any(lay.devices > 1 for lay in layouts(spec, load_model_spec("llama-3.1-8b"), load_hardware("h100-sxm")))
