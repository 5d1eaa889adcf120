"""Make DER's stored logits comparable with the logits of a head that has grown since they were stored.

Avalanche's ``DER`` stores each buffered sample's logits after its experience and regresses the current
logits onto them (``alpha * MSE``). With ``HeadedModel(num_outputs=...)`` every stored row has the full width;
the class ids that did not exist when it was stored hold ``PAD_LOGIT``. There is no dark knowledge about
those classes, so this plugin replaces the padded entries by the current (detached) logits right after the
forward pass: they contribute nothing to the MSE, while every entry that was a real logit is distilled.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from ..strategies.model import PAD_LOGIT

__all__ = ["DERLogitsPlugin"]


class DERLogitsPlugin(SupervisedPlugin):
    """Fills the padded entries of ``strategy.batch_logits`` (DER) with the current logits.

    Args:
        pad_value: The logit ``HeadedModel`` writes for unknown class ids.
    """

    def __init__(self, pad_value: float = PAD_LOGIT) -> None:
        super().__init__()
        self.threshold = float(pad_value) / 2

    def after_forward(self, strategy: Any, **kwargs: Any) -> None:
        """Replace padded stored logits by the current ones (only when DER replays this batch)."""
        stored = getattr(strategy, "batch_logits", None)
        if getattr(strategy, "replay_loader", None) is None or stored is None:
            return
        current = strategy.mb_output[: stored.shape[0]].detach()
        strategy.batch_logits = torch.where(stored <= self.threshold, current, stored)
