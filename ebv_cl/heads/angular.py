"""``angular``: a growing FC head that predicts with angles (angular-prediction paper, eq. 1).

The logit of class c is ``scale * (pi - arccos(cos(x, w_c)))``, in ``[0, scale * pi]``. The cosine is clamped
to ``[-1 + eps, 1 - eps]`` because the derivative of arccos is infinite at +-1 (with the default ``eps = 1e-4``
the largest gradient factor is about 70). ``scale`` (default 10, a logit range of about 31, comparable to a
cosine classifier with scale 16) makes the softmax sharp enough to train with cross-entropy; the paper uses
the angular form for prediction, so the scale does not change the argmax.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .fc import FCHead

__all__ = ["AngularHead"]


class AngularHead(FCHead):
    """Angular logits ``scale * (pi - arccos(cos(x, w_c)))`` with growing class weights (no bias).

    Args:
        in_features: Size of the backbone features.
        scale: Multiplies the angular logits (> 0).
        eps: Clamp margin of the cosine, in (0, 0.5).
        max_classes: The most classes allowed (unbounded by default).
        check_finite: Check inputs for NaN/inf on every call.
    """

    kind = "angular"

    def __init__(
        self,
        in_features: int,
        *,
        scale: float = 10.0,
        eps: float = 1e-4,
        max_classes: int | None = None,
        check_finite: bool = False,
    ) -> None:
        super().__init__(in_features, bias=False, max_classes=max_classes, check_finite=check_finite)
        if not float(scale) > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        if not 0 < float(eps) < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
        self.scale = float(scale)
        self.eps = float(eps)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        cos = nn.functional.normalize(x, dim=1) @ nn.functional.normalize(self.weight, dim=1).T
        return self.scale * (math.pi - torch.arccos(cos.clamp(-1 + self.eps, 1 - self.eps)))
