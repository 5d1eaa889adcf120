"""Deterministic per-class train/test splits for datasets that ship a single split.

``stratified_split`` shuffles the indices of each class with a seeded generator and sends a fixed fraction of
each class to the test side, so every class keeps the same share on both sides and the split is the same on
every machine for the same seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["stratified_split", "npz_part"]


def stratified_split(targets: Any, *, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices per class into train and test parts.

    A class with ``n >= 2`` items gets ``round(n * test_fraction)`` test items, clamped to ``[1, n - 1]`` so both
    sides see it; a class with one item goes to train.

    Args:
        targets: ``(N,)`` integer labels.
        test_fraction: Fraction of each class for the test side, in ``(0, 1)``.
        seed: Seed of the shuffling generator.

    Returns:
        ``(train_indices, test_indices)``: sorted int64 arrays that partition ``range(N)``.

    Raises:
        ValueError: if ``test_fraction`` is not in ``(0, 1)``.
    """
    if not isinstance(test_fraction, (int, float)) or not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    y = np.asarray(targets).astype(np.int64, copy=False)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_test = 0 if n < 2 else min(max(int(round(n * test_fraction)), 1), n - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    if not train:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def npz_part(arrays: Any, *, train: bool, test_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``(images, labels)`` of the train or test part of an opened ``.npz``, or ``None`` if it has neither layout.

    A file with ``train_images``/``train_labels``/``test_images``/``test_labels`` gives its own split; one with
    ``images``/``labels`` is split per class by ``stratified_split(labels, test_fraction, seed=split_seed)``.
    """
    keys = set(arrays.files)
    if {"train_images", "train_labels", "test_images", "test_labels"} <= keys:
        side = "train" if train else "test"
        return arrays[f"{side}_images"], arrays[f"{side}_labels"]
    if {"images", "labels"} <= keys:
        images, labels = arrays["images"], arrays["labels"]
        tr, te = stratified_split(labels, test_fraction=test_fraction, seed=split_seed)
        return images[tr if train else te], labels[tr if train else te]
    return None
