"""Read a YAML config file into a pydantic model; every failure is one InfercastError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InfercastError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InfercastError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InfercastError(f"{path}:{where}: malformed YAML: {problem}") from None


def load_model(path: Path, cls: type[M], data: Any = None) -> M:
    """Validate `data` (read from `path` when None) as `cls`; errors name the file and key path."""
    if data is None:
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise InfercastError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise InfercastError(f"{path}: {describe_validation_error(exc, cls)}") from None


def describe_validation_error(exc: ValidationError, cls: type[BaseModel]) -> str:
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo shows as unknown + missing
    err = errors[0]
    loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
    key = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = allowed_keys(cls, loc[:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key '{key}'{hint}"
    if err["type"] == "missing":
        return f"missing key '{key}'"
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"key '{key}': {msg}{more}"


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and ("[" in part or part in ("str", "list", "float", "int"))


def allowed_keys(cls: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names of the nested model at `loc`, following model fields and dict values."""
    target: Any = cls
    skip_key = False  # the previous field was a dict: this part is one of its keys
    for part in loc:
        if skip_key:
            skip_key = False
            continue
        fields = getattr(target, "model_fields", None)
        if fields is None or part not in fields:
            return []
        annotation = fields[part].annotation
        skip_key = _is_dict(annotation)
        target = _inner_model(annotation)
        if target is None:
            return []
    fields = getattr(target, "model_fields", None)
    return list(fields) if fields else []


def _is_dict(annotation: Any) -> bool:
    if getattr(annotation, "__origin__", None) is dict:
        return True
    return any(_is_dict(a) for a in getattr(annotation, "__args__", ()))


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside Optional[...] / dict[str, ...] annotations, or the annotation itself."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
