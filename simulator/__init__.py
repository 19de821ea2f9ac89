"""infercast simulator core: specs, operator model, roofline, memory, cost and what-if.

Never imports torch, triton, kernels or validate.
"""

from .sweep import sweep
from .closed_form import WhatIfResult, whatif

__all__ = ["whatif", "sweep", "WhatIfResult", "plan"]


def plan(spec, **updates):
    """A capacity plan (simulator.planner): `spec` is a planner.spec.PlanSpec, a plan file or a
    shipped plan ID; keyword arguments replace its fields. Returns a planner.plan.PlanResult
    (planner.output.to_dict for the JSON keys)."""
    from .planner.plan import plan as run
    from .planner.spec import PlanSpec, load_plan

    spec = spec if isinstance(spec, PlanSpec) else load_plan(spec)
    return run(PlanSpec.model_validate({**spec.model_dump(), **updates}) if updates else spec)
