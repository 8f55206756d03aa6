"""What a run store keeps and promises: the records, the errors and the `RunStore` protocol.

A run store keeps every run durably: the run's row (its state, usage, pending approvals and
lease), each step written when it ends, and the journal of tool results that lets a resumed run
replay its code without calling a tool twice. `SQLiteStore` and `PostgresStore` implement it.

Times are seconds since the epoch (as `time.time()` gives them). `created_at` is what the record
says; `updated_at`, `recorded_at` of a write and lease expiries come from the store's clock (the
database server's for PostgreSQL).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from ..messages import Usage

if TYPE_CHECKING:
    from types import TracebackType

    from ..memory import MemoryStep

__all__ = [
    "UNSET",
    "RunExists",
    "RunNotFound",
    "RunRecord",
    "RunStore",
    "StepConflict",
    "StepRecord",
    "StoreError",
    "StoreVersionError",
    "ToolCallRecord",
    "Unset",
    "step_from_json",
    "step_to_json",
]


class StoreError(Exception):
    """Base of every error a run store raises."""


class RunNotFound(StoreError, LookupError):
    """No run with this id in the store."""

    def __init__(self, run_id: str, store: str) -> None:
        self.run_id, self.store = run_id, store
        super().__init__(
            f"No run {run_id!r} in {store}. Check the id, or list the stored runs with"
            " `await store.list_runs()`."
        )


class RunExists(StoreError):
    """`create_run` was given an id the store already holds."""

    def __init__(self, run_id: str, store: str) -> None:
        self.run_id, self.store = run_id, store
        super().__init__(
            f"A run {run_id!r} already exists in {store}. Give the new run another id, or continue"
            " the stored one."
        )


class StepConflict(StoreError):
    """A step number was written again with different content (steps are written once)."""

    def __init__(self, run_id: str, step_number: int, store: str) -> None:
        self.run_id, self.step_number, self.store = run_id, step_number, store
        super().__init__(
            f"Run {run_id!r} in {store} already has a different step {step_number}; nothing was"
            " written. Steps are written once: give a new step the next unused step number."
        )


class StoreVersionError(StoreError):
    """The database was written by a newer codeloop than this one."""

    def __init__(self, found: int, known: int, store: str) -> None:
        self.found, self.known, self.store = found, known, store
        super().__init__(
            f"{store} has schema version {found}, written by a newer codeloop; this one knows"
            f" versions up to {known}. Upgrade codeloop (pip install -U codeloop) to open it."
        )


class Unset(Enum):
    """The type of `UNSET`: "leave this field as it is" in `RunStore.update_run`."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run's row. `output_json` is the final output as JSON text; `pending` holds the
    approvals the run waits for (JSON-compatible dicts); `lease_owner` is the worker that holds
    the run, until `lease_expires_at`."""

    run_id: str
    agent_name: str
    task: str
    state: str = "running"
    created_at: float = field(default_factory=time.time)
    updated_at: float | None = None
    step_count: int = 0
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    output_json: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def abandoned(self) -> bool:
        """Whether the run is `running` with no live holder: its lease expired, the process that
        ran it gone (killed, crashed); it can be resumed. (Times from this machine's clock.)"""
        expires = self.lease_expires_at
        return self.state == "running" and expires is not None and expires < time.time()


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    """One step of a run, as the JSON `Memory.to_json` writes for it.

    `step_number` orders a run's steps (the step's position in the run's memory); `kind` is the
    step's kind ("task", "planning", "action" or "final_answer")."""

    run_id: str
    step_number: int
    kind: str
    data_json: str
    created_at: float = field(default_factory=time.time)

    @classmethod
    def from_step(cls, run_id: str, step_number: int, step: MemoryStep) -> StepRecord:
        kind = getattr(step, "kind", None)
        if not isinstance(kind, str):
            raise TypeError(f"{type(step).__name__} is not a stored step kind; store the memory's steps.")
        return cls(run_id=run_id, step_number=step_number, kind=kind, data_json=step_to_json(step))

    def to_step(self) -> MemoryStep:
        """The memory step back, equal to the one stored."""
        return step_from_json(self.data_json)

    def same_content(self, other: StepRecord) -> bool:
        """Whether two records hold the same step (the JSON compared as data, not as text)."""
        return (self.kind, json.loads(self.data_json)) == (other.kind, json.loads(other.data_json))


@dataclass(frozen=True, kw_only=True)
class ToolCallRecord:
    """One tool call's result in the journal. `(run_id, step_number, call_index)` is its key,
    and the idempotency key a tool reads: a replayed call finds its result here."""

    run_id: str
    step_number: int
    call_index: int
    tool_name: str
    arguments_json: str
    result_json: str | None = None
    is_error: bool = False
    recorded_at: float = field(default_factory=time.time)
    """When the call ended (and was journaled)."""
    started_at: float | None = None
    """When the call began (None in journals written before schema version 2)."""


def step_to_json(step: MemoryStep) -> str:
    """One step as the JSON `Memory.to_json` writes for it (an element of that list)."""
    from ..memory import _adapter

    text: str = _adapter(single=True).dump_json(step, fallback=repr).decode()
    return text


def step_from_json(text: str | bytes) -> MemoryStep:
    """The step `step_to_json` wrote."""
    from ..memory import _adapter

    step: MemoryStep = _adapter(single=True).validate_json(text)
    return step


TimeLike = float | datetime


@runtime_checkable
class RunStore(Protocol):
    """Durable runs. Every method is atomic; a store opens itself on first use."""

    async def open(self) -> None:
        """Connect, and create or migrate the tables (`StoreVersionError` if too new)."""

    async def close(self) -> None: ...

    async def __aenter__(self) -> RunStore: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def schema_version(self) -> int: ...

    async def create_run(self, record: RunRecord) -> None:
        """Store a new run (`RunExists` if its id is taken)."""

    async def get_run(self, run_id: str) -> RunRecord:
        """The run's row (`RunNotFound` if there is none)."""

    async def list_runs(
        self,
        *,
        state: str | None = None,
        agent_name: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Runs, newest first; `since` (inclusive) and `until` (exclusive) bound `created_at`."""

    async def delete_run(self, run_id: str) -> None:
        """Delete the run, its steps and its tool calls."""

    async def append_step(
        self,
        run_id: str,
        step: StepRecord,
        *,
        state: str,
        usage: Usage,
        step_count: int,
        error: str | None = None,
        output_json: str | None = None,
        pending: list[dict[str, Any]] | None = None,
    ) -> None:
        """In one transaction: store the step and set the run's state, total usage, step count,
        error, output and pending approvals (None: none). The same step again is a no-op; a
        different step with the same number raises `StepConflict` and changes nothing."""

    async def update_run(
        self,
        run_id: str,
        *,
        state: str | Unset = UNSET,
        error: str | Unset | None = UNSET,
        pending: list[dict[str, Any]] | Unset = UNSET,
        output_json: str | Unset | None = UNSET,
        metadata: dict[str, Any] | Unset = UNSET,
    ) -> None:
        """Set the fields given; the others stay."""

    async def steps(self, run_id: str) -> list[StepRecord]:
        """The run's steps, by step number."""

    async def record_tool_call(self, record: ToolCallRecord) -> ToolCallRecord:
        """Journal a tool call's result. If its key is already there, the stored record stays
        (first write wins) and is returned."""

    async def tool_calls(self, run_id: str) -> list[ToolCallRecord]:
        """The run's journal, by step number and call index."""

    async def get_tool_call(self, run_id: str, step_number: int, call_index: int) -> ToolCallRecord | None:
        """The journaled call with this key, or None."""

    async def acquire_lease(self, run_id: str, owner: str, ttl_s: float) -> bool:
        """Take the run for `ttl_s` seconds if no one holds it, its lease expired, or `owner`
        holds it already. True if `owner` holds it now."""

    async def renew_lease(self, run_id: str, owner: str, ttl_s: float) -> bool:
        """Extend `owner`'s lease; False if someone else took the run meanwhile."""

    async def release_lease(self, run_id: str, owner: str) -> bool:
        """Give the run up; False if `owner` did not hold it."""
