"""The worker program: runs model-written snippets in full CPython and talks JSON lines to a host.

This file is **self-contained** (the standard library of Python >= 3.9 only; it never imports
codeloop at module level) because it is also copied into remote sandboxes where codeloop is not
installed. Run it as

    python worker.py [--jail POLICY_JSON]

With `--jail`, the worker imports `codeloop.executors.confine` and confines itself (rlimits,
Landlock, seccomp) *before it reads any code*; if that fails it reports `fatal` and exits 3.

Protocol: one JSON object per line. The protocol uses private duplicates of the original stdin
and stdout; fd 0 then reads as empty, fd 1 is pointed at fd 2, and the snippet's `print` /
`sys.stdout` / `sys.stderr` go to a capped in-memory capture, so nothing the snippet writes can
corrupt the channel. No pickle ever crosses (smolagents CVE-2025-14931).

    worker -> host  {"op": "ready", "pid": n, "protocol": 1}                         once, at start
                    {"op": "fatal", "type": ..., "message": ..., "missing": [...]}   jail failed; exits
    host -> worker  {"op": "configure", "authorized_imports": [...], "max_output_chars": n,
                     "max_recursion_depth": n, "memory_bytes": n | null}
                    {"op": "define", "functions": [names]}     host functions callable by name
                    {"op": "set_vars", "vars": {name: value}}
                    {"op": "run", "code": "..."}
    worker -> host  {"op": "call", "id": n, "name": ..., "args": [...], "kwargs": {...}}
                       (during a run; the snippet blocks until the host answers)
    host -> worker  {"op": "result", "id": n, "value": v}  or  {"op": "result", "id": n,
                     "error": {"type": "KeyError", "base": "LookupError", "message": ...}}
    worker -> host  {"op": "final", "output": v, "logs": ...}   the moment final_answer() is called
                    {"op": "done", "output": v, "logs": ..., "final": bool, "error": null |
                     {"type", "message", "line", "source_line", "limit"}}   ends every request

Values: JSON scalars, lists and str-keyed dicts cross as themselves. Other values are tagged
objects with the key `"$codeloop"`: `tuple`, `set`, `frozenset`, `dict` (non-str keys, as
`items` pairs), `bytes` (base64), `datetime`, `date`, `time`, `timedelta`, `decimal`, and
`repr`. Dataclass instances and objects with `model_dump()` cross as dicts; numpy scalars as
Python numbers. Values going *into* the worker (variables, tool results) and tool arguments must
be representable this way (otherwise a `TypeError`). Values coming *back* (the trailing
expression, `final_answer`) never fail: anything else crosses as
`{"$codeloop": "repr", "type": "DataFrame", "repr": "..."}`, decoded as `ReprValue`, a `str`
holding the repr whose `repr()` is that text and whose `.type_name` names the original type.

Snippets run with `exec` in one persistent namespace (the `__main__` module), so variables
persist. A trailing expression's value is the output, as in a REPL; top-level `await` works.
A failing `assert a == b` with no message of its own says what it compared (`assert 2 == 3`).
`final_answer(x)` raises `FinalAnswerSignal`, a `BaseException`; the first value is latched, and
every later tool call or `final_answer` raises the signal again, and later output is dropped,
so `except BaseException`, a bare `except` or `finally` cannot swallow or change the answer.
Host functions are plain (blocking) functions in the snippet; calls from several threads are
serialised; after a run has ended, a thread calling one (or `final_answer`) gets RuntimeError.

Imports executed by snippet code (anything whose globals are not a real module's) go through an
import hook with smolagents' semantics: `SAFE_MODULES` plus the authorised names (an authorised
`pandas` also allows `pandas.x`, where smolagents wants `pandas.*`; `"*"` allows everything).
Imports that C code makes on the snippet's behalf (`datetime.strptime` loading `_strptime`) are
not the snippet's and pass. The hook is a policy, not a security
boundary: the jail is the boundary.
"""

