"""Shards of the ``sharded`` index kind held by Ray actors, for banks larger than one process (or machine).

``BankIndex(bank, allocator, kind="sharded", actors=N)`` splits the bank's rows into ``N`` contiguous shards
exactly as the local kind does and gives each to one Ray actor (``ShardWorker``), which keeps its rows on its
own device (CUDA when Ray gave it a GPU through ``actor_options={"num_gpus": 1}``, else the CPU) and answers
with the certified exact top-k of its rows, computed by the same ``ebv_cl.index.paths`` path a local shard
uses. ``ShardedPath`` then merges the candidates of every shard the allocated prefix reaches, unchanged: the
allocator stays the only source of which slots are searchable, and the result equals brute force. Actors are
searched in parallel; the query batch travels to each actor and ``k`` candidates per query come back.

Ray is imported only when such an index is built; a Ray instance is joined (or started) by Ray's own
``ray.init`` rules: call ``ray.init(address=...)`` first to use a cluster.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import MissingExtraError

__all__ = ["ShardWorker", "RayShards"]


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError(
            'kind "sharded" with actors= holds its shards in Ray actors, and Ray is not installed: '
            'pip install "ebv-cl[distributed]" (or pip install "ray[default]")'
        ) from exc
    return ray


class ShardWorker:
    """One shard: rows ``[start, start + len(rows))`` of the bank and the exact path that searches them.

    Args:
        rows: ``(m, dim)`` float32 unit vectors of the shard.
        start: The bank slot of the shard's first row.
        shard_path: ``auto`` (``fp32`` on CUDA, ``int8`` on the CPU), ``int8``, ``fp32`` or ``float64``.
    """

    def __init__(self, rows: torch.Tensor, start: int, shard_path: str) -> None:
        from .paths import SEARCH_PATHS, matmul_path

        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.start = int(start)
        part = rows.to(self.device, torch.float32).contiguous()
        name = matmul_path(self.device, rows.shape[1]) if shard_path == "auto" else shard_path
        self.path = SEARCH_PATHS.create(name, None, part, self.device)
        self.rows = part.shape[0]

    def nbytes(self) -> int:
        """Bytes the shard holds: its rows and its path's extra data."""
        return int(self.rows * self.path.vectors.shape[1] * 4 + self.path.nbytes)

    def search(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact top-``k`` over the shard's first ``n`` rows: ``(scores, bank slots)``, on the CPU."""
        rows = min(n, self.rows)
        scores, slots = self.path.search(queries.to(self.device), rows, min(k, rows))
        return scores.cpu(), slots.cpu() + self.start


class RayShards:
    """``len(bounds)`` Ray actors, each a ``ShardWorker`` over one row range of ``vectors``.

    Args:
        vectors: ``(N, dim)`` float32 bank vectors.
        actors: How many shards (and actors).
        shard_path: The exact path each actor uses.
        actor_options: Handed to Ray's ``.options`` for each actor (``num_cpus``, ``num_gpus``, ...).
    """

    def __init__(
        self, vectors: torch.Tensor, actors: int, shard_path: str = "auto", actor_options: dict[str, Any] | None = None
    ) -> None:
        ray = _ray()
        self._ray = ray
        n = vectors.shape[0]
        size = -(-n // actors)
        self.bounds = [(a, min(n, a + size)) for a in range(0, n, size)]
        options = {"num_cpus": 1, **(actor_options or {})}
        worker = ray.remote(ShardWorker)
        self.actors = [
            worker.options(**options).remote(vectors[a:b].clone(), a, shard_path) for a, b in self.bounds
        ]
        self._nbytes = int(sum(ray.get([w.nbytes.remote() for w in self.actors])))  # waits until every actor is up

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def search(self, queries: torch.Tensor, n: int, k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every live shard's exact top-k (``(scores, slots)``, slots in bank numbering), searched in parallel."""
        q = self._ray.put(queries.cpu())
        live = [w for w, (a, _) in zip(self.actors, self.bounds) if a < n]
        refs = [w.search.remote(q, n - a, k) for w, (a, _) in zip(live, self.bounds)]
        return list(self._ray.get(refs))

    def close(self) -> None:
        """End the actors now (they also end when this object is garbage-collected)."""
        for w in self.actors:
            self._ray.kill(w)
        self.actors = []
