"""Drive coroutines and async iterators from synchronous code.

The async API is the only implementation; `run()`, `stream()` and the models' sync methods go
through here. All sync calls share one long-lived event loop in a daemon thread, so objects that
belong to a loop (HTTP clients, sandbox sessions) survive from one sync call to the next, and
sync calls work even when the caller is itself inside a running loop (Jupyter, async handlers).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["iterate_sync", "run_sync"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="codeloop-sync", daemon=True)
            _thread.start()
        return _loop


def _wait(future: Future[T]) -> T:
    try:
        return future.result()
    except BaseException:
        future.cancel()  # e.g. KeyboardInterrupt in the caller: stop the work too
        raise


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on the shared loop and return its result."""
    if threading.current_thread() is _thread:
        # Called from code running on the shared loop itself (a sync callback): waiting on the
        # loop would deadlock, so this call gets a private loop in its own thread.
        return _run_in_fresh_thread(coro)
    return _wait(_submit(coro, _background_loop()))


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item at a time, on the shared loop."""
    loop = _background_loop()
    try:
        while True:
            try:
                item = _wait(_submit(_next(agen), loop))
            except StopAsyncIteration:
                return
            yield item
    finally:
        closer = getattr(agen, "aclose", None)
        if closer is not None:
            _wait(_submit(closer(), loop))


def _submit(coro: Coroutine[Any, Any, T], loop: asyncio.AbstractEventLoop) -> Future[T]:
    """Run `coro` on `loop` in a copy of the caller's context, as if the caller awaited it: the
    context variables it set (the current trace span, say) are seen by the work."""
    return asyncio.run_coroutine_threadsafe(_in_context(coro, contextvars.copy_context()), loop)


async def _in_context(coro: Coroutine[Any, Any, T], context: contextvars.Context) -> T:
    if sys.version_info < (3, 11):  # create_task(context=...) is 3.11+
        return await coro
    return await asyncio.get_running_loop().create_task(coro, context=context)  # cancelled with us


async def _next(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


def _run_in_fresh_thread(coro: Coroutine[Any, Any, T]) -> T:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="codeloop-sync-nested")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
