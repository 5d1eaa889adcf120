"""The registry of index kinds a YAML file can name: ``flat`` (exact), ``sharded`` (exact, the bank split over
several devices), ``hnsw`` and ``ivf`` (approximate).

A kind's factory takes the bank, its float32 vectors on the search device, the device, the path name and the
kind's own keyword options, and returns an engine with ``search(queries, n, k) -> (scores, slots)``,
``exact`` and ``nbytes``. Traits: ``takes_path`` (the kind runs one of the exact search paths, ``path=``),
``host_device=(device type, why)`` (the index itself must live there: a kind that places its parts on devices
of its own says so).
"""

from __future__ import annotations

from typing import Any

import torch

from ..registry import Registry
from .approx import make_hnsw, make_ivf
from .paths import SEARCH_PATHS, choose_path
from .sharded import make_sharded

__all__ = ["INDEX_KINDS", "index_kinds", "check_options", "create_engine", "index_device"]

INDEX_KINDS: Registry[Any] = Registry("index kind", fixed=("vectors",))


@INDEX_KINDS.register("flat", options=False, takes_path=True)
def _flat(bank: Any, vectors: torch.Tensor, device: torch.device, path: str) -> Any:
    name = choose_path(bank, device) if path == "auto" else path
    return SEARCH_PATHS.create(name, bank, vectors, device)


@INDEX_KINDS.register("sharded", options=make_sharded, host_device=(
    "cpu", "puts its shards on its devices= option and merges on the CPU"))
def _sharded(bank: Any, vectors: torch.Tensor, device: torch.device, path: str, **options: Any) -> Any:
    return make_sharded(vectors, **options)


@INDEX_KINDS.register("hnsw", options=make_hnsw)
def _hnsw(bank: Any, vectors: torch.Tensor, device: torch.device, path: str, **options: Any) -> Any:
    return make_hnsw(vectors, **options)


@INDEX_KINDS.register("ivf", options=make_ivf)
def _ivf(bank: Any, vectors: torch.Tensor, device: torch.device, path: str, **options: Any) -> Any:
    return make_ivf(vectors, **options)


def index_kinds() -> list[str]:
    """The registered index kind names."""
    return INDEX_KINDS.names()


def check_options(kind: str, path: str, options: dict[str, Any]) -> None:
    """Reject a path on an approximate kind and options a kind does not take.

    Raises:
        ValueError: on an unknown kind or path, or a path given to ``hnsw``/``ivf``.
        UnknownOptionError: on an option the kind does not take (a ``TypeError``); the message lists the valid ones.
    """
    if INDEX_KINDS.traits(kind).get("takes_path"):
        if path != "auto":
            SEARCH_PATHS.get(path)
    elif path != "auto":
        takers = [k for k in INDEX_KINDS.names() if INDEX_KINDS.traits(k).get("takes_path")]
        raise ValueError(f"path={path!r} only applies to kind {' or '.join(map(repr, takers))}; kind {kind!r} takes "
                         "path='auto'")
    INDEX_KINDS.check_options(kind, options)


def create_engine(kind: str, bank: Any, vectors: torch.Tensor, device: torch.device, path: str, **options: Any) -> Any:
    """Build the engine of ``kind`` (see the module docstring)."""
    check_options(kind, path, options)
    return INDEX_KINDS.get(kind)(bank, vectors, device, path, **options)


def index_device(kind: str, device: str | torch.device | None) -> torch.device:
    """Where an index of ``kind`` lives: ``device``, else CUDA when available, else the CPU; a kind with a
    ``host_device`` trait always lives there.

    Raises:
        ValueError: on an unknown kind, or a ``device`` that the kind's ``host_device`` forbids.
    """
    host = INDEX_KINDS.traits(kind).get("host_device")
    if host is not None:
        where, why = host
        if device is not None and torch.device(device).type != where:
            raise ValueError(f"kind {kind!r} {why}; got device={device!r}, expected None or {where!r}")
        device = where
    return torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
