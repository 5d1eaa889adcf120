"""The baseline every generator must beat: N independent Gaussian directions, normalised.

Also the starting point of the optimising methods, so ``allpairs`` and ``sparse`` start from the same bank
for the same seed.
"""

from __future__ import annotations

import torch

__all__ = ["random_bank"]


def random_bank(n: int, dim: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` unit rows in ``R^dim`` drawn uniformly on the sphere (normalised Gaussians).

    Args:
        n: Number of vectors (>= 1).
        dim: Dimension (>= 1).
        seed: Seed of a local ``torch.Generator`` (the global RNG is never touched).

    Returns:
        A ``(n, dim)`` float32 CPU tensor with unit rows.

    Raises:
        TypeError, ValueError: if ``n`` or ``dim`` is not a positive int.
    """
    from ...validation import check_positive_int

    n = check_positive_int(n, name="n")
    dim = check_positive_int(dim, name="dim")
    gen = torch.Generator().manual_seed(int(seed))
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1)
