"""Events to spans: one run's events, in order, become OpenTelemetry spans.

    invoke_agent {agent}                 the run (a sub-agent's run: under its manager's tool call)
    ├── chat {model}                     each model call
    ├── execute_code                     each code action (CodeAgent)
    │   └── execute_tool {tool}          each tool its code called
    │       └── invoke_agent {sub-agent} a managed sub-agent, called as a tool
    └── execute_tool {tool}              each tool call of a ToolCallingAgent

Spans start and end at the events' timestamps, so a sub-agent's events, which reach the manager's
stream later than they happened, still land right in time. Parents are given explicitly (never
the ambient context: several runs' events interleave on one event loop), except the run's own
span, which is a child of whatever span was current where the run started (in the task that
iterates `astream`/awaits `arun`).

A sub-agent's events carry its name and depth but no run id: two runs of the same sub-agent at
once (a ToolCallingAgent calling it twice in one step) are told apart for sure at their start
(each under its own tool call) and end (`RunFinished` has the run id); in between, each event
goes to the first of them whose state it fits (a reply to the one waiting for its model, a tool
result to the one that made the call), a best guess that never leaves a span open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import events as ev
from ..result import RunState
from . import _attributes as attr

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from ..agents import MultiStepAgent

__all__ = ["GenAITracer", "RunSpans"]

_NOT_ERRORS = frozenset({RunState.SUCCESS, RunState.AWAITING_APPROVAL})
"""Run states whose span keeps an unset status (a paused run is not a failure)."""


def _ns(timestamp: float) -> int:
    return int(timestamp * 1_000_000_000)


@dataclass
class _Open:
    """A span in progress and the context that makes it a parent."""

    span: Span
    context: Context
    name: str = ""
    claimed: bool = False
    """A tool span: a sub-agent's run has been placed under it."""


@dataclass
class _Frame:
    """One run in progress (the top-level run, or a sub-agent's run nested in it)."""

    run: _Open
    run_id: str
    agent: MultiStepAgent | None
    chat: Span | None = None
    code: _Open | None = None
    tools: dict[int, _Open] = field(default_factory=dict)
    call_ids: list[str] = field(default_factory=list)
    call_ids_step: int = -1
    acting: bool = False
    """Its model replied and the step's action (code or tool calls) has not ended yet."""

    def tool_parent(self) -> Context:
        return self.code.context if self.code is not None else self.run.context


class GenAITracer:
    """A run observer (`codeloop.events.add_run_observer`) that traces every run it is given
    with `tracer`; `capture_content` also records prompts, replies, code, tool arguments and
    results. `instrument()` registers one; it can also be given to `add_run_observer` directly."""

    def __init__(self, tracer: trace.Tracer, *, capture_content: bool = False) -> None:
        self.tracer = tracer
        self.capture_content = capture_content

    def __call__(self, agent: MultiStepAgent) -> Callable[[ev.Event], None]:
        return RunSpans(self.tracer, agent, capture_content=self.capture_content).handle


