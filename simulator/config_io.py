"""Read config files (YAML, JSON) into pydantic models; every failure is one InfercastError line.

`read_text_file` is the one way a user's file is read: it must be a regular file (not a directory,
a device such as /dev/zero, or a fifo, which would hang), under a size limit (at most limit + 1
bytes are read), and UTF-8 text. `read_yaml` and `load_model` build on it; the config.json and
trace readers call it with their own limits.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InfercastError, bad_input, show
from .limits import MAX_CONFIG_BYTES
from .units import format_quantity

M = TypeVar("M", bound=BaseModel)
# Values one YAML document may expand to: a 16 MiB file without aliases holds at most ~8M
MAX_YAML_NODES = 10_000_000
# libyaml's parser when PyYAML has it: ~6x faster, and it caps nesting depth itself
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Given(str):
    """A description of what was given, shown as is (not quoted) by errors.show."""

    def __repr__(self) -> str:
        return str(self)


def one_line(text: object, limit: int = 200) -> str:
    """`text` with control characters and line breaks made visible, cut to `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_text_file(path: Path | str, what: str, max_bytes: int) -> str:
    """The text of the regular file `path` (a `what`: 'YAML file', 'trace'), at most `max_bytes`
    bytes of UTF-8; anything else is one line naming the file."""
    where = check_regular_file(path, what, max_bytes)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # a file that grew since stat is still bounded
    except OSError as exc:
        raise bad_input(where, f"cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    if len(data) > max_bytes:
        raise _too_big(where, what, max_bytes, None)
    return _decode(data, where, what)


def check_regular_file(path: Path | str, what: str, max_bytes: int) -> str:
    """Refuse, before opening it, what is not a regular file of at most `max_bytes` (a reader that
    streams a large file calls this, then bounds its own reads); returns the path for messages."""
    where = one_line(path)
    try:
        info = os.stat(path)
    except ValueError:  # an embedded NUL byte
        raise bad_input(where, f"a {what} path must not contain NUL bytes") from None
    except OSError as exc:
        raise bad_input(where, f"cannot read the {what} ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(info.st_mode):
        raise bad_input(where, f"a {what} must be a file", Given("a directory"))
    if not stat.S_ISREG(info.st_mode):
        raise bad_input(where, f"a {what} must be a regular file", Given("a device, fifo or socket"))
    if info.st_size > max_bytes:
        raise _too_big(where, what, max_bytes, info.st_size)
    return where


def exists(path: Path | str) -> bool:
    """Whether `path` names anything; False for a name too long or holding a NUL byte."""
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True


def _too_big(where: str, what: str, max_bytes: int, size: int | None) -> InfercastError:
    got = f" (got {size:,} bytes)" if size is not None else ""
    return InfercastError(f"{where}: a {what} must be at most {format_quantity(max_bytes, 'bytes')} "
                          f"({max_bytes:,} bytes){got}")


def _decode(data: bytes, where: str, what: str) -> str:
    if b"\x00" in data:
        raise bad_input(where, f"a {what} must be text", Given(f"binary data, a NUL byte at offset {data.index(0):,}"))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_input(where, f"a {what} must be UTF-8 text",
                        Given(f"byte 0x{data[exc.start]:02x} at offset {exc.start:,}")) from None


def read_yaml(path: Path | str, what: str = "YAML file") -> Any:
    """The parsed contents of a YAML file (safe_load: no tags that run code)."""
    text = read_text_file(path, what, MAX_CONFIG_BYTES)
    where = one_line(path)
    try:
        return _load_bounded(text, where)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
        raise InfercastError(f"{where}:{at} malformed YAML: {one_line(problem)}") from None
    except RecursionError:
        raise bad_input(where, "malformed YAML: nested too deeply") from None


def _load_bounded(text: str, where: str) -> Any:
    """yaml.safe_load, refusing a document whose aliases expand past MAX_YAML_NODES (a "billion
    laughs" file is a few lines that any code walking its lists would take hours over)."""
    loader = _SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, where)
        if size > MAX_YAML_NODES:
            raise bad_input(where, f"a YAML file must expand to at most {MAX_YAML_NODES:,} values; "
                                   "its aliases (*name) repeat too much", Given(f"{size:,} values"))
        return loader.construct_document(node)
    finally:
        loader.dispose()


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _expanded_size(node: yaml.Node, memo: dict[int, int], where: str = "") -> int:
    """Values in `node` with every alias expanded: each anchored node counted once per use. A key
    written twice in one mapping is refused (YAML forbids it; PyYAML would keep the last), and so
    is a plain number written base 60 (YAML 1.1's `1:00:00`, which PyYAML reads as 3600)."""
    if id(node) in memo:
        return memo[id(node)]
    size = 1
    if isinstance(node, yaml.ScalarNode) and node.tag in _NUMBER_TAGS and ":" in node.value:
        raise InfercastError(f"{where}: line {node.start_mark.line + 1}: {one_line(node.value, 40)} is a YAML 1.1 "
                             "base-60 number (1:00:00 reads as 3600); write the number itself, or quote it as text")
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo, where) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in seen:
                raise InfercastError(f"{where}: line {key.start_mark.line + 1}: key {one_line(key.value, 60)!r} "
                                     f"appears twice in one mapping (first on line {seen[key.value]})")
            if isinstance(key, yaml.ScalarNode):
                seen[key.value] = key.start_mark.line + 1
            size += _expanded_size(key, memo, where) + _expanded_size(value, memo, where)
    memo[id(node)] = size
    return size


def load_model(path: Path | str, cls: type[M], data: Any = None) -> M:
    """Validate `data` (read from `path` when None) as `cls`; errors name the file and key path."""
    if data is None:
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise bad_input(one_line(path), "must hold a mapping of keys at the top level", Given(describe_top(data)))
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise InfercastError(f"{one_line(path)}: {describe_validation_error(exc, cls)}") from None
    except RecursionError:
        raise bad_input(one_line(path), "nested too deeply") from None


def describe_top(data: Any) -> str:
    """What a file held instead of a mapping: 'an empty file', 'a list', 'a str'."""
    if data is None:
        return "an empty file"
    names = {str: "a string", list: "a list", bool: "true or false", int: "a number", float: "a number"}
    return names.get(type(data), f"a {type(data).__name__}")


def describe_validation_error(exc: ValidationError, cls: type[BaseModel], rename: dict[str, str] | None = None) -> str:
    """The first problem of `exc` on one line: key path, what is allowed, the value given.
    `rename` maps a first key to the name the user wrote (config.json's 'num_hidden_layers')."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo shows as unknown + missing
    err = errors[0]
    loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
    if loc and rename and loc[0] in rename:
        loc[0] = rename[loc[0]]
    key = one_line(".".join(loc), 100) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = allowed_keys(cls, loc[:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key '{key}'{hint}"
    if err["type"] == "missing":
        return f"missing key '{key}'"
    msg = one_line(err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, "))
    given = err.get("input")
    got = f" (got {show(given)})" if loc and _is_scalar(given) else ""
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{f'key {key!r}: ' if loc else ''}{msg}{got}{more}"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


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
