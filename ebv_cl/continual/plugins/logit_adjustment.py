"""The logit-adjusted loss (Menon et al., ICLR 2021) for any head, with priors counted from the stream.

``LogitAdjustedLoss`` is both the criterion and a plugin. As a plugin it counts the class ids of every training
mini-batch of the current experience (replayed samples included: the distribution the model actually trains
on) and restarts the count at each experience, so the prior is that of the experience's training batches: the
new classes are frequent, the replayed old ones rare. As the criterion it returns the cross-entropy of the
head's logits (all columns, ``head(features)``) plus ``tau * log(prior)`` of each column: frequent classes
must win by a margin, which removes the bias towards them at test time (where classes are balanced). This works
for cosine heads (EBV) as for linear ones. It replaces the head's own ``training_loss`` (EBV's sampled softmax,
margin and label smoothing are not applied); in eval mode it is plain cross-entropy, as ``HeadLoss``.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ..strategies.model import HeadedModel
from .head_loss import read_output

__all__ = ["LogitAdjustedLoss"]


class LogitAdjustedLoss(SupervisedPlugin):
    """``criterion(logits, targets)``: the head's cross-entropy with logits shifted by ``tau * log(prior)``.

    Args:
        model: The ``HeadedModel`` whose forward produced the logits.
        tau: The adjustment's strength (>= 0; 0 is plain cross-entropy of the head's logits).

    Attributes:
        counts: Training samples of each class id in the current experience's batches so far.
    """

    def __init__(self, model: HeadedModel, tau: float) -> None:
        super().__init__()
        if not isinstance(model, HeadedModel):
            raise TypeError(f"model must be a HeadedModel, got {type(model).__name__}")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or tau < 0:
            raise ValueError(f"tau must be a number >= 0, got {tau!r}")
        self.model = model
        self.tau = float(tau)
        self.counts = torch.zeros(0, dtype=torch.float64)

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Restart the count: the prior is that of this experience's training batches."""
        self.counts = torch.zeros(0, dtype=torch.float64)

    def before_forward(self, strategy: Any, **kwargs: Any) -> None:
        """Count the class ids of the training mini-batch about to be used."""
        if strategy.is_training:
            self.observe(strategy.mb_y)

    def observe(self, targets: torch.Tensor) -> None:
        """Add a batch of class ids to the counts."""
        y = targets.detach().long().cpu()
        if y.numel() == 0:
            return
        size = max(int(y.max()) + 1, self.counts.numel())
        counts = torch.zeros(size, dtype=torch.float64)
        counts[: self.counts.numel()] = self.counts
        self.counts = counts + torch.bincount(y, minlength=size).double()

    def log_prior(self, class_ids: torch.Tensor) -> torch.Tensor:
        """``log`` of each class id's share of the counts (a class not counted yet counts as one sample)."""
        ids = class_ids.long().cpu()
        counts = torch.ones(ids.numel(), dtype=torch.float64)
        inside = ids < self.counts.numel()
        counts[inside] = self.counts[ids[inside]].clamp_min(1.0)
        return torch.log(counts / counts.sum()).float()

    def __call__(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The adjusted cross-entropy of a training forward's ``output`` (features or class-id logits, by the
        model's ``training_output``, as ``HeadLoss`` reads it), or cross-entropy in eval mode.

        Raises:
            ValueError: if ``output`` does not have the shape the model's mode gives.
        """
        model, targets = self.model, targets.long()
        kind, value = read_output(model, output, targets.shape[0])
        if kind == "logits":
            return nn.functional.cross_entropy(value, targets)
        head = model.head
        logits = head(value) if kind == "features" else value
        columns = head.columns_of(targets).to(output.device)
        adjust = self.tau * self.log_prior(model.class_ids()).to(output.device)
        return nn.functional.cross_entropy(logits + adjust, columns)

    def __repr__(self) -> str:
        return f"LogitAdjustedLoss(tau={self.tau})"
