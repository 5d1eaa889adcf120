"""``fc``: the usual growing linear classifier head.

Logits are ``x @ W.T + b`` with one row of ``W`` (and one bias) per class. New classes append rows initialised
as ``nn.Linear`` does; old rows are kept, so a class keeps its column. Growing replaces ``weight``/``bias`` by
larger ``Parameter``s: pass ``optimizer=`` to ``add_classes`` (or rebuild the optimizer) afterwards.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import UNBOUNDED_CLASSES, ClassifierHead

__all__ = ["FCHead"]


class FCHead(ClassifierHead):
    """A growing ``nn.Linear`` head: ``in_features -> num_classes``.

    Args:
        in_features: Size of the backbone features.
        bias: Whether each class has a bias.
        max_classes: The most classes allowed (unbounded by default).
        check_finite: Check inputs for NaN/inf on every call.
    """

    kind = "fc"

    def __init__(
        self,
        in_features: int,
        *,
        bias: bool = True,
        max_classes: int | None = None,
        check_finite: bool = False,
    ) -> None:
        super().__init__(in_features, capacity=max_classes or UNBOUNDED_CLASSES, check_finite=check_finite)
        self.weight = nn.Parameter(torch.empty(0, self.in_features))
        self.bias = nn.Parameter(torch.empty(0)) if bias else None

    def _grow(self, old: int, new: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        w = self.weight.detach()
        rows = self._uniform_rows(new - old, self.in_features, self.in_features, w)
        swaps = [self._replace_parameter("weight", torch.cat([w[:old], rows]))]
        if self.bias is not None:
            b = self.bias.detach()
            extra = self._uniform_rows(new - old, 0, self.in_features, b)
            swaps.append(self._replace_parameter("bias", torch.cat([b[:old], extra])))
        return swaps

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "bias": self.bias is not None}
