"""Backbones: feature extractors mapping ``(B, C, H, W)`` images to ``(B, feature_dim)`` features.

``create_backbone(name, input_shape=(C, H, W), **options)`` builds one from ``BACKBONES``: ``mlp``, ``small_cnn``,
``resnet18`` (torchvision, CIFAR stem for small inputs) and ``resnet32`` (the CIFAR ResNet of the long-tailed
papers). Every backbone has an int ``feature_dim``. No Avalanche import.
"""

from __future__ import annotations

from . import mlp as _mlp, resnet as _resnet, small_cnn as _small_cnn  # noqa: F401  (register the backbones)
from .mlp import MLP
from .registry import BACKBONES, create_backbone, list_backbones
from .resnet import CifarResNet
from .small_cnn import SmallCNN

__all__ = ["BACKBONES", "create_backbone", "list_backbones", "MLP", "SmallCNN", "CifarResNet"]
