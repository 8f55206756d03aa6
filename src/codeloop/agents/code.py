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
from ..models.base import Model
from ..parsing import extract_code
from ..tools import Tool
from .base import MultiStepAgent, Run, short_repr

__all__ = ["CodeAgent"]

_NEWLINE = "\n"


class CodeAgent(MultiStepAgent):
    """An agent whose actions are Python snippets, run in a sandboxed executor.

    `executor` is a name (`"monty"`, the default, a secure sandbox), an `Executor` instance, or
    a zero-argument factory returning one. Variables persist across the steps of a run, and
    across runs with `reset=False`.
    """

    prompt_name = "code_agent"
    stop_sequences: ClassVar[list[str] | None] = ["Observation:"]

    def __init__(
        self,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        model: Model | None = None,
        *,
        executor: str | Executor | Callable[[], Executor] = "monty",
        executor_kwargs: Mapping[str, Any] | None = None,
        additional_authorized_imports: Sequence[str] = (),
        max_print_outputs_length: int | None = None,
        executor_limits: ExecutorLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(tools, model, **kwargs)
        self.additional_authorized_imports = list(additional_authorized_imports)
        limits = executor_limits or ExecutorLimits()
        if max_print_outputs_length is not None:
            limits = dataclasses.replace(limits, max_output_chars=max_print_outputs_length)
        self._make_executor = _executor_factory(
            executor, executor_kwargs, limits, self.additional_authorized_imports
        )
        probe = self._make_executor()  # fail now, not at the first run, on a bad name or option
        self.importable_modules: list[str] = list(
            getattr(probe, "importable_modules", None) or self.additional_authorized_imports
        )
        self._session: Executor | None = None

    async def _start_run(
        self, task: str, reset: bool, images: Any, additional_args: Any, max_steps: Any
    ) -> Run:
        run = await super()._start_run(task, reset, images, additional_args, max_steps)
        if reset or self._session is None:
            await self.aclose()
            self._session = self._make_executor()
            await self._session.start(self._host_functions())
        if additional_args:
            await self._session.send_variables(dict(additional_args))
        run.executor = self._session
        return run

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _act(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        assert run.executor is not None
        step.code_action = code = extract_code(step.model_output)
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


def _off_the_loop(function: Callable[..., Any]) -> HostFunction:
    """Sync tools called from code run in a worker thread, so they never block other runs."""
    if inspect.iscoroutinefunction(function):
        return function

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, *args, **kwargs)

    call.__name__ = function.__name__
    return call
