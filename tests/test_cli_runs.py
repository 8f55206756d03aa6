"""`codeloop runs`: the runs an agent kept in a store, listed by the command in another process."""

from __future__ import annotations

import json
from pathlib import Path

from codeloop import CodeAgent, ScriptedModel

from helpers import store_with_a_dead_workers_run
from terminal import CliResult, run_cli


def codeloop(*args: str) -> CliResult:
    return run_cli(list(args), timeout=60)


def fenced(code: str) -> str:
    return f"Thought: go.\n```python\n{code}\n```"


def test_runs_lists_what_an_agent_stored_newest_first(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    done = CodeAgent([], ScriptedModel([fenced("final_answer(42)")]), name="calc", store=str(store))
    first = done.run("What is 6 * 7?", return_full_result=True)
    failing = CodeAgent([], ScriptedModel([fenced("x = 1")]), name="busy", max_steps=1, store=str(store))
    second = failing.run("Keep busy.", return_full_result=True)

    listed = codeloop("runs", "--store", str(store))
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    assert [line.split()[0] for line in lines] == [second.run_id, first.run_id]
    assert lines[1].split()[1:3] == ["success", "calc"] and lines[1].endswith("What is 6 * 7?")
    assert lines[0].split()[1:3] == ["max_steps_exceeded", "busy"]

    only = codeloop("runs", "--store", str(store), "--state", "success", "--json")
    rows = [json.loads(line) for line in only.out.splitlines()]
    assert [(r["run_id"], r["agent"], r["steps"] > 0) for r in rows] == [(first.run_id, "calc", True)]


def test_runs_says_when_there_are_none_and_when_the_store_is_unusable(tmp_path: Path) -> None:
    empty = codeloop("runs", "--store", str(tmp_path / "new.db"))
    assert empty.code == 0 and empty.out == "" and "No runs in" in empty.err
    (tmp_path / "dir.db").mkdir()
    broken = codeloop("runs", "--store", str(tmp_path / "dir.db"))
    assert broken.code == 1 and broken.err.startswith("codeloop: ")
    bad_date = codeloop("runs", "--since", "yesterday")
    assert bad_date.code == 2 and "is not a date like 2026-12-01" in bad_date.err


def test_a_running_run_whose_lease_expired_is_listed_as_abandoned(tmp_path: Path) -> None:
    store_path = tmp_path / "runs.db"
    store_with_a_dead_workers_run(str(store_path))
    listed = codeloop("runs", "--store", str(store_path))
    states = {line.split()[0]: line.split()[1] for line in listed.out.splitlines()}
    assert states == {"dead-worker": "abandoned", "still-alive": "running"}
    as_json = codeloop("runs", "--store", str(store_path), "--json")
    rows = [json.loads(line) for line in as_json.out.splitlines()]
    assert {(r["run_id"], r["state"], r["abandoned"]) for r in rows} == {
        ("dead-worker", "running", True),
        ("still-alive", "running", False),
    }
