"""A scenario's deployment checked against its model and hardware before a run, so that each error
names where its value came from: the file's key (`deployment.tp`,
`deployment.disaggregation.prefill_hw`) or the flag the user gave (`--tp`, `--prefill-tp`),
never a flag nobody typed.

Per pool (one co-located, or prefill and decode): the model and hardware exist, the layout splits
the model (phases.check_layout), the weights and one step's activations leave room for KV (else
the largest max_batch or max_batched_tokens, or the smallest TP degree, that does), an offload tier exists on the hardware and holds between one KV block and the tier's
capacity in the hardware spec, and swap space is within the host memory the spec states.
Disaggregated pools: the KV handover has a link to cross (a scale-out or host link, or scale-up
when both pools share one machine's domain) unless `disaggregation.link_bandwidth` gives one.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..catalog import load_hardware, load_model_spec
from ..errors import InfercastError, bad_input
from ..human import size
from ..memory import kv_bytes_per_token
from ..collectives import check_links, domain_size
from ..phases import Layout, check_layout
from ..precision import resolve_precision
from ..step import device
from ..units import format_quantity
from .pools import kv_blocks
from .scenario import MIN_BATCHED_TOKENS, Deployment, Origin

MAX_TP_ADVICE = 64  # the largest TP degree "does not fit" advice considers
# the head of an error written for flags: "--tp 3: ...", "--cp 4 with --cp-kind ulysses: ...", "--dtype: ..."
FLAG_HEAD = re.compile(r"--([a-z-]+)(?: [^:]*?)?(?: with --cp-kind ulysses)?: (.*)")


class PoolKeys(NamedTuple):
    """The scenario keys one pool's values come from."""

    role: str
    hw: str
    tp: str
    pp: str
    cp: str


def pool_keys(dep: Deployment, role: str) -> PoolKeys:
    """Keys of a pool: a disaggregated pool's own key (`disaggregation.prefill_tp`) when set, else
    the deployment's."""
    dis = dep.disaggregation

    def key(name: str) -> str:
        own = f"{role}_{name}"
        if dis is not None and getattr(dis, own, None) is not None:
            return f"deployment.disaggregation.{own}"
        return f"deployment.{name}"

    return PoolKeys(role, key("hw"), key("tp"), key("pp"), key("cp"))


def check_pools(dep: Deployment, origin: Origin) -> None:
    """Every pool of the deployment fits its model and hardware (module docstring)."""
    from .shapes import pool_shapes

    model = load_model_spec(dep.model, origin.where("deployment.model"))
    for shape in pool_shapes(dep):
        keys = pool_keys(dep, shape.role)
        spec = load_hardware(shape.hw, origin.where(keys.hw))
        layout = Layout(shape.tp, shape.pp, shape.cp, dep.ep, dep.ep_imbalance, dep.cp_kind)
        values = {"tp": (keys.tp, shape.tp), "pp": (keys.pp, shape.pp), "cp": (keys.cp, shape.cp),
                  "ep": ("deployment.ep", dep.ep), "cp-kind": ("deployment.cp_kind", dep.cp_kind),
                  "ep-imbalance": ("deployment.ep_imbalance", dep.ep_imbalance),
                  "dtype": ("deployment.dtype", dep.dtype), "kv-dtype": ("deployment.kv_dtype", dep.kv_dtype)}
        with _named(values, origin):
            check_layout(model, layout)
            check_links(spec, layout)
            prec = resolve_precision(spec, dep.dtype, dep.kv_dtype)
        dev = device(shape.hw)
        _check_fit(dep, model, dev, layout, prec, keys, origin)
        per_block = kv_bytes_per_token(model, layout, prec) * dep.block_size
        _check_offload(dep, spec, per_block, origin)
        _check_swap(dep, spec, origin)
    _check_handover(dep, origin)


class _named:
    """A context that re-raises an error written for flags ('--tp 3: ...') under the key or flag
    that really set the value: `values` maps the flag's name to (key, value)."""

    def __init__(self, values: dict, origin: Origin):
        self.values, self.origin = values, origin

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if not isinstance(exc, InfercastError):
            return False
        m = FLAG_HEAD.fullmatch(str(exc))
        if m is None or m[1] not in self.values:
            return False
        key, value = self.values[m[1]]
        rest = re.sub(r"--([a-z]+)\b", r"\1", m[2])  # "must divide --tp (4)" -> "must divide tp (4)"
        if m[1] == "cp" and "ulysses" in str(exc).split(":")[0]:
            rest = "with cp_kind ulysses, " + rest
        raise bad_input(self.origin.where(key), rest, value) from None


