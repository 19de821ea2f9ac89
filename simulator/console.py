"""A rich console that stays readable when piped (120 columns instead of 80)."""

from __future__ import annotations

import sys


def console(width: int = 120):
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else width)
