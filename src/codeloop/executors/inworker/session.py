"""One worker session: the persistent namespace, host functions, final_answer and the import hook.

Standard library only: this module runs inside the worker (see `worker.py`).
"""

from __future__ import annotations

import builtins
import io
import os
import sys
import threading
import types

from .capture import Capture
from .channel import Channel
from .snippets import FILE_PREFIX, compile_snippet, frames_in_snippets, limit_of, stack_depth
from .values import VALUE_NODE_BUDGET, ReprValue, ValueTooLarge, decode_value, encode_value

TYPE_CHECKING = False  # typing is not imported: the worker starts as fast as it can
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

__all__ = ["SAFE_MODULES", "FinalAnswerSignal", "Worker", "native_threads"]

SAFE_MODULES: tuple[str, ...] = (
    "collections", "datetime", "itertools", "math", "queue", "random", "re", "stat", "statistics",
    "time", "unicodedata",
)  # fmt: skip
"""Importable by every snippet: smolagents' BASE_BUILTIN_MODULES."""


class FinalAnswerSignal(BaseException):
    """final_answer() was called: this code action is over."""


class Config:
    """What `configure` set: the import policy and the limits the worker enforces itself."""

    def __init__(
        self,
        allowed: frozenset[str] = frozenset(SAFE_MODULES),
        allow_all: bool = False,
        max_output: int = 1_000_000,
        max_depth: int = 500,
    ) -> None:
        self.allowed = allowed
        self.allow_all = allow_all
        self.max_output = max_output
        self.max_depth = max_depth


