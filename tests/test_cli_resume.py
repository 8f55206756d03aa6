"""`codeloop resume RUN_ID --agent module:attr`: a run stored by this process, finished by the
command in another one (variables restored by replay, the answer on stdout)."""

from __future__ import annotations

from pathlib import Path

from codeloop import CodeAgent, RunState, ScriptedModel

from terminal import run_cli

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
