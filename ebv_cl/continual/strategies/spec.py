"""``StrategySpec``: the typed, strictly validated settings of one strategy (a head under a method).

A spec is the head, the method, their options and the ``TrainingSettings`` (epochs, batches, optimizer, replay
memory); what belongs to the stream or the machine (the class count, the seed, the device) is given when the
strategy is built. Every option has a default; an unknown option, a wrong type or an out-of-range value is a
``ConfigError`` naming the option, the bad value and what is valid. The method's options and traits come from
its ``METHODS`` entry, the head's from ``HEADS`` and ``HEAD_PLUGINS``: nothing here names a method or a head.
``to_dict`` gives the resolved settings (defaults filled in). This module does not import Avalanche.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ...errors import ConfigError
from ...heads import HEADS
from .head_plugins import plugin_defaults, plugin_options
from .methods import METHODS, method_options
from .names import check_combination
from .training import TrainingSettings

__all__ = ["StrategySpec"]


@dataclass(frozen=True, kw_only=True)
class StrategySpec(TrainingSettings):
    """One strategy's settings; validated (and defaults filled in) on construction.

    Args:
        head: A head of ``ebv_cl.heads`` (``list_heads()``).
        method: A method of ``METHODS`` (``list_methods()``).
        head_options: Keyword arguments of the head (see its class) plus the options of its plugins
            (``head_plugins.plugin_defaults(head)``; ``tau_norm``: ``holdout_fraction``, ``holdout_max_per_class``
            and ``taus``).
        method_options: The method's options (``methods.method_defaults(method)``).
        epochs, batch_size, eval_batch_size, optimizer, lr, momentum, weight_decay, buffer_size: see
            ``TrainingSettings``; a method with the ``buffer`` trait needs ``buffer_size >= 1``.

    Raises:
        ConfigError: on any unknown name or option, wrong type or out-of-range value, or a rejected pair.
    """

    head: str
    method: str
    head_options: Mapping[str, Any] = field(default_factory=dict)
    method_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_combination(self.head, self.method)
        super().__post_init__()
        if METHODS.traits(self.method).get("buffer") and self.buffer_size < 1:
            raise ConfigError(f"method {self.method!r} keeps a replay memory: buffer_size must be >= 1, got "
                              f"{self.buffer_size}")
        object.__setattr__(self, "method_options", method_options(self.method, self.head, self.method_options))
        given = dict(self.head_options or {})
        extras = plugin_defaults(self.head)
        HEADS.check_options(self.head, given, extra=extras)
        plugin_options(self.head, {k: v for k, v in given.items() if k in extras})
        object.__setattr__(self, "head_options", given)

    @property
    def name(self) -> str:
        """The strategy's name, ``"head+method"``."""
        return f"{self.head}+{self.method}"

    def head_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``create_head`` (the plugin-only options removed)."""
        extras = plugin_defaults(self.head)
        return {k: v for k, v in self.head_options.items() if k not in extras}

    def plugin_options(self) -> dict[str, Any]:
        """The head's plugin options with their defaults (empty for heads without such options)."""
        extras = plugin_defaults(self.head)
        return plugin_options(self.head, {k: v for k, v in self.head_options.items() if k in extras})

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings as a JSON-ready dict (with ``name``)."""
        out = asdict(self)
        out["head_options"] = dict(self.head_options)
        out["method_options"] = dict(self.method_options)
        return {"name": self.name, **out}