class Worker:
    """One session: a persistent namespace, the host functions, the current run's state."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        module = types.ModuleType("__main__")
        sys.modules["__main__"] = module  # dataclasses, typing etc. resolve snippet classes here
        self.namespace: dict[str, Any] = module.__dict__
        self.config = Config()
        self.functions: list[str] = []
        self.sources: list[str] = []
        self.final: tuple[Any] | None = None
        self.capture = Capture(0, lambda: True)
        self.loop: Any = None
        self._call_lock = threading.Lock()
        self._next_id = 0
        self._final_logs = ""
        self._running = False  # tools and final_answer work only while a run is in progress
        self._real_import = builtins.__import__
        builtins.__import__ = self._import
        sys.stdin = io.StringIO("")  # input() gets EOF
        sys.stdout = sys.stderr = self.capture
        self._idle_native: set[str] = set()  # native threads seen idle (a BLAS pool, say)

    def serve(self) -> NoReturn:
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "configure": self._configure,
            "define": self._define,
            "set_vars": self._set_vars,
            "run": self._run,
        }
        while True:
            message = self.channel.receive()
            self.channel.request_id = str(message.get("id", ""))
            handler = handlers.get(str(message.get("op")))
            try:
                if handler is None:
                    raise ValueError(f"unknown op {message.get('op')!r}")
                reply = handler(message)
            except Exception as exc:
                reply = _done(error={"type": type(exc).__name__, "message": str(exc)})
            self._send_done(reply)

    def _send_done(self, reply: dict[str, Any]) -> None:
        try:
            self.channel.send(reply)
            return
        except OverflowError:
            error = {
                "type": "ValueError",
                "message": "the result is too large to return; print a summary instead",
            }
        except MemoryError:
            error = {
                "type": "MemoryError",
                "message": "encoding the result ran out of memory",
                "limit": "memory_bytes",
            }
        logs = str(reply.get("logs", ""))[:100_000]
        self.channel.send({**reply, "output": None, "final": False, "logs": logs, "error": error})

    # -- requests --

    def _configure(self, message: dict[str, Any]) -> dict[str, Any]:
        names = [str(n) for n in message.get("authorized_imports") or ()]
        self.config = Config(
            allowed=frozenset(SAFE_MODULES) | {n.removesuffix(".*") for n in names},
            allow_all="*" in names,
            max_output=int(message.get("max_output_chars") or 1_000_000),
            max_depth=int(message.get("max_recursion_depth") or 500),
        )
        memory = message.get("memory_bytes")
        if memory:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (int(memory), int(memory)))
        return _done()

    def _define(self, message: dict[str, Any]) -> dict[str, Any]:
        self.functions = [str(n) for n in message.get("functions") or () if str(n).isidentifier()]
        self._bind_functions()
        return _done()

    def _set_vars(self, message: dict[str, Any]) -> dict[str, Any]:
        values = decode_value(message.get("vars") or {})
        self.namespace.update({str(k): v for k, v in values.items()})
        return _done()

    def _run(self, message: dict[str, Any]) -> dict[str, Any]:
        code = str(message.get("code", ""))
        index = len(self.sources)
        self.sources.append(code)
        filename = f"{FILE_PREFIX}{index}>"
        self._register_sources()
        self.final = None
        self.capture = Capture(self.config.max_output, lambda: self.final is not None)
        sys.stdout = sys.stderr = self.capture
        self._bind_functions()
        self._running = True
        try:
            value, error = self._execute(code, filename)
        finally:
            with self._call_lock:  # a tool call still in flight from a thread finishes first
                self._running = False
        sys.stdout = sys.stderr = Capture(0, lambda: True)  # stray output from threads is dropped
        if self.final is not None:
            return _done(
                output=self.final[0], logs=self._final_logs, final=True, threads=self._stray_threads()
            )
        if self.capture.overflowed:
            error = {"type": "OutputLimitExceeded", "message": "", "limit": "max_output_chars"}
        output, error = _encode_output(value) if error is None else (None, error)
        return _done(output=output, logs=self.capture.text(), error=error, threads=self._stray_threads())

    def _stray_threads(self) -> int:
        """Threads the code left running: any Python thread besides this one (after a short grace
        for threads that are ending), and native threads that use CPU. Native threads that a
        library started and that sit idle (numpy's BLAS pool) are remembered and not counted."""
        import time

        deadline = time.monotonic() + 0.2
        while (extra := len(sys._current_frames()) - 1) > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if extra > 0:
            return extra
        busy = native_threads() - self._idle_native
        deadline = time.monotonic() + 0.5  # a BLAS pool spins a little after its first use
        while busy and time.monotonic() < deadline:
            before = _cpu_ticks(busy)
            time.sleep(0.05)
            after = _cpu_ticks(busy)  # threads that ended are gone from it
            self._idle_native |= {tid for tid, ticks in after.items() if ticks == before.get(tid)}
            busy = set(after) - self._idle_native
        return max(len(busy), len(sys._current_frames()) - 1)  # a thread that has just started

    # -- running a snippet --

    def _execute(self, code: str, filename: str) -> tuple[Any, dict[str, Any] | None]:
        try:
            body, last = compile_snippet(code, filename)
            depth = stack_depth()
            sys.setrecursionlimit(depth + self.config.max_depth + 10)
            value = self._await(eval(body, self.namespace))
            if last is not None:
                value = self._await(eval(last, self.namespace))
            return value, None
        except FinalAnswerSignal:
            return None, None
        except BaseException as exc:  # anything the snippet raises, SystemExit included
            error = self._describe(exc, filename)
            exc.__traceback__ = None  # let go of the snippet's frames (and what they hold)
            return None, error

    def _await(self, value: Any) -> Any:
        """Run a top-level-await snippet's coroutine to completion on the session's loop."""
        if not isinstance(value, types.CoroutineType):
            return value
        import asyncio

        if self.loop is None:
            self.loop = asyncio.new_event_loop()
        return self.loop.run_until_complete(value)

    def _describe(self, exc: BaseException, filename: str) -> dict[str, Any]:
        if isinstance(exc, SyntaxError) and not frames_in_snippets(exc):
            here = exc.filename == filename
            return {"type": type(exc).__name__, "message": exc.msg, "line": exc.lineno if here else None,
                    "source_line": (exc.text or "").rstrip("\n") if here else None}  # fmt: skip
        error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc), "limit": limit_of(exc)}
        frames = frames_in_snippets(exc)
        current = [(name, line) for file, name, line in frames if file == filename]
        if current:
            error["line"] = current[-1][1]
        file, name, line = frames[-1] if frames else (filename, "", 0)
        if frames and file != filename:
            error["message"] += f" (raised in {name}() from an earlier step, line {line})"
        if "line" in error:
            error["source_line"] = self._source_line(filename, error["line"])
        return error

    def _register_sources(self) -> None:
        """Show snippet lines in tracebacks the snippet prints, once something loaded linecache
        (it is not imported just for this: the worker starts faster without it)."""
        linecache = sys.modules.get("linecache")
        if linecache is None:
            return
        for index, code in enumerate(self.sources):
            name = f"{FILE_PREFIX}{index}>"
            linecache.cache.setdefault(name, (len(code), None, code.splitlines(True), name))

    def _source_line(self, filename: str, line: int) -> str | None:
        index = int(filename[len(FILE_PREFIX) : -1])
        lines = self.sources[index].splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else None

    # -- host functions, final_answer, imports --

    def _bind_functions(self) -> None:
        for name in self.functions:
            if name != "final_answer":
                self.namespace[name] = self._stub(name)
        self.namespace["final_answer"] = self._final_answer

    def _stub(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(name, args, kwargs)

        call.__name__ = call.__qualname__ = name
        return call

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.final is not None:
            raise FinalAnswerSignal
        try:
            encoded = encode_value([list(args), kwargs], max_nodes=VALUE_NODE_BUDGET)
        except TypeError as exc:
            raise TypeError(f"{name}(): an argument cannot be passed to a tool: {exc}") from None
        except ValueTooLarge as exc:
            raise ValueError(f"{name}(): the arguments cannot be sent to the tool: {exc}") from None
        payload = {"name": name, "args": encoded[0], "kwargs": encoded[1]}
        with self._call_lock:
            _require_running(self._running, name)
            if self.final is not None:
                raise FinalAnswerSignal
            self._next_id += 1
            ident = self._next_id
            try:
                self.channel.send({"op": "call", "id": ident, **payload})
            except OverflowError:
                raise ValueError(f"{name}(): the arguments are too large to send to the tool") from None
            reply = self._await_result(ident)
        if "error" in reply:
            raise _host_exception(reply["error"]) from None
        return decode_value(reply.get("value"))

    def _await_result(self, ident: int) -> dict[str, Any]:
        while True:
            message = self.channel.receive()
            if message.get("op") == "result" and message.get("id") == ident:
                return message

    def _final_answer(self, answer: Any = None) -> NoReturn:
        with self._call_lock:
            _require_running(self._running, "final_answer")
            if self.final is None:
                self._latch(answer)
        raise FinalAnswerSignal

    def _latch(self, answer: Any) -> None:
        """Keep the first final answer and tell the host at once (it stands even if the snippet
        then hangs or crashes)."""
        try:
            encoded = encode_value(answer, strict=False, max_nodes=VALUE_NODE_BUDGET)
        except ValueTooLarge as exc:
            raise ValueError(f"final_answer(): {exc}") from None
        self._final_logs = self.capture.text()
        self.final = (encoded,)
        try:
            self.channel.send({"op": "final", "output": self.final[0], "logs": self._final_logs})
        except OverflowError:
            self.final = (encode_value(ReprValue("[the final answer is too large to return]"), strict=False),)
            self.channel.send({"op": "final", "output": self.final[0], "logs": self._final_logs})

    def _import(
        self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        caller = sys._getframe(1).f_globals
        on_behalf = type(fromlist) is list and globals is locals is caller  # C code importing (strptime...)
        if not on_behalf and self._from_snippet(caller):
            if level:
                raise ImportError("relative imports are not available here")
            if not self._allowed(name):
                allowed = sorted(self.config.allowed)
                raise ImportError(f"Import of {name} is not allowed. Authorized imports are: {allowed}")
        return self._real_import(name, globals, locals, fromlist, level)

    def _from_snippet(self, caller: dict[str, Any]) -> bool:
        if caller is self.namespace:
            return True
        if caller is _WORKER_GLOBALS:
            return False
        module = sys.modules.get(str(caller.get("__name__", "")))
        return getattr(module, "__dict__", None) is not caller

    def _allowed(self, name: str) -> bool:
        if self.config.allow_all:
            return True
        parts = name.split(".")
        return any(".".join(parts[:i]) in self.config.allowed for i in range(1, len(parts) + 1))


_WORKER_GLOBALS = globals()
_HOST_EXCEPTIONS: dict[tuple[str, str], type[Exception]] = {}


def _host_exception(error: Any) -> Exception:
    """The exception a host function raised, recreated for the snippet (by type name)."""
    info = error if isinstance(error, dict) else {}
    name, message = str(info.get("type", "Exception")), str(info.get("message", ""))
    base = getattr(builtins, str(info.get("base", "Exception")), Exception)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        return builtin(message)
    kind = _HOST_EXCEPTIONS.get((name, base.__name__))
    if kind is None and name.isidentifier():
        kind = _HOST_EXCEPTIONS.setdefault(
            (name, base.__name__), type(name, (base,), {"__module__": "tools"})
        )
    return (kind or base)(message)


def _require_running(running: bool, name: str) -> None:
    if not running:
        raise RuntimeError(
            f"{name}() can only be called while a code action runs, not from a thread after it"
        )


def _done(
    *, output: Any = None, logs: str = "", final: bool = False, error: dict[str, Any] | None = None,
    threads: int = 0,
) -> dict[str, Any]:  # fmt: skip
    return {"op": "done", "output": output, "logs": logs, "final": final, "error": error, "threads": threads}


def _encode_output(value: Any) -> tuple[Any, dict[str, Any] | None]:
    """A run's result for the host, or the error that says why it cannot be sent."""
    try:
        return encode_value(value, strict=False, max_nodes=VALUE_NODE_BUDGET), None
    except ValueTooLarge as exc:
        return None, {"type": "ValueError", "message": str(exc)}
    except MemoryError:
        message = "encoding the result ran out of memory (the memory_bytes limit)"
        return None, {"type": "MemoryError", "message": message, "limit": "memory_bytes"}


def native_threads() -> set[str]:
    """This process's threads other than the main one, as the kernel sees them."""
    try:
        return set(os.listdir("/proc/self/task")) - {str(os.getpid())}
    except OSError:
        return set()


def _cpu_ticks(tids: set[str]) -> dict[str, int]:
    """CPU time (clock ticks, user + system) of each thread that still exists."""
    ticks: dict[str, int] = {}
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        ticks[tid] = int(fields[11]) + int(fields[12])
    return ticks
