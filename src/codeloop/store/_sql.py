"""The run store's logic, written once over a small transaction interface.

`SQLiteStore` and `PostgresStore` only say how to connect and how to run a transaction
(`Tx`); every query and rule lives here. The SQL uses `?` placeholders and `ON CONFLICT`, which
both databases understand (the PostgreSQL transaction turns `?` into psycopg's `%s`).
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from ..messages import Usage
from . import _schema
from .base import (
    UNSET,
    RunExists,
    RunNotFound,
    RunRecord,
    StepConflict,
    StepRecord,
    StoreError,
    StoreVersionError,
    TimeLike,
    ToolCallRecord,
    Unset,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

__all__ = ["SQLRunStore", "Tx"]

Row = tuple[Any, ...]

_RUN_COLUMNS = (
    "run_id, agent_name, task, state, created_at, updated_at, step_count, input_tokens,"
    " output_tokens, cached_tokens, reasoning_tokens, error, output_json, metadata_json,"
    " lease_owner, lease_expires_at, pending_json"
)
_STEP_COLUMNS = "run_id, step_number, kind, data_json, created_at"
_CALL_COLUMNS = (
    "run_id, step_number, call_index, tool_name, arguments_json, result_json, is_error, recorded_at,"
    " started_at"
)


class Tx(Protocol):
    """One open transaction."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""

    async def now(self) -> float:
        """The store's clock, in seconds since the epoch."""


class _NothingToWrite(Exception):
    """Rolls back a transaction that turned out to be a no-op."""