class RunSpans:
    """The spans of one top-level run, its sub-agents' runs included: `handle` each event."""

    def __init__(self, tracer: trace.Tracer, agent: MultiStepAgent, *, capture_content: bool) -> None:
        self._tracer = tracer
        self._content = capture_content
        self._agents = attr.agents_by_name(agent)
        self._frames: dict[tuple[int, str], list[_Frame]] = {}

    def handle(self, event: ev.Event) -> None:
        """Turn `event` into span starts and ends (events without a span are ignored)."""
        method = _HANDLERS.get(type(event))
        if method is not None:
            method(self, event)

    # ---- runs ---------------------------------------------------------------------------------

    def _run_started(self, event: ev.RunStarted) -> None:
        agent = self._agents.get(event.agent)
        attributes: dict[str, Any] = {
            attr.OPERATION_NAME: "invoke_agent",
            attr.AGENT_NAME: event.agent,
            attr.RUN_ID: event.run_id,
            attr.CONVERSATION_ID: event.run_id,
        }
        if agent is not None:
            attributes.update(_agent_attributes(agent))
        if self._content:
            attributes[attr.INPUT_MESSAGES] = attr.input_messages(event.task)
        parent = otel_context.get_current() if event.depth == 0 else self._sub_agent_parent(event)
        run = self._start(f"invoke_agent {event.agent}", event, parent, attributes, SpanKind.INTERNAL)
        frame = _Frame(run=run, run_id=event.run_id, agent=agent)
        self._frames.setdefault((event.depth, event.agent), []).append(frame)

    def _sub_agent_parent(self, event: ev.RunStarted) -> Context:
        """The manager's call of this sub-agent (the first one not yet given a run)."""
        depth = event.depth - 1
        managers = [f for (d, _), frames in self._frames.items() if d == depth for f in frames]
        for manager in managers:
            for _, call in sorted(manager.tools.items()):
                if call.name == event.agent and not call.claimed:
                    call.claimed = True
                    return call.context
        return managers[-1].tool_parent() if managers else otel_context.get_current()

    def _run_finished(self, event: ev.RunFinished) -> None:
        frame = self._pop_frame(event)
        if frame is None:  # a resumed run that had already ended: nothing was started
            return
        result, span, end = event.result, frame.run.span, _ns(event.timestamp)
        self._close_leftovers(frame, event)
        span.set_attribute(attr.RUN_STATE, result.state.value)
        span.set_attribute(attr.RUN_STEPS, len(result.memory.action_steps()))
        span.set_attributes(attr.usage_attributes(result.usage))
        if self._content and result.succeeded:
            span.set_attribute(attr.OUTPUT_MESSAGES, attr.output_messages(result.output))
        if result.state not in _NOT_ERRORS:
            exc = result.exception
            kind = attr.exception_type_name(exc) if exc is not None else result.state.value
            _fail(span, kind, result.error or result.state.value, end)
        span.end(end_time=end)
        if event.depth == 0:
            self._abandon_sub_runs(event)

    def _abandon_sub_runs(self, event: ev.RunFinished) -> None:
        """Sub-agent runs whose end never came (the top-level run was cancelled while they ran)
        end with it, as failures."""
        end, why = _ns(event.timestamp), "The top-level run ended before this run finished."
        for frame in [f for frames in self._frames.values() for f in frames]:
            self._close_leftovers(frame, event)
            _fail(frame.run.span, attr.OTHER_ERROR, why, end)
            frame.run.span.end(end_time=end)
        self._frames.clear()

    def _pop_frame(self, event: ev.RunFinished) -> _Frame | None:
        frames = self._frames.get((event.depth, event.agent), [])
        for i, frame in enumerate(frames):
            if frame.run_id == event.result.run_id:
                return frames.pop(i)
        return frames.pop() if frames else None

    def _close_leftovers(self, frame: _Frame, event: ev.RunFinished) -> None:
        """Spans whose closing event never came: a model call that raised (the run's error
        says why), a code action or tool call the run's end cut short."""
        end, why = _ns(event.timestamp), event.result.error or "The run ended before this finished."
        if frame.chat is not None:
            exc = event.result.exception
            cause = None if exc is None else exc.__cause__ or exc
            _fail(frame.chat, attr.exception_type_name(cause) if cause else attr.OTHER_ERROR, why, end)
            frame.chat.end(end_time=end)
            frame.chat = None
        self._close_step(frame, event, why)

    def _close_step(self, frame: _Frame, event: ev.Event, error: str | None) -> None:
        end = _ns(event.timestamp)
        for call in frame.tools.values():
            _fail(call.span, attr.OTHER_ERROR, error or "The step ended before the call returned.", end)
            call.span.end(end_time=end)
        frame.tools.clear()
        if frame.code is not None:
            if error is not None:
                _fail(frame.code.span, attr.error_type_of(error), error, end)
            frame.code.span.end(end_time=end)
            frame.code = None

    # ---- model calls ----------------------------------------------------------------------------

    def _model_call_started(self, event: ev.ModelCallStarted) -> None:
        frame = self._frame(event, lambda f: f.chat is None and f.code is None and not f.acting)
        if frame is None:
            return
        attributes: dict[str, Any] = {
            attr.OPERATION_NAME: "chat",
            attr.REQUEST_MODEL: event.model_id,
            attr.STEP: event.step,
            attr.MODEL_PURPOSE: event.purpose,
        }
        provider = attr.provider_name(frame.agent.model) if frame.agent is not None else None
        if provider is not None:
            attributes[attr.PROVIDER_NAME] = provider
        name = f"chat {event.model_id}"
        frame.chat = self._start(name, event, frame.run.context, attributes, SpanKind.CLIENT).span

    def _model_call_finished(self, event: ev.ModelCallFinished) -> None:
        frame = self._frame(event, lambda f: f.chat is not None)
        if frame is None or frame.chat is None:
            return
        span, message = frame.chat, event.message
        span.set_attributes(attr.usage_attributes(message.usage))
        if message.finish_reason:
            span.set_attribute(attr.FINISH_REASONS, [message.finish_reason])
        if self._content:
            span.set_attribute(attr.OUTPUT_MESSAGES, attr.reply_messages(message))
        span.end(end_time=_ns(event.timestamp))
        frame.chat, frame.acting = None, event.purpose == "action"

    # ---- code actions -------------------------------------------------------------------------

    def _code_action(self, event: ev.CodeAction) -> None:
        frame = self._frame(event, lambda f: f.acting and f.code is None)
        if frame is None:
            return
        attributes: dict[str, Any] = {attr.STEP: event.step, attr.EXECUTOR_NAME: event.executor}
        attributes.update(attr.scalar_items(attr.EXECUTOR_LIMITS, event.limits))
        if self._content:
            attributes[attr.CODE] = event.code
        frame.code = self._start("execute_code", event, frame.run.context, attributes, SpanKind.INTERNAL)

    def _code_action_finished(self, event: ev.CodeActionFinished) -> None:
        frame = self._frame(event, lambda f: f.code is not None)
        if frame is None or frame.code is None:
            return
        end = _ns(event.timestamp)
        if event.error is not None:
            _fail(frame.code.span, attr.error_type_of(event.error), event.error, end)
        frame.code.span.end(end_time=end)
        frame.code = None

    # ---- tool calls ---------------------------------------------------------------------------

    def _tool_call_requested(self, event: ev.ToolCallRequested) -> None:
        """A ToolCallingAgent's calls, in order: `call_index` of a call is its place here."""
        frame = self._frame(event, lambda f: f.acting and f.code is None and not f.tools)
        if frame is None:
            return
        if frame.call_ids_step != event.step:
            frame.call_ids, frame.call_ids_step = [], event.step
        frame.call_ids.append(event.call.id)

    def _tool_call_started(self, event: ev.ToolCallStarted) -> None:
        frame = self._frame(event, lambda f: f.acting and event.call_index not in f.tools)
        if frame is None:
            return
        attributes = self._tool_attributes(frame, event)
        parent = frame.tool_parent()
        call = self._start(f"execute_tool {event.name}", event, parent, attributes, SpanKind.INTERNAL)
        call.name = event.name
        frame.tools[event.call_index] = call

    def _tool_attributes(self, frame: _Frame, event: ev.ToolCallStarted) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            attr.OPERATION_NAME: "execute_tool",
            attr.TOOL_NAME: event.name,
            attr.TOOL_TYPE: "function",
            attr.TOOL_CALL_INDEX: event.call_index,
            attr.STEP: event.step,
        }
        if frame.call_ids_step == event.step and event.call_index < len(frame.call_ids):
            attributes[attr.TOOL_CALL_ID] = frame.call_ids[event.call_index]
        tool = frame.agent.tools.get(event.name) if frame.agent is not None else None
        if tool is not None and tool.description:
            attributes[attr.TOOL_DESCRIPTION] = tool.description
        if self._content:
            attributes[attr.TOOL_CALL_ARGUMENTS] = attr.to_json(event.arguments)
        return attributes

    def _tool_call_finished(self, event: ev.ToolCallFinished) -> None:
        frame = self._frame(event, lambda f: event.call_index in f.tools)
        call = frame.tools.pop(event.call_index, None) if frame is not None else None
        if call is None:
            return
        end = _ns(event.timestamp)
        if event.error is not None:
            _fail(call.span, attr.error_type_of(event.error), event.error, end)
        elif self._content:
            call.span.set_attribute(attr.TOOL_CALL_RESULT, event.result)
        call.span.end(end_time=end)

    # ---- steps ----------------------------------------------------------------------------------

    def _step_errored(self, event: ev.StepErrored) -> None:
        """A code action that failed before it ran (no `CodeActionFinished`) ends here."""
        frame = self._frame(event, lambda f: f.code is not None)
        if frame is not None and frame.code is not None:
            end, error = _ns(event.timestamp), event.error
            _fail(frame.code.span, error.type, error.message, end)
            frame.code.span.end(end_time=end)
            frame.code = None

    def _step_finished(self, event: ev.StepFinished) -> None:
        frame = self._frame(event, lambda f: f.acting)
        if frame is not None:
            self._close_step(frame, event, None)
            frame.acting = False

    # ---- helpers --------------------------------------------------------------------------------

    def _frame(self, event: ev.Event, fits: Callable[[_Frame], bool]) -> _Frame | None:
        """The run `event` belongs to: the only run of its agent at its depth, else the first
        whose state `fits` the event (two runs of one sub-agent at once), else the latest."""
        frames = self._frames.get((event.depth, event.agent))
        if not frames:
            return None
        if len(frames) > 1:
            return next((f for f in frames if fits(f)), frames[-1])
        return frames[0]

    def _start(
        self, name: str, event: ev.Event, parent: Context, attributes: dict[str, Any], kind: SpanKind
    ) -> _Open:
        span = self._tracer.start_span(
            name, context=parent, kind=kind, attributes=attributes, start_time=_ns(event.timestamp)
        )
        return _Open(span=span, context=trace.set_span_in_context(span, parent))


