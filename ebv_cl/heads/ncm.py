"""``ncm``: the nearest-class-mean classifier over L2-normalised features (decoupling paper, section 4).

Each class keeps a running sum and count of its L2-normalised features (buffers, so they are saved with the
state dict); ``update_means`` adds a batch, ``reset_means`` forgets. The logits are the cosine similarities
between the normalised features and the normalised class means, so the head has no trainable parameter. A
class that has no feature yet gets the logit ``-inf`` (it is never predicted); if no class has a mean,
``forward`` raises ``NotBuiltError``.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from ..errors import NotBuiltError
from .base import UNBOUNDED_CLASSES, ClassifierHead

__all__ = ["NCMHead"]


class NCMHead(ClassifierHead):
    """Cosine similarity to incrementally updated class means.

    Args:
        in_features: Size of the backbone features.
        temperature: Divides the cosine logits in ``training_loss`` only (a prototype loss); > 0.
        max_classes: The most classes allowed (unbounded by default).
        check_finite: Check inputs for NaN/inf on every call.
    """

    kind = "ncm"

    def __init__(
        self,
        in_features: int,
        *,
        temperature: float = 0.1,
        max_classes: int | None = None,
        check_finite: bool = False,
    ) -> None:
        super().__init__(in_features, capacity=max_classes or UNBOUNDED_CLASSES, check_finite=check_finite)
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.register_buffer("sums", torch.zeros(0, self.in_features, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(0, dtype=torch.float64))

    def _grow(self, old: int, new: int) -> None:
        pad = torch.zeros(new - old, self.in_features, dtype=self.sums.dtype, device=self.sums.device)
        self.sums = torch.cat([self.sums[:old], pad])
        self.counts = torch.cat([self.counts[:old], pad[:, 0]])
        return None

    @property
    def means(self) -> torch.Tensor:
        """The class means of the normalised features, ``(num_classes, in_features)`` float64 (NaN rows: no data)."""
        return self.sums / self.counts[:, None]

    @torch.no_grad()
    def update_means(self, features: torch.Tensor, labels: Iterable[Any] | torch.Tensor) -> None:
        """Add a batch of features ``(B, in_features)`` with their class labels (already added) to the means.

        Raises:
            ValueError: if the number of labels is not B.
            UnknownLabelError: if a label was never added.
        """
        x = self._check_features(features)
        cols = self.columns_of(labels).to(x.device)
        if cols.numel() != x.shape[0]:
            raise ValueError(f"labels must have one entry per feature row ({x.shape[0]}), got {cols.numel()}")
        x = nn.functional.normalize(x.to(self.sums.dtype), dim=1)
        with self._add_lock:  # sums and counts in step with each other and with a concurrent add_classes
            cols = cols.to(self.sums.device)
            self.sums.index_add_(0, cols, x.to(self.sums.device))
            self.counts.index_add_(0, cols, torch.ones(cols.shape, dtype=self.counts.dtype, device=cols.device))

    @torch.no_grad()
    def reset_means(self, labels: Iterable[Any] | None = None) -> None:
        """Forget the means of ``labels`` (of every class when ``None``)."""
        if labels is None:
            self.sums.zero_()
            self.counts.zero_()
            return
        cols = self.columns_of(labels).to(self.sums.device)
        self.sums[cols] = 0
        self.counts[cols] = 0

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        have = self.counts > 0
        if not bool(have.any()):
            raise NotBuiltError("NCMHead has no class mean yet; call update_means(features, labels) first")
        # The normalised mean is the normalised sum, so no division by the count is needed.
        centers = nn.functional.normalize(self.sums, dim=1).to(x.dtype)
        logits = nn.functional.normalize(x, dim=1) @ centers.T
        return logits.masked_fill(~have, float("-inf"))

    def training_loss(self, features: torch.Tensor, target_columns: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of ``cosine / temperature``; every target class must have a mean.

        Raises:
            NotBuiltError: if a target class has no mean yet.
        """
        targets = self._check_targets(target_columns, self._check_features(features).shape[0])
        self._check_means(targets)
        return nn.functional.cross_entropy(self(features) / self.temperature, targets)

    def loss_from_logits(self, logits: torch.Tensor, target_columns: torch.Tensor) -> torch.Tensor:
        """``training_loss`` from the cosine logits ``forward(features)`` already formed."""
        targets = self._check_targets(target_columns, self._check_logits(logits).shape[0])
        self._check_means(targets)
        return nn.functional.cross_entropy(logits / self.temperature, targets)

    def _check_means(self, targets: torch.Tensor) -> None:
        missing = targets[self.counts[targets] == 0]
        if missing.numel():
            labels = self.labels_of(missing.unique()[:5])
            raise NotBuiltError(f"NCMHead has no mean for target class(es) {labels}; call update_means first")
