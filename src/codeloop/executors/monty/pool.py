"""A few Monty worker processes shared by the sessions of many executors.

A Monty worker serves one checkout at a time, and a checkout is one interpreter session: fresh
globals, fresh heap, the limits it was checked out with. `MontyPool` lends a worker to a session
for the span of one code action (`lend`/`give_back`), at most `workers` at once (default: the
CPU count, at least 2); between actions a session rests in its worker while nobody else needs
one (`rest`/`wake`), and otherwise its state is kept in this host process as a Monty dump (see
`pooled.py`). So 1,000 concurrent sessions need a couple of processes, not
1,000, and a worker never holds more than one session (running or resting). A session too large to
dump cheaply `keep`s its worker: it leaves the count of lent workers, and is a process of its own
until it ends; at most `max_kept` sessions at once (default: `workers`), so the pool never has
more than `workers + max_kept` processes.

The workers are started when the pool opens (the first two at once, the rest when demand needs
them), so a new run does not wait for a process start; each is replaced after `recycle_after`
checkouts. `shared_pool()` is the process-wide pool that executors use unless given their own;
it lives until it is closed or the process ends (workers exit when their parent dies).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable
from typing import Any

from ...errors import ConfigurationError, ExecutorError

__all__ = ["Lease", "MontyPool", "close_shared_pool", "default_workers", "shared_pool"]

_WARM = 2  # workers started with the pool; the rest start on demand


@dataclasses.dataclass(eq=False)  # hashed by identity: the gate keeps resting leases by key
class Lease:
    """A worker lent to a session: its checked-out `session`, until given back."""

    session: Any  # pm.AsyncMontySession
    checkout: Any
    counted: bool = True  # whether it counts against `workers` (False once kept)


class _Gate:
    """A counting semaphore that works across event loops and threads (the pool is process-wide:
    the sync API's loop, `asyncio.run` loops and threads may all use it), with resting places:
    a holder may `rest` (keep its place while idle) until someone needs it, and is then asked
    to leave (its `evict` callback) when a newcomer finds no free place. The callback runs on the
    newcomer's loop: the holder's own loop may be ending in another thread (`asyncio.run`
    returning), where a callback could be dropped with the loop and the newcomer wait forever."""

    def __init__(self, count: int) -> None:
        self.free = count
        self._lock = threading.Lock()
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = (
            collections.deque()
        )
        self._resting: dict[object, Callable[[], None]] = {}

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.free > 0 and not self._waiters:
                self.free -= 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
            resting = self._take_resting()
        if resting is not None:
            resting()  # here, on the asker's loop: see `rest`
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))
                    raise
            self.release()  # granted as it was cancelled: pass the place on
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._grant, waiter)
                    return
                except RuntimeError:  # that loop is closed: the next waiter gets the place
                    continue
            self.free += 1

    def rest(self, key: object, evict: Callable[[], None]) -> bool:
        """Keep `key`'s place while it is idle; False (it must leave now) when others wait."""
        with self._lock:
            if self._waiters:
                return False
            self._resting[key] = evict
            return True

    def wake(self, key: object) -> bool:
        """Take `key`'s place back from rest; False when it was asked to leave meanwhile."""
        with self._lock:
            return self._resting.pop(key, None) is not None

    @property
    def resting(self) -> int:
        return len(self._resting)

    def _take_resting(self) -> Callable[[], None] | None:
        """The longest-resting holder, no longer resting (called under the lock)."""
        if not self._resting:
            return None
        return self._resting.pop(next(iter(self._resting)))

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # cancelled meanwhile
            self.release()
        else:
            waiter.set_result(None)


def default_workers() -> int:
    """The CPU count, at least 2: sandbox code is CPU-bound while it runs, so more workers than
    cores only add memory; 2 keep one long action from holding up every other session."""
    return max(2, os.cpu_count() or 2)


class MontyPool:
    """Monty worker processes lent to sessions one code action at a time (module docstring).

    Usable from any event loop and thread; `close()` stops the workers."""

    def __init__(
        self, workers: int | None = None, *, max_kept: int | None = None, recycle_after: int | None = 1000
    ) -> None:
        self.workers = default_workers() if workers is None else workers
        if self.workers < 1:
            raise ConfigurationError(f"A Monty pool needs at least one worker, not {self.workers}.")
        self.max_kept = self.workers if max_kept is None else max_kept
        if self.max_kept < 0:
            raise ConfigurationError(f"max_kept must be 0 or more, not {self.max_kept}.")
        if recycle_after is not None and recycle_after < 1:
            raise ConfigurationError(f"recycle_after must be at least 1 (or None), not {recycle_after}.")
        self.recycle_after = recycle_after
        self._gate = _Gate(self.workers)
        self._kept = 0
        self._monty: Any = None  # pm.AsyncMonty once opened
        self._state = "new"  # new -> opening -> open -> closed
        self._lock = threading.Lock()
        self.pid = os.getpid()

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    @property
    def failed(self) -> bool:
        """Whether the workers could not be started (the shared pool is then made anew)."""
        return self._state == "failed"

    @property
    def lent(self) -> int:
        """How many workers are lent to sessions now (kept ones not counted)."""
        return self.workers - self._gate.free

    @property
    def kept(self) -> int:
        """How many sessions keep a worker of their own now."""
        return self._kept

    async def open(self) -> None:
        """Start the workers (once; concurrent callers wait for the first)."""
        with self._lock:
            if self._state == "closed":
                raise ExecutorError("This Monty pool is closed.")
            first = self._state == "new"
            if first:
                self._state = "opening"
        if not first:
            while self._state == "opening":  # another loop or task is starting it: a few ms
                await asyncio.sleep(0.001)
            if self._state != "open":
                raise ExecutorError("The Monty pool could not start.")
            return
        await self._start()

    async def _start(self) -> None:
        import pydantic_monty as pm

        monty = pm.AsyncMonty(
            min_processes=min(_WARM, self.workers),
            max_processes=self.workers + self.max_kept,
            max_checkouts_per_worker=self.recycle_after,
        )
        try:
            await monty.__aenter__()
        except BaseException as exc:
            self._state = "failed"
            raise ExecutorError(f"The Monty sandbox could not start: {exc}") from exc
        self._monty, self._state = monty, "open"

    async def lend(self, options: dict[str, Any]) -> Lease:
        """A fresh session (checked out with `options`) on a free worker, waiting while
        `workers` are lent already."""
        if self._state != "open":
            await self.open()
        await self._gate.acquire()
        try:
            checkout = self._monty.checkout(**options)
            return Lease(await checkout.__aenter__(), checkout)
        except BaseException:
            self._gate.release()
            raise

    def keep(self, lease: Lease) -> bool:
        """Let `lease`'s session keep its worker, so it no longer counts as lent; False when
        `max_kept` sessions keep theirs already."""
        with self._lock:
            if not lease.counted:
                return True
            if self._kept >= self.max_kept:
                return False
            lease.counted, self._kept = False, self._kept + 1
        self._gate.release()
        return True

    def rest(self, lease: Lease, evict: Callable[[], None]) -> bool:
        """Let `lease`'s session stay loaded in its worker between actions while nobody else
        needs a worker: `evict` is called when someone does (on that one's loop, maybe in another
        thread), and must then save the session and `give_back` the lease. False when sessions
        wait for a worker now (then the session is saved and its worker given back at once)."""
        return lease.counted and self._gate.rest(lease, evict)

    def wake(self, lease: Lease) -> bool:
        """Take a resting `lease` back for an action; False when its eviction has begun."""
        return self._gate.wake(lease)

    @property
    def resting(self) -> int:
        """How many lent workers hold an idle session that will leave when asked."""
        return self._gate.resting

    async def give_back(self, lease: Lease) -> None:
        """End the lease's session; its worker serves the next one."""
        try:
            with contextlib.suppress(Exception):  # a crashed worker may refuse a clean exit
                await lease.checkout.__aexit__(None, None, None)
        finally:
            with self._lock:
                counted, lease.counted = lease.counted, False
                if not counted:
                    self._kept -= 1
            if counted:
                self._gate.release()

    async def close(self) -> None:
        """Stop the workers. Sessions that still use the pool fail their next action."""
        with self._lock:
            monty, self._monty, self._state = self._monty, None, "closed"
        if monty is not None:
            with contextlib.suppress(Exception):
                await monty.__aexit__(None, None, None)


_shared: MontyPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> MontyPool:
    """The process-wide pool (made on first use, and again after a fork or `close_shared_pool`)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed or _shared.failed or _shared.pid != os.getpid():
            _shared = MontyPool()
        return _shared


async def close_shared_pool() -> None:
    """Stop the process-wide pool's workers; the next pooled session starts a new pool."""
    global _shared
    with _shared_lock:
        pool, _shared = _shared, None
    if pool is not None and pool.pid == os.getpid():
        await pool.close()
