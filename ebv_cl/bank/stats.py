"""Quality statistics of a bank and the lower bounds on its coherence.

Coherence is the largest ``|cos|`` over pairs of distinct vectors (the EBV paper's alpha, eq. 3). The paper's
Table 2 also reports the minimum angle between lines, ``min(theta, pi - theta)`` over pairs (which equals
``arccos(coherence)``), and the mean over pairs of ``|theta - 90 deg|``. Everything is computed exactly, one
block of rows against the rows after it, so memory stays ``O(block * n)`` and never ``O(n^2)``.

Bounds: the Welch bound ``sqrt((n - d) / (d (n - 1)))`` holds for every n > d; the (real) Levenstein bound
``sqrt((3n - d^2 - 2d) / ((d + 2)(n - d)))`` holds and is tighter for n > d (d + 1) / 2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

__all__ = ["BankStats", "welch_bound", "levenstein_bound", "coherence_lower_bound", "bank_statistics"]


def welch_bound(n: int, dim: int) -> float:
    """The Welch lower bound on the coherence of ``n`` unit vectors in ``R^dim`` (0 when ``n <= dim``)."""
    if n <= dim:
        return 0.0
    return math.sqrt((n - dim) / (dim * (n - 1)))


def levenstein_bound(n: int, dim: int) -> float | None:
    """The real Levenstein bound, or ``None`` where it does not apply (``n <= dim (dim + 1) / 2``)."""
    if 2 * n <= dim * (dim + 1):
        return None
    return math.sqrt((3 * n - dim * dim - 2 * dim) / ((dim + 2) * (n - dim)))


def coherence_lower_bound(n: int, dim: int) -> float:
    """The best of the Welch and Levenstein bounds for ``n`` vectors in ``R^dim``."""
    lev = levenstein_bound(n, dim)
    return max(welch_bound(n, dim), lev if lev is not None else 0.0)


@dataclass(frozen=True)
class BankStats:
    """Exact quality figures of a bank (angles in degrees)."""

    n: int
    dim: int
    coherence: float
    min_angle_deg: float
    mean_abs_dev_deg: float
    mean_abs_cos: float
    welch_bound: float
    levenstein_bound: float | None
    lower_bound: float
    coherence_to_bound: float | None
    coherence_exact: bool = True
    coherence_lower: float | None = None
    note: str | None = None

    def to_dict(self) -> dict:
        """The figures as a JSON-ready dict."""
        return asdict(self)


def bank_statistics(vectors: torch.Tensor, *, block_size: int | None = None) -> BankStats:
    """Compute the exact coherence, angle figures and bounds of a bank.

    Args:
        vectors: ``(n, dim)`` floating tensor; rows are normalised here, so they need not be unit already.
        block_size: Rows per block (default: chosen so a block holds about 32M scores); peak extra memory is
            about ``block_size * n`` floats.

    Returns:
        The statistics; with ``n < 2`` coherence is 0 and the angles are 90 degrees.
    """
    if vectors.ndim != 2:
        raise ValueError(f"vectors must have shape (n, dim), got {tuple(vectors.shape)}")
    n, dim = vectors.shape
    dtype = torch.float64 if n <= 4096 else torch.float32
    w = torch.nn.functional.normalize(vectors.detach().to(dtype), dim=1)
    if block_size is None:
        block_size = max(64, min(4096, (1 << 25) // max(n, 1)))
    max_abs = 0.0
    dev_sum = 0.0
    abs_sum = 0.0
    pairs = n * (n - 1) // 2
    for start in range(0, n, block_size):
        stop = min(n, start + block_size)
        block = w[start:stop]
        inner = (block @ block.T).abs_()
        iu = torch.triu_indices(stop - start, stop - start, offset=1)
        parts = [inner[iu[0], iu[1]]]
        if stop < n:
            parts.append((block @ w[stop:].T).abs_().reshape(-1))
        for vals in parts:
            if vals.numel() == 0:
                continue
            vals = vals.clamp_(max=1.0)
            max_abs = max(max_abs, float(vals.max()))
            abs_sum += float(vals.sum(dtype=torch.float64))
            # |theta - 90 deg| = arcsin(|cos theta|)
            dev_sum += float(torch.arcsin(vals).sum(dtype=torch.float64))
    welch = welch_bound(n, dim)
    lev = levenstein_bound(n, dim)
    bound = coherence_lower_bound(n, dim)
    return BankStats(
        n=n,
        dim=dim,
        coherence=max_abs,
        min_angle_deg=math.degrees(math.acos(min(1.0, max_abs))),
        mean_abs_dev_deg=math.degrees(dev_sum / pairs) if pairs else 0.0,
        mean_abs_cos=abs_sum / pairs if pairs else 0.0,
        welch_bound=welch,
        levenstein_bound=lev,
        lower_bound=bound,
        coherence_to_bound=(max_abs / bound) if bound > 0 else None,
    )
