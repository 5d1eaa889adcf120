"""A multi-layer perceptron backbone for small inputs (digits, MNIST-like images).

The image is flattened and passed through ``Linear -> ReLU`` blocks of the given hidden sizes; the features are
the output of the last block.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..validation import check_positive_int
from .registry import BACKBONES

__all__ = ["MLP"]


class MLP(nn.Module):
    """Flatten, then ``Linear -> ReLU`` (optionally ``Dropout``) per hidden size.

    Args:
        input_shape: ``(C, H, W)`` of the images.
        hidden_sizes: Width of each hidden layer; the last one is ``feature_dim``.
        dropout: Dropout probability after each block (0 disables it).
    """

    def __init__(self, *, input_shape: Sequence[int], hidden_sizes: Sequence[int] = (256, 256),
                 dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [check_positive_int(h, name="hidden_sizes[i]") for h in hidden_sizes]
        if not sizes:
            raise ValueError("hidden_sizes must name at least one layer, got []")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = int(torch.tensor(input_shape).prod())
        for h in sizes:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(float(dropout)))
            width = h
        self.body = nn.Sequential(*layers)
        self.feature_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` images to ``(B, feature_dim)`` features."""
        return self.body(x)


@BACKBONES.register("mlp")
def mlp(*, input_shape: Sequence[int], hidden_sizes: Sequence[int] = (256, 256), dropout: float = 0.0) -> MLP:
    """Build an ``MLP`` (see the class for the arguments)."""
    return MLP(input_shape=input_shape, hidden_sizes=hidden_sizes, dropout=dropout)
