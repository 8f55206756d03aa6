"""The executor seam: where a code action runs.

An executor is one sandbox session. The agent starts it with the host functions the code may call
(tools, managed agents; `final_answer` is handled by the executor itself), runs snippets in it,
and closes it. Variables persist between `run` calls of one session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CodeOutput",
    "ExecutionFailure",
    "Executor",
    "ExecutorLimits",
    "HostFunction",
    "limit_failure",
    "truncate_output",
]

HostFunction = Callable[..., Any | Awaitable[Any]]
"""A function the sandboxed code may call. It runs in the host; it may be sync or async."""


@dataclass(frozen=True)
class ExecutorLimits:
    """Resource limits for one code action."""

    timeout_s: float = 10.0
    memory_bytes: int = 256 * 1024 * 1024
    max_output_chars: int = 20_000
    max_recursion_depth: int = 500


@dataclass(frozen=True)
class ExecutionFailure:
    """Why a snippet failed, in words the model can act on.

    `type` is the exception type (`ZeroDivisionError`) or, for a limit, `TimeoutError` /
    `MemoryError` / `RecursionError` with `limit` naming which limit fired. `state_lost` is true
    when the session had to be restarted and the snippet's variables are gone.
    """

    type: str
    message: str
    line: int | None = None
    source_line: str | None = None
    limit: str | None = None
    state_lost: bool = False

    def describe(self) -> str:
        """The short observation shown to the model."""
        where = f" (line {self.line}: {self.source_line.strip()})" if self.line and self.source_line else ""
        where = where or (f" (line {self.line})" if self.line else "")
        text = f"{self.type}{where}: {self.message}"
        if self.state_lost:
            text += "\nThe sandbox was restarted: all variables and functions you defined are gone."
        return text


@dataclass(frozen=True)
class CodeOutput:
    """What running one snippet produced."""

    output: Any = None
    logs: str = ""
    is_final_answer: bool = False
    error: ExecutionFailure | None = None


@runtime_checkable
class Executor(Protocol):
    """One sandbox session. Implementations live one per module in `codeloop.executors`."""

    async def start(self, functions: Mapping[str, HostFunction]) -> None:
        """Open a fresh session in which `functions` are callable by name."""
        ...

    async def send_variables(self, variables: Mapping[str, Any]) -> None:
        """Make `variables` visible as globals to later snippets."""
        ...

    async def run(self, code: str) -> CodeOutput:
        """Run one snippet. Never raises for errors in the snippet: they come back in
        `CodeOutput.error`. Raises `ExecutorError` only if the sandbox itself is broken."""
        ...

    async def close(self) -> None: ...


_LIMIT_TYPES = {
    "timeout_s": "TimeoutError",
    "memory_bytes": "MemoryError",
    "max_recursion_depth": "RecursionError",
    "max_output_chars": "MemoryError",
}


def limit_failure(limits: ExecutorLimits, limit: str, output_cap: str) -> ExecutionFailure:
    """The failure for a breached limit (a field name of `ExecutorLimits`), with what to do
    instead. `output_cap` describes the hard cap on printed output, e.g. "1000000 bytes"."""
    messages = {
        "timeout_s": f"the code ran longer than the {limits.timeout_s:g} s time limit and was stopped. "
        "Do less work per step (smaller inputs, fewer iterations) or find a faster approach.",
        "memory_bytes": f"the code used more than the {limits.memory_bytes / 2**20:g} MiB memory limit "
        "and was stopped. Work on smaller pieces of data.",
        "max_recursion_depth": f"maximum recursion depth ({limits.max_recursion_depth}) exceeded. "
        "Use a loop instead of deep recursion.",
        "max_output_chars": f"the code printed more than {output_cap} (the rest was dropped) "
        "and its result is lost. Print summaries or slices, not whole data.",
    }
    return ExecutionFailure(_LIMIT_TYPES[limit], messages[limit], limit=limit)


def truncate_output(text: str, limit: int) -> str:
    """Keep the head and tail of long output, with a note saying how much was dropped."""
    if len(text) <= limit:
        return text
    head, tail = limit // 2, limit - limit // 2
    return f"{text[:head]}\n[output truncated: {len(text) - limit} more chars]\n{text[len(text) - tail :]}"
