"""TinyImageNet (200 classes, 64x64 RGB): ``tiny-imagenet-200/`` from a folder or an archive.

Layout: ``wnids.txt`` (class ids), ``train/<wnid>/images/*.JPEG`` (500 per class) and ``val/images/*.JPEG`` with
``val/val_annotations.txt`` (``<file>\\t<wnid>\\t...``) giving the label of each validation image; the validation
set is the test split. Labels follow the sorted ``wnid``s. Decoded arrays are cached as ``.npy``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import DataRootError
from ..archive import decode_image, iter_files
from ..cache import cached_arrays, source_fingerprint
from ..dataset import ArrayDataset
from ..registry import DATASETS
from ..roots import find_source, resolve_root

__all__ = ["load_tinyimagenet"]


def _decode(source: Path) -> dict[str, np.ndarray]:
    train, val, annotations = [], {}, {}
    for rel, data in iter_files(source, (".jpeg", ".jpg", "val_annotations.txt")):
        parts = rel.split("/")
        if parts[-1] == "val_annotations.txt":
            for line in data.decode().splitlines():
                fields = line.split("\t")
                if len(fields) >= 2:
                    annotations[fields[0]] = fields[1]
        elif len(parts) >= 4 and parts[-2] == "images" and parts[-4] == "train":
            train.append((rel, parts[-3], decode_image(data, mode="RGB")))
        elif len(parts) >= 3 and parts[-2] == "images" and parts[-3] == "val":
            val[parts[-1]] = decode_image(data, mode="RGB")
    if not train or not val:
        raise DataRootError(f"tinyimagenet: expected train/<wnid>/images/*.JPEG and val/images/*.JPEG under "
                            f"{str(source)!r}, found {len(train)} train and {len(val)} val images")
    missing = sorted(set(val) - set(annotations))
    if missing:
        raise DataRootError(f"tinyimagenet: val/val_annotations.txt has no label for {missing[:3]}...")
    wnids = sorted({w for _, w, _ in train})
    index = {w: i for i, w in enumerate(wnids)}
    unknown = sorted({annotations[f] for f in val} - set(index))
    if unknown:
        raise DataRootError(f"tinyimagenet: validation labels {unknown[:3]} have no train/<wnid>/ folder")
    train.sort(key=lambda t: t[0])
    names = sorted(val)
    return {
        "train_images": np.stack([a for _, _, a in train]),
        "train_labels": np.array([index[w] for _, w, _ in train], dtype=np.int64),
        "test_images": np.stack([val[n] for n in names]),
        "test_labels": np.array([index[annotations[n]] for n in names], dtype=np.int64),
        "classes": np.array(wnids),
    }


@DATASETS.register("tinyimagenet")
def load_tinyimagenet(
    *, root: str | os.PathLike | None = None, train: bool = True, cache: bool = True
) -> ArrayDataset:
    """Load TinyImageNet as ``(3, 64, 64)`` images (train: 100,000; test = official val: 10,000).

    Raises:
        DataRootError: if ``tiny-imagenet-200/`` (or ``tiny-imagenet-200.zip``) is missing or malformed.
    """
    base = resolve_root(root, dataset="tinyimagenet")
    source = find_source(
        base, dataset="tinyimagenet", folders=["tiny-imagenet-200", "tinyimagenet", "."],
        archives=["tiny-imagenet-200.zip", "tiny-imagenet-200.tar.gz"],
        is_valid=lambda p: (p / "train").is_dir() and (p / "val").is_dir(),
        expected="tiny-imagenet-200/{train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt} or "
                 "tiny-imagenet-200.zip",
    )
    key = {"loader": "tinyimagenet", "version": 1, "source": source_fingerprint(source)}
    arrays = cached_arrays("tinyimagenet", key, lambda: _decode(source), use_cache=cache)
    side = "train" if train else "test"
    return ArrayDataset(arrays[f"{side}_images"], arrays[f"{side}_labels"],
                        classes=[str(c) for c in arrays["classes"]], name="tinyimagenet")
