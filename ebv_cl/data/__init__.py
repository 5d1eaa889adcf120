"""Datasets from a local root, as in-memory ``ArrayDataset``s with the ``.targets`` Avalanche needs.

``load_dataset(name, root=..., train=...)`` loads one split of a dataset registered in ``DATASETS``: ``digits``
(embedded, no root), ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``omniglot``, ``emnist_byclass``,
``tinyimagenet``, ``npz`` and ``image_folder``. The root defaults to ``$EBV_CL_DATA``; decoded images are cached
under ``$EBV_CL_CACHE`` (default ``~/.cache/ebv_cl``). A missing root or file raises ``DataRootError`` saying
what layout was expected. This package imports neither Avalanche nor the CLI.
"""

from __future__ import annotations

from . import loaders as _loaders  # noqa: F401  (registers the loaders)
from .dataset import ArrayDataset
from .lazy import LazyImages
from .registry import DATASETS, dataset_options, list_datasets, load_dataset
from .roots import cache_dir, resolve_root
from .sharing import shared_datasets
from .split import stratified_split

__all__ = [
    "ArrayDataset",
    "LazyImages",
    "DATASETS",
    "load_dataset",
    "list_datasets",
    "dataset_options",
    "cache_dir",
    "resolve_root",
    "shared_datasets",
    "stratified_split",
]
