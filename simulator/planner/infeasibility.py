"""One-line reasons why no replica plan exists: a class nobody can serve, or an inventory too small.

The inventory reasons come from the elastic model in `simulator.planner.mip` (slack on every
inventory row, minimise the devices beyond inventory, then the devices used): each hardware type
whose use exceeds its count is reported as "needs N <hw>, inventory has M".
"""

from __future__ import annotations

from ..human import count


def unservable_reasons(cands, classes, disaggregation: bool) -> list[str]:
    """Classes (with demand) that no co-located candidate, nor a prefill plus a decode pool, can serve."""
    reasons = []
    for k in classes:
        roles = {c.role for c in cands if c.cap(k) > 0}
        if "both" in roles or (disaggregation and {"prefill", "decode"} <= roles):
            continue
        why = f"class {k}: no candidate meets its SLOs"
        if disaggregation and roles:
            missing = "decode" if "prefill" in roles else "prefill"
            why += f" (only {roles.pop()} pools qualify, no {missing} pool)"
        reasons.append(why)
    return reasons


def overuse_reasons(device_use: dict[str, int], inventory: dict[str, int | None], unlimited: int) -> list[str]:
    """Hardware types the elastic plan uses beyond their inventory, largest shortfall first; an
    unlimited type counts as `unlimited` devices (the ceiling on one run)."""
    have = {hw: unlimited if inventory.get(hw) is None else inventory[hw] for hw in device_use}
    over = [(use - have[hw], hw, use) for hw, use in device_use.items() if use > have[hw]]
    over.sort(key=lambda t: (-t[0], t[1]))
    return [f"needs {count(use)} {hw}, inventory has "
            + (f"{count(have[hw])}" if inventory.get(hw) is not None else f"no count, capped at {count(unlimited)}")
            for _, hw, use in over]
