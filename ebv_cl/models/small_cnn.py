"""A small convolutional backbone for 8x8 to 64x64 images.

Each stage is ``Conv3x3 -> BatchNorm -> ReLU`` followed by a 2x2 max-pool while the feature map is at least 4
pixels on each side (so 8x8 digits and 32x32 CIFAR both work); a global average pool gives the features.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..validation import check_positive_int
from .registry import BACKBONES

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """Conv-BN-ReLU(-MaxPool) stages, then global average pooling.

    Args:
        input_shape: ``(C, H, W)`` of the images.
        channels: Output channels of each stage; the last one is ``feature_dim``.
    """

    def __init__(self, *, input_shape: Sequence[int], channels: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()
        widths = [check_positive_int(c, name="channels[i]") for c in channels]
        if not widths:
            raise ValueError("channels must name at least one stage, got []")
        c_in, h, w = (int(s) for s in input_shape)
        layers: list[nn.Module] = []
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            if h >= 4 and w >= 4:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.feature_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` images to ``(B, feature_dim)`` features."""
        return self.body(x)


@BACKBONES.register("small_cnn")
def small_cnn(*, input_shape: Sequence[int], channels: Sequence[int] = (32, 64, 128)) -> SmallCNN:
    """Build a ``SmallCNN`` (see the class for the arguments)."""
    return SmallCNN(input_shape=input_shape, channels=channels)
