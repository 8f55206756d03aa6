"""Lines to and from one worker: the `Transport` protocol and `ProcessTransport` (a local subprocess).

Split from `process` (which re-exports these names); see there for the worker protocol.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
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
    """A worker running as a local subprocess; stderr is drained and its tail kept for errors."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._stderr: collections.deque[bytes] = collections.deque(maxlen=64)
        self._drain = asyncio.ensure_future(self._drain_stderr())

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | None = None,
        line_limit: int = LINE_LIMIT,
    ) -> ProcessTransport:  # fmt: skip
        """Start `argv` in its own session (so a kill reaches its children too)."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=dict(env) if env is not None else None, cwd=cwd,
                limit=line_limit, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise ExecutorError(f"The worker process could not be started ({argv[0]}): {exc}") from exc
        return cls(process)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def write_line(self, line: bytes) -> None:
        stdin = self._process.stdin
        if stdin is None or stdin.is_closing():
            raise WorkerGone("the worker's input is closed")
        try:
            stdin.write(line + b"\n")
            await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise WorkerGone(f"the worker stopped reading ({exc})") from None

    async def read_line(self) -> bytes:
        assert self._process.stdout is not None
        try:
            return await self._process.stdout.readline()
        except ValueError as exc:  # a line longer than the limit
            raise WorkerProtocolError(f"the worker sent an oversized message ({exc})") from None

    async def close(self) -> None:
        await self.kill()

    async def kill(self) -> None:
        process = self._process
        if process.returncode is None:
            # Signals only: Popen.kill() would poll, and so reap the child before asyncio's watcher
            # does (which then logs "Unknown child process"). The pid stays ours until reaped.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        self._drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._drain

    async def exit_reason(self) -> str:
        try:
            code = await asyncio.wait_for(self._process.wait(), timeout=2.0)
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

    async def _drain_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        while chunk := await stream.read(65536):
            self._stderr.append(chunk[-4096:])
