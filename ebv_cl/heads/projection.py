"""The trainable projection of the fixed-classifier heads (``ebv``, ``hadamard``): linear, MLP or none.

The ``ebv`` head's default (``"auto"``, ``default_projection``) depends on how many classes its bank holds,
chosen on validation data (``benchmarks/bench_head_recipe.py``, README "EBV head recipe"). From 200 classes on,
an MLP ``Linear-BN-ReLU(-Dropout)-Linear`` with a wide hidden layer: on Omniglot with 250, 500 and 964
characters its held-out accuracy is 8-15 points above the linear layer's, and a linear map onto 964 fixed
targets fits more slowly than FC. Below, the EBV paper's single linear layer: with 100 Omniglot characters the
MLP's gain is unsteady (+4.7 +- 4.1 points held-out) and its backbone's features transfer 9 points worse; with
62 EMNIST classes its held-out accuracy is lower; with 10 classes it costs under replay and iCaRL (Split
Fashion-MNIST).
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError

__all__ = ["DEFAULT_HIDDEN", "INITS", "MLP_MIN_CLASSES", "PROJECTIONS", "default_projection", "make_projection"]

PROJECTIONS = ("linear", "mlp", "none")
INITS = ("default", "orthogonal")
DEFAULT_HIDDEN = 1024
"""Hidden width of the MLP projection when none is given (the width measured on Omniglot-964)."""
MLP_MIN_CLASSES = 200
"""The ``ebv`` head's ``projection: auto`` is an MLP from this many bank vectors on, a linear layer below it."""


def default_projection(n_classes: int) -> str:
    """The projection ``"auto"`` stands for: ``"mlp"`` from ``MLP_MIN_CLASSES`` classes on, else ``"linear"``.

    Args:
        n_classes: How many classes the head can hold (its bank's ``n``).

    Raises:
        ValueError: if ``n_classes < 1``.
    """
    if int(n_classes) < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes!r}")
    return "mlp" if int(n_classes) >= MLP_MIN_CLASSES else "linear"


def make_projection(kind: str | bool, in_features: int, dim: int, *, bias: bool = True, hidden: int | None = None,
                    init: str = "default", dropout: float = 0.0) -> nn.Module:
    """Build a projection from ``in_features`` to ``dim``.

    Args:
        kind: ``"linear"`` (or ``True``), ``"mlp"`` (``Linear-BN-ReLU-Linear``, ``hidden`` wide) or ``"none"``
            (or ``False``: the identity, which needs ``in_features == dim``).
        in_features: Input size.
        dim: Output size.
        bias: Whether the (last) linear layer has a bias.
        hidden: Hidden width of the MLP (default ``DEFAULT_HIDDEN``); ignored otherwise.
        init: ``"default"`` (PyTorch's) or ``"orthogonal"`` weights with zero biases.
        dropout: Dropout probability on the MLP's hidden layer (``[0, 1)``; only the MLP has one).

    Raises:
        ConfigError: on an unknown ``kind`` or ``init``.
        ValueError: on ``hidden < 1``, ``"none"`` with ``in_features != dim``, or a ``dropout`` outside
            ``[0, 1)`` or above 0 without the MLP.
    """
    if isinstance(kind, bool):
        kind = "linear" if kind else "none"
    if kind not in PROJECTIONS:
        raise ConfigError(f"projection must be a bool or one of {PROJECTIONS}, got {kind!r}")
    if init not in INITS:
        raise ConfigError(f"projection_init must be one of {INITS}, got {init!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if float(dropout) > 0 and kind != "mlp":
        raise ValueError(f"dropout acts on the MLP's hidden layer: it needs projection='mlp', got {kind!r}")
    if kind == "none":
        if in_features != dim:
            raise ValueError(f"projection=False needs in_features == bank.dim ({dim}), got {in_features}")
        return nn.Identity()
    if kind == "linear":
        module: nn.Module = nn.Linear(in_features, dim, bias=bias)
    else:
        width = DEFAULT_HIDDEN if hidden is None else int(hidden)
        if width < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden!r}")
        act: nn.Module = nn.ReLU(inplace=True)
        if float(dropout) > 0:  # nested, so the layers' indices (state-dict keys) do not depend on the dropout
            act = nn.Sequential(act, nn.Dropout(float(dropout)))
        module = nn.Sequential(nn.Linear(in_features, width, bias=False), nn.BatchNorm1d(width), act,
                               nn.Linear(width, dim, bias=bias))
    if init == "orthogonal":
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.orthogonal_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
    return module
