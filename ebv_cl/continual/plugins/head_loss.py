"""The criterion adapter that trains with the head's own ``training_loss`` (EBV's sampled softmax).

Avalanche calls ``criterion(mb_output, mb_y)``; ``HeadLoss`` instead takes the features of that forward pass
(kept by ``HeadedModel`` in training mode), maps the class ids to head columns and returns
``head.training_loss(features, columns)``. In eval mode (no kept features) it is the cross-entropy of the
class-id logits, which is what Avalanche's loss metrics expect.
"""

from __future__ import annotations

import torch
from torch import nn

from ..strategies.model import HeadedModel

__all__ = ["HeadLoss"]


class HeadLoss:
    """``criterion(logits, targets)`` computed by the head of ``model``.

    Args:
        model: The ``HeadedModel`` whose forward produced ``logits``.
    """

    def __init__(self, model: HeadedModel) -> None:
        if not isinstance(model, HeadedModel):
            raise TypeError(f"model must be a HeadedModel, got {type(model).__name__}")
        self.model = model

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The head's training loss of the last training forward, or cross-entropy in eval mode.

        Args:
            logits: ``(B, num_outputs)`` logits by class id (used in eval mode only).
            targets: ``(B,)`` integer class ids.
        """
        feats = self.model.last_features
        if feats is None or feats.shape[0] != targets.shape[0]:
            return nn.functional.cross_entropy(logits, targets.long())
        head = self.model.head
        columns = head.columns_of(targets).to(feats.device)
        return head.training_loss(feats, columns)

    def __repr__(self) -> str:
        return f"HeadLoss(head={type(self.model.head).__name__})"