class SQLRunStore(ABC):
    """A `RunStore` over SQL; subclasses connect and run transactions."""

    dialect: _schema.Dialect

    def __init__(self) -> None:
        self._opened = False
        self._open_lock = asyncio.Lock()

    @property
    @abstractmethod
    def where(self) -> str:
        """The store, for messages ("SQLite store runs.db")."""

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    def _transaction(self, write: bool) -> AbstractAsyncContextManager[Tx]:
        """A transaction; `write` ones take the write lock from the start."""

    async def _lock_schema(self, tx: Tx) -> None:  # noqa: B027 (a hook: most databases need nothing)
        """Keep two processes from migrating at once (the write lock does, where there is one)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where}>"

    # Opening and closing.

    async def open(self) -> None:
        async with self._open_lock:
            if self._opened:
                return
            await self._connect()
            try:
                await self._migrate()
            except BaseException:
                await self._disconnect()
                raise
            self._opened = True

    async def close(self) -> None:
        async with self._open_lock:
            if self._opened:
                self._opened = False
                await self._disconnect()

    async def __aenter__(self) -> SQLRunStore:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def _tx(self, write: bool = True) -> AsyncIterator[Tx]:
        if not self._opened:
            await self.open()
        async with self._transaction(write) as tx:
            yield tx

    async def _migrate(self) -> None:
        async with self._transaction(write=True) as tx:
            await self._lock_schema(tx)
            await tx.run(_schema.version_table(self.dialect))
            current = await self._read_version(tx)
            if current > _schema.LATEST_VERSION:
                raise StoreVersionError(current, _schema.LATEST_VERSION, self.where)
            for version in range(current + 1, _schema.LATEST_VERSION + 1):
                for sql in _schema.statements(version, self.dialect):
                    await tx.run(sql)
                await tx.run(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, await tx.now()),
                )

    @staticmethod
    async def _read_version(tx: Tx) -> int:
        rows = await tx.fetch("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0] or 0)

    async def schema_version(self) -> int:
        async with self._tx(write=False) as tx:
            return await self._read_version(tx)

    # Runs.

    async def create_run(self, record: RunRecord) -> None:
        async with self._tx() as tx:
            now = await tx.now()
            usage = record.usage
            values = (
                record.run_id, record.agent_name, record.task, _text(record.state), record.created_at,
                now, record.step_count, usage.input_tokens, usage.output_tokens, usage.cached_tokens,
                usage.reasoning_tokens, record.error, record.output_json, json.dumps(record.metadata),
                record.lease_owner, record.lease_expires_at, json.dumps(record.pending),
            )  # fmt: skip
            marks = ", ".join("?" * len(values))
            sql = f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({marks}) ON CONFLICT (run_id) DO NOTHING"
            if await tx.run(sql, values) == 0:
                raise RunExists(record.run_id, self.where)

    async def get_run(self, run_id: str) -> RunRecord:
        async with self._tx(write=False) as tx:
            return await self._get_run(tx, run_id)

    async def _get_run(self, tx: Tx, run_id: str) -> RunRecord:
        rows = await tx.fetch(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFound(run_id, self.where)
        return _run_record(rows[0])

    async def list_runs(
        self,
        *,
        state: str | None = None,
        agent_name: str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        where, params = ["1 = 1"], []
        for clause, value in (
            ("state = ?", None if state is None else _text(state)),
            ("agent_name = ?", agent_name),
            ("created_at >= ?", _seconds(since)),
            ("created_at < ?", _seconds(until)),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)}"
        sql += " ORDER BY created_at DESC, run_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        async with self._tx(write=False) as tx:
            return [_run_record(row) for row in await tx.fetch(sql, params)]

    async def delete_run(self, run_id: str) -> None:
        async with self._tx() as tx:
            await tx.run("DELETE FROM tool_calls WHERE run_id = ?", (run_id,))
            await tx.run("DELETE FROM steps WHERE run_id = ?", (run_id,))
            if await tx.run("DELETE FROM runs WHERE run_id = ?", (run_id,)) == 0:
                raise RunNotFound(run_id, self.where)

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
        changes: dict[str, Any] = {}
        if state is not UNSET:
            changes["state"] = _text(state)
        if error is not UNSET:
            changes["error"] = error
        if pending is not UNSET:
            changes["pending_json"] = json.dumps(pending)
        if output_json is not UNSET:
            changes["output_json"] = output_json
        if metadata is not UNSET:
            changes["metadata_json"] = json.dumps(metadata)
        async with self._tx() as tx:
            await self._update(tx, run_id, changes)

    async def _update(self, tx: Tx, run_id: str, changes: dict[str, Any]) -> None:
        changes = {**changes, "updated_at": await tx.now()}
        sets = ", ".join(f"{column} = ?" for column in changes)
        sql = f"UPDATE runs SET {sets} WHERE run_id = ?"
        if await tx.run(sql, (*changes.values(), run_id)) == 0:
            raise RunNotFound(run_id, self.where)

    # Steps.

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
        if step.run_id != run_id:
            raise ValueError(f"The step belongs to run {step.run_id!r}, not {run_id!r}.")
        changes = {
            "state": _text(state), "step_count": step_count, "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens, "cached_tokens": usage.cached_tokens,
            "reasoning_tokens": usage.reasoning_tokens, "error": error, "output_json": output_json,
            "pending_json": json.dumps(pending or []),
        }  # fmt: skip
        try:
            async with self._tx() as tx:
                # The run's row first: a step that cannot be stored must undo this change.
                await self._update(tx, run_id, changes)
                await self._insert_step(tx, step)
        except _NothingToWrite:
            pass

    async def _insert_step(self, tx: Tx, step: StepRecord) -> None:
        values = (step.run_id, step.step_number, step.kind, step.data_json, step.created_at)
        sql = (
            f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, step_number) DO NOTHING"
        )
        if await tx.run(sql, values) == 1:
            return
        query = f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? AND step_number = ?"
        stored = _step_record((await tx.fetch(query, (step.run_id, step.step_number)))[0])
        if stored.same_content(step):
            raise _NothingToWrite
        raise StepConflict(step.run_id, step.step_number, self.where)

    async def steps(self, run_id: str) -> list[StepRecord]:
        sql = f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY step_number"
        async with self._tx(write=False) as tx:
            rows = await tx.fetch(sql, (run_id,))
            if not rows:
                await self._get_run(tx, run_id)
        return [_step_record(row) for row in rows]

    # The tool-call journal.

    async def record_tool_call(self, record: ToolCallRecord) -> ToolCallRecord:
        values = (
            record.run_id, record.step_number, record.call_index, record.tool_name,
            record.arguments_json, record.result_json, record.is_error, record.recorded_at, record.started_at,
        )  # fmt: skip
        sql = (
            f"INSERT INTO tool_calls ({_CALL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, step_number, call_index) DO NOTHING"
        )
        async with self._tx() as tx:
            await self._get_run(tx, record.run_id)
            await tx.run(sql, values)
            stored = await self._tool_call(tx, record.run_id, record.step_number, record.call_index)
        assert stored is not None  # written above, or already there
        return stored

    async def _tool_call(self, tx: Tx, run_id: str, step: int, index: int) -> ToolCallRecord | None:
        sql = f"SELECT {_CALL_COLUMNS} FROM tool_calls WHERE run_id = ? AND step_number = ?"
        rows = await tx.fetch(sql + " AND call_index = ?", (run_id, step, index))
        return _call_record(rows[0]) if rows else None

    async def get_tool_call(self, run_id: str, step_number: int, call_index: int) -> ToolCallRecord | None:
        async with self._tx(write=False) as tx:
            return await self._tool_call(tx, run_id, step_number, call_index)

    async def tool_calls(self, run_id: str) -> list[ToolCallRecord]:
        sql = f"SELECT {_CALL_COLUMNS} FROM tool_calls WHERE run_id = ? ORDER BY step_number, call_index"
        async with self._tx(write=False) as tx:
            rows = await tx.fetch(sql, (run_id,))
            if not rows:
                await self._get_run(tx, run_id)
        return [_call_record(row) for row in rows]

    # Leases.

    async def acquire_lease(self, run_id: str, owner: str, ttl_s: float) -> bool:
        condition = "lease_owner IS NULL OR lease_expires_at <= ? OR lease_owner = ?"
        return await self._set_lease(run_id, owner, ttl_s, condition, lambda now: (now, owner))

    async def renew_lease(self, run_id: str, owner: str, ttl_s: float) -> bool:
        # Still ours if no one took it over, even past its expiry: whoever acquires it replaces
        # the owner, and a release clears it.
        return await self._set_lease(run_id, owner, ttl_s, "lease_owner = ?", lambda now: (owner,))

    async def _set_lease(
        self,
        run_id: str,
        owner: str,
        ttl_s: float,
        condition: str,
        params: Callable[[float], Row],
    ) -> bool:
        if ttl_s <= 0:
            raise ValueError(f"A lease lasts a positive number of seconds, not {ttl_s}.")
        sql = f"UPDATE runs SET lease_owner = ?, lease_expires_at = ? WHERE run_id = ? AND ({condition})"
        async with self._tx() as tx:
            now = await tx.now()
            if await tx.run(sql, (owner, now + ttl_s, run_id, *params(now))) == 1:
                return True
            await self._get_run(tx, run_id)
            return False

    async def release_lease(self, run_id: str, owner: str) -> bool:
        sql = "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL"
        sql += " WHERE run_id = ? AND lease_owner = ?"
        async with self._tx() as tx:
            if await tx.run(sql, (run_id, owner)) == 1:
                return True
            await self._get_run(tx, run_id)
            return False


def _text(value: str) -> str:
    """A state as text (`RunState.SUCCESS` -> "success")."""
    text = value.value if isinstance(value, Enum) else value
    if not isinstance(text, str) or not text:
        raise ValueError(f"A run state is a non-empty string, not {value!r}.")
    return text


def _seconds(value: TimeLike | None) -> float | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise StoreError(f"{value} has no time zone; give an aware datetime or seconds since the epoch.")
        return value.timestamp()
    return value


def _run_record(row: Row) -> RunRecord:
    return RunRecord(
        run_id=row[0], agent_name=row[1], task=row[2], state=row[3], created_at=row[4],
        updated_at=row[5], step_count=row[6], usage=Usage(row[7], row[8], row[9], row[10]),
        error=row[11], output_json=row[12], metadata=json.loads(row[13]), lease_owner=row[14],
        lease_expires_at=row[15], pending=json.loads(row[16]),
    )  # fmt: skip


def _step_record(row: Row) -> StepRecord:
    return StepRecord(run_id=row[0], step_number=row[1], kind=row[2], data_json=row[3], created_at=row[4])


def _call_record(row: Row) -> ToolCallRecord:
    return ToolCallRecord(
        run_id=row[0], step_number=row[1], call_index=row[2], tool_name=row[3],
        arguments_json=row[4], result_json=row[5], is_error=bool(row[6]), recorded_at=row[7],
        started_at=row[8],
    )  # fmt: skip
