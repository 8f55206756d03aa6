"""Two workers, one run: with PostgreSQL, two processes resume the same run at the same moment;
the lease lets exactly one continue it, the other is told another worker holds it, and no step
or tool call happens twice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from pg_server import PostgresServer

from codeloop import CodeAgent, RunState, ScriptedModel
from codeloop.store import open_store

WORKER = """
import sys, time
from pathlib import Path
from codeloop import CodeAgent, ScriptedModel, tool
from codeloop.agents.durable import RunLeaseHeld

dsn, run_id, log, go = sys.argv[1:5]

@tool
def record(item: str) -> str:
    \"\"\"Record an item.

    Args:
        item: The item.
    \"\"\"
    with open(log, "a") as f:
        f.write(item + "\\n")
    return item

replies = [
    "```python\\nrecord('second')\\n```",
    "```python\\nrecord('third')\\n```",
    "```python\\nfinal_answer(first + '+more')\\n```",
]
agent = CodeAgent([record], ScriptedModel(replies, latency_s=0.4), store=dsn, max_steps=6)
while not Path(go).exists():  # both workers start together
    time.sleep(0.005)
try:
    print("done", agent.resume(run_id))
except RunLeaseHeld as exc:
    print("held", exc)
"""


def test_two_workers_racing_for_one_run_only_one_continues_it(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    dsn = pg_server.dsn(pg_server.create_database())
    log, go = tmp_path / "record.log", tmp_path / "go"
    first = ScriptedModel(
        ["```python\nfirst = 'one'\nprint(first)\n```", RuntimeError("worker lost its model")]
    )
    failed = CodeAgent([], first, store=dsn, max_steps=6).run("Record things.", return_full_result=True)
    assert failed.state is RunState.ERROR

    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, dsn, failed.run_id, str(log), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    go.touch()
    outcomes = [w.communicate(timeout=120) for w in workers]
    said = sorted(out.split()[0] if out else f"crashed: {err[-300:]}" for out, err in outcomes)
    assert said == ["done", "held"], outcomes
    winner = next(out for out, _ in outcomes if out.startswith("done"))
    assert winner.split()[1] == "one+more"
    assert log.read_text().splitlines() == ["second", "third"]  # each call once

    async def stored() -> list[int]:
        async with open_store(dsn) as store:
            return [s.step_number for s in await store.steps(failed.run_id)]

    numbers = asyncio.run(stored())
    assert numbers == sorted(set(numbers))  # no step stored twice
