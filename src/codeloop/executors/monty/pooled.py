"""A Monty session that borrows a pooled worker for each code action and keeps its state here.

An action checks out a fresh session on any free worker of the `MontyPool`, loads the session's
dump (which carries its own limits) and runs the snippet. Then the session *rests* in that
worker, still loaded, while no other session needs a worker: its next action runs at once, with
no dump and no load. When another session needs a worker and none is free, the pool asks the
longest-resting session to leave: it is dumped (bytes held by this host process, no worker holds
it) and the worker goes to the newcomer; and a session ends its action with a dump straight away
when others already wait. Isolation between sessions is the interpreter's: a checkout starts from
an empty heap, and the only state it ever holds is the one session it loaded.

While a snippet waits on the host (a tool, a managed agent, a host-module function) for longer
than `PARK_AFTER_S`, the suspended snippet is dumped too and the worker goes back to the pool,
so sessions waiting on slow tools or on their own sub-agents never hold workers that others
need (with a handful of workers, holding them would deadlock a team of agents). It is loaded
again, on whichever worker is free, when the host has the answer.

A session that grows large keeps its worker instead (`MontyPool.keep`): dumping a heap costs
time in proportion to its size, and inside the worker it needs room of its own that Monty counts
against the session's `max_memory` (past about a quarter of the limit, the dump kills the
worker). So when the session's heap may pass `keep_above` (an eighth of `memory_bytes`, at most
8 MiB; estimated from its last dump and, on Linux, the worker's RSS growth since), the session stays in that
worker, a process of its own, from then on. The losses this leaves: a session that grows from
under `keep_above` to past a quarter of its limit within one action while its estimate lags, or
that grows so while the pool keeps `max_kept` sessions already, and then waits on a slow host
call or ends the action; its state is lost (`state_lost`).

What a crash takes down: the action in flight on that worker, or the session resting in it.
Every other session's state, whatever worker served it last, is here in the host. The session
that was in the worker gets a clear failure at its next action and a fresh session (`state_lost`),
as with a worker of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from ...errors import ExecutorError
from ..base import ExecutorLimits
from .failures import Inputs
from .pool import Lease, MontyPool, shared_pool
from .sandbox import bind_variables, checkout_options, define_prelude

__all__ = ["PARK_AFTER_S", "PooledSandbox"]

T = TypeVar("T")

PARK_AFTER_S = 0.01
"""How long a snippet may wait on the host before its worker is handed back (parking costs a
dump and a load, about a millisecond for a small session)."""
_KEEP_CAP = 8 * 2**20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class PooledSandbox:
    """One Monty session served by a `MontyPool`'s workers, one action at a time (see above)."""

    def __init__(
        self, limits: ExecutorLimits, host_modules: Mapping[str, Any], pool: MontyPool | None
    ) -> None:
        self.limits, self.host_modules = limits, host_modules
        self.keep_above = min(limits.memory_bytes // 8, _KEEP_CAP)
        self._options: dict[str, Any] | None = None  # made at the first action (imports pydantic_monty)
        self._given = pool
        self.pool: MontyPool | None = None
        self.inputs = Inputs()
        self.session: Any = None  # the checked-out pm.AsyncMontySession, inside an action
        self.worker_pid: int | None = None  # the worker serving the current action (diagnostics)
        self.needs_restart = False
        self._state: bytes | None = None  # the session's dump between actions; None: fresh
        self._lease: Lease | None = None
        # while resting: done once an eviction has ended (thread-safe: the eviction runs on the
        # loop of the session that needed the worker, maybe in another thread)
        self._left: Future[None] | None = None
        self._leaving: asyncio.Future[None] | None = None
        self._kept = False  # the session keeps its worker (it grew large)
        self._rss_loaded = 0  # the worker's RSS once this session was loaded into it
        self._rss = _Rss()
        self._open = False
        self._lost = False

    @property
    def started(self) -> bool:
        return self.pool is not None

    @property
    def ready(self) -> bool:
        return self._open and not self.needs_restart

    @property
    def lost(self) -> bool:
        return self._lost or (self._kept and (self.session is None or self.session.worker_pid is None))

    @property
    def kept(self) -> bool:
        """Whether the session has a worker of its own (it grew past `keep_above`)."""
        return self._kept

    async def open(self, variables: Mapping[str, Any]) -> None:
        """A fresh session (nothing runs until the first action) with `variables` bound."""
        if self.pool is None:
            self.pool = self._given or shared_pool()
            await self.pool.open()
        await self._give_back()
        self._state, self.inputs = None, Inputs()
        self._open, self.needs_restart, self._lost = True, False, False
        if variables:
            await self.bind(variables)

    async def bind(self, values: Mapping[str, Any]) -> None:
        if not self._open:
            raise ExecutorError("MontyExecutor.start() must be called before send_variables().")
        async with self.action():
            await bind_variables(self.session, self.inputs, values)

    async def load_prelude(self) -> None:
        await define_prelude(self.session, self.inputs)

    @contextlib.asynccontextmanager
    async def action(self) -> AsyncIterator[None]:
        """Borrow a worker with this session loaded; on the way out, keep the session's state
        (unless the action ended in a way that leaves it undefined) and hand the worker back."""
        self._lost = False
        if not self._kept:
            await self._acquire()
        try:
            yield
        except BaseException as exc:
            # after an error the session is dumped, not rested: a dump that fails shows its state is gone
            await asyncio.shield(self._release(keep=_state_survives(exc), rest=False))
            raise
        await self._release(keep=True)

    async def wait(self, snap: Any, output: Any, work: Awaitable[T]) -> tuple[Any, T]:
        """Wait for host-side `work` while the snippet is suspended at `snap`. Past
        `PARK_AFTER_S` the suspended snippet is dumped and the worker handed back until the work
        is done (a large session keeps its worker instead). The snapshot to resume (the same, or
        its reloaded twin), and the work's result."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=PARK_AFTER_S)
            if done or self._stays():
                return snap, await task
            parked = snap.dump()  # on the loop: under `keep_above` (8 MiB at most) it takes ~20 ms at worst
            await self._give_back()
            result = await task
        except BaseException:
            task.cancel()
            raise
        await self._acquire(load=False)
        return await self.session.load_snapshot(parked, print_callback=output), result

    async def close_session(self) -> None:
        """Forget the session's state; its worker, if it holds one, goes back."""
        await self._give_back()
        self._state, self._open = None, False

    async def close(self) -> None:
        """End the session. The pool and its workers stay, for other sessions."""
        await self.close_session()

    # -- the worker ------------------------------------------------------------------------------

    async def _acquire(self, *, load: bool = True) -> None:
        """Check out a fresh session on a free worker and, with `load`, load this one's state
        (unless the session is still resting, loaded, in the worker of its last action)."""
        if await self._wake():
            return
        assert self.pool is not None and self._lease is None
        if self._options is None:
            self._options = checkout_options(self.limits, self.host_modules)
        self._lease = await self.pool.lend(self._options)
        self.session, self.worker_pid = self._lease.session, self._lease.session.worker_pid
        try:
            if self._state is not None and load:
                await self.session.load_session(self._state)
        except BaseException:
            await asyncio.shield(self._release(keep=False))  # a worker that cannot load it is gone
            raise
        self._rss_loaded = self._rss(self.worker_pid)

    async def _release(self, *, keep: bool, rest: bool = True) -> None:
        """End the action: with `keep`, save the session (it stays in its worker: grown large,
        or resting while no one else needs it; otherwise a dump) and give the worker back; without
        `keep` the state is lost."""
        if self._lease is None:
            return
        if not keep:
            self._state, self._lost, self.needs_restart = None, True, True
            await self._give_back()
        elif not self._stays() and not (rest and self._rest()):
            await self._save_and_give_back()

    async def _save_and_give_back(self) -> None:
        saved = False
        with contextlib.suppress(Exception):
            self._state, saved = await self.session.dump(), True
        if not saved:
            self._state, self._lost, self.needs_restart = None, True, True
        await self._hand_back()

    def _stays(self) -> bool:
        """Whether the session keeps its worker: it did already, or its heap may now be past
        `keep_above` (its last dump plus the worker's RSS growth since it was loaded)."""
        if not self._kept and self._lease is not None and self.pool is not None:
            grown = max(0, self._rss(self.worker_pid) - self._rss_loaded)
            if len(self._state or b"") + grown > self.keep_above:
                self._kept = self.pool.keep(self._lease)  # False when the pool keeps enough already
        return self._kept

    def _rest(self) -> bool:
        """Stay loaded in this worker until the action after this one, unless someone needs the
        worker first (the pool then asks this session to leave: `_leave`)."""
        assert self.pool is not None and self._lease is not None
        left: Future[None] = Future()

        def evict() -> None:
            self._leaving = asyncio.ensure_future(self._leave(left))  # referenced until it ends

        if not self.pool.rest(self._lease, evict):
            return False
        self._left = left
        return True

    async def _wake(self) -> bool:
        """Whether the session is back from rest with its worker (False: it had no rest, or was
        asked to leave: then it waits until it has left, its state saved here)."""
        left, self._left = self._left, None
        if left is None:
            return False
        if not left.done() and self._lease is not None and self.pool is not None:
            if self.pool.wake(self._lease):
                return True
        await asyncio.wrap_future(left)
        return False

    async def _leave(self, left: Future[None]) -> None:
        """Asked to leave while resting: save the session here and give its worker back (or
        keep the worker, if the session grew large)."""
        try:
            if self._lease is not None and not self._stays():
                await self._save_and_give_back()
        finally:
            left.set_result(None)

    async def _give_back(self) -> None:
        await self._wake()  # a resting session is woken (or has left) before its lease ends
        await self._hand_back()

    async def _hand_back(self) -> None:
        lease, self._lease, self.session, self._kept = self._lease, None, None, False
        self._rss.close()  # a descriptor only while the session has a worker: 1,000 sessions, few fds
        if lease is not None and self.pool is not None:
            await self.pool.give_back(lease)


class _Rss:
    """A worker's resident memory in bytes (0 if it cannot be read), read through a descriptor
    kept open on its `/proc/<pid>/statm` (a read costs ~0.5 µs, an open ~7 µs: it is read at
    every action)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._fd: int | None = None

    def __call__(self, pid: int | None) -> int:
        if pid != self._pid:
            self.close()
            self._pid = pid
        try:
            if self._fd is None:
                self._fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
            return int(os.pread(self._fd, 128, 0).split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            self.close()  # the process is gone (or there is no /proc): opened again next time
            return 0

    def close(self) -> None:
        fd, self._fd, self._pid = self._fd, None, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


def _state_survives(exc: BaseException) -> bool:
    """Whether the session's state is still good after an action that raised `exc`: the
    snippet's own errors leave it usable; a crash, the backstop, a cancellation do not."""
    import pydantic_monty as pm

    return isinstance(exc, pm.MontyRuntimeError | pm.MontySyntaxError) and not isinstance(
        exc, pm.MontyCrashedError
    )
