"""``StrategySpec``: the typed, strictly validated settings of one strategy (a head under a method).

Every option has a default here; an unknown option, a wrong type or an out-of-range value is a
``ConfigError`` naming the option, the bad value and what is valid. ``to_dict`` gives the resolved settings
(defaults filled in) for the run's saved config. This module does not import Avalanche.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ...errors import ConfigError
from ...heads import HEADS
from .names import check_combination

__all__ = ["METHOD_OPTIONS", "HEAD_PLUGIN_OPTIONS", "BUFFER_METHODS", "OPTIMIZERS", "StrategySpec"]

METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "naive": {},
    "replay": {"storage": "class_balanced", "batch_size_mem": None, "finetune_epochs": 0, "finetune_lr": None,
               "logit_adjustment": 0.0},
    "der": {"alpha": 0.1, "beta": 0.5, "batch_size_mem": None},
    "lwf": {"alpha": 1.0, "temperature": 2.0},
    "icarl": {"fixed_memory": True},
    "gdumb": {},
    "fscil": {"base_epochs": None, "schedule": "cosine", "session_epochs": 0, "session_lr": None,
              "session_update": "auto", "align_steps": 100, "align_lr": 0.001},
}
"""Each method's options and their defaults (``batch_size_mem=None``: DER uses ``min(batch_size,
buffer_size)``, replay uses ``batch_size``; replay's ``finetune_epochs`` > 0 adds a class-balanced
fine-tune of the head after each experience (``finetune_lr=None``: the run's ``lr``) and ``logit_adjustment``
> 0 trains with the logit-adjusted loss of that strength; ``fscil``: ``base_epochs=None`` is the run's ``epochs``,
``session_lr=None`` is a hundredth of the run's ``lr``, ``session_update="auto"`` the head's default)."""

HEAD_PLUGIN_OPTIONS: dict[str, dict[str, Any]] = {
    "tau_norm": {"holdout_fraction": 0.1, "holdout_max_per_class": 50, "taus": None},
}
"""Head options consumed by the head's plugin rather than the head's constructor."""

BUFFER_METHODS = frozenset({"replay", "der", "icarl", "gdumb"})
"""Methods that keep a replay memory of ``buffer_size`` samples (the others ignore ``buffer_size``)."""

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step", "none")
STORAGES = ("class_balanced", "reservoir")


def _number(value: Any, name: str, *, low: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if low is not None and (value <= low if strict else value < low):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")
    return value


def _integer(value: Any, name: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if int(value) < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _merge(given: Mapping[str, Any] | None, defaults: Mapping[str, Any], *, what: str) -> dict[str, Any]:
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        valid = ", ".join(sorted(defaults)) or "none"
        raise ConfigError(f"unknown option(s) {unknown} for {what}; valid options: {valid}")
    return {**defaults, **given}


def _check_method_options(method: str, opts: dict[str, Any]) -> dict[str, Any]:
    where = f"method {method!r}"
    if "storage" in opts and opts["storage"] not in STORAGES:
        raise ConfigError(f"storage of {where} must be one of {', '.join(STORAGES)}, got {opts['storage']!r}")
    if opts.get("batch_size_mem") is not None:
        opts["batch_size_mem"] = _integer(opts["batch_size_mem"], f"batch_size_mem of {where}", low=1)
    for key in ("beta",):
        if key in opts:
            opts[key] = _number(opts[key], f"{key} of {where}", low=0.0)
    if "alpha" in opts:
        a = opts["alpha"]
        opts["alpha"] = ([_number(v, f"alpha[] of {where}", low=0.0) for v in a] if isinstance(a, (list, tuple))
                         else _number(a, f"alpha of {where}", low=0.0))
    if "temperature" in opts:
        opts["temperature"] = _number(opts["temperature"], f"temperature of {where}", low=0.0, strict=True)
    if method == "replay":
        opts["finetune_epochs"] = _integer(opts["finetune_epochs"], f"finetune_epochs of {where}", low=0)
        if opts["finetune_lr"] is not None:
            opts["finetune_lr"] = _number(opts["finetune_lr"], f"finetune_lr of {where}", low=0.0, strict=True)
        opts["logit_adjustment"] = _number(opts["logit_adjustment"], f"logit_adjustment of {where}", low=0.0)
    if method == "fscil":
        _check_fscil_options(opts, where)
    if "fixed_memory" in opts and not isinstance(opts["fixed_memory"], bool):
        raise ConfigError(f"fixed_memory of {where} must be true or false, got {opts['fixed_memory']!r}")
    return opts


def _check_fscil_options(opts: dict[str, Any], where: str) -> None:
    if opts["base_epochs"] is not None:
        opts["base_epochs"] = _integer(opts["base_epochs"], f"base_epochs of {where}", low=1)
    opts["session_epochs"] = _integer(opts["session_epochs"], f"session_epochs of {where}", low=0)
    opts["align_steps"] = _integer(opts["align_steps"], f"align_steps of {where}", low=0)
    opts["align_lr"] = _number(opts["align_lr"], f"align_lr of {where}", low=0.0, strict=True)
    if opts["session_lr"] is not None:
        opts["session_lr"] = _number(opts["session_lr"], f"session_lr of {where}", low=0.0, strict=True)
    if opts["schedule"] not in SCHEDULES:
        raise ConfigError(f"schedule of {where} must be one of {', '.join(SCHEDULES)}, got {opts['schedule']!r}")


def _head_keywords(head: str) -> list[str]:
    return list(HEADS.options(head))


@dataclass(frozen=True)
class StrategySpec:
    """One strategy's settings; validated (and defaults filled in) on construction.

    Args:
        head: A head of ``ebv_cl.heads`` (``ebv``, ``fc``, ``ncm``, ``tau_norm``, ``hadamard``, ``angular``).
        method: ``naive``, ``replay``, ``der``, ``lwf``, ``icarl``, ``gdumb`` or ``fscil`` (the few-shot
            class-incremental protocol: base session, then frozen-backbone session updates).
        n_classes_total: The number of class ids of the stream (outputs are indexed ``0 .. n-1``).
        head_options: Keyword arguments of the head (see its class) plus, for ``tau_norm``,
            ``holdout_fraction``, ``holdout_max_per_class`` and ``taus``.
        method_options: The method's options (``METHOD_OPTIONS``).
        buffer_size: Replay memory in samples; required (>= 1) by ``BUFFER_METHODS``, ignored by the others.
        epochs: Training epochs per experience.
        batch_size: Training mini-batch size.
        eval_batch_size: Mini-batch size for evaluation and feature extraction.
        lr: Learning rate.
        optimizer: ``sgd`` or ``adam``.
        momentum: SGD momentum (ignored by Adam).
        weight_decay: L2 weight decay.
        device: Where the model trains.
        seed: Seeds the head's initialisation, EBV's negative sampling and tau's held-out split.

    Raises:
        ConfigError: on any unknown name or option, wrong type or out-of-range value, or a rejected pair.
    """

    head: str
    method: str
    n_classes_total: int
    head_options: Mapping[str, Any] = field(default_factory=dict)
    method_options: Mapping[str, Any] = field(default_factory=dict)
    buffer_size: int = 0
    epochs: int = 1
    batch_size: int = 32
    eval_batch_size: int = 256
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        check_combination(self.head, self.method)
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass normalisation
        put("n_classes_total", _integer(self.n_classes_total, "n_classes_total", low=1))
        put("buffer_size", _integer(self.buffer_size, "buffer_size", low=0))
        if self.method in BUFFER_METHODS and self.buffer_size < 1:
            raise ConfigError(f"method {self.method!r} keeps a replay memory: buffer_size must be >= 1, got 0")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            put(name, _integer(getattr(self, name), name, low=1))
        put("seed", _integer(self.seed, "seed", low=0))
        put("lr", _number(self.lr, "lr", low=0.0, strict=True))
        put("momentum", _number(self.momentum, "momentum", low=0.0))
        put("weight_decay", _number(self.weight_decay, "weight_decay", low=0.0))
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        put("device", str(self.device))
        opts = _merge(self.method_options, METHOD_OPTIONS[self.method], what=f"method {self.method!r}")
        put("method_options", _check_method_options(self.method, opts))
        if self.method == "fscil":
            from ..sessions import resolve_session_update

            resolve_session_update(self.head, opts["session_update"])
        extras = HEAD_PLUGIN_OPTIONS.get(self.head, {})
        valid = dict.fromkeys(_head_keywords(self.head), "(head default)") | extras
        given = dict(self.head_options or {})
        _merge(given, valid, what=f"head {self.head!r}")
        put("head_options", given)

    @property
    def name(self) -> str:
        """The strategy's name, ``"head+method"``."""
        return f"{self.head}+{self.method}"

    def head_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``create_head`` (the plugin-only options removed)."""
        extras = HEAD_PLUGIN_OPTIONS.get(self.head, {})
        return {k: v for k, v in self.head_options.items() if k not in extras}

    def plugin_options(self) -> dict[str, Any]:
        """The head's plugin options with their defaults (empty for heads without such options)."""
        extras = HEAD_PLUGIN_OPTIONS.get(self.head, {})
        return {**extras, **{k: v for k, v in self.head_options.items() if k in extras}}

    def to_dict(self) -> dict[str, Any]:
        """The resolved settings as a JSON-ready dict (with ``name``)."""
        out = asdict(self)
        out["head_options"] = dict(self.head_options)
        out["method_options"] = dict(self.method_options)
        return {"name": self.name, **out}
