"""Features of a dataset under a backbone in eval mode: the plain function the NCM and tau plugins share.

Avalanche datasets yield ``(x, y, task)`` tuples; plain datasets ``(x, y)``. The backbone runs under
``torch.no_grad()`` in eval mode (batch-norm statistics untouched) and its previous mode is restored.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = ["collect_features"]


@torch.no_grad()
def collect_features(
    backbone: nn.Module,
    datasets: Iterable[Dataset],
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features and integer labels of every sample of ``datasets``.

    Args:
        backbone: Maps a batch of inputs to ``(B, d)`` features.
        datasets: Datasets yielding ``(x, y, ...)``; empty ones are skipped.
        batch_size: Samples per forward pass.
        device: Where the backbone runs.

    Returns:
        ``(features, labels)``: float ``(n, d)`` and ``int64`` ``(n,)`` on the CPU (``n`` may be 0, then
        ``features`` has shape ``(0, 0)``).
    """
    was_training = backbone.training
    backbone.eval()
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    try:
        for ds in datasets:
            if len(ds) == 0:
                continue
            for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
                x, y = batch[0], batch[1]
                feats.append(backbone(x.to(device)).float().cpu())
                labels.append(torch.as_tensor(y).long().cpu())
    finally:
        backbone.train(was_training)
    if not feats:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(feats), torch.cat(labels)
