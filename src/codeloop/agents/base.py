"""The agent loop.

One async engine, `astream`, drives every entry point: `arun` consumes it, `run` and `stream`
drive it from sync code. A run is:

    astream → loop → (plan) → step → query the model → act → observe → ... → RunFinished

Each turn of the loop is one step, a planning step when one is due or an action step, and
between steps the loop checks whether the run must end (`interrupt()`, `max_steps`).
`CodeAgent` acts by running the model's code in an executor; `ToolCallingAgent` acts by calling
tools. Errors the model can fix (`AgentError`) are recorded on the step and fed back; anything
else ends the run with a typed failure, leaving memory intact. `step()` runs one action step by
hand, outside any run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import IO, Any, ClassVar, TypeVar

from .._sync import iterate_sync, run_sync
from ..errors import AgentError, ModelError, RunFailed
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
from ..memory import (
    ActionStep,
    FinalAnswerStep,
    Memory,
    PlanningStep,
    StepError,
    SystemPromptStep,
    TaskStep,
)
from ..messages import ChatMessage, ImageContent, MessageDelta, Role
from ..models.base import Model, assemble_message, message_to_delta
from ..models.retry import RetryPolicy, with_retries
from ..prompts import TemplateTool, default_prompt_templates, merge_prompt_templates, populate_template
from ..result import RunResult, RunState
from ..tools import FinalAnswerTool, Tool
from .callbacks import CallbackRegistry, StepCallbacks, maybe_await
from .guardrails import Guard, Guardrails, GuardrailTripped
from .managed import with_event_sink
from .output import OutputSpec
from .replay import replay
from .run import Run, answer_or_raise, describe_failure, latest_task, task_text
from .setup import check_arguments, checked_model, collect_tools, renderers, with_base_tools

__all__ = ["MultiStepAgent"]

FinalAnswerCheck = Callable[..., Any]
EventHandler = Callable[[Event], Any]
T = TypeVar("T")


class MultiStepAgent:
    """Configuration shared by `CodeAgent` and `ToolCallingAgent`, and the loop itself.

    smolagents' arguments keep their meaning: `step_callbacks` (a list, for action steps, or a
    dict by step class), `prompt_templates` (see `codeloop.prompts`), `add_base_tools` (adds
    `codeloop.toolkit.base_tools()`: web search, visit_webpage, Wikipedia, user input, and the
    Python interpreter tool except for a CodeAgent; needs the `toolkit` extra).

    `output_type` (a pydantic model class, a plain type such as `int` or `list[str]`, or a JSON
    schema dict) asks for a structured answer: the model is told its schema, a final answer that
    does not fit is sent back with what was wrong, and `RunResult.output` is the validated value
    (see `codeloop.agents.output`). `input_guards`, `output_guards` and `tool_guards` check the
    task, the final answer and each tool call (see `codeloop.agents.guardrails`);
    `final_answer_checks` run as the first output guards."""

    prompt_name: ClassVar[str]
    base_tools_include_python: ClassVar[bool] = True  # add_base_tools adds python_interpreter

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
        step_callbacks: StepCallbacks | None = None,
        final_answer_checks: Sequence[FinalAnswerCheck] = (),
        return_full_result: bool = False,
        stream_outputs: bool = True,
        event_handlers: Sequence[EventHandler] = (),
        verbosity_level: int = 0,
        retry_policy: RetryPolicy | None = None,
        prompt_templates: Mapping[str, Any] | None = None,
        add_base_tools: bool = False,
        output_type: Any = None,
        input_guards: Sequence[Guard] = (),
        output_guards: Sequence[Guard] = (),
        tool_guards: Sequence[Guard] = (),
    ) -> None:
        model = checked_model(type(self).__name__, model)
        check_arguments(max_steps, planning_interval)
        self.model = with_retries(model, retry_policy)  # see codeloop.models.retry for the default
        self.max_steps = max_steps
        self.instructions = instructions
        self.planning_interval = planning_interval
        self.name = name or type(self).__name__
        self.description = description
        self.step_callbacks = CallbackRegistry.of(step_callbacks)
        self.output_spec = OutputSpec.of(output_type)
        self.guardrails = Guardrails(
            input=tuple(input_guards),
            output=tuple(output_guards),
            tool=tuple(tool_guards),
            final_answer_checks=list(final_answer_checks),
        )
        self.return_full_result = return_full_result
        self.stream_outputs = stream_outputs
        self.event_handlers = list(event_handlers) + renderers(verbosity_level)
        self.prompt_templates = merge_prompt_templates(
            default_prompt_templates(self.prompt_name), prompt_templates
        )
        self.managed_agents = {a.name: a for a in managed_agents}
        if add_base_tools:
            tools = with_base_tools(tools, python=self.base_tools_include_python)
        self.tools = collect_tools(tools, managed_agents)
        self._final_answer_tool = FinalAnswerTool()
        self._interrupt_requested = False
        self.memory = Memory(system_prompt=SystemPromptStep(system_prompt=self.system_prompt))

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
        return result if full else answer_or_raise(result)

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

    def step(self, memory_step: ActionStep) -> Any:
        """Run one action step by hand, on the current memory (smolagents' manual stepping).

        The model sees `self.memory` (append a `TaskStep` first); `memory_step` is filled in
        (output, code or tool calls, observations, error) but not added to memory: append it
        yourself. Returns the final answer if this step gave one, else None; an error the model
        can fix is recorded on `memory_step.error`, as in a run. Step callbacks do not run."""
        return run_sync(self.astep(memory_step))

    async def astep(self, memory_step: ActionStep) -> Any:
        """The async form of `step`."""
        run = self._new_run(self.max_steps, memory_step.step_number)
        await self._open_executor(run, fresh=False)
        async for event in self._query(run, memory_step):
            await self._dispatch(event)
        async for event in self._act_and_observe(run, memory_step):
            await self._dispatch(event)
        return memory_step.action_output if memory_step.is_final_answer else None

    def interrupt(self) -> None:
        """Stop the current run once the step in progress is over. The run ends with
        `RunState.INTERRUPTED` (`run()` raises `RunInterrupted`). Callable from a step callback,
        an event handler or another thread."""
        self._interrupt_requested = True

    def replay(self, detailed: bool = False, *, file: IO[str] | None = None) -> None:
        """Print the run held in memory as it was shown live (to `file`, default stdout).
        `detailed=True` also prints the messages the model was given before each step."""
        prompt = self.memory.system_prompt.system_prompt or self.system_prompt
        replay(self.memory, self.name, prompt, detailed=detailed, file=file)

    def write_memory_to_messages(self) -> list[ChatMessage]:
        """The messages the model would see next for the current memory."""
        return self.memory.to_messages(self.system_prompt)

    @property
    def system_prompt(self) -> str:
        """The system prompt, rendered from `prompt_templates["system_prompt"]`."""
        template = self.prompt_templates["system_prompt"]
        return populate_template(template, self._prompt_values(), where="['system_prompt']")

    @system_prompt.setter
    def system_prompt(self, value: str) -> None:
        raise AttributeError(
            "system_prompt is rendered from a template: set agent.prompt_templates['system_prompt'] instead."
        )

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

    @property
    def final_answer_checks(self) -> list[FinalAnswerCheck]:
        """smolagents' checks of the final answer: the first output guards."""
        return self.guardrails.final_answer_checks

    @final_answer_checks.setter
    def final_answer_checks(self, checks: Sequence[FinalAnswerCheck]) -> None:
        self.guardrails.final_answer_checks = list(checks)

    # ---- the loop ---------------------------------------------------------------------------

    async def _events(self, run: Run, task: str) -> AsyncIterator[Event]:
        yield RunStarted(agent=self.name, task=task)
        try:
            async for event in self._loop(run):
                yield event
        except Exception as exc:  # ends the run; memory stays as it is
            run.finish(RunState.ERROR, error=describe_failure(exc), exception=exc)
        assert run.result is not None
        if run.result.succeeded:
            yield FinalAnswer(agent=self.name, step=run.step_number - 1, output=run.result.output)
        yield RunFinished(agent=self.name, result=run.result)

    async def _loop(self, run: Run) -> AsyncIterator[Event]:
        while not self._ended(run):
            step = self._plan(run) if self._planning_due(run) else self._step(run)
            async for event in step:
                yield event

    def _ended(self, run: Run) -> bool:
        """Whether the run is over; ends it here if it was interrupted, is stuck or is out of steps."""
        if run.result is None and self._interrupt_requested:
            run.finish(
                RunState.INTERRUPTED,
                error=f"Interrupted by agent.interrupt() after {run.steps_taken} action step(s).",
            )
        elif run.result is None and run.guard.stuck is not None:
            run.finish(RunState.STUCK, error=run.guard.stuck)
        elif run.result is None and run.steps_taken >= run.max_steps:
            run.finish(RunState.MAX_STEPS, error=f"Reached max_steps={run.max_steps} without a final answer.")
        return run.result is not None

    async def _step(self, run: Run) -> AsyncIterator[Event]:
        step = ActionStep(step_number=run.step_number)
        async for event in self._query(run, step):
            yield event
        run.memory.steps.append(step)
        async for event in self._act_and_observe(run, step):
            yield event
        run.step_number += 1
        run.steps_taken += 1
        await self.step_callbacks.run(step, self)
        yield StepFinished(agent=self.name, step=step.step_number, memory_step=step)
        if step.is_final_answer:
            final = FinalAnswerStep(output=step.action_output)
            run.memory.steps.append(final)
            await self.step_callbacks.run(final, self)
            run.finish(RunState.SUCCESS, output=step.action_output)

    async def _query(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        messages = run.memory.to_messages(run.system_prompt)
        async for event in self._ask(run, messages, stop=self.stop_sequences, tools=run.tool_schemas):
            yield event
        message = run.message
        assert message is not None
        step.model_output, step.reasoning, step.usage = message.content, message.reasoning, message.usage
        yield ModelOutput(agent=self.name, step=step.step_number, message=message)

    async def _act_and_observe(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        """Act on the model's message; an error the model can fix is recorded on the step. A
        tool guard that stopped the run ends it here, even if the model's code caught the error."""
        self.guardrails.take_tripped()
        try:
            async for event in self._act(run, step):
                yield event
        except AgentError as exc:
            step.error, step.is_final_answer = StepError.from_exception(exc), False
            yield StepErrored(agent=self.name, step=step.step_number, error=step.error)
        step.timing.end_time = time.time()
        tripped = self.guardrails.take_tripped()
        if tripped is not None:
            raise tripped

    async def _plan(self, run: Run) -> AsyncIterator[Event]:
        step = PlanningStep(plan="")
        async for event in self._ask(run, self._planning_messages(run), stop=["<end_plan>"]):
            yield event
        assert run.message is not None
        step.plan, step.usage, step.timing.end_time = run.message.content, run.message.usage, time.time()
        run.memory.steps.append(step)
        run.planned_at = run.steps_taken
        yield PlanReady(agent=self.name, step=run.step_number, plan=step.plan)
        await self.step_callbacks.run(step, self)
        yield StepFinished(agent=self.name, step=run.step_number, memory_step=step)

    def _planning_messages(self, run: Run) -> list[ChatMessage]:
        """The conversation so far and a request for a first plan, or for an updated one."""
        templates = self.prompt_templates["planning"]
        values = {
            **self._prompt_values(),
            "task": latest_task(run.memory),
            "remaining_steps": run.max_steps - run.steps_taken,
        }
        system = run.system_prompt
        if not any(isinstance(s, PlanningStep) for s in run.memory.steps):
            where = "['planning']['initial_plan']"
            request = populate_template(templates["initial_plan"], values, where=where)
        else:
            where = "['planning']['update_plan_post_messages']"
            request = populate_template(templates["update_plan_post_messages"], values, where=where)
            if templates["update_plan_pre_messages"]:  # replaces the system prompt, as in smolagents
                where = "['planning']['update_plan_pre_messages']"
                system = populate_template(templates["update_plan_pre_messages"], values, where=where)
        return [*run.memory.to_messages(system), ChatMessage(role=Role.USER, content=request)]

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
                async for delta in self._stream(messages, stop, tools):
                    deltas.append(delta)
                    yield ModelDelta(agent=self.name, step=run.step_number, delta=delta)
            else:
                deltas.append(message_to_delta(await self.model.agenerate(messages, stop=stop, tools=tools)))
        except RunFailed:
            raise
        except Exception as exc:
            raise ModelError(f"The model call failed: {type(exc).__name__}: {exc}") from exc
        run.message = self._trimmed(assemble_message(deltas))

    async def _stream(
        self, messages: list[ChatMessage], stop: list[str] | None, tools: list[dict[str, Any]] | None
    ) -> AsyncIterator[MessageDelta]:
        """The model's deltas up to where the reply's action is complete (`_reply_end`). The rest
        of the stream is read for its usage figures only: providers send them at the end."""
        text, complete = "", False
        async for delta in self.model.astream(messages, stop=stop, tools=tools):
            if complete:
                if delta.usage is not None or delta.finish_reason is not None:
                    yield MessageDelta(usage=delta.usage, finish_reason=delta.finish_reason)
                continue
            yield delta
            text = "" if delta.restart else text + (delta.content or "")
            closing = delta.content and any(c in delta.content for c in "`~>")  # fences, </code>
            complete = bool(closing) and self._reply_end(text) is not None

    def _reply_end(self, text: str) -> int | None:
        """Where a reply's action is complete, or None. An agent that knows (the CodeAgent: after
        the first code block) neither shows nor keeps what the model writes after it."""
        return None

    def _trimmed(self, message: ChatMessage) -> ChatMessage:
        end = self._reply_end(message.content or "")
        if end is None or end >= len(message.content or ""):
            return message
        return dataclasses.replace(message, content=(message.content or "")[:end])

    def _planning_due(self, run: Run) -> bool:
        interval = self.planning_interval
        return bool(interval) and run.steps_taken % (interval or 1) == 0 and run.planned_at != run.steps_taken

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
        """A new run; one an input guard stopped is already finished (no step will run)."""
        self._interrupt_requested = False
        if reset:
            self.memory = Memory()
        run = self._new_run(max_steps or self.max_steps, len(self.memory.action_steps()) + 1)
        try:
            shown = await self.guardrails.check_input(task, self)
        except GuardrailTripped as exc:
            shown = task
            run.finish(RunState.ERROR, error=str(exc), exception=exc)
        text = "\n".join(filter(None, [task_text(shown, additional_args), self._output_note()]))
        self.memory.steps.append(TaskStep(task=text, images=tuple(images or ())))
        await self._open_executor(run, fresh=reset, variables=additional_args)
        return run

    def _new_run(self, max_steps: int, step_number: int) -> Run:
        prompt = self.system_prompt
        self.memory.system_prompt = SystemPromptStep(system_prompt=prompt)
        return Run(
            memory=self.memory,
            max_steps=max_steps,
            step_number=step_number,
            system_prompt=prompt,
            tool_schemas=self._tool_schemas(),
        )

    async def _open_executor(
        self, run: Run, *, fresh: bool, variables: Mapping[str, Any] | None = None
    ) -> None:
        """Agents that run code start their executor session here (a new one if `fresh`)."""

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

    async def _accept_final_answer(self, run: Run, answer: Any) -> Any:
        """The answer as the run's output: validated against `output_type` (an
        `OutputValidationError` tells the model what was wrong), then passed by every output guard."""
        if self.output_spec is not None:
            answer = self.output_spec.validate(answer)
        await self.guardrails.check_output(answer, run.memory, self)
        return answer

    def _output_note(self) -> str | None:
        """What the task says of the answer's shape, when `output_type` asks for one."""
        return None if self.output_spec is None else self.output_spec.task_note()

    async def _dispatch(self, event: Event) -> None:
        for handler in self.event_handlers:
            await maybe_await(handler(event))

    def _tool_schemas(self) -> list[dict[str, Any]] | None:
        return None

    def _prompt_values(self) -> dict[str, Any]:
        """The variables of the templates: codeloop's, and smolagents' names for the same."""
        own = {n: TemplateTool(t) for n, t in self.tools.items() if n not in self.managed_agents}
        return {
            "instructions": self.instructions,
            "custom_instructions": self.instructions,
            "agent_tools": list(self.tools.values()),
            "tools": {**own, "final_answer": TemplateTool(self._final_answer_tool)},
            "managed_agents": {
                n: TemplateTool(self.tools[n], a.description) for n, a in self.managed_agents.items()
            },
            "name": self.name,
        }

    stop_sequences: ClassVar[list[str] | None] = None
