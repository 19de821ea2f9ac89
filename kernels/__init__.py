"""Triton kernels, torch CPU references and the timing harness (needs the `kernels` extra)."""
