"""Name registries for everything a YAML file can name.

A ``Registry`` maps a short name (``"ebv"``, ``"flat"``, ``"cifar10"``) to a factory. Heads, methods,
scenarios, datasets, bank generation methods and index types each own one registry, created in their
package and filled with a decorator. Looking up an unknown name raises ``ValueError`` listing the valid ones.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories with a ``register``/``create``/``names`` trio.

    Args:
        kind: What the registry holds, used in error messages (``"head"``, ``"index type"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``factory`` under ``name``.

        Raises:
            ValueError: if ``name`` is already registered.
        """

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory registered under ``name``.

        Raises:
            ValueError: if ``name`` is unknown; the message lists the valid names.
        """
        if not isinstance(name, str) or name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}")
        return self._entries[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Build the object registered under ``name`` with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
