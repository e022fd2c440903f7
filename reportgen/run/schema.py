"""A JSON document from outside, read value by value: each one's type and range checked
before anything is computed from it.

A value that is not what reportgen writes raises `Invalid`, whose message names where it is
("overall.accuracy: expected a number in [0, 1], found 'x'"); each reader turns that into one
DataError line naming its file. JSON's null reads as NaN where reportgen writes NaN as null.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# The largest count a run file holds: images of a test set (MNIST-shaped sets stay far below).
MAX_COUNT = 10_000_000
TOLERANCE = 1e-9  # a proportion computed in floating point may pass 1 by a rounding error

_shown = reprlib.Repr()
_shown.maxstring = 40
_shown.maxother = 40


class Invalid(ValueError):
    """A JSON value that is not what reportgen writes; the message says where and why."""


def _found(value: Any) -> str:
    return _shown.repr(value)


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"{where or 'the document'}: expected an object, found {_found(value)}")
    return value


def get(body: Any, key: str, where: str = "") -> Any:
    """body[key], where body must be an object and key present."""
    body = obj(body, where)
    if key not in body:
        raise Invalid(f"{where + ': ' if where else ''}no '{key}'")
    return body[key]


def number(value: Any, where: str, low: float = -math.inf, high: float = math.inf, null: bool = False) -> float:
    """A JSON number in [low, high] (with TOLERANCE); with `null`, JSON's null as NaN."""
    if value is None and null:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"{where}: expected a number, found {_found(value)}")
    # An int is compared before float() so that 10**400 is refused rather than overflowing.
    if not (low - TOLERANCE <= value <= high + TOLERANCE) or (isinstance(value, float) and not math.isfinite(value)):
        raise Invalid(f"{where}: expected a number in [{low:g}, {high:g}], found {_found(value)}")
    return float(value)


def proportion(value: Any, where: str, null: bool = False) -> float:
    return number(value, where, 0.0, 1.0, null)


def integer(value: Any, where: str, low: int = 0, high: int = MAX_COUNT) -> int:
    """A JSON integer in [low, high]; 3.0 is one, 3.5 and true are not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{where}: expected an integer in [{low:,}, {high:,}], found {_found(value)}")
    return value


def text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{where}: expected a string, found {_found(value)}")
    return value


def optional_text(value: Any, where: str) -> str | None:
    return None if value is None else text(value, where)


def flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{where}: expected true or false, found {_found(value)}")
    return value


def one_of(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise Invalid(f"{where}: expected one of {', '.join(choices)}, found {_found(value)}")
    return value


def array(value: Any, where: str, length: int | None = None, most: int = MAX_COUNT) -> list[Any]:
    """A JSON array, of exactly `length` items if given, else at most `most`."""
    if not isinstance(value, list):
        raise Invalid(f"{where}: expected an array, found {_found(value)}")
    if length is not None and len(value) != length:
        raise Invalid(f"{where}: expected {length} items, found {len(value):,}")
    if len(value) > most:
        raise Invalid(f"{where}: expected at most {most:,} items, found {len(value):,}")
    return value


def each(value: Any, where: str, read: Callable[[Any, str], T], length: int | None = None) -> list[T]:
    """Every item of a JSON array read by `read(item, where)`."""
    return [read(item, _join(where, i)) for i, item in enumerate(array(value, where, length))]


def values(value: Any, where: str, read: Callable[[Any, str], T]) -> dict[str, T]:
    """Every value of a JSON object read by `read(value, where)`."""
    return {key: read(item, _join(where, key)) for key, item in obj(value, where).items()}


def field(body: Any, key: str, where: str, read: Callable[[Any, str], T]) -> T:
    """body[key] read by `read`."""
    return read(get(body, key, where), _join(where, key))


def optional(body: Any, key: str, where: str, read: Callable[[Any, str], T], default: T) -> T:
    """body[key] read by `read`, or `default` when body has no such key (a field a later
    version added)."""
    return read(obj(body, where)[key], _join(where, key)) if key in obj(body, where) else default
