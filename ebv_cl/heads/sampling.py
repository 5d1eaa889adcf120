"""Sampled softmax over a fixed bank, in the manner of Partial FC (An et al., 2021).

With N classes, full-softmax logits cost ``B x N x d`` per step. A sampled softmax scores each batch only
against a shared set of classes: the batch's positives, their hardest negatives and a uniform random sample
of the rest; the cross-entropy is then taken over that set (no correction for the sampling, as in Partial
FC). When the set covers every class the loss equals the full cross-entropy. These are plain functions on
tensors. ``EBVHead.training_loss`` uses ``hardest_candidates`` and ``draw_excluding`` and keeps its positives
first in the class set (so no per-step sort or search is needed to find a target's column);
``sample_class_set`` and ``sampled_softmax_loss`` are the same draw and loss over a sorted class set, for
callers that hold their own class set.

Every function here runs ~10 small tensor ops per step; on one CPU thread each op costs ~5-40 us, so the
draw is written to avoid ``torch.isin`` (~130 us for 2,048 values; a binary search in a sorted set costs
~5 us) and sorts only where the result must be exact.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["blocked_topk", "draw_excluding", "hardest_candidates", "sample_class_set", "sampled_softmax_loss"]


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


def _in_sorted(values: torch.Tensor, sorted_set: torch.Tensor) -> torch.Tensor:
    """Boolean mask: which ``values`` occur in the sorted 1-D ``sorted_set`` (binary search, no hashing).

    ``torch.isin`` costs ~130 us for 2,048 values on one CPU thread; ``searchsorted`` costs ~6 us.
    """
    if sorted_set.numel() == 0:
        return torch.zeros_like(values, dtype=torch.bool)
    pos = torch.searchsorted(sorted_set, values).clamp_max_(sorted_set.numel() - 1)
    return sorted_set[pos] == values


@torch.no_grad()
def hardest_candidates(indices: torch.Tensor, scores: torch.Tensor, exclude: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` distinct candidate classes with the highest scores, skipping excluded ones.

    A class listed several times counts with its best score. Fast path: when the ``k`` best entries are
    already ``k`` distinct classes they are the answer (every other class scores at most the k-th); only when
    they repeat a class does the exact dedupe (two stable sorts) run.

    Args:
        indices: int64 candidate classes of any shape (``-1`` = none).
        scores: Their scores, same shape.
        exclude: int64 classes never returned (e.g. the positives).
        k: How many to return at most.

    Returns:
        Up to ``k`` distinct int64 class indices, best first.
    """
    idx, sc = indices.reshape(-1), scores.reshape(-1)
    if idx.numel() == 0 or k <= 0:
        return idx[:0]
    dropped = (idx < 0) | _in_sorted(idx, exclude.reshape(-1).sort().values)
    sc = sc.masked_fill(dropped, float("-inf"))
    best, pos = sc.topk(min(k, sc.numel()))
    top = idx[pos[best > float("-inf")]]
    if top.unique().numel() == top.numel():
        return top
    keep = ~dropped
    idx, sc = idx[keep], sc[keep]
    # Best score first; then the first occurrence of each class in that order is its best score. A stable
    # sort by class keeps that order inside each class's group, so a group's head is its best occurrence.
    by_score = idx[sc.argsort(descending=True, stable=True)]
    by_class = by_score.argsort(stable=True)
    grouped = by_score[by_class]
    head = torch.ones_like(grouped, dtype=torch.bool)
    head[1:] = grouped[1:] != grouped[:-1]
    first = by_class[head].sort().values[:k]
    return by_score[first]


def draw_excluding(
    num_classes: int, taken: torch.Tensor, count: int, *, generator: torch.Generator
) -> torch.Tensor:
    """``count`` distinct classes of ``0 .. num_classes-1`` outside ``taken``, drawn uniformly (unsorted).

    Rejection sampling: draw, drop repeats and taken classes, draw again for what is missing. Conditioned on
    its size, the set of distinct values of uniform draws is a uniform subset, so the result is a uniform
    sample without replacement. Costs ``O(count log count)`` while ``count`` is small against the free
    classes; above a quarter of them it draws a permutation of the free classes (``O(num_classes)``).

    Args:
        num_classes: N.
        taken: Sorted distinct int64 classes that must not be drawn.
        count: How many to draw (capped by the free classes).
        generator: The (CPU) generator the draw uses.

    Returns:
        int64 classes on ``taken``'s device.
    """
    device = taken.device
    free = num_classes - taken.numel()
    count = min(max(int(count), 0), free)
    if count > free // 4:
        mask = torch.ones(num_classes, dtype=torch.bool, device=device)
        mask[taken] = False
        free_idx = mask.nonzero().squeeze(1)
        return free_idx[torch.randperm(free_idx.numel(), generator=generator)[:count].to(device)]
    drawn = taken[:0]
    while drawn.numel() < count:
        cand = torch.randint(num_classes, (count - drawn.numel(),), generator=generator).to(device)
        cand = torch.cat([drawn, cand]).unique()  # sorted, distinct: drawn's classes stay in
        drawn = cand[~_in_sorted(cand, taken)]
    return drawn[torch.randperm(drawn.numel(), generator=generator).to(device)]


def sample_class_set(
    num_classes: int,
    required: torch.Tensor,
    num_random: int,
    *,
    generator: torch.Generator,
) -> torch.Tensor:
    """The sorted class set: every index in ``required`` plus ``num_random`` other classes drawn uniformly.

    See ``draw_excluding`` for the draw and its cost.

    Args:
        num_classes: N; classes are ``0 .. N-1``.
        required: int64 indices that must be in the set (``-1`` entries are ignored).
        num_random: How many further classes to draw without replacement (capped by those left).
        generator: The (CPU) generator the draw uses.

    Returns:
        A sorted int64 tensor of distinct class indices on ``required``'s device.
    """
    have = required[required >= 0].unique()
    drawn = draw_excluding(num_classes, have, num_random, generator=generator)
    return torch.cat([have, drawn]).sort().values


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
