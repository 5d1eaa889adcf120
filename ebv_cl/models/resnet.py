"""ResNet backbones: torchvision's ResNet-18 (optionally with the CIFAR stem) and the CIFAR ResNet-32.

``resnet18`` is torchvision's model with ``fc`` replaced by ``Identity`` (512 features); its first convolution
takes any channel count, and the CIFAR stem (3x3 stride-1 convolution, no max-pool) is used by default for
inputs of at most 64 pixels. ``resnet32`` is the CIFAR ResNet of He et al. (2016) used by the long-tailed
papers: a 3x3 stem with 16 channels, three stages of five basic blocks (16, 32, 64 channels, stride 2 between
stages, parameter-free "option A" shortcuts that subsample and zero-pad), global average pooling, 64 features.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import BACKBONES

__all__ = ["CifarResNet", "resnet18", "resnet32"]


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, c_out - c_in

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNet of depth ``6n + 2`` (ResNet-32: ``n = 5``) with 64 output features.

    Args:
        in_channels: Channels of the input images.
        depth: Total depth ``6n + 2`` (20, 32, 44, 56, 110).
    """

    def __init__(self, *, in_channels: int = 3, depth: int = 32) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, ...), got {depth!r}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        c_in = 16
        for stage, c_out in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(_BasicBlock(c_in, c_out, 2 if (stage > 0 and i == 0) else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = 64
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` images to ``(B, 64)`` features."""
        return F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1)


class _TorchvisionResNet18(nn.Module):
    def __init__(self, in_channels: int, cifar_stem: bool) -> None:
        super().__init__()
        from torchvision.models import resnet18 as tv_resnet18

        net = tv_resnet18(weights=None)
        if cifar_stem:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.fc = nn.Identity()
        self.net = net
        self.feature_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C, H, W)`` images to ``(B, 512)`` features."""
        return self.net(x)


@BACKBONES.register("resnet18")
def resnet18(*, input_shape: Sequence[int], cifar_stem: bool | None = None) -> nn.Module:
    """torchvision ResNet-18 without its classifier (512 features).

    Args:
        input_shape: ``(C, H, W)`` of the images.
        cifar_stem: Use a 3x3 stride-1 first convolution and no max-pool; ``None`` picks it when ``H, W <= 64``.
    """
    c, h, w = (int(s) for s in input_shape)
    stem = (max(h, w) <= 64) if cifar_stem is None else bool(cifar_stem)
    return _TorchvisionResNet18(c, stem)


@BACKBONES.register("resnet32")
def resnet32(*, input_shape: Sequence[int], depth: int = 32) -> CifarResNet:
    """The CIFAR ResNet-32 (64 features); ``depth`` selects another ``6n + 2`` member of the family."""
    return CifarResNet(in_channels=int(input_shape[0]), depth=depth)
