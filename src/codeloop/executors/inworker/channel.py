"""The worker's end of the protocol channel: JSON lines on private duplicates of stdin/stdout.

Standard library only: this module runs inside the worker (see `worker.py`).
"""

from __future__ import annotations

import json
import os
import threading

TYPE_CHECKING = False  # typing is not imported: the worker starts as fast as it can
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

__all__ = ["MAX_LINE_BYTES", "MAX_LINE_STRUCTURE", "Channel", "structure_count"]

MAX_LINE_BYTES = 8 * 2**20
"""No protocol line is longer (either way); the host refuses longer lines from the worker. 8 MiB
decodes in ~10 ms and holds the largest output the worker keeps (1M characters, \\u-escaped)."""

MAX_LINE_STRUCTURE = 4 * 100_000 + 4_096
"""Most `[`, `{` and `,` bytes a worker line has: a value within `VALUE_NODE_BUDGET` (100k nodes)
needs at most 4 per node (a tagged container is `{"$codeloop":"tuple","items":[...]}`), and the
worker escapes these bytes inside strings when a line would exceed it. The host counts them on
the raw line before decoding it: a line over this is not the worker's, and never decoded."""

_STRUCTURE = (b"[", b"{", b",")
_ESCAPES = {ord("["): "\\u005b", ord("{"): "\\u007b", ord(","): "\\u002c"}


def structure_count(line: bytes) -> int:
    """`[`, `{` and `,` bytes in a raw line: a cheap upper bound on its JSON nodes (+1)."""
    return sum(line.count(byte) for byte in _STRUCTURE)


class Channel:
    """The JSON-lines channel on private, non-inheritable duplicates of the original stdin/stdout.

    The first message from the host is `{"op": "hello", "secret": s}`; every later message the
    worker sends carries `"s"` (that secret) and `"re"` (the id of the request being answered),
    which the host checks. Code in this process can in principle dig both out of memory: they
    stop blind forgery (writing to a guessed fd), not a determined snippet forging its own result.
    """

    def __init__(self) -> None:
        self._in: IO[bytes] = open(_private_dup(0), "rb")
        self._out: IO[bytes] = open(_private_dup(1), "wb")
        read_end, write_end = os.pipe()
        os.dup2(read_end, 0)  # fd 0 now reads as empty...
        os.close(read_end)
        os.close(write_end)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)  # ...and C-level writes to fd 1 are discarded, never on the channel
        os.close(null)
        self._lock = threading.Lock()
        self.request_id = ""
        self._seal: Callable[[dict[str, Any]], dict[str, Any]] = dict

    def open_session(self) -> None:
        """Read the host's `hello` and keep its secret (only inside a closure)."""
        hello = self.receive()
        secret = str(hello.pop("secret", "")) if hello.get("op") == "hello" else ""
        if not secret:
            raise ValueError("the host did not open the session with a secret")
        self._seal = lambda message: {"s": secret, **message}

    def send(self, message: dict[str, Any]) -> None:
        sealed = self._seal({"re": self.request_id, **message})
        line = json.dumps(sealed, separators=(",", ":"), allow_nan=True).encode("ascii")
        if structure_count(line) > MAX_LINE_STRUCTURE:
            line = _escape_in_strings(line)
        if len(line) > MAX_LINE_BYTES:
            raise OverflowError(f"message of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
        if structure_count(line) > MAX_LINE_STRUCTURE:
            raise OverflowError("the message has too many items")
        with self._lock:
            self._out.write(line + b"\n")
            self._out.flush()

    def receive(self) -> dict[str, Any]:
        line = self._in.readline()
        if not line:
            os._exit(0)  # the host is gone: nothing left to do
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("a protocol message must be a JSON object")
        return message


def _private_dup(fd: int) -> int:
    copy = os.dup(fd)  # PEP 446: not inherited by children (and seccomp forbids children anyway)
    os.set_inheritable(copy, False)
    return copy


def _escape_in_strings(line: bytes) -> bytes:
    """`line` with `[`, `{` and `,` inside JSON strings written as \\u escapes (same JSON value)."""
    import re

    def escape(match: Any) -> bytes:
        text: str = match.group().decode("ascii")
        return text.translate(_ESCAPES).encode("ascii")

    escaped: bytes = re.sub(rb'"[^"\\]*(?:\\.[^"\\]*)*"', escape, line)
    return escaped
