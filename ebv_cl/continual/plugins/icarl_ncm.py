"""iCaRL's nearest-mean-of-exemplars classifier restricted to the classes it has means for.

Avalanche 0.6's iCaRL fills its ``NCMClassifier`` with a zero mean for every class of the stream, seen or
not; with L2-normalised features the distance to a zero mean is 1, which beats a real class whenever the
cosine to its mean is below 0.5, so unseen classes get predicted. This subclass gives the classes whose mean
is all zero the logit ``PAD_LOGIT`` instead, so ``argmax`` only ever picks a class iCaRL has exemplars of.
"""

from __future__ import annotations

import torch
from avalanche.models import NCMClassifier

from ..strategies.model import PAD_LOGIT

__all__ = ["SeenClassNCM"]


class SeenClassNCM(NCMClassifier):
    """``NCMClassifier`` whose output for classes without a mean is ``PAD_LOGIT``."""

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Negative distances ``(B, n_classes)`` to the class means; classes without a mean padded."""
        out = super().forward(x)
        unseen = (self.class_means == 0).all(dim=1).to(out.device)
        return out.masked_fill(unseen.unsqueeze(0), PAD_LOGIT)
