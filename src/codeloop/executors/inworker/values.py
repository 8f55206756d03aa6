"""Value encoding for the worker protocol: plain data crosses as JSON, the rest as tagged objects.

Standard library only: this module runs inside the worker (see `worker.py`).
"""

from __future__ import annotations

import binascii
import sys

TYPE_CHECKING = False  # typing is not imported: the worker starts as fast as it can
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "TAG", "VALUE_NODE_BUDGET", "ReprValue", "ValueTooLarge", "decode_tagged", "decode_value", "encode_value",
]  # fmt: skip

TAG = "$codeloop"
_MAX_DEPTH = 100
_MAX_REPR = 100_000
_DATE_KINDS = ("datetime", "date", "time")  # datetime first: a datetime is also a date


class ReprValue(str):
    """A value that could not cross as data: its `repr()` text. `.type_name` is its type's name."""

    type_name: str = ""

    def __new__(cls, text: str, type_name: str = "") -> ReprValue:
        value = super().__new__(cls, text)
        value.type_name = type_name
        return value

    def __repr__(self) -> str:
        return str(self)


VALUE_NODE_BUDGET = 100_000
"""Most containers plus scalars one value leaving the worker may have (`[[]] * 5_000_000` is 15 MB of
JSON and ~700 MB once decoded). 100k covers a 10,000-row, 9-column table as records, and keeps the
host's decoding of any one message to ~10 ms (measured: 200k empty lists decode in 18 ms)."""


class ValueTooLarge(ValueError):
    """A value leaving the worker has more nodes than its budget."""


def encode_value(value: Any, *, strict: bool = True, max_nodes: int | None = None) -> Any:
    """`value` as JSON-ready data (see the module docstring). With `strict`, a value that has no
    data form raises TypeError; otherwise it crosses as a tagged repr. With `max_nodes`, a value
    with more containers and scalars than that raises `ValueTooLarge` (as soon as it is seen)."""
    budget = [max_nodes if max_nodes is not None else -1]
    return _encode(value, strict, 0, budget)


def _encode(value: Any, strict: bool, depth: int, budget: list[int]) -> Any:
    if budget[0] >= 0:
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueTooLarge("the value is too large to return: more than "
                                f"{VALUE_NODE_BUDGET:,} items; print a summary instead")  # fmt: skip
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth > _MAX_DEPTH:
        return _fail(value, strict, "it is nested more than 100 levels deep")
    inner = depth + 1
    if isinstance(value, list):
        return [_encode(v, strict, inner, budget) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and TAG not in value:
            return {k: _encode(v, strict, inner, budget) for k, v in value.items()}
        items = [
            [_encode(k, strict, inner, budget), _encode(v, strict, inner, budget)] for k, v in value.items()
        ]
        return {TAG: "dict", "items": items}
    if isinstance(value, (tuple, set, frozenset)):
        kind = "tuple" if isinstance(value, tuple) else "frozenset" if isinstance(value, frozenset) else "set"
        return {TAG: kind, "items": [_encode(v, strict, inner, budget) for v in value]}
    tagged = _encode_scalar(value)
    if tagged is not None:
        return tagged
    try:
        plain = _as_plain(value)
    except Exception as exc:
        return _fail(value, strict, f"converting it failed: {type(exc).__name__}: {exc}")
    if plain is not value:
        return _encode(plain, strict, inner, budget)
    return _fail(value, strict, "it is not plain data")


def _encode_scalar(value: Any) -> dict[str, Any] | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {TAG: "bytes", "base64": binascii.b2a_base64(bytes(value), newline=False).decode("ascii")}
    datetime = sys.modules.get("datetime")  # a value cannot be a date unless the module is loaded
    if datetime is not None:
        kind = next((k for k in _DATE_KINDS if isinstance(value, getattr(datetime, k))), None)
        if kind is not None:
            return {TAG: kind, "iso": value.isoformat()}
        if isinstance(value, datetime.timedelta):
            return {TAG: "timedelta", "days": value.days, "seconds": value.seconds, "us": value.microseconds}
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        return {TAG: "decimal", "text": str(value)}
    return None


def _as_plain(value: Any) -> Any:
    """Dataclasses and pydantic models as dicts, numpy scalars as Python numbers; else `value`."""
    kind = type(value)
    if hasattr(kind, "__dataclass_fields__") and not isinstance(value, type):
        import dataclasses

        return dataclasses.asdict(value)
    if kind.__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump()
    return value


def _fail(value: Any, strict: bool, why: str) -> Any:
    name = type(value).__name__
    if strict:
        raise TypeError(
            f"a {name} object cannot cross into or out of the sandbox ({why}): only plain data "
            "(str, numbers, bool, None, lists, tuples, dicts, sets, bytes, dates, Decimal) can"
        )
    return {TAG: "repr", "type": name, "repr": _safe_repr(value)}


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the protocol
        text = f"<{type(value).__name__} object (repr failed: {type(exc).__name__})>"
    if len(text) > _MAX_REPR:
        text = text[:_MAX_REPR] + f"... [{len(text) - _MAX_REPR} more chars]"
    return text


def decode_value(data: Any) -> Any:
    """The inverse of `encode_value`; tagged reprs become `ReprValue`."""
    if isinstance(data, list):
        return [decode_value(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: decode_value(v) for k, v in data.items()}
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown value tag {tag!r}")
    return decoder(data)


def decode_tagged(data: dict[str, Any]) -> Any:
    """One JSON object whose contents are already decoded: use as `json.loads(object_hook=...)`,
    so that a message is materialised once. Raises on a malformed tagged object."""
    tag = data.get(TAG)
    if tag is None:
        return data
    if tag in _FLAT:
        return _FLAT[tag](data["items"])
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown value tag {tag!r}")
    return decoder(data)


def _items(data: dict[str, Any]) -> list[Any]:
    return [decode_value(v) for v in data["items"]]


def _module(name: str) -> Any:
    __import__(name)
    return sys.modules[name]


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tuple": lambda d: tuple(_items(d)),
    "set": lambda d: set(_items(d)),
    "frozenset": lambda d: frozenset(_items(d)),
    "dict": lambda d: {decode_value(k): decode_value(v) for k, v in d["items"]},
    "bytes": lambda d: binascii.a2b_base64(d["base64"]),
    "datetime": lambda d: _module("datetime").datetime.fromisoformat(d["iso"]),
    "date": lambda d: _module("datetime").date.fromisoformat(d["iso"]),
    "time": lambda d: _module("datetime").time.fromisoformat(d["iso"]),
    "timedelta": lambda d: _module("datetime").timedelta(
        days=d["days"], seconds=d["seconds"], microseconds=d["us"]
    ),
    "decimal": lambda d: _module("decimal").Decimal(d["text"]),
    "repr": lambda d: ReprValue(str(d["repr"]), str(d.get("type", ""))),
}

_FLAT: dict[str, Callable[[list[Any]], Any]] = {
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "dict": lambda items: {k: v for k, v in items},
}
