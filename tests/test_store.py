"""The run store's contract, run against both stores: SQLite in a temporary file, and PostgreSQL
on a real server the tests start on 127.0.0.1 (`tests/pg_server.py`).

Other processes write to and die in the middle of writing to the same store, as workers do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from pg_server import PostgresServer

from codeloop.memory import ActionStep, FinalAnswerStep, Memory, PlanningStep, TaskStep
from codeloop.messages import ImageContent, ToolCall, Usage
from codeloop.result import RunState
from codeloop.store import (
    PostgresStore,
    RunExists,
    RunNotFound,
    RunRecord,
    RunStore,
    SQLiteStore,
    StepConflict,
    StepRecord,
    StoreError,
    StoreVersionError,
    ToolCallRecord,
    _schema,
    default_store_path,
    open_store,
    step_from_json,
)


@dataclasses.dataclass
class Backend:
    """One store's database: its URL, and raw SQL on it from outside the store."""

    name: str
    url: str

    def store(self) -> SQLiteStore | PostgresStore:
        return open_store(self.url)

    def execute(self, *statements: str) -> None:
        if self.name == "sqlite":
            with sqlite3.connect(self.url) as connection:
                for sql in statements:
                    connection.execute(sql)
            connection.close()
        else:
            with psycopg.connect(self.url) as connection:
                for sql in statements:
                    connection.execute(sql)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "runs.db"))
    server: PostgresServer = request.getfixturevalue("pg_server")
    return Backend("postgres", server.dsn(server.create_database()))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[SQLiteStore | PostgresStore]:
    async with backend.store() as opened:
        yield opened


def run(run_id: str = "run-1", **fields: object) -> RunRecord:
    return RunRecord(run_id=run_id, agent_name=str(fields.pop("agent_name", "shop")), task="Price?", **fields)  # type: ignore[arg-type]


def call(run_id: str, step_number: int = 0, call_index: int = 0) -> ToolCallRecord:
    return ToolCallRecord(
        run_id=run_id, step_number=step_number, call_index=call_index, tool_name="t", arguments_json="{}"
    )


def action(number: int, observations: str = "0.5") -> ActionStep:
    return ActionStep(
        step_number=number,
        model_output="```py\nprint(get_price('apple'))\n```",
        code_action="print(get_price('apple'))",
        tool_calls=(ToolCall(id="c1", name="get_price", arguments={"item": "apple"}),),
        observations=observations,
        observations_images=[ImageContent(data=b"\x89PNG fake", mime_type="image/png")],
        usage=Usage(10, 5),
    )


# Runs.


async def test_a_run_round_trips_with_every_field(store: RunStore) -> None:
    record = run(
        state=RunState.SUCCESS, created_at=1000.5, step_count=2, usage=Usage(1, 2, 3, 4), error="boom",
        output_json='{"price": 0.5}', metadata={"model": "m", "tags": ["a"]}, lease_owner="w",
        lease_expires_at=99.0, pending=[{"call_id": "c1", "tool": "pay", "arguments": {"amount": 3}}],
    )  # fmt: skip
    await store.create_run(record)
    stored = await store.get_run("run-1")
    assert stored.updated_at is not None
    assert stored.state == "success"
    assert dataclasses.replace(stored, updated_at=None) == dataclasses.replace(record, state="success")
    assert isinstance(store, RunStore)


async def test_a_run_id_is_taken_once(store: RunStore) -> None:
    await store.create_run(run())
    with pytest.raises(RunExists, match="run-1"):
        await store.create_run(dataclasses.replace(run(), agent_name="other"))
    assert (await store.get_run("run-1")).agent_name == "shop"


async def test_a_missing_run_is_named_with_its_store(store: SQLiteStore | PostgresStore) -> None:
    with pytest.raises(RunNotFound) as caught:
        await store.get_run("nope")
    assert "'nope'" in str(caught.value) and store.where in str(caught.value)
    step = StepRecord.from_step("nope", 0, TaskStep(task="t"))
    for attempt in (
        store.delete_run("nope"),
        store.update_run("nope", state="x"),
        store.append_step("nope", step, state="running", usage=Usage(), step_count=1),
        store.steps("nope"),
        store.tool_calls("nope"),
        store.record_tool_call(call("nope")),
        store.acquire_lease("nope", "w", 10),
    ):  # fmt: skip
        with pytest.raises(RunNotFound):
            await attempt


