"""Recall of the approximate kinds (hnsw, ivf) against exact search: the numbers in ``ebv_cl.index.approx``.

The default test is a small smoke check; the ``slow`` one reproduces the documented table.
"""

from __future__ import annotations

import pytest
import torch

from ebv_cl import BankIndex, EBVBank, SlotAllocator
from ebv_cl.index.approx import measure_recall


def test_measure_recall_smoke():
    report = measure_recall(n=3000, dim=32, queries=200, kinds=("hnsw", "ivf"))
    for kind in ("hnsw", "ivf"):
        assert 0.0 <= report[kind]["random"] <= 1.0 and 0.0 <= report[kind]["near"] <= 1.0
        assert report[kind]["near"] >= 0.5  # a query close to a class finds it most of the time


def test_exact_kind_has_recall_one():
    bank = EBVBank(torch.randn(500, 16, generator=torch.Generator().manual_seed(0)))
    allocator = SlotAllocator(500)
    allocator.allocate(range(500))
    index = BankIndex(bank, allocator)
    _, slots = index.search_slots(bank.vectors, 1)
    assert (slots[:, 0] == torch.arange(500)).all()


@pytest.mark.slow
@pytest.mark.parametrize("n, dim", [(20_000, 128), (20_000, 512)])
def test_recall_table(n, dim):
    report = measure_recall(n=n, dim=dim, queries=1000, kinds=("hnsw", "ivf"))
    print(n, dim, report)
    for kind in ("hnsw", "ivf"):
        assert report[kind]["near"] > report[kind]["random"]
