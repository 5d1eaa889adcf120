"""Approximate index kinds over the bank: FAISS HNSW and IVF-Flat (inner product), grown with the allocator.

They are options, not substitutes for exact search: an EBV bank spreads its vectors as evenly as possible, so
the graph and cluster structure these indexes rely on is weak. Recall@1 against exact search, measured with
``ebv_cl.bench.recall.measure_recall`` (random unit bank, which an EBV bank at N >> d resembles; 1,000 queries; "near" queries are a
bank vector plus Gaussian noise of norm ~1, cosine ~0.7 to their class; one thread, machine under load):

==========================  ========  =================  ================  ==========
kind (default options)      N, d      random queries     near queries      build (s)
==========================  ========  =================  ================  ==========
hnsw (m=32, ef_search=128)  2e4, 128  0.949              1.000             56
hnsw (m=32, ef_search=128)  2e4, 512  0.679              1.000             163
ivf (nlist=4 sqrt N, np=16) 2e4, 128  0.280              0.866             1.6
ivf (nlist=4 sqrt N, np=16) 2e4, 512  0.161              0.972             5.5
==========================  ========  =================  ================  ==========

On what users search with, test-set embeddings of a backbone trained with the EBV head
(``benchmarks/bench_recall_trained.py``: bank 20,000 x 128, every slot searchable, one thread, loaded machine):

==============================  ==========  ===============================  =====================
queries                         exact acc.  hnsw recall@1, ef_search          ivf recall@1, nprobe
                                            16 / 64 / 128 / 512               1 / 16 / 64
==============================  ==========  ===============================  =====================
EMNIST ByClass, 62 classes      81.7%       0.701 / 0.962 / 0.995 / 1.000    0.184 / 0.598 / 0.854
Omniglot, 1,623 classes         9.9%        0.391 / 0.770 / 0.927 / 0.999    0.050 / 0.273 / 0.568
==============================  ==========  ===============================  =====================

Recall rises with how well the model is trained (embeddings nearer their class vector). The exact ``int8``
path took 106 ms per 1,000 queries there, against 350 ms for hnsw at ef_search 128. IVF is trained once on
the whole bank, so while few classes are allocated most of its lists are empty: 0.85 recall@1 at nprobe 64
with 62 classes allocated.

Recall on random queries falls as d grows (the issue measured 0.02-0.4 on random and 0.5-0.96 on near-bank
queries at larger N), and HNSW takes minutes to build: use ``flat`` wherever the exact answer matters.
``tests/test_index_approx.py`` (slow marker) re-measures the table.

Both run on the CPU FAISS build whatever the ``BankIndex`` device. Both hold a FAISS index that is extended (``add``) when classes were allocated since the last search, under
a lock that also covers the search, so concurrent ``allocate`` and ``search`` calls are safe.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import torch

__all__ = ["FaissApproxIndex", "make_hnsw", "make_ivf"]



class FaissApproxIndex:
    """A FAISS index over the first ``n`` bank rows, extended on demand (thread-safe).

    Args:
        index: An empty, trained FAISS index with inner-product metric.
        vectors: ``(N, dim)`` float32 bank vectors (CPU).
        name: The kind's name.
        params: Search-time FAISS parameters set on every search (``efSearch``, ``nprobe``).
    """

    exact = False

    def __init__(self, index: Any, vectors: torch.Tensor, *, name: str, params: dict[str, int]) -> None:
        self.index, self.name, self.params = index, name, params
        self._numpy = np.ascontiguousarray(vectors.detach().cpu().numpy(), dtype=np.float32)
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Approximate bytes held by the FAISS index (vectors plus structure)."""
        return int(self.index.ntotal) * self._numpy.shape[1] * 4 * (2 if self.name == "hnsw" else 1)

    def _grow(self, n: int) -> None:
        if n < self.index.ntotal:  # the allocator was reset to fewer classes: start again
            self.index.reset()
        if n > self.index.ntotal:
            self.index.add(self._numpy[self.index.ntotal : n])

    def search(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scores, slots)`` of shape ``(q, k)`` over rows ``0 .. n-1``; slot ``-1`` where fewer were found."""
        xq = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
        with self._lock:
            self._grow(n)
            for key, value in self.params.items():
                setattr(self.index if key == "nprobe" else self.index.hnsw, key, value)
            scores, slots = self.index.search(xq, k)
        scores = torch.from_numpy(scores)
        slots = torch.from_numpy(slots)
        scores[slots < 0] = float("-inf")
        return scores, slots


def make_hnsw(vectors: torch.Tensor, *, m: int = 32, ef_construction: int = 200, ef_search: int = 128) -> FaissApproxIndex:
    """An HNSW graph (``faiss.IndexHNSWFlat``) with ``m`` links per node.

    Args:
        vectors: ``(N, dim)`` float32 bank vectors.
        m: Links per node.
        ef_construction: Candidate list size while adding.
        ef_search: Candidate list size while searching (larger: better recall, slower).
    """
    import faiss

    for name, value in (("m", m), ("ef_construction", ef_construction), ("ef_search", ef_search)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"hnsw option {name} must be a positive int, got {value!r}")
    index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    return FaissApproxIndex(index, vectors, name="hnsw", params={"efSearch": ef_search})


def make_ivf(vectors: torch.Tensor, *, nlist: int | None = None, nprobe: int = 16, seed: int = 0) -> FaissApproxIndex:
    """An inverted file (``faiss.IndexIVFFlat``) trained once on the whole (fixed) bank.

    Args:
        vectors: ``(N, dim)`` float32 bank vectors.
        nlist: Number of clusters (default ``4 sqrt(N)``, at most ``N / 39`` so k-means has enough points).
        nprobe: Clusters visited per query (larger: better recall, slower).
        seed: Seed of the k-means training.
    """
    import faiss

    n, dim = vectors.shape
    nlist = nlist if nlist is not None else max(1, min(int(4 * math.sqrt(n)), n // 39))
    for name, value in (("nlist", nlist), ("nprobe", nprobe)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"ivf option {name} must be a positive int, got {value!r}")
    if nlist > n:
        raise ValueError(f"ivf option nlist must be <= the bank size {n}, got {nlist}")
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    train = np.ascontiguousarray(vectors.detach().cpu().numpy(), dtype=np.float32)
    if n > 256 * nlist:
        train = train[np.random.default_rng(seed).choice(n, 256 * nlist, replace=False)]
    index.train(train)
    wrapped = FaissApproxIndex(index, vectors, name="ivf", params={"nprobe": min(nprobe, nlist)})
    wrapped.quantizer = quantizer  # the IVF index points at it: keep it alive as long as the index
    return wrapped