from __future__ import annotations

import ast
import binascii
import builtins
import io
import json
import os
import sys
import threading
import types

TYPE_CHECKING = False  # typing itself is not imported: the worker starts as fast as it can
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any, NoReturn

__all__ = [
    "PROTOCOL_VERSION",
    "SAFE_MODULES",
    "TAG",
    "FinalAnswerSignal",
    "ReprValue",
    "decode_value",
    "encode_value",
    "main",
]

PROTOCOL_VERSION = 1
TAG = "$codeloop"
SAFE_MODULES: tuple[str, ...] = (
    "collections", "datetime", "itertools", "math", "queue", "random", "re", "stat", "statistics",
    "time", "unicodedata",
)  # fmt: skip
"""Importable by every snippet: smolagents' BASE_BUILTIN_MODULES."""

MAX_LINE_BYTES = 32 * 2**20  # a protocol line the worker sends is never longer than this
_MAX_DEPTH = 100
_MAX_REPR = 100_000
_FILE_PREFIX = "<code-"
_DATE_KINDS = ("datetime", "date", "time")  # datetime first: a datetime is also a date


class ReprValue(str):
    """A value that could not cross as data: its `repr()` text. `.type_name` is its type's name."""

    type_name: str = ""

    def __new__(cls, text: str, type_name: str = "") -> ReprValue:
        value = super().__new__(cls, text)
        value.type_name = type_name
        return value

    def __repr__(self) -> str:
        return str(self)


class FinalAnswerSignal(BaseException):
    """final_answer() was called: this code action is over."""


class OutputLimitExceeded(BaseException):
    """The snippet printed more than the worker keeps."""


# -- values ------------------------------------------------------------------------------------


