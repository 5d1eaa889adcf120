"""Progress bars while a strategy trains: a small plugin that Avalanche calls back (duck-typed, so ``run/``
does not import Avalanche), showing one tqdm bar per epoch over its minibatches.

The bars go to stderr and switch themselves off when stderr is not a terminal. The plugin drops its bar when
pickled, so a strategy that carries it can still be checkpointed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProgressBars"]


class ProgressBars:
    """One tqdm bar per training epoch, labelled with the strategy, seed, experience and epoch.

    Args:
        label: Shown in front of every bar (``"ebv+der seed 0"``).
        enabled: ``False`` shows nothing; ``True`` shows bars when stderr is a terminal.
    """

    supports_distributed = True  # Avalanche's flag: safe under torchrun (it only draws bars)

    def __init__(self, label: str, *, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self._bar: Any = None

    def before_training_epoch(self, strategy: Any, **_: Any) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        loader = getattr(strategy, "dataloader", None)
        try:
            total = len(loader) if loader is not None else None
        except TypeError:
            total = None
        clock = getattr(strategy, "clock", None)
        exp = getattr(clock, "train_exp_counter", 0) + 1
        epoch = getattr(clock, "train_exp_epochs", 0) + 1
        self._bar = tqdm(total=total, desc=f"{self.label} exp {exp} epoch {epoch}", leave=False, disable=None,
                         unit="batch", dynamic_ncols=True)

    def after_training_iteration(self, strategy: Any, **_: Any) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def after_training_epoch(self, strategy: Any, **_: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_bar"] = None
        return state
