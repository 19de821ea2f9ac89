"""The README's shell examples (`.venv/bin/infercast ...` lines in its bash blocks), as argv lists."""

from __future__ import annotations

import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
PREFIX = ".venv/bin/infercast"
MEASURES_THIS_MACHINE = (("calibrate",), ("validate", "e2e"), ("validate", "kernels"))  # minutes of real timing


def bash_blocks(text: str) -> list[str]:
    blocks, inside, lines = [], False, []
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if inside:
                blocks.append("\n".join(lines))
            inside, lines = (not inside and line.strip() == "```bash"), []
        elif inside:
            lines.append(line)
    return blocks


def examples(text: str | None = None) -> list[list[str]]:
    """Each example's arguments after the executable, continuation lines joined, comments dropped."""
    text = README.read_text() if text is None else text
    out = []
    for block in bash_blocks(text):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command, comments=True)
            if words and words[0] == PREFIX:
                out.append(words[1:])
    return out


def measures_this_machine(argv: list[str]) -> bool:
    return any(tuple(argv[: len(p)]) == p for p in MEASURES_THIS_MACHINE)
