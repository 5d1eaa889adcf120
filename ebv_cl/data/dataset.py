"""In-memory image classification datasets with the ``.targets`` that Avalanche needs.

An ``ArrayDataset`` holds images as a uint8 array of shape ``(N, H, W)`` or ``(N, H, W, C)`` (or a lazily decoded
sequence of files with the same item shape) and integer labels ``targets`` (a ``LongTensor``). Indexing returns a
float32 tensor ``(C, H, W)`` scaled to ``[0, 1]`` (and optionally standardised per channel) and a plain ``int``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ArrayDataset", "MAX_LABEL"]

# Class ids index a list of class names (and a head's columns), so the largest id decides what is allocated; one
# stray label of 10^9 would otherwise build a billion-entry list. Loaders of sparse ids remap them densely.
MAX_LABEL = 2**24 - 1


def _as_targets(targets: Any, n: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(targets))
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.ndim != 1:
        raise TypeError(f"targets must be a 1-d integer sequence, got {t.dtype} of shape {tuple(t.shape)}")
    if t.shape[0] != n:
        raise ValueError(f"targets has {t.shape[0]} labels but images has {n} items")
    if n and int(t.min()) < 0:
        raise ValueError(f"targets must be >= 0, got minimum {int(t.min())}")
    if n and int(t.max()) > MAX_LABEL:
        raise ValueError(f"targets hold the label {int(t.max())}; labels must be at most {MAX_LABEL} (they index the "
                         "list of class names): remap them to 0..K-1")
    return t.to(torch.long).contiguous()


def _check_images(images: Any) -> Any:
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
        if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
            raise TypeError(f"images must be uint8 (0..255) or floating (already scaled), got {images.dtype}")
        return images
    if not (hasattr(images, "__getitem__") and hasattr(images, "__len__") and hasattr(images, "item_shape")):
        raise TypeError(f"images must be a numpy array or a lazy image sequence, got {type(images).__name__}")
    return images


class ArrayDataset(Dataset):
    """A labelled image dataset held in memory (or decoded lazily from files).

    Args:
        images: uint8 array ``(N, H, W)`` or ``(N, H, W, C)`` (values 0..255), a floating array of the same
            shapes already scaled, or a lazy sequence with ``item_shape`` whose items are such arrays.
        targets: ``N`` integer labels ``>= 0``.
        classes: Class names; ``classes[label]`` names ``label``. Defaults to ``str(label)``.
        mean: Per-channel means to subtract after scaling to ``[0, 1]`` (``None``: no standardisation).
        std: Per-channel standard deviations to divide by (with ``mean``).
        transform: Optional callable applied to the ``(C, H, W)`` float tensor.
        name: Dataset name used in descriptions.

    Raises:
        TypeError: on images or targets of the wrong type.
        ValueError: on mismatched lengths, shapes or negative labels.
    """

    def __init__(
        self,
        images: Any,
        targets: Any,
        *,
        classes: Sequence[str] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        name: str = "",
    ) -> None:
        self.images = _check_images(images)
        self.targets = _as_targets(targets, len(self.images))
        n_labels = int(self.targets.max()) + 1 if len(self.targets) else 0
        if classes is None:
            classes = [str(i) for i in range(n_labels)]
        if len(classes) < n_labels:
            raise ValueError(f"classes names {len(classes)} class(es) but targets go up to {n_labels - 1}")
        self.classes = list(classes)
        self.transform = transform
        self.name = name
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together")
        if mean is not None:
            self.standardize(mean, std)

    def standardize(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Subtract ``mean`` and divide by ``std`` (per channel, on the ``[0, 1]`` scale) in ``__getitem__``.

        Raises:
            ValueError: if ``mean``/``std`` do not have 1 or ``C`` values or ``std`` is not positive.
        """
        channels = self.input_shape[0]
        m = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        s = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        for arg, value in (("mean", m), ("std", s)):
            if value.shape[0] not in (1, channels):
                raise ValueError(f"{arg} must have 1 or {channels} values, got {value.shape[0]}")
        if not bool((s > 0).all()):
            raise ValueError(f"std must be positive, got {s.flatten().tolist()}")
        self.mean, self.std = m, s

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape ``(C, H, W)`` of one returned image."""
        shape = tuple(self.images.shape[1:]) if isinstance(self.images, np.ndarray) else tuple(self.images.item_shape)
        if len(shape) == 2:
            return (1, int(shape[0]), int(shape[1]))
        return (int(shape[2]), int(shape[0]), int(shape[1]))

    @property
    def n_classes(self) -> int:
        """The number of class names (labels are ``0..n_classes-1``, not all need to be present)."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = np.asarray(self.images[index])
        x = torch.from_numpy(np.array(img, dtype=np.float32, copy=True))
        if img.dtype == np.uint8:
            x.mul_(1.0 / 255.0)
        x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1).contiguous()
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[index])

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ArrayDataset":
        """Return a new dataset with the items at ``indices`` (same classes, scaling and transform)."""
        idx = np.asarray(indices, dtype=np.int64)
        images = self.images[idx] if isinstance(self.images, np.ndarray) else self.images.subset(idx)
        out = ArrayDataset(images, self.targets[torch.from_numpy(idx)], classes=self.classes, transform=self.transform,
                           name=self.name)
        out.mean, out.std = self.mean, self.std
        return out

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and standard deviation of the images scaled to ``[0, 1]`` (before standardisation)."""
        if not isinstance(self.images, np.ndarray):
            raise TypeError("channel_stats needs in-memory images, not lazily loaded files")
        arr = self.images.reshape(len(self.images), -1, self.input_shape[0]) if self.images.ndim == 4 else (
            self.images.reshape(len(self.images), -1, 1))
        scale = 1.0 / 255.0 if self.images.dtype == np.uint8 else 1.0
        mean = arr.mean(axis=(0, 1), dtype=np.float64) * scale
        std = arr.std(axis=(0, 1), dtype=np.float64) * scale
        return mean.tolist(), np.maximum(std, 1e-8).tolist()

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Inside ``sharing.shared_datasets`` a listed dataset pickles as a reference, not as its images.
        from .sharing import shared_reference

        return shared_reference(self) or super().__reduce_ex__(protocol)

    def __repr__(self) -> str:
        return (f"ArrayDataset(name={self.name!r}, n={len(self)}, input_shape={self.input_shape}, "
                f"n_classes={self.n_classes})")
