"""Output capture inside the worker: the snippet's `print` goes to a capped in-memory buffer.

Standard library only: this module runs inside the worker (see `worker.py`).
"""

from __future__ import annotations

import io
import threading

TYPE_CHECKING = False  # typing is not imported: the worker starts as fast as it can
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Capture", "OutputLimitExceeded"]


class OutputLimitExceeded(BaseException):
    """The snippet printed more than the worker keeps."""


class Capture(io.TextIOBase):
    """sys.stdout / sys.stderr during a run: keeps up to `cap` characters, then refuses."""

    def __init__(self, cap: int, stopped: Callable[[], bool]) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._cap = cap
        self._stopped = stopped  # true once final_answer() latched: later output is dropped
        self.overflowed = False
        self._lock = threading.Lock()

    encoding = "utf-8"
    errors = "strict"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            if self._stopped():
                return len(text)
            room = self._cap - self._size
            if self.overflowed or len(text) > room:
                self._parts.append(text[: max(room, 0)])
                self._size = self._cap
                self.overflowed = True
                raise OutputLimitExceeded(f"the code printed more than {self._cap} characters")
            self._parts.append(text)
            self._size += len(text)
        return len(text)

    def text(self) -> str:
        with self._lock:
            joined = "".join(self._parts)
            self._parts = [joined]
            return joined