async def test_list_runs_filters_and_puts_the_newest_first(store: RunStore) -> None:
    for run_id, created, state, agent in [
        ("a", 1000.0, "success", "shop"), ("b", 2000.0, "error", "shop"),
        ("c", 3000.0, "success", "bank"), ("d", 4000.0, "running", "shop"),
    ]:  # fmt: skip
        await store.create_run(run(run_id, created_at=created, state=state, agent_name=agent))

    async def ids(**filters: object) -> list[str]:
        return [r.run_id for r in await store.list_runs(**filters)]  # type: ignore[arg-type]

    assert await ids() == ["d", "c", "b", "a"]
    assert await ids(state="success") == ["c", "a"]
    assert await ids(state=RunState.SUCCESS, agent_name="shop") == ["a"]
    assert await ids(agent_name="bank") == ["c"]
    assert await ids(since=2000.0, until=4000.0) == ["c", "b"]
    assert await ids(since=datetime.fromtimestamp(3000, tz=timezone.utc)) == ["d", "c"]
    assert await ids(limit=2) == ["d", "c"]
    assert await ids(limit=None, until=1500) == ["a"]
    with pytest.raises(StoreError, match="time zone"):
        await store.list_runs(since=datetime(2025, 1, 1))


async def test_delete_run_takes_its_steps_and_tool_calls(store: RunStore) -> None:
    for run_id in ("gone", "kept"):
        await store.create_run(run(run_id))
        step = StepRecord.from_step(run_id, 0, TaskStep(task="t"))
        await store.append_step(run_id, step, state="running", usage=Usage(), step_count=1)
        await store.record_tool_call(call(run_id, step_number=1))
    await store.delete_run("gone")
    with pytest.raises(RunNotFound):
        await store.get_run("gone")
    assert await store.get_tool_call("gone", 1, 0) is None
    await store.create_run(run("gone"))  # the id is free again, with nothing left of the old run
    assert await store.steps("gone") == [] and await store.tool_calls("gone") == []
    assert len(await store.steps("kept")) == 1 and len(await store.tool_calls("kept")) == 1


async def test_update_run_sets_only_what_it_is_given(store: RunStore) -> None:
    await store.create_run(run(error="old", metadata={"a": 1}, output_json="1"))
    await store.update_run("run-1", state="awaiting_approval", pending=[{"call_id": "c9"}])
    stored = await store.get_run("run-1")
    assert (stored.state, stored.pending, stored.error, stored.metadata, stored.output_json) == (
        "awaiting_approval", [{"call_id": "c9"}], "old", {"a": 1}, "1",
    )  # fmt: skip
    await store.update_run("run-1", error=None, output_json=None, metadata={"b": 2}, pending=[])
    stored = await store.get_run("run-1")
    assert (stored.state, stored.pending, stored.error, stored.metadata, stored.output_json) == (
        "awaiting_approval", [], None, {"b": 2}, None,
    )  # fmt: skip


# Steps.


async def test_append_step_writes_the_step_and_the_run_together(store: RunStore) -> None:
    await store.create_run(run())
    memory = Memory(
        steps=[
            TaskStep(task="Price?"),
            PlanningStep(plan="look it up"),
            action(1),
            FinalAnswerStep(output=0.5),
        ]
    )
    for number, step in enumerate(memory.steps):
        final = isinstance(step, FinalAnswerStep)
        await store.append_step(
            "run-1", StepRecord.from_step("run-1", number, step), state="success" if final else "running",
            usage=Usage(10 * (number + 1), number), step_count=number + 1,
            output_json="0.5" if final else None, pending=None if final else [{"at": number}],
        )  # fmt: skip
        stored = await store.get_run("run-1")
        assert (stored.step_count, stored.usage.input_tokens) == (number + 1, 10 * (number + 1))
        assert len(await store.steps("run-1")) == number + 1
    stored = await store.get_run("run-1")
    assert (stored.state, stored.output_json, stored.pending) == ("success", "0.5", [])
    records = await store.steps("run-1")
    assert [r.kind for r in records] == ["task", "planning", "action", "final_answer"]
    assert Memory(steps=[r.to_step() for r in records]) == memory
    # Each step's JSON is an element of what Memory.to_json writes.
    assert "[" + ",".join(r.data_json for r in records) + "]" == memory.to_json()


