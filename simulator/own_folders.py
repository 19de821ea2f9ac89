"""infercast's own folders, which no run writes into: its packages (a checkout's, or
site-packages'), the folder that holds them, and the running Python's prefix."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGES = ("simulator", "validate", "kernels", "hwspecs", "workloads")  # pyproject's top-level packages


def package_folders() -> list[Path]:
    """The folders infercast's packages were imported from (a checkout, or site-packages)."""
    out = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        for loc in (spec.submodule_search_locations or []) if spec else []:
            out.append(Path(loc).resolve())
    return out


def package_folder_holding(path: Path) -> Path | None:
    """The package folder `path` lies in, else None."""
    full = Path(path).expanduser().resolve()
    return next((p for p in package_folders() if p in full.parents), None)


def protected_roots() -> list[Path]:
    """Folders no run writes into: the one that holds infercast's packages (a checkout's root, with
    its tests/, benchmarks/, .venv/, .git/; or site-packages) and the running Python's prefix (the
    virtual environment or installation)."""
    roots = {p.parent for p in package_folders()} | {Path(sys.prefix).resolve()}
    return sorted(roots)
