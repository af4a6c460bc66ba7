"""One registry per kind of thing (datasets, architectures, attacks, objectives, selectors,
miners): the single table of names a param may take and the classes they build.

Config validates a name against the registry and the pipeline builds from it (the README's
method tables are tested against it), so a name exists in exactly one place: the ``name`` of
the class that implements it. Adding a kind of thing is one class plus one line in its registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from robustprune.errors import ConfigError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """An ordered, read-only name → class table; each class carries its own ``name``."""

    def __init__(self, key: str, items: Iterable[T] | Mapping[str, T]) -> None:
        """``items``: classes that carry a ``name``, or a name → object mapping (functions)."""
        self.key = key  # the param that chooses from it, for error messages
        pairs = (items.items() if isinstance(items, Mapping)
                 else ((getattr(item, "name", ""), item) for item in items))
        self._items: dict[str, T] = {}
        for name, item in pairs:
            if not name or name in self._items:
                raise ValueError(f"{key}: {item!r} needs a unique, non-empty name")
            self._items[name] = item

    @classmethod
    def collect(cls, key: str, base: type, namespace: Mapping[str, object]) -> Registry[Any]:
        """Every class in ``namespace`` (a package's ``vars()``) that is ``base`` or a subclass
        of it and has a name, in import order: importing a class into the package's
        ``__init__`` is the one line that registers it."""
        found = [v for v in namespace.values()
                 if isinstance(v, type) and issubclass(v, base) and getattr(v, "name", "")]
        return cls(key, list(dict.fromkeys(found)))

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def lookup(self, name: str, key: str | None = None) -> T:
        """The class for ``name``, or a one-line :class:`ConfigError` naming what is allowed."""
        if name not in self._items:
            raise ConfigError(f'{key or self.key} = "{name}": must be one of '
                              f"{', '.join(self._items)}")
        return self._items[name]
