"""SlotAllocator's compact table: a dict oracle over every kind of label, vectorised inputs, old states, memory."""

import base64
import copy
import pickle
import threading

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebv_cl import BankFullError, BankMismatchError, SlotAllocator, UnknownLabelError
from ebv_cl import slot_table

# pickle.dumps(alloc, protocol=4) by the dict-based allocator (before the table), after
# alloc = SlotAllocator(10); alloc.allocate([3, "b", 11, 2**70, -5, 0])
_OLD_PICKLE = (
    "gASVngAAAAAAAACMDGVidl9jbC5zbG90c5SMDVNsb3RBbGxvY2F0b3KUk5QpgZR9lCiMCGNhcGFjaXR5lEsKjAdfbGFiZWxzlF2UKEsDjAFilEsL"
    "igkAAAAAAAAAAEBK+////0sAZYwIX3Nsb3Rfb2aUfZQoSwNLAGgISwFLC0sCigkAAAAAAAAAAEBLA0r7////SwRLAEsFdYwHdmVyc2lvbpRLAXVi"
    "Lg=="
)
_OLD_LABELS = [3, "b", 11, 2**70, -5, 0]


@pytest.fixture
def small_thresholds(monkeypatch):
    """Tiny dense/recent limits, so a few labels exercise dense growth, key migration and sorted-key merges."""
    monkeypatch.setattr(slot_table, "_DENSE_MIN", 4)
    monkeypatch.setattr(slot_table, "_RECENT_MIN", 2)


def _check_against(alloc: SlotAllocator, oracle: dict) -> None:
    labels = list(oracle)
    assert alloc.labels == labels and len(alloc) == len(labels)
    for label, slot in oracle.items():
        assert alloc.slot_of(label) == slot and label in alloc and alloc.label_of(slot) == label
    if labels:
        assert alloc.slots_of(labels).tolist() == list(range(len(labels)))
        slots = np.random.default_rng(0).permutation(len(labels))
        assert alloc.labels_of(torch.from_numpy(slots)) == [labels[s] for s in slots]
        assert alloc.labels_of([-1, 0]) == [None, labels[0]]


label_kinds = st.one_of(
    st.integers(0, 40),  # small ints: identity prefix and dense table
    st.integers(-50, -1),  # negative: sorted keys
    st.integers(10**6, 10**6 + 30),  # beyond the dense limit: sorted keys, later migrated
    st.integers(2**63, 2**64 + 5) | st.integers(-(2**64), -(2**63) - 1),  # beyond int64: dicts
    st.text(max_size=3),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(label_kinds, max_size=30), max_size=8), as_array=st.booleans())
def test_allocator_matches_a_dict_oracle(small_thresholds, batches, as_array):
    alloc, oracle = SlotAllocator(10**7), {}
    for batch in batches:
        ints = all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in batch)
        given_labels = np.array(batch, dtype=np.int64) if as_array and ints and batch else batch
        slots = alloc.allocate(given_labels)
        for label in batch:
            oracle.setdefault(label, len(oracle))
        assert slots == [oracle[label] for label in batch]
        _check_against(alloc, oracle)
    for clone in (copy.deepcopy(alloc), pickle.loads(pickle.dumps(alloc))):
        _check_against(clone, oracle)
    fresh = SlotAllocator(10**7)
    fresh.load_state_dict(alloc.state_dict())
    _check_against(fresh, oracle)


@pytest.mark.parametrize("order", ["in_order", "shuffled", "sparse"])
def test_bulk_patterns_match_the_oracle(small_thresholds, order):
    rng = np.random.default_rng(1)
    values = {"in_order": np.arange(500), "shuffled": rng.permutation(500),
              "sparse": rng.choice(2**62, 500, replace=False) - 2**61}[order]
    alloc = SlotAllocator(1000)
    for part in np.array_split(values, 7):  # several batches: identity growth, dense growth, merges
        alloc.allocate(torch.from_numpy(part))
    _check_against(alloc, {int(v): i for i, v in enumerate(values)})


def test_old_format_state_dict_loads():
    for state in ({"format": 1, "capacity": 10, "labels": list(_OLD_LABELS)},
                  {"capacity": 10, "labels": list(_OLD_LABELS)}):  # format 1, and before the key existed
        alloc = SlotAllocator(10)
        alloc.load_state_dict(state)
        _check_against(alloc, {v: i for i, v in enumerate(_OLD_LABELS)})
        assert alloc.allocate(["new"]) == [6]


def test_allocator_pickled_by_the_dict_version_loads():
    alloc = pickle.loads(base64.b64decode(_OLD_PICKLE))
    _check_against(alloc, {v: i for i, v in enumerate(_OLD_LABELS)})
    assert alloc.version == 1 and alloc.allocate([7, 3]) == [6, 0]


def test_state_dict_is_compact_and_loads_with_weights_only(tmp_path):
    alloc = SlotAllocator(100)
    alloc.allocate(range(50))
    alloc.allocate([70, "x", 2**70, 60])
    state = alloc.state_dict()
    assert state["identity_prefix"] == 50 and state["int_labels"].tolist() == [70, 0, 0, 60]
    torch.save(state, tmp_path / "s.pt")
    fresh = SlotAllocator(100)
    fresh.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert fresh.labels == alloc.labels


