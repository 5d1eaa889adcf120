"""Classifier heads: ``torch.nn.Module``s mapping backbone features to class logits, named in a registry.

Every head derives from ``ClassifierHead`` (arrival-ordered columns, ``add_classes``, ``columns_of``,
``predict``, ``training_loss``, ``trainable_head_params`` and a state dict that carries the classes).
``create_head(name, in_features, bank=..., **kwargs)`` builds one by name: ``ebv``, ``fc``, ``ncm``,
``tau_norm``, ``hadamard``, ``angular``.
"""

from __future__ import annotations

from typing import Any

from ..bank import EBVBank
from ..errors import ConfigError
from ..registry import Registry
from .angular import AngularHead
from .base import ClassifierHead
from .ebv import EBVHead
from .fc import FCHead
from .hadamard import HadamardHead
from .ncm import NCMHead
from .tau_norm import TauNormHead

__all__ = [
    "HEADS",
    "ClassifierHead",
    "EBVHead",
    "FCHead",
    "NCMHead",
    "TauNormHead",
    "HadamardHead",
    "AngularHead",
    "create_head",
    "list_heads",
]

HEADS: Registry[ClassifierHead] = Registry("head", fixed=("in_features", "bank"))


def _register(name: str, cls: type[ClassifierHead], **traits: Any) -> None:
    """Register ``cls`` under ``name`` with its traits: ``needs_bank`` (its classifier is the bank's vectors),
    ``capacity_option`` (the option that bounds its classes, taken from the bank's size when a bank is given,
    else from the stream's class count), ``seeded`` (it takes a ``seed`` option for its own randomness)."""
    capacity = traits.get("capacity_option")

    def factory(in_features: int, *, bank: EBVBank | None = None, **kwargs: Any) -> ClassifierHead:
        if traits.get("needs_bank"):
            if bank is None:
                raise ConfigError(f"head {name!r} needs a bank: create_head({name!r}, in_features, bank=EBVBank(...))")
            return cls(in_features, bank, **kwargs)
        if capacity is not None and bank is not None:
            kwargs.setdefault(capacity, bank.n)
        return cls(in_features, **kwargs)

    factory.head_class = cls  # type: ignore[attr-defined]
    HEADS.register(name, options=cls.__init__, **traits)(factory)


_register("ebv", EBVHead, needs_bank=True, seeded=True)
_register("fc", FCHead)
_register("ncm", NCMHead)
_register("tau_norm", TauNormHead)
_register("hadamard", HadamardHead, capacity_option="max_classes")
_register("angular", AngularHead)


def create_head(name: str, in_features: int, *, bank: EBVBank | None = None, **kwargs: Any) -> ClassifierHead:
    """Build the head registered under ``name``.

    Args:
        name: One of ``list_heads()``.
        in_features: Size of the backbone features.
        bank: The fixed bank (required by ``ebv``; ``hadamard`` takes ``max_classes`` from it when not given;
            ignored by the other heads, so a strategy can pass it uniformly).
        **kwargs: The head's keyword arguments (see its class).

    Returns:
        The head, with no classes yet.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names).
        UnknownOptionError: if a keyword argument is unknown to that head (a ``ConfigError``).
        ConfigError: if a required bank is missing.
    """
    return HEADS.create(name, in_features, bank=bank, **kwargs)


def list_heads() -> list[str]:
    """The registered head names, sorted."""
    return HEADS.names()
