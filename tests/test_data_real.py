"""Loaders on the real datasets of $EBV_CL_DATA (slow; skipped when the variable or a file is absent).

Run with ``EBV_CL_DATA=/work/shared/data python -m pytest tests/test_data_real.py -m slow -s`` to see load times.
The first run decodes CIFAR-10 and Omniglot into the ``.npy`` cache ($EBV_CL_CACHE, default ~/.cache/ebv_cl).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ebv_cl.data import load_dataset
from conftest import data_root, require_data_root
from ebv_cl.errors import DataRootError

pytestmark = pytest.mark.slow

ROOT = data_root() or Path("/nonexistent")


def _need(*names: str) -> None:
    require_data_root()
    for n in names:
        if not (ROOT / n).exists():
            pytest.skip(f"{ROOT / n} is absent")


def _timed(name: str, **kw):
    t = time.perf_counter()
    ds = load_dataset(name, root=ROOT, **kw)
    print(f"\n[load] {name} {kw}: {len(ds)} items in {time.perf_counter() - t:.2f} s")
    return ds


def test_fashion_mnist_full():
    _need("fashion-mnist")
    tr, te = _timed("fashion_mnist"), _timed("fashion_mnist", train=False)
    assert (len(tr), len(te), tr.input_shape) == (60000, 10000, (1, 28, 28))
    assert torch.bincount(tr.targets).tolist() == [6000] * 10 and torch.bincount(te.targets).tolist() == [1000] * 10
    assert int(tr.targets[0]) == 9 and tr.classes[9] == "Ankle boot"  # the well-known first training image


def test_mnist_test_only():
    _need("mnist-test")
    te = _timed("mnist", train=False)
    assert len(te) == 10000 and int(te.targets[0]) == 7 and torch.bincount(te.targets).sum() == 10000
    with pytest.raises(DataRootError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", root=ROOT, train=True)


def test_emnist_byclass_natural_imbalance():
    _need("emnist-byclass-test.npz")
    tr, te = _timed("emnist_byclass"), _timed("emnist_byclass", train=False)
    assert len(tr) + len(te) == 116323 and tr.n_classes == 62
    counts = torch.bincount(tr.targets) + torch.bincount(te.targets)
    assert (int(counts.min()), int(counts.max())) == (317, 6330)
    assert tr.classes[:3] == ["0", "1", "2"] and tr.classes[10] == "A" and tr.classes[36] == "a"


def test_omniglot_all_characters():
    _need("omniglot.tar.gz")
    tr, te = _timed("omniglot"), _timed("omniglot", train=False)
    assert (len(tr), len(te), tr.n_classes, tr.input_shape) == (24345, 8115, 1623, (1, 28, 28))
    assert torch.bincount(tr.targets).tolist() == [15] * 1623 and torch.bincount(te.targets).tolist() == [5] * 1623
    assert tr.classes[0] == "Alphabet_of_the_Magi/character01"
    assert float(tr.images.mean()) < 40  # inverted: mostly dark background


def test_cifar10_jpeg():
    _need("cifar10-jpg.tar.gz")
    tr, te = _timed("cifar10"), _timed("cifar10", train=False)
    assert (len(tr), len(te), tr.input_shape) == (50000, 10000, (3, 32, 32))
    assert torch.bincount(tr.targets).tolist() == [5000] * 10 and tr.classes[0] == "airplane"
    mean, _ = tr.channel_stats()
    assert np.allclose(mean, [0.4914, 0.4822, 0.4465], atol=2e-3)  # official CIFAR-10 channel means
    again = _timed("cifar10")  # from the cache
    assert np.array_equal(again.images[:100], tr.images[:100])
