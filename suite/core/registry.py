"""One registry type for everything the suite looks up by name: methods, datasets, judges, merge methods,
executors, launchers, reward rules. Registering a name twice is a programming error; looking up an unknown
name is a ConfigError that names the config key, suggests the closest names and lists the known ones."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from suite.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind. ``where`` is the config key or flag that names an entry (it starts the
    error message), ``kind`` what an entry is ("method", "dataset", ...)."""

    def __init__(self, kind: str, where: str, listing: str = "known", hint: str = "",
                 loader: Callable[[], None] | None = None):
        self.kind, self.where, self.listing, self.hint = kind, where, listing, hint
        self._entries: dict[str, T] = {}
        self._loader = loader  # imports what registers the entries, on first lookup (plugins)
        self._loaded = loader is None

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> T | None:
        """Take an entry out (tests that register throw-away entries clean up with this)."""
        return self._entries.pop(name, None)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda entry: self.add(name, entry)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._loader()

    def get(self, name: str, where: str | None = None) -> T:
        self._load()
        if name not in self._entries:
            raise ConfigError(self.unknown(name, where))
        return self._entries[name]

    def unknown(self, name, where: str | None = None) -> str:
        """The error text for an unknown ``name``: where, what, the closest names, every known one."""
        close = difflib.get_close_matches(str(name), list(self._entries), n=3, cutoff=0.6)
        suggestion = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        return (f"{where or self.where}: unknown {self.kind} {name!r}{suggestion}; {self.listing}: "
                f"{', '.join(self.names())}{self.hint}")

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)
