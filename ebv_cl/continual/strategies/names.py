"""Strategy names: a head under a method (``ebv+der``), the short head-only names, and the allowed pairs.

``parse_strategy_name`` splits ``"head+method"`` (or a mapping ``{head: ..., method: ...}``); a bare head name
(``"ebv"``) leaves the method open, and ``resolve_strategy_name`` gives it the documented default: ``replay``
when the run has a replay buffer (``buffer_size > 0``), else ``naive``. ``check_combination`` rejects the
pairs that make no sense, saying why (a method's ``rejects`` trait). This module does not import Avalanche.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...errors import ConfigError
from ...heads import list_heads
from .methods import METHODS

__all__ = [
    "head_names",
    "default_method",
    "method_names",
    "check_combination",
    "parse_strategy_name",
    "resolve_strategy_name",
    "strategy_name",
]

def head_names() -> tuple[str, ...]:
    """The heads a strategy can use: every head of the ``ebv_cl.heads`` registry."""
    return tuple(list_heads())


def method_names() -> tuple[str, ...]:
    """The training methods, in registration order (every entry of ``METHODS``)."""
    return tuple(METHODS.in_order())


def default_method(buffer_size: int) -> str:
    """The method of a short strategy name: ``replay`` when the run keeps a replay memory, else ``naive``."""
    return "replay" if buffer_size > 0 else "naive"


def _check_name(value: Any, *, kind: str, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"unknown {kind} {value!r}; expected one of: {', '.join(valid)}")
    return value


def check_combination(head: str, method: str) -> None:
    """Raise if ``head`` under ``method`` is not a meaningful strategy.

    Raises:
        ConfigError: on an unknown head or method, or a rejected pair (the message says why).
    """
    _check_name(head, kind="head", valid=head_names())
    _check_name(method, kind="method", valid=method_names())
    reason = METHODS.traits(method).get("rejects", {}).get(head)
    if reason is not None:
        raise ConfigError(f"strategy '{head}+{method}' is not supported: {reason}")


def parse_strategy_name(name: str | Mapping[str, Any]) -> tuple[str, str | None]:
    """Split a strategy name into ``(head, method)``; ``method`` is ``None`` for a short name.

    Args:
        name: ``"ebv+der"``, ``"ebv"`` or a mapping ``{"head": "ebv", "method": "der"}`` (method optional).

    Raises:
        ConfigError: on an unknown head or method, a malformed name, unknown mapping keys, or a rejected pair.
    """
    if isinstance(name, Mapping):
        unknown = sorted(set(name) - {"head", "method"})
        if unknown:
            raise ConfigError(f"unknown strategy key(s) {unknown}; expected 'head' and optionally 'method'")
        if "head" not in name:
            raise ConfigError(f"strategy mapping {dict(name)!r} needs a 'head'")
        head, method = name["head"], name.get("method")
    elif isinstance(name, str):
        parts = name.split("+")
        if len(parts) > 2 or not all(parts):
            raise ConfigError(f"strategy name {name!r} must be 'head' or 'head+method', e.g. 'ebv+der'")
        head, method = parts[0], (parts[1] if len(parts) == 2 else None)
    else:
        raise ConfigError(f"strategy must be a name like 'ebv+der' or a mapping, got {type(name).__name__}")
    _check_name(head, kind="head", valid=head_names())
    if method is not None:
        check_combination(head, method)
    return head, method


def resolve_strategy_name(name: str | Mapping[str, Any], *, buffer_size: int) -> tuple[str, str]:
    """``(head, method)`` with a short name's method filled in: ``replay`` if ``buffer_size > 0`` else ``naive``.

    Raises:
        ConfigError: as ``parse_strategy_name``.
    """
    head, method = parse_strategy_name(name)
    if method is None:
        method = default_method(buffer_size)
        check_combination(head, method)
    return head, method


def strategy_name(head: str, method: str) -> str:
    """The canonical name of a strategy, ``"head+method"``."""
    return f"{head}+{method}"
