"""Backbones: every registered backbone maps (B, C, H, W) to (B, feature_dim) for 1- and 3-channel inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ebv_cl.errors import ConfigError
from ebv_cl.models import CifarResNet, create_backbone, list_backbones

SHAPES = {
    "mlp": [(1, 8, 8), (3, 4, 4)],
    "small_cnn": [(1, 8, 8), (3, 32, 32), (1, 28, 28)],
    "resnet18": [(1, 12, 12), (3, 16, 16)],  # small inputs keep the CPU test fast
    "resnet32": [(1, 8, 8), (3, 16, 16)],
}
FEATURES = {"mlp": 256, "small_cnn": 128, "resnet18": 512, "resnet32": 64}


def test_registry_names():
    assert list_backbones() == sorted(SHAPES)


def _cases():
    for name, shapes in SHAPES.items():
        for shape in shapes:
            slow = name == "resnet18"  # ResNet-18 backward takes many seconds on a loaded CPU; see the no-grad test
            yield pytest.param(name, shape, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("name, shape", list(_cases()))
def test_forward_backward_shapes(name, shape):
    torch.manual_seed(0)
    net = create_backbone(name, input_shape=shape)
    x = torch.randn(2, *shape)
    out = net(x)
    assert out.shape == (2, net.feature_dim) and net.feature_dim == FEATURES[name]
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    state = net.state_dict()
    clone = create_backbone(name, input_shape=shape)
    clone.load_state_dict(state)
    net.eval(), clone.eval()
    assert torch.allclose(net(x), clone(x))


@pytest.mark.parametrize("shape", [(1, 12, 12), (3, 12, 12)])
def test_resnet18_forward_any_channels(shape):
    net = create_backbone("resnet18", input_shape=shape).eval()
    with torch.no_grad():
        assert net(torch.randn(1, *shape)).shape == (1, 512)


def test_options_change_feature_dim():
    assert create_backbone("mlp", input_shape=(1, 8, 8), hidden_sizes=[32, 16]).feature_dim == 16
    assert create_backbone("small_cnn", input_shape=(1, 8, 8), channels=[8, 24]).feature_dim == 24


def test_resnet32_is_the_cifar_resnet():
    net = create_backbone("resnet32", input_shape=(3, 32, 32))
    assert isinstance(net, CifarResNet)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 31  # stem + 15 blocks x 2 convs, plus the final pooling/head outside = 32 layers
    assert 0.45e6 < sum(p.numel() for p in net.parameters()) < 0.48e6  # 0.46M as in He et al. (2016)


@pytest.mark.parametrize("cifar_stem, maxpool", [(True, nn.Identity), (False, nn.MaxPool2d)])
def test_resnet18_stem(cifar_stem, maxpool):
    net = create_backbone("resnet18", input_shape=(3, 32, 32), cifar_stem=cifar_stem)
    assert isinstance(net.net.maxpool, maxpool)
    assert net.net.conv1.kernel_size == ((3, 3) if cifar_stem else (7, 7))
    assert isinstance(net.net.fc, nn.Identity)


@pytest.mark.parametrize(
    "name, kwargs, error, match",
    [
        ("vit", {}, ValueError, "unknown backbone 'vit'; expected one of: mlp"),
        ("mlp", {"width": 3}, ConfigError, r"unknown option\(s\) \['width'\] for backbone 'mlp'; valid options"),
        ("mlp", {"hidden_sizes": []}, ValueError, "at least one layer"),
        ("resnet32", {"depth": 33}, ValueError, "depth must be 6n \\+ 2"),
        ("small_cnn", {"input_shape": (1, 8)}, ValueError, "input_shape must be"),
    ],
)
def test_errors(name, kwargs, error, match):
    kwargs = {"input_shape": (1, 8, 8), **kwargs}
    with pytest.raises(error, match=match):
        create_backbone(name, **kwargs)
