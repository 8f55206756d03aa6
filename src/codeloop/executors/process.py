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
import dataclasses
import hmac
import inspect
import json
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, ExecutorError
from .base import CodeOutput, ExecutionFailure, ExecutorLimits, HostFunction, limit_failure, truncate_output
from .inworker.channel import MAX_LINE_BYTES, MAX_LINE_STRUCTURE, structure_count
from .inworker.session import SAFE_MODULES
from .inworker.values import ReprValue, decode_tagged, encode_value
from .transport import LINE_LIMIT, ProcessTransport, Transport, WorkerGone, WorkerProtocolError

__all__ = [
    "BASE_ADDRESS_SPACE",
    "WORKER_PATH",
    "ProcessTransport",
    "ReprValue",
    "Transport",
    "WorkerClient",
    "WorkerExecutor",
    "WorkerGone",
    "WorkerProtocolError",
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


class WorkerStartError(ExecutorError):
    """The worker could not start. `kind` is the worker's error type (e.g. `JailUnavailable`),
    `details` what else its `fatal` message said (e.g. `missing`: the missing mechanisms)."""

    def __init__(self, message: str, kind: str = "", details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = dict(details or {})


class _OutOfTime(Exception):
    """The snippet used up its time budget."""


# -- the protocol client --------------------------------------------------------------------------


class WorkerClient:
    """Talks to one worker: requests, tool calls from the snippet, the time budget.

    Every line from the worker is validated before it is believed: at most `LINE_LIMIT` bytes and
    `MAX_LINE_STRUCTURE` structural bytes (counted before decoding), decoded once, a JSON object
    sealed with this session's secret and answering the pending request's random id. Anything
    else raises `WorkerProtocolError`: nothing is discarded silently."""

    def __init__(self, transport: Transport, functions: Mapping[str, HostFunction]) -> None:
        self.transport = transport
        self.functions = dict(functions)
        self.final: tuple[Any, str] | None = None
        """(value, logs) once the current run called final_answer()."""
        self._secret = secrets.token_hex(16)
        self._pending = ""  # the id of the request in flight ("" for the handshake)

    async def handshake(self, timeout_s: float = _STARTUP_TIMEOUT_S) -> dict[str, Any]:
        """Open the session (its secret goes in the first line, never in argv or the environment)
        and wait for the worker's `ready`; `WorkerStartError` if it reports `fatal` or dies."""
        try:
            await self.transport.write_line(_dump({"op": "hello", "secret": self._secret}))
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
            message = await self._parse(line)
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
        excluded), `WorkerGone` when it died and `WorkerProtocolError` when it broke the protocol."""
        self.final = None
        self._pending = secrets.token_hex(16)
        try:
            return await self._exchange({**message, "id": self._pending}, budget_s)
        finally:
            self._pending = "-"  # no request pending: any line now is a violation

    async def _exchange(self, message: Mapping[str, Any], budget_s: float | None) -> dict[str, Any]:
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
            elif op == "final" and self.final is None:
                self.final = (reply.get("output"), str(reply.get("logs", "")))
            else:
                raise WorkerProtocolError(f"the worker sent an unexpected message {op!r}")

    async def _next(self, remaining: float | None) -> dict[str, Any]:
        if remaining is not None and remaining <= 0:
            raise _OutOfTime
        try:
            line = await asyncio.wait_for(self.transport.read_line(), remaining)
        except asyncio.TimeoutError:
            raise _OutOfTime from None
        if not line:
            raise WorkerGone(f"the sandbox process died ({await self.transport.exit_reason()})")
        return await self._parse(line)

    async def _parse(self, line: bytes) -> dict[str, Any]:
        """One line, validated and decoded (see the class docstring)."""
        if len(line) > LINE_LIMIT:
            raise WorkerProtocolError(f"the worker sent a message over {MAX_LINE_BYTES} bytes")
        if await _structure(line) > MAX_LINE_STRUCTURE:
            raise WorkerProtocolError("the worker sent a message with more items than it ever sends")
        try:
            message = await _loads(line)
        except BaseException as exc:  # InvalidOperation, ValueError, RecursionError, MemoryError...
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            raise WorkerProtocolError(
                f"the worker sent an undecodable message ({type(exc).__name__})"
            ) from None
        if not isinstance(message, dict):
            raise WorkerProtocolError("the worker sent a message that is not a JSON object")
        seal = message.get("s")
        if not isinstance(seal, str) or not hmac.compare_digest(seal, self._secret):
            raise WorkerProtocolError("the worker sent a message without the session's secret (forged)")
        if message.get("re") != self._pending:
            raise WorkerProtocolError("the worker sent a message that answers no pending request (forged)")
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
            args, kwargs = call.get("args", []), call.get("kwargs", {})
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise TypeError("malformed tool call")
            value = function(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            return {"op": "result", "id": ident, "error": _error_info(exc)}
        try:
            return {"op": "result", "id": ident, "value": encode_value(value)}
        except (TypeError, ValueError) as exc:
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
        """The longest line a transport accepts: the worker's own maximum (one shared constant)."""
        return LINE_LIMIT

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
            except (TypeError, ValueError) as exc:
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
        except WorkerProtocolError as exc:
            failure = ExecutionFailure("WorkerProtocolError", f"{exc}; the sandbox was ended for safety")
            return await self._lost(client, failure, restarted)
        except WorkerGone as exc:
            failure = ExecutionFailure("RuntimeError", f"{exc}. {_CRASH_ADVICE}")
            return await self._lost(client, failure, restarted)
        except BaseException:  # cancelled mid-snippet: the worker is in an unknown state
            await self._stop()
            raise
        out = self._output(client, reply, _RESTART_NOTE if restarted else "")
        threads = reply.get("threads")
        if isinstance(threads, int) and threads > 0:  # nothing an action starts may outlive it
            await self._restart()
            out = dataclasses.replace(out, logs=out.logs + _THREADS_NOTE.format(n=threads))
        return out

    def _output(self, client: WorkerClient, reply: dict[str, Any], note: str) -> CodeOutput:
        if reply.get("final"):
            value, logs = client.final or (reply.get("output"), str(reply.get("logs", "")))
            return CodeOutput(output=value, logs=note + self._truncate(logs), is_final_answer=True)
        logs = note + self._truncate(str(reply.get("logs", "")))
        error = reply.get("error")
        if isinstance(error, dict):
            return CodeOutput(logs=logs, error=self._failure(error))
        return CodeOutput(output=reply.get("output"), logs=logs)

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
_THREADS_NOTE = (
    "\n[The sandbox was restarted after this action because the code left {n} thread(s) running: "
    "variables and functions are gone. Threads must finish before the action ends.]\n"
)
_CRASH_ADVICE = (
    "It may have run out of memory or crashed in native code; try smaller data or another approach"
)


def _dump(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("ascii")


_OFF_LOOP_BYTES = 64 * 2**10  # longer lines are counted in slices and decoded in a thread


async def _structure(line: bytes) -> int:
    """`structure_count(line)`, yielding to the event loop between 1 MiB slices."""
    if len(line) <= _OFF_LOOP_BYTES:
        return structure_count(line)
    total, step = 0, 2**20
    for start in range(0, len(line), step):
        total += structure_count(line[start : start + step])
        await asyncio.sleep(0)
    return total


def _decode_line(line: bytes) -> Any:
    return json.loads(line, object_hook=decode_tagged)


async def _loads(line: bytes) -> Any:
    """Decode a line once (tagged values decoded as the parser builds them); long lines in a
    thread, so the event loop runs whenever the parser releases the GIL."""
    if len(line) <= _OFF_LOOP_BYTES:
        return _decode_line(line)
    return await asyncio.to_thread(_decode_line, line)


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
