"""The kernels lower through Triton's real compiler to sm_90 cubins (no GPU needed; ~25 s)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")


@pytest.mark.slow
def test_every_kernel_compiles_for_hopper():
    env = dict(os.environ, TRITON_INTERPRET="0")
    run = subprocess.run([sys.executable, "-m", "kernels.aot", "90"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count(" ok ") == 20, run.stdout
