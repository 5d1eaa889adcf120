"""``hadamard``: the fixed Hadamard classifier with a learned scalar scale (Hoffer et al., "Fix your
classifier").

A trainable projection maps features to p dimensions (p a power of two, at least the capacity); the projected
features are L2-normalised and scored against the rows of the fixed p x p Sylvester Hadamard matrix scaled to
unit norm (``H[i, j] = (-1)^popcount(i & j) / sqrt(p)``), times one learned scalar. Class c takes row c in
arrival order. The paper's per-class bias is left out so the trainable count (projection + 1) does not change
as classes are added. For p <= 1024 the rows are a dense buffer; above, the logits come from a fast
Walsh-Hadamard transform (``p log p`` per sample, no p x p matrix in memory).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..validation import check_positive_int
from .base import ClassifierHead
from .projection import make_projection

__all__ = ["HadamardHead", "fwht", "hadamard_rows"]

_DENSE_MAX = 1024


def fwht(x: torch.Tensor) -> torch.Tensor:
    """The unnormalised Walsh-Hadamard transform ``x @ H.T`` (Sylvester order) of ``x`` ``(B, p)``, p = 2^k."""
    b, p = x.shape
    h = 1
    y = x
    while h < p:
        y = y.reshape(b, p // (2 * h), 2, h)
        y = torch.stack((y[:, :, 0] + y[:, :, 1], y[:, :, 0] - y[:, :, 1]), dim=2)
        h *= 2
    return y.reshape(b, p)


def hadamard_rows(rows: int, p: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The first ``rows`` rows of the Sylvester Hadamard matrix of order ``p``, entries +-1."""
    i = torch.arange(rows)[:, None]
    j = torch.arange(p)[None, :]
    bits = i & j
    parity = torch.zeros_like(bits)
    while bool(bits.any()):
        parity ^= bits & 1
        bits = bits >> 1
    return (1 - 2 * parity).to(dtype)


class HadamardHead(ClassifierHead):
    """Fixed Hadamard class vectors, trainable projection and one learned scale.

    Args:
        in_features: Size of the backbone features.
        max_classes: The capacity (``BankFullError`` past it).
        dim: p, a power of two >= ``max_classes``; default the smallest one.
        init_scale: Initial value of the learned scale (> 0).
        bias: Whether the projection has a bias.
        feature_bn: Batch-normalise the projected features before the L2 normalisation.
        projection: ``"linear"`` (default, the paper's) or ``"mlp"`` (``Linear-BN-ReLU-Linear``, ``hidden`` wide).
        hidden: Hidden width of the MLP projection (default 1024).
        check_finite: Check inputs for NaN/inf on every call.

    Raises:
        ValueError: if ``dim`` is not a power of two at least ``max_classes``.
    """

    kind = "hadamard"

    def __init__(
        self,
        in_features: int,
        *,
        max_classes: int,
        dim: int | None = None,
        init_scale: float = 10.0,
        bias: bool = True,
        feature_bn: bool = False,
        projection: str = "linear",
        hidden: int | None = None,
        check_finite: bool = False,
    ) -> None:
        max_classes = check_positive_int(max_classes, name="max_classes")
        super().__init__(in_features, capacity=max_classes, check_finite=check_finite)
        p = 1 << (max_classes - 1).bit_length() if dim is None else check_positive_int(dim, name="dim")
        if p & (p - 1) or p < max_classes:
            raise ValueError(f"dim must be a power of two >= max_classes ({max_classes}), got {p}")
        if not float(init_scale) > 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale!r}")
        self.dim = p
        if projection not in ("linear", "mlp"):
            raise ConfigError(f"projection must be 'linear' or 'mlp', got {projection!r}")
        self.projection = make_projection(projection, self.in_features, p, bias=bias, hidden=hidden)
        self.hidden = self.projection[0].out_features if projection == "mlp" else None
        self._bias = bool(bias)
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))
        self.feature_bn = nn.BatchNorm1d(p) if feature_bn else None
        dense = hadamard_rows(p, p) / math.sqrt(p) if p <= _DENSE_MAX else torch.empty(0, p)
        self.register_buffer("_dense_rows", dense, persistent=False)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        z = self.projection(x)
        z = nn.functional.normalize(z if self.feature_bn is None else self.feature_bn(z), dim=1)
        c = self.num_classes
        if self._dense_rows.numel():
            cos = z @ self._dense_rows[:c].to(z.dtype).T
        else:
            cos = fwht(z)[:, :c] / math.sqrt(self.dim)
        return self.scale * cos

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "dim": self.dim, "bias": self._bias,
                **({"hidden": self.hidden} if self.hidden is not None else {}),
                **({"feature_bn": True} if self.feature_bn is not None else {})}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dim={self.dim}"
