"""`codeloop resume RUN_ID --agent module:attr`: a run stored by this process, finished by the
command in another one (variables restored by replay, the answer on stdout)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_cli import served, streamed

from codeloop import CodeAgent, RunState, ScriptedModel
from codeloop.errors import ConfigurationError
from codeloop.store import open_store

from terminal import run_cli
from wire import ReplayServer

AGENT_MODULE = """
from codeloop import CodeAgent, ScriptedModel

def agent():
    return CodeAgent([], ScriptedModel(["```python\\nfinal_answer(x * 2)\\n```"]), name="doubler")
"""


def test_resume_finishes_a_run_another_process_started(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    model = ScriptedModel(["```python\nx = 21\nprint(x)\n```", RuntimeError("the model server went away")])
    failed = CodeAgent([], model, name="doubler", store=str(store)).run("Double 21.", return_full_result=True)
    assert failed.state is RunState.ERROR
    (tmp_path / "doubling.py").write_text(AGENT_MODULE)

    command = ["resume", failed.run_id, "--agent", "doubling:agent", "--store", str(store)]
    done = run_cli(command, cwd=tmp_path)
    assert (done.code, done.out.strip()) == (0, "42"), done.err  # x came back from the replay
    listed = run_cli(["runs", "--store", str(store)])
    assert listed.out.split()[:2] == [failed.run_id, "success"]


def test_resume_errors_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "doubling.py").write_text(AGENT_MODULE)
    no_store = run_cli(["resume", "abc", "--agent", "doubling:agent"], cwd=tmp_path)
    assert no_store.code == 2 and "has no store: pass --store" in no_store.err
    unknown = run_cli(
        ["resume", "abc", "--agent", "doubling:agent", "--store", str(tmp_path / "r.db")], cwd=tmp_path
    )
    assert unknown.code == 1 and "no answer:" in unknown.err and "abc" in unknown.err
    bad_spec = run_cli(["resume", "abc", "--agent", "nowhere:agent"], cwd=tmp_path)
    assert bad_spec.code == 2 and "no module named 'nowhere'" in bad_spec.err


def test_a_run_of_codeloop_run_is_resumed_without_naming_its_agent(tmp_path: Path) -> None:
    store = str(tmp_path / "runs.db")
    replies = [streamed("```python\nx = 21\nprint(x)\n```"), streamed("```python\nfinal_answer(x * 2)\n```")]
    with ReplayServer(replies) as server:
        first = run_cli(["run", "Double 21.", *served(server), "--api-key", "sk-secret", "--max-steps", "1",
                         "--store", store])  # fmt: skip
        assert first.code == 1 and "max_steps_exceeded" in first.err
        (listed,) = [
            json.loads(line) for line in run_cli(["runs", "--store", store, "--json"]).out.splitlines()
        ]
        done = run_cli(["resume", listed["run_id"], "--store", store, "--max-steps", "3"])
        assert (done.code, done.out.strip()) == (0, "42"), done.err  # the same model, x restored by replay
        assert server.bodies[1]["model"] == "m"
    assert b"sk-secret" not in Path(store).read_bytes()  # the settings kept never include a key
    assert run_cli(["runs", "--store", store]).out.split()[:2] == [listed["run_id"], "success"]


def test_resuming_a_run_not_started_by_codeloop_run_asks_for_its_agent(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    model = ScriptedModel(["```python\nx = 21\nprint(x)\n```", RuntimeError("the model server went away")])
    failed = CodeAgent([], model, name="doubler", store=str(store)).run("Double 21.", return_full_result=True)
    refused = run_cli(["resume", failed.run_id, "--store", str(store)])
    assert refused.code == 2
    assert (
        f"run {failed.run_id} was not started by `codeloop run`: name its agent with --agent" in refused.err
    )
    unknown = run_cli(["resume", "abc", "--store", str(store)])
    assert unknown.code == 1 and "abc" in unknown.err


def test_run_metadata_is_kept_with_each_stored_run_and_must_be_json(tmp_path: Path) -> None:
    agent = CodeAgent([], ScriptedModel(["```python\nfinal_answer(1)\n```"]), store=str(tmp_path / "r.db"))
    agent.run_metadata = {"team": "billing", "ticket": 42}
    result = agent.run("One.", return_full_result=True)

    async def stored() -> dict[str, object]:
        async with open_store(str(tmp_path / "r.db")) as store:
            return (await store.get_run(result.run_id)).metadata

    assert asyncio.run(stored())["run_metadata"] == {"team": "billing", "ticket": 42}
    agent.run_metadata = {"when": object()}
    with pytest.raises(ConfigurationError, match="run_metadata must be JSON-compatible"):
        agent.run("One.")
