"""Durable runs survive SIGKILL: worker processes (`tests/crash_worker.py`) run a CodeAgent and
are killed at random moments (during model streams, code actions, tool calls and store writes);
new workers resume the run, and may be killed again, until it completes.

Checked for every run, on SQLite and on PostgreSQL: the right answer, stored steps numbered
without gaps or duplicates, and exactly one line per logical tool call in the file the tool
writes. The tool follows the exactly-once recipe (it skips an idempotency key it already
applied); the calls the framework alone would have repeated (a kill between the tool's side
effect and its journal write) are counted and printed.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from crash_worker import ANSWER, CALLS
from pg_server import PostgresServer

from codeloop.store import RunRecord, open_store

RUNS_PER_STORE = 25
PARALLEL = 4
KILLS_AT_MOST = 3
WORKER = str(Path(__file__).with_name("crash_worker.py"))


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.dsn(server.create_database())


def stored_run(url: str, name: str) -> RunRecord | None:
    async def find() -> RunRecord | None:
        async with open_store(url) as store:
            runs = await store.list_runs(agent_name=name)
        return runs[0] if runs else None

    return asyncio.run(find())


def attempt(url: str, name: str, mode: str, folder: Path, kill_after: float | None) -> bool:
    """One worker; killed with SIGKILL `kill_after` seconds after it is ready. True if killed."""
    worker = subprocess.Popen(
        [sys.executable, WORKER, url, name, mode, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    worker.stdout.readline()  # "ready": imports done, the agent built
    try:
        worker.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        return True
    finally:
        worker.stdout.close()
    assert worker.returncode == 0, f"{name}: the worker failed ({worker.returncode})"
    return False


def drive(url: str, name: str, folder: Path, seed: int) -> int:
    """Run one logical run to completion through killed and resumed workers; the kills."""
    chance = random.Random(seed)
    kills = 0
    while True:
        record = stored_run(url, name)
        if record is not None and record.state == "success":
            return kills
        mode = "new" if record is None else record.run_id
        delay = chance.uniform(0.0, 0.45) if kills < KILLS_AT_MOST else None
        kills += attempt(url, name, mode, folder, delay)
        assert kills <= KILLS_AT_MOST + 1


def check(url: str, name: str, folder: Path) -> int:
    """The run's answer, steps and file; returns how many calls the framework alone repeated."""
    record = stored_run(url, name)
    assert record is not None and record.state == "success" and json.loads(record.output_json or "") == ANSWER

    async def read() -> tuple[list[int], list[int], list[str]]:
        async with open_store(url) as store:
            steps = await store.steps(record.run_id)
            journal = await store.tool_calls(record.run_id)
        actions = [json.loads(s.data_json)["step_number"] for s in steps if s.kind == "action"]
        keys = [f"{c.run_id}/{c.step_number}/{c.call_index}" for c in journal]
        return [s.step_number for s in steps], actions, keys

    numbers, actions, keys = asyncio.run(read())
    assert numbers == list(range(len(numbers)))
    assert actions == list(range(1, len(actions) + 1))
    lines = (folder / f"{name}.lines").read_text().splitlines()
    assert len(lines) == len(set(lines)) == CALLS, lines
    assert set(lines) == set(keys)
    repeated = folder / f"{name}.repeated"
    return len(repeated.read_text().splitlines()) if repeated.exists() else 0


def test_runs_killed_at_random_points_complete_once(store_url: str, tmp_path: Path) -> None:
    names = [f"crash-{index}" for index in range(RUNS_PER_STORE)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        kills = list(pool.map(lambda i: drive(store_url, names[i], tmp_path, i), range(len(names))))
    repeated = sum(check(store_url, name, tmp_path) for name in names)
    print(f"\n{len(names)} runs, {sum(kills)} workers killed; calls the framework alone repeated: {repeated}")
    assert sum(kills) >= RUNS_PER_STORE  # the kills did happen
