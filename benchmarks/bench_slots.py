"""Slot allocator memory and speed: ``python benchmarks/bench_slots.py [--sizes 100000,1000000,10000000]``.

For each label pattern and size, allocates ``n`` labels in one ``allocate`` call and in calls of ``--batch``
labels, with ``SlotAllocator`` (NumPy table) and with the dict-based allocator it replaced (a list of labels plus
a label -> slot dict, as in ``ebv_cl/slots.py`` up to commit 7a2c227, reproduced below as ``DictAllocator``).
Prints bytes held per label and the peak while allocating (tracemalloc; the input labels are not counted, the
Python ints and strings the dict version makes from them are), CPU seconds to allocate, and CPU seconds to look
up 10^6 labels (``slots_of``) and 10^6 slots (``labels_of``). One process, one thread; CPU times, so compare
rows side by side. Patterns: ``in_order`` (``range(n)``), ``shuffled`` (a permutation of ``0..n-1`` as an int64
array), ``sparse`` (distinct random int64 ids), ``str`` (``"c<i>"`` strings; not run above 10^6).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from typing import Any, Callable, Hashable, Iterable

import numpy as np
import torch

from ebv_cl import SlotAllocator
from ebv_cl.validation import normalize_label

__all__ = []


class DictAllocator:
    """The allocator before the table: ``allocate``/``slots_of``/``labels_of`` exactly as they were (no lock)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._labels: list[Hashable] = []
        self._slot_of: dict[Hashable, int] = {}

    def allocate(self, labels: Iterable[Any]) -> list[int]:
        normalized = [normalize_label(label, name="labels[]") for label in labels]
        new = list(dict.fromkeys(label for label in normalized if label not in self._slot_of))
        if len(new) > self.capacity - len(self._labels):
            raise RuntimeError("full")
        for label in new:
            self._slot_of[label] = len(self._labels)
            self._labels.append(label)
        return [self._slot_of[label] for label in normalized]

    def slots_of(self, labels: Any) -> torch.Tensor:
        if isinstance(labels, torch.Tensor):
            labels = labels.reshape(-1).tolist()
        return torch.tensor([self._slot_of[normalize_label(label)] for label in labels], dtype=torch.int64)

    def labels_of(self, slots: Any) -> list[Hashable]:
        if isinstance(slots, torch.Tensor):
            slots = slots.reshape(-1).tolist()
        return [None if int(s) == -1 else self._labels[int(s)] for s in slots]


def _labels(pattern: str, n: int) -> Any:
    rng = np.random.default_rng(0)
    if pattern == "in_order":
        return range(n)
    if pattern == "shuffled":
        return rng.permutation(n)
    if pattern == "sparse":
        return rng.choice(2**62, n, replace=False) - 2**61
    return [f"c{i}" for i in rng.permutation(n)]


def _allocate(make: Callable[[], Any], labels: Any, batch: int | None) -> Any:
    alloc = make()
    kwargs = {"as_tensor": True} if isinstance(alloc, SlotAllocator) else {}
    if batch is None:
        alloc.allocate(labels, **kwargs)
    else:
        for i in range(0, len(labels), batch):
            alloc.allocate(labels[i : i + batch], **kwargs)
    return alloc


def _measure(name: str, make: Callable[[], Any], pattern: str, n: int, batch: int) -> dict[str, Any]:
    labels = _labels(pattern, n)
    gc.collect()
    start = time.process_time()
    alloc = _allocate(make, labels, None)
    one_call = time.process_time() - start
    del alloc
    gc.collect()
    start = time.process_time()
    alloc = _allocate(make, labels, batch)
    batched = time.process_time() - start
    rng = np.random.default_rng(1)
    pick = rng.integers(0, n, 10**6)
    query = [labels[i] for i in pick.tolist()] if pattern == "str" else torch.from_numpy(
        np.asarray(labels)[pick] if pattern != "in_order" else pick)
    start = time.process_time()
    assert alloc.slots_of(query).tolist() == pick.tolist()
    lookup = time.process_time() - start
    start = time.process_time()
    alloc.labels_of(torch.from_numpy(pick))
    reverse = time.process_time() - start
    del alloc
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    alloc = _allocate(make, labels, None)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del alloc
    gc.collect()
    return {"impl": name, "pattern": pattern, "n": n, "bytes_per_label": (held - base) / n,
            "peak_bytes_per_label": (peak - base) / n, "alloc_cpu_s": one_call, "batched_cpu_s": batched,
            "slots_of_1e6_cpu_s": lookup, "labels_of_1e6_cpu_s": reverse}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    parser = argparse.ArgumentParser(prog="bench_slots", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="comma-separated label counts")
    parser.add_argument("--patterns", default="in_order,shuffled,sparse,str")
    parser.add_argument("--batch", type=int, default=10_000, help="labels per call in the batched column")
    parser.add_argument("--impls", default="dict,table", help="dict (before), table (SlotAllocator)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    makers = {"dict": lambda: DictAllocator(2**62), "table": lambda: SlotAllocator(2**62)}
    print(f"{'pattern':<9}{'n':>10}{'impl':>7}{'B/label':>9}{'peak B/l':>10}{'alloc s':>9}"
          f"{'batched s':>11}{'slots_of s':>12}{'labels_of s':>13}", flush=True)
    for n in [int(float(s)) for s in args.sizes.split(",")]:
        for pattern in args.patterns.split(","):
            if pattern == "str" and n > 10**6:
                continue
            for impl in args.impls.split(","):
                r = _measure(impl, makers[impl], pattern, n, args.batch)
                print(f"{pattern:<9}{n:>10}{impl:>7}{r['bytes_per_label']:>9.1f}{r['peak_bytes_per_label']:>10.1f}"
                      f"{r['alloc_cpu_s']:>9.2f}{r['batched_cpu_s']:>11.2f}{r['slots_of_1e6_cpu_s']:>12.3f}"
                      f"{r['labels_of_1e6_cpu_s']:>13.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
