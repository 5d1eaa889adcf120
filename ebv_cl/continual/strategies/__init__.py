"""Continual-learning strategies on Avalanche 0.6 with two axes: a head (``ebv_cl.heads``) under a method.

``build_strategy(head=..., method=..., backbone=..., n_classes_total=..., ...)`` returns a stock Avalanche
strategy and the model to evaluate (``model(x).argmax(1)`` is the class id). ``parse_strategy_name`` reads
``"ebv+der"`` or a short head name; ``check_combination`` rejects meaningless pairs; ``METHODS`` is the
method registry (each entry carries its options and traits), ``HEAD_PLUGINS`` the heads' Avalanche plugins.
Names resolve lazily, so importing ``HeadedModel`` or validating a ``StrategySpec`` does not import Avalanche.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "HeadedModel": ".model",
    "PAD_LOGIT": ".model",
    "find_headed_model": ".model",
    "head_param_count": ".model",
    "predict_logits": ".model",
    "method_names": ".names",
    "default_method": ".names",
    "head_names": ".names",
    "check_combination": ".names",
    "parse_strategy_name": ".names",
    "resolve_strategy_name": ".names",
    "strategy_name": ".names",
    "StrategySpec": ".spec",
    "TrainingSettings": ".training",
    "METHODS": ".methods",
    "MethodParts": ".methods",
    "list_methods": ".methods",
    "method_defaults": ".methods",
    "HEAD_PLUGINS": ".head_plugins",
    "build_strategy": ".factory",
    "build_from_spec": ".factory",
    "silent_evaluator": ".factory",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
