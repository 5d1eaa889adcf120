"""The project's own exceptions.

Every failure that a user can cause and that is specific to ebv-cl has a class here, so callers can catch
``EbvClError`` for all of them or a precise subclass for one. Each subclass also derives from the built-in
exception a Python user would expect (``ValueError``, ``LookupError``, ``RuntimeError``), so generic handlers
keep working. Messages always name the argument, the bad value and what was expected.
"""

from __future__ import annotations

__all__ = [
    "EbvClError",
    "BankFullError",
    "UnknownLabelError",
    "BankFileError",
    "BankMismatchError",
    "BankTooLargeError",
    "NotBuiltError",
    "ConfigError",
    "UnknownOptionError",
    "DataRootError",
    "CheckpointError",
    "MissingExtraError",
]


class EbvClError(Exception):
    """Base class of every ebv-cl specific error."""


class BankFullError(EbvClError, RuntimeError):
    """More classes were asked for than the bank has vectors."""

    def __init__(self, capacity: int, in_use: int, requested: int) -> None:
        self.capacity = capacity
        self.in_use = in_use
        self.requested = requested
        super().__init__(
            f"bank is full: capacity {capacity} vectors, {in_use} already allocated, "
            f"{requested} new class(es) requested; generate a larger bank (--n) or use fewer classes"
        )


class UnknownLabelError(EbvClError, LookupError):
    """A class label was looked up that was never allocated."""

    def __init__(self, label: object, known: int) -> None:
        self.label = label
        super().__init__(
            f"label {label!r} has no slot: it was never allocated ({known} label(s) are known); "
            f"call add_classes([{label!r}]) first"
        )


class BankFileError(EbvClError, ValueError):
    """A bank file is missing, truncated, corrupt, tampered with or of an unknown format version."""


class BankMismatchError(EbvClError, ValueError):
    """A bank, state dict or file disagrees in shape with what it is loaded into."""


class BankTooLargeError(EbvClError, ValueError):
    """A code bank was asked for all its rows at once (``bank.vectors``) although they exceed the memory limit."""


class NotBuiltError(EbvClError, RuntimeError):
    """An object was used before it was built, fitted or given any class."""


class ConfigError(EbvClError, ValueError):
    """A configuration (YAML or keyword arguments) names an unknown key, name or a value of the wrong type."""


class DataRootError(EbvClError, FileNotFoundError):
    """A dataset root is missing or does not have the expected layout."""


class UnknownOptionError(ConfigError, TypeError):
    """A keyword option that the named head, backbone, dataset, index kind, ... does not take.

    Both a ``ConfigError`` (it usually comes from a YAML key) and a ``TypeError`` (what Python raises for an
    unexpected keyword argument).
    """


class CheckpointError(EbvClError, ValueError):
    """A checkpoint file is unreadable or belongs to another run."""


class MissingExtraError(EbvClError, ImportError):
    """An optional dependency is needed (Ray for ``--workers`` or Ray shards) but not installed."""
