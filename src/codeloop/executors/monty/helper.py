"""The helper process: where host-module functions (statistics, textwrap...) run for snippets.

They are stdlib functions, but their inputs come from the sandbox, and some are slow or greedy
on the right input (quadratic text wrapping, a `Decimal` with a huge exponent in
`statistics.mean`, `textwrap.indent` of many lines with a long prefix). So they do not run in
the host process: a separate Python process (`helper_child.py`, standard library only, started
with `-I -S` and an empty environment) runs them, with its address space capped at what it maps
after start-up plus the executor's `memory_bytes`, and a CPU-time limit re-armed per call. The
host waits on a pipe, never on the GIL; when the action's remaining time runs out the process is
killed (SIGKILL) and reaped, and the next call starts a fresh one. No host thread is involved.

Pooled sessions share helper processes (`SharedHelper`): a call takes an idle helper of its
event loop and limits, or starts one, and gives it back only after a complete exchange; a
helper whose call was cancelled mid-exchange is killed, never handed to another session (its
stale reply would reach the wrong session). At most `KEEP_IDLE` idle helpers are kept per loop
and limits; the rest are stopped.

Arguments cross as the bounded JSON codec of `helper_child` (refused past `MAX_HOST_MODULE_ARG`
items plus characters, encoded on the event loop in steps); answers come back as JSON of at
most `reply_cap` bytes and are decoded as data only: nothing is unpickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

from .helper_child import decode_data, encode_steps
from .walk import TooLarge, drive, within_cap

__all__ = ["CHILD_PATH", "KEEP_IDLE", "HelperError", "HelperLimit", "HostHelper", "SharedHelper"]

KEEP_IDLE = 2

CHILD_PATH = Path(__file__).resolve().with_name("helper_child.py")
_REAP_S = 2.0


class HelperLimit(Exception):
    """A limit fired in the helper: `limit` is an `ExecutorLimits` field name."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit


class HelperError(Exception):
    """The function raised: its type's name, its nearest built-in base's name, its message."""

    def __init__(self, kind: str, base: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.base, self.message = kind, base, message


class HostHelper:
    """One lazily started helper process, used one call at a time."""

    def __init__(self, memory_bytes: int, reply_cap: int, arg_cap: int) -> None:
        self.memory_bytes, self.reply_cap, self.arg_cap = memory_bytes, reply_cap, arg_cap
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_transport: asyncio.BaseTransport | None = None
        self._lock = asyncio.Lock()
        self.starts = 0

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], budget_s: float) -> Any:
        """The value of `name(*args, **kwargs)` computed in the helper within `budget_s` seconds.
        Raises HelperError (the function raised), HelperLimit, TooLarge or TypeError (arguments
        that cannot cross)."""
        await within_cap((*args, *kwargs.values()), self.arg_cap, text=True)  # shared parts: at once
        out: list[str] = []
        await drive(encode_steps([name, budget_s, list(args), kwargs], out, self.arg_cap + 64))
        request = "".join(out).encode("utf-8")
        async with self._lock:
            if budget_s <= 0:
                raise HelperLimit("timeout_s", f"{name}() was not started: no time was left")
            if self._proc is None or self._proc.poll() is not None:
                await self._start()
            try:
                reply = await asyncio.wait_for(self._exchange(request), budget_s)
            except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
                raise await self._stopped(name) from None
            except asyncio.CancelledError:  # its reply is still to come: the next call must not read it
                await asyncio.shield(self._kill())
                raise
            return await self._answer(name, reply)

    async def close(self) -> None:
        """Stop the helper process (it is started again by the next call)."""
        await self._kill()

    async def stop(self) -> None:
        """After a stopped action: the same as `close`."""
        await self._kill()

    # -- the process ---------------------------------------------------------------------------

    async def _start(self) -> None:
        await self._kill()
        command = [sys.executable, "-I", "-S", str(CHILD_PATH), str(self.memory_bytes), str(self.reply_cap)]
        proc = subprocess.Popen(  # no preexec_fn: the child limits itself, and spawning stays cheap
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={}
        )
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**16)
        self._read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), proc.stdout
        )
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, proc.stdin)
        self._writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self._proc, self._reader = proc, reader
        self.starts += 1

    async def _exchange(self, request: bytes) -> bytes:
        assert self._reader is not None and self._writer is not None
        self._writer.write(len(request).to_bytes(4, "big") + request)
        await self._writer.drain()
        size = int.from_bytes(await self._reader.readexactly(4), "big")
        if size > self.reply_cap + 64:
            raise ConnectionError("the helper's reply is over the cap")
        return await self._reader.readexactly(size)

    async def _stopped(self, name: str) -> HelperLimit:
        """The call did not answer in time, or the process died: kill it; the limit that fired."""
        proc = self._proc
        code = proc.poll() if proc is not None else None
        await self._kill()
        if code is not None and code < 0 and -code not in (signal.SIGXCPU, signal.SIGKILL):
            return HelperLimit("memory_bytes", f"{name}() crashed the host helper process (signal {-code})")
        if code == -signal.SIGKILL or (code is not None and code > 0):
            return HelperLimit("memory_bytes", f"{name}() ran out of memory in the host helper process")
        return HelperLimit("timeout_s", f"{name}() ran past the time limit in the host helper process")

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        writer, self._writer, self._reader = self._writer, None, None
        reading, self._read_transport = self._read_transport, None
        if writer is not None:
            writer.transport.abort()
        if reading is not None:
            reading.close()
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        for _ in range(int(_REAP_S / 0.005)):  # reap without blocking the loop (no watcher thread)
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.005)

    # -- answers -------------------------------------------------------------------------------

    async def _answer(self, name: str, reply: bytes) -> Any:
        try:
            message = json.loads(reply)
            if not isinstance(message, dict) or len(message) != 1:
                raise ValueError("not an answer")
            ((key, body),) = message.items()
        except (ValueError, RecursionError) as exc:
            detail = f"{name}(): the host helper answered badly ({type(exc).__name__})"
            raise HelperError("RuntimeError", "RuntimeError", detail) from None
        if key == "ok":
            try:
                return decode_data(body)
            except ValueError as exc:
                raise HelperError("RuntimeError", "RuntimeError", f"{name}(): {exc}") from None
        if key == "limit":
            await self._kill()  # after a MemoryError its state is unknown: the next call starts afresh
            detail = f"{name}() used more than the memory limit in the host helper process"
            if body == "too_large":
                detail = f"{name}() returned a value over {self.reply_cap} bytes"
            raise HelperLimit("memory_bytes", detail)
        if key == "e" and isinstance(body, list) and len(body) == 3:
            raise HelperError(*(str(part) for part in body))
        raise HelperError("RuntimeError", "RuntimeError", f"{name}(): the host helper answered badly")


