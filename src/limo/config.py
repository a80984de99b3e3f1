"""Dataclass configs from nested dicts (YAML): `build`, `--set a.b=value` overrides, YAML loading, config hashes.

Every stage/command config is a dataclass validated in `__post_init__`. `build(cls, data, where)` turns a dict into
one, recursing into nested dataclass fields, and names the unknown or bad key and where it was found (for an
optional nested config, the inner reason, not "does not fit X | None"). limo.recipes builds a whole recipe file
from these pieces.
"""

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from limo.errors import LimoError

T = TypeVar("T")


def replace_fields(cfg: T, changes: dict[str, Any], where: str = "config") -> T:
    """A copy of dataclass `cfg` with `changes` applied and validated as a recipe would be."""
    return build(type(cfg), {**to_dict(cfg), **changes}, where)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_yaml(path: str | Path) -> dict[str, Any]:
    from limo.io import read_text

    path = Path(path)
    if not path.exists():
        raise LimoError(f"{path}: recipe not found")
    text = read_text(path, what="recipe")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        reason = getattr(e, "problem", None) or e
        raise LimoError(f"{where}: invalid YAML: {_one_line(reason)}; fix the recipe file") from e
    if not isinstance(data, dict):
        raise LimoError(f"{path}: a recipe must be a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (value parsed as YAML: numbers, bools, lists) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise LimoError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise LimoError(f"--set {key}: '{part}' is not a mapping")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            reason = _one_line(getattr(e, "problem", None) or e)
            raise LimoError(f"--set {item}: the value is not valid YAML ({reason}); quote it or fix it") from None
    return data


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise LimoError(f"{where}: expected a mapping of {tp.__name__} settings, got {value!r}")
        return build(tp, value, where)
    if origin in (list, tuple) and not isinstance(value, (list, tuple)):
        raise LimoError(f"{where}: expected a list, got {value!r}")
    if origin is dict and not isinstance(value, dict):
        raise LimoError(f"{where}: expected a mapping, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        arms = [arg for arg in args if arg is not type(None)]
        errors = []
        for arg in arms:
            try:
                return _convert(arg, value, where)
            except (LimoError, TypeError, ValueError) as e:
                errors.append(e)
        if len(arms) == 1 or dataclasses.is_dataclass(arms[0]) and isinstance(value, dict):
            raise LimoError(str(errors[0])) from None  # the real reason, not "does not fit X | None"
        raise LimoError(f"{where}: {value!r} does not fit {_type_name(tp)}")
    if origin is list and isinstance(value, list):
        (arg,) = typing.get_args(tp) or (Any,)
        return [_convert(arg, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        _, varg = typing.get_args(tp) or (Any, Any)
        return {k: _convert(varg, v, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise LimoError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise LimoError(f"{where}: expected a number, got {value!r}") from None
    if tp in (int, str, bool) and not isinstance(value, tp):
        raise LimoError(f"{where}: expected {tp.__name__}, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise LimoError(f"{where}: expected int, got {value!r}")
    return value


def _type_name(tp: Any) -> str:
    return " | ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(tp))


def build(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass `cls` from `data`, naming unknown keys and bad values by their dotted path."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise LimoError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise LimoError(f"{where}: {e}") from e
    except ValueError as e:
        raise LimoError(f"{where}: {e}") from e


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_hash(obj: Any) -> str:
    """Stable short hash of a config (dataclass or plain data)."""
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