async def test_a_step_that_cannot_be_stored_leaves_the_run_row_as_it_was(store: RunStore) -> None:
    await store.create_run(run())
    first = StepRecord.from_step("run-1", 0, action(1, observations="first"))
    await store.append_step(
        "run-1", first, state="running", usage=Usage(1, 1), step_count=1, pending=[{"p": 1}]
    )
    before = await store.get_run("run-1")
    other = StepRecord.from_step("run-1", 0, action(1, observations="second"))
    with pytest.raises(StepConflict, match="step 0"):
        await store.append_step(
            "run-1", other, state="success", usage=Usage(99, 99), step_count=7, error="e", output_json="1"
        )
    assert await store.get_run("run-1") == before
    assert [r.data_json for r in await store.steps("run-1")] == [first.data_json]


async def test_writing_the_same_step_again_is_a_no_op(store: RunStore) -> None:
    await store.create_run(run())
    step = StepRecord.from_step("run-1", 0, action(1))
    await store.append_step("run-1", step, state="running", usage=Usage(5, 5), step_count=1)
    before = await store.get_run("run-1")
    # The same step, read back and written again later (a worker retrying a write that committed).
    again = dataclasses.replace(
        StepRecord.from_step("run-1", 0, step_from_json(step.data_json)), created_at=step.created_at + 60
    )
    await store.append_step("run-1", again, state="running", usage=Usage(5, 5), step_count=1)
    assert await store.get_run("run-1") == before
    assert await store.steps("run-1") == [step]


# The tool-call journal.


async def test_the_first_journaled_result_wins(store: RunStore) -> None:
    await store.create_run(run())
    first = ToolCallRecord(
        run_id="run-1", step_number=2, call_index=0, tool_name="pay", arguments_json='{"amount": 3}',
        result_json='"paid"', recorded_at=100.0,
    )  # fmt: skip
    assert await store.record_tool_call(first) == first
    replay = dataclasses.replace(first, result_json='"paid twice"', is_error=True, recorded_at=200.0)
    assert await store.record_tool_call(replay) == first
    assert await store.get_tool_call("run-1", 2, 0) == first
    assert await store.get_tool_call("run-1", 2, 1) is None
    failed = dataclasses.replace(first, step_number=1, call_index=3, result_json=None, is_error=True)
    await store.record_tool_call(failed)
    assert await store.tool_calls("run-1") == [failed, first]


# Leases.


async def test_two_workers_racing_for_a_run_never_both_get_it(backend: Backend) -> None:
    async with backend.store() as a, backend.store() as b:
        for number in range(10):
            await a.create_run(run(f"race-{number}"))
            won = await asyncio.gather(
                a.acquire_lease(f"race-{number}", "worker-a", 60),
                b.acquire_lease(f"race-{number}", "worker-b", 60),
            )
            assert sorted(won) == [False, True]
            owner = "worker-a" if won[0] else "worker-b"
            assert (await b.get_run(f"race-{number}")).lease_owner == owner


async def test_a_lease_is_held_renewed_released_and_taken_over_when_it_expires(backend: Backend) -> None:
    async with backend.store() as a, backend.store() as b:
        await a.create_run(run())
        assert await a.acquire_lease("run-1", "A", 60)
        assert not await b.acquire_lease("run-1", "B", 60)
        assert await a.acquire_lease("run-1", "A", 60)  # its own lease: taken again
        assert await a.renew_lease("run-1", "A", 60)
        assert not await b.renew_lease("run-1", "B", 60)
        assert not await b.release_lease("run-1", "B")
        assert (await b.get_run("run-1")).lease_owner == "A"
        assert await a.release_lease("run-1", "A")
        stored = await b.get_run("run-1")
        assert (stored.lease_owner, stored.lease_expires_at) == (None, None)

        assert await b.acquire_lease("run-1", "B", 0.2)
        assert not await a.acquire_lease("run-1", "A", 60)
        await asyncio.sleep(0.5)  # B's lease ends; B stopped renewing it (a worker that died)
        assert await a.acquire_lease("run-1", "A", 60)
        assert not await b.renew_lease("run-1", "B", 60)
        assert (await b.get_run("run-1")).lease_owner == "A"
        with pytest.raises(ValueError, match="positive"):
            await a.acquire_lease("run-1", "A", 0)