_Key = tuple[int, int, int]
_IDLE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, list[HostHelper]]] = (
    weakref.WeakKeyDictionary()
)
_IDLE_LOCK = threading.Lock()  # loops in other threads use it too


class SharedHelper:
    """A pooled session's view of the helper processes it shares with other sessions (module
    docstring): the same calls as `HostHelper`, served by whichever helper is idle."""

    def __init__(self, memory_bytes: int, reply_cap: int, arg_cap: int) -> None:
        self.key: _Key = (memory_bytes, reply_cap, arg_cap)
        self.starts = 0  # helper processes started for this session's calls
        self._kept: tuple[HostHelper, list[HostHelper]] | None = None  # the last helper it left idle

    async def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], budget_s: float) -> Any:
        """As `HostHelper.call`."""
        with _IDLE_LOCK:
            idle = _IDLE.setdefault(asyncio.get_running_loop(), {}).setdefault(self.key, [])
        helper = idle.pop() if idle else HostHelper(*self.key)
        started, complete = helper.starts, False
        try:
            result = await helper.call(name, args, kwargs, budget_s)
            complete = True
            return result
        except (HelperError, HelperLimit, TooLarge, TypeError):
            complete = True  # answered, stopped (and killed), or refused before anything was sent
            raise
        finally:
            self.starts += helper.starts - started
            if complete and len(idle) < KEEP_IDLE:
                idle.append(helper)
                self._kept = (helper, idle)
            else:
                await asyncio.shield(helper.close())

    async def close(self) -> None:
        """Nothing of this session's own runs between calls: the helpers are shared."""

    async def stop(self) -> None:
        """After a stopped action: stop the helper this session's last call left idle, if no
        other session took it since, so the action leaves no process of its own behind."""
        kept, self._kept = self._kept, None
        if kept is None:
            return
        helper, idle = kept
        with _IDLE_LOCK:
            if helper not in idle:
                return
            idle.remove(helper)
        await asyncio.shield(helper.close())
