"""Kernel tests: on a machine without CUDA the Triton kernels run under the interpreter.

TRITON_INTERPRET must be set before triton (and the kernel modules) are imported, so torch is
asked first; without torch or triton (no `kernels` extra) each test module skips itself
(pytest.importorskip at its top).
"""

import importlib.util
import os

import pytest

HAS_CUDA = False
if importlib.util.find_spec("torch") is not None:
    import torch

    HAS_CUDA = torch.cuda.is_available()
    if not HAS_CUDA:
        os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture
def device():
    """Where the kernels run: the GPU when there is one, else the CPU under the interpreter."""
    return "cuda" if HAS_CUDA else "cpu"


@pytest.fixture
def tol():
    """(atol, rtol) against the fp32-computed torch reference, by dtype."""
    import torch

    table = {torch.float32: (1e-4, 1e-4), torch.float16: (1e-2, 1e-2), torch.bfloat16: (5e-2, 5e-2)}
    return lambda dtype: dict(zip(("atol", "rtol"), table[dtype]))
