"""The ``sharded`` index kind with its shards in Ray actors: exact against brute force across shard boundaries,
in step with the allocator, merged by the same code as local shards. Two local actors; one Ray instance."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ebv_cl import BankIndex, EBVBank, SlotAllocator
from ebv_cl.errors import MissingExtraError
from index_oracle import brute_force, unit


def _bank(n: int, dim: int, seed: int) -> EBVBank:
    return EBVBank(unit(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))))


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    root = str(Path(__file__).resolve().parents[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", root), "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def bank():
    rows = _bank(1000, 32, 0).vectors.clone()
    rows[700] = rows[200]  # slot 200 (first actor) and slot 700 (second actor) tie for every query
    return EBVBank(rows)


@pytest.fixture(scope="module")
def actor_index(ray_instance, bank):
    """One index over 2 actors (rows 0-499 and 500-999), grown through its allocator by the tests."""
    allocator = SlotAllocator(bank.n)
    index = BankIndex(bank, allocator, kind="sharded", actors=2, shard_path="fp32").build()
    yield index, allocator
    index.engine.remote.close()


@pytest.mark.parametrize("allocated", [3, 499, 501, 740, 1000])
def test_actor_shards_equal_brute_force_as_the_allocator_grows(actor_index, bank, allocated):
    index, allocator = actor_index
    allocator.allocate(range(len(allocator), allocated))  # no rebuild: the next search sees the new classes
    queries = torch.randn(30, 32, generator=torch.Generator().manual_seed(allocated))
    k = min(8, allocated)
    scores, slots = index.search_slots(queries, k)
    ref_scores, ref_slots = brute_force(bank.vectors[:allocated], queries, k)
    assert (slots.numpy() == ref_slots).all()
    assert (scores.numpy() == ref_scores.astype(np.float32)).all()
    local = BankIndex(bank, allocator, kind="sharded", devices=["cpu", "cpu"], shard_path="fp32")
    local_scores, local_slots = local.search_slots(queries, k)
    assert torch.equal(slots, local_slots) and torch.equal(scores, local_scores)  # merged as the local kind


def test_ties_across_the_actor_boundary_keep_the_lower_slot(actor_index, bank):
    index, allocator = actor_index
    allocator.allocate(range(len(allocator), bank.n))
    queries = bank.vectors[200:201] + 0.01 * torch.randn(1, 32, generator=torch.Generator().manual_seed(4))
    _, slots = index.search_slots(queries, 2)
    assert slots.tolist() == [[200, 700]]


def test_actor_options_are_checked():
    bank = _bank(10, 8, 0)
    allocator = SlotAllocator(10)
    with pytest.raises(ValueError, match=r"devices=\['cpu'\] and actors=2"):
        BankIndex(bank, allocator, kind="sharded", actors=2, devices=["cpu"]).build()
    with pytest.raises(ValueError, match=r"actors must be an int in \[1, 10\].*got 11"):
        BankIndex(bank, allocator, kind="sharded", actors=11).build()
    with pytest.raises(ValueError, match="actor_options applies only with actors=N"):
        BankIndex(bank, allocator, kind="sharded", actor_options={"num_cpus": 1}).build()


def test_actor_shards_without_ray_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    allocator = SlotAllocator(10)
    with pytest.raises(MissingExtraError, match=r'pip install "ebv-cl\[distributed\]"'):
        BankIndex(_bank(10, 8, 0), allocator, kind="sharded", actors=2).build()


def test_ray_is_imported_only_when_actors_or_workers_are_used():
    import subprocess

    code = ("import sys, ebv_cl, ebv_cl.bank, ebv_cl.slots, ebv_cl.heads, ebv_cl.index, ebv_cl.index.ray_shards, "
            "ebv_cl.run.jobs, ebv_cl.run.executors, ebv_cl.run.ray_executor, ebv_cl.cli; "
            "print([m for m in sys.modules if m == 'ray' or m.startswith('ray.')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