def encode_value(value: Any, *, strict: bool = True, _depth: int = 0) -> Any:
    """`value` as JSON-ready data (see the module docstring). With `strict`, a value that has no
    data form raises TypeError; otherwise it crosses as a tagged repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if _depth > _MAX_DEPTH:
        return _fail(value, strict, "it is nested more than 100 levels deep")
    inner = _depth + 1
    if isinstance(value, list):
        return [encode_value(v, strict=strict, _depth=inner) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and TAG not in value:
            return {k: encode_value(v, strict=strict, _depth=inner) for k, v in value.items()}
        items = [[encode_value(k, strict=strict, _depth=inner), encode_value(v, strict=strict, _depth=inner)]
                 for k, v in value.items()]  # fmt: skip
        return {TAG: "dict", "items": items}
    if isinstance(value, (tuple, set, frozenset)):
        kind = "tuple" if isinstance(value, tuple) else "frozenset" if isinstance(value, frozenset) else "set"
        return {TAG: kind, "items": [encode_value(v, strict=strict, _depth=inner) for v in value]}
    tagged = _encode_scalar(value)
    if tagged is not None:
        return tagged
    try:
        plain = _as_plain(value)
    except Exception as exc:
        return _fail(value, strict, f"converting it failed: {type(exc).__name__}: {exc}")
    if plain is not value:
        return encode_value(plain, strict=strict, _depth=inner)
    return _fail(value, strict, "it is not plain data")


def _encode_scalar(value: Any) -> dict[str, Any] | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {TAG: "bytes", "base64": binascii.b2a_base64(bytes(value), newline=False).decode("ascii")}
    datetime = sys.modules.get("datetime")  # a value cannot be a date unless the module is loaded
    if datetime is not None:
        kind = next((k for k in _DATE_KINDS if isinstance(value, getattr(datetime, k))), None)
        if kind is not None:
            return {TAG: kind, "iso": value.isoformat()}
        if isinstance(value, datetime.timedelta):
            return {TAG: "timedelta", "days": value.days, "seconds": value.seconds, "us": value.microseconds}
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        return {TAG: "decimal", "text": str(value)}
    return None


def _as_plain(value: Any) -> Any:
    """Dataclasses and pydantic models as dicts, numpy scalars as Python numbers; else `value`."""
    kind = type(value)
    if hasattr(kind, "__dataclass_fields__") and not isinstance(value, type):
        import dataclasses

        return dataclasses.asdict(value)
    if kind.__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump()
    return value


def _fail(value: Any, strict: bool, why: str) -> Any:
    name = type(value).__name__
    if strict:
        raise TypeError(
            f"a {name} object cannot cross into or out of the sandbox ({why}): only plain data "
            "(str, numbers, bool, None, lists, tuples, dicts, sets, bytes, dates, Decimal) can"
        )
    return {TAG: "repr", "type": name, "repr": _safe_repr(value)}


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the protocol
        text = f"<{type(value).__name__} object (repr failed: {type(exc).__name__})>"
    if len(text) > _MAX_REPR:
        text = text[:_MAX_REPR] + f"... [{len(text) - _MAX_REPR} more chars]"
    return text


def decode_value(data: Any) -> Any:
    """The inverse of `encode_value`; tagged reprs become `ReprValue`."""
    if isinstance(data, list):
        return [decode_value(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {k: decode_value(v) for k, v in data.items()}
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown value tag {tag!r}")
    return decoder(data)


def _items(data: dict[str, Any]) -> list[Any]:
    return [decode_value(v) for v in data["items"]]


def _module(name: str) -> Any:
    __import__(name)
    return sys.modules[name]


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tuple": lambda d: tuple(_items(d)),
    "set": lambda d: set(_items(d)),
    "frozenset": lambda d: frozenset(_items(d)),
    "dict": lambda d: {decode_value(k): decode_value(v) for k, v in d["items"]},
    "bytes": lambda d: binascii.a2b_base64(d["base64"]),
    "datetime": lambda d: _module("datetime").datetime.fromisoformat(d["iso"]),
    "date": lambda d: _module("datetime").date.fromisoformat(d["iso"]),
    "time": lambda d: _module("datetime").time.fromisoformat(d["iso"]),
    "timedelta": lambda d: _module("datetime").timedelta(
        days=d["days"], seconds=d["seconds"], microseconds=d["us"]
    ),
    "decimal": lambda d: _module("decimal").Decimal(d["text"]),
    "repr": lambda d: ReprValue(str(d["repr"]), str(d.get("type", ""))),
}


# -- the protocol channel -------------------------------------------------------------------------


class _Channel:
    """The JSON-lines channel on private duplicates of the original stdin/stdout."""

    def __init__(self) -> None:
        self._in: IO[bytes] = open(os.dup(0), "rb")
        self._out: IO[bytes] = open(os.dup(1), "wb")
        read_end, write_end = os.pipe()
        os.dup2(read_end, 0)  # fd 0 now reads as empty...
        os.close(read_end)
        os.close(write_end)
        os.dup2(2, 1)  # ...and C-level writes to fd 1 land on stderr, never on the channel
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), allow_nan=True).encode("ascii")
        if len(line) > MAX_LINE_BYTES:
            raise OverflowError(f"message of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
        with self._lock:
            self._out.write(line + b"\n")
            self._out.flush()

    def receive(self) -> dict[str, Any]:
        line = self._in.readline()
        if not line:
            os._exit(0)  # the host is gone: nothing left to do
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("a protocol message must be a JSON object")
        return message


# -- output capture --------------------------------------------------------------------------------


class _Capture(io.TextIOBase):
    """sys.stdout / sys.stderr during a run: keeps up to `cap` characters, then refuses."""

    def __init__(self, cap: int, stopped: Callable[[], bool]) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._cap = cap
        self._stopped = stopped  # true once final_answer() latched: later output is dropped
        self.overflowed = False
        self._lock = threading.Lock()

    encoding = "utf-8"
    errors = "strict"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            if self._stopped():
                return len(text)
            room = self._cap - self._size
            if self.overflowed or len(text) > room:
                self._parts.append(text[: max(room, 0)])
                self._size = self._cap
                self.overflowed = True
                raise OutputLimitExceeded(f"the code printed more than {self._cap} characters")
            self._parts.append(text)
            self._size += len(text)
        return len(text)

    def text(self) -> str:
        with self._lock:
            joined = "".join(self._parts)
            self._parts = [joined]
            return joined


# -- the worker --------------------------------------------------------------------------------------


class _Config:
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


class _Worker:
    """One session: a persistent namespace, the host functions, the current run's state."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        module = types.ModuleType("__main__")
        sys.modules["__main__"] = module  # dataclasses, typing etc. resolve snippet classes here
        self.namespace: dict[str, Any] = module.__dict__
        self.config = _Config()
        self.functions: list[str] = []
        self.sources: list[str] = []
        self.final: tuple[Any] | None = None
        self.capture = _Capture(0, lambda: True)
        self.loop: Any = None
        self._call_lock = threading.Lock()
        self._next_id = 0
        self._final_logs = ""
        self._running = False  # tools and final_answer work only while a run is in progress
        self._real_import = builtins.__import__
        builtins.__import__ = self._import
        sys.stdin = io.StringIO("")  # input() gets EOF
        sys.stdout = sys.stderr = self.capture

    def serve(self) -> NoReturn:
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "configure": self._configure,
            "define": self._define,
            "set_vars": self._set_vars,
            "run": self._run,
        }
        while True:
            message = self.channel.receive()
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
        except OverflowError:
            note = ReprValue("[the value is too large to return; print a summary instead]", "")
            self.channel.send({**reply, "output": encode_value(note, strict=False)})

    # -- requests --

    def _configure(self, message: dict[str, Any]) -> dict[str, Any]:
        names = [str(n) for n in message.get("authorized_imports") or ()]
        self.config = _Config(
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
        filename = f"{_FILE_PREFIX}{index}>"
        self._register_sources()
        self.final = None
        self.capture = _Capture(self.config.max_output, lambda: self.final is not None)
        sys.stdout = sys.stderr = self.capture
        self._bind_functions()
        self._running = True
        try:
            value, error = self._execute(code, filename)
        finally:
            with self._call_lock:  # a tool call still in flight from a thread finishes first
                self._running = False
        sys.stdout = sys.stderr = _Capture(0, lambda: True)  # stray output from threads is dropped
        if self.final is not None:
            return _done(output=self.final[0], logs=self._final_logs, final=True)
        if self.capture.overflowed:
            error = {"type": "OutputLimitExceeded", "message": "", "limit": "max_output_chars"}
        output = encode_value(value, strict=False) if error is None else None
        return _done(output=output, logs=self.capture.text(), error=error)

    # -- running a snippet --

    def _execute(self, code: str, filename: str) -> tuple[Any, dict[str, Any] | None]:
        try:
            body, last = _compile(code, filename)
            depth = _stack_depth()
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
        if isinstance(exc, SyntaxError) and not _frames_in_snippets(exc):
            here = exc.filename == filename
            return {"type": type(exc).__name__, "message": exc.msg, "line": exc.lineno if here else None,
                    "source_line": (exc.text or "").rstrip("\n") if here else None}  # fmt: skip
        error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc), "limit": _limit_of(exc)}
        frames = _frames_in_snippets(exc)
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
            name = f"{_FILE_PREFIX}{index}>"
            linecache.cache.setdefault(name, (len(code), None, code.splitlines(True), name))

    def _source_line(self, filename: str, line: int) -> str | None:
        index = int(filename[len(_FILE_PREFIX) : -1])
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
            payload = {"name": name, "args": encode_value(list(args)), "kwargs": encode_value(kwargs)}
        except TypeError as exc:
            raise TypeError(f"{name}(): an argument cannot be passed to a tool: {exc}") from None
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
        self._final_logs = self.capture.text()
        self.final = (encode_value(answer, strict=False),)
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
    *, output: Any = None, logs: str = "", final: bool = False, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"op": "done", "output": output, "logs": logs, "final": final, "error": error}


