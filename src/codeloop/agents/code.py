"""The CodeAgent: actions are Python snippets run in a sandboxed executor."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import AgentExecutionError, ConfigurationError
from ..events import ActionOutput, CodeAction, Event, Observation
from ..executors import create_executor
from ..executors.base import Executor, ExecutorLimits, HostFunction
from ..memory import ActionStep
from ..messages import ToolCall
from ..models.base import Model
from ..parsing import extract_code
from ..tools import Tool
from .base import MultiStepAgent
from .executor_types import LOCAL_NOTE, executor_from_type
from .run import Run, short_repr

__all__ = ["CodeAgent"]

_NEWLINE = "\n"


class CodeAgent(MultiStepAgent):
    """An agent whose actions are Python snippets, run in a sandboxed executor.

    `executor` is a name (`"monty"`, the default, a secure sandbox), an `Executor` instance, or
    a zero-argument factory returning one. `executor_type` takes smolagents' names instead
    (see `codeloop.agents.executor_types`: its `"local"` runs in Monty). Variables persist
    across the steps of a run, and across runs with `reset=False`.
    """

    prompt_name = "code_agent"
    stop_sequences: ClassVar[list[str] | None] = ["Observation:"]

    def __init__(
        self,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        model: Model | None = None,
        *,
        executor: str | Executor | Callable[[], Executor] | None = None,
        executor_type: str | None = None,
        executor_kwargs: Mapping[str, Any] | None = None,
        additional_authorized_imports: Sequence[str] = (),
        max_print_outputs_length: int | None = None,
        executor_limits: ExecutorLimits | None = None,
        **kwargs: Any,
    ) -> None:
        self.additional_authorized_imports = list(additional_authorized_imports)
        limits = executor_limits or ExecutorLimits()
        if max_print_outputs_length is not None:
            limits = dataclasses.replace(limits, max_output_chars=max_print_outputs_length)
        if executor_type is not None:
            if executor is not None:
                raise ConfigurationError("Pass executor= or executor_type= (smolagents' name), not both.")
            executor, executor_kwargs, limits = executor_from_type(executor_type, executor_kwargs, limits)
        executor = "monty" if executor is None else executor
        self.executor_type: str | None = executor if isinstance(executor, str) else None
        """The name of the codeloop executor that runs the code (None for an instance or factory)."""
        self._make_executor = _executor_factory(
            executor, executor_kwargs, limits, self.additional_authorized_imports
        )
        probe = _probe(self._make_executor, executor_type)  # fail now on a bad name or option
        self.importable_modules: list[str] = list(
            getattr(probe, "importable_modules", None) or self.additional_authorized_imports
        )
        self._session: Executor | None = None
        super().__init__(tools, model, **kwargs)

    async def _open_executor(
        self, run: Run, *, fresh: bool, variables: Mapping[str, Any] | None = None
    ) -> None:
        if fresh or self._session is None:
            await self.aclose()
            self._session = self._make_executor()
            await self._session.start(self._host_functions())
        if variables:
            await self._session.send_variables(dict(variables))
        run.executor = self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _act(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        assert run.executor is not None
        step.code_action = code = extract_code(step.model_output)
        # smolagents records a code action as a call of its python_interpreter tool
        step.tool_calls = (ToolCall(f"call_{step.step_number}", "python_interpreter", code),)
        yield CodeAction(agent=self.name, step=step.step_number, code=code)
        execution = self._spawn(run, run.executor.run(code))
        async for event in self._while_running(run, execution):
            yield event
        out = execution.result()
        step.observations = out.logs
        if out.logs:
            yield Observation(agent=self.name, step=step.step_number, text=out.logs)
        if out.error is not None:
            raise AgentExecutionError(out.error.describe())
        step.action_output = out.output
        if out.is_final_answer:
            await self._accept_final_answer(run, out.output)
            step.is_final_answer = True
        elif out.output is not None:
            step.observations += f"{_NEWLINE if out.logs else ''}Last output: {short_repr(out.output)}"
            yield ActionOutput(agent=self.name, step=step.step_number, output=out.output)

    def _host_functions(self) -> dict[str, HostFunction]:
        return {name: _off_the_loop(t.as_host_function()) for name, t in self.tools.items()}

    def _prompt_values(self) -> dict[str, Any]:
        return {
            **super()._prompt_values(),
            "stubs": [t.to_code_prompt() for t in self.tools.values()],
            "imports": ", ".join(self.importable_modules),
            "authorized_imports": str(sorted(self.importable_modules)),
            "code_block_opening_tag": "```python",
            "code_block_closing_tag": "```",
        }


def _executor_factory(
    executor: str | Executor | Callable[[], Executor],
    kwargs: Mapping[str, Any] | None,
    limits: ExecutorLimits,
    imports: Sequence[str],
) -> Callable[[], Executor]:
    if isinstance(executor, str):
        options = {"limits": limits, "additional_authorized_imports": imports, **(kwargs or {})}
        return lambda: create_executor(executor, **options)
    if isinstance(executor, Executor):
        return lambda: executor
    if callable(executor):
        return executor
    raise ConfigurationError(
        f"executor must be a name, an Executor or a factory, not {type(executor).__name__}."
    )


def _probe(make: Callable[[], Executor], executor_type: str | None) -> Executor:
    try:
        return make()
    except ConfigurationError as exc:
        if executor_type != "local":
            raise
        raise ConfigurationError(f"{exc} {LOCAL_NOTE}") from exc


def _off_the_loop(function: Callable[..., Any]) -> HostFunction:
    """Sync tools called from code run in a worker thread, so they never block other runs."""
    if inspect.iscoroutinefunction(function):
        return function

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, *args, **kwargs)

    call.__name__ = function.__name__
    return call
