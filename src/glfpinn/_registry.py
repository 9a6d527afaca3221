"""A name -> factory table with one-line descriptions, shared by problems and samplers."""

from __future__ import annotations

from collections.abc import Callable
from difflib import get_close_matches
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, tuple[Callable[..., T], str]] = {}

    def register(self, name: str, factory: Callable[..., T], description: str) -> None:
        self._entries[name] = (factory, description)

    def names(self) -> list[str]:
        return list(self._entries)

    def known(self, name: str) -> str:
        """``name`` if registered, else a one-line ValueError listing the known names."""
        if name not in self._entries:
            close = get_close_matches(str(name), self._entries, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(self._entries)
            raise ValueError(f"{self.kind} {name!r} is unknown{hint}; known: {known}")
        return name

    def describe(self, name: str) -> str:
        return self._entries[self.known(name)][1]

    def get(self, name: str, **params: Any) -> T:
        factory = self._entries[self.known(name)][0]
        try:
            return factory(**params)
        except TypeError as err:
            raise TypeError(f"{self.kind} {name!r}: {err}") from None
