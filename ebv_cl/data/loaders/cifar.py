"""CIFAR-10 (JPEG class folders) and CIFAR-100 (the official python pickles).

CIFAR-10 is read from ``{train,test}/<class>/*.jpg`` (torchvision ``ImageFolder`` layout) in an extracted folder
``root/cifar10-jpg/`` (also ``cifar10/``, ``cifar-10-jpg/``) or straight from ``root/cifar10-jpg.tar.gz``; the
archive is streamed once and the decoded arrays are cached as ``.npy`` (see ``ebv_cl.data.cache``), so later
loads take well under a second. Labels follow the sorted class names, which is the official CIFAR-10 order.

CIFAR-100 is read from ``cifar-100-python/{train,test,meta}`` (folder or ``cifar-100-python.tar.gz``), each a
pickle with ``data`` ``(N, 3072)`` uint8 and ``fine_labels``/``coarse_labels``.
"""

from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ...errors import DataRootError
from ..cache import cached_arrays, source_fingerprint
from ..dataset import ArrayDataset
from ..folders import read_class_folders
from ..registry import DATASETS
from ..roots import find_source, resolve_root

__all__ = ["load_cifar10", "load_cifar100"]


def _has_splits(path: Path) -> bool:
    return (path / "train").is_dir() and (path / "test").is_dir()


@DATASETS.register("cifar10")
def load_cifar10(*, root: str | os.PathLike | None = None, train: bool = True, cache: bool = True) -> ArrayDataset:
    """Load CIFAR-10 as ``(3, 32, 32)`` images, 50,000 train + 10,000 test.

    Args:
        root: The data root (``$EBV_CL_DATA`` by default).
        train: Training or test split.
        cache: Store/reuse the decoded arrays in the cache folder (``$EBV_CL_CACHE``).

    Raises:
        DataRootError: if neither the folder nor the archive is found.
    """
    base = resolve_root(root, dataset="cifar10")
    source = find_source(
        base, dataset="cifar10", folders=["cifar10-jpg", "cifar10", "cifar-10-jpg", "."],
        archives=["cifar10-jpg.tar.gz", "cifar10-jpg.tgz", "cifar10.tar.gz"], is_valid=_has_splits,
        expected="{train,test}/<class>/*.jpg in a folder cifar10-jpg/ or the archive cifar10-jpg.tar.gz",
    )
    key = {"loader": "cifar10", "version": 1, "source": source_fingerprint(source)}
    arrays = cached_arrays(
        "cifar10",
        key,
        lambda: {k: (np.array(v) if k == "classes" else v) for k, v in read_class_folders(
            source, splits=("train", "test"), mode="RGB", dataset="cifar10").items()},
        use_cache=cache,
    )
    side = "train" if train else "test"
    return ArrayDataset(arrays[f"{side}_images"], arrays[f"{side}_labels"],
                        classes=[str(c) for c in arrays["classes"]], name="cifar10")


def _read_pickles(source: Path, names: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if source.is_dir():
        for n in names:
            with open(source / n, "rb") as f:
                out[n] = pickle.load(f, encoding="bytes")
        return out
    with tarfile.open(source, "r:*") as tf:
        for member in tf.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and base in names and "cifar-100-python" in member.name:
                f = tf.extractfile(member)
                if f is not None:
                    out[base] = pickle.load(f, encoding="bytes")
    missing = sorted(set(names) - set(out))
    if missing:
        raise DataRootError(f"cifar100: archive {str(source)!r} lacks cifar-100-python/{missing}")
    return out


@DATASETS.register("cifar100")
def load_cifar100(
    *, root: str | os.PathLike | None = None, train: bool = True, label_type: str = "fine"
) -> ArrayDataset:
    """Load CIFAR-100 as ``(3, 32, 32)`` images with 100 fine (or 20 coarse) classes.

    Args:
        root: The data root (``$EBV_CL_DATA`` by default).
        train: Training or test split.
        label_type: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Raises:
        ValueError: on a bad ``label_type``.
        DataRootError: if ``cifar-100-python/`` (or its archive) is not found or a file lacks a field.
    """
    if label_type not in ("fine", "coarse"):
        raise ValueError(f"label_type must be 'fine' or 'coarse', got {label_type!r}")
    base = resolve_root(root, dataset="cifar100")
    source = find_source(
        base, dataset="cifar100", folders=["cifar-100-python", "cifar100/cifar-100-python"],
        archives=["cifar-100-python.tar.gz", "cifar100.tar.gz"], is_valid=lambda p: (p / "meta").is_file(),
        expected="cifar-100-python/{train,test,meta} (python pickles) or cifar-100-python.tar.gz",
    )
    split = "train" if train else "test"
    blobs = _read_pickles(source, [split, "meta"])
    try:
        data = np.asarray(blobs[split][b"data"], dtype=np.uint8)
        labels = np.asarray(blobs[split][f"{label_type}_labels".encode()], dtype=np.int64)
        names = [n.decode() for n in blobs["meta"][f"{label_type}_label_names".encode()]]
    except KeyError as err:
        raise DataRootError(f"cifar100: file {split!r} or 'meta' under {str(source)!r} lacks field {err}") from None
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return ArrayDataset(np.ascontiguousarray(images), labels, classes=names, name="cifar100")
