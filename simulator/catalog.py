"""Find and load what ships: hardware specs (hwspecs/*.yaml) and model architectures
(workloads/models/*.yaml). An ID or a path to a user's own file is accepted everywhere."""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .config_io import load_model
from .errors import InfercastError
from .hf_config import load_hf_config
from .hwspec import HardwareSpec
from .modelspec import ModelSpec

LOCAL_ID = "local"


def data_dir(package: str) -> Path:
    """Directory of a data package (works from a checkout and after `pip install .`)."""
    return Path(str(resources.files(package)))


def shipped_or_path(ref: str, package: str, what: str) -> Path:
    """A YAML file by path, or by the ID of one shipped in a data package (`what`: the argument's
    name for errors, e.g. SCENARIO)."""
    path = Path(ref)
    if not path.suffix:
        path = data_dir(package) / f"{ref}.yaml"
        if not path.exists():
            raise InfercastError(f"{what}: unknown {what.lower()} '{ref}' (shipped: {', '.join(_ids(package))})")
    if not path.exists():
        raise InfercastError(f"{what}: {path} does not exist")
    return path


def _ids(package: str) -> list[str]:
    return sorted(p.stem for p in data_dir(package).glob("*.yaml"))


def hardware_ids() -> list[str]:
    return _ids("hwspecs") + [LOCAL_ID]


def model_ids() -> list[str]:
    return _ids("workloads.models")


def unknown_id_error(noun: str, listing: str, flag: str, given: str, known: list[str]) -> InfercastError:
    """'--hw: unknown hardware 'h100'; did you mean h100-sxm, h100-pcie? (see `infercast list hw`)'"""
    near = difflib.get_close_matches(given.lower(), known, n=3, cutoff=0.5)
    near += [k for k in known if given.lower() in k and k not in near][: 3 - len(near)]
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    return InfercastError(f"{flag}: unknown {noun} '{given}'{hint} (see `infercast list {listing}`)")


def _looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml", ".json")) or "/" in ref


def _load_shipped(ref: str, cls, package: str, noun: str, listing: str, flag: str, known: list[str]):
    """A YAML file by path, or a shipped one by ID (whose `id` key must match its file name)."""
    if _looks_like_path(ref):
        return load_model(Path(ref), cls)
    path = data_dir(package) / f"{ref}.yaml"
    if not path.exists():
        raise unknown_id_error(noun, listing, flag, ref, known)
    spec = load_model(path, cls)
    if spec.id != ref:
        raise InfercastError(f"{path}: key 'id' is '{spec.id}', must match the file name '{ref}'")
    return spec


@lru_cache(maxsize=64)
def load_hardware(ref: str, flag: str = "--hw") -> HardwareSpec:
    """A hardware spec by ID (`h100-sxm`, `local`) or by path to a YAML file."""
    if ref == LOCAL_ID:
        from .local_device import detect_local

        return detect_local()
    return _load_shipped(ref, HardwareSpec, "hwspecs", "hardware", "hw", flag, hardware_ids())


@lru_cache(maxsize=64)
def load_model_spec(ref: str, flag: str = "--model") -> ModelSpec:
    """A model by ID (`llama-3.1-8b`), by path to a YAML file, or to a HuggingFace config.json (or its folder)."""
    if ref.endswith(".json") or Path(ref).is_dir():
        return load_hf_config(Path(ref))
    return _load_shipped(ref, ModelSpec, "workloads.models", "model", "models", flag, model_ids())