def _compile(code: str, filename: str) -> tuple[types.CodeType, types.CodeType | None]:
    """The snippet as a body and, when it ends with an expression, that expression (REPL-style)."""
    tree = ast.parse(code, filename, "exec")
    _explain_asserts(tree)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    last = None
    tail = tree.body[-1] if tree.body else None
    if isinstance(tail, ast.Expr):
        tree.body.pop()
        expr = ast.Expression(tail.value)
        last = compile(expr, filename, "eval", flags=flags, dont_inherit=True)
    return compile(tree, filename, "exec", flags=flags, dont_inherit=True), last


_COMPARISONS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
}  # fmt: skip


def _explain_asserts(tree: ast.Module) -> None:
    """Give `assert a == b` (one comparison, no message) the message `assert 2 == 3`, with the
    values compared, as Monty does: CPython's AssertionError says nothing. Each side is still
    evaluated once, in order; the line numbers stay."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert) or node.msg is not None:
            continue
        test = node.test
        if not isinstance(test, ast.Compare) or len(test.ops) != 1 or type(test.ops[0]) not in _COMPARISONS:
            continue
        left, right = test.left, test.comparators[0]
        test.left = ast.copy_location(ast.NamedExpr(ast.Name("_codeloop_left", ast.Store()), left), left)
        named = ast.NamedExpr(ast.Name("_codeloop_right", ast.Store()), right)
        test.comparators = [ast.copy_location(named, right)]
        symbol = _COMPARISONS[type(test.ops[0])]
        message = f'f"assert {{_codeloop_left!r:.300}} {symbol} {{_codeloop_right!r:.300}}"'
        node.msg = ast.parse(message, mode="eval").body
        for part in ast.walk(node.msg):
            ast.copy_location(part, node)
    ast.fix_missing_locations(tree)


def _frames_in_snippets(exc: BaseException) -> list[tuple[str, str, int]]:
    """(filename, function, line) of each traceback frame in snippet code, outermost first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.startswith(_FILE_PREFIX):
            frames.append((code.co_filename, code.co_name, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _limit_of(exc: BaseException) -> str | None:
    if isinstance(exc, RecursionError) and "maximum recursion depth" in str(exc):
        return "max_recursion_depth"
    if isinstance(exc, MemoryError):
        return "memory_bytes"
    if isinstance(exc, OutputLimitExceeded):
        return "max_output_chars"
    return None


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth


# -- entry point ---------------------------------------------------------------------------------------


def _confine(policy_json: str) -> None:
    """Jail this process before it reads any code (only in `--jail` mode)."""
    from codeloop.executors import confine

    confine.apply(confine.JailPolicy.from_json(policy_json))


def _set_parent_death_signal() -> None:
    """Ask Linux to kill this worker if its parent dies (best effort; other systems: no-op)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        return


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]  # codeloop's executor modules must not shadow top-level names for snippets
    policy = args[args.index("--jail") + 1] if "--jail" in args[:-1] else None
    parent = os.getppid()
    _set_parent_death_signal()
    if os.getppid() != parent:
        return 1  # the host died before the signal was armed
    channel = _Channel()
    if policy is not None:
        try:
            _confine(policy)
        except BaseException as exc:
            missing = [str(m) for m in getattr(exc, "missing", None) or ()]
            channel.send({"op": "fatal", "type": type(exc).__name__, "message": str(exc), "missing": missing})
            return 3
    channel.send({"op": "ready", "pid": os.getpid(), "protocol": PROTOCOL_VERSION})
    _Worker(channel).serve()


if __name__ == "__main__":
    sys.exit(main())
