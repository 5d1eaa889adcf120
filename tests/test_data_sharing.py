"""Pickling datasets by reference inside ``shared_datasets`` (checkpoints name the stream's datasets)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from ebv_cl.data import ArrayDataset, shared_datasets


def _dataset(n: int = 2000, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n), name="toy")


def test_a_listed_dataset_pickles_as_a_small_reference_and_resolves_to_the_live_one():
    train, other = _dataset(), _dataset(seed=1)
    holder = {"buffer": train, "indices": list(range(10)), "other": other}
    with shared_datasets({"train": train}):
        blob = pickle.dumps(holder)
        back = pickle.loads(blob)
    full = len(pickle.dumps(holder))  # outside the block: both datasets' images
    assert full - len(blob) > 0.99 * train.images.nbytes  # train's images are not in the blob
    assert back["buffer"] is train  # the live dataset, not a copy
    assert back["other"] is not other and np.array_equal(back["other"].images, other.images)  # unlisted: copied


def test_outside_the_block_datasets_pickle_and_copy_as_usual():
    train = _dataset()
    clone = pickle.loads(pickle.dumps(train))
    assert clone is not train and np.array_equal(clone.images, train.images)
    with shared_datasets({"train": train}):
        blob = pickle.dumps(train)
    assert copy.deepcopy(train) is not train
    with pytest.raises(ValueError, match="refers to the 'train' dataset of its run, which is not available"):
        pickle.loads(blob)


def test_a_different_dataset_under_the_same_name_is_refused():
    train = _dataset()
    with shared_datasets({"train": train}):
        blob = pickle.dumps(train)
    changed = _dataset()
    changed.targets[5] = (changed.targets[5] + 1) % 10
    with shared_datasets({"train": changed}), pytest.raises(ValueError, match="differs from the one this pickle"):
        pickle.loads(blob)
    standardised = _dataset()
    standardised.standardize([0.5], [0.25])
    with shared_datasets({"train": standardised}), pytest.raises(ValueError, match="differs"):
        pickle.loads(blob)
    with shared_datasets({"train": _dataset()}):  # rebuilt identically: accepted
        assert len(pickle.loads(blob)) == len(train)
