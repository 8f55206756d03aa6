"""The agent loop.

One async engine, `astream`, drives every entry point: `arun` consumes it, `run` and `stream`
drive it from sync code. A run is:

    astream → loop → (plan) → step → query the model → act → observe → ... → RunFinished

`CodeAgent` acts by running the model's code in an executor; `ToolCallingAgent` acts by calling
tools. Errors the model can fix (`AgentError`) are recorded on the step and fed back; anything
else ends the run with a typed failure, leaving memory intact.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .._sync import iterate_sync, run_sync
from ..errors import (
    AgentError,
    ConfigurationError,
    FinalAnswerRejected,
    MaxStepsExceeded,
    ModelError,
    RunFailed,
)
from ..events import (
    Event,
    FinalAnswer,
    ModelDelta,
    ModelOutput,
    PlanReady,
    RunFinished,
    RunStarted,
    StepErrored,
    StepFinished,
)
from ..executors.base import Executor
from ..memory import (
    ActionStep,
    FinalAnswerStep,
    Memory,
    MemoryStep,
    PlanningStep,
    StepError,
    TaskStep,
    Timing,
)
from ..messages import ChatMessage, ImageContent, MessageDelta, Role
from ..models.base import Model, assemble_message, message_to_delta
from ..models.retry import RetryPolicy, with_retries
from ..prompts import render_prompt
from ..result import RunResult, RunState
from ..tools import Tool, tool
from .managed import ManagedAgentTool, with_event_sink

__all__ = ["MultiStepAgent"]

StepCallback = Callable[..., Any]
FinalAnswerCheck = Callable[..., Any]
EventHandler = Callable[[Event], Any]
T = TypeVar("T")


@dataclass
class Run:
    """The mutable state of one run. Agents hold configuration; runs hold state."""

    memory: Memory
    max_steps: int
    step_number: int
    executor: Executor | None = None
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    system_prompt: str = ""
    tool_schemas: list[dict[str, Any]] | None = None
    message: ChatMessage | None = None
    result: RunResult | None = None
    started: float = field(default_factory=time.time)
    steps_taken: int = 0


class MultiStepAgent:
    """Configuration shared by `CodeAgent` and `ToolCallingAgent`, and the loop itself."""

    prompt_name: ClassVar[str]

    def __init__(
        self,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        model: Model | None = None,
        *,
        max_steps: int = 20,
        instructions: str | None = None,
        planning_interval: int | None = None,
        managed_agents: Sequence[MultiStepAgent] = (),
        name: str | None = None,
        description: str | None = None,
        step_callbacks: Sequence[StepCallback] = (),
        final_answer_checks: Sequence[FinalAnswerCheck] = (),
        return_full_result: bool = False,
        stream_outputs: bool = True,
        event_handlers: Sequence[EventHandler] = (),
        verbosity_level: int = 0,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        if model is None:
            raise ConfigurationError(
                f"{type(self).__name__} needs a model, e.g. model=OpenAIModel('gpt-4o-mini')."
            )
        if max_steps < 1:
            raise ConfigurationError(f"max_steps must be at least 1, got {max_steps}.")
        if planning_interval is not None and planning_interval < 1:
            raise ConfigurationError(f"planning_interval must be at least 1, got {planning_interval}.")
        self.model = with_retries(model, retry_policy)  # see codeloop.models.retry for the default
        self.max_steps = max_steps
        self.instructions = instructions
        self.planning_interval = planning_interval
        self.name = name or type(self).__name__
        self.description = description
        self.step_callbacks = list(step_callbacks)
        self.final_answer_checks = list(final_answer_checks)
        self.return_full_result = return_full_result
        self.stream_outputs = stream_outputs
        self.event_handlers = list(event_handlers) + _renderers(verbosity_level)
        self.managed_agents = {a.name: a for a in managed_agents}
        self.tools = _collect_tools(tools, managed_agents)
        self.memory = Memory()

    # ---- public API -------------------------------------------------------------------------

    def run(
        self,
        task: str,
        *,
        stream: bool = False,
        reset: bool = True,
        images: Sequence[ImageContent] | None = None,
        additional_args: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        return_full_result: bool | None = None,
    ) -> Any:
        """Run the task to its end and return the answer (or a `RunResult`, see below).

        Without `return_full_result`, a run that ends without an answer raises `RunFailed`
        (`MaxStepsExceeded`, `ModelError`...), whose `.result` holds the full `RunResult`.
        With `stream=True`, returns the event iterator of `stream()` instead.
        """
        if stream:
            return self.stream(
                task, reset=reset, images=images, additional_args=additional_args, max_steps=max_steps
            )
        coro = self.arun(
            task,
            reset=reset,
            images=images,
            additional_args=additional_args,
            max_steps=max_steps,
            return_full_result=return_full_result,
        )
        return run_sync(coro)

    async def arun(
        self,
        task: str,
        *,
        reset: bool = True,
        images: Sequence[ImageContent] | None = None,
        additional_args: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        return_full_result: bool | None = None,
    ) -> Any:
        """The async form of `run`."""
        result: RunResult | None = None
        stream = self.astream(
            task, reset=reset, images=images, additional_args=additional_args, max_steps=max_steps
        )
        async for event in stream:
            if isinstance(event, RunFinished) and event.depth == 0:
                result = event.result
        assert result is not None  # astream always ends with RunFinished
        full = self.return_full_result if return_full_result is None else return_full_result
        return result if full else _answer_or_raise(result)

    def stream(
        self,
        task: str,
        *,
        reset: bool = True,
        images: Sequence[ImageContent] | None = None,
        additional_args: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
    ) -> Iterator[Event]:
        """Iterate the run's events from sync code."""
        return iterate_sync(
            self.astream(
                task, reset=reset, images=images, additional_args=additional_args, max_steps=max_steps
            )
        )

    async def astream(
        self,
        task: str,
        *,
        reset: bool = True,
        images: Sequence[ImageContent] | None = None,
        additional_args: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
    ) -> AsyncIterator[Event]:
        """The engine: run the task, yielding every event; the last one is `RunFinished`."""
        run = await self._start_run(task, reset, images, additional_args, max_steps)
        async for event in self._events(run, task):
            await self._dispatch(event)
            yield event

    def write_memory_to_messages(self) -> list[ChatMessage]:
        """The messages the model would see next for the current memory."""
        return self.memory.to_messages(self.system_prompt)

    @property
    def system_prompt(self) -> str:
        return render_prompt(self.prompt_name, **self._prompt_values())

    async def aclose(self) -> None:
        """Release the agent's resources (its executor session)."""

    def close(self) -> None:
        run_sync(self.aclose())

    def __enter__(self) -> MultiStepAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MultiStepAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- the loop ---------------------------------------------------------------------------

    async def _events(self, run: Run, task: str) -> AsyncIterator[Event]:
        yield RunStarted(agent=self.name, task=task)
        try:
            async for event in self._loop(run):
                yield event
        except Exception as exc:  # ends the run; memory stays as it is
            self._finish(run, RunState.ERROR, error=_describe_failure(exc), exception=exc)
        assert run.result is not None
        if run.result.succeeded:
            yield FinalAnswer(agent=self.name, step=run.step_number - 1, output=run.result.output)
        yield RunFinished(agent=self.name, result=run.result)

    async def _loop(self, run: Run) -> AsyncIterator[Event]:
        while run.result is None:
            if run.steps_taken >= run.max_steps:
                self._finish(
                    run,
                    RunState.MAX_STEPS,
                    error=f"Reached max_steps={run.max_steps} without a final answer.",
                )
                return
            if self._planning_due(run):
                async for event in self._plan(run):
                    yield event
            async for event in self._step(run):
                yield event

    async def _step(self, run: Run) -> AsyncIterator[Event]:
        step = ActionStep(step_number=run.step_number)
        async for event in self._query(run, step):
            yield event
        run.memory.steps.append(step)
        try:
            async for event in self._act(run, step):
                yield event
        except AgentError as exc:
            step.error, step.is_final_answer = StepError.from_exception(exc), False
            yield StepErrored(agent=self.name, step=step.step_number, error=step.error)
        step.timing.end_time = time.time()
        run.step_number += 1
        run.steps_taken += 1
        await self._run_step_callbacks(step)
        yield StepFinished(agent=self.name, step=step.step_number, memory_step=step)
        if step.is_final_answer:
            run.memory.steps.append(FinalAnswerStep(output=step.action_output))
            self._finish(run, RunState.SUCCESS, output=step.action_output)

    async def _query(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        messages = run.memory.to_messages(run.system_prompt)
        async for event in self._ask(run, messages, stop=self.stop_sequences, tools=run.tool_schemas):
            yield event
        message = run.message
        assert message is not None
        step.model_output, step.reasoning, step.usage = message.content, message.reasoning, message.usage
        yield ModelOutput(agent=self.name, step=step.step_number, message=message)

    async def _plan(self, run: Run) -> AsyncIterator[Event]:
        first = not any(isinstance(s, PlanningStep) for s in run.memory.steps)
        request = ChatMessage(role=Role.USER, content=render_prompt("planning", first=first))
        step = PlanningStep(plan="")
        async for event in self._ask(run, [*run.memory.to_messages(run.system_prompt), request]):
            yield event
        assert run.message is not None
        step.plan, step.usage, step.timing.end_time = run.message.content, run.message.usage, time.time()
        run.memory.steps.append(step)
        yield PlanReady(agent=self.name, step=run.step_number, plan=step.plan)
        yield StepFinished(agent=self.name, step=run.step_number, memory_step=step)

    async def _ask(
        self,
        run: Run,
        messages: list[ChatMessage],
        stop: list[str] | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncIterator[Event]:
        """Query the model, yielding its deltas; the whole message lands in `run.message`.
        Any model failure becomes a `ModelError`."""
        deltas: list[MessageDelta] = []
        try:
            if self.stream_outputs:
                async for delta in self.model.astream(messages, stop=stop, tools=tools):
                    deltas.append(delta)
                    yield ModelDelta(agent=self.name, step=run.step_number, delta=delta)
            else:
                deltas.append(message_to_delta(await self.model.agenerate(messages, stop=stop, tools=tools)))
        except RunFailed:
            raise
        except Exception as exc:
            raise ModelError(f"The model call failed: {type(exc).__name__}: {exc}") from exc
        run.message = assemble_message(deltas)

    def _planning_due(self, run: Run) -> bool:
        return bool(self.planning_interval) and run.steps_taken % (self.planning_interval or 1) == 0

    async def _act(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        """Turn the model's message (`run.message`) into an action and observe it."""
        raise NotImplementedError
        yield  # pragma: no cover

    # ---- helpers shared by both agents ------------------------------------------------------

    async def _start_run(
        self,
        task: str,
        reset: bool,
        images: Sequence[ImageContent] | None,
        additional_args: Mapping[str, Any] | None,
        max_steps: int | None,
    ) -> Run:
        if reset:
            self.memory = Memory()
        self.memory.steps.append(TaskStep(task=_task_text(task, additional_args), images=tuple(images or ())))
        start = len(self.memory.action_steps()) + 1
        return Run(
            memory=self.memory,
            max_steps=max_steps or self.max_steps,
            step_number=start,
            system_prompt=self.system_prompt,
            tool_schemas=self._tool_schemas(),
        )

    @staticmethod
    def _spawn(run: Run, work: Awaitable[T]) -> asyncio.Future[T]:
        """Start `work` as a task in which managed sub-agents forward events to this run."""
        return asyncio.ensure_future(with_event_sink(run.events, work))

    async def _while_running(self, run: Run, task: asyncio.Future[Any]) -> AsyncIterator[Event]:
        """Wait for `task`, yielding the events that managed sub-agents forward meanwhile."""
        if not self.managed_agents:  # nothing can forward events: just wait
            await task
            return
        try:
            while not task.done() or not run.events.empty():
                getter = asyncio.ensure_future(run.events.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
        finally:
            task.cancel()  # the consumer stopped early: don't leave the work running
        task.result()  # re-raise what the task raised

    async def _accept_final_answer(self, run: Run, answer: Any) -> None:
        for check in self.final_answer_checks:
            name = getattr(check, "__name__", repr(check))
            try:
                accepted = await _maybe_await(_call_flexibly(check, answer, run.memory, agent=self))
            except Exception as exc:
                raise FinalAnswerRejected(f"Final answer {answer!r} rejected by {name}: {exc}") from exc
            if not accepted:
                raise FinalAnswerRejected(f"Final answer {answer!r} rejected by check {name}. Reconsider it.")

    async def _run_step_callbacks(self, step: MemoryStep) -> None:
        for callback in self.step_callbacks:
            await _maybe_await(_call_flexibly(callback, step, agent=self))

    async def _dispatch(self, event: Event) -> None:
        for handler in self.event_handlers:
            await _maybe_await(handler(event))

    def _finish(
        self,
        run: Run,
        state: RunState,
        *,
        output: Any = None,
        error: str | None = None,
        exception: Exception | None = None,
    ) -> None:
        run.result = RunResult(
            output=output,
            state=state,
            memory=run.memory,
            usage=run.memory.usage(),
            timing=_timing(run.started),
            error=error,
            exception=exception,
        )

    def _tool_schemas(self) -> list[dict[str, Any]] | None:
        return None

    def _prompt_values(self) -> dict[str, Any]:
        return {"instructions": self.instructions}

    stop_sequences: ClassVar[list[str] | None] = None


# ---- module helpers -------------------------------------------------------------------------


def _collect_tools(
    tools: Sequence[Tool | Callable[..., Any]], managed: Sequence[MultiStepAgent]
) -> dict[str, Tool]:
    collected: dict[str, Tool] = {}
    items: list[Tool | Callable[..., Any]] = [*tools, *(ManagedAgentTool(a) for a in managed)]
    for item in items:
        built = item if isinstance(item, Tool) else tool(item)
        if built.name == "final_answer":
            raise ConfigurationError("The name final_answer is reserved: the agent provides it.")
        if built.name in collected:
            raise ConfigurationError(
                f"Two tools or managed agents are named {built.name!r}; names must be unique."
            )
        collected[built.name] = built
    return collected


def _task_text(task: str, additional_args: Mapping[str, Any] | None) -> str:
    if not additional_args:
        return task
    names = ", ".join(f"{k} ({type(v).__name__})" for k, v in additional_args.items())
    return f"{task}\nThese variables are available to your code: {names}."


def _answer_or_raise(result: RunResult) -> Any:
    if result.succeeded:
        return result.output
    if result.state is RunState.MAX_STEPS:
        raise MaxStepsExceeded(result.error or "max_steps exceeded", result)
    if isinstance(result.exception, RunFailed):
        result.exception.result = result
        raise result.exception
    raise RunFailed(result.error or "the run failed", result) from result.exception


def _describe_failure(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {exc}"


def _call_flexibly(func: Callable[..., Any], *args: Any, agent: MultiStepAgent) -> Any:
    """Call a user callback with `agent=` only if it accepts it (smolagents' convention)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return func(*args)
    accepts = any(p.name == "agent" or p.kind is p.VAR_KEYWORD for p in params)
    return func(*args, agent=agent) if accepts else func(*args)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _timing(started: float) -> Timing:
    return Timing(start_time=started, end_time=time.time())


def short_repr(value: Any, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def _renderers(verbosity_level: int) -> list[EventHandler]:
    if verbosity_level <= 0:
        return []
    from ..render import ConsoleRenderer

    return [ConsoleRenderer(verbosity_level=verbosity_level)]
