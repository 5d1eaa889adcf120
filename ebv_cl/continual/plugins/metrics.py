"""``HeadEpochAccuracy``: Avalanche's training accuracy per epoch for a ``HeadedModel`` in either training mode.

Avalanche's ``EpochAccuracy`` takes the argmax of ``strategy.mb_output``. When the model returns features in
training (``training_output="features"``, see ``HeadedModel``) that argmax would be a feature index, not a
class; this metric scores the features through the head first (``HeadedModel.logits_of_output``, no
gradient), so the figure is right in both modes. It costs one forward pass of the head per logged step.
"""

from __future__ import annotations

from typing import Any

from avalanche.evaluation.metrics.accuracy import EpochAccuracy

from ..strategies.model import find_headed_model

__all__ = ["HeadEpochAccuracy"]


class HeadEpochAccuracy(EpochAccuracy):
    """The accuracy over one training epoch, logged as ``Top1_Acc_Epoch`` (as Avalanche's)."""

    def update(self, strategy: Any) -> None:
        """Count the correct predictions of the last training step."""
        logits = find_headed_model(strategy.model).logits_of_output(strategy.mb_output.detach())
        self._metric.update(logits, strategy.mb_y)
