"""Where a Monty error happened, in the model's own code: inputs by number, frames, limits."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..base import ExecutionFailure

if TYPE_CHECKING:
    import pydantic_monty as pm

__all__ = ["Inputs", "frames", "which_limit"]


@dataclasses.dataclass
class Inputs:
    """Every input fed to one Monty session, numbered as Monty names them (`<python-input-N>`).

    `fed` is the text Monty ran (to find an `await` before a call); `shown` keeps the model's
    own lines of inputs that were rewritten before feeding, so errors quote what the model wrote.
    `prelude` is the number of the helpers' input, whose frames are never reported."""

    fed: list[bytes] = dataclasses.field(default_factory=list)
    shown: dict[int, list[str]] = dataclasses.field(default_factory=dict)
    prelude: int | None = None

    def add(self, fed: str, original: str | None = None) -> None:
        if original is not None and original != fed:
            self.shown[len(self.fed)] = original.splitlines()
        self.fed.append(fed.encode())

    def drop_last(self) -> None:
        self.shown.pop(len(self.fed) - 1, None)
        self.fed.pop()

    def number(self, frame: pm.Frame) -> int | None:
        number = frame.filename.removeprefix("<python-input-").removesuffix(">")
        return int(number) if number.isdigit() and int(number) < len(self.fed) else None

    @property
    def current(self) -> int:
        return len(self.fed) - 1

    def source_line(self, frame: pm.Frame) -> str | None:
        """The model's line for `frame` (not the rewritten one Monty ran)."""
        number = self.number(frame)
        lines = self.shown.get(number) if number is not None else None
        if lines is not None and 0 < frame.line <= len(lines):
            return lines[frame.line - 1]
        source = (frame.source_line or "").splitlines()
        return source[0] if source else None

    def with_frame(self, failure: ExecutionFailure, frame: pm.Frame | None) -> ExecutionFailure:
        if frame is None:
            return failure
        return dataclasses.replace(failure, line=frame.line, source_line=self.source_line(frame))

    def located(self, failure: ExecutionFailure, exc: pm.MontyRuntimeError) -> ExecutionFailure:
        """Attach the failing line of the current snippet (its innermost frame there), and say so
        when the error was raised inside a function from an earlier step. Helper frames are skipped."""
        stack = [f for f in frames(exc) if self.prelude is None or self.number(f) != self.prelude]
        here = [f for f in stack if self.number(f) == self.current]
        if not here:
            return self.with_frame(failure, stack[-1] if stack else None)
        failure = self.with_frame(failure, here[-1])
        deepest = stack[-1]
        if deepest is not here[-1] and self.number(deepest) != self.current:
            where = f"in {deepest.function_name}() from an earlier step, line {deepest.line}"
            failure = dataclasses.replace(failure, message=f"{failure.message} (raised {where})")
        return failure


def frames(exc: pm.MontyRuntimeError | pm.MontySyntaxError) -> list[pm.Frame]:
    try:
        return list(exc.traceback())
    except Exception:
        return []


def which_limit(kind: str, message: str, output_cap: int) -> str | None:
    """Which `ExecutorLimits` field an exception raised by Monty itself stands for, if any."""
    if kind == "RecursionError" and message.startswith("maximum recursion depth"):
        return "max_recursion_depth"
    if kind == "TimeoutError" and message.startswith("feed time limit exceeded"):
        return "timeout_s"
    if kind == "MemoryError" and "exceeded its memory limit" in message:  # the worker was killed
        return "memory_bytes"
    if kind == "MemoryError" and message.startswith("memory limit exceeded"):
        return "max_output_chars" if message.endswith(f"> {output_cap} bytes") else "memory_bytes"
    return None
