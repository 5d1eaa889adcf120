"""``BankIndex``: nearest-class search over the allocated bank vectors, in step with the slot allocator.

Classes own bank rows through a ``SlotAllocator`` (slot ``i`` is row ``i``, allocated in arrival order), so the
searchable set is always the prefix of the fixed bank of length ``len(allocator)``. Every search takes one
snapshot of the allocator's labels, searches exactly that prefix and maps slots to labels from the same
snapshot: a class allocated meanwhile (``allocate`` or a head's ``add_classes``) is found by the next search
without any rebuild, and a concurrent search never sees a half-added class or a wrong label.

Threads: the exact paths use torch's intra-op threads (``torch.set_num_threads``), FAISS its own OpenMP
runtime (``faiss.omp_set_num_threads``). Both default to one thread per core; on a small machine shared with
other processes, one thread each was faster for every method (``ebv-cl bench search --threads 1``), and
several Python threads searching at once should each use one.
"""

from __future__ import annotations

import threading
from typing import Any, Hashable

import torch

from ..errors import BankMismatchError, NotBuiltError
from ..slots import LabelSnapshot, SlotAllocator
from ..validation import as_embeddings, check_positive_int
from .kinds import check_options, create_engine, index_device
from .paths import needs_vectors
from .structured import is_code_bank
from .rerank import unit_queries

__all__ = ["BankIndex"]


