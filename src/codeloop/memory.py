"""The run's memory: typed steps that render themselves to model messages and round-trip
through JSON.

A run's memory is what the model sees (rendered by `Memory.to_messages`, or by the agent's
context policy, `codeloop.context`) and what a later process needs to continue the run
(`Memory.to_json` / `Memory.from_json`).

A step's messages are rendered once and cached on the step (`rendered`), so building a request
from a long memory does not render every step again: a run renders each step once per form, not
once per request. The cache is checked against the step's attributes (the same objects, the same
list items): assigning a field anew (`step.observations_images = None`, as smolagents' browser
example does to old steps) renders the step afresh.

Images (`TaskStep.images`, `ActionStep.observations_images`) are stored inline: `to_json` writes
an image's bytes as base64 beside its MIME type (a URL image keeps just its URL), so a saved
memory is one self-contained JSON text that `from_json` turns back into equal `ImageContent`s.

The step classes keep smolagents' names, and answer to smolagents' field names where codeloop's
differ (`TaskStep.task_images`, `ActionStep.token_usage`, `ActionStep.model_output_message`...).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .images import ImageLike, as_images
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
    "SystemPromptStep",
    "TaskStep",
    "Timing",
    "ToolResult",
    "rendered",
]

S = TypeVar("S")
T = TypeVar("T")
_CACHE = "_rendered"
"""The attribute of a step that holds its cached renderings (not a field: never compared,
serialized nor shown)."""


@dataclass(kw_only=True)
class Timing:
    start_time: float = field(default_factory=time.time)
    end_time: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True, kw_only=True)
class StepError:
    """An error the model caused in a step: its type name and the message shown to the model.
    `str(error)` is the message, as for smolagents' `AgentError`."""

    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> StepError:
        return cls(type=type(exc).__name__, message=str(exc))

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, kw_only=True)
class ToolResult:
    """The outcome of one tool call of a tool-calling step."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(kw_only=True)
class MemoryStep:
    """The base of every step. Register a step callback for `MemoryStep` to see every step."""

    def to_messages(self) -> list[ChatMessage]:
        """The messages this step contributes to the model's next request."""
        raise NotImplementedError

    def dict(self) -> dict[str, Any]:
        """The step as JSON-compatible data (the shape `Memory.to_json` writes)."""
        data: dict[str, Any] = _adapter(single=True).dump_python(self, mode="json", fallback=repr)
        return data


@dataclass(kw_only=True, init=False)
class TaskStep(MemoryStep):
    """A task given to the agent, with its images (`task_images` is smolagents' name for them).

    The images may be given as anything `codeloop.images.as_image` takes (PIL images, bytes,
    files, URLs); they are kept as `ImageContent`."""

    kind: Literal["task"] = "task"
    task: str
    images: tuple[ImageContent, ...] = ()

    def __init__(
        self,
        *,
        task: str,
        images: ImageLike | Sequence[ImageLike] | None = (),
        task_images: ImageLike | Sequence[ImageLike] | None = None,
        kind: Literal["task"] = "task",
    ) -> None:
        own, theirs = as_images(images), as_images(task_images)
        if own and theirs:
            raise TypeError("TaskStep takes images= or task_images= (smolagents' name), not both.")
        self.kind = kind
        self.task = task
        self.images = theirs or own

    @property
    def task_images(self) -> list[ImageContent] | None:
        """smolagents' name for `images`."""
        return list(self.images) or None

    @task_images.setter
    def task_images(self, images: ImageLike | Sequence[ImageLike] | None) -> None:
        self.images = as_images(images)

    def to_messages(self) -> list[ChatMessage]:
        return [ChatMessage(role=Role.USER, content=f"Task: {self.task}", images=self.images)]


@dataclass(kw_only=True)
class SystemPromptStep(MemoryStep):
    """The system prompt of the latest run, as `memory.system_prompt` (smolagents' shape).

    Not part of `Memory.steps` and not serialized: the agent renders its system prompt afresh
    for every run, so a saved memory survives prompt changes between versions."""

    system_prompt: str

    def to_messages(self) -> list[ChatMessage]:
        return [ChatMessage(role=Role.SYSTEM, content=self.system_prompt)]


@dataclass(kw_only=True)
class PlanningStep(MemoryStep):
    kind: Literal["planning"] = "planning"
    plan: str
    usage: Usage | None = None
    timing: Timing = field(default_factory=Timing)

    @property
    def token_usage(self) -> Usage | None:
        """smolagents' name for `usage`."""
        return self.usage

    @property
    def model_output_message(self) -> ChatMessage:
        """The model's reply that holds the plan (smolagents' field, rebuilt from the step)."""
        return ChatMessage(role=Role.ASSISTANT, content=self.plan, usage=self.usage)

    def to_messages(self) -> list[ChatMessage]:
        return [
            ChatMessage(role=Role.ASSISTANT, content=self.plan),
            ChatMessage(role=Role.USER, content="Now carry out the plan, one step at a time."),
        ]


