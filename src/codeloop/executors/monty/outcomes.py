"""What a finished (or failed) snippet tells the model: failures, limits, logs, bounded values.

`Outcomes` turns an exception out of a Monty session into an `ExecutionFailure` the model can
act on, and says whether the session has to be restarted (its heap is undefined after a time
limit, a crash or runaway output). The functions below bound what leaves the sandbox.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..base import CodeOutput, ExecutionFailure, ExecutorLimits, limit_failure, truncate_output
from ..inworker.channel import MAX_LINE_BYTES
from ..inworker.values import VALUE_NODE_BUDGET
from .driver import RunState, Stuck
from .failures import Inputs, frames, which_limit
from .hints import HintContext, limit_hint, syntax_hint, with_hint
from .walk import TooLarge, within_cap

if TYPE_CHECKING:
    import pydantic_monty as pm

__all__ = ["Outcomes", "bounded_output", "final_output", "logs_of", "restart_note", "within_value_caps"]


@dataclasses.dataclass(frozen=True)
class Outcomes:
    """Describes failures of one session's snippets (its inputs, limits and hints)."""

    limits: ExecutorLimits
    output_cap: int
    inputs: Inputs
    hints: HintContext

    def limit(self, limit: str) -> ExecutionFailure:
        return limit_failure(self.limits, limit, f"{self.output_cap} bytes")

    def failure(self, exc: BaseException, state: RunState) -> tuple[ExecutionFailure, bool]:
        """Describe `exc` for the model; also say whether the session must be restarted."""
        import pydantic_monty as pm

        if isinstance(exc, Stuck):
            return self.limit("timeout_s"), True
        if isinstance(exc, pm.MontyCrashedError):
            limit = "timeout_s" if exc.timed_out else "memory_bytes" if "memory" in str(exc) else None
            crash = ExecutionFailure("RuntimeError", f"the sandbox process died ({exc}).")
            return (self.limit(limit) if limit else crash), True
        if isinstance(exc, pm.MontySyntaxError):
            return self._syntax_failure(exc), False
        if not isinstance(exc, pm.MontyRuntimeError):  # a remote worker went away, and the like
            return ExecutionFailure("RuntimeError", f"the sandbox stopped unexpectedly ({exc})."), True
        return self._runtime_failure(exc, state)

    def _syntax_failure(self, exc: pm.MontySyntaxError) -> ExecutionFailure:
        stack = frames(exc)
        failure = ExecutionFailure("SyntaxError", str(exc))
        failure = self.inputs.with_frame(failure, stack[-1] if stack else None)
        message = syntax_hint(failure.message, failure.source_line, self.hints.importable)
        return dataclasses.replace(failure, message=message)

    def _runtime_failure(self, exc: pm.MontyRuntimeError, state: RunState) -> tuple[ExecutionFailure, bool]:
        inner = exc.exception()
        kind, message = type(inner).__name__, str(inner)
        limit = which_limit(kind, message, self.output_cap)
        if limit == "max_output_chars" and state.busy_s < self.limits.timeout_s:
            return self.limit(limit), False  # printing past the cap only drops output; the code ran on
        if limit is not None:
            failure = self.inputs.located(self.limit(limit), exc)
            failure = dataclasses.replace(failure, message=failure.message + limit_hint(failure.source_line))
            return failure, limit in ("timeout_s", "max_output_chars")
        kind, message = state.host_errors.get(message, (kind, message))
        return self.inputs.located(ExecutionFailure(kind, with_hint(kind, message, self.hints)), exc), False


def logs_of(state: RunState, limits: ExecutorLimits, restarted: bool) -> str:
    """What the snippet printed, truncated, after a note if the session was restarted first."""
    logs = truncate_output(state.output.output, limits.max_output_chars)
    return (restart_note() if restarted else "") + logs


async def final_output(state: RunState, limits: ExecutorLimits, restarted: bool) -> CodeOutput:
    """The outcome of a snippet that called final_answer: its value and what it printed before."""
    logs = truncate_output(state.output.output[: state.final_logs], limits.max_output_chars)
    prefix = restart_note() if restarted else ""
    too_large = "the final answer is too large to return"
    answer = await bounded_output(state.final_value, too_large)
    return CodeOutput(output=answer, logs=prefix + logs, is_final_answer=True)


async def within_value_caps(roots: Sequence[Any]) -> None:
    """TooLarge unless a path-by-path walk of `roots` stays within the jail's bounds for values
    leaving a sandbox: `VALUE_NODE_BUDGET` items and `MAX_LINE_BYTES` items plus characters.
    Values from Monty keep shared parts, so a small one can be huge as a tree."""
    await within_cap(roots, VALUE_NODE_BUDGET)
    await within_cap(roots, MAX_LINE_BYTES, text=True)


async def bounded_output(value: Any, note: str = "the value is too large to return") -> Any:
    """`value`, or a note in its place when a walk of it (repr, JSON, a copy) would pass the caps."""
    try:
        await within_value_caps([value])
    except TooLarge as exc:
        return f"[{note}: {exc}; print a summary instead]"
    return value


def restart_note() -> str:
    return "[The sandbox was restarted: variables and functions from earlier steps are gone.]\n"
