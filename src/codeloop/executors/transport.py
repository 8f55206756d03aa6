"""Lines to and from one worker: the `Transport` protocol and `ProcessTransport` (a local subprocess).

Split from `process` (which re-exports these names); see there for the worker protocol.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from ..errors import ExecutorError
from .inworker.channel import MAX_LINE_BYTES

__all__ = ["LINE_LIMIT", "ProcessTransport", "Transport", "WorkerGone", "WorkerProtocolError"]

LINE_LIMIT = MAX_LINE_BYTES + 1
"""The longest line (newline included) a transport accepts: the worker's own maximum."""


@runtime_checkable
class Transport(Protocol):
    """Lines to and from one worker. `read_line` returns b"" once the worker is gone."""

    async def write_line(self, line: bytes) -> None: ...

    async def read_line(self) -> bytes: ...

    async def close(self) -> None: ...

    async def kill(self) -> None: ...

    async def exit_reason(self) -> str:
        """After `read_line` returned b"": how the worker ended, in a few words."""
        ...


class WorkerGone(ExecutorError):
    """The worker stopped answering: it died, broke the protocol, or was killed."""


class WorkerProtocolError(WorkerGone):
    """The worker sent what the protocol does not allow (malformed, oversized, undecodable, not
    sealed with the session's secret, or not a reply to the pending request): the session ends."""


# -- a local subprocess ------------------------------------------------------------------------


class ProcessTransport:
    """A worker running as a local subprocess; stderr is drained and its tail kept for errors.

    Nothing here waits on the event loop: the process is started and signalled from a worker
    thread (starting a jailed worker, or killing one, can take tens of milliseconds when many
    namespaces are created and torn down at once), its pipes are read by the loop, and its exit
    is noticed through a pidfd (or polled, where there is none), without a watcher thread.
    """

    def __init__(
        self, process: subprocess.Popen[bytes], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._process, self._reader, self._writer = process, reader, writer
        self._stderr: collections.deque[bytes] = collections.deque(maxlen=64)
        self._drain = asyncio.ensure_future(self._drain_stderr())

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | None = None,
        line_limit: int = LINE_LIMIT,
    ) -> ProcessTransport:  # fmt: skip
        """Start `argv` in its own session (so a kill reaches its children too)."""
        try:
            process = await asyncio.to_thread(
                subprocess.Popen, list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=dict(env) if env is not None else None, cwd=cwd,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise ExecutorError(f"The worker process could not be started ({argv[0]}): {exc}") from exc
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=line_limit)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), process.stdout)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, process.stdin)
        return cls(process, reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    @property
    def pid(self) -> int:
        return self._process.pid

    async def write_line(self, line: bytes) -> None:
        if self._writer.is_closing():
            raise WorkerGone("the worker's input is closed")
        try:
            self._writer.write(line + b"\n")
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise WorkerGone(f"the worker stopped reading ({exc})") from None

    async def read_line(self) -> bytes:
        try:
            return await self._reader.readline()
        except ValueError as exc:  # a line longer than the limit
            raise WorkerProtocolError(f"the worker sent an oversized message ({exc})") from None

    async def close(self) -> None:
        await self.kill()

    async def kill(self) -> None:
        if self._process.returncode is None:
            await asyncio.to_thread(_kill_group, self._process.pid)
        await self._wait()
        if not self._writer.transport.is_closing():
            self._writer.transport.abort()
        self._drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._drain

    async def exit_reason(self) -> str:
        try:
            code = await asyncio.wait_for(self._wait(), timeout=2.0)
        except asyncio.TimeoutError:
            await self.kill()
            return "it closed its output and was killed"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by signal {signal.Signals(-code).name}"
        return f"exit code {code}"

    def stderr_tail(self, chars: int = 2_000) -> str:
        """The last lines the worker wrote to stderr (for start-up errors; never shown to models)."""
        return b"".join(self._stderr).decode("utf-8", "replace")[-chars:]

    async def _wait(self) -> int:
        """The exit code, once the process has ended (reaped without blocking the loop)."""
        process = self._process
        while (code := process.poll()) is None:
            await _exited(process.pid)
        return code

    async def _drain_stderr(self) -> None:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), self._process.stderr
        )
        try:
            while chunk := await stream.read(65536):
                self._stderr.append(chunk[-4096:])
        finally:
            transport.close()


def _kill_group(pid: int) -> None:
    """SIGKILL the worker's session (its process group) and the worker itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _exited(pid: int) -> None:
    """Return once `pid` may have exited: its pidfd turns readable (Linux), or after 5 ms."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        await asyncio.sleep(0.005)
        return
    loop, done = asyncio.get_running_loop(), asyncio.Event()
    try:
        loop.add_reader(fd, done.set)
        await asyncio.wait_for(done.wait(), timeout=0.5)  # re-checked by the caller either way
    except asyncio.TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)
        os.close(fd)