@dataclass(kw_only=True)
class ActionStep(MemoryStep):
    """One model call and the action it produced: code (CodeAgent) or tool calls.

    `observations_images` are images shown to the model after the step's observations: images
    the step's tools returned, and any a step callback adds (e.g. a screenshot)."""

    kind: Literal["action"] = "action"
    step_number: int
    model_output: str = ""
    reasoning: str | None = None
    code_action: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    native_tool_calls: bool = False
    tool_results: tuple[ToolResult, ...] = ()
    observations: str = ""
    observations_images: list[ImageContent] | None = None
    error: StepError | None = None
    action_output: Any = None
    is_final_answer: bool = False
    usage: Usage | None = None
    timing: Timing = field(default_factory=Timing)
    model_timing: Timing | None = None
    """When the step's model call began and ended (None: no call, e.g. a resumed run's stored
    reply); the rest of `timing` is the action."""

    @property
    def token_usage(self) -> Usage | None:
        """smolagents' name for `usage`."""
        return self.usage

    @token_usage.setter
    def token_usage(self, usage: Usage | None) -> None:
        self.usage = usage

    @property
    def model_output_message(self) -> ChatMessage:
        """The model's reply (smolagents' field, rebuilt from the step)."""
        return ChatMessage(
            role=Role.ASSISTANT,
            content=self.model_output,
            tool_calls=self.tool_calls if self.native_tool_calls else (),
            reasoning=self.reasoning,
            usage=self.usage,
        )

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
        if self.observations_images:
            images = tuple(self.observations_images)
            messages.append(ChatMessage(role=Role.USER, content="Observation images:", images=images))
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
class FinalAnswerStep(MemoryStep):
    kind: Literal["final_answer"] = "final_answer"
    output: Any

    def to_messages(self) -> list[ChatMessage]:
        return []


StoredStep = TaskStep | PlanningStep | ActionStep | FinalAnswerStep
"""The steps `Memory.steps` holds and `Memory.to_json` writes."""


@dataclass(kw_only=True)
class Memory:
    """The steps of a conversation, oldest first (smolagents' `AgentMemory`).

    `system_prompt` is the system prompt of the latest run, for inspection. It is neither
    serialized nor compared: the agent renders its prompt afresh for every model call, so a saved
    memory survives prompt changes between versions."""

    steps: list[MemoryStep] = field(default_factory=list)
    system_prompt: SystemPromptStep = field(
        default_factory=lambda: SystemPromptStep(system_prompt=""), compare=False
    )

    def to_messages(self, system_prompt: str) -> list[ChatMessage]:
        """Every step, as it happened, after the system prompt (smolagents' full history; an
        agent's requests are built by its context policy, see `codeloop.context`)."""
        messages = [ChatMessage(role=Role.SYSTEM, content=system_prompt)]
        for step in self.steps:
            messages.extend(rendered(step, "full", _own_messages))
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

    def reset(self) -> None:
        """Forget every step (the system prompt stays)."""
        self.steps = []

    def get_full_steps(self) -> list[dict[str, Any]]:
        """Every step as JSON-compatible data."""
        return [step.dict() for step in self.steps]

    def get_succinct_steps(self) -> list[dict[str, Any]]:
        """smolagents' name; the same as `get_full_steps` (codeloop stores no input messages)."""
        return self.get_full_steps()

    def return_full_code(self) -> str:
        """The code actions of every step, joined into one script."""
        return "\n\n".join(s.code_action for s in self.action_steps() if s.code_action is not None)

    def to_json(self) -> str:
        """Serialize losslessly for JSON-compatible values; other action outputs become repr()."""
        return _adapter().dump_json(self.steps, fallback=repr).decode()

    @classmethod
    def from_json(cls, data: str | bytes) -> Memory:
        steps: list[MemoryStep] = list(_adapter().validate_json(data))
        return cls(steps=steps)


def rendered(step: S, form: Hashable, render: Callable[[S], T]) -> T:
    """`render(step)`, computed once per step and `form` and then cached on the step, for as
    long as the step's attributes are the same objects (lists: the same items).

    `form` names the rendering (`"full"` for `step.to_messages()`; a context policy uses its own
    forms, its settings included). The result is shared by every later call: do not change it.
    A change inside an attribute's value (a key set in a tool call's arguments dict) is not
    seen: assign the attribute anew. A step without `__dict__` (slots) is rendered every time."""
    attributes = getattr(step, "__dict__", None)
    if attributes is None:
        return render(step)
    cached: dict[Hashable, tuple[tuple[Any, ...], Any]] = attributes.setdefault(_CACHE, {})
    state = _state(attributes, cached)
    hit = cached.get(form)
    if hit is not None and _same(hit[0], state):
        result: T = hit[1]
        return result
    result = render(step)
    cached[form] = (state, result)
    return result


def _own_messages(step: MemoryStep) -> list[ChatMessage]:
    return step.to_messages()


def _state(attributes: dict[str, Any], cache: object) -> tuple[Any, ...]:
    """What a rendering depends on: the attributes' names and values (a list as its items),
    but not the rendering `cache` itself (kept in the attributes)."""
    values = [tuple(v) if type(v) is list else v for v in attributes.values() if v is not cache]
    return (*attributes, *values)


def _same(before: tuple[Any, ...], now: tuple[Any, ...]) -> bool:
    """Whether two states hold the same objects (identity, not equality: cheap, and never
    fooled by an equal-looking value); the cache keeps `before` alive, so no id is reused."""
    if len(before) != len(now):
        return False
    for old, new in zip(before, now, strict=True):
        if old is new:
            continue
        if type(old) is not tuple or type(new) is not tuple or len(old) != len(new):
            return False
        if not all(map(operator.is_, old, new)):
            return False
    return True


@cache
def _adapter(single: bool = False) -> TypeAdapter[Any]:
    """The pydantic adapter for a list of stored steps (or for one step, with `single`)."""
    from typing import Annotated

    from pydantic import ConfigDict, Field, TypeAdapter

    step = Annotated[StoredStep, Field(discriminator="kind")]
    config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
    return TypeAdapter(step if single else list[step], config=config)
