"""MontyExecutor: drives one Monty session per executor; see the package docstring for guarantees."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ...errors import ConfigurationError, ExecutorError
from ..base import CodeOutput, ExecutionFailure, ExecutorLimits, HostFunction, limit_failure, truncate_output
from ..inworker.channel import MAX_LINE_BYTES
from ..inworker.values import VALUE_NODE_BUDGET
from .failures import Inputs, frames, which_limit
from .helper import HelperError, HelperLimit, HostHelper
from .hints import HintContext, limit_hint, syntax_hint, with_hint
from .modules import HOST_MODULES, MAX_HOST_MODULE_ARG, MONTY_MODULES, OS_STUBS, check_imports
from .rewrite import GENERATOR_CLASS, PRELUDE, SessionRewriter
from .values import (
    FINAL_SIGNAL,
    foreign_exception,
    sandbox_exception,
    to_sandbox,
    to_sandbox_async,
    unconvertible,
)
from .walk import TooLarge, within_cap

if TYPE_CHECKING:
    import pydantic_monty as pm

    Snapshot = (
        pm.AsyncFunctionSnapshot | pm.AsyncNameLookupSnapshot | pm.AsyncFutureSnapshot | pm.MontyComplete
    )

__all__ = ["MontyExecutor"]

_AWAITED = re.compile(r"\bawait\s*\(*\s*$")


@dataclasses.dataclass
class _Run:
    """Bookkeeping for one `run` call."""

    output: Any  # pm.CollectString
    final: bool = False
    final_value: Any = None
    final_logs: int = 0
    tasks: dict[int, asyncio.Future[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    host_errors: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    busy_s: float = 0.0
    helper_s: float = 0.0  # time spent waiting on the helper process (counted against timeout_s)
    stopped: ExecutionFailure | None = None  # a limit fired in the helper: the action is over


class _Stuck(Exception):
    """The wall-clock backstop fired: the session is abandoned mid-snippet."""


class MontyExecutor:
    """Runs snippets in a Monty sandbox session; see the module docstring for the guarantees.

    `additional_authorized_imports` keeps smolagents' meaning where Monty can follow it: the
    modules in `MONTY_MODULES` (minus the os/pathlib/sys stubs) and `HOST_MODULES` are importable
    anyway, so naming them is accepted; any other name (numpy, os, "*") raises
    `ConfigurationError`. `host_modules=False` withholds the host-implemented modules.
    """

    def __init__(
        self,
        limits: ExecutorLimits | None = None,
        additional_authorized_imports: Sequence[str] = (),
        *,
        host_modules: bool = True,
    ) -> None:
        self.limits = limits or ExecutorLimits()
        self.host_modules = dict(HOST_MODULES) if host_modules else {}
        check_imports(additional_authorized_imports, self.host_modules)
        self.additional_authorized_imports = tuple(additional_authorized_imports)
        self._functions: dict[str, HostFunction] = {}
        self._variables: dict[str, Any] = {}
        self._pool: Any = None
        self._session: Any = None
        self._inputs = Inputs()
        self._rewriter = SessionRewriter()
        self._needs_restart = False
        self._output_cap = max(1_000_000, 20 * self.limits.max_output_chars)
        reply_cap = max(1_000_000, self.limits.memory_bytes // 4)
        self._helper = HostHelper(self.limits.memory_bytes, reply_cap, MAX_HOST_MODULE_ARG)
        self._lock = asyncio.Lock()  # one snippet at a time per session

    @property
    def importable_modules(self) -> list[str]:
        """The modules a snippet can import here (for the agent's prompt)."""
        return sorted((MONTY_MODULES - OS_STUBS) | set(self.host_modules))

    # -- Executor protocol ---------------------------------------------------------------

    async def start(self, functions: Mapping[str, HostFunction]) -> None:
        """Open a fresh session in which `functions` (sync or async) are callable by name."""
        for name in functions:
            if not name.isidentifier():
                raise ConfigurationError(f"Host function name {name!r} is not a Python identifier.")
        # final_answer is the executor's own: it ends the snippet, so a tool of that name is ignored.
        self._functions = {k: v for k, v in functions.items() if k != "final_answer"}
        self._variables = {}
        self._rewriter = SessionRewriter()
        await self._close_session()
        if self._pool is None:
            self._pool = await _open_pool()
        await self._open_session()

    async def send_variables(self, variables: Mapping[str, Any]) -> None:
        """Bind `variables` as globals now; they are re-bound if the session is restarted."""
        values = {}
        for name, value in variables.items():
            try:
                values[name] = to_sandbox(value)
            except TypeError as exc:
                message = f"Variable {name!r} cannot be sent into the Monty sandbox: {exc}"
                raise ConfigurationError(message) from None
        async with self._lock:
            self._variables.update(values)
            await self._bind(values)

    async def run(self, code: str) -> CodeOutput:
        """Run one snippet. Snippet errors and limits come back in `CodeOutput.error`."""
        async with self._lock:
            return await self._run(code)

    async def _run(self, code: str) -> CodeOutput:
        import pydantic_monty as pm  # imported on first use, so `import codeloop` stays light

        restarted = await self._ensure_session()
        state = _Run(output=pm.CollectString(max_bytes=self._output_cap))
        try:
            value = await self._execute(code, state)
        except BaseException as exc:
            outcome = await self._outcome_of_error(exc, state, restarted)
            if outcome.error is not None and outcome.error.limit is not None:
                await self._helper.close()  # a stopped action's host-side helper stops with it
            return outcome
        finally:
            for task in state.tasks.values():
                task.cancel()
        if state.final:
            return await self._final_output(state, restarted)
        if state.stopped is not None:
            return CodeOutput(logs=self._logs(state, restarted), error=state.stopped)
        output = await _bounded_output(value)
        return CodeOutput(output=output, logs=self._logs(state, restarted))

    async def close(self) -> None:
        """End the session and stop the worker pool and the helper process."""
        await self._close_session()
        await self._helper.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.__aexit__(None, None, None)

    # -- session lifecycle -----------------------------------------------------------------

    async def _open_session(self) -> None:
        import pydantic_monty as pm

        limits = self.limits
        modules = {name: pm.ExternalModule(attrs) for name, attrs in self.host_modules.items()}
        checkout = self._pool.checkout(
            limits={
                "max_feed_duration_secs": limits.timeout_s,
                "max_memory": limits.memory_bytes,
                "max_recursion_depth": limits.max_recursion_depth,
                "max_suspensions": 1_000_000_000,
            },
            os_policy={"sleep": "zero"},
            external_modules=modules,
        )
        self._inputs = Inputs()
        self._session = await checkout.__aenter__()
        self._needs_restart = False
        if self._variables:
            await self._bind(self._variables)

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):  # a crashed or abandoned session may refuse a clean exit
                await session.__aexit__(None, None, None)

    async def _restart(self) -> None:
        await self._close_session()
        try:
            await self._open_session()
        except Exception as exc:
            raise ExecutorError(f"The Monty sandbox could not be restarted: {exc}") from exc

    async def _ensure_session(self) -> bool:
        """Make sure a usable session exists; True when one had to be restarted."""
        if self._pool is None:
            raise ExecutorError("MontyExecutor.start() must be called before run().")
        if self._session is not None and not self._needs_restart:
            return False
        await self._restart()
        return True

    async def _bind(self, values: Mapping[str, Any]) -> None:
        if self._session is None:
            raise ExecutorError("MontyExecutor.start() must be called before send_variables().")
        self._inputs.add("None")
        try:
            await self._session.feed_start("None", inputs=dict(values))
        except Exception as exc:
            self._inputs.drop_last()
            raise ConfigurationError(f"Variables cannot be sent into the Monty sandbox: {exc}") from exc

    # -- driving one snippet ---------------------------------------------------------------

    async def _execute(self, code: str, state: _Run) -> Any:
        import pydantic_monty as pm

        stubs = {name: _stub(name) for name in (*self._functions, "final_answer")}
        fed = self._rewriter.rewrite(code)
        if fed != code and self._inputs.prelude is None:
            await self._load_prelude()
        self._inputs.add(fed, code)
        start = self._session.feed_start(fed, inputs=stubs, print_callback=state.output)
        snap = await self._timed(state, start)
        while not isinstance(snap, pm.MontyComplete):
            if state.busy_s > 2 * self.limits.timeout_s + 0.5:  # the sandbox clock excludes round trips
                raise _Stuck
            snap = await self._answer(snap, state)
        return snap.output

    async def _load_prelude(self) -> None:
        """Define the helpers that rewritten snippets call (sandbox code; once per session)."""
        import pydantic_monty as pm

        self._inputs.add(PRELUDE)
        try:
            await self._session.feed_start(PRELUDE)
        except pm.MontyError as exc:
            raise ExecutorError(f"The Monty sandbox refused codeloop's helper definitions: {exc}") from exc
        self._inputs.prelude = self._inputs.current

    async def _timed(self, state: _Run, step: Awaitable[Snapshot]) -> Snapshot:
        started = time.monotonic()
        try:
            return await step
        finally:
            state.busy_s += time.monotonic() - started

    async def _answer(self, snap: Snapshot, state: _Run) -> Snapshot:
        import pydantic_monty as pm

        if isinstance(snap, pm.AsyncNameLookupSnapshot):
            return await self._timed(state, snap.resume())  # an undefined name: NameError
        if isinstance(snap, pm.AsyncFutureSnapshot):
            return await self._settle(snap, state)
        assert isinstance(snap, pm.AsyncFunctionSnapshot)
        if snap.is_os_function:
            if snap.function_name == "import" and snap.args and snap.args[0] in self.host_modules:
                return await self._timed(state, snap.resume_auto())
            return await self._timed(state, snap.resume_not_handled())  # no files, env, network...
        return await self._call(snap, state)

    async def _call(self, snap: pm.AsyncFunctionSnapshot, state: _Run) -> Snapshot:
        name = str(snap.function_name)
        if not state.final and _holds_generator((*snap.args, *snap.kwargs.values())):
            refusal = TypeError(f"a generator cannot be passed to {name}(): pass list(...) of it instead")
            return await self._timed(state, snap.resume({"exception": refusal}))
        if state.stopped is not None:
            return await self._timed(state, snap.resume(cast("Any", _stop_signal(state.stopped))))
        if state.final or name == "final_answer":
            if not state.final:
                state.final, state.final_logs = True, len(state.output.output)
                state.final_value = snap.args[0] if snap.args else snap.kwargs.get("answer")
            return await self._timed(state, snap.resume(cast("Any", FINAL_SIGNAL)))  # unwinds the snippet
        function = self._functions.get(name)
        if function is None and not self._is_host_module_function(name):
            error = NameError(f"name '{name}' is not defined")
            return await self._timed(state, snap.resume({"exception": error}))
        call = (
            self._invoke(name, function, snap.args, snap.kwargs, state)
            if function is not None
            else self._compute(name, snap.args, snap.kwargs, state)
        )
        if self._awaited(snap):
            state.tasks[snap.call_id] = asyncio.ensure_future(call)
            return await self._timed(state, snap.resume({"future": ...}))
        result = await call
        return await self._deliver(state, snap.resume, result, {"exception": unconvertible(f"{name}()")})

    def _is_host_module_function(self, name: str) -> bool:
        module, _, attr = name.partition(".")
        return callable(self.host_modules.get(module, {}).get(attr))

    def _awaited(self, snap: pm.AsyncFunctionSnapshot) -> bool:
        """Whether the snippet awaits this call (then it gets a future, so calls can overlap)."""
        if snap.allow_eager_await:
            return True
        number = snap.position.filename.removeprefix("<python-input-").removesuffix(">")
        if not number.isdigit() or int(number) >= len(self._inputs.fed):
            return False
        source = self._inputs.fed[int(number)]
        before = source[: snap.position.start].decode(errors="replace")
        return _AWAITED.search(before) is not None

    async def _settle(self, snap: pm.AsyncFutureSnapshot, state: _Run) -> Snapshot:
        ids = snap.pending_call_ids
        if state.final or state.stopped is not None:
            signal = FINAL_SIGNAL if state.final else _stop_signal(state.stopped)
            return await self._timed(state, snap.resume({i: cast("Any", signal) for i in ids}))
        waiting = [state.tasks[i] for i in ids if i in state.tasks]
        if waiting:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        results: dict[int, dict[str, Any]] = {}
        for i in ids:
            task = state.tasks.get(i)
            if task is None:
                results[i] = {"exception": RuntimeError("the host lost track of this call")}
            elif task.done():
                results[i] = state.tasks.pop(i).result()
        refused = {i: {"exception": unconvertible("a tool")} for i in results}
        return await self._deliver(state, snap.resume, results, refused)

    async def _deliver(
        self, state: _Run, resume: Callable[[Any], Awaitable[Snapshot]], answer: Any, refusal: Any
    ) -> Snapshot:
        """Resume with `answer`; if Monty cannot convert it, the suspension is still waiting, so
        answer with `refusal` (a TypeError) instead."""
        import pydantic_monty as pm

        try:
            return await self._timed(state, resume(answer))
        except pm.MontyRuntimeError as exc:
            try:
                return await self._timed(state, resume(refusal))
            except RuntimeError:  # "already resumed": the error came from the snippet itself
                raise exc from None

    async def _invoke(
        self, name: str, function: HostFunction, args: tuple[Any, ...], kwargs: dict[str, Any], state: _Run
    ) -> dict[str, Any]:
        """Call a host function; the answer for the sandbox is a return value or an exception.
        Arguments a path-by-path walk would visit past the caps of `within_value_caps` are refused first,
        so neither validation nor the tool expands a structure of shared parts."""
        try:
            await within_value_caps((*args, *kwargs.values()))
        except TooLarge as exc:
            return {"exception": TypeError(f"{name}(): the arguments are too large: {exc}")}
        try:
            value = function(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
            return {"return_value": await to_sandbox_async(value, name)}
        except Exception as exc:
            return sandbox_exception(exc, state.host_errors)

    async def _compute(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], state: _Run
    ) -> dict[str, Any]:
        """Call a host-module function in the helper process, within the action's time left."""
        budget = self.limits.timeout_s - state.busy_s - state.helper_s
        started = time.monotonic()
        try:
            return {"return_value": await self._helper.call(name, args, kwargs, budget)}
        except HelperError as exc:
            return foreign_exception(exc.kind, exc.base, exc.message, state.host_errors)
        except TooLarge:
            detail = f"over {MAX_HOST_MODULE_ARG} items and characters, shared parts counted each time"
            return {"exception": ValueError(f"{name}(): arguments too large ({detail})")}
        except TypeError as exc:
            return {"exception": TypeError(f"{name}(): {exc}")}
        except HelperLimit as exc:
            failure = self._limit(exc.limit)
            state.stopped = dataclasses.replace(failure, message=f"{failure.message} ({exc})")
            return _stop_signal(state.stopped)
        finally:
            state.helper_s += time.monotonic() - started

    # -- outcomes --------------------------------------------------------------------------

    async def _final_output(self, state: _Run, restarted: bool) -> CodeOutput:
        logs = truncate_output(state.output.output[: state.final_logs], self.limits.max_output_chars)
        prefix = _restart_note() if restarted else ""
        too_large = "the final answer is too large to return"
        answer = await _bounded_output(state.final_value, too_large)
        return CodeOutput(output=answer, logs=prefix + logs, is_final_answer=True)

    def _logs(self, state: _Run, restarted: bool) -> str:
        logs = truncate_output(state.output.output, self.limits.max_output_chars)
        return (_restart_note() if restarted else "") + logs

    async def _outcome_of_error(self, exc: BaseException, state: _Run, restarted: bool) -> CodeOutput:
        import pydantic_monty as pm

        if not isinstance(exc, pm.MontyError | _Stuck):
            self._needs_restart = True  # cancelled or a host-side failure: the snippet is mid-flight
            await asyncio.shield(self._close_session())  # it stops now, not at the next action
            if isinstance(exc, Exception) and not isinstance(exc, ExecutorError):
                raise ExecutorError(f"The Monty sandbox failed: {exc}") from exc
            raise exc
        failure, restart = self._failure(exc, state)
        restart = restart or self._session is None or self._session.worker_pid is None  # worker gone
        if restart:
            await self._restart()
            failure = dataclasses.replace(failure, state_lost=True)
        if state.final:
            return await self._final_output(state, restarted or restart)
        if state.stopped is not None and not restart:
            stopped = state.stopped
            failure = self._inputs.located(stopped, exc) if isinstance(exc, pm.MontyRuntimeError) else stopped
        return CodeOutput(logs=self._logs(state, restarted), error=failure)

    def _failure(self, exc: BaseException, state: _Run) -> tuple[ExecutionFailure, bool]:
        """Describe `exc` for the model; also say whether the session must be restarted."""
        import pydantic_monty as pm

        if isinstance(exc, _Stuck):
            return self._limit("timeout_s"), True
        if isinstance(exc, pm.MontyCrashedError):
            limit = "timeout_s" if exc.timed_out else "memory_bytes" if "memory" in str(exc) else None
            crash = ExecutionFailure("RuntimeError", f"the sandbox process died ({exc}).")
            return (self._limit(limit) if limit else crash), True
        if isinstance(exc, pm.MontySyntaxError):
            return self._syntax_failure(exc), False
        if not isinstance(exc, pm.MontyRuntimeError):  # a remote worker went away, and the like
            return ExecutionFailure("RuntimeError", f"the sandbox stopped unexpectedly ({exc})."), True
        return self._runtime_failure(exc, state)

    def _syntax_failure(self, exc: pm.MontySyntaxError) -> ExecutionFailure:
        stack = frames(exc)
        failure = self._inputs.with_frame(
            ExecutionFailure("SyntaxError", str(exc)), stack[-1] if stack else None
        )
        message = syntax_hint(failure.message, failure.source_line, ", ".join(self.importable_modules))
        return dataclasses.replace(failure, message=message)

    def _runtime_failure(self, exc: pm.MontyRuntimeError, state: _Run) -> tuple[ExecutionFailure, bool]:
        inner = exc.exception()
        kind, message = type(inner).__name__, str(inner)
        limit = which_limit(kind, message, self._output_cap)
        if limit == "max_output_chars" and state.busy_s < self.limits.timeout_s:
            return self._limit(limit), False  # printing past the cap only drops output; the code ran on
        if limit is not None:
            failure = self._inputs.located(self._limit(limit), exc)
            failure = dataclasses.replace(failure, message=failure.message + limit_hint(failure.source_line))
            return failure, limit in ("timeout_s", "max_output_chars")
        kind, message = state.host_errors.get(message, (kind, message))
        context = HintContext(", ".join(self.importable_modules), frozenset(self._rewriter.dunders))
        return self._inputs.located(ExecutionFailure(kind, with_hint(kind, message, context)), exc), False

    def _limit(self, limit: str) -> ExecutionFailure:
        return limit_failure(self.limits, limit, f"{self._output_cap} bytes")


