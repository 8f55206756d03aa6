"""The worker's end of the protocol channel: JSON lines on private duplicates of stdin/stdout.

Standard library only: this module runs inside the worker (see `worker.py`).
"""

from __future__ import annotations

import json
import os
import threading

TYPE_CHECKING = False  # typing is not imported: the worker starts as fast as it can
if TYPE_CHECKING:
    from typing import IO, Any

__all__ = ["MAX_LINE_BYTES", "Channel"]

MAX_LINE_BYTES = 32 * 2**20  # a protocol line the worker sends is never longer than this


class Channel:
    """The JSON-lines channel on private duplicates of the original stdin/stdout."""

    def __init__(self) -> None:
        self._in: IO[bytes] = open(os.dup(0), "rb")
        self._out: IO[bytes] = open(os.dup(1), "wb")
        read_end, write_end = os.pipe()
        os.dup2(read_end, 0)  # fd 0 now reads as empty...
        os.close(read_end)
        os.close(write_end)
        os.dup2(2, 1)  # ...and C-level writes to fd 1 land on stderr, never on the channel
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), allow_nan=True).encode("ascii")
        if len(line) > MAX_LINE_BYTES:
            raise OverflowError(f"message of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
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
