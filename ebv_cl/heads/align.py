"""Feature-classifier alignment: adapt a head's trainable part on a few samples plus stored class means.

In NC-FSCIL (Yang et al., ICLR 2023) the backbone is frozen after the base session and the classifier is a fixed
simplex ETF; each new session fine-tunes only the projection between them, on the session's few samples and the
stored mean features of the old classes, so the new classes move onto their fixed vectors while the old ones
stay on theirs. ``align_head`` is that step for any head whose classifier is fixed and whose projection is
trained (``ebv``, ``hadamard``): full-batch steps of Adam on the head's own ``training_loss`` over the given
features, every other parameter untouched, the head in eval mode (batch-norm statistics of the base session
are kept). It needs no Avalanche.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from .base import ClassifierHead

__all__ = ["align_head"]


def align_head(
    head: ClassifierHead,
    features: torch.Tensor,
    labels: Iterable[Any] | torch.Tensor,
    *,
    steps: int,
    lr: float,
    weight_decay: float = 0.0,
) -> list[float]:
    """Fine-tune the head's trainable parameters on ``features`` with its ``training_loss``.

    Args:
        head: The head (every label already added); its mode is restored afterwards.
        features: ``(n, in_features)`` features: the session's samples and the stored class means.
        labels: Their ``n`` class labels.
        steps: Full-batch Adam steps (>= 0; 0 leaves the head unchanged).
        lr: Adam's learning rate (> 0).
        weight_decay: Adam's weight decay (>= 0).

    Returns:
        The loss before each step (``steps`` values).

    Raises:
        ValueError: on a bad ``steps``, ``lr`` or ``weight_decay``, or a label count that is not ``n``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not float(lr) > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not float(weight_decay) >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    x = head._check_features(features).detach()
    cols = head.columns_of(labels).to(x.device)
    if cols.numel() != x.shape[0]:
        raise ValueError(f"labels must have one entry per feature row ({x.shape[0]}), got {cols.numel()}")
    params = [p for p in head.parameters() if p.requires_grad]
    if steps == 0 or not params:
        return []
    optimizer = torch.optim.Adam(params, lr=float(lr), weight_decay=float(weight_decay))
    was_training = head.training
    head.eval()  # normalisation layers keep their base-session statistics; gradients still flow
    losses = []
    try:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = head.training_loss(x, cols)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    finally:
        head.train(was_training)
        optimizer.zero_grad(set_to_none=True)
    return losses
