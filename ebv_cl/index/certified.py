"""Certified exact search: low-precision scoring of every class, then an exact re-rank of a proven-sufficient set.

For each query, every allocated class gets an approximate score ``s~`` (int8 or float32 matmul) with
``|s~ - s| <= E`` (``encoding.error_bound``). If ``t`` is the k-th largest approximate score, every class of the
exact top-k has ``s~ >= t - 2E`` (its ``s >= s_k* >= t - E``). So the classes inside that window are re-scored
in float64 (``rerank.pair_scores``) and the top-k among them is provably the exact top-k, ties included; no
query ever needs a fallback because the window is never capped. The bank is scanned in blocks with a running
k-th largest score (a lower bound of the final ``t``), so memory stays bounded by one block of scores plus
the candidates.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import torch

from .rerank import refine

__all__ = ["Stage", "certified_search", "score_block_rows"]

_QUERY_BLOCK = 1024
_SCORE_ELEMS = 1 << 24  # scores per block (64 MiB of int32/float32)
_INT32_MIN = -(2**31)
_GROUP = 32  # columns per group maximum (an int32 amax over 32 columns is one fast vector pass)


def _threshold(kth: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """The smallest raw score still inside ``kth - window``, rounded down (conservative)."""
    if kth.dtype == torch.int32:
        return torch.floor(kth.double() - window).clamp_(min=_INT32_MIN + 1).to(torch.int32)
    thr = (kth.double() - window).float()
    return torch.nextafter(thr, torch.full_like(thr, float("-inf")))


def _pad(scores: torch.Tensor) -> torch.Tensor:
    """Pad ``(q, rows)`` scores with -inf (or int32 min) to a multiple of ``_GROUP`` columns."""
    pad = -scores.shape[1] % _GROUP
    if pad:
        low = _INT32_MIN if scores.dtype == torch.int32 else float("-inf")
        scores = torch.nn.functional.pad(scores, (0, pad), value=low)
    return scores.contiguous()


def _candidates(
    blocks: Iterator[tuple[int, torch.Tensor]], nq: int, n: int, k: int, window: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs ``(query index, slot)`` whose approximate score is within ``window`` of the k-th best.

    Each block of scores is reduced to the maximum of every group of ``_GROUP`` columns (one fast pass); the
    k-th largest group maximum is a lower bound of the k-th largest score, so thresholding with it keeps a
    superset of the window, and only the groups whose maximum passes are looked at element by element.
    """
    top: torch.Tensor | None = None
    found_q, found_s, found_v = [], [], []
    for j0, block_scores in blocks:
        rows = block_scores.shape[1]
        scores = _pad(block_scores)
        groups = scores.view(nq, -1, _GROUP)
        gmax = groups.amax(dim=2)
        best = gmax.amax(dim=1, keepdim=True) if k == 1 else gmax.topk(min(k, gmax.shape[1]), dim=1).values
        if top is not None:
            best = torch.cat([top, best], dim=1)
            best = best.topk(min(k, best.shape[1]), dim=1).values
        top = best
        if top.shape[1] < k:  # fewer than k groups seen so far: keep every row
            low = _INT32_MIN + 1 if scores.dtype == torch.int32 else -torch.finfo(scores.dtype).max
            thr = torch.full((nq,), low, dtype=scores.dtype, device=scores.device)
        else:
            thr = _threshold(top[:, k - 1], window)
        gq, gc = torch.nonzero(gmax >= thr[:, None], as_tuple=True)
        hits = groups[gq, gc]
        hq, hb = torch.nonzero(hits >= thr[gq, None], as_tuple=True)
        qi, col, raw = gq[hq], gc[hq] * _GROUP + hb, hits[hq, hb]
        inside = col < rows  # drop the padding columns
        found_q.append(qi[inside])
        found_s.append(col[inside] + j0)
        found_v.append(raw[inside])
    qi, slots, raw = torch.cat(found_q), torch.cat(found_s), torch.cat(found_v)
    if top is not None and top.shape[1] >= k:  # prune with the final k-th best (earlier blocks used a lower one)
        keep = raw >= _threshold(top[:, k - 1], window)[qi]
        qi, slots = qi[keep], slots[keep]
    return qi, slots


class Stage(Protocol):
    """Low-precision scoring of every bank row with a per-query error bound (see the module docstring)."""

    def scan(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, Iterator[tuple[int, torch.Tensor]]]:
        """The candidate window and the score blocks of rows ``0 .. n-1`` for ``(q, dim)`` unit queries.

        Returns:
            ``(window, blocks)``: the per-query ``(q,)`` float64 window width ``2 E + 2 E_float64`` in the raw
            units of the scores, and an iterator of ``(first_row, scores)`` with ``scores`` of shape
            ``(q, rows)`` (int32 or float32) covering the rows in order.
        """


def score_block_rows(nq: int, k: int) -> int:
    """Bank rows per score block: about ``_SCORE_ELEMS`` scores, a multiple of the group size."""
    return -(-max(k, _SCORE_ELEMS // max(1, nq)) // _GROUP) * _GROUP


def certified_search(
    queries: torch.Tensor, vectors: torch.Tensor, stage: Stage, *, n: int, k: int, vector_norm: float = 1.0 + 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k over the first ``n`` bank rows, scored by ``stage`` and re-ranked exactly.

    Args:
        queries: ``(q, dim)`` float32 unit queries on the stage's device.
        vectors: ``(N, dim)`` float32 unit bank vectors on the same device (used for the re-rank).
        stage: The low-precision scorer with its error bound.
        n: How many leading rows (allocated slots) to search.
        k: How many classes per query, ``1 <= k <= n``.
        vector_norm: An upper bound of every bank vector's norm.

    Returns:
        ``(scores, slots)``: float32 ``(q, k)`` and int64 ``(q, k)``, equal to ``rerank.exact_search``.
    """
    out_s, out_i = [], []
    for i0 in range(0, queries.shape[0], _QUERY_BLOCK):
        q = queries[i0 : i0 + _QUERY_BLOCK]
        window, blocks = stage.scan(q, n, k)
        qi, slots = _candidates(blocks, q.shape[0], n, k, window.to(q.device))
        scores, best = refine(q, vectors, qi, slots, k=k, vector_norm=vector_norm)
        out_s.append(scores)
        out_i.append(best)
    return torch.cat(out_s), torch.cat(out_i)
