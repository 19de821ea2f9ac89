"""Find and load what ships: hardware specs (hwspecs/*.yaml) and model architectures
(workloads/models/*.yaml). An ID or a path to a user's own file is accepted everywhere; a
reference that is neither (empty, a NUL byte, a novel, a shipped ID spelled as a file) gets one
line saying which it looked like and what exists."""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .config_io import Given, exists, load_model, one_line
from .errors import InfercastError, bad_input, show
from .hf_config import load_hf_config
from .hwspec import HardwareSpec
from .modelspec import ModelSpec

LOCAL_ID = "local"
MAX_REF_CHARS = 4096  # PATH_MAX on Linux


def data_dir(package: str) -> Path:
    """Directory of a data package (works from a checkout and after `pip install .`)."""
    return Path(str(resources.files(package)))


def check_ref(ref: str, flag: str, noun: str) -> str:
    """`ref` when it can name an ID or a file: not empty, no NUL byte, not longer than a path may be."""
    if not ref.strip():
        shipped = "shipped hardware" if noun == "hardware" else f"a shipped {noun}"
        raise bad_input(flag, f"must name {shipped} or a file", ref)
    if "\x00" in ref:
        raise bad_input(flag, "must not contain a NUL byte", ref)
    if len(ref) > MAX_REF_CHARS:
        raise bad_input(flag, f"must be at most {MAX_REF_CHARS:,} characters", Given(f"{len(ref):,} characters"))
    return ref


def shipped_or_path(ref: str, package: str, what: str) -> Path:
    """A YAML file by path, or by the ID of one shipped in a data package (`what`: the argument's
    name for errors, e.g. SCENARIO)."""
    check_ref(ref, what, what.lower())
    path = Path(ref)
    if not path.suffix:
        path = data_dir(package) / f"{ref}.yaml"
        if not (exists(path) and path.is_file()):
            raise InfercastError(f"{what}: unknown {what.lower()} {show(ref)} (shipped: {', '.join(_ids(package))})")
    if not exists(path):
        raise bad_input(what, "no such file" + _shipped_hint(ref, _ids(package)), ref)
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
    return InfercastError(f"{flag}: unknown {noun} {show(given)}{hint} (see `infercast list {listing}`)")


def _shipped_hint(ref: str, known: list[str]) -> str:
    """'; the shipped ID is 'h100-sxm'' when a missing file is named like a shipped one."""
    stem = Path(ref).stem
    return f"; the shipped ID is '{stem}' (give it without a folder or .yaml)" if stem in known else ""


def _looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml", ".json")) or "/" in ref


def _load_shipped(ref: str, cls, package: str, noun: str, listing: str, flag: str, known: list[str]):
    """A YAML file by path, or a shipped one by ID (whose `id` key must match its file name)."""
    check_ref(ref, flag, noun)
    if _looks_like_path(ref):
        if not exists(ref) and (hint := _shipped_hint(ref, known)):
            raise bad_input(flag, "no such file" + hint, ref)
        return load_model(Path(ref), cls)
    path = data_dir(package) / f"{ref}.yaml"
    if not (exists(path) and path.is_file()):
        raise _unknown(noun, listing, flag, ref, known)
    spec = load_model(path, cls)
    if spec.id != ref:
        raise InfercastError(f"{path}: key 'id' is '{spec.id}', must match the file name '{ref}'")
    return spec


def _unknown(noun: str, listing: str, flag: str, ref: str, known: list[str]) -> InfercastError:
    """An unknown ID; one of the other kind (a model given as --hw) says so."""
    other = model_ids() if noun == "hardware" else hardware_ids()
    if ref in other:
        kind, right = ("a model", "--model") if noun == "hardware" else ("hardware", "--hw")
        return InfercastError(f"{flag}: '{ref}' is {kind}, not {noun}: give it as {right} "
                              f"(see `infercast list {listing}`)")
    return unknown_id_error(noun, listing, flag, ref, known)


@lru_cache(maxsize=64)
def load_hardware(ref: str, flag: str = "--hw") -> HardwareSpec:
    """A hardware spec by ID (`h100-sxm`, `local`) or by path to a YAML file."""
    if ref == LOCAL_ID:
        from .local_device import detect_local

        return detect_local()
    spec = _load_shipped(ref, HardwareSpec, "hwspecs", "hardware", "hw", flag, hardware_ids())
    if _looks_like_path(ref):
        _own_id(spec, Path(ref))
    return spec


def _own_id(spec: HardwareSpec, path: Path) -> None:
    """A user's hardware file must not take a shipped ID or `local`: a calibration profile is found
    by ID, so the copy would be costed with that device's fitted profile and reported under its
    name. The shipped file itself, given by path, is that device."""
    if spec.id not in hardware_ids():
        return
    shipped = data_dir("hwspecs") / f"{spec.id}.yaml"
    if spec.id != LOCAL_ID and exists(shipped) and shipped.resolve() == path.resolve():
        return
    what = "this machine's ID" if spec.id == LOCAL_ID else "the ID of shipped hardware"
    raise bad_input(f"{one_line(path)}: key 'id'", f"is {what}, whose calibration profile is found by that ID; "
                    "give your file an ID of its own (e.g. 'my-" + spec.id + "')", spec.id)


@lru_cache(maxsize=64)
def load_model_spec(ref: str, flag: str = "--model") -> ModelSpec:
    """A model by ID (`llama-3.1-8b`), by path to a YAML file, or to a HuggingFace config.json (or its folder)."""
    check_ref(ref, flag, "model")
    if ref.endswith(".json") or (exists(ref) and Path(ref).is_dir()):
        return load_hf_config(Path(ref))
    return _load_shipped(ref, ModelSpec, "workloads.models", "model", "models", flag, model_ids())
