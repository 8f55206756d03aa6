"""The run's memory: typed steps that render themselves to model messages and round-trip
through JSON.

A run's memory is what the model sees (rendered by `Memory.to_messages`) and what a later
process needs to continue the run (`Memory.to_json` / `Memory.from_json`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from .messages import ChatMessage, ImageContent, Role, ToolCall, Usage

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = [
    "ActionStep",
    "FinalAnswerStep",
    "Memory",
    "MemoryStep",
    "PlanningStep",
    "StepError",
    "TaskStep",
    "Timing",
    "ToolResult",
]


@dataclass(kw_only=True)
class Timing:
    start_time: float = field(default_factory=time.time)
    end_time: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True, kw_only=True)
class StepError:
    """An error the model caused in a step: its type name and the message shown to the model."""

    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> StepError:
        return cls(type=type(exc).__name__, message=str(exc))


@dataclass(frozen=True, kw_only=True)
class ToolResult:
    """The outcome of one tool call of a tool-calling step."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(kw_only=True)
class TaskStep:
    kind: Literal["task"] = "task"
    task: str
    images: tuple[ImageContent, ...] = ()

    def to_messages(self) -> list[ChatMessage]:
        return [ChatMessage(role=Role.USER, content=f"Task: {self.task}", images=self.images)]


@dataclass(kw_only=True)
class PlanningStep:
    kind: Literal["planning"] = "planning"
    plan: str
    usage: Usage | None = None
    timing: Timing = field(default_factory=Timing)

    def to_messages(self) -> list[ChatMessage]:
        return [
            ChatMessage(role=Role.ASSISTANT, content=self.plan),
            ChatMessage(role=Role.USER, content="Now carry out the plan, one step at a time."),
        ]


@dataclass(kw_only=True)
class ActionStep:
    """One model call and the action it produced: code (CodeAgent) or tool calls."""

    kind: Literal["action"] = "action"
    step_number: int
    model_output: str = ""
    reasoning: str | None = None
    code_action: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    native_tool_calls: bool = False
    tool_results: tuple[ToolResult, ...] = ()
    observations: str = ""
    error: StepError | None = None
    action_output: Any = None
    is_final_answer: bool = False
    usage: Usage | None = None
    timing: Timing = field(default_factory=Timing)

    @property
    def token_usage(self) -> Usage | None:
        """smolagents' name for `usage`."""
        return self.usage

    def to_messages(self) -> list[ChatMessage]:
        calls = self.tool_calls if self.native_tool_calls else ()
        messages = [ChatMessage(role=Role.ASSISTANT, content=self.model_output, tool_calls=calls)]
        if calls:
            messages += [
                ChatMessage(role=Role.TOOL, content=r.content, tool_call_id=r.call_id, name=r.name)
                for r in self.tool_results
            ]
        elif self.tool_results:
            text = "\n".join(f"{r.name}: {r.content}" for r in self.tool_results)
            messages.append(ChatMessage(role=Role.USER, content=f"Observation:\n{text}"))
        feedback = self._feedback()
        if feedback:
            messages.append(ChatMessage(role=Role.USER, content=feedback))
        return messages

    def _feedback(self) -> str:
        parts = []
        if self.observations and not self.tool_results:
            parts.append(f"Observation:\n{self.observations}")
        if self.error is not None:
            parts.append(f"Error: {self.error.message}\nFix this and try again.")
        return "\n".join(parts)


@dataclass(kw_only=True)
class FinalAnswerStep:
    kind: Literal["final_answer"] = "final_answer"
    output: Any

    def to_messages(self) -> list[ChatMessage]:
        return []


MemoryStep = TaskStep | PlanningStep | ActionStep | FinalAnswerStep


@dataclass(kw_only=True)
class Memory:
    """The steps of a conversation, oldest first. The system prompt is not stored: the agent
    renders it fresh for every model call, so memory survives prompt changes between versions."""

    steps: list[MemoryStep] = field(default_factory=list)

    def to_messages(self, system_prompt: str) -> list[ChatMessage]:
        messages = [ChatMessage(role=Role.SYSTEM, content=system_prompt)]
        for step in self.steps:
            messages.extend(step.to_messages())
        return messages

    def action_steps(self) -> list[ActionStep]:
        return [s for s in self.steps if isinstance(s, ActionStep)]

    def usage(self) -> Usage:
        total = Usage()
        for step in self.steps:
            usage = getattr(step, "usage", None)
            if usage is not None:
                total = total + usage
        return total

    def to_json(self) -> str:
        """Serialize losslessly for JSON-compatible values; other action outputs become repr()."""
        return _adapter().dump_json(self.steps, fallback=repr).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> Memory:
        return cls(steps=_adapter().validate_json(data))


@cache
def _adapter() -> TypeAdapter[list[MemoryStep]]:
    from typing import Annotated

    from pydantic import ConfigDict, Field, TypeAdapter

    step = Annotated[MemoryStep, Field(discriminator="kind")]
    config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
    return TypeAdapter(list[step], config=config)
