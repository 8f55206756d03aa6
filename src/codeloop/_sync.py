"""Drive coroutines and async iterators from synchronous code.

The async API is the only implementation; `run()`, `stream()` and the models' sync methods go
through here. Inside a running event loop (Jupyter, an async web handler) the work runs on a
private loop in a helper thread, so sync calls work everywhere.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["iterate_sync", "run_sync"]

T = TypeVar("T")


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion and return its result."""
    if not _in_running_loop():
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="codeloop-sync")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item at a time, on a private loop."""
    loop = asyncio.new_event_loop()
    runner = _ThreadRunner(loop) if _in_running_loop() else None
    try:
        while True:
            step = agen.__anext__()
            try:
                item = runner.run(step) if runner else loop.run_until_complete(step)
            except StopAsyncIteration:
                return
            yield item
    finally:
        closer = getattr(agen, "aclose", None)
        if closer is not None:
            if runner:
                runner.run(closer())
            else:
                loop.run_until_complete(closer())
        if runner:
            runner.stop()
        loop.run_until_complete(loop.shutdown_asyncgens()) if not runner else None
        loop.close()


class _ThreadRunner:
    """Runs a private event loop in a helper thread for callers already inside a loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread = threading.Thread(target=loop.run_forever, name="codeloop-stream", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
