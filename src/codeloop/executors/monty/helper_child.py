"""Bounded walks and the value codec for host work, and the helper process's program.

Standard library only. The host imports the walks and the codec from here; the helper process
runs this file as its program (`python -I -S helper_child.py MEMORY_BYTES REPLY_CAP`), reads
length-prefixed requests on stdin and answers on stdout.

The encoder is iterative and counts each visit: a sublist shared by many parents is counted
each time it is reached, so a value that is small in the sandbox but exponential as a tree
(`x = [x, x]` twenty times) is refused after `cap` visits instead of being expanded. It is a
step generator: it yields every `CHUNK` visits, so the host can drive it on its event loop and
let other tasks run between chunks, and the helper drives it at once (`run_steps`).

The codec is JSON with tags for what JSON lacks: `{"t": [...]}` tuple, `{"s": [...]}` set,
`{"f": [...]}` frozenset, `{"m": [k1, v1, ...]}` dict, `{"b": "base64"}` bytes, `{"d": "1.5"}`
Decimal, `{"q": [n, d]}` Fraction, `{"i": "-0x1f"}` int beyond 64 bits. Every JSON object is a
tag, so decoding needs no guessing. Nothing is ever unpickled.
"""

from __future__ import annotations

import base64
import decimal
import fractions
import json
import sys

TYPE_CHECKING = False  # typing is not imported: the helper starts as fast as it can
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = [
    "CHUNK",
    "MAX_DEPTH",
    "VISIT_CAP",
    "TooLarge",
    "decode",
    "decode_data",
    "encode_steps",
    "encode_value",
    "run_steps",
]

VISIT_CAP = 1_000_000
"""Visits a walk of one sandbox value may make (each shared part counted each time)."""
MAX_DEPTH = 100
CHUNK = 2_000
_SMALL_INT = 2**63
_JSON_SCALARS = frozenset({int, float, bool, type(None)})


class TooLarge(ValueError):
    """A walk reached its cap of visits (or of characters) before it was done."""

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"the value is too large (over {cap} items, counting each shared part every time it appears)"
        )
        self.cap = cap


def _children(value: Any) -> list[Any] | tuple[Any, ...] | None:
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, dict):
        return [x for item in value.items() for x in item]
    return None


def run_steps(steps: Iterator[Any]) -> None:
    """Drive a step generator to its end at once."""
    for _ in steps:
        pass


# -- encoding ---------------------------------------------------------------------------------


def _scalar(value: Any) -> str | None:
    """The JSON text of a leaf, or None if `value` is not one."""
    kind = type(value)
    if value is None or kind is bool:
        return "null" if value is None else "true" if value else "false"
    if kind is int:
        return str(value) if -_SMALL_INT < value < _SMALL_INT else '{"i":"' + hex(value) + '"}'
    if kind is float:
        return json.dumps(value)  # NaN and Infinity included
    if kind is str:
        return json.dumps(value)
    if kind is bytes:
        return '{"b":"' + base64.b64encode(value).decode("ascii") + '"}'
    if kind is decimal.Decimal:
        return '{"d":"' + str(value) + '"}'
    if kind is fractions.Fraction:
        return f'{{"q":[{_scalar(value.numerator)},{_scalar(value.denominator)}]}}'
    return None


_OPEN: dict[type, str] = {list: "[", tuple: '{"t":[', set: '{"s":[', frozenset: '{"f":[', dict: '{"m":['}


class _Text(str):
    """Literal JSON text waiting on the encoder's stack (a separator or a closing bracket)."""


def _flat(value: list[Any]) -> str | None:
    """The JSON text of a list of small numbers, bools and None, in one C call; else None."""
    if not set(map(type, value)) <= _JSON_SCALARS:
        return None
    try:
        return json.dumps(value)
    except ValueError:  # an int too long for str()
        return None


