"""Decode "one folder per class" image collections, from a folder or straight from an archive.

``read_class_folders`` reads every image whose path ends in ``<split>/<class>/<file>`` (or ``<class>/<file>`` when
``splits`` is ``None``), decodes it with Pillow, optionally resized, and returns uint8 arrays per split with
labels given by the sorted class-folder names, so the label order is the same on every machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataRootError
from .archive import decode_image, iter_files

__all__ = ["IMAGE_SUFFIXES", "read_class_folders"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _stack(items: list[np.ndarray], source: Path) -> np.ndarray:
    shapes = {a.shape for a in items}
    if len(shapes) > 1:
        raise DataRootError(
            f"images under {str(source)!r} have different sizes {sorted(shapes)[:4]}...; pass the option size=N to "
            "resize them to N x N"
        )
    return np.stack(items) if items else np.zeros((0, 1, 1), np.uint8)


def read_class_folders(
    source: Path,
    *,
    splits: Sequence[str] | None,
    mode: str,
    size: int | None = None,
    dataset: str,
) -> dict[str, np.ndarray | list[str]]:
    """Decode a class-per-folder image collection.

    Args:
        source: A folder or an archive.
        splits: Split folder names (``("train", "test")``): an image belongs to split ``s`` when its path ends in
            ``s/<class>/<file>``. ``None``: paths end in ``<class>/<file>`` and everything is one split ``"all"``.
        mode: ``"L"`` or ``"RGB"``.
        size: Resize every image to ``size x size``; ``None`` keeps the size (all images must then agree).
        dataset: Name for error messages.

    Returns:
        ``{"classes": sorted class names, "<split>_images": uint8 array, "<split>_labels": int64 array, ...}``;
        items within a split are ordered by path.

    Raises:
        DataRootError: if a split has no image or images differ in size without ``size``.
    """
    wanted = list(splits) if splits is not None else ["all"]
    found: dict[str, list[tuple[str, str, np.ndarray]]] = {s: [] for s in wanted}
    for rel, data in iter_files(source, IMAGE_SUFFIXES):
        parts = rel.split("/")
        if splits is None:
            if len(parts) < 2:
                continue
            split = "all"
        else:
            if len(parts) < 3 or parts[-3] not in found:
                continue
            split = parts[-3]
        image = decode_image(data, mode=mode, size=size, name=f"{rel!r} in {str(source)!r}")
        found[split].append((rel, parts[-2], image))
    classes = sorted({c for items in found.values() for _, c, _ in items})
    index = {c: i for i, c in enumerate(classes)}
    out: dict[str, np.ndarray | list[str]] = {"classes": classes}
    for split, items in found.items():
        if not items:
            layout = "<class>/<image>" if splits is None else f"{split}/<class>/<image>"
            raise DataRootError(f"dataset {dataset!r}: no image found as {layout} under {str(source)!r}")
        items.sort(key=lambda t: t[0])
        out[f"{split}_images"] = _stack([a for _, _, a in items], source)
        out[f"{split}_labels"] = np.array([index[c] for _, c, _ in items], dtype=np.int64)
    return out
