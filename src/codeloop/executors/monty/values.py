"""Values and exceptions crossing the Monty boundary: only plain data goes in."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from pathlib import PurePath
from typing import Any

from .helper_child import MAX_DEPTH, VISIT_CAP, TooLarge
from .walk import Shape, measure, within_cap

__all__ = [
    "FINAL_SIGNAL",
    "foreign_exception",
    "sandbox_exception",
    "to_sandbox",
    "to_sandbox_async",
    "unconvertible",
]

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


def _prepared(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if callable(getattr(value, "model_dump", None)):
        return value.model_dump()
    return value


def _check_plain(value: Any, shape: Shape, source: str | None) -> Any:
    who = f"{source}() returned" if source else "the value is"
    odd = next((k for k in shape.kinds if not issubclass(k, _PLAIN)), None)
    if odd is None and shape.depth <= MAX_DEPTH:
        return value
    shown = odd.__name__ if odd is not None else f"{type(value).__name__} nested over {MAX_DEPTH} deep"
    raise TypeError(
        f"{who} a {shown} object, which cannot enter the sandbox: only plain data "
        f"(str, numbers, bool, None, bytes, lists, tuples, dicts, sets, dates; nested at most {MAX_DEPTH} "
        "deep) can."
    )


def _too_large(source: str | None) -> TypeError:
    who = f"{source}() returned a value" if source else "the value is"
    return TypeError(
        f"{who} too large to enter the sandbox (over {VISIT_CAP} items, counting each "
        "shared part every time it appears)"
    )


def to_sandbox(value: Any, source: str | None = None) -> Any:
    """Return `value` as plain data that can enter the sandbox, or raise TypeError (also when
    a walk of it would pass `VISIT_CAP` visits; the check stops there)."""
    value = _prepared(value)
    try:
        shape = measure([value])
    except TooLarge:
        raise _too_large(source) from None
    return _check_plain(value, shape, source)


async def to_sandbox_async(value: Any, source: str | None = None) -> Any:
    """`to_sandbox` on the event loop, in steps (see `walk.drive`)."""
    value = _prepared(value)
    try:
        shape = await within_cap([value])
    except TooLarge:
        raise _too_large(source) from None
    return _check_plain(value, shape, source)


def unconvertible(source: str) -> TypeError:
    return TypeError(f"{source} returned a value that cannot enter the sandbox")


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


def foreign_exception(
    kind: str, base: str, message: str, host_errors: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """Like `sandbox_exception`, for an exception described by name (the helper process's):
    `kind` its type's name, `base` its nearest built-in base class's name."""
    if kind in _MONTY_EXCEPTIONS:
        return {"exc_type": kind, "message": message}
    base = base if base in _MONTY_EXCEPTIONS else "Exception"
    shown = f"{kind}: {message}"
    host_errors[shown] = (kind, message)
    return {"exc_type": base, "message": shown}
