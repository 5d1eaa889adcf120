"""scikit-learn's handwritten digits (8x8, 10 classes, 1,797 images): the embedded default, no root needed.

The data ships with scikit-learn, so it is always available. Pixel values 0..16 are mapped to uint8
``round(v * 255 / 16)``. There is no official split: a stratified 75/25 split with seed 0 is used
(``test_fraction``, ``split_seed`` to change it).
"""

from __future__ import annotations

import os

import numpy as np

from ..dataset import ArrayDataset
from ..registry import DATASETS
from ..split import stratified_split

__all__ = ["load_digits"]


@DATASETS.register("digits")
def load_digits(
    *, root: str | os.PathLike | None = None, train: bool = True, test_fraction: float = 0.25, split_seed: int = 0
) -> ArrayDataset:
    """Load scikit-learn's digits as ``(1, 8, 8)`` images; ``root`` is ignored.

    Args:
        root: Ignored (the data is embedded in scikit-learn).
        train: Training or test part of the deterministic stratified split.
        test_fraction: Share of each class in the test part.
        split_seed: Seed of the split.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    tr, te = stratified_split(labels, test_fraction=test_fraction, seed=split_seed)
    idx = tr if train else te
    return ArrayDataset(images[idx], labels[idx], classes=[str(i) for i in range(10)], name="digits")
