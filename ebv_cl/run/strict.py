"""Strict conversion of plain mappings (parsed YAML) into typed dataclasses.

``from_mapping(cls, data, section=...)`` builds the dataclass ``cls`` from ``data``: unknown keys, missing
required keys (all of them in one message) or a value of the wrong type raise ``ConfigError`` naming the key,
its section, the bad value and what was expected (the valid keys, or the expected type). Nested dataclasses, ``list[...]``, ``dict[str, ...]``
and ``X | None`` fields are converted recursively; an ``int`` is accepted where a ``float`` is expected, a
``bool`` never where a number is.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, TypeVar, Union

from ..errors import ConfigError

__all__ = ["from_mapping", "to_mapping", "type_name"]

T = TypeVar("T")


def type_name(tp: Any) -> str:
    """A short human name for a type annotation (``int``, ``list of int``, ``float or null``)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any value"
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[1])}" if args else "mapping"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert_union(tp: Any, value: Any, where: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    errors: list[ConfigError] = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(arg, value, where)
        except ConfigError as exc:
            errors.append(exc)
    containers = [a for a in args if dataclasses.is_dataclass(a) or typing.get_origin(a) in (list, dict)]
    if len(errors) == 1 and containers:
        raise errors[0]  # the precise message from inside the mapping or list
    raise ConfigError(f"{where} = {value!r}: expected {type_name(tp)}, got {type(value).__name__}")


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, where)
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, section=where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} = {value!r}: expected {type_name(tp)}, got {type(value).__name__}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} = {value!r}: expected {type_name(tp)}, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: key {k!r} must be a string, got {type(k).__name__}")
            out[k] = _convert(args[1], v, f"{where}.{k}") if args else v
        return out
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} = {value!r}: expected float, got {type(value).__name__}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} = {value!r}: expected int, got {type(value).__name__}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{where} = {value!r}: expected {tp.__name__}, got {type(value).__name__}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {where}")  # internal: a schema mistake, not user input


def from_mapping(cls: type[T], data: Any, *, section: str) -> T:
    """Build the dataclass ``cls`` from the mapping ``data``, rejecting unknown keys and wrong types.

    Args:
        cls: A dataclass type whose fields carry real (not string) annotations after ``get_type_hints``.
        data: The parsed YAML mapping (``None`` means an empty mapping).
        section: Where ``data`` sits in the config (``"top level"``, ``"bank"``, ``"strategies[1]"``), for
            error messages.

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: on a non-mapping, an unknown key (the message lists the valid keys), a missing required
            key, or a value of the wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section} must be a mapping, got {data!r} ({type(data).__name__})")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    valid = ", ".join(fields)
    unknown = [key for key in data if key not in fields]
    if unknown:
        keys = ", ".join(repr(k) for k in unknown)
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} {keys} in {section}; valid keys: {valid}")
    required = {name: f for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = [name for name in required if name not in data]
    if missing:
        keys = ", ".join(repr(name) for name in missing)
        expected = "; ".join(f"{name}: {type_name(hints[name])}" for name in missing)
        raise ConfigError(f"missing key{'s' if len(missing) > 1 else ''} {keys} in {section} (expected {expected}; "
                          "`ebv-cl config --schema` lists every key)")
    kwargs = {}
    for name in fields:
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], name if section == "top level" else f"{section}.{name}")
    return cls(**kwargs)


def to_mapping(obj: Any) -> Any:
    """The plain (YAML/JSON-ready) form of a dataclass instance, recursively; the inverse of ``from_mapping``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, list):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj
