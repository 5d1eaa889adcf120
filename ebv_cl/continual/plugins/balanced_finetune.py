"""A class-balanced fine-tune of the head after each experience (Decoupling's cRT, Kang et al., ICLR 2020).

After the experience's training, the backbone is frozen: its features (eval mode, computed once) of the
experience's training data and of the replay memory as it was before this experience's update (the old
classes) are the fine-tune set. Only the head's parameters are then trained for ``epochs`` passes of
class-balanced batches (each batch drawn with replacement, every class equally likely), with a fresh optimizer
of the run's kind, by the head's own ``training_loss``. For EBV the head's parameters are its projection (and
batch norm); for FC and tau-norm the classifier weights; the ``ncm`` head has none and is left as it is.

The plugin must run before the replay plugin's ``after_training_exp`` (which adds the experience to the memory)
and before tau-norm's calibration (which must see the fine-tuned weights): the ``replay`` method puts it first.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ..strategies.model import find_headed_model
from .buffers import replay_buffers
from .features import collect_features

__all__ = ["BalancedFinetunePlugin", "balanced_finetune"]


def balanced_finetune(
    head: nn.Module,
    features: torch.Tensor,
    columns: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> int:
    """Train ``head`` on fixed features with class-balanced batches; returns the number of steps taken.

    Args:
        head: A ``ClassifierHead``; its ``training_loss`` is minimised (the head is in training mode meanwhile,
            then back to its previous mode).
        features: ``(n, in_features)`` float features (no gradient flows to their source).
        columns: ``(n,)`` int64 head columns of the samples.
        epochs: Passes; one pass is ``ceil(n / batch_size)`` batches.
        batch_size: Samples per batch, drawn with replacement with probability ``1 / (classes * count(class))``.
        optimizer: Over the head's parameters.
        generator: Seeds the draws.

    Raises:
        ValueError: on mismatched shapes, ``epochs < 0`` or ``batch_size < 1``.
    """
    if features.ndim != 2 or columns.shape != (features.shape[0],):
        raise ValueError(f"features (n, d) and columns (n,) must match, got {tuple(features.shape)} and "
                         f"{tuple(columns.shape)}")
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    n = features.shape[0]
    if n == 0 or epochs == 0:
        return 0
    columns = columns.long()
    counts = torch.bincount(columns.cpu())
    weights = (1.0 / counts.clamp_min(1).double())[columns.cpu()]
    steps = epochs * math.ceil(n / batch_size)
    was_training = head.training
    head.train()
    try:
        for _ in range(steps):
            idx = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
            idx = idx.to(features.device)
            loss = head.training_loss(features.index_select(0, idx), columns.index_select(0, idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        head.train(was_training)
    return steps


class BalancedFinetunePlugin(SupervisedPlugin):
    """Fine-tunes the head on class-balanced batches of the experience's data and the replay memory.

    Args:
        epochs: Passes over the fine-tune set per experience (>= 1).
        batch_size: Samples per fine-tune batch.
        make_optimizer: Builds a fresh optimizer over a list of parameters (the run's kind and learning rate).
        seed: Seeds the batch draws (experience ``i`` of the stream uses ``seed + i``).

    Attributes:
        history: ``(samples, classes, steps)`` of each fine-tune.
    """

    def __init__(self, *, epochs: int, batch_size: int,
                 make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer], seed: int = 0) -> None:
        super().__init__()
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.make_optimizer = make_optimizer
        self.seed = int(seed)
        self.history: list[tuple[int, int, int]] = []

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Fine-tune the head on the experience's training data plus the memory (the old classes)."""
        headed = find_headed_model(strategy.model)
        head = headed.head
        params = [p for p in head.parameters() if p.requires_grad]
        if not params:
            return
        data = strategy.adapted_dataset
        sets = [data.eval() if hasattr(data, "eval") else data, *replay_buffers(strategy)]
        feats, labels = collect_features(headed.backbone, sets, batch_size=strategy.eval_mb_size,
                                         device=strategy.device)
        if labels.numel() == 0:
            return
        known = torch.tensor([int(c) for c in head.classes], dtype=torch.long)
        keep = torch.isin(labels, known)
        feats, labels = feats[keep].to(strategy.device), labels[keep]
        columns = head.columns_of(labels).to(strategy.device)
        index = getattr(strategy.experience, "current_experience", len(self.history))
        generator = torch.Generator().manual_seed(self.seed + int(index))  # the same after a resume
        steps = balanced_finetune(head, feats, columns, epochs=self.epochs, batch_size=self.batch_size,
                                  optimizer=self.make_optimizer(params), generator=generator)
        self.history.append((int(labels.numel()), int(labels.unique().numel()), steps))