def _agent_attributes(agent: MultiStepAgent) -> dict[str, Any]:
    """What the agent object tells of a run: its description, model and provider."""
    found: dict[str, Any] = {attr.REQUEST_MODEL: agent.model.model_id}
    if agent.description:
        found[attr.AGENT_DESCRIPTION] = agent.description
    provider = attr.provider_name(agent.model)
    if provider is not None:
        found[attr.PROVIDER_NAME] = provider
    return found


def _fail(span: Span, error_type: str, message: str, timestamp: int) -> None:
    """Mark `span` failed: status ERROR with the message, `error.type`, an exception event."""
    span.set_status(Status(StatusCode.ERROR, message))
    span.set_attribute(attr.ERROR_TYPE, error_type)
    event = {"exception.type": error_type, "exception.message": message}
    span.add_event("exception", event, timestamp=timestamp)


_HANDLERS: dict[type[ev.Event], Callable[[RunSpans, Any], None]] = {
    ev.RunStarted: RunSpans._run_started,
    ev.RunFinished: RunSpans._run_finished,
    ev.ModelCallStarted: RunSpans._model_call_started,
    ev.ModelCallFinished: RunSpans._model_call_finished,
    ev.CodeAction: RunSpans._code_action,
    ev.CodeActionFinished: RunSpans._code_action_finished,
    ev.ToolCallRequested: RunSpans._tool_call_requested,
    ev.ToolCallStarted: RunSpans._tool_call_started,
    ev.ToolCallFinished: RunSpans._tool_call_finished,
    ev.StepErrored: RunSpans._step_errored,
    ev.StepFinished: RunSpans._step_finished,
}
