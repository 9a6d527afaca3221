"""Argument checks shared by every part of the library: one-line errors that name the value and
what is allowed (the CLI prints them as they are and exits with status 2)."""

from __future__ import annotations

import math
import numbers
import re
import reprlib
from collections.abc import Iterable, Mapping
from difflib import get_close_matches
from typing import Any

__all__ = [
    "check_positive",
    "check_int",
    "check_fraction",
    "check_bool",
    "check_choice",
    "check_device",
    "DEVICES",
    "check_keys",
    "unknown",
    "short_repr",
    "shorten",
]

#: The longest value an error message shows; the rest is cut out of its middle.
REPR_LIMIT = 80

# reprlib stops at a fixed depth and a fixed number of items per container, so even a value
# whose full repr is astronomically long (a YAML "billion laughs") costs microseconds here.
_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxdict = _repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = 4
_repr.maxstring = _repr.maxother = REPR_LIMIT
_repr.maxlong = 40


def shorten(text: str, limit: int = REPR_LIMIT) -> str:
    """``text`` if it has at most ``limit`` characters, else its two ends around ``...``."""
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return f"{text[:head]}...{text[len(text) - (limit - 3 - head) :]}"


def short_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """``repr(value)``, at most ``limit`` characters, computed in bounded time and memory."""
    if isinstance(value, str):  # reprlib would cut a string before quoting it; keep repr's own
        return shorten(repr(shorten(value, 2 * limit)), limit)
    return shorten(_repr.repr(value), limit)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """One-line ValueError unless ``value`` is a finite real number > 0 (>= 0 with
    ``allow_zero``); bools, NaN and infinities are refused."""
    bound = ">= 0" if allow_zero else "> 0"
    ok = _is_real(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(
            f"{name}={short_repr(value)} is not allowed; {name} must be a finite number {bound}"
        )


def check_between(name: str, value: Any, low: float, high: float) -> float:
    """``value`` as a float in [low, high], or a one-line ValueError; bools and NaN are
    refused."""
    if not (_is_real(value) and low <= value <= high):
        raise ValueError(f"{name}={short_repr(value)} must be a number in [{low}, {high}]")
    return float(value)


def check_fraction(name: str, value: Any, *, allow_zero: bool = True) -> float:
    """``value`` as a float in [0, 1) (in (0, 1) without ``allow_zero``), or a one-line
    ValueError."""
    ok = _is_real(value) and math.isfinite(value) and value < 1
    if not (ok and (value >= 0 if allow_zero else value > 0)):
        allowed = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(
            f"{name}={short_repr(value)} is not allowed; {name} must be a number in {allowed}"
        )
    return float(value)


def check_int(name: str, value: Any, *, minimum: int = 0) -> int:
    """``value`` as an int if it is an integer (not a bool, not a float, even 3.0) >=
    ``minimum``; else a one-line ValueError."""
    if (
        isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum  # type: ignore[operator]
    ):
        raise ValueError(
            f"{name}={short_repr(value)} is not allowed; {name} must be an integer >= {minimum}"
        )
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is True or False: a flag given as ``"no"`` would otherwise be true."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}={short_repr(value)} is not allowed; {name} must be true or false")
    return value


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """``value`` if it is one of the strings ``allowed``; else a one-line ValueError."""
    allowed = tuple(allowed)
    if not (isinstance(value, str) and value in allowed):
        raise ValueError(f"{name}={short_repr(value)} is unknown; allowed: {', '.join(allowed)}")
    return value


def unknown(kind: str, name: object, allowed: Iterable[str]) -> ValueError:
    """The error for a name outside ``allowed``, with the closest match as a hint."""
    allowed = list(allowed)
    # Only a name of sensible length can be a typo; difflib on a huge one would take a while.
    typo = isinstance(name, str) and len(name) <= REPR_LIMIT
    close = get_close_matches(str(name), allowed, n=1) if typo else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(f"{kind} {short_repr(name)} is unknown{hint}; allowed: {', '.join(allowed)}")


def check_keys(kind: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse the first key of ``given`` that is not in ``allowed``."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            raise unknown(kind, key, allowed)


#: The devices a run may name (``cuda:N`` for any N; ``auto`` picks CUDA when present).
DEVICES = "cpu, cuda, cuda:N, auto"
_DEVICE = re.compile(r"cpu|cuda|cuda:[0-9]+|auto")


def check_device(device: object) -> str:
    """``device`` as a name a run can train on; torch itself also accepts ``meta`` and others,
    which cannot train. Whether CUDA is there is the trainer's to check, on the machine that
    runs (a config may be written on another)."""
    name = str(device)
    if not _DEVICE.fullmatch(name):
        raise ValueError(f"device={short_repr(device)} is not allowed; allowed: {DEVICES}")
    return name
