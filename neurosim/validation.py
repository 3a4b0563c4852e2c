"""The library's errors and the checks that raise them.

Every library class or function that refuses a parameter raises `InvalidParameterError` (a
`ValueError`) with one line naming the thing to fix. The library never imports the runner; the
command line maps this error (and its subclass ``ConfigError``) to exit status 2.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

V = TypeVar("V")


class InvalidParameterError(ValueError):
    """A parameter the library cannot use: unknown name, wrong type, value out of range."""


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_short.maxlist = _short.maxtuple = 6


def short(value: Any) -> str:
    """``repr(value)`` cut to a readable length, for error messages (a 100 KB value must not
    be echoed whole)."""
    return _short.repr(value)


def require(condition: bool, message: str) -> None:
    """Raise `InvalidParameterError(message)` unless `condition` holds."""
    if not condition:
        raise InvalidParameterError(message)


def require_positive(name: str, value: float) -> None:
    require(value > 0, f"{name} must be > 0, got {value}")


def require_non_negative(name: str, value: float) -> None:
    require(value >= 0, f"{name} must be >= 0, got {value}")


def require_fraction(name: str, value: float, *, open_right: bool = True) -> None:
    """`value` in [0, 1) (or [0, 1] with ``open_right=False``)."""
    ok = 0 <= value < 1 if open_right else 0 <= value <= 1
    right = ")" if open_right else "]"
    require(ok, f"{name} must be in [0, 1{right}, got {value}")


def require_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = sorted(choices)
    require(value in choices, f"unknown {name} {short(value)}; choose from {', '.join(choices)}")


def lookup(table: Mapping[str, V], name: str, what: str) -> V:
    """``table[name]``, or ``InvalidParameterError("unknown <what> 'name'; choose from a, b")``.

    The one way a name is looked up in a table of choices (activations, losses, rules, ...).

    Parameters
    ----------
    table : mapping of str to anything
    name : str
        The key asked for.
    what : str
        What the table holds, for the message (``activation``, ``loss``, ...).
    """
    try:
        return table[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name such as a list
        choices = ", ".join(sorted(table))
        raise InvalidParameterError(
            f"unknown {what} {short(name)}; choose from {choices}") from None


def closest(name: str, candidates: Iterable[str]) -> str:
    """A ``did you mean`` suffix naming the closest candidates, or the full list."""
    candidates = sorted(candidates)
    near = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if near:
        return f"did you mean {', '.join(near)}?"
    return f"valid: {', '.join(candidates)}"
