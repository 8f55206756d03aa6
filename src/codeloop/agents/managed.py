"""Managed agents: a sub-agent presented to its manager as a tool."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import AgentToolCallError, ConfigurationError, ManagedAgentError
from ..events import Event, RunFinished, nested
from ..prompts import populate_template
from ..result import RunResult
from ..tools import Tool

if TYPE_CHECKING:
    from .base import MultiStepAgent

__all__ = ["MIN_TASK_WORDS", "ManagedAgentTool", "forwarding_events", "with_event_sink"]

# The queue into which managed sub-agents forward their events while a step runs.
_EVENT_SINK: ContextVar[asyncio.Queue[Event] | None] = ContextVar("codeloop_event_sink", default=None)
T = TypeVar("T")
MIN_TASK_WORDS = 3
"""A task of fewer words (`hr_desk("Dmitri Falkenberg")`) is refused before the sub-agent runs:
the team member would not know what is asked (a small model, told its task was "Dmitri
Falkenberg", answered with his directory record)."""


class ManagedAgentTool(Tool):
    """A sub-agent presented to its manager as a tool taking a task. Its events are forwarded
    into the manager's stream; if it ends without an answer, the manager gets a
    `ManagedAgentError` (a failure it sees as such), never a made-up result.

    The sub-agent's `prompt_templates["managed_agent"]` apply as in smolagents when set: `task`
    wraps the task it receives, `report` turns its answer into the text its manager gets.
    Unset (the default), the task passes as is and the answer is returned as is."""

    output_type = "any"

    def __init__(self, agent: MultiStepAgent) -> None:
        if not agent.description or not agent.name.isidentifier():
            raise ConfigurationError(
                "A managed agent needs name= (a Python identifier, it is called like a function) "
                "and description= (what it is good for); "
                f"got name={agent.name!r}, description={agent.description!r}."
            )
        self.agent = agent
        self.name = agent.name
        self.description = f"A team member: {agent.description} Give it a complete task in plain words."
        self.inputs = {
            "task": {"type": "string", "description": "The task, with every detail the team member needs."},
            "additional_args": {"type": "object", "description": "Values to pass along.", "nullable": True},
        }
        super().__init__()

    async def forward(self, task: str, additional_args: dict[str, Any] | None = None) -> Any:
        if len(str(task).split()) < MIN_TASK_WORDS:
            raise AgentToolCallError(
                f"{self.name} needs a complete task in plain words, with every detail it needs (such "
                f"as a whole question), not just {task!r}. Its run did not start."
            )
        templates = self.agent.prompt_templates["managed_agent"]
        if templates["task"]:
            variables = {"name": self.name, "task": task}
            task = populate_template(templates["task"], variables, where="['managed_agent']['task']")
        result = await self._run(task, additional_args)
        if not templates["report"]:
            return result.output
        variables = {"name": self.name, "final_answer": result.output}
        return populate_template(templates["report"], variables, where="['managed_agent']['report']")

    async def _run(self, task: str, additional_args: dict[str, Any] | None) -> RunResult:
        sink = _EVENT_SINK.get()
        result: RunResult | None = None
        async for event in self.agent.astream(task, additional_args=additional_args):
            if sink is not None:
                sink.put_nowait(nested(event))
            if isinstance(event, RunFinished) and event.depth == 0:
                result = event.result
        assert result is not None
        if not result.succeeded:
            raise ManagedAgentError(f"Team member {self.name} failed: {result.error}", result)
        return result


async def with_event_sink(queue: asyncio.Queue[Event], work: Awaitable[T]) -> T:
    _EVENT_SINK.set(queue)  # this task's own context: visible to the sub-agents it awaits
    return await work


def forwarding_events() -> bool:
    """Whether this code runs inside a step whose events its manager forwards (a sub-agent's run)."""
    return _EVENT_SINK.get() is not None
