"""SlotAllocator: arrival order, idempotence, full bank, unknown labels, state round trip, invariants."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ebv_cl import BankFullError, BankMismatchError, SlotAllocator, UnknownLabelError


def test_slots_follow_arrival_order_and_are_idempotent():
    alloc = SlotAllocator(10)
    assert alloc.allocate([7, "cat", 3]) == [0, 1, 2]
    assert alloc.allocate([3, 9, 7]) == [2, 3, 0]
    assert alloc.labels == [7, "cat", 3, 9]
    assert len(alloc) == 4 and alloc.free == 6
    assert alloc.slot_of("cat") == 1 and alloc.label_of(3) == 9


def test_duplicates_within_one_call_get_one_slot():
    alloc = SlotAllocator(3)
    assert alloc.allocate([5, 5, 6, 5]) == [0, 0, 1, 0]
    assert len(alloc) == 2


@pytest.mark.parametrize("label, expected", [(np.int64(4), 4), (torch.tensor(4), 4), (4, 4)])
def test_numpy_and_tensor_integers_are_the_same_label(label, expected):
    alloc = SlotAllocator(3)
    alloc.allocate([4])
    assert alloc.slot_of(label) == 0
    assert label in alloc


@pytest.mark.parametrize("bad", [1.0, True, None, (1, 2), torch.tensor([1, 2])])
def test_labels_that_would_alias_are_rejected(bad):
    with pytest.raises(TypeError, match="int or str"):
        SlotAllocator(3).allocate([bad])


def test_a_string_is_not_a_list_of_labels():
    with pytest.raises(TypeError, match="wrap it in a list"):
        SlotAllocator(3).allocate("abc")


def test_full_bank_raises_before_allocating_anything():
    alloc = SlotAllocator(3)
    alloc.allocate([0, 1])
    with pytest.raises(BankFullError, match=r"capacity 3 vectors, 2 already allocated, 2 new class\(es\) requested"):
        alloc.allocate([1, 2, 3])
    assert alloc.labels == [0, 1]  # nothing half-allocated
    assert alloc.allocate([2]) == [2]
    with pytest.raises(BankFullError):
        alloc.allocate(["x"])


def test_unknown_label_is_a_clear_lookup_error():
    alloc = SlotAllocator(3)
    alloc.allocate(["a"])
    with pytest.raises(UnknownLabelError, match="label 'b' has no slot"):
        alloc.slot_of("b")
    with pytest.raises(LookupError):
        alloc.slots_of(["a", "b"])
    with pytest.raises(IndexError, match="slot 5 is not allocated"):
        alloc.label_of(5)


@pytest.mark.parametrize("capacity", [0, -1, 2.5, "3", True])
def test_capacity_must_be_a_positive_int(capacity):
    with pytest.raises((TypeError, ValueError), match="capacity"):
        SlotAllocator(capacity)


def test_state_dict_round_trip_through_torch_save(tmp_path):
    alloc = SlotAllocator(8)
    alloc.allocate([3, "b", 11])
    torch.save(alloc.state_dict(), tmp_path / "s.pt")
    fresh = SlotAllocator(8)
    fresh.load_state_dict(torch.load(tmp_path / "s.pt"))
    assert fresh.labels == alloc.labels
    assert fresh.allocate(["new"]) == [3]


def test_state_from_another_capacity_is_rejected():
    alloc = SlotAllocator(8)
    with pytest.raises(BankMismatchError, match="capacity 4"):
        alloc.load_state_dict(SlotAllocator(4).state_dict())
    with pytest.raises(BankMismatchError, match="keys"):
        alloc.load_state_dict({"labels": []})


def test_version_increases_only_on_change():
    alloc = SlotAllocator(4)
    v0 = alloc.version
    alloc.allocate([1])
    v1 = alloc.version
    alloc.allocate([1])
    assert v1 > v0 and alloc.version == v1


labels_strategy = st.lists(st.one_of(st.integers(-1000, 1000), st.text(max_size=4)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(labels_strategy, max_size=5))
def test_every_label_maps_to_one_slot_and_back(batches):
    alloc = SlotAllocator(1000)
    seen: list = []
    for batch in batches:
        slots = alloc.allocate(batch)
        for label, slot in zip(batch, slots):
            assert alloc.label_of(slot) == label
            if label not in seen:
                seen.append(label)
    assert alloc.labels == seen
    assert sorted(alloc.slot_of(label) for label in seen) == list(range(len(seen)))


def test_allocator_pickles_and_deep_copies_independently():
    import copy
    import pickle

    alloc = SlotAllocator(5)
    alloc.allocate(["a", 2])
    for clone in (copy.deepcopy(alloc), pickle.loads(pickle.dumps(alloc))):
        assert clone.labels == ["a", 2]
        clone.allocate(["new"])
        assert len(clone) == 3 and len(alloc) == 2
