"""The ``sharded`` index kind: the bank split into contiguous row shards, one per device, searched exactly.

For banks too large for one GPU (10^7 x 512 float32 is 20 GB), each device holds only its shard: rows
``[a_i, b_i)`` of the fixed bank, searched by a certified exact path of ``ebv_cl.index.paths`` (``fp32`` on
CUDA, ``int8`` on the CPU, or the one named by ``shard_path``). A search asks every shard that overlaps the
allocated prefix for its own exact top-k, then re-scores the union of those candidates in float64 and keeps the
k best, highest score first and lower slot first on ties. Since every shard ranks by that same order, the union
holds the global top-k, so the result equals ``rerank.exact_search`` (tests check it against brute force, with
ties across shard boundaries). This is the role FAISS's ``IndexShards`` plays for its own indexes, kept exact
and in step with the allocator: shards never change, the allocated prefix just grows into them.

Shards on distinct CUDA devices are searched in parallel threads; CPU shards one after another (they would
share the same cores). The merge runs on the CPU against the bank's CPU vectors. With ``actors=N`` the shards
live in ``N`` Ray actors instead (``ebv_cl.index.ray_shards``, Ray imported only then), possibly on other
machines; they are searched in parallel and merged by the same code.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import torch

from .paths import SEARCH_PATHS, matmul_path
from .rerank import pair_scores, topk_of_pairs

__all__ = ["ShardedPath", "make_sharded", "default_shard_devices"]

_SHARD_PATHS = ("auto", "int8", "fp32", "float64")


def default_shard_devices() -> list[str]:
    """Every CUDA device when there is one, else the CPU alone."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(count)] or ["cpu"]


class ShardedPath:
    """Exact search over row shards of the bank placed on several devices (see the module docstring).

    Args:
        vectors: ``(N, dim)`` float32 bank vectors on the CPU (the merge re-scores against them).
        devices: One device per shard; the same device may appear several times.
        shard_path: The exact path each shard uses: ``auto``, ``int8``, ``fp32`` or ``float64``.
    """

    exact = True
    name = "sharded"

    def __init__(
        self, vectors: torch.Tensor, devices: Sequence[str | torch.device], shard_path: str = "auto", *,
        remote: Any = None,
    ) -> None:
        self.vectors = vectors
        self.remote = remote  # a ray_shards.RayShards: its actors hold the shards and search them
        if remote is not None:
            self.devices, self.bounds, self.shards, self._pool = [], list(remote.bounds), [], None
            return
        n = vectors.shape[0]
        self.devices = [torch.device(d) for d in devices]
        size = -(-n // len(self.devices))
        self.bounds = [(a, min(n, a + size)) for a in range(0, n, size)]
        self.shards = []
        for (a, b), device in zip(self.bounds, self.devices):
            part = vectors[a:b].to(device, torch.float32).contiguous()
            path = matmul_path(device, vectors.shape[1]) if shard_path == "auto" else shard_path
            self.shards.append(SEARCH_PATHS.create(path, None, part, device))
        distinct_cuda = len({d for d in self.devices if d.type == "cuda"}) == len(self.devices) > 1
        self._pool = ThreadPoolExecutor(max_workers=len(self.shards)) if distinct_cuda else None

    @property
    def nbytes(self) -> int:
        """Bytes held on the shard devices: the shard copies (GPU only, or every row in Ray actors) and each
        path's extra data."""
        if self.remote is not None:
            return int(self.remote.nbytes)
        copies = sum((b - a) * self.vectors.shape[1] * 4 for (a, b), d in zip(self.bounds, self.devices) if d.type != "cpu")
        return copies + sum(int(s.nbytes) for s in self.shards)

    def _search_shard(self, i: int, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.bounds[i]
        rows = min(b, n) - a
        scores, slots = self.shards[i].search(queries.to(self.devices[i]), rows, min(k, rows))
        return scores.cpu(), slots.cpu() + a

    def search(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``(scores, slots)`` of shape ``(q, k)`` over rows ``0 .. n-1``."""
        live = [i for i, (a, _) in enumerate(self.bounds) if a < n]
        if self.remote is not None:
            parts = self.remote.search(queries.cpu(), n, k)
        elif self._pool is not None and len(live) > 1:
            parts = list(self._pool.map(lambda i: self._search_shard(i, queries, n, k), live))
        else:
            parts = [self._search_shard(i, queries, n, k) for i in live]
        q = queries.shape[0]
        slots = torch.cat([s for _, s in parts], dim=1)
        qi = torch.arange(q).repeat_interleave(slots.shape[1])
        slots = slots.reshape(-1)
        exact = pair_scores(queries.cpu(), self.vectors, qi, slots)
        scores, best = topk_of_pairs(qi, slots, exact, n_queries=q, k=k)
        return scores.float(), best


def make_sharded(
    vectors: torch.Tensor,
    devices: Sequence[str] | None = None,
    shard_path: str = "auto",
    actors: int | None = None,
    actor_options: dict[str, Any] | None = None,
) -> ShardedPath:
    """The ``sharded`` kind's engine.

    Args:
        vectors: ``(N, dim)`` float32 CPU bank vectors.
        devices: One device per shard (default ``default_shard_devices()``: every CUDA device, else the CPU).
        shard_path: ``auto`` (``fp32`` on CUDA, ``int8`` on the CPU), ``int8``, ``fp32`` or ``float64``.
        actors: Hold the shards in this many Ray actors instead of local devices (needs Ray; see
            ``ebv_cl.index.ray_shards``).
        actor_options: With ``actors``: Ray options of each actor (default ``{"num_cpus": 1}``; add
            ``"num_gpus": 1`` for a CUDA shard).

    Raises:
        ValueError: on an empty device list, more devices (or actors) than bank rows, an unknown ``shard_path``,
            ``int8`` on a CUDA device, or ``devices`` given together with ``actors``.
        MissingExtraError: if ``actors`` is given and Ray is not installed.
    """
    if shard_path not in _SHARD_PATHS:
        raise ValueError(f"shard_path must be one of {', '.join(_SHARD_PATHS)}, got {shard_path!r}")
    if actors is not None:
        if isinstance(actors, bool) or not isinstance(actors, int) or not 1 <= actors <= vectors.shape[0]:
            raise ValueError(f"actors must be an int in [1, {vectors.shape[0]}] (the bank's rows), got {actors!r}")
        if devices is not None:
            raise ValueError(f"devices={list(devices)} and actors={actors}: Ray actors place their own shards; "
                             "give one of them")
        from .ray_shards import RayShards

        return ShardedPath(vectors.cpu(), [], shard_path, remote=RayShards(vectors.cpu(), actors, shard_path,
                                                                            actor_options))
    if actor_options is not None:
        raise ValueError("actor_options applies only with actors=N (shards in Ray actors)")
    devices = default_shard_devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one device, got an empty list")
    if len(devices) > vectors.shape[0]:
        raise ValueError(f"devices must not outnumber the bank's {vectors.shape[0]} rows, got {len(devices)} devices")
    parsed = [torch.device(d) for d in devices]
    if shard_path == "int8" and any(d.type != "cpu" for d in parsed):
        raise ValueError(f"shard_path 'int8' runs on the CPU only, got devices {devices}")
    return ShardedPath(vectors.cpu(), parsed, shard_path)
