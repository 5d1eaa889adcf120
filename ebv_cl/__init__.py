"""ebv-cl: class-incremental learning with fixed banks of Equiangular Basis Vectors.

The core (bank, slots, heads, index, data) imports neither Avalanche nor the CLI; importing ``ebv_cl`` is
cheap. Heavy submodules are loaded on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .bank import EBVBank, BankStats, bank_statistics, coherence_lower_bound, levenstein_bound, welch_bound
from .errors import (
    BankFileError,
    BankFullError,
    BankMismatchError,
    ConfigError,
    DataRootError,
    EbvClError,
    NotBuiltError,
    UnknownLabelError,
)
from .slots import SlotAllocator

__version__ = "0.1.0"

_LAZY = {
    "BankIndex": "ebv_cl.index",
    "create_head": "ebv_cl.heads",
    "list_heads": "ebv_cl.heads",
}

__all__ = [
    "EBVBank",
    "BankStats",
    "bank_statistics",
    "coherence_lower_bound",
    "levenstein_bound",
    "welch_bound",
    "SlotAllocator",
    "EbvClError",
    "BankFullError",
    "UnknownLabelError",
    "BankFileError",
    "BankMismatchError",
    "NotBuiltError",
    "ConfigError",
    "DataRootError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ebv_cl' has no attribute {name!r}")
