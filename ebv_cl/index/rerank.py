"""Exact float64 scoring, the deterministic top-k rule, and the brute-force oracle.

"Exact" in ebv-cl means: classes are ranked by the float64 inner product of the float32 unit query with the
float32 unit bank vector (every product is exact in float64; the sum of ``dim`` terms is off by at most
``dim * 2^-53``), and equal scores are broken by the lower slot first, as FAISS does. Every exact search path
returns what ``exact_search`` returns.
"""

from __future__ import annotations

import torch

__all__ = ["pair_scores", "topk_of_pairs", "refine", "exact_search", "unit_queries"]

_CHUNK_ELEMS = 1 << 22  # elements per temporary (32 MiB of float64)
_U32 = 2.0**-24
_U64 = 2.0**-53


def unit_queries(x: torch.Tensor) -> torch.Tensor:
    """Scale finite, non-zero float32 rows to unit length without overflow or underflow.

    Rows are first divided by their largest absolute entry (so squares cannot overflow or vanish), then
    L2-normalised in float32.
    """
    peak = x.abs().amax(dim=1, keepdim=True)
    return torch.nn.functional.normalize(x / peak, dim=1)


def pair_scores(
    queries: torch.Tensor,
    vectors: torch.Tensor,
    qi: torch.Tensor,
    slots: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Scores ``queries[qi[p]] . vectors[slots[p]]`` for every pair ``p`` in ``dtype``, shape ``(P,)``."""
    out = torch.empty(qi.shape[0], dtype=dtype, device=queries.device)
    step = max(1, _CHUNK_ELEMS // max(1, queries.shape[1]))
    for start in range(0, qi.shape[0], step):
        q = queries.index_select(0, qi[start : start + step]).to(dtype)
        v = vectors.index_select(0, slots[start : start + step]).to(dtype)
        out[start : start + step] = (q * v).sum(dim=1)
    return out


def refine(
    queries: torch.Tensor,
    vectors: torch.Tensor,
    qi: torch.Tensor,
    slots: torch.Tensor,
    *,
    k: int,
    vector_norm: float = 1.0 + 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of each query among candidate pairs that are known to contain its exact top-k.

    The pairs are first scored in float32 (error at most ``gamma_dim(2^-24) ||q|| ||b||``); only those within
    twice that bound (plus the float64 error) of the k-th best float32 score can still be in the exact top-k,
    and only they are scored in float64.

    Args:
        queries: ``(q, dim)`` float32 unit queries.
        vectors: ``(N, dim)`` float32 bank vectors.
        qi: ``(P,)`` query index of each candidate pair.
        slots: ``(P,)`` slot of each candidate pair.
        k: How many to return per query.
        vector_norm: An upper bound of every bank vector's norm.

    Returns:
        ``(scores, slots)``: float32 ``(q, k)`` (float64 rounded once) and int64 ``(q, k)``.
    """
    dim = queries.shape[1]
    approx = pair_scores(queries, vectors, qi, slots, dtype=torch.float32)
    kth, _ = topk_of_pairs(qi, slots, approx.double(), n_queries=queries.shape[0], k=k)
    norm = float(queries.norm(dim=1).max()) * vector_norm * (1 + 1e-6)
    window = 2 * (dim * _U32 / (1 - dim * _U32) + dim * _U64) * norm + 1e-12
    keep = approx.double() >= kth[:, k - 1][qi] - window
    qi, slots = qi[keep], slots[keep]
    scores, best = topk_of_pairs(qi, slots, pair_scores(queries, vectors, qi, slots), n_queries=queries.shape[0], k=k)
    return scores.float(), best


def topk_of_pairs(
    qi: torch.Tensor, slots: torch.Tensor, scores: torch.Tensor, *, n_queries: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best pairs of every query: highest score first, lower slot first on equal scores.

    Args:
        qi: ``(P,)`` query index of each pair.
        slots: ``(P,)`` bank slot of each pair.
        scores: ``(P,)`` float64 score of each pair.
        n_queries: The number of queries (every one must own at least ``k`` pairs).
        k: How many to keep per query.

    Returns:
        ``(scores, slots)`` of shape ``(n_queries, k)``: float64 and int64.
    """
    order = torch.argsort(slots, stable=True)
    order = order[torch.argsort(-scores[order], stable=True)]
    order = order[torch.argsort(qi[order], stable=True)]
    counts = torch.bincount(qi, minlength=n_queries)
    if bool((counts < k).any()):  # internal invariant: the candidate window always holds the true top-k
        raise RuntimeError(f"internal error: a query has fewer than k={k} candidates ({int(counts.min())})")
    starts = torch.cumsum(counts, 0) - counts
    pick = order[starts[:, None] + torch.arange(k, device=qi.device)[None, :]]
    return scores[pick], slots[pick]


def exact_search(
    vectors: torch.Tensor, queries: torch.Tensor, k: int, *, n: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute-force exact top-k over the first ``n`` rows of ``vectors`` (the oracle of every exact path).

    Args:
        vectors: ``(N, dim)`` float32 unit bank vectors.
        queries: ``(q, dim)`` float32 unit queries on the same device.
        k: How many classes per query (``1 <= k <= n``).
        n: How many leading rows to search (all when ``None``).

    Returns:
        ``(scores, slots)``: float32 ``(q, k)`` scores (float64 rounded once) and int64 ``(q, k)`` slots.
    """
    n = vectors.shape[0] if n is None else n
    q64 = queries.double()
    nq, dim = queries.shape
    best_s = torch.full((nq, 0), float("-inf"), dtype=torch.float64, device=queries.device)
    best_i = torch.zeros((nq, 0), dtype=torch.int64, device=queries.device)
    step = max(k, _CHUNK_ELEMS // max(1, nq * dim))
    for j0 in range(0, n, step):
        j1 = min(n, j0 + step)
        block = (q64[:, None, :] * vectors[j0:j1].double()[None, :, :]).sum(dim=-1)
        slots = torch.arange(j0, j1, device=queries.device).expand(nq, -1)
        s = torch.cat([best_s, block], dim=1)
        i = torch.cat([best_i, slots], dim=1)  # slots ascend along dim 1, so a stable sort keeps lower first
        order = torch.argsort(-s, dim=1, stable=True)[:, :k]
        best_s, best_i = s.gather(1, order), i.gather(1, order)
    return best_s.float(), best_i