class BankIndex:
    """Inner-product (cosine) search of embeddings against the allocated classes of a bank.

    Args:
        bank: The ``EBVBank`` (its ``(N, dim)`` unit ``vectors`` never change). A code bank (``bank.code`` set)
            is searched by path ``fft`` without forming its rows.
        allocator: The ``SlotAllocator`` mapping labels to rows; its capacity must not exceed ``bank.n``.
        kind: A name from ``index_kinds()``: ``"flat"`` (exact, default), ``"sharded"`` (exact, the bank split
            into row shards over several devices, see ``ebv_cl.index.sharded``), ``"hnsw"`` or ``"ivf"``
            (approximate; see ``ebv_cl.index.approx`` for their recall).
        path: For ``flat``: a name from ``search_paths()`` or ``"auto"`` (``fft`` for code banks, ``wht`` for
            Kerdock banks, ``fp32`` on CUDA, ``int8`` on the CPU; all exact). Other kinds take ``"auto"`` only.
        device: Where scoring runs (default: CUDA when available, else the CPU). Kind ``sharded`` places its
            shards on its ``devices`` option and merges on the CPU: leave ``device`` unset or ``"cpu"``.
        **kind_options: Options of the kind (``sharded``: ``devices``, ``shard_path``; ``hnsw``: ``m``,
            ``ef_construction``, ``ef_search``; ``ivf``: ``nlist``, ``nprobe``, ``seed``).

    Raises:
        TypeError: if ``bank``/``allocator`` have the wrong type or an option is unknown.
        ValueError: on an unknown kind or path.
        BankMismatchError: if the allocator holds more slots than the bank has vectors.
        ValueError: also for kind ``sharded`` with a ``device`` other than the CPU.
    """

    def __init__(
        self,
        bank: Any,
        allocator: SlotAllocator,
        *,
        kind: str = "flat",
        path: str = "auto",
        device: str | torch.device | None = None,
        **kind_options: Any,
    ) -> None:
        if is_code_bank(bank):  # stored as a formula: never touch its dense vectors here
            n_rows = int(bank.n)
        else:
            vectors = getattr(bank, "vectors", None)
            if not isinstance(vectors, torch.Tensor) or vectors.ndim != 2:
                raise TypeError(f"bank must be an EBVBank with (n, dim) vectors, got {type(bank).__name__}")
            n_rows = int(vectors.shape[0])
        if not isinstance(allocator, SlotAllocator):
            raise TypeError(f"allocator must be a SlotAllocator, got {type(allocator).__name__}")
        if allocator.capacity > n_rows:
            raise BankMismatchError(f"allocator capacity {allocator.capacity} exceeds the bank's {n_rows} vectors")
        check_options(kind, path, kind_options)
        self.bank, self.allocator, self.kind, self.path = bank, allocator, kind, path
        self.device = index_device(kind, device)
        self._options = dict(kind_options)
        self._engine: Any = None
        self._build_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.allocator)

    def __repr__(self) -> str:
        return (
            f"BankIndex(kind={self.kind!r}, path={self.path!r}, classes={len(self)}, dim={self.dim}, "
            f"device={self.device})"
        )

    @property
    def dim(self) -> int:
        """The embedding dimension (the bank's)."""
        return int(self.bank.dim) if is_code_bank(self.bank) else int(self.bank.vectors.shape[1])

    @property
    def exact(self) -> bool:
        """Whether results equal the exact top-k (float64 scores, lower slot first on ties)."""
        return bool(self.engine.exact)

    @property
    def engine(self) -> Any:
        """The search engine, built on first use (the low-precision bank copy, the FAISS index...)."""
        if self._engine is None:
            with self._build_lock:
                if self._engine is None:
                    vectors = None
                    if needs_vectors(self.kind, self.path, self.bank, self.device):
                        vectors = self.bank.vectors.to(self.device, torch.float32).contiguous()
                    self._engine = create_engine(self.kind, self.bank, vectors, self.device, self.path, **self._options)
        return self._engine

    def build(self) -> "BankIndex":
        """Build the engine now rather than on the first search; returns ``self``."""
        _ = self.engine
        return self

    def memory_bytes(self) -> int:
        """Bytes the engine holds beyond the bank vectors."""
        return int(self.engine.nbytes)

    def _snapshot(self) -> LabelSnapshot:
        """The allocated labels in slot order, one consistent view (taken under the allocator's lock, no copy)."""
        return self.allocator.snapshot()

    def _prepare(self, embeddings: Any, k: Any, *, labels_needed: bool = True) -> tuple[torch.Tensor, int, Any]:
        k = check_positive_int(k, name="k")
        # slots only need the allocated count (the allocator only appends, so any count is a consistent prefix)
        labels = self._snapshot() if labels_needed else range(len(self.allocator))
        if not labels:
            raise NotBuiltError("the index has no class to search: allocate classes (add_classes) before searching")
        if k > len(labels):
            raise ValueError(f"k must be <= the number of allocated classes ({len(labels)}), got k={k}")
        queries = as_embeddings(embeddings, dim=self.dim, name="embeddings").detach()  # results carry no autograd
        return unit_queries(queries).to(self.device), k, labels

    def search_slots(self, embeddings: Any, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` nearest classes of each embedding as bank slots.

        Args:
            embeddings: ``(n, dim)`` (or ``(dim,)``) float tensor or array; rows are L2-normalised here.
            k: Classes per embedding, ``1 <= k <= len(self)``.

        Returns:
            ``(scores, slots)``: float32 ``(n, k)`` cosine scores, best first, and int64 ``(n, k)`` slots (``-1``
            where an approximate kind found fewer than ``k``), both on the CPU.

        Raises:
            NotBuiltError: if no class is allocated.
            TypeError, ValueError: on bad embeddings (shape, dtype, NaN/inf, zero norm) or ``k``.
        """
        queries, k, labels = self._prepare(embeddings, k, labels_needed=False)
        scores, slots = self.engine.search(queries, len(labels), k)
        return scores.cpu(), slots.cpu()

    def candidate_slots(self, embeddings: Any, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Good, not certified, ``k`` nearest slots: ``search_slots`` without the exact re-rank where the engine
        offers that (path ``fft`` of code banks: its raw scores' top-k, ``ShiftPath.search_approx``), else exactly
        ``search_slots``. For callers such as hard-negative mining, where a Kasami bank's thousands of slots tied
        with the k-th best would all be re-ranked in float64 for nothing. Same arguments and returns as
        ``search_slots``; the scores are the raw ones (within the path's error bound)."""
        queries, k, labels = self._prepare(embeddings, k, labels_needed=False)
        approx = getattr(self.engine, "search_approx", None)
        scores, slots = (approx or self.engine.search)(queries, len(labels), k)
        return scores.cpu(), slots.cpu()

    def search(self, embeddings: Any, k: int = 1) -> tuple[torch.Tensor, list[list[Hashable]]]:
        """The ``k`` nearest classes of each embedding as class labels.

        Args:
            embeddings: ``(n, dim)`` (or ``(dim,)``) float tensor or array; rows are L2-normalised here.
            k: Classes per embedding, ``1 <= k <= len(self)``.

        Returns:
            ``(scores, labels)``: float32 ``(n, k)`` cosine scores, best first, and ``n`` lists of ``k`` labels
            (``int`` or ``str`` as allocated; ``None`` where an approximate kind found fewer than ``k``).

        Raises:
            NotBuiltError: if no class is allocated.
            TypeError, ValueError: on bad embeddings (shape, dtype, NaN/inf, zero norm) or ``k``.
        """
        queries, k, labels = self._prepare(embeddings, k)
        scores, slots = self.engine.search(queries, len(labels), k)
        slots = slots.cpu()
        flat, width = labels.labels_of(slots.reshape(-1).numpy().astype("int64", copy=False)), slots.shape[1]
        names = [flat[i * width : (i + 1) * width] for i in range(slots.shape[0])]
        return scores.cpu(), names
