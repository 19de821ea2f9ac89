"""What produced a result: infercast's version, for the `config` block every output carries."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def infercast_version() -> str:
    """The installed distribution's version; a source checkout that was never installed says so."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("infercast")
    except PackageNotFoundError:
        return "unknown (not installed)"
