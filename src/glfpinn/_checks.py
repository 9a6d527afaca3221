"""Argument checks shared by every part of the library: one-line errors that name the value and
what is allowed (the CLI prints them as they are and exits with status 2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from difflib import get_close_matches
from typing import Any

__all__ = ["check_positive", "check_int", "check_keys", "unknown"]


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """One-line ValueError for a hyperparameter outside its range."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok or value != value:  # value != value catches NaN
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be {bound}")


def check_int(name: str, value: Any, *, minimum: int = 0) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``; else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed; {name} must be an integer >= {minimum}")
    return int(value)


def unknown(kind: str, name: object, allowed: Iterable[str]) -> ValueError:
    """The error for a name outside ``allowed``, with the closest match as a hint."""
    allowed = list(allowed)
    close = get_close_matches(str(name), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(f"{kind} {name!r} is unknown{hint}; allowed: {', '.join(allowed)}")


def check_keys(kind: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse the first key of ``given`` that is not in ``allowed``."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            raise unknown(kind, key, allowed)
