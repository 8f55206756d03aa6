"""Typed events emitted while an agent runs.

Streaming a run is iterating these events. Rendering, logging and telemetry subscribe to them;
none of it lives in the loop. Events from a managed sub-agent are forwarded into the manager's
stream unchanged except for `depth`, and carry the sub-agent's name in `agent`.

Every event carries the wall-clock `timestamp` of the moment it happened, so a subscriber that
sees it later (a forwarded sub-agent event, a trace exporter) still places it right in time.
Phases come in pairs: `ModelCallStarted`/`ModelCallFinished`, `CodeAction`/`CodeActionFinished`,
`ToolCallStarted`/`ToolCallFinished` (a tool actually called: not one answered from a durable
run's journal), `RunStarted`/`RunFinished`.

`add_run_observer` registers a subscriber for every top-level run of every agent (telemetry uses
it): it sees the run's events, its sub-agents' included, without being given to each agent.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

from .memory import MemoryStep, StepError
from .messages import ChatMessage, MessageDelta, ToolCall

if TYPE_CHECKING:
    from .agents import MultiStepAgent
    from .result import RunResult

__all__ = [
    "ActionOutput",
    "CodeAction",
    "CodeActionFinished",
    "Event",
    "EventHandler",
    "FinalAnswer",
    "ModelCallFinished",
    "ModelCallStarted",
    "ModelDelta",
    "ModelOutput",
    "Observation",
    "PlanReady",
    "RunFinished",
    "RunObserver",
    "RunStarted",
    "StepErrored",
    "StepFinished",
    "ToolCallFinished",
    "ToolCallRequested",
    "ToolCallStarted",
    "add_run_observer",
    "event_to_dict",
    "nested",
    "run_observers",
]

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, kw_only=True)
class Event:
    agent: str
    step: int = 0
    depth: int = 0
    timestamp: float = field(default_factory=time.time, compare=False)
    """When it happened (`time.time()`)."""


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    task: str
    run_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ModelDelta(Event):
    delta: MessageDelta


@dataclass(frozen=True, kw_only=True)
class ModelCallStarted(Event):
    """A request to the model is sent: for an action step (`purpose="action"`) or a plan."""

    model_id: str
    purpose: str = "action"


@dataclass(frozen=True, kw_only=True)
class ModelCallFinished(Event):
    """The model's whole reply to the request (its `usage` and `finish_reason` included)."""

    model_id: str
    message: ChatMessage
    purpose: str = "action"


@dataclass(frozen=True, kw_only=True)
class ModelOutput(Event):
    message: ChatMessage


@dataclass(frozen=True, kw_only=True)
class PlanReady(Event):
    plan: str


@dataclass(frozen=True, kw_only=True)
class CodeAction(Event):
    """A code action about to run in `executor` (its type name) under `limits`."""

    code: str
    executor: str = ""
    limits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CodeActionFinished(Event):
    """The code action ran: `error` is its failure as the model sees it, None if it succeeded."""

    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class ToolCallRequested(Event):
    call: ToolCall


@dataclass(frozen=True, kw_only=True)
class ToolCallStarted(Event):
    """A tool is called (from a tool-calling step, or from a code action's code); `call_index`
    is its place among the step's calls, its `codeloop.current_call()` key."""

    name: str
    arguments: dict[str, Any]
    call_index: int = 0


@dataclass(frozen=True, kw_only=True)
class ToolCallFinished(Event):
    """The tool returned (`result`: a short text of its value) or failed (`error`)."""

    name: str
    call_index: int = 0
    result: str = ""
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Observation(Event):
    """What the model will see from its action: printed output, or one tool's result
    (`is_error`: the tool failed; a `StepErrored` with the same text follows)."""

    text: str
    call_id: str | None = None
    is_error: bool = False


@dataclass(frozen=True, kw_only=True)
class ActionOutput(Event):
    """The value of a code action's last expression."""

    output: Any


@dataclass(frozen=True, kw_only=True)
class StepErrored(Event):
    error: StepError


@dataclass(frozen=True, kw_only=True)
class StepFinished(Event):
    memory_step: MemoryStep


@dataclass(frozen=True, kw_only=True)
class FinalAnswer(Event):
    output: Any


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    result: RunResult


def nested(event: E) -> E:
    """The same event, one level deeper (forwarded from a sub-agent to its manager)."""
    return replace(event, depth=event.depth + 1)


EventHandler = Callable[[Event], "Awaitable[Any] | Any"]
"""A subscriber: called with each event (it may be async)."""

RunObserver = Callable[["MultiStepAgent"], "EventHandler | None"]
"""Called as each top-level run starts with its agent; returns the handler for that run's
events (None: not this run)."""

_OBSERVERS: list[RunObserver] = []


def add_run_observer(observer: RunObserver) -> Callable[[], None]:
    """Have `observer` see every top-level run from now on; returns the function that stops it."""
    _OBSERVERS.append(observer)

    def remove() -> None:
        if observer in _OBSERVERS:
            _OBSERVERS.remove(observer)

    return remove


def run_observers(agent: MultiStepAgent) -> list[EventHandler]:
    """The handlers the registered observers give for a run of `agent` (none: nothing to do)."""
    if not _OBSERVERS:
        return []
    return [h for observer in list(_OBSERVERS) if (h := observer(agent)) is not None]


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as JSON-compatible data: `{"type": "CodeAction", "agent": ..., ...}`.

    A `RunFinished` carries its result's summary (state, output, error, usage, duration, step
    count), not the whole memory: the steps went by as their own events. A model message keeps
    its text, reasoning, tool calls, usage and finish reason; values JSON cannot hold are
    written as their `repr`."""
    data: dict[str, Any] = {"type": type(event).__name__}
    for f in fields(event):
        data[f.name] = _jsonable(getattr(event, f.name))
    return data


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    from .result import RunResult

    if isinstance(value, RunResult):
        return {
            "run_id": value.run_id,
            "state": value.state.value,
            "output": to_jsonable_python(value.output, fallback=repr),
            "error": value.error,
            "usage": to_jsonable_python(value.usage),
            "duration": value.timing.duration,
            "steps": len(value.memory.action_steps()),
        }
    if isinstance(value, MemoryStep):
        return value.dict()
    if isinstance(value, ChatMessage):
        keep = ("role", "content", "reasoning", "tool_calls", "usage", "finish_reason")
        return {k: to_jsonable_python(getattr(value, k), fallback=repr) for k in keep}
    return to_jsonable_python(value, fallback=repr)
