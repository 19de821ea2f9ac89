"""A plan's layout lists checked when it is loaded: some TP x PP x CP on offer must be a valid
layout on some hardware type in the inventory, else one line names the key and the real reason:

    layouts.tp:          no degree splits the model's heads (the degrees that do are listed), or
                         every degree that does is beyond each hardware type's scale-up domain
    layouts.pp:          every degree is more stages than the model has layers
    layouts.cp, .pp:     a degree alone uses more than layouts.max_devices devices
    layouts.max_devices: the smallest valid layout uses more devices than that

The candidates (planner.candidates.layouts) apply the same rules layout by layout; a layout that
passes them and still leaves no room for KV is reported by the planner with the closest one."""

from __future__ import annotations

from ..errors import InfercastError, bad_input
from ..fit_advice import tensor_parallel_limit
from ..human import count
from ..phases import Layout, check_layout


def _splitting(model, degrees: list[int], layout) -> tuple[list[int], str]:
    """The degrees that `check_layout` accepts as `layout(degree)`, and the reason the first one
    refused gives (without its leading flag name)."""
    ok, why = [], ""
    for d in sorted(set(degrees)):
        try:
            check_layout(model, layout(d))
        except InfercastError as exc:
            why = why or str(exc).split(": ", 1)[-1]
            continue
        ok.append(d)
    return ok, why


def devices(n: int) -> str:
    """ "1 device", "64 devices"."""
    return f"{count(n)} device" + ("" if n == 1 else "s")


def check_layouts(spec, origin) -> None:
    """Refuse a plan none of whose layouts is valid on any of its hardware types (module doc)."""
    from ..catalog import load_hardware, load_model_spec

    model, lim = load_model_spec(spec.model, origin.where("model")), spec.layouts
    tps, why = _splitting(model, lim.tp, lambda d: Layout(d, 1, 1))
    if not tps:
        raise bad_input(origin.where("layouts.tp"), "no degree splits the model: " + why, lim.tp)
    pps, why = _splitting(model, lim.pp, lambda d: Layout(1, d, 1))
    if not pps:
        raise bad_input(origin.where("layouts.pp"), f"no degree fits: {why}", lim.pp)
    domains = {s.hw: tensor_parallel_limit(load_hardware(s.hw, origin.where(f"inventory.{k}.hw")))
               for k, s in enumerate(spec.inventory)}
    if tps[0] > max(domains.values()):
        reach = ", ".join(f"{hw}: {devices(n)}" for hw, n in domains.items())
        raise bad_input(origin.where("layouts.tp", "inventory"), "every degree that splits the model is beyond the "
                        f"scale-up domain that tensor parallelism stays inside ({reach})", lim.tp)
    for key, least, given in (("cp", min(lim.cp), lim.cp), ("pp", pps[0], lim.pp)):
        if least > lim.max_devices:
            raise bad_input(origin.where(f"layouts.{key}", "layouts.max_devices"),
                            f"every degree uses more than layouts.max_devices ({devices(lim.max_devices)})", given)
    smallest = Layout(tps[0], pps[0], min(lim.cp))
    if smallest.devices > lim.max_devices:
        raise bad_input(origin.where("layouts.max_devices"), f"the smallest valid layout on offer, {smallest.name()}, "
                        f"uses {devices(smallest.devices)}", lim.max_devices)
