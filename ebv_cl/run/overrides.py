"""Command-line overrides of a run config: ``key.sub=value`` pairs applied to the parsed YAML.

Each value is parsed as a YAML scalar or flow collection (``epochs=2`` is an int, ``lr=1e-3`` a float,
``seeds=[0,1,2]`` a list, ``data_root=null`` null). A numeric path part indexes a list
(``strategies.0.method=der``); a missing mapping on the way is created, so the strict config check that follows
rejects any key that is not part of the schema.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

import yaml

from ..errors import ConfigError
from .catalogue import parse_yaml

__all__ = ["parse_override", "apply_overrides"]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into ``(["a", "b"], parsed value)``.

    Raises:
        ConfigError: if there is no ``=``, the key is empty, or the value is not valid YAML.
    """
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, _, raw = text.partition("=")
    parts = key.strip().split(".")
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"override {text!r} has an empty key part; expected key.sub=value")
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"override {text!r}: value {raw!r} is not a valid YAML scalar") from None
    return parts, value


def _set(node: Any, parts: list[str], value: Any, text: str) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"override {text!r}: {where!r} indexes a list of {len(node)} item(s); "
                    f"expected an index 0..{len(node) - 1}"
                )
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
        else:
            parent = ".".join(parts[:i]) or "top level"
            raise ConfigError(f"override {text!r}: {parent!r} is {node!r}, not a mapping or list")
        if last:
            node[key] = value
            return
        if isinstance(node, dict) and node.get(key) is None:
            node[key] = {}
        node = node[key]


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``data`` with every ``key.sub=value`` override applied in order.

    Raises:
        ConfigError: on a malformed override or a path through a value that is not a mapping or list.
    """
    out = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        _set(out, parts, value, text)
    return out
