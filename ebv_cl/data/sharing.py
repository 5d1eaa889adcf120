"""Pickling datasets by reference: a checkpoint names the stream's datasets instead of copying their images.

A replay buffer, an iCaRL exemplar set or a DER memory holds a few hundred items, but as views into the
stream's whole training set; pickling a strategy would copy that whole set into every checkpoint (47 MB of
Fashion-MNIST images, 150 MB of CIFAR-10). Inside ``shared_datasets({"train": ds, ...})`` an ``ArrayDataset``
listed there pickles as its name and a fingerprint, and unpickling that reference returns the live dataset of
the same name, which the caller rebuilt exactly as before (``ebv-cl run --resume`` rebuilds the scenario from
the same config and seed before loading). The fingerprint (length, item shape, a hash of the labels and of a
few images, the scaling) makes a checkpoint refuse a dataset that is not the one it was written with.
Outside the block datasets pickle and copy as usual.
"""

from __future__ import annotations

import contextvars
import hashlib
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import numpy as np

__all__ = ["shared_datasets", "shared_reference", "fingerprint"]

_SHARED: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("ebv_cl_shared_datasets",
                                                                                   default=None)
_SAMPLED_ITEMS = 8


def fingerprint(dataset: Any) -> str:
    """A short hash of what identifies ``dataset``'s content: length, item shape, labels, sampled images, scaling."""
    h = hashlib.sha256()
    n = len(dataset)
    h.update(f"{n}|{dataset.input_shape}|{dataset.name}".encode())
    h.update(np.ascontiguousarray(dataset.targets.numpy()).tobytes())
    for i in np.linspace(0, n - 1, num=min(n, _SAMPLED_ITEMS)).astype(np.int64):
        h.update(np.ascontiguousarray(np.asarray(dataset.images[int(i)])).tobytes())
    for stat in (dataset.mean, dataset.std):
        h.update(b"-" if stat is None else np.ascontiguousarray(stat.numpy()).tobytes())
    return h.hexdigest()[:32]


@contextmanager
def shared_datasets(datasets: Mapping[str, Any]) -> Iterator[None]:
    """Within the block, pickle the given datasets by name and resolve such names back to them.

    Args:
        datasets: Name -> ``ArrayDataset``; the same names must map to equal datasets when loading.
    """
    token = _SHARED.set(dict(datasets))
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared_reference(dataset: Any) -> tuple[Any, tuple[str, str]] | None:
    """The pickle reduction of ``dataset`` as a reference, or ``None`` outside ``shared_datasets`` / if unlisted."""
    shared = _SHARED.get()
    if not shared:
        return None
    for name, candidate in shared.items():
        if candidate is dataset:
            return _resolve, (name, fingerprint(dataset))
    return None


def _resolve(name: str, expected: str) -> Any:
    """Unpickle a reference: the live dataset called ``name``, if it is the one the pickle was written with."""
    shared = _SHARED.get() or {}
    if name not in shared:
        raise ValueError(
            f"this pickle refers to the {name!r} dataset of its run, which is not available here; load it inside "
            f"shared_datasets({{{name!r}: dataset}}) with the dataset rebuilt from the same config and seed"
        )
    dataset = shared[name]
    actual = fingerprint(dataset)
    if actual != expected:
        raise ValueError(
            f"the {name!r} dataset differs from the one this pickle was written with (fingerprint {actual} against "
            f"{expected}): rebuild it from the same data root, config and seed"
        )
    return dataset
