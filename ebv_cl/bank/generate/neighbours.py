"""Exact nearest lines of every bank vector: the pairs with the largest ``|cos|``, found in blocks.

Searching over both ``w`` and ``-w`` is the same as ranking partners by ``|cos|``, so a block of rows is
multiplied against the whole bank, the absolute values are taken and ``topk`` keeps the ``k`` largest. Memory
stays ``O(block * n + n * k)``, never ``O(n^2)``; time is ``O(n^2 d)`` per full search, which is the one
quadratic part of the ``sparse`` generator (it runs once per neighbour refresh, not per step).
"""

from __future__ import annotations

import torch

__all__ = ["block_rows", "top_pairs", "coherence"]


def block_rows(n: int, *, device: torch.device, scores_per_block: int | None = None) -> int:
    """Rows per block so that one ``(block, n)`` score matrix holds about ``scores_per_block`` floats."""
    if scores_per_block is None:
        scores_per_block = (1 << 28) if device.type == "cuda" else (1 << 24)
    return max(1, min(n, scores_per_block // max(n, 1)))


def top_pairs(
    vectors: torch.Tensor, k: int, *, block: int | None = None, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` partners of each row with the largest ``|cos|`` (the row itself excluded).

    Args:
        vectors: ``(n, d)`` unit rows on any device.
        k: Partners per row, ``1 <= k <= n - 1``.
        block: Rows per block (default from ``block_rows``).
        dtype: Dtype of the products (default: that of ``vectors``). ``torch.bfloat16`` is about twice as fast
            where the hardware has it, and ``torch.int8`` (CPU, exact int32 sums of rounded rows) about 2.5x on
            this CPU; the ranking is then approximate (cosines off by ~4e-3) and so are the values, so use them
            for candidates, not for the reported coherence.

    Returns:
        ``(values, indices)``: ``(n, k)`` float ``|cos|`` in decreasing order and ``(n, k)`` int64 row indices.
    """
    n = vectors.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in [1, n - 1] = [1, {n - 1}], got {k}")
    block = block or block_rows(n, device=vectors.device)
    values = torch.empty(n, k, dtype=vectors.dtype, device=vectors.device)
    indices = torch.empty(n, k, dtype=torch.int64, device=vectors.device)
    if dtype == torch.int8:
        work, unscale = _int8_rows(vectors)
        product = lambda a, b: torch._int_mm(a, b.T)  # noqa: E731  (exact int32 sums)
    else:
        work, unscale = (vectors if dtype is None else vectors.to(dtype)), 1.0
        product = lambda a, b: a @ b.T  # noqa: E731
    for start in range(0, n, block):
        stop = min(n, start + block)
        scores = product(work[start:stop], work).abs_()
        scores[:, start:stop].fill_diagonal_(-1)  # the rows themselves
        v, i = scores.topk(k, dim=1)
        values[start:stop] = v.to(values.dtype) * unscale
        indices[start:stop] = i
    return values, indices


def _int8_rows(vectors: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Rows rounded to int8 on one scale (largest entry -> 127), columns zero-padded to a multiple of 8.

    ``torch._int_mm`` sums int8 products exactly in int32 (no overflow: ``d * 127^2 < 2^31`` for ``d`` up to
    133,000); with unit rows each cosine is then off by at most about ``sqrt(d) / 127`` times the largest entry,
    ~4e-3 in practice. The padding avoids CPU kernels that mishandle tiny inner dimensions. Returns the rows and
    the factor that turns an int32 product back into a cosine.
    """
    if vectors.device.type != "cpu":
        raise ValueError(f"int8 neighbour search runs on the CPU, got vectors on {vectors.device}")
    peak = float(vectors.abs().max()) or 1.0
    scale = 127.0 / peak
    rows = torch.round(vectors.float() * scale).clamp_(-127, 127).to(torch.int8)
    pad = -rows.shape[1] % 8
    if pad or rows.shape[1] < 8:
        rows = torch.nn.functional.pad(rows, (0, pad if rows.shape[1] >= 8 else 8 - rows.shape[1]))
    return rows.contiguous(), 1.0 / (scale * scale)


def coherence(vectors: torch.Tensor, *, block: int | None = None) -> float:
    """The exact coherence (largest ``|cos|`` between distinct rows) of ``(n, d)`` unit rows; 0 if ``n < 2``."""
    if vectors.shape[0] < 2:
        return 0.0
    values, _ = top_pairs(vectors, 1, block=block)
    return float(values.max())
