"""Exact banks where mathematics gives the optimum: an orthonormal set and the regular simplex.

Both are rotated by a random orthogonal matrix drawn from the seed (a local generator), so different seeds give
different but equally optimal banks. Coherence: 0 for ``orthogonal`` (``n <= dim``), exactly ``1 / dim`` for
``simplex`` (``n <= dim + 1``; every pair has ``cos = -1/dim``), which meets the Welch bound at ``n = dim + 1``.
Asking for more vectors than a construction holds raises ``ValueError``.
"""

from __future__ import annotations

import torch

__all__ = ["random_rotation", "orthogonal_vectors", "simplex_vectors"]


def random_rotation(dim: int, *, seed: int) -> torch.Tensor:
    """A ``(dim, dim)`` float64 orthogonal matrix drawn from the Haar measure with a local generator."""
    gen = torch.Generator().manual_seed(int(seed))
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


def orthogonal_vectors(n: int, dim: int, *, seed: int = 0) -> torch.Tensor:
    """``n <= dim`` orthonormal rows (coherence 0) as a ``(n, dim)`` float32 tensor.

    Raises:
        ValueError: if ``n > dim``.
    """
    if n > dim:
        raise ValueError(f"method 'orthogonal' holds at most dim = {dim} vectors, got n = {n}; use 'auto' or 'sparse'")
    return random_rotation(dim, seed=seed)[:n].to(torch.float32).contiguous()


def simplex_vectors(n: int, dim: int, *, seed: int = 0) -> torch.Tensor:
    """The first ``n`` of the ``dim + 1`` vertices of a regular simplex (coherence ``1/dim``), ``(n, dim)`` float32.

    Raises:
        ValueError: if ``n > dim + 1``.
    """
    if n > dim + 1:
        raise ValueError(
            f"method 'simplex' holds at most dim + 1 = {dim + 1} vectors, got n = {n}; use 'auto' or 'sparse'"
        )
    # Vertices e_i - centroid of R^(dim+1), expressed in an orthonormal basis of the sum-zero hyperplane.
    vertices = torch.eye(dim + 1, dtype=torch.float64) - 1.0 / (dim + 1)
    ones = torch.ones(dim + 1, 1, dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.cat([ones, torch.eye(dim + 1, dtype=torch.float64)[:, :dim]], dim=1))
    coords = vertices @ basis[:, 1:]  # (dim + 1, dim), orthogonal to the ones direction
    coords = torch.nn.functional.normalize(coords, dim=1) @ random_rotation(dim, seed=seed)
    return coords[:n].to(torch.float32).contiguous()