def _fits(dep, model, dev, layout: Layout, prec) -> bool:
    try:
        check_layout(model, layout)
        kv_blocks(dep, model, dev, layout, prec)
        return True
    except InfercastError:
        return False


def _smallest_tp(dep, model, dev, layout: Layout, prec) -> int | None:
    """The smallest TP degree above the layout's (up to MAX_TP_ADVICE) that leaves room for KV."""
    for tp in range(layout.tp + 1, MAX_TP_ADVICE + 1):
        if _fits(dep, model, dev, Layout(tp, layout.pp, layout.cp, layout.ep, layout.ep_imbalance, layout.cp_kind), prec):
            return tp
    return None


def _largest_step_value(dep, model, dev, layout: Layout, prec, key: str, low: int) -> int | None:
    """The largest value of `key` (max_batch or max_batched_tokens, from `low`) below the deployment's
    at which one step's activations leave room for KV; None if even `low` does not."""
    def fits(value: int) -> bool:
        return _fits(dep.model_copy(update={key: value}), model, dev, layout, prec)

    lo, hi = low, getattr(dep, key) - 1  # activation memory grows with the value: bisect
    if hi < lo or not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _check_fit(dep: Deployment, model, dev, layout: Layout, prec, keys: PoolKeys, origin: Origin) -> None:
    """The weights and one step's activations leave room for at least one KV block. Else name what
    breaks the fit: max_batch or max_batched_tokens (activation memory) when a smaller value of one
    fits, with the largest that does; else the TP degree, with the smallest that fits."""
    if _fits(dep, model, dev, layout, prec):
        return
    fits = _smallest_tp(dep, model, dev, layout, prec)
    advice = f"fits from {_tp_name(keys.role, origin)} {fits}" if fits else \
        f"no TP degree up to {MAX_TP_ADVICE} fits: add pipeline stages"
    pool = "" if keys.role == "both" else f"the {keys.role} pool's "
    head = f"does not fit: {pool}{model.id} {dep.dtype} on {dev.spec.id} {layout.name()}"
    for key, low in (("max_batch", 1), ("max_batched_tokens", MIN_BATCHED_TOKENS)):
        best = _largest_step_value(dep, model, dev, layout, prec, key, low)
        if best is not None:
            tp_too = f", or {advice}" if fits else ""
            raise bad_input(origin.where(f"deployment.{key}"),
                            f"{head}: one step's activations for {key} {getattr(dep, key):,} leave no memory for "
                            f"the KV cache; fits with {key} up to {best:,}{tp_too}")
    own_hw = keys.hw.startswith("deployment.disaggregation.")
    where = origin.where(*((keys.hw, keys.tp) if own_hw else (keys.tp, keys.hw)), "deployment.model", "deployment.dtype")
    raise bad_input(where, f"{head} leaves no memory for the KV cache; {advice}{_other_pools(dep, model, keys.role, origin)}")


def _tp_name(role: str, origin: Origin) -> str:
    """What sizes one pool's TP, as the user gave the run: the flag (--tp, --prefill-tp) when any
    flag was given or there is no file, else the scenario key (tp, prefill_tp)."""
    flags = origin.file is None or bool(origin.flags)
    if role == "both":
        return "--tp" if flags else "tp"
    return f"--{role}-tp" if flags else f"{role}_tp"


def _other_pools(dep: Deployment, model, role: str, origin: Origin) -> str:
    """For a disaggregated pool that does not fit: which other pool does not fit either, and from
    which TP it would ("; the decode pool (TP4 on a10g) does not fit either: fits from --decode-tp 8")."""
    from .shapes import pool_shapes

    notes = []
    for shape in pool_shapes(dep):
        if shape.role in (role, "both"):
            continue
        dev = device(shape.hw)
        layout = Layout(shape.tp, shape.pp, shape.cp, dep.ep, dep.ep_imbalance, dep.cp_kind)
        try:
            prec = resolve_precision(dev.spec, dep.dtype, dep.kv_dtype)
        except InfercastError:
            continue
        if _fits(dep, model, dev, layout, prec):
            continue
        fits = _smallest_tp(dep, model, dev, layout, prec)
        advice = f"fits from {_tp_name(shape.role, origin)} {fits}" if fits else "no TP degree fits"
        notes.append(f"; the {shape.role} pool ({layout.name()} on {dev.spec.id}) does not fit either: {advice}")
    return "".join(notes)


