"""The agent loop, shared by every agent (`MultiStepAgent` adds the configuration and the
public entry points in `codeloop.agents.base`).

    astream → loop → (plan) → step → query the model → act → observe → ... → RunFinished

Each turn of the loop is one step, a planning step when one is due or an action step, and
between steps the loop checks whether the run must end (`interrupt()`, `max_steps`).
`CodeAgent` acts by running the model's code in an executor; `ToolCallingAgent` acts by calling
tools. Errors the model can fix (`AgentError`) are recorded on the step and fed back; anything
else ends the run with a typed failure, leaving memory intact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from ..context import ContextPolicy
from ..errors import AgentError, ConfigurationError, ModelError, RunFailed
from ..events import (
    Event,
    EventHandler,
    FinalAnswer,
    ModelCallFinished,
    ModelCallStarted,
    ModelDelta,
    ModelOutput,
    PlanReady,
    RunFinished,
    RunStarted,
    StepErrored,
    StepFinished,
    run_observers,
)
from ..memory import (
    ActionStep,
    FinalAnswerStep,
    Memory,
    PlanningStep,
    StepError,
    SystemPromptStep,
    TaskStep,
    Timing,
)
from ..messages import ChatMessage, ImageContent, MessageDelta, Role
from ..models.base import Model, assemble_message, message_to_delta
from ..prompts import PromptTemplates, TemplateTool, populate_template
from ..result import RunState
from ..telemetry import auto_instrument_from_env
from ..tools import FinalAnswerTool, Tool
from . import approval, durable
from .budget import Budget, BudgetExceeded
from .callbacks import CallbackRegistry, maybe_await
from .guardrails import Guardrails, GuardrailTripped
from .managed import forwarding_events, with_event_sink
from .output import OutputSpec
from .run import Run, describe_failure, latest_task, task_text

if TYPE_CHECKING:
    from .base import MultiStepAgent

__all__ = ["AgentLoop"]

T = TypeVar("T")


class AgentLoop:
    """The loop and its helpers; `MultiStepAgent` sets the attributes declared here."""

    name: str
    description: str | None
    model: Model
    max_steps: int
    instructions: str | None
    planning_interval: int | None
    stream_outputs: bool
    step_callbacks: CallbackRegistry
    output_spec: OutputSpec | None
    budget: Budget | None
    guardrails: Guardrails
    event_handlers: list[EventHandler]
    prompt_templates: PromptTemplates
    managed_agents: dict[str, MultiStepAgent]
    tools: dict[str, Tool]
    approval_policy: approval.ApprovalPolicy | None
    context_policy: ContextPolicy
    """What each request sends of the memory (`codeloop.context`)."""
    memory: Memory
    _final_answer_tool: FinalAnswerTool
    _active_runs: dict[str, Run]
    """The runs in progress, by id (`interrupt()` reaches each of them)."""

    @property
    def _agent(self) -> MultiStepAgent:
        """This loop as the agent that callbacks and guards are given."""
        return cast("MultiStepAgent", self)

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

    # ---- the loop ---------------------------------------------------------------------------

    async def _events(self, run: Run, task: str) -> AsyncIterator[Event]:
        yield RunStarted(agent=self.name, task=task, run_id=run.run_id)
        run.task, run.loop = asyncio.current_task(), asyncio.get_running_loop()
        try:
            async for event in self._loop(run):
                yield event
                run.task = asyncio.current_task()  # sync iteration resumes each time in a new task
                if run.cancel_reason is not None:  # asked while the consumer held the event
                    await asyncio.sleep(0)  # where agent.cancel() already cancelled this task
                    raise asyncio.CancelledError
        except asyncio.CancelledError:  # the step under way was stopped; memory stays as it is
            reason = run.cancel_reason or "the task running the run was cancelled"
            _mark_stopped_step(run, reason)
            run.finish(RunState.CANCELLED, error=f"Cancelled: {reason}.")
            if not _absorbed(run):
                await durable.after_run(run)  # stored as cancelled, so it can be resumed
                raise  # cancelled from outside: asyncio's rule, the caller sees CancelledError
        except Exception as exc:  # ends the run (or pauses it for approvals); memory stays as it is
            run.finish(_state_after(exc), error=describe_failure(exc), exception=exc)
        assert run.result is not None
        await durable.after_run(run)  # a run with a store: its last steps and outcome stored
        if run.result.succeeded:
            yield FinalAnswer(agent=self.name, step=run.step_number - 1, output=run.result.output)
        yield RunFinished(agent=self.name, result=run.result)

    async def _loop(self, run: Run) -> AsyncIterator[Event]:
        while not self._ended(run):
            step = self._plan(run) if self._planning_due(run) else self._step(run)
            async for event in step:
                yield event
            await durable.after_step(run)  # a run with a store: the step stored, lease checked

    def _ended(self, run: Run) -> bool:
        """Whether the run is over; ends it here if it was interrupted, is stuck or is out of steps."""
        if run.result is None and run.interrupt_requested:
            run.finish(
                RunState.INTERRUPTED,
                error=f"Interrupted by agent.interrupt() after {run.steps_taken} action step(s).",
            )
        elif run.result is None and run.guard.stuck is not None:
            run.finish(RunState.STUCK, error=run.guard.stuck)
        elif run.result is None and run.steps_taken >= run.max_steps:
            run.finish(RunState.MAX_STEPS, error=f"Reached max_steps={run.max_steps} without a final answer.")
        elif run.result is None and (spent := self._over_budget(run)) is not None:
            run.finish(RunState.BUDGET_EXCEEDED, error=str(spent), exception=spent)
        return run.result is not None

    def _over_budget(self, run: Run) -> BudgetExceeded | None:
        if self.budget is None:
            return None
        return self.budget.exceeded(run.memory.usage(), self.model.model_id, run.started)

    async def _step(self, run: Run) -> AsyncIterator[Event]:
        step = ActionStep(step_number=run.step_number)
        async for event in self._query(run, step):
            yield event
        await durable.reply_ready(run, step)  # stored before acting: a resumed run acts on it
        run.memory.steps.append(step)
        async for event in self._act_and_observe(run, step):
            yield event
        run.step_number += 1
        run.steps_taken += 1
        await self.step_callbacks.run(step, self._agent)
        yield StepFinished(agent=self.name, step=step.step_number, memory_step=step)
        if step.is_final_answer:
            final = FinalAnswerStep(output=step.action_output)
            run.memory.steps.append(final)
            await self.step_callbacks.run(final, self._agent)
            run.finish(RunState.SUCCESS, output=step.action_output)

    async def _query(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        run.message = durable.stored_reply(run, step)  # a resumed run's reply, made before it died
        if run.message is None:
            messages = self.context_policy.messages(run.memory, run.system_prompt)
            stop, tools, settings = self.stop_sequences, run.tool_schemas, run.model_settings
            step.model_timing = Timing()
            async for event in self._ask(run, messages, stop=stop, tools=tools, settings=settings):
                yield event
            step.model_timing.end_time = time.time()
        message = run.message
        assert message is not None
        step.model_output, step.reasoning, step.usage = message.content, message.reasoning, message.usage
        yield ModelOutput(agent=self.name, step=step.step_number, message=message)

    async def _act_and_observe(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        """Act on the model's message; an error the model can fix is recorded on the step. A
        tool guard that stopped the run ends it here, even if the model's code caught the error."""
        run.take_tripped()
        try:
            async for event in self._act(run, step):
                yield event
        except AgentError as exc:
            approval.pause_if_waiting(run, step)  # the code stopped at a call that waits for a human
            step.error, step.is_final_answer = StepError.from_exception(exc), False
            yield StepErrored(agent=self.name, step=step.step_number, error=step.error)
        step.timing.end_time = time.time()
        tripped = run.take_tripped()
        if tripped is not None:
            raise tripped
        approval.pause_if_waiting(run, step)  # raises ApprovalRequired: the run waits

    async def _plan(self, run: Run) -> AsyncIterator[Event]:
        step = PlanningStep(plan="")
        async for event in self._ask(run, self._planning_messages(run), stop=["<end_plan>"], purpose="plan"):
            yield event
        assert run.message is not None
        step.plan, step.usage, step.timing.end_time = run.message.content, run.message.usage, time.time()
        run.memory.steps.append(step)
        run.planned_at = run.steps_taken
        yield PlanReady(agent=self.name, step=run.step_number, plan=step.plan)
        await self.step_callbacks.run(step, self._agent)
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
        history = self.context_policy.messages(run.memory, system)
        return [*history, ChatMessage(role=Role.USER, content=request)]

    async def _ask(
        self,
        run: Run,
        messages: list[ChatMessage],
        stop: list[str] | None = None,
        tools: list[dict[str, Any]] | None = None,
        settings: dict[str, Any] | None = None,
        purpose: str = "action",
    ) -> AsyncIterator[Event]:
        """Query the model, yielding its deltas; the whole message lands in `run.message`.
        Any model failure becomes a `ModelError`."""
        deltas: list[MessageDelta] = []
        settings = settings or {}
        model_id = self.model.model_id
        yield ModelCallStarted(agent=self.name, step=run.step_number, model_id=model_id, purpose=purpose)
        try:
            if self.stream_outputs:
                async for delta in self._stream(messages, stop, tools, settings):
                    deltas.append(delta)
                    yield ModelDelta(agent=self.name, step=run.step_number, delta=delta)
            else:
                message = await self.model.agenerate(messages, stop=stop, tools=tools, **settings)
                deltas.append(message_to_delta(message))
        except RunFailed:
            raise
        except Exception as exc:
            raise ModelError(f"The model call failed: {type(exc).__name__}: {exc}") from exc
        run.message = self._trimmed(assemble_message(deltas))
        yield ModelCallFinished(
            agent=self.name, step=run.step_number, model_id=model_id, message=run.message, purpose=purpose
        )

    async def _stream(
        self,
        messages: list[ChatMessage],
        stop: list[str] | None,
        tools: list[dict[str, Any]] | None,
        settings: dict[str, Any],
    ) -> AsyncIterator[MessageDelta]:
        """The model's deltas up to where the reply's action is complete (`_reply_end`). The rest
        of the stream is read for its usage figures only: providers send them at the end."""
        text, complete = "", False
        async for delta in self.model.astream(messages, stop=stop, tools=tools, **settings):
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
        """A new run, in progress until `_end_run`; one an input guard stopped is already
        finished (no step will run). `agent.memory` becomes its memory: a fresh one if `reset`."""
        if not reset and any(r.memory is self.memory for r in self._active_runs.values()):
            raise ConfigurationError(
                f"Agent {self.name!r}: a run is still writing agent.memory, so another run cannot "
                "continue it (reset=False) now; wait for that run to end, or run with reset=True."
            )
        memory = self.memory = Memory() if reset else self.memory
        run = self._new_run(max_steps or self.max_steps, len(memory.action_steps()) + 1, memory)
        try:
            shown = await self.guardrails.check_input(task, self._agent)
        except GuardrailTripped as exc:
            shown = task
            run.finish(RunState.GUARDRAIL, error=str(exc), exception=exc)
        text = "\n".join(filter(None, [task_text(shown, additional_args), self._output_note()]))
        memory.steps.append(TaskStep(task=text, images=tuple(images or ())))
        self._active_runs[run.run_id] = run
        try:
            await durable.begin(self._agent, run, additional_args)  # with a store: the run's row
            await self._open_executor(run, fresh=reset, variables=additional_args)
        except BaseException:
            await self._end_run(run)
            raise
        return run

    async def _end_run(self, run: Run) -> None:
        """The run is over (or its consumer stopped reading it): release what it holds."""
        self._active_runs.pop(run.run_id, None)
        await durable.release(run)

    def _new_run(self, max_steps: int, step_number: int, memory: Memory | None = None) -> Run:
        memory = self.memory if memory is None else memory
        prompt = self.system_prompt
        memory.system_prompt = SystemPromptStep(system_prompt=prompt)
        return Run(
            memory=memory,
            max_steps=max_steps,
            step_number=step_number,
            system_prompt=prompt,
            tool_schemas=self._tool_schemas(),
            model_settings=self._model_settings(),
            approval=approval.for_run(self.tools, self.approval_policy),
            agent_name=self.name,
        )

    async def _open_executor(
        self, run: Run, *, fresh: bool, variables: Mapping[str, Any] | None = None
    ) -> None:
        """Agents that run code give the run its executor session here: a new one if `fresh`,
        else the agent's retained one (see `CodeAgent`)."""

    @staticmethod
    def _spawn(run: Run, work: Awaitable[T]) -> asyncio.Future[T]:
        """Start `work` as a task in which managed sub-agents forward events to this run."""
        return asyncio.ensure_future(with_event_sink(run.events, work))

    async def _while_running(self, run: Run, task: asyncio.Future[Any]) -> AsyncIterator[Event]:
        """Wait for `task`, yielding the events its tool calls and managed sub-agents send meanwhile."""
        if not self.managed_agents and not self.tools:  # nothing can send events: just wait
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
        await self.guardrails.check_output(answer, run.memory, self._agent)
        return answer

    def _output_note(self) -> str | None:
        """What the task says of the answer's shape, when `output_type` asks for one."""
        return None if self.output_spec is None else self.output_spec.task_note()

    async def _dispatch(self, event: Event, observers: Sequence[EventHandler] = ()) -> None:
        for handler in (*self.event_handlers, *observers):
            await maybe_await(handler(event))

    def _observers(self) -> list[EventHandler]:
        """The run observers' handlers for a new run (a sub-agent's run has none: its events
        reach them through its manager's run)."""
        if forwarding_events():
            return []
        auto_instrument_from_env()  # OTEL_* variables set: codeloop traces itself (checked once)
        return run_observers(self._agent)

    def _model_settings(self) -> dict[str, Any]:
        """Extra arguments of the action steps' model calls (none here)."""
        return {}

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


def _state_after(exc: Exception) -> RunState:
    """The state of a run that `exc` ended (or paused)."""
    if isinstance(exc, approval.ApprovalRequired):
        return RunState.AWAITING_APPROVAL
    return RunState.GUARDRAIL if isinstance(exc, GuardrailTripped) else RunState.ERROR


def _mark_stopped_step(run: Run, reason: str) -> None:
    """The action step the cancellation stopped says so (a resumed run does not replay it)."""
    steps = run.memory.action_steps()
    if steps and steps[-1].error is None and not steps[-1].observations:
        steps[-1].error = StepError(type="Cancelled", message=f"The step was cancelled: {reason}.")


def _absorbed(run: Run) -> bool:
    """Whether a cancellation `agent.cancel()` asked for is taken back here, so the run ends
    like any other (a `RunResult`, or `RunCancelled` from `run()`); Python 3.11+ only."""
    uncancel = getattr(run.task, "uncancel", None)
    if run.cancel_reason is None or uncancel is None:
        return False
    uncancel()
    return True
