"""Find the replay buffers a strategy holds, wherever Avalanche keeps them.

``ReplayPlugin`` and ``GDumbPlugin`` keep a ``storage_policy`` attribute; the ``DER`` strategy keeps its own
``storage_policy``. Each policy's ``buffer`` is an ``AvalancheDataset`` (empty before the first update).
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

__all__ = ["replay_buffers"]


def replay_buffers(strategy: Any) -> list[Dataset]:
    """The non-empty replay buffers of ``strategy`` (its own and its plugins'), in eval mode."""
    owners = [strategy, *getattr(strategy, "plugins", [])]
    found: list[Dataset] = []
    for owner in owners:
        policy = getattr(owner, "storage_policy", None)
        buffer = getattr(policy, "buffer", None)
        if buffer is not None and len(buffer) > 0 and all(buffer is not b for b in found):
            found.append(buffer.eval() if hasattr(buffer, "eval") else buffer)
    return found
