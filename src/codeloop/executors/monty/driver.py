"""Driving one snippet through Monty's suspensions: host calls, imports, futures, final_answer.

`SnippetDriver` answers each snapshot Monty hands back until the snippet completes. What it
calls on the host side (tools, host-module functions) comes from its `HostCalls`, so this module
knows the snapshot protocol and nothing about how a call is carried out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..base import ExecutionFailure, ExecutorLimits, HostFunction
from .rewrite import GENERATOR_CLASS
from .values import FINAL_SIGNAL, unconvertible

if TYPE_CHECKING:
    import pydantic_monty as pm

    from .sandbox import Sandbox

    Snapshot = (
        pm.AsyncFunctionSnapshot | pm.AsyncNameLookupSnapshot | pm.AsyncFutureSnapshot | pm.MontyComplete
    )

__all__ = ["HostCalls", "RunState", "SnippetDriver", "Stuck", "stop_signal"]

_AWAITED = re.compile(r"\bawait\s*\(*\s*$")


@dataclasses.dataclass
class RunState:
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


class Stuck(Exception):
    """The wall-clock backstop fired: the session is abandoned mid-snippet."""


class HostCalls(Protocol):
    """How the driver's host-side calls are carried out (the executor implements this)."""

    def invoke(
        self,
        name: str,
        function: HostFunction,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        state: RunState,
    ) -> Awaitable[dict[str, Any]]:
        """Call a host function (a tool); the answer for the sandbox."""
        ...

    def compute(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], state: RunState
    ) -> Awaitable[dict[str, Any]]:
        """Call a host-module function (in the helper process); the answer for the sandbox."""
        ...


@dataclasses.dataclass
class SnippetDriver:
    """Feeds one snippet to the sandbox's session and answers every suspension until it ends."""

    sandbox: Sandbox
    functions: Mapping[str, HostFunction]
    host_modules: Mapping[str, Any]
    limits: ExecutorLimits
    calls: HostCalls

    async def execute(self, fed: str, code: str, state: RunState) -> Any:
        """Run `fed` (the rewritten `code`) to completion; the value of its last expression."""
        import pydantic_monty as pm

        stubs = {name: _stub(name) for name in (*self.functions, "final_answer")}
        if fed != code and self.sandbox.inputs.prelude is None:
            await self.sandbox.load_prelude()
        self.sandbox.inputs.add(fed, code)
        start = self.sandbox.session.feed_start(fed, inputs=stubs, print_callback=state.output)
        snap = await self._timed(state, start)
        while not isinstance(snap, pm.MontyComplete):
            if state.busy_s > 2 * self.limits.timeout_s + 0.5:  # the sandbox clock excludes round trips
                raise Stuck
            snap = await self._answer(snap, state)
        return snap.output

    async def _timed(self, state: RunState, step: Awaitable[Snapshot]) -> Snapshot:
        started = time.monotonic()
        try:
            return await step
        finally:
            state.busy_s += time.monotonic() - started

    async def _answer(self, snap: Snapshot, state: RunState) -> Snapshot:
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

    async def _call(self, snap: pm.AsyncFunctionSnapshot, state: RunState) -> Snapshot:
        name = str(snap.function_name)
        if not state.final and _holds_generator((*snap.args, *snap.kwargs.values())):
            refusal = TypeError(f"a generator cannot be passed to {name}(): pass list(...) of it instead")
            return await self._timed(state, snap.resume({"exception": refusal}))
        if state.stopped is not None:
            return await self._timed(state, snap.resume(cast("Any", stop_signal(state.stopped))))
        if state.final or name == "final_answer":
            if not state.final:
                state.final, state.final_logs = True, len(state.output.output)
                state.final_value = snap.args[0] if snap.args else snap.kwargs.get("answer")
            return await self._timed(state, snap.resume(cast("Any", FINAL_SIGNAL)))  # unwinds the snippet
        function = self.functions.get(name)
        if function is None and not self._is_host_module_function(name):
            error = NameError(f"name '{name}' is not defined")
            return await self._timed(state, snap.resume({"exception": error}))
        call = (
            self.calls.invoke(name, function, snap.args, snap.kwargs, state)
            if function is not None
            else self.calls.compute(name, snap.args, snap.kwargs, state)
        )
        if self._awaited(snap):
            state.tasks[snap.call_id] = asyncio.ensure_future(call)
            return await self._timed(state, snap.resume({"future": ...}))
        snap, result = await self.sandbox.wait(snap, state.output, call)
        return await self._deliver(state, snap.resume, result, {"exception": unconvertible(f"{name}()")})

    def _is_host_module_function(self, name: str) -> bool:
        module, _, attr = name.partition(".")
        return callable(self.host_modules.get(module, {}).get(attr))

    def _awaited(self, snap: pm.AsyncFunctionSnapshot) -> bool:
        """Whether the snippet awaits this call (then it gets a future, so calls can overlap)."""
        if snap.allow_eager_await:
            return True
        number = snap.position.filename.removeprefix("<python-input-").removesuffix(">")
        fed = self.sandbox.inputs.fed
        if not number.isdigit() or int(number) >= len(fed):
            return False
        before = fed[int(number)][: snap.position.start].decode(errors="replace")
        return _AWAITED.search(before) is not None

    async def _settle(self, snap: pm.AsyncFutureSnapshot, state: RunState) -> Snapshot:
        ids = snap.pending_call_ids
        if state.final or state.stopped is not None:
            signal = FINAL_SIGNAL if state.final else stop_signal(state.stopped)
            return await self._timed(state, snap.resume({i: cast("Any", signal) for i in ids}))
        waiting = [state.tasks[i] for i in ids if i in state.tasks]
        if waiting:
            first = asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            snap, _ = await self.sandbox.wait(snap, state.output, first)
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
        self, state: RunState, resume: Callable[[Any], Awaitable[Snapshot]], answer: Any, refusal: Any
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


def stop_signal(failure: ExecutionFailure | None) -> dict[str, Any]:
    """The answer to every host call once a limit fired in the helper: unwinds the snippet past
    `except Exception`, as `FINAL_SIGNAL` does."""
    detail = failure.message if failure is not None else "a limit fired"
    return {"exc_type": "SystemExit", "message": f"this code action was stopped: {detail}"}
