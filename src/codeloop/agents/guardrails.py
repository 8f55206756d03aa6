"""Guardrails: user checks on what goes into a run, what comes out, and every tool call.

Three kinds, each a list of callables (sync or `async`) on both agents:

* `input_guards`: see the task before the run starts: `guard(task)`;
* `output_guards`: see the final answer (already validated against `output_type`):
  `guard(answer, memory)`, the same call as smolagents' `final_answer_checks`, which keep
  working and run first;
* `tool_guards`: see each tool call before it runs: `guard(name, arguments)`, `arguments` a dict
  by parameter name (for the CodeAgent, the call the code makes, positional arguments named).

A guard gets only as many positional arguments as it takes, and `agent=` if it accepts it.
What it returns decides:

* `None`, `True` or `GuardResult.allow()`: go on;
* `False`, `GuardResult.reject(reason)`, or raising any exception: reject. The model sees the
  reason as an error and the run goes on: a rejected final answer is not accepted, a rejected
  tool call does not run (in the CodeAgent it raises `GuardRejected` in the snippet; in the
  ToolCallingAgent its result is an error); a rejected task runs with the reason added to it;
* `GuardResult.stop(reason)` (or raising `GuardrailTripped`): the run ends at once with
  `RunState.GUARDRAIL` and `RunResult.exception` a `GuardrailTripped` naming the guard, its kind and
  the reason; `agent.run()` raises it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from ..errors import AgentError, FinalAnswerRejected, RunFailed
from .callbacks import maybe_await

if TYPE_CHECKING:
    from ..memory import Memory
    from .base import MultiStepAgent

__all__ = [
    "Guard",
    "GuardAction",
    "GuardKind",
    "GuardRejected",
    "GuardResult",
    "GuardrailTripped",
    "Guardrails",
    "OutputGuardRejected",
]

Guard = Callable[..., Any]
GuardKind = Literal["input", "output", "tool"]


class GuardAction(str, Enum):
    ALLOW = "allow"
    REJECT = "reject"
    STOP = "stop"


@dataclass(frozen=True)
class GuardResult:
    """A guard's verdict: `allow()`, `reject(reason)` (the model is told), `stop(reason)`."""

    action: GuardAction = GuardAction.ALLOW
    reason: str = ""

    @classmethod
    def allow(cls) -> GuardResult:
        return cls(GuardAction.ALLOW)

    @classmethod
    def reject(cls, reason: str) -> GuardResult:
        return cls(GuardAction.REJECT, reason)

    @classmethod
    def stop(cls, reason: str) -> GuardResult:
        return cls(GuardAction.STOP, reason)


class GuardRejected(AgentError):
    """A guard rejected a tool call or a final answer; `str(err)` is what the model sees."""

    def __init__(self, guard: str, kind: GuardKind, reason: str) -> None:
        super().__init__(f"Rejected by {kind} guard {guard}: {reason}")
        self.guard, self.kind, self.reason = guard, kind, reason


class OutputGuardRejected(GuardRejected, FinalAnswerRejected):
    """An output guard rejected the final answer."""


class GuardrailTripped(RunFailed):
    """A guard stopped the run. `guard` names it, `kind` is "input", "output" or "tool"."""

    def __init__(self, guard: str, kind: GuardKind, reason: str) -> None:
        super().__init__(f"Run stopped by {kind} guard {guard}: {reason}")
        self.guard, self.kind, self.reason = guard, kind, reason


@dataclass
class Guardrails:
    """An agent's guards, and the one place each kind is run from."""

    input: tuple[Guard, ...] = ()
    output: tuple[Guard, ...] = ()
    tool: tuple[Guard, ...] = ()
    final_answer_checks: list[Guard] = field(default_factory=list)

    async def check_input(self, task: str, agent: MultiStepAgent) -> str:
        """The task as the model will see it: with each rejecting guard's reason appended."""
        notes = []
        for guard in self.input:
            verdict = await _verdict(guard, (task,), agent, "input")
            if verdict is not None:
                notes.append(f"Note from input guard {_name(guard)}: {verdict}")
        return "\n".join([task, *notes])

    async def check_output(self, answer: Any, memory: Memory, agent: MultiStepAgent) -> None:
        """Raise `FinalAnswerRejected` (or `GuardrailTripped`) unless every check accepts `answer`."""
        for check in self.final_answer_checks:
            await _legacy_check(check, answer, memory, agent)
        for guard in self.output:
            reason = await _verdict(guard, (answer, memory), agent, "output")
            if reason is not None:
                raise OutputGuardRejected(_name(guard), "output", reason)

    async def check_tool(self, name: str, arguments: Mapping[str, Any], agent: MultiStepAgent) -> None:
        """Raise `GuardRejected` if a guard rejects the call, `GuardrailTripped` if one stops the
        run. The caller records a stop on its run (`Run.tripped`), so the loop ends that run even
        when the raise is caught, as in code run by an executor: guardrails are configuration,
        shared by every run of the agent."""
        for guard in self.tool:
            reason = await _verdict(guard, (name, dict(arguments)), agent, "tool")
            if reason is not None:
                raise GuardRejected(_name(guard), "tool", reason)


async def _verdict(guard: Guard, args: tuple[Any, ...], agent: MultiStepAgent, kind: GuardKind) -> str | None:
    """None to allow; the reason for a rejection; raises `GuardrailTripped` for a stop."""
    try:
        result = await maybe_await(_call(guard, args, agent))
    except GuardrailTripped:
        raise
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if result is None or result is True:
        return None
    if result is False:
        return "the guard refused it."
    if not isinstance(result, GuardResult):
        raise TypeError(f"{kind} guard {_name(guard)} returned {result!r}: return a GuardResult or a bool.")
    if result.action is GuardAction.STOP:
        raise GuardrailTripped(_name(guard), kind, result.reason)
    if result.action is GuardAction.REJECT:
        return result.reason or "the guard refused it."
    return None


async def _legacy_check(check: Guard, answer: Any, memory: Memory, agent: MultiStepAgent) -> None:
    """A smolagents `final_answer_checks` function: raising or returning falsy rejects."""
    name = _name(check)
    try:
        accepted = await maybe_await(_call(check, (answer, memory), agent))
    except GuardrailTripped:
        raise
    except Exception as exc:
        raise FinalAnswerRejected(f"Final answer {answer!r} rejected by {name}: {exc}") from exc
    if isinstance(accepted, GuardResult):
        if accepted.action is GuardAction.STOP:
            raise GuardrailTripped(name, "output", accepted.reason)
        accepted = accepted.action is GuardAction.ALLOW
    if not accepted:
        raise FinalAnswerRejected(f"Final answer {answer!r} rejected by check {name}. Reconsider it.")


def _call(func: Guard, args: Sequence[Any], agent: MultiStepAgent) -> Any:
    """`func` with as many of `args` as it takes positionally, and `agent=` if it accepts it."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return func(*args)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        count = len(args)
    else:
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        count = len([p for p in params if p.kind in positional and p.name != "agent"])
    accepts_agent = any(p.name == "agent" or p.kind is p.VAR_KEYWORD for p in params)
    return func(*args[:count], agent=agent) if accepts_agent else func(*args[:count])


def _name(guard: Guard) -> str:
    return getattr(guard, "__name__", None) or type(guard).__name__
