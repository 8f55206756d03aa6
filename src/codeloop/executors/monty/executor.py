"""MontyExecutor: drives one Monty session per executor; see the package docstring for guarantees.

The executor keeps the session's contract (start, variables, runs, restarts, close) and the host
side of calls; `sandbox.py` holds the session's worker, `driver.py` drives a snippet through its
suspensions and `outcomes.py` describes how it ended.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ConfigurationError, ExecutorError
from ..base import CodeOutput, ExecutorLimits, HostFunction
from .driver import RunState, SnippetDriver, Stuck, stop_signal
from .helper import HelperError, HelperLimit, HostHelper, SharedHelper
from .hints import HintContext
from .modules import HOST_MODULES, MAX_HOST_MODULE_ARG, MONTY_MODULES, OS_STUBS, check_imports
from .outcomes import Outcomes, bounded_output, final_output, logs_of, within_value_caps
from .pool import MontyPool
from .pooled import PooledSandbox
from .rewrite import SessionRewriter
from .sandbox import DedicatedSandbox, Sandbox
from .values import foreign_exception, sandbox_exception, to_sandbox, to_sandbox_async
from .walk import TooLarge

__all__ = ["MontyExecutor", "within_value_caps"]


class MontyExecutor:
    """Runs snippets in a Monty sandbox session; see the module docstring for the guarantees.

    `additional_authorized_imports` keeps smolagents' meaning where Monty can follow it: the
    modules in `MONTY_MODULES` (minus the os/pathlib/sys stubs) and `HOST_MODULES` are importable
    anyway, so naming them is accepted; any other name (numpy, os, "*") raises
    `ConfigurationError`. `host_modules=False` withholds the host-implemented modules.

    By default the session is pooled: it borrows a worker of `pool` (the process-wide
    `shared_pool()` unless given) for each code action and keeps its state in this process in
    between (`pooled.py`), and shares the helper processes of host modules (`helper.py`).
    `pooled=False` gives the session a worker process and a helper process of its own instead.
    """

    def __init__(
        self,
        limits: ExecutorLimits | None = None,
        additional_authorized_imports: Sequence[str] = (),
        *,
        host_modules: bool = True,
        pooled: bool = True,
        pool: MontyPool | None = None,
    ) -> None:
        self.limits = limits or ExecutorLimits()
        self.host_modules = dict(HOST_MODULES) if host_modules else {}
        check_imports(additional_authorized_imports, self.host_modules)
        self.additional_authorized_imports = tuple(additional_authorized_imports)
        self._functions: dict[str, HostFunction] = {}
        self._variables: dict[str, Any] = {}
        if pool is not None and not pooled:
            raise ConfigurationError("A Monty pool was given with pooled=False: pass one or the other.")
        self.pooled = pooled
        self._sandbox: Sandbox = (
            PooledSandbox(self.limits, self.host_modules, pool)
            if pooled
            else DedicatedSandbox(self.limits, self.host_modules)
        )
        self._rewriter = SessionRewriter()
        self._output_cap = max(1_000_000, 20 * self.limits.max_output_chars)
        reply_cap = max(1_000_000, self.limits.memory_bytes // 4)
        helper = SharedHelper if pooled else HostHelper
        self._helper: HostHelper | SharedHelper = helper(
            self.limits.memory_bytes, reply_cap, MAX_HOST_MODULE_ARG
        )
        self._lock = asyncio.Lock()  # one snippet at a time per session

    @property
    def worker_pid(self) -> int | None:
        """The worker process running this session's code now, or that ran its last action
        (diagnostics and tests; None before the first action)."""
        if isinstance(self._sandbox, PooledSandbox):
            return self._sandbox.worker_pid
        session = self._sandbox.session
        return session.worker_pid if session is not None else None

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
        await self._sandbox.close_session()
        await self._sandbox.open(self._variables)

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
            await self._sandbox.bind(values)

    async def run(self, code: str) -> CodeOutput:
        """Run one snippet. Snippet errors and limits come back in `CodeOutput.error`."""
        async with self._lock:
            return await self._run(code)

    async def _run(self, code: str) -> CodeOutput:
        import pydantic_monty as pm  # imported on first use, so `import codeloop` stays light

        restarted = await self._ensure_session()
        state = RunState(output=pm.CollectString(max_bytes=self._output_cap))
        driver = SnippetDriver(self._sandbox, self._functions, self.host_modules, self.limits, self)
        try:
            async with self._sandbox.action():
                value = await driver.execute(self._rewriter.rewrite(code), code, state)
        except BaseException as exc:
            outcome = await self._outcome_of_error(exc, state, restarted)
            if outcome.error is not None and outcome.error.limit is not None:
                await self._helper.stop()  # a stopped action's host-side helper stops with it
            return outcome
        finally:
            for task in state.tasks.values():
                task.cancel()
        if state.final:
            return await final_output(state, self.limits, restarted)
        if state.stopped is not None:
            return CodeOutput(logs=logs_of(state, self.limits, restarted), error=state.stopped)
        output = await bounded_output(value)
        return CodeOutput(output=output, logs=logs_of(state, self.limits, restarted))

    async def close(self) -> None:
        """End the session and stop its worker and the helper process."""
        await self._sandbox.close()
        await self._helper.close()

    # -- session lifecycle -----------------------------------------------------------------

    async def _restart(self) -> None:
        await self._sandbox.close_session()
        try:
            await self._sandbox.open(self._variables)
        except Exception as exc:
            raise ExecutorError(f"The Monty sandbox could not be restarted: {exc}") from exc

    async def _ensure_session(self) -> bool:
        """Make sure a usable session exists; True when one had to be restarted."""
        if not self._sandbox.started:
            raise ExecutorError("MontyExecutor.start() must be called before run().")
        if self._sandbox.ready:
            return False
        await self._restart()
        return True

    # -- host calls (driver.HostCalls) -------------------------------------------------------

    async def invoke(
        self,
        name: str,
        function: HostFunction,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        state: RunState,
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

    async def compute(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], state: RunState
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
            failure = self._outcomes().limit(exc.limit)
            state.stopped = dataclasses.replace(failure, message=f"{failure.message} ({exc})")
            return stop_signal(state.stopped)
        finally:
            state.helper_s += time.monotonic() - started

    # -- outcomes --------------------------------------------------------------------------

    def _outcomes(self) -> Outcomes:
        hints = HintContext(", ".join(self.importable_modules), frozenset(self._rewriter.dunders))
        return Outcomes(self.limits, self._output_cap, self._sandbox.inputs, hints)

    async def _outcome_of_error(self, exc: BaseException, state: RunState, restarted: bool) -> CodeOutput:
        import pydantic_monty as pm

        if not isinstance(exc, pm.MontyError | Stuck):
            self._sandbox.needs_restart = True  # cancelled or a host-side failure: the snippet is mid-flight
            await asyncio.shield(self._sandbox.close_session())  # it stops now, not at the next action
            if isinstance(exc, Exception) and not isinstance(exc, ExecutorError):
                raise ExecutorError(f"The Monty sandbox failed: {exc}") from exc
            raise exc
        outcomes = self._outcomes()
        failure, restart = outcomes.failure(exc, state)
        restart = restart or self._sandbox.lost  # the worker is gone
        if restart:
            await self._restart()
            failure = dataclasses.replace(failure, state_lost=True)
        if state.final:
            return await final_output(state, self.limits, restarted or restart)
        if state.stopped is not None and not restart:
            stopped = state.stopped
            if isinstance(exc, pm.MontyRuntimeError):
                stopped = outcomes.inputs.located(stopped, exc)
            failure = stopped
        return CodeOutput(logs=logs_of(state, self.limits, restarted), error=failure)
