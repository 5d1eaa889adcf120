"""``etf``: real equiangular tight frames, banks whose every ``|cos|`` equals the Welch bound.

An ETF of ``N`` unit vectors in ``R^d`` has all ``|cos|`` equal to ``sqrt((N - d) / (d (N - 1)))``, so no bank
of that size has a lower coherence. The catalogue (``etf_catalogue``) holds the constructions built here:

- **Steiner ETFs** (Fickus, Mixon and Tremain, 2012): a Steiner system 2-(v, k, 1) with ``b`` blocks, each
  point in ``r = (v - 1)/(k - 1)`` blocks, and a Hadamard matrix ``H`` of order ``r + 1``. Point ``p`` gives
  ``r + 1`` vectors: column ``j`` of ``H`` without its first row, placed on the ``r`` blocks through ``p`` and
  divided by ``sqrt(r)``. Two vectors of one point meet with ``|cos| = 1/r`` (columns of ``H`` are orthogonal
  and the dropped row is all ones); two points share exactly one block, so again ``1/r``. Here: all pairs of
  ``v`` points (``k = 2``: ``N = v^2`` in ``d = v (v - 1)/2`` at ``1/(v - 1)``; (28, 64) at 1/7, (120, 256) at
  1/15, (496, 1024) at 1/31, (2016, 4096) at 1/63; also ``v`` = 12, 20, 24, 44, 48, 60 with Paley Hadamard
  matrices) and the lines of PG(m - 1, 2) (``k = 3``, ``v = 2^m - 1``: (7, 28), (35, 120), (155, 496),
  (651, 2016)).
- **Two-graph ETFs**: a symmetric +-1 Seidel matrix ``S`` with two eigenvalues gives the Gram matrix
  ``I + mu S`` of an ETF (rank ``d``), factored by an eigendecomposition: the Paley conference matrices
  (``q = 1 mod 4`` prime: ``(q + 1)/2`` dimensions, ``q + 1`` vectors, e.g. (3, 6) the icosahedron's six
  diagonals, (7, 14)), the Petersen graph (5, 10) and the Latin square graph of order 6 (15, 36) at 1/5.
- **The Leech lattice's 276 lines** in R^23 at 1/5 (``designs.leech_lines``).
- **Naimark complements**: an ETF of ``N`` vectors in ``R^d`` gives one of ``N`` vectors in ``R^(N - d)``
  (the complementary projection of its Gram matrix), e.g. (36, 64), (21, 28), (21, 36), (253, 276).

Row order: a Steiner ETF lists point 0's ``r + 1`` vectors (columns of ``H`` in order), then point 1's, ...;
coordinates are the blocks in lexicographic order. Frames from an eigendecomposition list the vectors in the
order of the Seidel matrix's rows (rotated by the eigenvector basis, which numpy fixes). Fewer than ``N``
vectors: the first ``n`` rows (still at most the frame's coherence, which is then above the optimum for ``n``);
more than ``N`` is a ``ValueError``. The seed is ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from . import designs

COMPLEMENT_MAX_N = 1100  # an eigendecomposition of the N x N Gram matrix builds a complement

__all__ = ["COMPLEMENT_MAX_N", "ETFEntry", "etf_catalogue", "etf_for", "etf_vectors", "steiner_frame", "seidel_frame"]


@dataclass(frozen=True)
class ETFEntry:
    """One catalogued frame: ``n`` vectors in ``R^dim`` with every ``|cos| = coherence``."""

    dim: int
    n: int
    coherence: float
    name: str
    build: Callable[[], np.ndarray]


def steiner_frame(blocks: list[tuple[int, ...]], v: int, hadamard: np.ndarray) -> np.ndarray:
    """The Steiner ETF of a 2-(v, k, 1) design and a Hadamard matrix of order ``r + 1`` (first row ones).

    Returns:
        ``(v (r + 1), len(blocks))`` float64 unit rows.
    """
    r = sum(1 for b in blocks if 0 in b)
    if hadamard.shape != (r + 1, r + 1):
        raise ValueError(f"a design with r = {r} blocks per point needs a Hadamard matrix of order {r + 1}")
    out = np.zeros((v * (r + 1), len(blocks)), dtype=np.float64)
    through = [[] for _ in range(v)]
    for index, block in enumerate(blocks):
        for p in block:
            through[p].append(index)
    signs = hadamard[1:, :].T / math.sqrt(r)  # (r + 1, r): column j of H without its first row
    for p in range(v):
        out[p * (r + 1):(p + 1) * (r + 1), through[p]] = signs
    return out


def seidel_frame(seidel: np.ndarray, mu: float, dim: int) -> np.ndarray:
    """The ETF whose Gram matrix is ``I + mu S``: ``(len(S), dim)`` float64 unit rows.

    Raises:
        AssertionError: if ``I + mu S`` is not positive semidefinite of rank ``dim`` (``S`` is not the Seidel
            matrix of such a frame).
    """
    values, vectors = np.linalg.eigh(np.eye(len(seidel)) + mu * seidel)
    keep = values > 1e-9 * values.max()
    if keep.sum() != dim or values.min() < -1e-9:
        raise AssertionError(f"I + mu S has rank {int(keep.sum())}, not {dim}, or is not PSD")
    rows = vectors[:, keep] * np.sqrt(values[keep])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _complement(rows: np.ndarray) -> np.ndarray:
    """The Naimark complement of a unit-norm tight frame: ``N`` rows in ``R^(N - d)``."""
    n, d = rows.shape
    projection = np.eye(n) - (d / n) * (rows @ rows.T)
    return _frame_from_gram(projection, n - d)


def _frame_from_gram(gram: np.ndarray, dim: int) -> np.ndarray:
    """Unit rows whose Gram matrix is ``gram`` up to row scaling (its top ``dim`` eigenvectors)."""
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1][:dim]
    rows = vectors[:, order] * np.sqrt(np.clip(values[order], 0.0, None))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _welch(n: int, d: int) -> float:
    return math.sqrt((n - d) / (d * (n - 1)))


@lru_cache(maxsize=1)
def etf_catalogue() -> tuple[ETFEntry, ...]:
    """Every frame this module builds, sorted by ``(dim, n)`` (metadata only; rows are built on demand)."""
    base: list[ETFEntry] = []
    for v in designs.hadamard_orders(64):
        if v >= 4:
            base.append(ETFEntry(v * (v - 1) // 2, v * v, 1.0 / (v - 1), f"steiner pairs v={v}",
                                 lambda v=v: steiner_frame(designs.pair_design(v), v, designs.hadamard(v))))
    for m in range(3, 7):
        v, r = (1 << m) - 1, (1 << (m - 1)) - 1
        base.append(ETFEntry(v * r // 3, v * (r + 1), 1.0 / r, f"steiner PG({m - 1},2) triples",
                             lambda m=m, v=v, r=r: steiner_frame(designs.projective_triples(m), v,
                                                                 designs.hadamard(r + 1))))
    for q in range(5, 102, 4):
        if designs.is_prime(q):
            base.append(ETFEntry((q + 1) // 2, q + 1, 1.0 / math.sqrt(q), f"paley conference q={q}",
                                 lambda q=q: seidel_frame(designs.paley_conference_seidel(q), 1 / math.sqrt(q),
                                                          (q + 1) // 2)))
    base.append(ETFEntry(5, 10, 1.0 / 3.0, "petersen", lambda: seidel_frame(designs.petersen_seidel(), 1 / 3, 5)))
    base.append(ETFEntry(15, 36, 0.2, "latin square graph L(6)",
                         lambda: seidel_frame(designs.latin_square_seidel(6), 0.2, 15)))
    base.append(ETFEntry(23, 276, 0.2, "leech lattice lines", designs.leech_lines))
    entries = {(e.dim, e.n): e for e in base}
    for e in base:
        d2 = e.n - e.dim
        if d2 >= 2 and e.n <= COMPLEMENT_MAX_N and (d2, e.n) not in entries:
            entries[(d2, e.n)] = ETFEntry(d2, e.n, e.coherence * e.dim / d2, f"complement of {e.name}",
                                          lambda e=e: _complement(e.build()))
    for e in entries.values():  # the catalogue holds ETFs only: coherence = Welch bound
        if not math.isclose(e.coherence, _welch(e.n, e.dim), rel_tol=1e-12):
            raise AssertionError(f"catalogue entry {e.name} ({e.dim}, {e.n}) is not at the Welch bound")
    return tuple(sorted(entries.values(), key=lambda e: (e.dim, e.n)))


def etf_for(n: int, dim: int) -> ETFEntry | None:
    """The catalogued frame in ``R^dim`` with at least ``n`` vectors and the lowest coherence, if any."""
    fits = [e for e in etf_catalogue() if e.dim == dim and e.n >= n]
    return min(fits, key=lambda e: e.coherence) if fits else None


def etf_vectors(n: int, dim: int) -> tuple[torch.Tensor, dict]:
    """The first ``n`` rows of the best catalogued ETF in ``R^dim`` as ``(n, dim)`` float32, and its record.

    Raises:
        ValueError: if no catalogued ETF in ``R^dim`` holds ``n`` vectors.
    """
    entry = etf_for(n, dim)
    if entry is None:
        sizes = [e.n for e in etf_catalogue() if e.dim == dim]
        held = f"at most {max(sizes)} vectors" if sizes else "no frame"
        raise ValueError(
            f"method 'etf' has {held} in dim = {dim}, got n = {n}; use 'auto' or 'smooth' "
            f"(dims with a frame: {', '.join(str(d) for d in sorted({e.dim for e in etf_catalogue()}))})"
        )
    rows = entry.build()[:n]
    info = {"etf": {"construction": entry.name, "frame_n": entry.n, "frame_coherence": entry.coherence}}
    return torch.from_numpy(rows).to(torch.float32).contiguous(), info