def encode_steps(value: Any, out: list[str], cap: int = VISIT_CAP) -> Iterator[None]:
    """Append the JSON text of `value` to `out`, yielding every `CHUNK` visits. TooLarge past
    `cap` visits (characters of str/bytes included); TypeError for a value the codec lacks or
    one nested deeper than MAX_DEPTH."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    spent = visits = 0
    while stack:
        item, depth = stack.pop()
        if type(item) is _Text:
            out.append(item)
            continue
        spent += 1 + (len(item) if isinstance(item, str | bytes) else 0)
        if spent > cap:
            raise TooLarge(cap)
        visits += 1
        if visits % CHUNK == 0:
            yield
        spent += _encode_one(item, depth, stack, out)
        if spent > cap:
            raise TooLarge(cap)


def _encode_one(item: Any, depth: int, stack: list[tuple[Any, int]], out: list[str]) -> int:
    """Encode a leaf into `out`, or open a container and stack its parts; the visits it cost."""
    text = _scalar(item)
    if text is not None:
        out.append(text)
        return len(text) // 8 if type(item) in (int, decimal.Decimal) else 0
    opening = _OPEN.get(type(item))
    if opening is None:
        raise TypeError(f"a {type(item).__name__} object cannot be passed here: only plain data")
    if depth >= MAX_DEPTH:
        raise TypeError(f"the value is nested more than {MAX_DEPTH} levels deep")
    flat = _flat(item) if type(item) is list and len(item) > 8 else None
    if flat is not None:
        out.append(flat)
        return len(item) + len(flat) // 8
    parts = _children(item) or []
    out.append(opening)
    stack.append((_Text("]" if type(item) is list else "]}"), depth))
    for index in range(len(parts) - 1, -1, -1):
        stack.append((parts[index], depth + 1))
        if index:
            stack.append((_Text(","), depth))
    return 0


def encode_value(value: Any, cap: int = VISIT_CAP) -> str:
    """The JSON text of `value` (see `encode_steps`), at once."""
    out: list[str] = []
    run_steps(encode_steps(value, out, cap))
    return "".join(out)


# -- decoding ---------------------------------------------------------------------------------


def _decode_tag(tag: dict[str, Any], depth: int) -> Any:
    if len(tag) != 1 or depth > MAX_DEPTH + 2:
        raise ValueError("malformed value")
    key, body = next(iter(tag.items()))
    if key == "i" and isinstance(body, str):
        return int(body, 16)
    if key == "b" and isinstance(body, str):
        return base64.b64decode(body, validate=True)
    if key == "d" and isinstance(body, str):
        return decimal.Decimal(body)
    if key == "q" and isinstance(body, list) and len(body) == 2:
        return fractions.Fraction(_decode(body[0], depth + 1), _decode(body[1], depth + 1))
    if not isinstance(body, list):
        raise ValueError("malformed value")
    items = [_decode(v, depth + 1) for v in body]
    if key == "m" and len(items) % 2 == 0:
        return dict(zip(items[::2], items[1::2], strict=True))
    containers = {"t": tuple, "s": set, "f": frozenset}
    if key not in containers:
        raise ValueError("malformed value")
    return containers[key](items)


def _decode(data: Any, depth: int) -> Any:
    if isinstance(data, list):
        if set(map(type, data)) <= _JSON_SCALARS | {str}:
            return data
        return [_decode(v, depth + 1) for v in data]
    if isinstance(data, dict):
        return _decode_tag(data, depth)
    return data


def decode_data(data: Any) -> Any:
    """The value that parsed JSON `data` encodes (see the module docstring); ValueError if
    malformed. Work is linear in the data's size (JSON has no shared parts)."""
    try:
        return _decode(data, 0)
    except (RecursionError, TypeError, KeyError, ArithmeticError) as exc:
        raise ValueError(f"malformed value: {type(exc).__name__}") from None


def decode(text: str | bytes) -> Any:
    """The value of the JSON text `text` (see `decode_data`)."""
    try:
        return decode_data(json.loads(text))
    except RecursionError:
        raise ValueError("malformed value: nested too deep") from None


# -- the helper process -------------------------------------------------------------------------

_MODULES = frozenset({"statistics", "textwrap", "stat", "string"})


def _function(name: str) -> Any:
    module, _, attr = name.partition(".")
    if module not in _MODULES or not attr.isidentifier() or attr.startswith("_"):
        raise NameError(f"name '{name}' is not available in the host helper")
    function = getattr(__import__(module), attr, None)
    if not callable(function):
        raise NameError(f"name '{name}' is not available in the host helper")
    return function


def _error(exc: BaseException) -> dict[str, Any]:
    base = next(t for t in type(exc).__mro__ if t.__module__ == "builtins")
    return {"e": [type(exc).__name__, base.__name__, str(exc)[:2000]]}


def _handle(request: bytes, reply_cap: int) -> str:
    """Run one request `[name, cpu_s, args, kwargs]`; the reply as JSON text."""
    import resource

    try:
        name, cpu_s, args, kwargs = decode(request)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime + float(cpu_s)) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
        result = _function(str(name))(*args, **kwargs)
        text = '{"ok":' + encode_value(result) + "}"
    except MemoryError:
        return '{"limit":"memory_bytes"}'
    except TooLarge:
        return '{"limit":"too_large"}'
    except Exception as exc:
        try:
            return json.dumps(_error(exc))
        except Exception:
            return json.dumps({"e": [type(exc).__name__, "Exception", "(no message)"]})
    return text if len(text) <= reply_cap else '{"limit":"too_large"}'


def _limit_memory(memory_bytes: int) -> None:
    """Cap the address space at what this process maps now plus `memory_bytes`; no core files."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:
        return
    resource.setrlimit(resource.RLIMIT_AS, (mapped + memory_bytes, mapped + memory_bytes))


def serve(memory_bytes: int, reply_cap: int) -> None:
    """Answer length-prefixed requests on stdin until it closes."""
    import stat
    import statistics
    import string
    import textwrap

    del stat, statistics, string, textwrap  # imported before the memory cap is set
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    _limit_memory(memory_bytes)
    while True:
        header = source.read(4)
        if len(header) < 4:
            return
        request = source.read(int.from_bytes(header, "big"))
        reply = _handle(request, reply_cap).encode("utf-8")
        sink.write(len(reply).to_bytes(4, "big") + reply)
        sink.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
