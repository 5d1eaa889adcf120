"""The ``sharded`` index kind: exact against brute force across shard boundaries, in step with the allocator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebv_cl import BankIndex, EBVBank, SlotAllocator
from index_oracle import brute_force, unit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bank(n: int, dim: int, seed: int) -> EBVBank:
    return EBVBank(unit(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))))


def _index(bank: EBVBank, allocated: int, shards: int, **options) -> BankIndex:
    allocator = SlotAllocator(bank.n)
    allocator.allocate(range(allocated))
    return BankIndex(bank, allocator, kind="sharded", devices=["cpu"] * shards, **options)


def _assert_exact(index: BankIndex, bank: EBVBank, queries: torch.Tensor, k: int) -> None:
    scores, slots = index.search_slots(queries, k)
    ref_scores, ref_slots = brute_force(bank.vectors[: len(index)], queries, k)
    assert (slots.numpy() == ref_slots).all(), (slots, ref_slots)
    assert (scores.numpy() == ref_scores.astype(np.float32)).all()


@pytest.mark.parametrize("shard_path", ["auto", "int8", "fp32", "float64"])
@pytest.mark.parametrize("allocated", [1000, 701, 340, 3])
def test_sharded_search_equals_brute_force(shard_path, allocated):
    # 3 shards of 334 rows: 701 ends inside the third shard, 340 holds 6 rows of the second (fewer than k).
    bank = _bank(1000, 32, 0)
    queries = torch.randn(40, 32, generator=torch.Generator().manual_seed(1))
    _assert_exact(_index(bank, allocated, 3, shard_path=shard_path), bank, queries, min(8, allocated))


def test_ties_across_shard_boundaries_go_to_the_lower_slot():
    v = unit(torch.randn(600, 16, generator=torch.Generator().manual_seed(2)))
    v[[250, 420, 599]] = v[10].clone()  # the same vector in every one of 3 shards of 200 rows
    v[450] = -v[10]
    bank = EBVBank(v)
    queries = torch.cat([v[[10]], 3 * v[[10]], v[[10]] + 1e-7 * torch.randn(4, 16)])
    _assert_exact(_index(bank, 600, 3), bank, queries, 4)
    _, slots = _index(bank, 600, 3).search_slots(v[[10]], 4)
    assert slots[0].tolist() == [10, 250, 420, 599]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 300), shards=st.integers(1, 6), k=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_sharded_equals_brute_force_property(n, shards, k, seed):
    shards = min(shards, n)
    bank = _bank(n, 8, seed)
    allocated = 1 + seed % n
    queries = torch.randn(5, 8, generator=torch.Generator().manual_seed(seed + 1))
    _assert_exact(_index(bank, allocated, shards), bank, queries, min(k, allocated))


def test_sharded_index_grows_with_the_allocator_and_returns_labels():
    bank = _bank(500, 24, 3)
    allocator = SlotAllocator(500)
    allocator.allocate(["a", "b"])
    index = BankIndex(bank, allocator, kind="sharded", devices=["cpu", "cpu"]).build()
    assert index.search(bank.vectors[1:2], 1)[1] == [["b"]]
    allocator.allocate([f"c{i}" for i in range(400)])  # now reaches into the second shard (rows 250..)
    _, labels = index.search(bank.vectors[[300, 0]], 1)
    assert labels == [["c298"], ["a"]]
    assert index.exact


def test_sharded_kind_errors_name_the_bad_value():
    bank = _bank(10, 8, 4)
    allocator = SlotAllocator(10)
    allocator.allocate(range(5))
    with pytest.raises(ValueError, match="device='cuda'"):
        BankIndex(bank, allocator, kind="sharded", device="cuda")
    with pytest.raises(ValueError, match="at least one device"):
        BankIndex(bank, allocator, kind="sharded", devices=[]).build()
    with pytest.raises(ValueError, match="outnumber"):
        BankIndex(bank, allocator, kind="sharded", devices=["cpu"] * 11).build()
    with pytest.raises(ValueError, match="shard_path must be one of .* got 'wht'"):
        BankIndex(bank, allocator, kind="sharded", shard_path="wht").build()
    with pytest.raises(TypeError, match="unknown option.*'nprobe'.*valid options"):
        BankIndex(bank, allocator, kind="sharded", nprobe=3)
    with pytest.raises(ValueError, match="path='int8' only applies to kind 'flat'"):
        BankIndex(bank, allocator, kind="sharded", path="int8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU on this machine)")
def test_sharded_over_cuda_devices_equals_brute_force():
    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] * (2 if torch.cuda.device_count() == 1 else 1)
    bank = _bank(5000, 64, 5)
    allocator = SlotAllocator(5000)
    allocator.allocate(range(4321))
    index = BankIndex(bank, allocator, kind="sharded", devices=devices)
    queries = torch.randn(100, 64, generator=torch.Generator().manual_seed(6))
    _assert_exact(index, bank, queries, 5)
