"""Seeding that stays local: every random generator a run touches is seeded inside a context that puts the
caller's generator states back on exit.

PyTorch, Avalanche's replay buffers, NumPy and Python's ``random`` draw from the process-wide generators, so a
run seeds those; ``local_rng`` saves their states first and restores them afterwards (like
``torch.random.fork_rng``, but for all four). ``capture_rng``/``restore_rng`` give the states as a plain dict, which
a checkpoint stores so a resumed run draws the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["capture_rng", "restore_rng", "seed_everything", "local_rng"]


def capture_rng() -> dict[str, Any]:
    """The states of Python's, NumPy's, PyTorch's CPU and (when initialised) CUDA generators."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back generator states taken by ``capture_rng``."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) global generators with ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def local_rng(seed: int | None = None, *, state: dict[str, Any] | None = None) -> Iterator[None]:
    """Run the body with the global generators seeded by ``seed`` (or set to ``state``), then restore them.

    Args:
        seed: Seed for every generator; ignored when ``state`` is given.
        state: Generator states from ``capture_rng`` to start from instead.
    """
    saved = capture_rng()
    try:
        if state is not None:
            restore_rng(state)
        elif seed is not None:
            seed_everything(seed)
        yield
    finally:
        restore_rng(saved)
