"""MNIST and Fashion-MNIST from their IDX files (``.gz`` or uncompressed).

Looked for, in order, in ``root/<folder>/`` for each candidate folder (``mnist``, ``mnist-test``,
``MNIST/raw`` for MNIST; ``fashion-mnist``, ``FashionMNIST/raw`` for Fashion-MNIST; and ``root`` itself):
``{train,t10k}-images-idx3-ubyte[.gz]`` and ``{train,t10k}-labels-idx1-ubyte[.gz]``. Only the MNIST test set
exists offline; asking for the training split from a root without it raises ``DataRootError`` naming the files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ...errors import DataRootError
from ..dataset import ArrayDataset
from ..idx import read_idx
from ..registry import DATASETS
from ..roots import resolve_root

__all__ = ["load_mnist", "load_fashion_mnist", "load_idx_pair"]

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_pair(root: Path, *, dataset: str, folders: Sequence[str], train: bool) -> tuple:
    """Find and read the images and labels IDX files of one split; returns ``(images, labels)``.

    Raises:
        DataRootError: if no candidate folder holds both files; the message names the files and folders.
    """
    prefix = "train" if train else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    for name in folders:
        folder = root / name
        found = [_find(folder, s) for s in stems]
        if all(found):
            images, labels = read_idx(found[0]), read_idx(found[1])
            if images.ndim != 3 or labels.shape != (images.shape[0],):
                raise DataRootError(f"{dataset}: {found[0]} and {found[1]} disagree: images {images.shape}, "
                                    f"labels {labels.shape}")
            return images, labels
    split = "training" if train else "test"
    raise DataRootError(
        f"{dataset} {split} split not found under {str(root)!r}: expected {stems[0]}[.gz] and {stems[1]}[.gz] "
        f"in one of " + ", ".join(str(root / f) for f in folders)
    )


@DATASETS.register("mnist")
def load_mnist(*, root: str | os.PathLike | None = None, train: bool = True) -> ArrayDataset:
    """Load MNIST (``(1, 28, 28)``, 10 classes). Offline only the test split (``train=False``) exists."""
    base = resolve_root(root, dataset="mnist")
    images, labels = load_idx_pair(base, dataset="mnist", folders=["mnist", "mnist-test", "MNIST/raw", "."],
                                   train=train)
    return ArrayDataset(images, labels, classes=[str(i) for i in range(10)], name="mnist")


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(*, root: str | os.PathLike | None = None, train: bool = True) -> ArrayDataset:
    """Load Fashion-MNIST (``(1, 28, 28)``, 10 classes, 60,000 train + 10,000 test)."""
    base = resolve_root(root, dataset="fashion_mnist")
    images, labels = load_idx_pair(base, dataset="fashion_mnist",
                                   folders=["fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "."], train=train)
    return ArrayDataset(images, labels, classes=FASHION_CLASSES, name="fashion_mnist")
