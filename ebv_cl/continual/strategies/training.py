"""``TrainingSettings``: how a strategy trains (epochs, batches, optimizer, replay memory), with one set of defaults.

The run config (``ebv_cl.run.config.RunConfig``, shared by every strategy of a run) and one strategy's settings
(``StrategySpec``) both derive from it, so a field, its default and its check live here once. Values are
checked on construction; a bad one is a ``ConfigError`` naming the key, the value and what was expected. This
module does not import Avalanche.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

from ...errors import ConfigError

__all__ = ["OPTIMIZERS", "TrainingSettings", "check_int", "check_number", "training_fields"]

OPTIMIZERS = ("sgd", "adam")


def check_int(value: Any, name: str, *, low: int) -> int:
    """``value`` as an int ``>= low``.

    Raises:
        ConfigError: ``"<name> = <value>: expected an int >= <low>"`` on another type (a bool included) or a
            smaller value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < low:
        raise ConfigError(f"{name} = {value!r}: expected an int >= {low}")
    return int(value)


def check_number(value: Any, name: str, *, low: float = 0.0, strict: bool = False, below: float | None = None
                 ) -> float:
    """``value`` as a finite float ``>= low`` (``> low`` when ``strict``; ``< below`` when given).

    Raises:
        ConfigError: naming ``name``, the value and the expected range.
    """
    bad = isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
    number = 0.0 if bad else float(value)
    if bad or (number <= low if strict else number < low) or (below is not None and number >= below):
        bound = f"{'>' if strict else '>='} {low}" + (f" and < {below}" if below is not None else "")
        raise ConfigError(f"{name} = {value!r}: expected a finite number {bound}")
    return number


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """How a strategy trains; the run config and ``StrategySpec`` share these fields and defaults.

    Attributes:
        epochs: Epochs per experience.
        batch_size: Training mini-batch size.
        eval_batch_size: Evaluation mini-batch size.
        optimizer: ``sgd`` or ``adam``.
        lr: Learning rate.
        momentum: SGD momentum, in ``[0, 1)`` (ignored by Adam).
        weight_decay: L2 weight decay.
        buffer_size: Replay memory in samples, the same for every strategy that keeps one (methods without a
            replay memory ignore it; ``0`` makes a short strategy name mean ``naive`` instead of ``replay``).
    """

    epochs: int = 1
    batch_size: int = 32
    eval_batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    buffer_size: int = 200

    def __post_init__(self) -> None:
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass normalisation
        for name in ("epochs", "batch_size", "eval_batch_size"):
            put(name, check_int(getattr(self, name), name, low=1))
        put("buffer_size", check_int(self.buffer_size, "buffer_size", low=0))
        put("lr", check_number(self.lr, "lr", strict=True))
        put("momentum", check_number(self.momentum, "momentum", below=1.0))
        put("weight_decay", check_number(self.weight_decay, "weight_decay"))
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer = {self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")

    def training(self) -> dict[str, Any]:
        """These settings alone, as keyword arguments (``TrainingSettings(**s.training())`` rebuilds them)."""
        return {name: getattr(self, name) for name in training_fields()}


def training_fields() -> tuple[str, ...]:
    """The names of ``TrainingSettings``' fields, in order."""
    return tuple(f.name for f in fields(TrainingSettings))
