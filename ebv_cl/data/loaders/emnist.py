"""EMNIST ByClass (62 classes 0-9, A-Z, a-z; strongly imbalanced) from an ``.npz`` file.

The file holds ``images`` uint8 ``(n, 28, 28)`` (upright), ``labels`` int ``(n,)`` and ``mapping`` ``(62,)``, the
Unicode code point of each label. Offline only the official test split exists (``emnist-byclass-test.npz``), so
train and test are a deterministic stratified split of that file: ``test_fraction`` (default 0.2) of each class
goes to test, shuffled with ``split_seed``; the natural class imbalance is kept on both sides. A file that holds
``train_images``/``train_labels``/``test_images``/``test_labels`` instead is read with its own split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import DataRootError
from ..dataset import ArrayDataset
from ..registry import DATASETS
from ..roots import resolve_root
from ..split import npz_part

__all__ = ["load_emnist_byclass"]

_CANDIDATES = ("emnist-byclass-test.npz", "emnist-byclass.npz", "emnist/emnist-byclass-test.npz",
               "emnist/emnist-byclass.npz")


@DATASETS.register("emnist_byclass")
def load_emnist_byclass(
    *,
    root: str | os.PathLike | None = None,
    train: bool = True,
    path: str | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> ArrayDataset:
    """Load EMNIST ByClass as ``(1, 28, 28)`` images with class names from ``mapping``.

    Args:
        root: The data root (``$EBV_CL_DATA`` by default).
        train: Training or test part.
        path: The ``.npz`` file, absolute or relative to ``root``; default: the first of ``emnist-byclass-test.npz``,
            ``emnist-byclass.npz`` (also under ``emnist/``) that exists.
        test_fraction: Share of each class in the test part when the file has a single split.
        split_seed: Seed of that split.

    Raises:
        DataRootError: if the file is missing or lacks the arrays ``images``, ``labels``.
    """
    if path is not None and os.path.isabs(path):
        candidates = [Path(path)]
    else:
        base = resolve_root(root, dataset="emnist_byclass")
        candidates = [base / path] if path is not None else [base / c for c in _CANDIDATES]
    found = next((c for c in candidates if os.path.isfile(c)), None)
    if found is None:
        raise DataRootError(
            "dataset 'emnist_byclass' not found: expected an .npz with arrays images (n, 28, 28) uint8, labels (n,), "
            "mapping (62,) at one of " + ", ".join(str(c) for c in candidates)
        )
    with np.load(found) as z:
        keys = set(z.files)
        mapping = z["mapping"] if "mapping" in keys else None
        part = npz_part(z, train=train, test_fraction=test_fraction, split_seed=split_seed)
        if part is None:
            raise DataRootError(f"{str(found)!r} must hold arrays 'images' and 'labels' (and 'mapping'); "
                                f"it holds {sorted(keys)}")
        images, labels = part
    classes = [chr(int(c)) for c in mapping] if mapping is not None else None
    return ArrayDataset(np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64), classes=classes,
                        name="emnist_byclass")
