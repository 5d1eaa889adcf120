"""Images decoded from their files on access, for image folders too large to hold in memory.

``LazyImages`` is a sequence of file paths that behaves like a uint8 image array for ``ArrayDataset``: indexing
decodes one file (resized to a fixed size so every item has the same ``item_shape``), and ``subset`` selects files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .archive import decode_image

__all__ = ["LazyImages"]


class LazyImages:
    """A sequence of image files decoded on access.

    Args:
        paths: The image files.
        mode: ``"L"`` (items ``(size, size)``) or ``"RGB"`` (items ``(size, size, 3)``).
        size: Every image is resized to ``size x size``.
    """

    def __init__(self, paths: Sequence[Path], *, mode: str, size: int) -> None:
        if mode not in ("L", "RGB"):
            raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
        self.paths = [Path(p) for p in paths]
        self.mode = mode
        self.size = int(size)

    @property
    def item_shape(self) -> tuple[int, ...]:
        """Shape of one decoded image: ``(size, size)`` or ``(size, size, 3)``."""
        return (self.size, self.size) if self.mode == "L" else (self.size, self.size, 3)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return decode_image(self.paths[index].read_bytes(), mode=self.mode, size=self.size)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "LazyImages":
        """The files at ``indices``."""
        return LazyImages([self.paths[int(i)] for i in indices], mode=self.mode, size=self.size)
