"""Values and exceptions crossing the Monty boundary: only plain data goes in."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from pathlib import PurePath
from typing import Any

__all__ = ["FINAL_SIGNAL", "sandbox_exception", "to_sandbox", "unconvertible"]

FINAL_SIGNAL: dict[str, Any] = {
    "exc_type": "SystemExit",
    "message": "final_answer() was called: this code action is over",
}
"""The answer to a `final_answer()` call: unwinds the snippet past `except Exception`."""

_PLAIN = (
    type(None), bool, int, float, complex, str, bytes, decimal.Decimal,
    datetime.date, datetime.time, datetime.timedelta, PurePath,
)  # fmt: skip
# Exception types Monty recreates by name; others cross as their nearest listed base class.
_MONTY_EXCEPTIONS = frozenset(
    "Exception BaseException ArithmeticError OverflowError ZeroDivisionError LookupError IndexError "
    "KeyError RuntimeError NotImplementedError RecursionError AttributeError NameError "
    "UnboundLocalError ValueError UnicodeDecodeError UnicodeEncodeError ImportError "
    "ModuleNotFoundError OSError FileNotFoundError FileExistsError IsADirectoryError "
    "NotADirectoryError PermissionError AssertionError MemoryError StopIteration SyntaxError "
    "TimeoutError TypeError".split()
)


def to_sandbox(value: Any, source: str | None = None) -> Any:
    """Return `value` as plain data that can enter the sandbox, or raise TypeError."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, bytearray | memoryview):
        value = bytes(value)
    elif callable(getattr(value, "model_dump", None)):
        value = value.model_dump()
    if _is_plain(value):
        return value
    who = f"{source}() returned" if source else "the value is"
    raise TypeError(
        f"{who} a {type(value).__name__} object, which cannot enter the sandbox: only plain data "
        "(str, numbers, bool, None, bytes, lists, tuples, dicts, sets, dates; nested at most 100 deep) can."
    )


def unconvertible(source: str) -> TypeError:
    return TypeError(f"{source} returned a value that cannot enter the sandbox")


def _is_plain(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return all(_is_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_is_plain(k, depth + 1) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def sandbox_exception(exc: Exception, host_errors: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """The exception the sandbox sees for a host function's `exc`, keeping its type name visible.

    A type Monty cannot recreate crosses as its nearest built-in base with the type name in the
    message; `host_errors` maps that message back to (type name, message) for the report."""
    kind = type(exc)
    if kind.__module__ == "builtins" and kind.__name__ in _MONTY_EXCEPTIONS:
        return {"exception": exc}
    base = next(t for t in kind.__mro__ if t.__module__ == "builtins" and t.__name__ in _MONTY_EXCEPTIONS)
    message = f"{kind.__name__}: {exc}"
    host_errors[message] = (kind.__name__, str(exc))
    return {"exc_type": base.__name__, "message": message}
