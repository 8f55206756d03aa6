"""Which tool call is running: its run, step and place in the step, and its idempotency key.

A tool with a side effect that must happen once (a payment, an e-mail, a line appended to a file)
reads `current_call().key` and checks whether that key was already applied before acting. The
key is the same when a durable run replays or resumes the call after a crash, so a resumed run
that must call the tool again (it died between the side effect and the journal write) finds the
key already applied and does not repeat the effect.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["ToolCallContext", "current_call"]


@dataclass(frozen=True)
class ToolCallContext:
    """One tool call of a run: the run, the action step's number and the call's index in the
    step (a CodeAgent: the calls its code made, in order; a ToolCallingAgent: the call's position
    in the model's message). `key` is `"run_id/step_number/call_index"`."""

    run_id: str
    step_number: int
    call_index: int

    @property
    def key(self) -> str:
        return f"{self.run_id}/{self.step_number}/{self.call_index}"


_current: ContextVar[ToolCallContext | None] = ContextVar("codeloop_tool_call", default=None)


def current_call() -> ToolCallContext | None:
    """The tool call running now (set by the agent around each tool invocation), or None
    outside an agent's tool call."""
    return _current.get()
