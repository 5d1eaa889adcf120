"""Stress: classes are added (allocator and an EBV head's add_classes) while other threads search.

A search must never raise, return a half-added class (``None`` or an unallocated label) or a wrong label. Each
reader queries bank rows that were allocated before its search started, whose answer is known exactly (a bank
vector's nearest class is its own slot), so any wrong answer is caught. Bounded: about 2 s per case.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from ebv_cl import BankIndex, EBVBank, SlotAllocator

_DURATION_S = 2.0
_READERS = 4


def _label(i: int) -> object:
    return f"s{i}" if i % 2 else i


def _run(index: BankIndex, add, capacity: int) -> tuple[list[str], int, int]:
    errors: list[str] = []
    stop = threading.Event()
    searches = [0] * _READERS
    vectors = index.bank.vectors

    def writer() -> None:
        i = len(index.allocator)
        try:
            while not stop.is_set() and i < capacity:
                step = 1 + i % 7
                add([_label(j) for j in range(i, min(capacity, i + step))])
                i = min(capacity, i + step)
                time.sleep(0.0005)
        except Exception as exc:  # noqa: BLE001 - any failure is a test failure, recorded with its message
            errors.append(f"writer: {exc!r}")

    def reader(r: int) -> None:
        g = torch.Generator().manual_seed(r)
        try:
            while not stop.is_set():
                known = len(index.allocator)
                slots = torch.randint(0, known, (8,), generator=g)
                k = int(torch.randint(1, min(known, 5) + 1, (1,), generator=g))
                scores, labels = index.search(vectors[slots], k)
                after = set(index.allocator.labels)
                for s, row, sc in zip(slots.tolist(), labels, scores):
                    if row[0] != _label(s):
                        errors.append(f"reader {r}: slot {s} expected {_label(s)!r}, got {row[0]!r}")
                    if len(row) != k or any(lab is None or lab not in after for lab in row) or len(set(row)) != k:
                        errors.append(f"reader {r}: bad labels {row!r} for k={k}")
                    if not bool(torch.isfinite(sc).all()) or abs(float(sc[0]) - 1.0) > 1e-5:
                        errors.append(f"reader {r}: bad scores {sc.tolist()}")
                searches[r] += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(f"reader {r}: {exc!r}")

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(r,)) for r in range(_READERS)]
    for t in threads:
        t.start()
    time.sleep(_DURATION_S)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return errors, sum(searches), len(index.allocator)


@pytest.mark.parametrize("kind, path", [("flat", "auto"), ("flat", "fp32"), ("flat", "faiss"), ("hnsw", "auto")])
def test_allocate_while_searching_never_returns_a_wrong_answer(kind, path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # many Python threads on 2 cores: one OpenMP thread each avoids oversubscription
    try:
        bank = EBVBank(torch.randn(4000, 32, generator=torch.Generator().manual_seed(0)))
        allocator = SlotAllocator(bank.n)
        allocator.allocate([_label(i) for i in range(20)])
        index = BankIndex(bank, allocator, kind=kind, path=path)
        errors, searches, final = _run(index, allocator.allocate, bank.n)
    finally:
        torch.set_num_threads(before)
    assert not errors, errors[:10]
    assert searches > 20 and final > 100, (searches, final)


def test_head_add_classes_while_searching():
    from ebv_cl.heads import create_head

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bank = EBVBank(torch.randn(3000, 16, generator=torch.Generator().manual_seed(1)))
        head = create_head("ebv", 8, bank=bank)
        head.add_classes([_label(i) for i in range(10)])
        index = BankIndex(bank, head.slots)
        errors, searches, final = _run(index, head.add_classes, bank.n)
    finally:
        torch.set_num_threads(before)
    assert not errors, errors[:10]
    assert searches > 20 and final > 100 and head.num_classes == final
