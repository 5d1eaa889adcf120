"""``tau_norm``: an FC head whose class weights are divided by ``||w||^tau`` at prediction time (decoupling
paper, eq. 3).

Training uses the plain linear logits (``tau = 0``); in eval mode, and always in ``predict`` and
``prediction_logits``, the logits are ``x @ (w_c / ||w_c||^tau)``. ``calibrate`` chooses tau on a grid in
[0, 1] by accuracy on held-out features and stores it in the ``tau`` buffer. The paper discards the bias, so
the head has none by default; with ``bias=True`` the bias is added unchanged.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from torch import nn

from .fc import FCHead

__all__ = ["TauNormHead"]

_EPS = 1e-12


class TauNormHead(FCHead):
    """A growing linear head with tau-normalised weights at prediction time.

    Args:
        in_features: Size of the backbone features.
        tau: The initial tau (>= 0); ``calibrate`` replaces it.
        bias: Whether each class has a bias (not normalised).
        max_classes: The most classes allowed (unbounded by default).
        check_finite: Check inputs for NaN/inf on every call.
    """

    kind = "tau_norm"

    def __init__(
        self,
        in_features: int,
        *,
        tau: float = 0.0,
        bias: bool = False,
        max_classes: int | None = None,
        check_finite: bool = False,
    ) -> None:
        super().__init__(in_features, bias=bias, max_classes=max_classes, check_finite=check_finite)
        self.register_buffer("tau", torch.tensor(self._check_tau(tau, "tau")))

    @staticmethod
    def _check_tau(value: Any, name: str) -> float:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
        return value

    def _scaled_weight(self, tau: torch.Tensor | float) -> torch.Tensor:
        return self.weight / self.weight.norm(dim=1, keepdim=True).clamp_min(_EPS).pow(tau)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return nn.functional.linear(x, self.weight, self.bias)
        return nn.functional.linear(x, self._scaled_weight(self.tau), self.bias)

    def prediction_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The tau-normalised logits ``(B, num_classes)``, whatever the training mode."""
        x = self._check_features(features)
        return nn.functional.linear(x, self._scaled_weight(self.tau), self.bias)

    @torch.no_grad()
    def calibrate(
        self,
        features: torch.Tensor,
        labels: Iterable[Any] | torch.Tensor,
        *,
        taus: Sequence[float] | None = None,
    ) -> float:
        """Set ``tau`` to the grid value with the best accuracy on held-out ``features`` and ``labels``.

        Args:
            features: ``(B, in_features)`` held-out features.
            labels: Their class labels (already added).
            taus: The grid (values in [0, 1]); default 0, 0.05, ..., 1. Ties go to the smallest tau.

        Returns:
            The chosen tau.

        Raises:
            ValueError: on an empty grid, a value outside [0, 1] or a label count that is not B.
        """
        x = self._check_features(features)
        cols = self.columns_of(labels).to(x.device)
        if cols.numel() != x.shape[0]:
            raise ValueError(f"labels must have one entry per feature row ({x.shape[0]}), got {cols.numel()}")
        grid = [i / 20 for i in range(21)] if taus is None else [self._check_tau(t, "taus[]") for t in taus]
        if not grid:
            raise ValueError("taus must hold at least one value")
        raw = x @ self.weight.T
        log_norm = self.weight.norm(dim=1).clamp_min(_EPS).log()
        best_tau, best_acc = grid[0], -1.0
        for tau in grid:
            logits = raw * torch.exp(-tau * log_norm)
            if self.bias is not None:
                logits = logits + self.bias
            acc = float((logits.argmax(dim=1) == cols).float().mean())
            if acc > best_acc:
                best_tau, best_acc = tau, acc
        self.tau.fill_(best_tau)
        return best_tau

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau={float(self.tau):.3f}"