@pytest.mark.parametrize("change, match", [
    (lambda s: s.update(count=7), "do not agree"),
    (lambda s: s.update(other_slots=[1, 1], other_labels=["a", "b"]), "do not agree"),
    (lambda s: s.update(int_labels=torch.tensor([1.5, 0.0, 2.0, 3.0])), "do not agree"),
    (lambda s: s.update(int_labels=torch.tensor([5, 0, 6, 5])), "duplicate"),
    (lambda s: s.update(other_labels=[1.5]), "int or str"),
    (lambda s: s.update(format=3), "format 3"),
    (lambda s: s.pop("other_slots"), "keys"),
])
def test_malformed_state_is_rejected(change, match):
    alloc = SlotAllocator(10)
    alloc.allocate([5, "a", 6, 7])
    state = alloc.state_dict()
    change(state)
    before = alloc.labels
    with pytest.raises(BankMismatchError, match=match):
        alloc.load_state_dict(state)
    assert alloc.labels == before  # a failed load changes nothing


def test_vectorised_inputs():
    alloc = SlotAllocator(2**40)
    assert alloc.allocate(range(5), as_tensor=True).tolist() == [0, 1, 2, 3, 4]
    assert alloc.allocate(np.array([9, 3, 9], dtype=np.uint8)) == [5, 3, 5]
    assert alloc.allocate(torch.tensor([2**40, 9], dtype=torch.int64)) == [6, 5]
    huge = np.array([2**64 - 1, 2**63], dtype=np.uint64)  # beyond int64: kept as exact Python ints
    assert alloc.allocate(huge) == [7, 8] and alloc.labels_of([7, 8]) == [2**64 - 1, 2**63]
    assert alloc.slots_of(torch.tensor([[9, 0], [1, 2**40]])).tolist() == [5, 0, 1, 6]  # any shape, flattened
    assert alloc.slots_of(np.array([3], dtype=np.int16)).dtype == torch.int64
    with pytest.raises(TypeError, match="int or str"):
        alloc.allocate(torch.tensor([[1, 2]]))  # a 2-d tensor's rows are not labels (as before)
    with pytest.raises(TypeError, match="int or str"):
        alloc.slots_of(torch.tensor([1.0]))
    with pytest.raises(TypeError, match="int or str"):
        alloc.allocate(np.array([True]))
    with pytest.raises(UnknownLabelError, match="label 123 has no slot"):
        alloc.slots_of(np.array([0, 123, 456]))
    with pytest.raises(UnknownLabelError, match="label 'q' has no slot"):
        alloc.slots_of([0, 2**64 - 1, "q", 2**70])


def test_full_bank_with_an_array_changes_nothing():
    alloc = SlotAllocator(10)
    alloc.allocate(range(8))
    with pytest.raises(BankFullError, match="8 already allocated, 3 new"):
        alloc.allocate(np.arange(6, 11))
    with pytest.raises(BankFullError, match="8 already allocated, 3 new"):
        alloc.allocate(range(8, 11))  # the in-order fast path checks too
    assert len(alloc) == 8 and alloc.version == 1
    assert alloc.allocate(np.array([9, 8])) == [8, 9]


def test_labels_of_rejects_slots_not_allocated():
    alloc = SlotAllocator(5)
    alloc.allocate(["a", "b"])
    for bad in ([-2], [2], torch.tensor([0, 7])):
        with pytest.raises(IndexError, match="is not allocated; allocated slots are 0..1"):
            alloc.labels_of(bad)
    assert alloc.labels_of(np.array([1, -1, 0])) == ["b", None, "a"]


def test_snapshot_keeps_its_labels_through_later_changes():
    alloc = SlotAllocator(100)
    alloc.allocate([0, 1, 5, "s"])
    snap = alloc.snapshot()
    alloc.allocate(list(range(2, 60)) + ["t"])
    alloc.load_state_dict({"capacity": 100, "labels": ["z"]})
    assert len(snap) == 4 and snap.tolist() == [0, 1, 5, "s"] and snap[3] == "s"
    assert snap.labels_of(np.array([2, -1])) == [5, None]
    with pytest.raises(IndexError):
        snap[4]


@pytest.mark.parametrize("order, most_bytes", [("in_order", 0), ("shuffled", 16), ("sparse", 24)])
def test_bytes_per_label(order, most_bytes):
    n = 100_000
    rng = np.random.default_rng(0)
    values = {"in_order": np.arange(n), "shuffled": rng.permutation(n),
              "sparse": rng.choice(2**62, n, replace=False)}[order]
    alloc = SlotAllocator(n)
    for part in np.array_split(values, 10):
        alloc.allocate(part, as_tensor=True)
    assert alloc.nbytes / n <= most_bytes
    assert alloc.slots_of(values[::97]).tolist() == list(range(0, n, 97))


def test_concurrent_allocation_gives_each_label_one_slot():
    alloc, barrier = SlotAllocator(10_000), threading.Barrier(8)
    results: list = [None] * 8

    def work(i):
        rng = np.random.default_rng(i)
        barrier.wait()
        got = []
        for _ in range(30):
            batch = rng.integers(-500, 3000, 40)
            got.append((batch, alloc.allocate(batch, as_tensor=True)))
            got.append((["s%d" % v for v in batch[:5]], alloc.allocate(["s%d" % v for v in batch[:5]])))
        results[i] = got

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    labels = alloc.labels
    assert len(set(labels)) == len(labels) == len(alloc)
    for got in results:
        for batch, slots in got:
            assert alloc.labels_of(torch.as_tensor(slots)) == [v.item() if hasattr(v, "item") else v for v in batch]


def test_head_pickled_with_a_format_1_allocator_state_loads():
    from ebv_cl.heads import create_head

    head = create_head("fc", 4)
    head.add_classes([3, "x", 2**70])
    state = head.__getstate__()
    state["slots"] = {"format": 1, "capacity": head.capacity, "labels": [3, "x", 2**70]}  # as saved before
    old = type(head).__new__(type(head))
    old.__setstate__(state)
    assert old.classes == [3, "x", 2**70] and old.add_classes([3, 5]) == [0, 3]
    assert old.columns_of(torch.tensor([5, 3])).tolist() == [3, 0]