# -- helpers ---------------------------------------------------------------------------------


async def _open_pool() -> Any:
    import pydantic_monty as pm

    pool = pm.AsyncMonty(min_processes=1, max_processes=2, max_checkouts_per_worker=1)
    try:
        await pool.__aenter__()
    except Exception as exc:
        raise ExecutorError(f"The Monty sandbox could not start: {exc}") from exc
    return pool


def _stub(name: str) -> Callable[..., Any]:
    """A placeholder bound in the sandbox; Monty reports calls to it by its `__name__`."""

    def stub(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("host function stubs are never called directly")

    stub.__name__ = stub.__qualname__ = name
    return stub


def _holds_generator(values: Sequence[Any], nested: bool = True) -> bool:
    """Whether a lazy generator object (the rewriter's, see rewrite.py) is among `values` or in a
    small container among them: it is sandbox state that cannot reach the host, as a generator
    cannot leave CPython's jail either. Bounded work: big containers are not searched."""
    import pydantic_monty as pm

    for value in values:
        if isinstance(value, pm.MontyClassProxy) and value.name == GENERATOR_CLASS:
            return True
        if nested and isinstance(value, list | tuple | dict) and len(value) <= 64:
            inner = list(value.values()) if isinstance(value, dict) else list(value)
            if _holds_generator(inner, nested=False):
                return True
    return False


def _stop_signal(failure: ExecutionFailure | None) -> dict[str, Any]:
    """The answer to every host call once a limit fired in the helper: unwinds the snippet past
    `except Exception`, as `FINAL_SIGNAL` does."""
    detail = failure.message if failure is not None else "a limit fired"
    return {"exc_type": "SystemExit", "message": f"this code action was stopped: {detail}"}


async def within_value_caps(roots: Sequence[Any]) -> None:
    """TooLarge unless a path-by-path walk of `roots` stays within the jail's bounds for values
    leaving a sandbox: `VALUE_NODE_BUDGET` items and `MAX_LINE_BYTES` items plus characters.
    Values from Monty keep shared parts, so a small one can be huge as a tree."""
    await within_cap(roots, VALUE_NODE_BUDGET)
    await within_cap(roots, MAX_LINE_BYTES, text=True)


async def _bounded_output(value: Any, note: str = "the value is too large to return") -> Any:
    """`value`, or a note in its place when a walk of it (repr, JSON, a copy) would pass the caps."""
    try:
        await within_value_caps([value])
    except TooLarge as exc:
        return f"[{note}: {exc}; print a summary instead]"
    return value


def _restart_note() -> str:
    return "[The sandbox was restarted: variables and functions from earlier steps are gone.]\n"
