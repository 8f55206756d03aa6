"""What the remote executors (E2B, Modal, Docker, Blaxel) share: one worker, one channel.

Every remote executor runs the **same worker program** as the local and jail executors
(`worker.py`, standard library only) inside its sandbox, and talks to it with the same
newline-delimited JSON protocol over the remote process's stdin and stdout. Tools therefore run
on the host and are called from the snippet over that channel; `final_answer`, variables, errors
and limits behave exactly as locally. Only JSON crosses: nothing is pickled in either direction
(smolagents' remote executors unpickled what the sandbox sent: CVE-2025-14931).

The worker program does not need to be installed in the sandbox image, nor uploaded through a
file API: the remote command is a small bootstrap (`bootstrap_argv`) that reads the worker's
source from its stdin (a length line, then the source) and runs it as `__main__`. Any image with
Python 3.9 or newer works.

Pieces:

* `RemoteProcess` - what an adapter provides for one remote process: send bytes to its stdin,
  terminate it, say how it ended.
* `RemoteTransport` - the `Transport` the host side (`WorkerClient`) reads lines from; an
  adapter feeds it the chunks its SDK delivers (from a coroutine, a callback or a thread).
* `RemoteExecutor` - a `WorkerExecutor` with the options all remote executors share.

Security: a remote executor is as strong a boundary as its sandbox (a Firecracker microVM for
E2B, a gVisor container for Modal, a container for Docker - see each module). It does not
protect what runs on the host: tools and managed agents are called from the sandboxed code with
arguments the model chose, so give the agent only tools that are safe with untrusted input.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import importlib.util
from collections.abc import AsyncIterable, Mapping, Sequence
from types import ModuleType
from typing import Any, Protocol

from ..errors import ConfigurationError
from .base import ExecutorLimits
from .process import BASE_ADDRESS_SPACE, WORKER_PATH, Transport, WorkerExecutor, WorkerGone

__all__ = [
    "BOOTSTRAP",
    "DEFAULT_ENV",
    "RemoteExecutor",
    "RemoteProcess",
    "RemoteTransport",
    "bootstrap_argv",
    "require_sdk",
    "sdk_installed",
    "worker_payload",
]

BOOTSTRAP = (
    "import os,sys\n"
    "def r(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(0,n-len(b))\n"
    "  if not c:sys.exit(2)\n"
    "  b+=c\n"
    " return b\n"
    "h=b''\n"
    "while not h.endswith(b'\\n') and len(h)<16:h+=r(1)\n"
    "s=r(int(h))\n"
    "sys.argv=['codeloop-worker.py']\n"
    "g={'__name__':'__main__','__file__':'/codeloop-worker.py','__builtins__':__builtins__}\n"
    "exec(compile(s,'codeloop-worker.py','exec'),g)\n"
)
"""A `python -c` program: read `<length>\\n<worker source>` from fd 0 byte-exactly (so the rest
of stdin is left to the worker's own channel) and run the source as the main program."""

DEFAULT_ENV = {"LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Environment of every remote worker, under the user's `env`: one BLAS thread keeps numpy's
address space (and so the `memory_bytes` cap) predictable on many-core machines."""

_STDERR_CHUNKS = 64


def bootstrap_argv(python: str = "python3") -> list[str]:
    """The remote command: `python -c BOOTSTRAP` (the worker source follows on stdin)."""
    return [python, "-c", BOOTSTRAP]


def worker_payload() -> bytes:
    """What the bootstrap reads first: the worker's source, preceded by its length."""
    source = WORKER_PATH.read_bytes()
    return str(len(source)).encode("ascii") + b"\n" + source


def require_sdk(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional SDK, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"The {what} executor needs the {module!r} package ({exc}): pip install 'codeloop[{extra}]'"
        ) from None


def sdk_installed(module: str) -> bool:
    """True when `module` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


class RemoteProcess(Protocol):
    """One worker process in a remote sandbox, as an adapter drives it through its SDK."""

    async def send(self, data: bytes) -> None:
        """Write `data` to the process's stdin, in order; raise if that is no longer possible."""
        ...

    async def terminate(self) -> None:
        """Kill the process (and whatever the adapter started for it alone)."""
        ...

    async def exit_reason(self) -> str:
        """How the process ended, in a few words (called after its output ended)."""
        ...


class RemoteTransport:
    """A `Transport` over a remote process: lines out of the chunks its SDK delivers.

    The adapter feeds stdout and stderr chunks (`feed`, `feed_threadsafe`, or `pump` for an async
    iterable) and calls `feed_eof` when the output ends. Lines longer than `line_limit` cost the
    worker a restart (`WorkerGone`), as with a local worker."""

    def __init__(self, process: RemoteProcess, *, line_limit: int) -> None:
        self.process = process
        self._reader = asyncio.StreamReader(limit=line_limit)
        self._loop = asyncio.get_running_loop()
        self._stderr: collections.deque[bytes] = collections.deque(maxlen=_STDERR_CHUNKS)
        self._write_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._killed = False

    # -- the adapter's side --

    def feed(self, chunk: bytes, *, stderr: bool = False) -> None:
        """Deliver output (call from the event loop's thread)."""
        if stderr:
            self._stderr.append(chunk[-4096:])
        elif chunk and not self._reader.at_eof():
            self._reader.feed_data(chunk)

    def feed_eof(self) -> None:
        """The process's output ended."""
        if not self._reader.at_eof():
            self._reader.feed_eof()

    def feed_threadsafe(self, chunk: bytes | None, *, stderr: bool = False) -> None:
        """`feed` from another thread; `None` means end of output."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            if chunk is None:
                self._loop.call_soon_threadsafe(self.feed_eof)
            else:
                self._loop.call_soon_threadsafe(lambda: self.feed(chunk, stderr=stderr))

    def pump(self, chunks: AsyncIterable[bytes | str], *, stderr: bool = False) -> None:
        """Feed every chunk of `chunks` in a background task; stdout's end is the output's end."""
        self._tasks.append(asyncio.ensure_future(self._pump(chunks, stderr)))

    async def _pump(self, chunks: AsyncIterable[bytes | str], stderr: bool) -> None:
        try:
            async for chunk in chunks:
                self.feed(chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk), stderr=stderr)
        except Exception as exc:  # the SDK's stream broke: the worker is unreachable
            self._stderr.append(f"[output stream failed: {type(exc).__name__}: {exc}]".encode())
        finally:
            if not stderr:
                self.feed_eof()

    async def send_worker(self) -> None:
        """Send the worker program to the bootstrap (the first thing on stdin)."""
        await self._send(worker_payload())

    # -- Transport --

    async def write_line(self, line: bytes) -> None:
        await self._send(line + b"\n")

    async def read_line(self) -> bytes:
        try:
            return await self._reader.readline()
        except ValueError as exc:  # a line longer than the limit
            raise WorkerGone(f"the worker sent an oversized message ({exc})") from None

    async def close(self) -> None:
        await self.kill()

    async def kill(self) -> None:
        if not self._killed:
            self._killed = True
            with contextlib.suppress(Exception):  # already gone, or the sandbox is unreachable
                await self.process.terminate()
        self.feed_eof()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def exit_reason(self) -> str:
        if self._killed:
            return "it was killed by the host"
        try:
            return await asyncio.wait_for(self.process.exit_reason(), timeout=5.0)
        except Exception as exc:
            return f"its end could not be determined: {type(exc).__name__}"

    def stderr_tail(self, chars: int = 2_000) -> str:
        """The last lines the worker wrote to stderr (for start-up errors; never shown to models)."""
        return b"".join(self._stderr).decode("utf-8", "replace")[-chars:]

    async def _send(self, data: bytes) -> None:
        if self._killed:
            raise WorkerGone("the worker's input is closed")
        async with self._write_lock:
            try:
                await self.process.send(data)
            except WorkerGone:
                raise
            except Exception as exc:
                raise WorkerGone(f"the worker's input failed ({type(exc).__name__}: {exc})") from None


class RemoteExecutor(WorkerExecutor):
    """A `WorkerExecutor` whose worker runs in a remote sandbox. Subclasses implement `_spawn`
    (start the bootstrap, return `await self._attach(...)`) and may implement `_shutdown`
    (release the sandbox when the session closes).

    `python` is the interpreter command in the sandbox; `env` is added to `DEFAULT_ENV` for the
    worker (the host's environment is never passed on). `memory_bytes` caps the worker's address
    space (plus `BASE_ADDRESS_SPACE` for the interpreter and its libraries), inside whatever the
    sandbox itself allows.
    """

    def __init__(
        self,
        limits: ExecutorLimits | None = None,
        additional_authorized_imports: Sequence[str] = (),
        *,
        python: str = "python3",
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits, additional_authorized_imports)
        self.python = python
        self.env = {**DEFAULT_ENV, **{str(k): str(v) for k, v in (env or {}).items()}}

    @property
    def argv(self) -> list[str]:
        """The command the sandbox runs for each worker."""
        return bootstrap_argv(self.python)

    async def close(self) -> None:
        """Stop the worker and release the sandbox."""
        try:
            await super().close()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        """Release what the session holds beyond its worker (a sandbox kept across restarts)."""

    def _configure_message(self) -> dict[str, Any]:
        return {**super()._configure_message(), "memory_bytes": self.limits.memory_bytes + BASE_ADDRESS_SPACE}

    async def _attach(self, transport: RemoteTransport) -> Transport:
        """Send the worker program to a started bootstrap; on failure, kill it. Returns `transport`."""
        try:
            await transport.send_worker()
        except BaseException:
            await transport.kill()
            raise
        return transport
