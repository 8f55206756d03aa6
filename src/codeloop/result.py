"""The outcome of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .memory import Memory, MemoryStep, Timing
from .messages import Usage

__all__ = ["RunResult", "RunState"]


class RunState(str, Enum):
    SUCCESS = "success"
    MAX_STEPS = "max_steps_exceeded"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    STUCK = "stuck"
    """The model repeated itself (`CodeAgent(max_repeats=...)` times in a row)."""
    CANCELLED = "cancelled"
    """`agent.cancel()` (or cancelling the task running it) stopped the run mid-step."""
    BUDGET_EXCEEDED = "budget_exceeded"
    """The run reached a limit of its `Budget` (`RunResult.exception` is `BudgetExceeded`)."""
    GUARDRAIL = "guardrail_tripped"
    """A guard stopped the run (`RunResult.exception` is the `GuardrailTripped` naming it)."""
    AWAITING_APPROVAL = "awaiting_approval"
    """Tool calls wait for a human's answer (`RunResult.exception` is the `ApprovalRequired`
    listing them); `agent.resume(run_id, approvals=...)` continues the run."""


@dataclass(kw_only=True)
class RunResult:
    """Everything a run produced. `output` is only set when `state` is SUCCESS: a run that ran
    out of steps or failed never passes a guess off as an answer."""

    output: Any
    state: RunState
    memory: Memory
    usage: Usage
    timing: Timing
    error: str | None = None
    exception: Exception | None = field(default=None, repr=False, compare=False)
    """The exception that ended a failed run (not serialized; `error` is its description)."""
    run_id: str = ""
    """The run's id (`uuid4().hex`), also on its `RunStarted` event."""

    @property
    def steps(self) -> list[MemoryStep]:
        return self.memory.steps

    @property
    def succeeded(self) -> bool:
        return self.state is RunState.SUCCESS

    @property
    def token_usage(self) -> Usage:
        return self.usage
