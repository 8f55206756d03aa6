"""Runs started from the page: each driven in a task of its own, its events kept for every
subscriber (one that comes late sees the run from its start), and cancellable.

`RunManager.start(task)` starts a run, `resume(run_id, ...)` continues a stored one (the run's
stored steps are told first, then the continuation as it happens), `cancel(run_id)` stops one.
A subscriber reads `LiveRun.follow(after)`: the events with a sequence number above `after`,
then each new one, until the run ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..events import RunFinished, RunStarted
from .wire import wire

if TYPE_CHECKING:
    from ..agents import MultiStepAgent
    from ..events import Event

__all__ = ["LiveRun", "RunManager"]

log = logging.getLogger("codeloop.ui")

KEEP_FINISHED = 50
"""How many finished runs' events the manager keeps (older ones are read from the store)."""


@dataclass(eq=False)
class LiveRun:
    """One run this server drives: its events so far (each with its `seq`), and its state."""

    run_id: str
    task: str
    agent: str
    events: list[dict[str, Any]] = field(default_factory=list)
    state: str = "running"
    done: bool = False
    failure: str | None = None
    """Why the run stopped without its `RunFinished` (an error of the server's, not the run's)."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def add(self, data: dict[str, Any]) -> None:
        """Keep the next event (numbered) and wake the subscribers."""
        data["seq"] = len(self.events)
        self.events.append(data)
        if data.get("type") == "RunFinished" and data.get("depth") == 0:
            self.state = str(data["result"]["state"])
        self._wake()

    def end(self, failure: str | None = None) -> None:
        """No event will follow; `failure`: why the server stopped following the run."""
        if failure is not None:
            self.failure, self.state = failure, "error" if self.state == "running" else self.state
            now = time.time()
            self.add(
                {"type": "ServerError", "agent": self.agent, "depth": 0, "step": 0, "timestamp": now}
                | {"error": failure}
            )
        self.done = True
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self, after: int = -1) -> AsyncIterator[dict[str, Any]]:
        """The events after sequence number `after`, then each new one until the run ends."""
        sent = after + 1
        while True:
            changed = self._changed
            while sent < len(self.events):
                yield self.events[sent]
                sent += 1
            if self.done:
                return
            await changed.wait()


class RunManager:
    """The runs this server started or resumed, by run id."""

    def __init__(self, agent: MultiStepAgent) -> None:
        self.agent = agent
        self.runs: dict[str, LiveRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, run_id: str) -> LiveRun | None:
        """The run, if this server started or resumed it (and still keeps its events)."""
        return self.runs.get(run_id)

    def is_live(self, run_id: str) -> bool:
        """Whether this server is running the run now."""
        run = self.runs.get(run_id)
        return run is not None and not run.done

    async def start(self, task: str) -> LiveRun:
        """Start a run of `task`; returns once it has its id (its first event)."""
        return await self._launch(self.agent.astream(task), [])

    async def resume(
        self,
        run_id: str,
        told: list[dict[str, Any]],
        *,
        approvals: Mapping[str, bool | str] | None = None,
        max_steps: int | None = None,
    ) -> LiveRun:
        """Continue the stored run `run_id` (`told`: its stored events, shown first). Raises what
        `astream_resume` raises before the run goes on (an unknown call id, a held lease...)."""
        if self.is_live(run_id):
            raise RuntimeError(f"Run {run_id} is running already.")
        stream = self.agent.astream_resume(run_id, approvals=approvals, max_steps=max_steps)
        return await self._launch(stream, told)

    def cancel(self, run_id: str) -> bool:
        """Ask the run to stop now; False if this server does not drive it."""
        if not self.is_live(run_id):
            return False
        self.agent.cancel(run_id, reason="cancelled from the web UI")
        return True

    async def close(self) -> None:
        """Cancel every run in progress and wait for them to end (stored as cancelled)."""
        for run_id, run in list(self.runs.items()):
            if not run.done:
                self.agent.cancel(run_id, reason="the web UI stopped")
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    async def _launch(self, stream: AsyncIterator[Event], told: list[dict[str, Any]]) -> LiveRun:
        started: asyncio.Future[LiveRun] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._drive(stream, told, started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await started

    async def _drive(
        self, stream: AsyncIterator[Event], told: list[dict[str, Any]], started: asyncio.Future[LiveRun]
    ) -> None:
        """Read the run to its end into its `LiveRun` (made at its first event)."""
        live: LiveRun | None = None
        try:
            async for event in stream:
                if live is None:
                    live = self._begin(event, told)
                    started.set_result(live)
                live.add(wire(event))
        except asyncio.CancelledError:  # Python 3.10: agent.cancel() cancels this task outright
            if live is not None:
                live.add(_cancelled(live))
        except Exception as exc:
            if live is None:
                started.set_exception(exc)
                return
            log.error("run %s stopped: %s", live.run_id, type(exc).__name__)
            live.end(f"{type(exc).__name__}: {exc}")
        finally:
            if not started.done():
                started.set_exception(RuntimeError("The run stopped before it started."))
            await _close(stream)
            if live is not None and not live.done:
                live.end()
            self._forget_old()

    def _begin(self, event: Event, told: list[dict[str, Any]]) -> LiveRun:
        if isinstance(event, RunStarted):
            live = LiveRun(run_id=event.run_id, task=event.task, agent=event.agent)
        else:  # a resumed run that had already succeeded: just its RunFinished
            assert isinstance(event, RunFinished)
            live = LiveRun(run_id=event.result.run_id, task="", agent=event.agent)
        for data in told:
            live.add(dict(data))
        self.runs[live.run_id] = live
        return live

    def _forget_old(self) -> None:
        finished = [run_id for run_id, run in self.runs.items() if run.done]
        for run_id in finished[:-KEEP_FINISHED]:
            del self.runs[run_id]


def _cancelled(live: LiveRun) -> dict[str, Any]:
    """The end of a run whose cancellation reached this task (Python 3.10 has no `uncancel`):
    the run is stored as cancelled, as the `RunFinished` of Python 3.11 would say."""
    result = {"run_id": live.run_id, "state": "cancelled", "output": None, "usage": None}
    result |= {"error": "Cancelled: cancelled from the web UI.", "duration": None, "steps": None}
    data = {"type": "RunFinished", "agent": live.agent, "depth": 0, "step": 0, "timestamp": time.time()}
    return data | {"result": result}


async def _close(stream: AsyncIterator[Event]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # the stream already failed; its error was reported
            pass