def _check_offload(dep: Deployment, spec, per_block: float, origin: Origin) -> None:
    """An offload tier the hardware has, holding at least one KV block and at most the tier's capacity."""
    off = dep.kv_offload
    if off is None:
        return
    tier = getattr(spec.memory, off.tier, None)
    if tier is None:
        raise bad_input(origin.where("deployment.kv_offload.tier"),
                        f"{spec.id} has no '{off.tier}' memory tier in its hardware spec", off.tier)
    where = origin.where("deployment.kv_offload.capacity")
    if off.capacity < per_block:
        raise bad_input(where, f"holds no KV block: one block of {dep.block_size} tokens takes {size(per_block)} per "
                               f"device; give at least that", format_quantity(off.capacity, "bytes"))
    if off.capacity > tier.capacity:
        raise bad_input(where, f"is more than {spec.id}'s {off.tier} tier holds per device "
                               f"({size(tier.capacity)}, its hardware spec)", format_quantity(off.capacity, "bytes"))


def _check_swap(dep: Deployment, spec, origin: Origin) -> None:
    """Swap space within the host memory the hardware spec states per device."""
    host = spec.memory.host
    gib = dep.swap_space_gib
    explicit = "swap_space_gib" in dep.model_fields_set  # the default is capped at the host's memory (pools.py)
    if explicit and dep.preemption == "swap" and host is not None and gib * 2**30 > host.capacity:
        raise bad_input(origin.where("deployment.swap_space_gib"),
                        f"is more than {spec.id}'s host memory per device ({size(host.capacity)}, its hardware "
                        f"spec): give at most {host.capacity / 2**30:,.0f}", gib)


def _check_handover(dep: Deployment, origin: Origin) -> None:
    """The prefill pool's KV can reach the decode pool: each side's hardware has a link that spans
    both pools, or the scenario gives `disaggregation.link_bandwidth`."""
    from .shapes import pool_shapes

    dis = dep.disaggregation
    if dis is None or dis.link_bandwidth is not None:
        return
    shapes = pool_shapes(dep)
    devices, across = sum(s.devices for s in shapes), shapes[0].hw != shapes[1].hw
    for shape in shapes:
        links = load_hardware(shape.hw).links
        if links.scaleout or links.host:
            continue
        if links.scaleup is not None and not across and devices <= domain_size(load_hardware(shape.hw)):
            continue
        if links.scaleup is None:
            why = "has no `links:` block (scaleup, scaleout or host)"
        else:
            why = "has a scale-up link only, and the pools are not in one scale-up domain"
        keys = pool_keys(dep, shape.role)
        own = keys.hw.startswith("deployment.disaggregation.")
        where = origin.where(keys.hw) if own else origin.where("deployment.disaggregation", keys.hw)
        raise bad_input(where, f"the KV handover from the prefill pool ({shapes[0].hw}) to the decode pool "
                               f"({shapes[1].hw}) needs a link out of the {shape.role} pool's {shape.hw}, whose hwspec "
                               f"{why}: give deployment.disaggregation.link_bandwidth, or hardware with a scale-out "
                               f"or host link", shape.hw)


def check_cp_tokens(sc, origin: Origin) -> None:
    """Context parallelism splits a prompt over cp ranks, at least one token each: no pool's cp may
    exceed the shortest prompt a request class can draw (a trace's prompts are not checked)."""
    from .shapes import pool_shapes
    from .traffic import shortest

    if sc.trace is not None or not sc.classes:
        return
    prompt = min(shortest(c.input_len) for c in sc.classes)
    for shape in pool_shapes(sc.deployment):
        if shape.cp > prompt:
            key = pool_keys(sc.deployment, shape.role).cp
            raise bad_input(origin.where(key), f"context parallelism splits each prompt over {key.rsplit('.', 1)[-1]} "
                                               f"ranks, at least one token each, and the shortest prompt has "
                                               f"{prompt:,.0f} tokens: give at most {int(prompt):,}", shape.cp)