# Schema versions.


def test_the_released_first_schema_never_changes() -> None:
    """A released migration is never edited: a change to the tables is a new migration."""
    digest = hashlib.sha256("\n".join(_schema.MIGRATIONS[0]).encode()).hexdigest()
    assert digest == V1_DIGEST, "schema version 1 changed: restore it and add a migration instead"


V1_DIGEST = "67d5945a6145473956d42b607067600931b2da52de1a9e959960b5501de04117"


async def test_a_new_database_gets_the_latest_schema(store: RunStore) -> None:
    assert await store.schema_version() == _schema.LATEST_VERSION


async def test_workers_opening_a_new_database_at_once_create_the_tables_once(backend: Backend) -> None:
    stores = [backend.store() for _ in range(4)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        assert [await store.schema_version() for store in stores] == [_schema.LATEST_VERSION] * 4
    finally:
        for store in stores:
            await store.close()


async def test_a_version_1_database_is_read(backend: Backend) -> None:
    dialect = "sqlite" if backend.name == "sqlite" else "postgres"
    backend.execute(
        _schema.version_table(dialect),
        *_schema.statements(1, dialect),
        "INSERT INTO schema_version (version, applied_at) VALUES (1, 0)",
        "INSERT INTO runs (run_id, agent_name, task, state, created_at, updated_at)"
        " VALUES ('old', 'shop', 'Price?', 'success', 5, 6)",
        "INSERT INTO tool_calls (run_id, step_number, call_index, tool_name, arguments_json, is_error,"
        " recorded_at) VALUES ('old', 1, 0, 'price', '{}', FALSE, 7)",
    )
    async with backend.store() as store:
        stored = await store.get_run("old")
        assert (stored.state, stored.usage, stored.metadata, stored.pending) == ("success", Usage(), {}, [])
        assert await store.schema_version() == _schema.LATEST_VERSION
        [old_call] = await store.tool_calls("old")
        assert (old_call.recorded_at, old_call.started_at) == (7, None)  # version 2 added started_at
        new_call = dataclasses.replace(call("old", step_number=2), started_at=6.5)
        assert await store.record_tool_call(new_call) == new_call


async def test_a_database_from_a_newer_codeloop_is_refused(backend: Backend) -> None:
    async with backend.store() as store:
        await store.create_run(run())
    backend.execute("INSERT INTO schema_version (version, applied_at) VALUES (999, 0)")
    store = backend.store()
    with pytest.raises(StoreVersionError, match=r"version 999.*Upgrade codeloop") as caught:
        await store.open()
    assert caught.value.found == 999 and store.where in str(caught.value)
    with pytest.raises(StoreVersionError):
        await store.get_run("run-1")  # a refused store stays refused


# Other processes.

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from codeloop.memory import ActionStep, TaskStep
    from codeloop.messages import Usage
    from codeloop.store import RunExists, RunRecord, StepRecord, ToolCallRecord, open_store

    async def main(url, last):
        async with open_store(url) as store:
            try:
                await store.create_run(RunRecord(run_id="child", agent_name="shop", task="Price?"))
                await store.append_step("child", StepRecord.from_step("child", 0, TaskStep(task="Price?")),
                                        state="running", usage=Usage(), step_count=1)
            except RunExists:  # a run a killed writer left: go on from its last stored step
                pass
            number = (await store.get_run("child")).step_count
            while last < 0 or number <= last:
                step = ActionStep(step_number=number, observations=str(number) * 20_000, usage=Usage(1, 1))
                await store.record_tool_call(ToolCallRecord(
                    run_id="child", step_number=number, call_index=0, tool_name="t", arguments_json="{}",
                    result_json=str(number)))
                await store.append_step("child", StepRecord.from_step("child", number, step),
                                        state="running", usage=Usage(number, number), step_count=number + 1)
                print(number, flush=True)
                number += 1

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def writer(backend: Backend, last: int) -> subprocess.Popen[str]:
    """A process that writes the run "child" up to step `last` (-1: until it is killed)."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, backend.url, str(last)], stdout=subprocess.PIPE, text=True
    )


async def test_a_run_written_by_another_process_is_read_here(backend: Backend) -> None:
    child = writer(backend, 3)
    assert child.wait(timeout=60) == 0
    async with backend.store() as store:
        stored = await store.get_run("child")
        steps = await store.steps("child")
        assert (stored.step_count, stored.usage, len(steps)) == (4, Usage(3, 3), 4)
        assert [type(s.to_step()) for s in steps] == [TaskStep, ActionStep, ActionStep, ActionStep]
        assert [c.result_json for c in await store.tool_calls("child")] == ["1", "2", "3"]


async def test_writers_killed_mid_run_leave_only_whole_steps_and_the_next_one_resumes(
    backend: Backend,
) -> None:
    rounds, lines = 6, 4
    for round_number in range(rounds):
        child = writer(backend, -1)
        try:
            assert child.stdout is not None
            for _ in range(lines):  # let it write a while, then kill it wherever it is
                assert child.stdout.readline(), "the writer stopped before it was killed"
            time.sleep(random.uniform(0, 0.01))
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=30)
        async with backend.store() as store:
            stored = await store.get_run("child")
            steps = await store.steps("child")
            journal = await store.tool_calls("child")
        assert len(steps) >= 1 + (round_number + 1) * lines
        assert [s.step_number for s in steps] == list(range(len(steps)))
        assert (stored.step_count, stored.usage.input_tokens) == (len(steps), len(steps) - 1)
        for record in steps[1:]:
            step = record.to_step()
            assert isinstance(step, ActionStep)
            assert step.observations == str(record.step_number) * 20_000
        # A tool call is journaled before its step is: at most one step ahead.
        assert [c.step_number for c in journal][: len(steps) - 1] == list(range(1, len(steps)))
        assert len(journal) in (len(steps) - 1, len(steps))


# Choosing a store.


def test_open_store_chooses_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store("postgresql://u@h/db"), PostgresStore)
    assert isinstance(open_store("postgres://u@h/db"), PostgresStore)
    assert open_store(f"sqlite:///{tmp_path}/a.db").path == tmp_path / "a.db"  # type: ignore[union-attr]
    assert open_store("sqlite:///runs.db").path == Path("runs.db")  # type: ignore[union-attr]
    assert open_store(tmp_path / "b.db").path == tmp_path / "b.db"  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="Unknown store URL scheme 'mysql'"):
        open_store("mysql://h/db")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_store_path() == tmp_path / "data" / "codeloop" / "runs.db"
    assert open_store().path == default_store_path()  # type: ignore[union-attr]
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_store_path() == Path.home() / ".local" / "share" / "codeloop" / "runs.db"


async def test_an_unreachable_postgres_says_what_to_check() -> None:
    store = PostgresStore("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=5")
    with pytest.raises(StoreError, match="Check the DSN") as caught:
        await store.open()
    assert "secret" not in str(caught.value)


async def test_the_sqlite_file_is_in_wal_mode_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "runs.db"
    async with SQLiteStore(path) as store:
        await store.create_run(run())
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()
    async with SQLiteStore(path) as store:
        assert (await store.get_run("run-1")).task == "Price?"
    assert json.loads((await store.get_run("run-1")).output_json or "null") is None  # reopens on use
    await store.close()


async def test_stores_opening_a_new_sqlite_file_at_once_all_open(tmp_path: Path) -> None:
    # Switching a new file to WAL does not wait out a lock: without the retry, about one group
    # in twenty had a store fail with "database is locked".
    for group in range(100):
        stores = [open_store(tmp_path / f"new-{group}.db") for _ in range(4)]
        opened = await asyncio.gather(*(store.open() for store in stores), return_exceptions=True)
        for store in stores:
            await store.close()
        assert [o for o in opened if isinstance(o, BaseException)] == []
