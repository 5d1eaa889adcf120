"""Omniglot: 1,623 handwritten characters of 50 alphabets, 20 drawers each, 105x105 binary PNGs.

Read from ``images_background/`` (964 characters) and ``images_evaluation/`` (659) in a folder ``root/omniglot/``
(also ``omniglot-py/``, torchvision's layout, or ``root`` itself) or straight from ``root/omniglot.tar.gz``; the
decoded, resized arrays are cached as ``.npy`` per ``size``.

Labels: characters are numbered in a fixed order, background before evaluation, then by alphabet name, then
character folder name, so label ``i`` is the same character everywhere. Split: the images of each character,
sorted by file name (``<id>_<drawer>.png``, drawers 01..20), go to train for the first ``train_drawers``
(default 15) and to test for the rest (5), so every character is in both splits. Images are resized to
``size x size`` (default 28) and, with ``invert`` (default), strokes are bright on a dark background like MNIST.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import DataRootError
from ...validation import check_positive_int
from ..archive import decode_image, iter_files
from ..cache import cached_arrays, source_fingerprint
from ..dataset import ArrayDataset
from ..registry import DATASETS
from ..roots import find_source, resolve_root

__all__ = ["load_omniglot"]

_BACKGROUNDS = ("images_background", "images_evaluation")


def _decode_all(source: Path, size: int, invert: bool) -> dict[str, np.ndarray]:
    items = []
    for rel, data in iter_files(source, (".png",)):
        parts = rel.split("/")
        hits = [i for i, p in enumerate(parts) if p in _BACKGROUNDS]
        if not hits or len(parts) - hits[-1] != 4:
            continue
        i = hits[-1]
        key = (_BACKGROUNDS.index(parts[i]), parts[i + 1], parts[i + 2])
        img = decode_image(data, mode="L", size=size, name=f"{rel!r} in {str(source)!r}")
        items.append((key, parts[i + 3], 255 - img if invert else img))
    if not items:
        raise DataRootError(f"omniglot: no PNG found as images_{{background,evaluation}}/<alphabet>/<character>/"
                            f"<image>.png under {str(source)!r}")
    items.sort(key=lambda t: (t[0], t[1]))
    chars = sorted({k for k, _, _ in items})
    index = {k: n for n, k in enumerate(chars)}
    labels = np.array([index[k] for k, _, _ in items], dtype=np.int64)
    position = np.zeros(len(items), dtype=np.int64)
    for n in range(1, len(items)):
        position[n] = position[n - 1] + 1 if labels[n] == labels[n - 1] else 0
    classes = np.array([f"{alphabet}/{char}" for _, alphabet, char in chars])
    return {"images": np.stack([a for _, _, a in items]), "labels": labels, "position": position,
            "classes": classes}


@DATASETS.register("omniglot")
def load_omniglot(
    *,
    root: str | os.PathLike | None = None,
    train: bool = True,
    size: int = 28,
    train_drawers: int = 15,
    invert: bool = True,
    cache: bool = True,
) -> ArrayDataset:
    """Load Omniglot as ``(1, size, size)`` images of 1,623 character classes.

    Args:
        root: The data root (``$EBV_CL_DATA`` by default).
        train: The first ``train_drawers`` images of each character (train) or the remaining ones (test).
        size: Side of the resized square images (105 keeps the original size).
        train_drawers: How many images per character go to train (1..19).
        invert: Make strokes bright (255) on a dark (0) background.
        cache: Store/reuse the decoded arrays in the cache folder.

    Raises:
        DataRootError: if neither the folders nor the archive are found.
    """
    size = check_positive_int(size, name="size")
    train_drawers = check_positive_int(train_drawers, name="train_drawers", maximum=19)
    base = resolve_root(root, dataset="omniglot")
    source = find_source(
        base, dataset="omniglot", folders=["omniglot", "omniglot-py", "."], archives=["omniglot.tar.gz"],
        is_valid=lambda p: any((p / b).is_dir() for b in _BACKGROUNDS),
        expected="images_background/ and images_evaluation/ (<alphabet>/<character>/*.png) in a folder omniglot/ "
                 "or the archive omniglot.tar.gz",
    )
    key = {"loader": "omniglot", "version": 1, "size": size, "invert": bool(invert),
           "source": source_fingerprint(source)}
    arrays = cached_arrays(f"omniglot-{size}", key, lambda: _decode_all(source, size, bool(invert)), use_cache=cache)
    keep = arrays["position"] < train_drawers if train else arrays["position"] >= train_drawers
    return ArrayDataset(arrays["images"][keep], arrays["labels"][keep], classes=[str(c) for c in arrays["classes"]],
                        name="omniglot")
