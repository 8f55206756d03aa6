"""Durable runs: an agent given `store=` keeps each run in a run store, and `resume()` continues
it in any process after the worker died.

What is written, and when:

* at the start, the run's row (`create_run`: agent name, task, metadata with `max_steps`, the
  agent's class, `additional_args` when they are JSON) and its first steps; the worker takes the
  run's lease and renews it in the background (every third of `lease_ttl_s`);
* as soon as the model's reply to an action step is complete, the reply, as the run's in-progress
  step (`metadata["in_progress"]`);
* each tool call's result the moment it returns (`record_tool_call`), keyed
  (run_id, step_number, call_index): `call_index` counts a CodeAgent's tool calls in the order its
  code made them, and is a call's position in a ToolCallingAgent's message. Results are JSON
  (`{"value": ...}`); a value JSON cannot hold is stored as `{"repr": ...}` and cannot be replayed;
* each step when it ends (`append_step`: the step, usage totals, step count), and at the end the
  run's state, error and output. A write that fails ends the run with `StoreWriteFailed`: a run
  never goes on unsaved. A lease lost to another worker ends it the same way.

`resume(run_id)` (`codeloop.agents.resume`) takes the lease (`RunLeaseHeld` if another worker
holds it), rebuilds memory from the stored steps and, for a CodeAgent, the sandbox's variables
by running every stored code action again in a fresh executor, each tool call answered from
the journal (no tool runs). A call whose name or arguments differ from the journal, or that has
no usable record, stops the replay; the model is told, in a note added as a task step, which
variables may be gone. Then the in-progress step, if the reply was stored but the step never
ended, runs again from the stored reply: journaled calls are answered from the journal, the
others run. Then the loop goes on.

Exactly once: a worker killed between a tool's side effect and its journal write runs that call
again on resume. A tool that must act once reads `codeloop.tools.current_call().key` (the same
on every attempt) and skips a key it already applied.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic_core

from ..errors import AgentToolExecutionError, ConfigurationError, RunFailed
from ..events import ToolCallFinished, ToolCallStarted
from ..memory import ActionStep, FinalAnswerStep, Memory, MemoryStep
from ..messages import ChatMessage, Role, ToolCall, Usage
from ..result import RunState
from ..store import RunRecord, RunStore, StepRecord, StoreError, ToolCallRecord, open_store
from ..tools import Tool
from ..tools.context import ToolCallContext, _current
from .approval import ApprovalDenied, ApprovalRequired, gate, pending_of
from .run import latest_task, short_repr

if TYPE_CHECKING:
    from .base import MultiStepAgent
    from .run import Run

__all__ = [
    "DurableRun",
    "ReplayDiverged",
    "RunLeaseHeld",
    "StoreSpec",
    "StoreWriteFailed",
    "after_run",
    "after_step",
    "begin",
    "journaled",
    "process_owner",
    "release",
    "reply_ready",
    "stored_reply",
]

T = TypeVar("T")
StoreSpec = RunStore | str | os.PathLike[str] | bool | None
"""What `store=` takes: a `RunStore`, a path or URL (`open_store`), True for the default SQLite
file (`default_store_path()`), or None/False for no store."""


class RunLeaseHeld(StoreError):
    """`resume()` found the run held by another worker, whose lease has not expired."""

    def __init__(self, run_id: str, owner: str | None, expires_at: float | None) -> None:
        self.run_id, self.owner, self.expires_at = run_id, owner, expires_at
        super().__init__(
            f"Run {run_id!r} is held by worker {owner!r} until {expires_at} (store clock). Wait for"
            " that worker to finish, or for its lease to expire if it died, then resume again."
        )


class StoreWriteFailed(RunFailed):
    """The run store could not be written (or the run's lease was lost): the run stopped rather
    than go on unsaved. Resume it once the store works again."""


class ReplayDiverged(AgentToolExecutionError):
    """A tool call that should be answered from the journal does not match it."""


_owner: tuple[int, str] | None = None


def process_owner() -> str:
    """This process's lease owner id: host, pid and a random part (a new one after a fork)."""
    global _owner
    if _owner is None or _owner[0] != os.getpid():
        _owner = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _owner[1]


def open_spec(spec: StoreSpec) -> tuple[RunStore, bool]:
    """The store to use for one run, and whether the run opened it (and closes it)."""
    if isinstance(spec, RunStore):
        return spec, False
    if spec is True:
        return open_store(None), True
    if isinstance(spec, (str, Path, os.PathLike)):
        return open_store(spec), True
    raise ConfigurationError(f"store= takes a RunStore, a path or URL, or True; not {spec!r}.")


@dataclass(eq=False)
class DurableRun:
    """What a durable run knows of its store: the steps written, the lease, the journal mode."""

    store: RunStore
    owns_store: bool
    run_id: str
    owner: str
    lease_ttl_s: float
    metadata: dict[str, Any]
    written: int = 0
    """How many of memory's steps are stored."""
    journal_step: int | None = None
    """The action step whose tool calls are answered from the journal first (replay, resume)."""
    strict: bool = False
    """Replaying: a call without a journaled result is not made (the replay stops)."""
    diverged: str | None = None
    pending_reply: ChatMessage | None = None
    failure: StoreWriteFailed | None = None
    heartbeat: asyncio.Future[None] | None = field(default=None, repr=False)

    async def write(self, what: str, operation: Awaitable[T]) -> T:
        """Run a store operation; a failure ends the run (`StoreWriteFailed`)."""
        try:
            return await operation
        except Exception as exc:
            failure = StoreWriteFailed(
                f"The run store could not {what} ({type(exc).__name__}: {exc}); the run stopped so"
                f" that nothing goes unsaved. Resume it with agent.resume({self.run_id!r})."
            )
            self.failure = self.failure or failure
            raise failure from exc

    async def checkpoint(self, run: Run) -> None:
        """Store memory's steps not stored yet; a failure seen meanwhile ends the run here."""
        self.journal_step, self.strict = None, False
        if self.failure is not None:
            raise self.failure
        steps = run.memory.steps
        for number in range(self.written, len(steps)):
            step = steps[number]
            final = isinstance(step, FinalAnswerStep)
            output = output_json(step.output) if isinstance(step, FinalAnswerStep) else None
            await self.write(
                "store a step",
                self.store.append_step(
                    self.run_id,
                    StepRecord.from_step(self.run_id, number, step),
                    state=RunState.SUCCESS.value if final else "running",
                    usage=_usage(steps[: number + 1]),
                    step_count=number + 1,
                    output_json=output,
                ),
            )
            self.written = number + 1

    def start_heartbeat(self) -> None:
        self.heartbeat = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            try:
                held = await self.store.renew_lease(self.run_id, self.owner, self.lease_ttl_s)
            except Exception as exc:
                held, why = False, f"renewing it failed: {type(exc).__name__}: {exc}"
            else:
                why = "another worker took it over"
            if not held:
                self.failure = self.failure or StoreWriteFailed(
                    f"The run's lease was lost ({why}); the run stopped so that two workers never"
                    " run it at once."
                )
                return

    async def lookup(self, step: int, index: int, name: str, arguments_json: str) -> ToolCallRecord | None:
        """The journaled result of this call when the step's calls come from the journal; raises
        `ReplayDiverged` (and remembers why) when the journal cannot answer it faithfully."""
        if self.journal_step != step:
            return None
        record = await self.write(
            "read the tool-call journal", self.store.get_tool_call(self.run_id, step, index)
        )
        if record is None:
            if not self.strict:
                return None  # never made before: the call runs now
            problem = f"call {index + 1} of step {step} ({name}) has no journaled result"
        elif (record.tool_name, record.arguments_json) != (name, arguments_json):
            problem = (
                f"call {index + 1} of step {step} was {record.tool_name}({record.arguments_json})"
                f" and is now {name}({arguments_json})"
            )
        elif "repr" in json.loads(record.result_json or "{}"):
            problem = f"the result of call {index + 1} of step {step} ({name}) was kept as text only"
        else:
            return record
        self.diverged = self.diverged or problem
        raise ReplayDiverged(f"This tool call cannot be answered from the run's journal: {problem}.")

    async def record(
        self,
        context: ToolCallContext,
        name: str,
        arguments_json: str,
        value: Any,
        error: BaseException | None,
        started_at: float | None = None,
    ) -> None:
        record = ToolCallRecord(
            run_id=self.run_id,
            step_number=context.step_number,
            call_index=context.call_index,
            tool_name=name,
            arguments_json=arguments_json,
            result_json=_result_json(value, error),
            is_error=error is not None,
            started_at=started_at,
        )
        await self.write("journal a tool call", self.store.record_tool_call(record))


# ---- the loop's hooks (each does nothing for a run without a store) --------------------------


async def begin(agent: MultiStepAgent, run: Run, additional_args: Mapping[str, Any] | None) -> None:
    """A new run of an agent with a store: its row, its lease, its first steps."""
    if agent.store is None:
        return
    store, owned = open_spec(agent.store)
    durable = run.durable = DurableRun(
        store, owned, run.run_id, process_owner(), agent.lease_ttl_s, _metadata(agent, run, additional_args)
    )
    record = RunRecord(
        run_id=run.run_id, agent_name=agent.name, task=latest_task(run.memory), metadata=durable.metadata
    )
    await durable.write("create the run", store.create_run(record))
    await durable.write(
        "take the run's lease", store.acquire_lease(run.run_id, durable.owner, agent.lease_ttl_s)
    )
    await durable.checkpoint(run)
    durable.start_heartbeat()


async def reply_ready(run: Run, step: ActionStep) -> None:
    """The model's reply is complete: store it as the run's in-progress step."""
    durable = run.durable
    if durable is None or run.message is None:
        return
    durable.metadata["in_progress"] = {"step_number": step.step_number, "message": _message_json(run.message)}
    await durable.write(
        "store the model's reply", durable.store.update_run(run.run_id, metadata=durable.metadata)
    )


def stored_reply(run: Run, step: ActionStep) -> ChatMessage | None:
    """A resumed run's stored reply for this step (its calls then come from the journal first)."""
    durable = run.durable
    if durable is None or durable.pending_reply is None:
        return None
    message, durable.pending_reply = durable.pending_reply, None
    durable.journal_step, durable.strict = step.step_number, False
    return message


async def after_step(run: Run) -> None:
    if run.durable is not None:
        await run.durable.checkpoint(run)


async def after_run(run: Run) -> None:
    """Store the last steps and the run's outcome; a failure to do so makes the run an error."""
    durable, result = run.durable, run.result
    if durable is None or result is None:
        return
    try:
        await durable.checkpoint(run)
        output = output_json(result.output) if result.succeeded else None
        update = durable.store.update_run(
            run.run_id,
            state=result.state.value,
            error=result.error,
            output_json=output,
            pending=pending_of(result),
        )
        await durable.write("store the run's outcome", update)
    except StoreWriteFailed as exc:
        if not isinstance(result.exception, StoreWriteFailed):
            run.finish(RunState.ERROR, error=str(exc), exception=exc)


async def release(run: Run) -> None:
    """The run is over here: stop renewing its lease, give it up, close a store it opened."""
    durable = run.durable
    if durable is None:
        return
    if durable.heartbeat is not None:
        durable.heartbeat.cancel()
        with contextlib.suppress(BaseException):
            await durable.heartbeat
    with contextlib.suppress(Exception):  # the lease then expires by itself
        await durable.store.release_lease(run.run_id, durable.owner)
    if durable.owns_store:
        await durable.store.close()


# ---- tool calls ---------------------------------------------------------------------------------


async def journaled(
    run: Run | None,
    context: ToolCallContext,
    name: str,
    arguments: Mapping[str, Any],
    invoke: Callable[[], Awaitable[Any]],
    tool: Tool | None = None,
) -> Any:
    """Make one tool call with `current_call()` set: answered from the journal when the run
    replays or resumes it, else made and its result journaled the moment it returns. A call
    that needs approval goes through `approval.gate` first (a denial is journaled as an error)."""
    durable = None if run is None else run.durable
    arguments_json = json.dumps(arguments, sort_keys=True, default=repr)
    if durable is not None:
        found = await durable.lookup(context.step_number, context.call_index, name, arguments_json)
        if found is not None:
            return _replayed(found)
    token, started, called = _current.set(context), time.time(), False
    try:
        await gate(run, context, name, arguments, tool)
        _tell(run, ToolCallStarted, context, name=name, arguments=dict(arguments))
        called = True
        value = await invoke()
    except ApprovalRequired:
        raise  # not made: the run waits for a human's answer
    except Exception as exc:
        if called:  # (a denied call was never made)
            _tell(run, ToolCallFinished, context, name=name, error=f"{type(exc).__name__}: {exc}")
        if durable is not None:
            await durable.record(context, name, arguments_json, None, exc, started)
        raise
    finally:
        _current.reset(token)
    _tell(run, ToolCallFinished, context, name=name, result=_clipped(value))
    if durable is not None:
        await durable.record(context, name, arguments_json, value, None, started)
    return value


def _tell(
    run: Run | None, kind: type[ToolCallStarted | ToolCallFinished], context: ToolCallContext, **fields: Any
) -> None:
    """Send a tool-call event into the run's stream (the loop yields it while the step runs)."""
    if run is not None:
        step, index = context.step_number, context.call_index
        run.events.put_nowait(kind(agent=run.agent_name, step=step, call_index=index, **fields))


def _clipped(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else short_repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _result_json(value: Any, error: BaseException | None) -> str:
    if error is not None:
        return json.dumps({"error": type(error).__name__, "message": str(error)})
    try:
        return json.dumps({"value": value}, allow_nan=True)
    except (TypeError, ValueError):
        return json.dumps({"repr": repr(value)})


def _replayed(record: ToolCallRecord) -> Any:
    data = json.loads(record.result_json or "{}")
    if not record.is_error:
        return data.get("value")
    if data.get("error") == ApprovalDenied.__name__:
        raise ApprovalDenied(str(data.get("message", "")))
    kind = getattr(builtins, str(data.get("error")), None)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind.__module__ == "builtins":
        raise kind(data.get("message", ""))
    raise AgentToolExecutionError(str(data.get("message", "")))


# ---- encoding -----------------------------------------------------------------------------------


def _metadata(agent: MultiStepAgent, run: Run, additional_args: Mapping[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "max_steps": run.max_steps,
        "agent_class": type(agent).__name__,
        "first_step": run.step_number,
    }
    if agent.run_metadata:
        try:
            meta["run_metadata"] = json.loads(json.dumps(agent.run_metadata))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"agent.run_metadata must be JSON-compatible: {exc}") from None
    if additional_args:
        try:
            meta["additional_args"] = json.loads(json.dumps(dict(additional_args)))
        except (TypeError, ValueError):
            meta["additional_args_not_stored"] = sorted(additional_args)
    return meta


def output_json(value: Any) -> str:
    return pydantic_core.to_json(value, fallback=repr).decode()


def _usage(steps: Sequence[MemoryStep]) -> Usage:
    return Memory(steps=list(steps)).usage()


def _message_json(message: ChatMessage) -> dict[str, Any]:
    return {
        "content": message.content,
        "reasoning": message.reasoning,
        "tool_calls": [dataclasses.asdict(call) for call in message.tool_calls],
        "usage": None if message.usage is None else dataclasses.asdict(message.usage),
    }


def message_from_json(data: Mapping[str, Any]) -> ChatMessage:
    usage = data.get("usage")
    return ChatMessage(
        role=Role.ASSISTANT,
        content=data.get("content") or "",
        reasoning=data.get("reasoning"),
        tool_calls=tuple(ToolCall(**call) for call in data.get("tool_calls") or ()),
        usage=None if usage is None else Usage(**usage),
    )
