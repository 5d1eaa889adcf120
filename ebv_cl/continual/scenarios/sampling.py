"""Seeded per-class sampling of dataset indices, and the exponential long-tail profile.

Every function takes the labels as an ``(N,)`` int array and a ``numpy.random.Generator`` and returns sorted
int64 indices, so the same seed always selects the same items.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["take_per_class", "exponential_counts"]


def take_per_class(targets: np.ndarray, counts: Mapping[int, int | None], *, rng: np.random.Generator) -> np.ndarray:
    """Draw ``counts[c]`` items of each class ``c`` without replacement (``None``: all of them).

    Classes not in ``counts`` are left out. A count larger than the class is clipped to its size.

    Returns:
        Sorted int64 indices into ``targets``.
    """
    out = []
    for c in sorted(counts):
        idx = np.flatnonzero(targets == c)
        k = counts[c]
        if k is not None and k < len(idx):
            idx = np.sort(idx[rng.permutation(len(idx))[:k]])
        out.append(idx)
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


def exponential_counts(n_max: int, imbalance_ratio: float, n_classes: int) -> list[int]:
    """Per-class counts ``n_c = floor(n_max * ratio ** (-c / (C - 1)))`` for ``c = 0..C-1`` (at least 1).

    This is the long-tailed CIFAR profile of Cui et al. (2019) used by papers 001/002: class 0 keeps ``n_max``
    items and class ``C - 1`` keeps ``n_max / ratio``.
    """
    if n_classes == 1:
        return [int(n_max)]
    return [max(1, int(np.floor(n_max * imbalance_ratio ** (-c / (n_classes - 1)) + 1e-9))) for c in range(n_classes)]
