"""The worker program: runs model-written snippets in full CPython and talks JSON lines to a host.

The program is this entry point plus the package `inworker` beside it (value encoding, the
channel, output capture, snippet compilation, the session), all standard library only (Python >=
3.9; codeloop is never imported at module level). Run as a script, it loads `inworker` from its
own directory under a private name; remote sandboxes, where codeloop is not installed, receive the
whole program as one source (`process.worker_source()`). Run it as

    python worker.py [--jail POLICY_JSON]

With `--jail`, the worker imports `codeloop.executors.confine` and confines itself (rlimits,
Landlock, seccomp) *before it reads any code*; if that fails it reports `fatal` and exits 3.

Protocol: one JSON object per line, at most `MAX_LINE_BYTES` (8 MiB) and `MAX_LINE_STRUCTURE`
`[`/`{`/`,` bytes (see `inworker.channel`). The protocol uses private, non-inheritable duplicates
of the original stdin and stdout; fd 0 then reads as empty, fd 1 is pointed at /dev/null, and the
snippet's `print` / `sys.stdout` / `sys.stderr` go to a capped in-memory capture, so nothing the
snippet prints reaches the channel. No pickle ever crosses (smolagents CVE-2025-14931).

    host -> worker  {"op": "hello", "secret": s}          first line; never in argv or environment
    worker -> host  {"op": "ready", "pid": n, "protocol": 2}                         once, at start
                    {"op": "fatal", "type": ..., "message": ..., "missing": [...]}   jail failed; exits
    host -> worker  requests, each with a fresh random "id":
                    {"op": "configure", "id": r, "authorized_imports": [...], "max_output_chars": n,
                     "max_recursion_depth": n, "memory_bytes": n | null}
                    {"op": "define", "id": r, "functions": [names]}   host functions callable by name
                    {"op": "set_vars", "id": r, "vars": {name: value}}
                    {"op": "run", "id": r, "code": "..."}
    worker -> host  {"op": "call", "id": n, "name": ..., "args": [...], "kwargs": {...}}
                       (during a run; the snippet blocks until the host answers)
    host -> worker  {"op": "result", "id": n, "value": v}  or  {"op": "result", "id": n,
                     "error": {"type": "KeyError", "base": "LookupError", "message": ...}}
    worker -> host  {"op": "final", "output": v, "logs": ...}   the moment final_answer() is called
                    {"op": "done", "output": v, "logs": ..., "final": bool, "threads": n, "error":
                     null | {"type", "message", "line", "source_line", "limit"}}   ends every request

Every worker -> host message also carries `"s"` (the session secret) and `"re"` (the id of the
request it answers; "" before the first). The host rejects any other line and ends the session
(`WorkerProtocolError`). `threads` counts threads the run left running (from /proc/self/task,
so `_thread` threads count too); the host then recycles the worker. Values leaving the worker
have at most `VALUE_NODE_BUDGET` nodes; a larger one is refused with a message saying so.

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

import contextlib
import os
import sys

TYPE_CHECKING = False  # typing itself is not imported: the worker starts as fast as it can
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

__all__ = ["PARTS", "PRIVATE_PACKAGE", "PROTOCOL_VERSION", "main"]

PROTOCOL_VERSION = 2
SANDBOX_NICENESS = 19  # added to the worker's scheduling niceness: busy snippets yield the CPU to the host

PRIVATE_PACKAGE = "_codeloop_worker"
"""The name `inworker` is loaded under when this file runs as the worker program."""

PARTS = ("values", "channel", "capture", "snippets", "session")
"""The modules of `inworker`, in dependency order (each imports only earlier ones)."""


def _load_parts() -> ModuleType:
    """The `session` module of `inworker`: from the bundled sources when this program was sent
    as one source (`_CODELOOP_PARTS` is then defined), else from the directory beside this file."""
    import types

    package = types.ModuleType(PRIVATE_PACKAGE)
    package.__package__ = PRIVATE_PACKAGE
    bundled: dict[str, str] | None = globals().get("_CODELOOP_PARTS")
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inworker")
    package.__path__ = [] if bundled is not None else [here]
    sys.modules[PRIVATE_PACKAGE] = package
    if bundled is None:
        __import__(f"{PRIVATE_PACKAGE}.session")
    else:
        for part in PARTS:
            _exec_part(part, bundled[part])
    return sys.modules[f"{PRIVATE_PACKAGE}.session"]


def _exec_part(part: str, source: str) -> None:
    import types

    name = f"{PRIVATE_PACKAGE}.{part}"
    module = types.ModuleType(name)
    module.__package__ = PRIVATE_PACKAGE
    module.__file__ = f"<codeloop-worker/{part}.py>"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)


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


def _yield_the_cpu() -> None:
    """Lower this worker's priority below the host's, so busy snippets never starve the host's
    event loop: its niceness, and its session's (the worker runs in a session of its own, and
    Linux shares the CPU between sessions first when autogroup scheduling is on)."""
    with contextlib.suppress(OSError):
        os.nice(SANDBOX_NICENESS)
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as f:
        f.write(str(SANDBOX_NICENESS))


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
    _yield_the_cpu()
    session = _load_parts()
    channel: Any = session.Channel()
    try:
        channel.open_session()  # the host's first line: the secret that seals every reply
    except ValueError:
        return 2
    if policy is not None:
        try:
            _confine(policy)
        except BaseException as exc:
            missing = [str(m) for m in getattr(exc, "missing", None) or ()]
            channel.send({"op": "fatal", "type": type(exc).__name__, "message": str(exc), "missing": missing})
            return 3
    channel.send({"op": "ready", "pid": os.getpid(), "protocol": PROTOCOL_VERSION})
    session.Worker(channel).serve()
    return 0  # not reached: serve() exits the process


if __name__ == "__main__":
    sys.exit(main())
