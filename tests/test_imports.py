"""The simulator core never pulls in torch, triton, kernels or validate (design.md)."""

import subprocess
import sys


def test_simulator_imports_no_kernel_stack():
    code = ("import sys, simulator, simulator.cli, simulator.closed_form; "
            "print(' '.join(m for m in ('torch', 'triton', 'kernels', 'validate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_simulator_sources_name_no_forbidden_package():
    from pathlib import Path

    import simulator

    for path in Path(simulator.__file__).parent.rglob("*.py"):
        text = path.read_text()
        for name in ("torch", "triton", "kernels", "validate"):
            assert f"import {name}" not in text and f"from {name}" not in text, (path, name)
