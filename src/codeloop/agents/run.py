"""The state of one run, and how a run's outcome becomes a result (or an exception).

Agents hold configuration; a `Run` holds everything that changes while a task runs: its id, its
memory, the step counters, the executor session (a CodeAgent's `CodeSession`), the latest model
message, an interruption or a tool guard's stop asked for, and at the end its `RunResult`. One
agent can drive any number of runs at once: they share nothing but its configuration.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MaxStepsExceeded, RunCancelled, RunFailed, RunInterrupted, RunStuck
from ..events import Event
from ..executors.base import Executor
from ..memory import Memory, TaskStep, Timing
from ..messages import ChatMessage
from ..result import RunResult, RunState
from .guardrails import GuardrailTripped
from .guards import RunGuard

if TYPE_CHECKING:
    from .approval import RunApproval
    from .code_session import CodeSession
    from .durable import DurableRun

__all__ = ["Run", "answer_or_raise", "describe_failure", "latest_task", "short_repr", "task_text"]


@dataclass
class Run:
    """The mutable state of one run."""

    memory: Memory
    max_steps: int
    step_number: int
    executor: Executor | None = None
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    system_prompt: str = ""
    tool_schemas: list[dict[str, Any]] | None = None
    model_settings: dict[str, Any] = field(default_factory=dict)
    """Extra arguments of the action steps' model calls (the ToolCallingAgent's `response_format`)."""
    message: ChatMessage | None = None
    result: RunResult | None = None
    started: float = field(default_factory=time.time)
    steps_taken: int = 0
    planned_at: int | None = None
    """`steps_taken` when the latest plan was made: one plan per due point."""
    guard: RunGuard = field(default_factory=RunGuard)
    """The watch for a model that repeats itself; `guard.stuck` ends the run."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    agent_name: str = ""
    """The name of the agent running it (on the events its tool calls send)."""
    session: CodeSession | None = None
    """A CodeAgent's executor session and what it knows of the code run in it."""
    interrupt_requested: bool = False
    """Set by `agent.interrupt()`: the run ends once the step in progress is over."""
    task: asyncio.Task[Any] | None = None
    """The task the run's loop runs in (what `agent.cancel()` cancels), with its event loop."""
    loop: asyncio.AbstractEventLoop | None = None
    cancel_reason: str | None = None
    """Why `agent.cancel()` stopped the run (None: not cancelled through the agent)."""
    tripped: GuardrailTripped | None = None
    """The stop a tool guard called for in the current action (the loop ends the run after it,
    even when the model's code caught the error)."""
    durable: DurableRun | None = None
    """The run's link to its run store (`codeloop.agents.durable`); None without `store=`."""
    approval: RunApproval | None = None
    """The run's approvals of tool calls (`codeloop.agents.approval`); None when none are needed."""

    def take_tripped(self) -> GuardrailTripped | None:
        tripped, self.tripped = self.tripped, None
        return tripped

    @property
    def on_last_step(self) -> bool:
        """Whether the step in progress is the run's last one (`max_steps` runs out after it)."""
        return self.steps_taken + 1 >= self.max_steps

    def finish(
        self,
        state: RunState,
        *,
        output: Any = None,
        error: str | None = None,
        exception: Exception | None = None,
    ) -> None:
        """End the run: its result, with the memory, usage and timing as they are now."""
        self.result = RunResult(
            output=output,
            state=state,
            memory=self.memory,
            usage=self.memory.usage(),
            timing=Timing(start_time=self.started, end_time=time.time()),
            error=error,
            exception=exception,
            run_id=self.run_id,
        )


def latest_task(memory: Memory) -> str:
    tasks = [s.task for s in memory.steps if isinstance(s, TaskStep)]
    return tasks[-1] if tasks else ""


def task_text(task: str, additional_args: Mapping[str, Any] | None) -> str:
    if not additional_args:
        return task
    names = ", ".join(f"{k} ({type(v).__name__})" for k, v in additional_args.items())
    return f"{task}\nThese variables are available to your code: {names}."


def answer_or_raise(result: RunResult) -> Any:
    """The answer of a run that succeeded; for any other, the typed `RunFailed` it ended with."""
    if result.succeeded:
        return result.output
    if result.state is RunState.MAX_STEPS:
        raise MaxStepsExceeded(result.error or "max_steps exceeded", result)
    if result.state is RunState.INTERRUPTED:
        raise RunInterrupted(result.error or "the run was interrupted", result)
    if result.state is RunState.CANCELLED:
        raise RunCancelled(result.error or "the run was cancelled", result)
    if result.state is RunState.STUCK:
        raise RunStuck(result.error or "the model repeated itself", result)
    if isinstance(result.exception, RunFailed):
        result.exception.result = result
        raise result.exception
    raise RunFailed(result.error or "the run failed", result) from result.exception


def describe_failure(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {exc}"


def short_repr(value: Any, limit: int = 2000) -> str:
    """`repr(value)` cut at `limit` characters, built only that far: a huge value (or one whose
    shared parts make it exponential as a tree) costs work in proportion to `limit`."""
    pieces: list[str] = []
    total = 0
    for piece in _repr_pieces(value):
        pieces.append(piece)
        total += len(piece)
        if total > limit:
            return "".join(pieces)[:limit] + f"... [cut at {limit} chars]"
    return "".join(pieces)


class _Text(str):
    """Literal repr text on `_repr_pieces`' stack (brackets, separators)."""


_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("frozenset({", "})"), dict: ("{", "}")
}  # fmt: skip


def _leaf_repr(value: Any) -> str:
    if type(value) is str and len(value) > 4096:
        return repr(value[:4096]) + "..."
    try:
        return repr(value)
    except ValueError:  # an int too long to print
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else "<unprintable>"


def _repr_pieces(value: Any) -> Iterator[str]:
    """The text of `repr(value)` piece by piece, depth first, without recursion; the built-in
    containers (exact types) are opened here, anything else is one `repr()` call."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is _Text:
            yield item
        elif kind not in _BRACKETS:
            yield _leaf_repr(item)
        elif not item:
            yield "set()" if kind is set else "frozenset()" if kind is frozenset else repr(item)
        else:
            opening, closing = _BRACKETS[kind]
            yield opening
            stack.append(_Text(("," if kind is tuple and len(item) == 1 else "") + closing))
            stack.extend(reversed(_repr_parts(item)))


def _repr_parts(item: Any) -> list[Any]:
    parts: list[Any] = []
    pairs = item.items() if isinstance(item, dict) else ((v, None) for v in item)
    for index, (first, second) in enumerate(pairs):
        if index:
            parts.append(_Text(", "))
        if index > 4096:
            parts.append(_Text("..."))
            break
        parts.append(first)
        if isinstance(item, dict):
            parts += [_Text(": "), second]
    return parts
