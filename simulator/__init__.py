"""infercast simulator core: specs, operator model, roofline, memory, cost and what-if.

Never imports torch, triton, kernels or validate.
"""

from .sweep import sweep
from .closed_form import WhatIfResult, whatif

__all__ = ["whatif", "sweep", "WhatIfResult"]
