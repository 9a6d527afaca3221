"""A name -> factory table with one-line descriptions, shared by problems and samplers.

Three ways in: ``register(name, factory, doc)`` in Python; an installed package's entry point in
the registry's group (``glfpinn.problems``, ``glfpinn.samplers``), found on first use; and, in
place of a name, an import path (``package.module:Class`` or ``path/to/file.py:Class``), which
needs no registration at all.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from glfpinn._checks import unknown
from glfpinn.plugins import is_import_path, load_object

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, tuple[Callable[..., T], str]] = {}
        self._plugins_loaded = group is None

    def register(self, name: str, factory: Callable[..., T], description: str) -> None:
        if not isinstance(name, str) or not name or is_import_path(name):
            raise ValueError(f"{self.kind} name {name!r} must be a non-empty string without ':'")
        if not callable(factory):
            raise ValueError(f"{self.kind} {name!r}: {factory!r} is not callable")
        self._entries[name] = (factory, description)

    def _load_plugins(self) -> None:
        """Entry points of installed packages, registered once, on first use; each is imported
        only when built, so one that fails to import breaks only its own runs, saying why."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry in importlib.metadata.entry_points(group=self.group):
            if entry.name not in self._entries:
                self._entries[entry.name] = (_lazy(entry), f"plugin {entry.value}")

    def names(self) -> list[str]:
        self._load_plugins()
        return list(self._entries)

    def known(self, name: str) -> str:
        """``name`` if registered, else a one-line ValueError listing the known names."""
        self._load_plugins()
        if name not in self._entries:
            raise unknown(self.kind, name, self._entries)
        return name

    def name_of(self, factory: Callable[..., Any]) -> str | None:
        """The first name registered for exactly ``factory`` (a class), or None."""
        self._load_plugins()
        return next((n for n, (f, _) in self._entries.items() if f is factory), None)

    def describe(self, name: str) -> str:
        return self._entries[self.known(name)][1]

    def factory(self, name: str) -> Callable[..., T]:
        """What builds ``name``: a registered factory, or the object an import path names."""
        if is_import_path(name):
            obj = load_object(name, self.kind)
            if not callable(obj):
                raise ValueError(f"{self.kind} {name!r} is not a class or factory")
            return obj
        return self._entries[self.known(name)][0]

    def get(self, name: str, **params: Any) -> T:
        factory = self.factory(name)
        try:
            return factory(**params)
        except TypeError as err:
            # one line, whatever the error quotes (a keyword argument named "\n", say)
            raise TypeError(f"{self.kind} {name!r}: {' '.join(str(err).split())}") from None


def _lazy(entry: importlib.metadata.EntryPoint) -> Callable[..., Any]:
    def build(**params: Any) -> Any:
        try:
            factory = entry.load()
        except Exception as err:  # noqa: BLE001 - the plugin's own import failed
            raise ValueError(
                f"plugin {entry.name!r} ({entry.value}) failed to load: {type(err).__name__}: {err}"
            ) from None
        return factory(**params)

    return build
