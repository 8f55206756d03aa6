"""`codeloop approve`: a run paused on a tool call here is listed and answered by the command in
another process; an approved call runs once, a denied one reaches the model with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeloop import ApprovalRequired, CodeAgent, ScriptedModel

from terminal import run_cli

AGENT_MODULE = '''
from pathlib import Path
from codeloop import CodeAgent, ScriptedModel, tool

LOG = Path(__file__).with_name("sent.log")

@tool(requires_approval=True)
def send_invoice(customer: str) -> str:
    """Send a customer their invoice.

    Args:
        customer: The customer's name.
    """
    with LOG.open("a") as f:
        f.write(customer + "\\n")
    return "sent to " + customer

FINISH = (
    "```python\\ntry:\\n    final_answer(status)\\n"
    "except NameError:\\n    final_answer('not sent')\\n```"
)

def agent():
    store = str(Path(__file__).with_name("runs.db"))
    return CodeAgent([send_invoice], ScriptedModel([FINISH]), name="billing", store=store)
'''
SEND = "```python\nstatus = send_invoice('Ada')\nprint(status)\n```"


def paused_run(folder: Path) -> str:
    """A run of the module's agent, paused on its send_invoice call; its run id."""
    namespace: dict[str, object] = {"__file__": str(folder / "billing.py")}
    exec(compile(AGENT_MODULE, str(folder / "billing.py"), "exec"), namespace)
    agent = namespace["agent"]()  # type: ignore[operator]
    agent.model = ScriptedModel([SEND])
    with pytest.raises(ApprovalRequired) as paused:
        agent.run("Invoice Ada.")
    assert isinstance(agent, CodeAgent) and not (folder / "sent.log").exists()
    return str(paused.value.result.run_id)  # type: ignore[union-attr]


@pytest.mark.parametrize("deny", [False, True])
def test_a_paused_call_is_listed_and_answered_from_another_process(tmp_path: Path, deny: bool) -> None:
    (tmp_path / "billing.py").write_text(AGENT_MODULE)
    run_id = paused_run(tmp_path)
    store = str(tmp_path / "runs.db")

    listed = run_cli(["approve", "--list", "--store", store])
    assert listed.code == 0, listed.err
    (line,) = listed.out.splitlines()
    assert line.startswith(f"{run_id}  {run_id}/1/0  send_invoice(") and '"customer": "Ada"' in line

    answer = ["--deny", "not this month"] if deny else []
    command = ["approve", run_id, f"{run_id}/1/0", *answer, "--agent", "billing:agent"]
    done = run_cli(command, cwd=tmp_path)
    assert done.code == 0, done.err
    if deny:
        assert done.out.strip() == "not sent" and not (tmp_path / "sent.log").exists()
    else:
        assert done.out.strip() == "sent to Ada"
        assert (tmp_path / "sent.log").read_text() == "Ada\n"  # run exactly once
    assert run_cli(["approve", "--list", "--store", store]).out == ""


def test_approve_says_what_it_needs(tmp_path: Path) -> None:
    missing = run_cli(["approve", "abc"])
    assert missing.code == 2 and "give RUN_ID CALL_ID and --agent" in missing.err
