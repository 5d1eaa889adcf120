"""Keep the caller's model object as the strategy's model when a method replaces it by a copy.

Avalanche's ``GDumbPlugin`` restarts every experience from a deep copy of the initial model and assigns it to
``strategy.model``; a caller holding the model returned by the factory would then evaluate a stale network.
This plugin, placed right after ``GDumbPlugin``, moves the fresh copy's backbone and head into the original
``HeadedModel`` and puts that object back into the strategy (the optimizer is updated afterwards by
Avalanche's ``check_model_and_optimizer``, which maps parameters by name).
"""

from __future__ import annotations

from typing import Any

from avalanche.core import SupervisedPlugin

from ..strategies.model import HeadedModel, find_headed_model

__all__ = ["KeepModelPlugin"]


class KeepModelPlugin(SupervisedPlugin):
    """Restores ``model`` as ``strategy.model`` after another plugin swapped in a copy.

    Args:
        model: The ``HeadedModel`` the caller holds.
    """

    def __init__(self, model: HeadedModel) -> None:
        super().__init__()
        if not isinstance(model, HeadedModel):
            raise TypeError(f"model must be a HeadedModel, got {type(model).__name__}")
        self.model = model

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        """Adopt the replacement's modules into the original model, then restore the original."""
        if strategy.model is not self.model:
            self.model.adopt(find_headed_model(strategy.model))
            strategy.model = self.model.to(strategy.device)
