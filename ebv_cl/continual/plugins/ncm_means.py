"""Keep the NCM head's class means computed from the data the strategy has, with the backbone in eval mode.

Two callbacks over one plain function (``refresh_means``):

- ``before_training_exp``: the means of the classes about to be trained on (the experience's training data,
  or GDumb's buffer) and of the buffered classes, from the current backbone. The NCM head's training loss (a
  prototype loss over cosine logits) needs a mean for every target class.
- ``after_training_exp``: the means of the experience's classes from all their training samples, and of the
  older classes from the replay buffer, recomputed with the trained backbone. Classes with no data left (no
  buffer) keep the means they had.

A class present in the primary data (the experience) takes its mean from that data only, so samples that
Avalanche has just copied into the buffer are not counted twice.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import Dataset

from ..strategies.model import find_headed_model
from .buffers import replay_buffers
from .features import collect_features

__all__ = ["NCMMeansPlugin", "refresh_means"]


def refresh_means(
    model: torch.nn.Module,
    primary: Sequence[Dataset],
    secondary: Sequence[Dataset],
    *,
    batch_size: int,
    device: torch.device | str,
) -> list[int]:
    """Recompute the NCM means of every class found in ``primary`` or ``secondary``.

    Args:
        model: A model containing a ``HeadedModel`` with an ``ncm`` head.
        primary: Datasets whose classes take their means from them alone.
        secondary: Datasets (replay buffers) used for the classes absent from ``primary``.
        batch_size: Samples per forward pass.
        device: Where the backbone runs.

    Returns:
        The class ids whose means were recomputed, sorted.
    """
    headed = find_headed_model(model)
    f1, y1 = collect_features(headed.backbone, primary, batch_size=batch_size, device=device)
    f2, y2 = collect_features(headed.backbone, secondary, batch_size=batch_size, device=device)
    if y2.numel():
        keep = ~torch.isin(y2, y1)
        f2, y2 = f2[keep], y2[keep]
    parts = [(f, y) for f, y in ((f1, y1), (f2, y2)) if y.numel()]
    if not parts:
        return []
    feats = torch.cat([f for f, _ in parts])
    labels = torch.cat([y for _, y in parts])
    head = headed.head
    known = torch.tensor([int(c) for c in head.classes], dtype=torch.long)
    mask = torch.isin(labels, known)
    feats, labels = feats[mask], labels[mask]
    classes = labels.unique().tolist()
    head.reset_means(classes)
    head.update_means(feats.to(device), labels)
    return sorted(int(c) for c in classes)


class NCMMeansPlugin(SupervisedPlugin):
    """Refreshes the class means of the ``ncm`` head before and after each training experience."""

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Means of the classes about to be trained on, from the adapted training data and the buffers."""
        data = strategy.adapted_dataset
        primary = [data.eval() if hasattr(data, "eval") else data]
        refresh_means(strategy.model, primary, replay_buffers(strategy),
                      batch_size=strategy.eval_mb_size, device=strategy.device)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Means from the experience's data (its classes) and the buffers (older classes)."""
        primary = [strategy.experience.dataset.eval()]
        refresh_means(strategy.model, primary, replay_buffers(strategy),
                      batch_size=strategy.eval_mb_size, device=strategy.device)
