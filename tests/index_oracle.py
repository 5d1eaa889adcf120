"""The brute-force nearest-class oracle shared by the index tests."""

from __future__ import annotations

import numpy as np
import torch


def unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length (pre-scaled by their max so tiny or huge rows normalise exactly)."""
    return torch.nn.functional.normalize(x / x.abs().amax(dim=1, keepdim=True), dim=1)


def brute_force(vectors: torch.Tensor, queries: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent oracle: float64 matmul, highest score first, lower slot first on ties."""
    scores = (unit(queries).double() @ vectors.double().T).numpy()
    slots = np.arange(vectors.shape[0])
    best = np.stack([np.lexsort((slots, -row))[:k] for row in scores])
    return np.take_along_axis(scores, best, axis=1), best
