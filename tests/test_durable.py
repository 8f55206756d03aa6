"""Durable runs through the agents, against SQLite in a temporary file and a real PostgreSQL
server the tests start (`tests/pg_server.py`): every step stored, runs resumed by fresh agent
objects with their variables replayed and no tool called twice, idempotency keys, leases."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pg_server import PostgresServer

from codeloop import CodeAgent, ScriptedModel, ToolCallingAgent, tool
from codeloop.agents.durable import RunLeaseHeld, StoreWriteFailed
from codeloop.memory import ActionStep, FinalAnswerStep, TaskStep
from codeloop.result import RunState
from codeloop.store import open_store
from codeloop.tools import current_call


@dataclasses.dataclass
class Backend:
    name: str
    url: str

    def execute(self, sql: str) -> None:
        if self.name == "sqlite":
            with sqlite3.connect(self.url) as connection:
                connection.execute(sql)
            connection.close()
        else:
            with psycopg.connect(self.url) as connection:
                connection.execute(sql)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "runs.db"))
    server: PostgresServer = request.getfixturevalue("pg_server")
    return Backend("postgres", server.dsn(server.create_database()))


class Counter:
    """A tool that counts its calls and keeps the idempotency key of each."""

    def __init__(self) -> None:
        self.keys: list[str] = []

        @tool
        def lookup(item: str) -> int:
            """The stock of an item.

            Args:
                item: The item's name.
            """
            context = current_call()
            self.keys.append("no key" if context is None else context.key)
            return len(item) * 10

        self.tool = lookup


def code(text: str) -> str:
    return f"```python\n{text}\n```"


STEP_1 = code("stock = lookup('apple')\nprint(stock)")
STEP_2 = code("more = lookup('pear') + stock\nprint(more)")
STEP_3 = code("final_answer(stock + more)")  # uses variables set in steps 1 and 2


async def stored(url: str, run_id: str) -> tuple[Any, list[Any], list[Any]]:
    async with open_store(url) as store:
        return await store.get_run(run_id), await store.steps(run_id), await store.tool_calls(run_id)


def test_every_step_is_stored_and_equals_memory(backend: Backend) -> None:
    counter = Counter()
    agent = CodeAgent([counter.tool], ScriptedModel([STEP_1, STEP_2, STEP_3]), store=backend.url)
    result = agent.run("Count the stock.", return_full_result=True)
    assert result.output == 140
    record, steps, calls = asyncio.run(stored(backend.url, result.run_id))
    assert [s.to_step() for s in steps] == result.memory.steps
    assert [s.step_number for s in steps] == list(range(5))
    assert (record.state, record.step_count, record.usage) == ("success", 5, result.usage)
    assert record.output_json == "140" and record.lease_owner is None
    assert record.metadata["max_steps"] == 20 and record.metadata["agent_class"] == "CodeAgent"
    assert [(c.step_number, c.call_index, c.tool_name, c.result_json) for c in calls] == [
        (1, 0, "lookup", '{"value": 50}'),
        (2, 0, "lookup", '{"value": 40}'),
    ]


def test_a_run_that_failed_is_resumed_by_a_fresh_agent_with_its_variables_and_no_repeated_call(
    backend: Backend,
) -> None:
    counter = Counter()
    first = CodeAgent(
        [counter.tool], ScriptedModel([STEP_1, STEP_2, RuntimeError("down")]), store=backend.url
    )
    failed = first.run("Count the stock.", return_full_result=True)
    assert failed.state is RunState.ERROR and len(counter.keys) == 2

    again = CodeAgent([counter.tool], ScriptedModel([STEP_3]), store=backend.url)
    result = again.resume(failed.run_id, return_full_result=True)
    assert (result.state, result.output, result.run_id) == (RunState.SUCCESS, 140, failed.run_id)
    assert len(counter.keys) == 2  # the replay answered both calls from the journal
    _, steps, _ = asyncio.run(stored(backend.url, failed.run_id))
    assert [s.step_number for s in steps] == list(range(5))
    assert [type(s.to_step()) for s in steps] == [
        TaskStep,
        ActionStep,
        ActionStep,
        ActionStep,
        FinalAnswerStep,
    ]
    assert [s.to_step() for s in steps] == result.memory.steps
    assert again.resume(failed.run_id) == 140  # finished: the stored answer


def test_a_run_interrupted_from_a_step_callback_is_resumed(backend: Backend) -> None:
    counter = Counter()

    def stop_after_first(step: ActionStep, agent: CodeAgent) -> None:
        agent.interrupt()

    first = CodeAgent(
        [counter.tool], ScriptedModel([STEP_1]), store=backend.url, step_callbacks=[stop_after_first]
    )
    stopped = first.run("Count the stock.", return_full_result=True)
    assert stopped.state is RunState.INTERRUPTED
    again = CodeAgent([counter.tool], ScriptedModel([STEP_2, STEP_3]), store=backend.url)
    assert again.resume(stopped.run_id) == 140
    assert counter.keys == [f"{stopped.run_id}/1/0", f"{stopped.run_id}/2/0"]


def test_a_replay_the_journal_cannot_answer_tells_the_model_what_may_be_gone(backend: Backend) -> None:
    counter = Counter()
    first = CodeAgent(
        [counter.tool], ScriptedModel([STEP_1, STEP_2, RuntimeError("down")]), store=backend.url
    )
    failed = first.run("Count the stock.", return_full_result=True)
    backend.execute(f"DELETE FROM tool_calls WHERE run_id = '{failed.run_id}' AND step_number = 2")
    model = ScriptedModel([code("final_answer(stock)")])
    again = CodeAgent([counter.tool], model, store=backend.url)
    assert again.resume(failed.run_id) == 50  # step 1 was replayed
    assert len(counter.keys) == 2  # the call without a record was not made again
    seen = model.requests[0][-1].content
    assert "replaying its earlier code stopped" in seen and "hold other values: more." in seen


def test_a_tool_calling_run_is_resumed_without_calling_its_tools_again(backend: Backend) -> None:
    counter = Counter()
    calls = [ScriptedModel.call("lookup", item="apple"), ScriptedModel.call("lookup", item="fig")]
    first = ToolCallingAgent([counter.tool], ScriptedModel([calls, RuntimeError("down")]), store=backend.url)
    failed = first.run("Count the stock.", return_full_result=True)
    assert counter.keys == [f"{failed.run_id}/1/0", f"{failed.run_id}/1/1"]
    answer = [ScriptedModel.call("final_answer", answer=80)]
    again = ToolCallingAgent([counter.tool], ScriptedModel([answer]), store=backend.url)
    assert again.resume(failed.run_id) == 80
    assert len(counter.keys) == 2
    _, steps, journal = asyncio.run(stored(backend.url, failed.run_id))
    assert [s.kind for s in steps] == ["task", "action", "action", "final_answer"]
    assert [(c.call_index, c.result_json) for c in journal] == [(0, '{"value": 50}'), (1, '{"value": 30}')]


def test_the_idempotency_key_is_none_outside_a_run() -> None:
    assert current_call() is None
    assert Counter().tool("kiwi") == 40


def test_a_run_held_by_another_worker_is_not_resumed(backend: Backend) -> None:
    first = CodeAgent([Counter().tool], ScriptedModel([STEP_1, RuntimeError("down")]), store=backend.url)
    failed = first.run("Count the stock.", return_full_result=True)

    async def take() -> None:
        async with open_store(backend.url) as store:
            assert await store.acquire_lease(failed.run_id, "other-worker", 60)

    asyncio.run(take())
    again = CodeAgent([Counter().tool], ScriptedModel([STEP_3]), store=backend.url)
    with pytest.raises(RunLeaseHeld, match="other-worker"):
        again.resume(failed.run_id)


def test_a_store_that_cannot_be_written_ends_the_run(backend: Backend) -> None:
    def break_store(step: ActionStep) -> None:
        backend.execute("DROP TABLE steps")

    agent = CodeAgent(
        [Counter().tool], ScriptedModel([STEP_1, STEP_2]), store=backend.url, step_callbacks=[break_store]
    )
    with pytest.raises(StoreWriteFailed, match="could not store a step") as caught:
        agent.run("Count the stock.")
    assert caught.value.result is not None and len(caught.value.result.memory.action_steps()) == 1


def test_readme_resume_example(tmp_path: Path) -> None:
    runs_db = tmp_path / "runs.db"
    # --- README: durable runs ---
    from codeloop import CodeAgent, ScriptedModel, tool
    from codeloop.tools import current_call

    sent: set[str] = set()

    @tool
    def send_invoice(customer: str) -> str:
        """Send a customer their invoice (once).

        Args:
            customer: The customer's name.
        """
        key = current_call().key  # the same when a resumed run repeats this call
        if key not in sent:
            sent.add(key)  # e.g. a database row with a unique key, written with the side effect
        return f"sent to {customer}"

    model = ScriptedModel(
        [
            "```python\nstatus = send_invoice('Ada')\nprint(status)\n```",
            RuntimeError("the model server went away"),
        ]
    )
    agent = CodeAgent([send_invoice], model, store=runs_db)  # or "postgresql://...", or True
    failed = agent.run("Invoice Ada.", return_full_result=True)

    # later, in any process: a fresh agent continues the run from its last stored step
    agent = CodeAgent([send_invoice], ScriptedModel(["```python\nfinal_answer(status)\n```"]), store=runs_db)
    print(agent.resume(failed.run_id))  # sent to Ada: `status` was restored, no invoice sent twice
    # --- end ---
    assert agent.resume(failed.run_id) == "sent to Ada" and len(sent) == 1
