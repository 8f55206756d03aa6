"""The host side of the worker protocol (`worker.py`): run CPython snippets in a worker process.

Three layers, each reusable on its own:

* `Transport` - a byte stream of lines to one worker (write / read / close / kill).
  `ProcessTransport` runs the worker as a local subprocess; a remote sandbox's stdin/stdout
  (E2B, Modal, Docker) plugs in the same way.
* `WorkerClient` - one worker over a transport: sends a request, serves the tool calls the
  snippet makes while it runs (sync or async host functions), and enforces a time budget that
  counts the worker's time but not the time the host spends in tool calls.
* `WorkerExecutor` - the `Executor` protocol on top: limits, restarts, and model-readable
  failures. Subclasses only say how to spawn a worker (`LocalExecutor`, `JailExecutor`).

Restarts: when the time limit fires, the worker dies (a crash, the kernel killing it), or it
breaks the protocol, the worker is killed and a new one is started with the same host functions
and the variables sent so far; the failure says `state_lost=True`. If `final_answer()` was
called before that, the answer stands. Output a snippet printed before it was killed is lost.

Only JSON crosses (see `worker.py` for the value encoding); the host never unpickles or
evaluates anything the worker sends, and a garbled, oversized or forged message costs the worker
a restart, never the host.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import inspect
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError, ExecutorError
from .base import CodeOutput, ExecutionFailure, ExecutorLimits, HostFunction, limit_failure, truncate_output
from .inworker.session import SAFE_MODULES
from .inworker.values import ReprValue, decode_value, encode_value

__all__ = [
    "BASE_ADDRESS_SPACE",
    "WORKER_PATH",
    "ProcessTransport",
    "ReprValue",
    "Transport",
    "WorkerClient",
    "WorkerExecutor",
    "WorkerGone",
    "WorkerStartError",
    "worker_argv",
    "worker_source",
]

_LIMITS = frozenset({"timeout_s", "memory_bytes", "max_recursion_depth", "max_output_chars"})

BASE_ADDRESS_SPACE = 256 * 2**20
"""Address space a CPython worker needs beyond `memory_bytes`: the interpreter and its libraries."""


class _WorkerProgram(type(Path())):  # type: ignore[misc]
    """The path of `worker.py`, whose `read_bytes()` is the whole program as one source."""

    def read_bytes(self) -> bytes:
        return worker_source()


WORKER_PATH: Path = _WorkerProgram(__file__).with_name("worker.py")
"""The worker program's entry point (it loads the `inworker` package beside it). Its
`read_bytes()` gives `worker_source()`, the whole program as one source, so code that copies
"the file" into a sandbox without codeloop keeps working; prefer `worker_source()`."""

_STARTUP_TIMEOUT_S = 60.0
_MIN_LINE_LIMIT = 64 * 2**20


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


class WorkerStartError(ExecutorError):
    """The worker could not start. `kind` is the worker's error type (e.g. `JailUnavailable`),
    `details` what else its `fatal` message said (e.g. `missing`: the missing mechanisms)."""

    def __init__(self, message: str, kind: str = "", details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = dict(details or {})


class _OutOfTime(Exception):
    """The snippet used up its time budget."""


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
        line_limit: int = _MIN_LINE_LIMIT,
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
            raise WorkerGone(f"the worker sent an oversized message ({exc})") from None

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


# -- the protocol client --------------------------------------------------------------------------


class WorkerClient:
    """Talks to one worker: requests, tool calls from the snippet, the time budget."""

    def __init__(self, transport: Transport, functions: Mapping[str, HostFunction]) -> None:
        self.transport = transport
        self.functions = dict(functions)
        self.final: tuple[Any, str] | None = None
        """(value, logs) once the current run called final_answer()."""

    async def handshake(self, timeout_s: float = _STARTUP_TIMEOUT_S) -> dict[str, Any]:
        """Wait for the worker's `ready`; `WorkerStartError` if it reports `fatal` or dies."""
        try:
            line = await asyncio.wait_for(self.transport.read_line(), timeout_s)
        except asyncio.TimeoutError:
            await self.transport.kill()
            raise WorkerStartError(f"the worker did not start within {timeout_s:g} s") from None
        except WorkerGone as exc:
            line, why = b"", f"; {exc}"
        else:
            why = ""
        if not line:
            raise WorkerStartError(await self._start_failure(why))
        try:
            message = self._parse(line)
        except WorkerGone as exc:
            await self.transport.kill()
            raise WorkerStartError(f"the worker did not start properly: {exc}") from None
        if message.get("op") == "fatal":
            await self.transport.kill()
            kind = str(message.get("type", ""))
            raise WorkerStartError(str(message.get("message", "")), kind=kind, details=message)
        if message.get("op") != "ready":
            await self.transport.kill()
            raise WorkerStartError(f"the worker sent {message.get('op')!r} instead of 'ready'")
        return message

    async def request(self, message: Mapping[str, Any], budget_s: float | None = None) -> dict[str, Any]:
        """Send one request and return its `done` reply, serving tool calls meanwhile.

        Raises `_OutOfTime` when the worker used more than `budget_s` seconds (time in tool calls
        excluded) and `WorkerGone` when it died or broke the protocol."""
        self.final = None
        await self.transport.write_line(_dump(message))
        loop = asyncio.get_running_loop()
        remaining = budget_s
        while True:
            started = loop.time()
            reply = await self._next(remaining)
            if remaining is not None:
                remaining -= loop.time() - started
            op = reply.get("op")
            if op == "done":
                return reply
            if op == "call":
                await self.transport.write_line(_dump(await self._serve(reply)))
            elif op == "final":
                self.final = (_decode(reply.get("output")), str(reply.get("logs", "")))
            else:
                raise WorkerGone(f"the worker sent an unexpected message {op!r}")

    async def _next(self, remaining: float | None) -> dict[str, Any]:
        if remaining is not None and remaining <= 0:
            raise _OutOfTime
        try:
            line = await asyncio.wait_for(self.transport.read_line(), remaining)
        except asyncio.TimeoutError:
            raise _OutOfTime from None
        if not line:
            raise WorkerGone(f"the sandbox process died ({await self.transport.exit_reason()})")
        return self._parse(line)

    @staticmethod
    def _parse(line: bytes) -> dict[str, Any]:
        if not line:
            raise WorkerGone("the worker exited")
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            raise WorkerGone("the worker sent a garbled message") from None
        if not isinstance(message, dict):
            raise WorkerGone("the worker sent a message that is not a JSON object")
        return message

    async def _serve(self, call: dict[str, Any]) -> dict[str, Any]:
        """Run the host function the snippet called; the answer is a value or an error."""
        ident, name = call.get("id"), str(call.get("name"))
        function = self.functions.get(name)
        if function is None:
            return {
                "op": "result",
                "id": ident,
                "error": _error_info(NameError(f"name '{name}' is not defined")),
            }
        try:
            args, kwargs = _decode(call.get("args", [])), _decode(call.get("kwargs", {}))
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise TypeError("malformed tool call")
            value = function(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            return {"op": "result", "id": ident, "error": _error_info(exc)}
        try:
            return {"op": "result", "id": ident, "value": encode_value(value)}
        except TypeError as exc:
            error = TypeError(
                f"{name}() returned a {type(value).__name__} object, which cannot enter the sandbox: {exc}"
            )
            return {"op": "result", "id": ident, "error": _error_info(error)}

    async def _start_failure(self, why: str) -> str:
        reason = await self.transport.exit_reason()
        tail = getattr(self.transport, "stderr_tail", lambda: "")()
        return f"the worker exited before it was ready ({reason}{why})" + (f":\n{tail}" if tail else "")


# -- the executor ----------------------------------------------------------------------------------


class WorkerExecutor:
    """An `Executor` whose snippets run in a `worker.py` process. Subclasses implement `_spawn`.

    `additional_authorized_imports` keeps smolagents' meaning: `SAFE_MODULES` plus these names
    (with their submodules) may be imported by snippet code; `"*"` allows any module.
    """

    def __init__(
        self, limits: ExecutorLimits | None = None, additional_authorized_imports: Sequence[str] = ()
    ) -> None:
        self.limits = limits or ExecutorLimits()
        self.additional_authorized_imports = tuple(str(n) for n in additional_authorized_imports)
        self._functions: dict[str, HostFunction] = {}
        self._variables: dict[str, Any] = {}  # encoded, re-sent after a restart
        self._client: WorkerClient | None = None
        self._started = False
        self._output_cap = max(1_000_000, 20 * self.limits.max_output_chars)
        self._lock = asyncio.Lock()

    @property
    def importable_modules(self) -> list[str]:
        """The modules a snippet can import here (for the agent's prompt)."""
        if "*" in self.additional_authorized_imports:
            return ["any installed module"]
        names = {n.removesuffix(".*") for n in self.additional_authorized_imports}
        return sorted(set(SAFE_MODULES) | names)

    async def _spawn(self) -> Transport:
        """Start a worker process and return its transport (it has not said `ready` yet)."""
        raise NotImplementedError

    def _configure_message(self) -> dict[str, Any]:
        return {
            "op": "configure", "authorized_imports": list(self.additional_authorized_imports),
            "max_output_chars": self._output_cap, "max_recursion_depth": self.limits.max_recursion_depth,
        }  # fmt: skip

    @property
    def _line_limit(self) -> int:
        return max(_MIN_LINE_LIMIT, 16 * self._output_cap)

    # -- Executor protocol ---------------------------------------------------------------

    async def start(self, functions: Mapping[str, HostFunction]) -> None:
        """Start a fresh worker in which `functions` (sync or async) are callable by name."""
        for name in functions:
            if not name.isidentifier():
                raise ConfigurationError(f"Host function name {name!r} is not a Python identifier.")
        async with self._lock:
            await self._stop()
            self._functions = {k: v for k, v in functions.items() if k != "final_answer"}
            self._variables = {}
            self._client = await self._boot()
            self._started = True

    async def send_variables(self, variables: Mapping[str, Any]) -> None:
        """Bind `variables` as globals now; they are re-sent if the worker is restarted."""
        encoded = {}
        for name, value in variables.items():
            try:
                encoded[str(name)] = encode_value(value)
            except TypeError as exc:
                raise ConfigurationError(
                    f"Variable {name!r} cannot be sent into the sandbox: {exc}. Convert it to plain data "
                    "first (for a DataFrame: df.to_dict('records'))."
                ) from None
        async with self._lock:
            if not self._started:
                raise ExecutorError(f"{type(self).__name__}.start() must be called before send_variables().")
            self._variables.update(encoded)
            if self._client is not None:
                await self._set_vars(self._client, encoded)

    async def run(self, code: str) -> CodeOutput:
        """Run one snippet. Snippet errors and limits come back in `CodeOutput.error`."""
        async with self._lock:
            if not self._started:
                raise ExecutorError(f"{type(self).__name__}.start() must be called before run().")
            client, restarted = self._client, self._client is None
            if client is None:  # the last run was cancelled mid-snippet
                client = self._client = await self._boot()
            return await self._run(client, code, restarted)

    async def close(self) -> None:
        """Stop the worker."""
        async with self._lock:
            self._started = False
            await self._stop()

    # -- worker lifecycle ------------------------------------------------------------------

    async def _boot(self) -> WorkerClient:
        transport = await self._spawn()
        client = WorkerClient(transport, self._functions)
        try:
            await client.handshake()
            await self._expect_ok(client, self._configure_message())
            await self._expect_ok(client, {"op": "define", "functions": sorted(self._functions)})
            if self._variables:
                await self._set_vars(client, self._variables)
        except BaseException:
            await transport.kill()
            raise
        return client

    async def _expect_ok(self, client: WorkerClient, message: dict[str, Any]) -> None:
        try:
            reply = await client.request(message, budget_s=_STARTUP_TIMEOUT_S)
        except (WorkerGone, _OutOfTime) as exc:
            raise ExecutorError(
                f"The worker failed while starting: {exc or 'it stopped answering'}"
            ) from None
        error = reply.get("error")
        if isinstance(error, dict):
            raise ExecutorError(
                f"The worker refused {message['op']}: {error.get('type')}: {error.get('message')}"
            )

    async def _set_vars(self, client: WorkerClient, encoded: Mapping[str, Any]) -> None:
        await self._expect_ok(client, {"op": "set_vars", "vars": dict(encoded)})

    async def _stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.transport.close()

    async def _restart(self) -> None:
        await self._stop()
        try:
            self._client = await self._boot()
        except ExecutorError as exc:
            raise ExecutorError(f"The sandbox could not be restarted: {exc}") from exc

    # -- one snippet -----------------------------------------------------------------------

    async def _run(self, client: WorkerClient, code: str, restarted: bool) -> CodeOutput:
        try:
            reply = await client.request({"op": "run", "code": code}, budget_s=self.limits.timeout_s)
        except _OutOfTime:
            return await self._lost(client, self._limit("timeout_s"), restarted)
        except WorkerGone as exc:
            failure = ExecutionFailure("RuntimeError", f"{exc}. {_CRASH_ADVICE}")
            return await self._lost(client, failure, restarted)
        except BaseException:  # cancelled mid-snippet: the worker is in an unknown state
            await self._stop()
            raise
        note = _RESTART_NOTE if restarted else ""
        if reply.get("final"):
            value, logs = client.final or (_decode(reply.get("output")), str(reply.get("logs", "")))
            return CodeOutput(output=value, logs=note + self._truncate(logs), is_final_answer=True)
        logs = note + self._truncate(str(reply.get("logs", "")))
        error = reply.get("error")
        if isinstance(error, dict):
            return CodeOutput(logs=logs, error=self._failure(error))
        return CodeOutput(output=_decode(reply.get("output")), logs=logs)

    async def _lost(self, client: WorkerClient, failure: ExecutionFailure, restarted: bool) -> CodeOutput:
        """The worker was lost mid-snippet: restart it; a final answer given before still stands."""
        final = client.final
        await self._restart()
        if final is not None:
            return CodeOutput(
                output=final[0], logs=_RESTART_NOTE + self._truncate(final[1]), is_final_answer=True
            )
        note = _RESTART_NOTE if restarted else ""
        return CodeOutput(logs=note, error=dataclasses.replace(failure, state_lost=True))

    def _failure(self, error: dict[str, Any]) -> ExecutionFailure:
        limit = error.get("limit")
        line, source = error.get("line"), error.get("source_line")
        line = line if isinstance(line, int) else None
        source = source if isinstance(source, str) else None
        if isinstance(limit, str) and limit in _LIMITS:
            return dataclasses.replace(self._limit(limit), line=line, source_line=source)
        kind, message = str(error.get("type", "Error")), str(error.get("message", ""))
        return ExecutionFailure(kind, self._hint(kind, message), line=line, source_line=source)

    def _hint(self, kind: str, message: str) -> str:
        """What to do instead, where the error alone does not say."""
        if kind == "TypeError" and "can't be used in 'await' expression" in message:
            return f"{message}. Tools return their result directly: call them without await."
        return message

    def _limit(self, limit: str) -> ExecutionFailure:
        return limit_failure(self.limits, limit, f"{self._output_cap} characters")

    def _truncate(self, text: str) -> str:
        return truncate_output(text, self.limits.max_output_chars)


_RESTART_NOTE = "[The sandbox was restarted: variables and functions from earlier steps are gone.]\n"
_CRASH_ADVICE = (
    "It may have run out of memory or crashed in native code; try smaller data or another approach"
)


def _dump(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("ascii")


def _decode(data: Any) -> Any:
    """A worker's value; anything malformed becomes a `ReprValue` note, never an exception."""
    try:
        return decode_value(data)
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
        return ReprValue(f"<undecodable value: {type(exc).__name__}>", "")


def _error_info(exc: Exception) -> dict[str, str]:
    """A host exception for the worker: its type name, nearest built-in base, and message."""
    base = next(t for t in type(exc).__mro__ if t.__module__ == "builtins" and issubclass(t, Exception))
    return {"type": type(exc).__name__, "base": base.__name__, "message": str(exc)}


def worker_source() -> bytes:
    """The worker program as one self-contained source (its `inworker` modules embedded), for
    sandboxes where codeloop is not installed: run it as the main program."""
    from .worker import PARTS

    parts = {name: (WORKER_PATH.parent / "inworker" / f"{name}.py").read_text("utf-8") for name in PARTS}
    entry = Path(WORKER_PATH).read_text("utf-8")
    program = f"_CODELOOP_PARTS = {parts!r}\nexec(compile({entry!r}, __file__, 'exec'), globals())\n"
    return program.encode("utf-8")


def worker_argv(*extra: str, isolated: bool = False) -> list[str]:
    """The command that runs the worker with this interpreter."""
    flags = ["-I"] if isolated else []
    return [sys.executable, *flags, str(WORKER_PATH), *extra]
