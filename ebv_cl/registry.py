"""Name registries for everything a YAML file can name.

A ``Registry`` maps a short name (``"ebv"``, ``"flat"``, ``"cifar10"``) to a factory. Heads, methods,
scenarios, datasets, backbones, bank generation methods and index types each own one registry, created in their
package and filled with a decorator. Looking up an unknown name raises ``ValueError`` listing the valid ones.

Each entry knows the keyword options it takes: the keyword parameters of its factory, or of the callable given
as ``register(name, options=...)`` when the factory forwards ``**kwargs`` (a head's class, say), less the
registry's ``fixed`` arguments that callers always pass. ``create`` refuses any other keyword with one error,
``UnknownOptionError`` (a ``ConfigError`` and a ``TypeError``), naming the options that are valid; ``options``
lists them for documentation (``ebv-cl config --schema``).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

from .errors import UnknownOptionError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories with a ``register``/``create``/``names`` trio.

    Args:
        kind: What the registry holds, used in error messages (``"head"``, ``"index type"``).
    """

    def __init__(self, kind: str, *, fixed: Iterable[str] = ()) -> None:
        self.kind = kind
        self.fixed = frozenset(fixed)
        self._entries: dict[str, Callable[..., T]] = {}
        self._options: dict[str, Callable[..., Any] | None] = {}
        self._traits: dict[str, dict[str, Any]] = {}

    def register(
        self, name: str, *, options: Callable[..., Any] | None | bool = True, **traits: Any
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``factory`` under ``name``.

        Args:
            name: The name a YAML file or a caller uses.
            options: Where the entry's keyword options are read from: ``True`` (the factory's own signature),
                another callable whose keyword parameters they are (a class forwarded ``**kwargs``), or
                ``False`` for an entry that takes no option.
            **traits: What callers need to know about the entry without switching on its name (a head's
                ``needs_bank``, ...); read back with ``traits(name)``.

        Raises:
            ValueError: if ``name`` is already registered.
        """

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = factory
            self._options[name] = factory if options is True else (options or None)
            self._traits[name] = dict(traits)
            return factory

        return decorator

    def traits(self, name: str) -> dict[str, Any]:
        """The traits entry ``name`` was registered with (a copy; absent traits are absent keys).

        Raises:
            ValueError: if ``name`` is unknown.
        """
        self.get(name)
        return dict(self._traits[name])

    def option_source(self, name: str) -> Callable[..., Any] | None:
        """The callable whose keyword parameters are entry ``name``'s options (``None``: it takes none).

        Raises:
            ValueError: if ``name`` is unknown.
        """
        self.get(name)
        return self._options[name]

    def options(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword options of entry ``name`` (name -> parameter, with its default and annotation), in order.

        Raises:
            ValueError: if ``name`` is unknown.
        """
        self.get(name)
        source = self._options[name]
        if source is None:
            return {}
        return {
            p.name: p for p in inspect.signature(source).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in self.fixed and p.name != "self"
        }

    def check_options(self, name: str, options: Mapping[str, Any] | Iterable[str], *, extra: Iterable[str] = ()
                      ) -> None:
        """Refuse option names that entry ``name`` does not take (``extra``: more names the caller handles).

        Raises:
            ValueError: if ``name`` is unknown.
            UnknownOptionError: listing the unknown options and the valid ones.
        """
        valid = [*self.options(name), *extra]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UnknownOptionError(
                f"unknown option(s) {unknown} for {self.kind} {name!r}; valid options: {', '.join(valid) or 'none'}"
            )

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory registered under ``name``.

        Raises:
            ValueError: if ``name`` is unknown; the message lists the valid names.
        """
        if not isinstance(name, str) or name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}")
        return self._entries[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Build the object registered under ``name``; keywords other than its options and ``fixed`` are refused.

        Raises:
            ValueError: if ``name`` is unknown (the message lists the valid names).
            UnknownOptionError: on a keyword the entry does not take (the message lists the valid ones).
        """
        factory = self.get(name)
        self.check_options(name, [k for k in kwargs if k not in self.fixed])
        return factory(*args, **kwargs)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def in_order(self) -> list[str]:
        """The registered names in the order they were registered (a table's natural row order)."""
        return list(self._entries)

    def unregister(self, name: str) -> None:
        """Remove entry ``name`` (a test's temporary entry, say).

        Raises:
            ValueError: if ``name`` is unknown.
        """
        self.get(name)
        for table in (self._entries, self._options, self._traits):
            del table[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
