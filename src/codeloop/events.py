"""Typed events emitted while an agent runs.

Streaming a run is iterating these events. Rendering, logging and telemetry subscribe to them;
none of it lives in the loop. Events from a managed sub-agent are forwarded into the manager's
stream unchanged except for `depth`, and carry the sub-agent's name in `agent`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from .memory import MemoryStep, StepError
from .messages import ChatMessage, MessageDelta, ToolCall

if TYPE_CHECKING:
    from .result import RunResult

__all__ = [
    "ActionOutput",
    "CodeAction",
    "Event",
    "FinalAnswer",
    "ModelDelta",
    "ModelOutput",
    "Observation",
    "PlanReady",
    "RunFinished",
    "RunStarted",
    "StepErrored",
    "StepFinished",
    "ToolCallRequested",
    "nested",
]

E = TypeVar("E", bound="Event")


@dataclass(frozen=True, kw_only=True)
class Event:
    agent: str
    step: int = 0
    depth: int = 0


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    task: str
    run_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ModelDelta(Event):
    delta: MessageDelta


@dataclass(frozen=True, kw_only=True)
class ModelOutput(Event):
    message: ChatMessage


@dataclass(frozen=True, kw_only=True)
class PlanReady(Event):
    plan: str


@dataclass(frozen=True, kw_only=True)
class CodeAction(Event):
    code: str


@dataclass(frozen=True, kw_only=True)
class ToolCallRequested(Event):
    call: ToolCall


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
