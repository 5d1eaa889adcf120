"""Recall@1 of the approximate index kinds (``hnsw``, ``ivf``) against exact search on a random unit bank.

The figures in ``ebv_cl.index.approx``'s docstring come from here (a random unit bank resembles an EBV bank at
N >> d); ``tests/test_index_approx.py`` re-measures them (slow marker). Recall on embeddings of a trained model
is ``benchmarks/bench_recall_trained.py``. Kept out of ``ebv_cl.index`` so the index does not import itself
back through its kinds.
"""

from __future__ import annotations

import time

import torch

from ..bank import EBVBank
from ..index import BankIndex
from ..slots import SlotAllocator

__all__ = ["measure_recall"]


def measure_recall(
    *, n: int, dim: int, queries: int = 1000, kinds: tuple[str, ...] = ("hnsw", "ivf"), seed: int = 0
) -> dict[str, dict[str, float]]:
    """Recall@1 of approximate kinds against exact search on a random unit bank.

    Two query sets: random unit vectors, and bank vectors plus Gaussian noise of norm about 1 (cosine about
    0.7 to their class). Returns ``{kind: {"random": recall, "near": recall, "build_s": seconds}}``.
    """
    g = torch.Generator().manual_seed(seed)
    bank = EBVBank(torch.randn(n, dim, generator=g))
    allocator = SlotAllocator(n)
    allocator.allocate(range(n))
    random_q = torch.randn(queries, dim, generator=g)
    near_q = bank.vectors[torch.randint(0, n, (queries,), generator=g)] + torch.randn(queries, dim, generator=g) / dim**0.5
    exact = BankIndex(bank, allocator, device="cpu")
    truth = {name: exact.search_slots(q, 1)[1][:, 0] for name, q in (("random", random_q), ("near", near_q))}
    report: dict[str, dict[str, float]] = {}
    for kind in kinds:
        index = BankIndex(bank, allocator, kind=kind, device="cpu")
        start = time.perf_counter()
        index.search_slots(random_q[:1], 1)  # builds and fills the index
        row: dict[str, float] = {"build_s": time.perf_counter() - start}
        for name, q in (("random", random_q), ("near", near_q)):
            row[name] = float((index.search_slots(q, 1)[1][:, 0] == truth[name]).float().mean())
        report[kind] = row
    return report
