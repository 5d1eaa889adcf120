"""Sampled softmax over a fixed bank, in the manner of Partial FC (An et al., 2021).

With N classes, full-softmax logits cost ``B x N x d`` per step. A sampled softmax scores each batch only
against a shared set of classes: the batch's positives, their hardest negatives and a uniform random sample
of the rest; the cross-entropy is then taken over that set (no correction for the sampling, as in Partial
FC). When the set covers every class the loss equals the full cross-entropy. These are plain functions on
tensors, used by ``EBVHead.training_loss``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["blocked_topk", "hardest_candidates", "sample_class_set", "sampled_softmax_loss"]


@torch.no_grad()
def blocked_topk(
    queries: torch.Tensor,
    vectors: torch.Tensor,
    k: int,
    *,
    exclude: torch.Tensor | None = None,
    block: int = 16384,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` rows of ``vectors`` by inner product with each query, in blocks of ``block`` rows.

    Args:
        queries: ``(Q, d)`` float tensor.
        vectors: ``(N, d)`` float tensor.
        k: How many rows per query.
        exclude: Optional ``(Q,)`` int64 row per query that must not be returned (e.g. its positive).
        block: Rows of ``vectors`` scored at once (bounds memory at ``Q x block`` scores).

    Returns:
        ``(scores, indices)``, both ``(Q, k)``, best first; where fewer than ``k`` rows qualify the rest are
        ``-inf`` and ``-1``.
    """
    q = queries.shape[0]
    best_s = torch.full((q, k), float("-inf"), dtype=queries.dtype, device=queries.device)
    best_i = torch.full((q, k), -1, dtype=torch.int64, device=queries.device)
    rows = torch.arange(q, device=queries.device)
    for start in range(0, vectors.shape[0], block):
        scores = queries @ vectors[start : start + block].T
        if exclude is not None:
            local = exclude - start
            inside = (local >= 0) & (local < scores.shape[1])
            scores[rows[inside], local[inside]] = float("-inf")
        kk = min(k, scores.shape[1])
        s, i = scores.topk(kk, dim=1)
        s, order = torch.cat([best_s, s], dim=1).topk(k, dim=1)
        best_i = torch.cat([best_i, i + start], dim=1).gather(1, order)
        best_s = s
    best_i[torch.isinf(best_s)] = -1
    return best_s, best_i


@torch.no_grad()
def hardest_candidates(indices: torch.Tensor, scores: torch.Tensor, exclude: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` distinct candidate classes with the highest scores, skipping excluded ones.

    Args:
        indices: int64 candidate classes of any shape (``-1`` = none).
        scores: Their scores, same shape.
        exclude: int64 classes never returned (e.g. the positives).
        k: How many to return at most.

    Returns:
        Up to ``k`` distinct int64 class indices, best first.
    """
    idx, sc = indices.reshape(-1), scores.reshape(-1)
    keep = (idx >= 0) & ~torch.isin(idx, exclude)
    idx, sc = idx[keep], sc[keep]
    if idx.numel() == 0 or k <= 0:
        return idx[:0]
    uniq, inverse = idx.unique(return_inverse=True)
    best = torch.full(uniq.shape, float("-inf"), dtype=sc.dtype, device=sc.device)
    best = best.scatter_reduce(0, inverse, sc, reduce="amax")
    return uniq[best.topk(min(k, uniq.numel())).indices]


def sample_class_set(
    num_classes: int,
    required: torch.Tensor,
    num_random: int,
    *,
    generator: torch.Generator,
) -> torch.Tensor:
    """The sorted class set: every index in ``required`` plus ``num_random`` other classes drawn uniformly.

    The draw costs ``O(num_random log num_random)`` (rejection sampling), not ``O(num_classes)``, unless the
    draw takes more than a quarter of the free classes.

    Args:
        num_classes: N; classes are ``0 .. N-1``.
        required: int64 indices that must be in the set (``-1`` entries are ignored).
        num_random: How many further classes to draw without replacement (capped by those left).
        generator: The (CPU) generator the draw uses.

    Returns:
        A sorted int64 tensor of distinct class indices on ``required``'s device.
    """
    device = required.device
    have = required[required >= 0].unique()
    free = num_classes - have.numel()
    need = min(max(num_random, 0), free)
    if need > free // 4:
        mask = torch.ones(num_classes, dtype=torch.bool, device=device)
        mask[have] = False
        free_idx = mask.nonzero().squeeze(1)
        pick = torch.randperm(free_idx.numel(), generator=generator)[:need].to(device)
        return torch.cat([have, free_idx[pick]]).sort().values
    while need > 0:
        cand = torch.randint(num_classes, (2 * need,), generator=generator).to(device).unique()
        cand = cand[~torch.isin(cand, have)]
        cand = cand[torch.randperm(cand.numel(), generator=generator)[:need].to(device)]
        have = torch.cat([have, cand])
        need -= cand.numel()
    return have.sort().values


def sampled_softmax_loss(
    embeddings: torch.Tensor,
    vectors: torch.Tensor,
    targets: torch.Tensor,
    class_set: torch.Tensor,
    *,
    temperature: float,
) -> torch.Tensor:
    """Mean cross-entropy of ``embeddings @ vectors[class_set].T / temperature`` over the class set.

    Args:
        embeddings: ``(B, d)`` L2-normalised embeddings.
        vectors: ``(N, d)`` class vectors.
        targets: ``(B,)`` int64 class indices, all inside ``class_set``.
        class_set: Sorted distinct int64 class indices.
        temperature: The softmax temperature.

    Returns:
        The scalar loss.
    """
    local = torch.searchsorted(class_set, targets)
    logits = embeddings @ vectors.index_select(0, class_set).T
    return nn.functional.cross_entropy(logits / temperature, local)
