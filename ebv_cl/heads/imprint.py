"""Weight imprinting: new classifier rows set from the normalised mean feature of a class's few samples.

Qi, Brown and Lowe (CVPR 2018) add a class to a trained cosine classifier by writing the normalised mean of its
embedded samples into the new row. ``imprint_classes`` does this for the heads with one weight row per class
(``fc``, ``tau_norm``, ``angular``): the row becomes the normalised class mean scaled to the mean norm of the
rows that are not imprinted (so an imprinted class neither dominates nor vanishes next to trained ones), and
the bias, if any, the mean bias of those rows. ``class_means`` is the plain per-class mean used here and by the
few-shot session updates.

That is the whole story for a cosine classifier (``angular``). A plain linear head scores raw, non-negative
backbone features, so a row along a class mean scores every sample high (all features share the positive
orthant) and the imprinted classes take over. Given the stored mean features of the trained classes,
``imprint_classes(..., anchors=...)`` therefore calibrates each imprinted class: its bias (or, without a bias,
its row's length) is set so that its prediction logit at its own mean equals the average prediction logit of
the trained classes at theirs. A cosine head's logits do not depend on the row's length, so there it changes
nothing.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from .base import ClassifierHead

__all__ = ["class_means", "imprint_classes"]


def class_means(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean feature of every distinct label.

    Args:
        features: ``(n, d)`` float features.
        labels: ``(n,)`` integer labels.

    Returns:
        ``(classes, means)``: the sorted distinct labels ``(k,)`` int64 and their means ``(k, d)``.

    Raises:
        ValueError: if the shapes do not match or there is no sample.
    """
    if features.ndim != 2 or labels.ndim != 1 or features.shape[0] != labels.shape[0]:
        raise ValueError(f"features must be (n, d) and labels (n,), got {tuple(features.shape)} and "
                         f"{tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError("class_means needs at least one sample, got 0")
    classes, inverse = labels.long().unique(return_inverse=True)
    sums = features.new_zeros(classes.numel(), features.shape[1]).index_add_(0, inverse, features)
    counts = torch.bincount(inverse, minlength=classes.numel()).to(features.dtype)
    return classes, sums / counts[:, None]


@torch.no_grad()
def _own_logits(head: ClassifierHead, means: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    logits = head.prediction_logits(means.to(head.weight))  # type: ignore[arg-type]
    return logits[torch.arange(len(columns)), columns.to(logits.device)]


@torch.no_grad()
def _calibrate(head: ClassifierHead, columns: torch.Tensor, means: torch.Tensor,
               anchors: tuple[torch.Tensor, torch.Tensor]) -> None:
    old_cols = head.columns_of(anchors[1])
    keep = ~torch.isin(old_cols, columns)
    if not bool(keep.any()):
        return
    target = _own_logits(head, anchors[0][keep], old_cols[keep]).mean()
    bias = getattr(head, "bias", None)
    for _ in range(3):  # exact in one step with a bias; the length's effect may be damped by tau
        own = _own_logits(head, means, columns)
        if isinstance(bias, nn.Parameter):
            bias[columns.to(bias.device)] += (target - own).to(bias)
            return
        factor = (target / own).where(own > 0, torch.ones_like(own)).clamp(0.1, 10.0)
        head.weight[columns.to(head.weight.device)] *= factor[:, None].to(head.weight)


@torch.no_grad()
def imprint_classes(head: ClassifierHead, features: torch.Tensor, labels: Iterable[Any] | torch.Tensor, *,
                    anchors: tuple[torch.Tensor, Iterable[Any] | torch.Tensor] | None = None) -> list[int]:
    """Set the weight rows (and biases) of the classes in ``labels`` from their normalised mean features.

    Args:
        head: A head with a ``weight`` parameter of one row per class (``fc``, ``tau_norm``, ``angular``) in
            which every label is already added.
        features: ``(n, in_features)`` features of the samples.
        labels: Their ``n`` class labels.
        anchors: ``(means, labels)``: mean features ``(k, in_features)`` of trained classes; when given, each
            imprinted class is calibrated to their average own-class prediction logit (module docstring).

    Returns:
        The imprinted columns, sorted.

    Raises:
        TypeError: if the head has no per-class ``weight`` rows.
        ValueError: if the number of labels is not ``n``.
        UnknownLabelError: if a label was never added to the head.
    """
    weight = getattr(head, "weight", None)
    if not isinstance(weight, nn.Parameter) or weight.ndim != 2 or weight.shape[0] != head.num_classes:
        raise TypeError(f"imprint_classes needs a head with one weight row per class (fc, tau_norm, angular), "
                        f"got {type(head).__name__}")
    x = head._check_features(features)
    cols = head.columns_of(labels)
    if cols.numel() != x.shape[0]:
        raise ValueError(f"labels must have one entry per feature row ({x.shape[0]}), got {cols.numel()}")
    columns, means = class_means(nn.functional.normalize(x.float(), dim=1), cols)
    others = torch.ones(head.num_classes, dtype=torch.bool)
    others[columns] = False
    rows = weight.detach()
    scale = rows[others].norm(dim=1).mean() if bool(others.any()) else torch.tensor(1.0)
    weight[columns.to(weight.device)] = (nn.functional.normalize(means, dim=1) * scale).to(weight)
    bias = getattr(head, "bias", None)
    if isinstance(bias, nn.Parameter):
        fill = bias.detach()[others.to(bias.device)].mean() if bool(others.any()) else 0.0
        bias[columns.to(bias.device)] = fill
    if anchors is not None and len(anchors[0]):
        _, raw_means = class_means(x.float(), cols)
        _calibrate(head, columns, raw_means, (anchors[0].float(), torch.as_tensor(anchors[1]).long()))
    return sorted(columns.tolist())
