"""The backbone registry and its factory ``create_backbone``.

A backbone maps a batch ``(B, C, H, W)`` of float images to features ``(B, feature_dim)``; heads sit on top.
Every factory takes ``input_shape=(C, H, W)`` plus its own keyword options; an unknown option is a
``ConfigError`` listing the valid ones.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from ..registry import Registry

__all__ = ["BACKBONES", "create_backbone", "list_backbones", "check_input_shape"]

BACKBONES: Registry[nn.Module] = Registry("backbone", fixed=("input_shape",))


def check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    """Return ``input_shape`` as a ``(C, H, W)`` tuple of positive ints.

    Raises:
        ValueError: if it is not three positive integers.
    """
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (C, H, W) of positive ints, got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) of positive ints, got {input_shape!r}")
    return shape  # type: ignore[return-value]


def list_backbones() -> list[str]:
    """The registered backbone names, sorted."""
    return BACKBONES.names()


def create_backbone(name: str, *, input_shape: Sequence[int], **kwargs: Any) -> nn.Module:
    """Build a registered backbone.

    Args:
        name: A name from ``list_backbones()`` (``mlp``, ``small_cnn``, ``resnet18``, ``resnet32``).
        input_shape: ``(C, H, W)`` of the images; 1 and 3 channels (or any other count) are accepted.
        **kwargs: The backbone's own options.

    Returns:
        An ``nn.Module`` with an int attribute ``feature_dim`` whose forward maps ``(B, C, H, W)`` to
        ``(B, feature_dim)``.

    Raises:
        ValueError: on an unknown name (listing the valid ones) or a bad ``input_shape``.
        UnknownOptionError: on an unknown option (listing the valid ones; a ``ConfigError``).
    """
    BACKBONES.get(name)
    return BACKBONES.create(name, input_shape=check_input_shape(input_shape), **kwargs)
