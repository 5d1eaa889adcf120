"""The registry of index kinds a YAML file can name: ``flat`` (exact), ``sharded`` (exact, the bank split over
several devices), ``hnsw`` and ``ivf`` (approximate).

A kind's factory takes the bank, its float32 vectors on the search device, the device, the path name and the
kind's own keyword options, and returns an engine with ``search(queries, n, k) -> (scores, slots)``,
``exact`` and ``nbytes``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch

from ..registry import Registry
from .approx import make_hnsw, make_ivf
from .paths import SEARCH_PATHS, choose_path
from .sharded import make_sharded

__all__ = ["INDEX_KINDS", "index_kinds", "check_options", "create_engine"]

INDEX_KINDS: Registry[Any] = Registry("index kind")


@INDEX_KINDS.register("flat")
def _flat(bank: Any, vectors: torch.Tensor, device: torch.device, path: str) -> Any:
    name = choose_path(bank, device) if path == "auto" else path
    return SEARCH_PATHS.create(name, bank, vectors, device)


@INDEX_KINDS.register("sharded")
def _sharded(bank: Any, vectors: torch.Tensor, device: torch.device, path: str, **options: Any) -> Any:
    return make_sharded(vectors, **options)


@INDEX_KINDS.register("hnsw")
def _hnsw(bank: Any, vectors: torch.Tensor, device: torch.device, path: str, **options: Any) -> Any:
    return make_hnsw(vectors, **options)


@INDEX_KINDS.register("ivf")
def _ivf(bank: Any, vectors: torch.Tensor, device: torch.device, path: str, **options: Any) -> Any:
    return make_ivf(vectors, **options)


_OPTION_FACTORIES: dict[str, Callable[..., Any] | None] = {
    "flat": None, "sharded": make_sharded, "hnsw": make_hnsw, "ivf": make_ivf,
}


def index_kinds() -> list[str]:
    """The registered index kind names."""
    return INDEX_KINDS.names()


def check_options(kind: str, path: str, options: dict[str, Any]) -> None:
    """Reject a path on an approximate kind and options a kind does not take.

    Raises:
        ValueError: on an unknown kind or path, or a path given to ``hnsw``/``ivf``.
        TypeError: on an option the kind does not take; the message lists the valid ones.
    """
    INDEX_KINDS.get(kind)
    if kind == "flat":
        if path != "auto":
            SEARCH_PATHS.get(path)
    elif path != "auto":
        raise ValueError(f"path={path!r} only applies to kind 'flat'; kind {kind!r} takes path='auto'")
    factory = _OPTION_FACTORIES.get(kind)
    valid = [] if factory is None else [p for p in inspect.signature(factory).parameters if p != "vectors"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown} for index kind {kind!r}; valid options: {valid or 'none'}")


def create_engine(kind: str, bank: Any, vectors: torch.Tensor, device: torch.device, path: str, **options: Any) -> Any:
    """Build the engine of ``kind`` (see the module docstring)."""
    check_options(kind, path, options)
    return INDEX_KINDS.create(kind, bank, vectors, device, path, **options)
