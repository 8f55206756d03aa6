"""Where an eval's tasks run: behind one small protocol, so the runner does not care.

`EvalBackend.run(tasks, trial)` runs each task (`await trial(task)` gives its `EvalResult`) and
yields the results as they end, in any order. The runner (`codeloop.evals.runner`) does the
rest in one place: it writes each result the moment it arrives, drops a result for an id it
already has or never asked for (a backend that reruns a task after losing a worker may deliver
it twice), and counts a task the backend never delivered as missing (it runs on resume).

`LocalBackend` runs tasks as asyncio tasks in this process, at most `concurrency` at a time. A
backend on a cluster (`codeloop.evals.ray_backend.RayBackend`) sends the tasks (plain pydantic
data) to workers that each build their own `Trial` from the eval's `TrialSpec` (the `spec` of
the `SpecTrial` the runner gives it when the agent is named "module:attr") and streams the
results back. A backend may also have `check(trial)`: the runner calls it before the results
file is opened or any task runs, so a trial the backend cannot use is an error up front.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigurationError
from .results import EvalResult
from .tasks import EvalTask

__all__ = ["EvalBackend", "LocalBackend", "RunTask"]

RunTask = Callable[[EvalTask], Awaitable[EvalResult]]
"""One task to its result, never raising for the task's sake (a `Trial`)."""


class EvalBackend(Protocol):
    """Runs tasks and yields their results as each ends (see the module docstring)."""

    def run(self, tasks: Sequence[EvalTask], trial: RunTask) -> AsyncIterator[EvalResult]: ...


@dataclass(frozen=True)
class LocalBackend:
    """Tasks as asyncio tasks of this process, at most `concurrency` running at once (started
    in the dataset's order). Closing the result stream early cancels the runs still going."""

    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {self.concurrency}")

    async def run(self, tasks: Sequence[EvalTask], trial: RunTask) -> AsyncIterator[EvalResult]:
        slots = asyncio.Semaphore(self.concurrency)

        async def bounded(task: EvalTask) -> EvalResult:
            async with slots:
                return await trial(task)

        pending = [asyncio.ensure_future(bounded(task)) for task in tasks]
        try:
            for finished in asyncio.as_completed(pending):
                yield await finished
        finally:
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
