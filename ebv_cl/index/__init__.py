"""Nearest-class search over the allocated bank vectors: ``BankIndex`` with exact and approximate kinds.

``BankIndex(bank, allocator, kind="flat")`` searches the classes a ``SlotAllocator`` has given rows and follows
it as classes arrive. The ``flat`` kind is exact (float64 scores, lower slot first on ties) through one of the
paths in ``search_paths()``; the fastest on the CPU scores in int8 and re-ranks a provably sufficient candidate
set exactly. ``hnsw`` and ``ivf`` are FAISS approximate options.
"""

from .bank_index import BankIndex
from .kinds import INDEX_KINDS, index_kinds
from .paths import SEARCH_PATHS, choose_path, search_paths
from .rerank import exact_search, unit_queries

__all__ = [
    "BankIndex",
    "INDEX_KINDS",
    "SEARCH_PATHS",
    "index_kinds",
    "search_paths",
    "choose_path",
    "exact_search",
    "unit_queries",
]
