"""The dataset registry and its factory ``load_dataset``.

Every loader is a function ``loader(*, root, train, **options) -> ArrayDataset`` registered in ``DATASETS`` under
the name a YAML file uses (``"digits"``, ``"cifar10"``). ``load_dataset`` checks the options against the
loader's signature (an unknown option is a ``ConfigError`` listing the valid ones) and applies the options
every dataset shares (``normalize``).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError
from ..registry import Registry
from .dataset import ArrayDataset

__all__ = ["DATASETS", "load_dataset", "list_datasets", "dataset_options"]

DATASETS: Registry[ArrayDataset] = Registry("dataset", fixed=("root", "train"))

_NORMALIZE = ("unit", "standard")


def dataset_options(name: str) -> list[str]:
    """The options ``load_dataset(name, ...)`` accepts besides ``root`` and ``train``."""
    return sorted([*DATASETS.options(name), "normalize"])


def list_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    return DATASETS.names()


def load_dataset(
    name: str, *, root: str | os.PathLike | None = None, train: bool = True, **options: Any
) -> ArrayDataset:
    """Load the train or test split of a registered dataset.

    Args:
        name: A name from ``list_datasets()``.
        root: The data root; defaults to ``$EBV_CL_DATA`` (``digits`` needs none).
        train: ``True`` for the training split, ``False`` for the test split.
        **options: Loader options (see each loader), plus ``normalize``: ``"unit"`` (default, values in
            ``[0, 1]``) or ``"standard"`` (per-channel mean and std of the training split subtracted/divided).

    Returns:
        An ``ArrayDataset`` whose items are ``(float32 tensor (C, H, W), int label)`` and whose ``targets`` is
        a ``LongTensor``.

    Raises:
        TypeError: if ``train`` is not a bool.
        ValueError: on an unknown dataset name (the message lists the valid ones).
        ConfigError: on an unknown option or a bad ``normalize`` value.
        DataRootError: if the root is missing or lacks the expected files (the message says which).
    """
    loader = DATASETS.get(name)
    if not isinstance(train, bool):
        raise TypeError(f"train must be a bool, got {train!r}")
    normalize = options.pop("normalize", "unit")
    if normalize not in _NORMALIZE:
        raise ConfigError(f"dataset option normalize must be one of {list(_NORMALIZE)}, got {normalize!r}")
    DATASETS.check_options(name, options, extra=["normalize"])
    ds = loader(root=root, train=train, **options)
    if normalize == "standard":
        reference = ds if train else loader(root=root, train=True, **options)
        ds.standardize(*reference.channel_stats())
    return ds
