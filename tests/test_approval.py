"""Human approval of tool calls, against SQLite in a temporary file and a real PostgreSQL server
the tests start: runs pause at calls that need an answer, the calls are listed from another
store object (and answered from another process), approved calls run once, denied ones reach
the model with the reason."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pg_server import PostgresServer

from codeloop import CodeAgent, ScriptedModel, ToolCallingAgent, tool
from codeloop.agents.approval import ApprovalRequired, PendingApproval, pending_approvals
from codeloop.errors import ConfigurationError
from codeloop.result import RunState
from codeloop.store import open_store
from codeloop.tools import Tool, current_call

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.dsn(server.create_database())


class Office:
    """An invoice tool that needs approval, and a lookup tool that does not; each call is kept
    with its idempotency key."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.looked_up: list[str] = []

        @tool(requires_approval=True)
        def send_invoice(customer: str, amount: int) -> str:
            """Send a customer an invoice.

            Args:
                customer: The customer's name.
                amount: The amount in euros.
            """
            context = current_call()
            self.sent.append((customer, "no key" if context is None else context.key))
            return f"invoiced {customer} {amount} EUR"

        @tool
        def balance(customer: str) -> int:
            """A customer's balance.

            Args:
                customer: The customer's name.
            """
            self.looked_up.append(customer)
            return len(customer) * 100

        self.send_invoice, self.balance = send_invoice, balance
        self.tools = [send_invoice, balance]


def listed(url: str, run_id: str | None = None) -> list[PendingApproval]:
    """The pending calls as another process sees them: through a store object of its own."""
    return asyncio.run(pending_approvals(url, run_id))


def stored_state(url: str, run_id: str) -> tuple[str, list[dict[str, Any]]]:
    async def read() -> tuple[str, list[dict[str, Any]]]:
        async with open_store(url) as store:
            record = await store.get_run(run_id)
            return record.state, record.pending

    return asyncio.run(read())


def code(text: str) -> str:
    return f"```python\n{text}\n```"


INVOICE_CALLS = [
    ScriptedModel.call("balance", customer="Ada"),
    ScriptedModel.call("send_invoice", customer="Ada", amount=300),
]


def test_a_tool_calling_run_pauses_and_an_approved_call_runs_once(url: str) -> None:
    office = Office()
    agent = ToolCallingAgent(office.tools, ScriptedModel([INVOICE_CALLS]), store=url)
    with pytest.raises(ApprovalRequired) as caught:
        agent.run("Invoice Ada her balance.")
    run_id = caught.value.result.run_id if caught.value.result else ""
    assert office.sent == [] and office.looked_up == []  # the step's allowed call waits too
    assert caught.value.pending == [
        {"call_id": f"{run_id}/1/1", "tool": "send_invoice", "arguments": {"amount": 300, "customer": "Ada"}}
    ]
    assert stored_state(url, run_id) == ("awaiting_approval", caught.value.pending)
    [pending] = listed(url)
    assert (pending.run_id, pending.call_id, pending.tool) == (run_id, f"{run_id}/1/1", "send_invoice")
    assert pending.task.startswith("Invoice Ada")

    answer = [ScriptedModel.call("final_answer", answer="done")]
    again = ToolCallingAgent(office.tools, ScriptedModel([answer]), store=url)
    assert again.resume(run_id, approvals={pending.call_id: True}) == "done"
    assert office.sent == [("Ada", f"{run_id}/1/1")] and office.looked_up == ["Ada"]
    assert stored_state(url, run_id) == ("success", []) and listed(url) == []
    assert again.resume(run_id) == "done" and len(office.sent) == 1


def test_a_tool_calling_run_tells_the_model_of_a_denial_and_its_reason(url: str) -> None:
    office = Office()
    agent = ToolCallingAgent(office.tools, ScriptedModel([INVOICE_CALLS]), store=url)
    paused = agent.run("Invoice Ada her balance.", return_full_result=True)
    assert paused.state is RunState.AWAITING_APPROVAL and paused.output is None
    [pending] = listed(url, paused.run_id)

    model = ScriptedModel([[ScriptedModel.call("final_answer", answer="not sent")]])
    again = ToolCallingAgent(office.tools, model, store=url)
    answers = {pending.call_id: "Ada paid cash"}
    result = again.resume(paused.run_id, approvals=answers, return_full_result=True)
    assert (result.state, result.output) == (RunState.SUCCESS, "not sent")
    assert office.sent == [] and office.looked_up == ["Ada"]
    seen = "\n".join(str(m.content) for m in model.requests[0])
    assert "The call send_invoice(customer='Ada', amount=300) was denied by a human: Ada paid cash" in seen


def test_a_code_run_stops_at_the_call_and_the_approved_call_runs_once(url: str) -> None:
    office = Office()
    first = code("owed = balance('Ada')\nstatus = send_invoice('Ada', owed)\nprint(status)")
    agent = CodeAgent(office.tools, ScriptedModel([code("x = balance('Bob')"), first]), store=url)
    paused = agent.run("Invoice Ada her balance.", return_full_result=True)
    assert paused.state is RunState.AWAITING_APPROVAL
    assert office.sent == [] and office.looked_up == ["Bob", "Ada"]
    [pending] = listed(url)
    assert pending.call_id == f"{paused.run_id}/2/1"
    assert pending.arguments == {"amount": 300, "customer": "Ada"}

    model = ScriptedModel([code("final_answer(status + ' / ' + str(x))")])
    again = CodeAgent(office.tools, model, store=url)
    assert again.resume(paused.run_id, approvals={pending.call_id: True}) == "invoiced Ada 300 EUR / 300"
    assert office.sent == [("Ada", pending.call_id)]
    assert office.looked_up == ["Bob", "Ada"]  # the replay and the step's re-run used the journal
    assert "invoiced Ada 300 EUR" in str(model.requests[0][-1].content)


def test_a_code_run_gets_a_permission_error_for_a_denied_call(url: str) -> None:
    office = Office()
    reply = code("try:\n    send_invoice('Ada', 5)\nexcept PermissionError as e:\n    print('refused:', e)")
    agent = CodeAgent(office.tools, ScriptedModel([reply]), store=url)
    paused = agent.run("Invoice Ada.", return_full_result=True)
    [pending] = listed(url, paused.run_id)

    model = ScriptedModel([code("final_answer('gave up')")])
    again = CodeAgent(office.tools, model, store=url)
    assert again.resume(paused.run_id, approvals={pending.call_id: False}) == "gave up"
    assert office.sent == []
    seen = str(model.requests[0][-1].content)
    assert "refused:" in seen and "was denied by a human: no reason given" in seen


def test_an_uncaught_denial_is_the_steps_error(url: str) -> None:
    office = Office()
    agent = CodeAgent(office.tools, ScriptedModel([code("send_invoice('Ada', 5)")]), store=url)
    paused = agent.run("Invoice Ada.", return_full_result=True)
    [pending] = listed(url, paused.run_id)
    model = ScriptedModel([code("final_answer('gave up')")])
    again = CodeAgent(office.tools, model, store=url)
    result = again.resume(paused.run_id, approvals={pending.call_id: "over budget"}, return_full_result=True)
    assert result.output == "gave up"
    error = result.memory.action_steps()[0].error
    assert error is not None and "ApprovalDenied" in error.message and "over budget" in error.message


def test_answering_some_calls_keeps_the_run_paused_on_the_rest(url: str) -> None:
    office = Office()
    calls = [
        ScriptedModel.call("send_invoice", customer="Ada", amount=1),
        ScriptedModel.call("send_invoice", customer="Bob", amount=2),
    ]
    agent = ToolCallingAgent(office.tools, ScriptedModel([calls]), store=url)
    paused = agent.run("Invoice both.", return_full_result=True)
    ada, bob = listed(url, paused.run_id)
    again = ToolCallingAgent(office.tools, ScriptedModel([]), store=url)
    still = again.resume(paused.run_id, approvals={ada.call_id: True}, return_full_result=True)
    assert still.state is RunState.AWAITING_APPROVAL and office.sent == []
    assert [p.call_id for p in listed(url)] == [bob.call_id]
    with pytest.raises(ValueError, match="does not wait for nonsense"):
        again.resume(paused.run_id, approvals={"nonsense": True})

    answer = [ScriptedModel.call("final_answer", answer=1)]
    last = ToolCallingAgent(office.tools, ScriptedModel([answer]), store=url)
    assert last.resume(paused.run_id, approvals={bob.call_id: "no"}) == 1
    assert office.sent == [("Ada", ada.call_id)]


def test_a_policy_allows_denies_and_asks(url: str) -> None:
    office = Office()
    asked: list[tuple[str, dict[str, Any]]] = []

    async def policy(name: str, arguments: dict[str, Any]) -> Any:
        asked.append((name, arguments))
        if name == "balance":
            return "allow"
        if arguments["amount"] > 1000:
            return ("deny", "too large for one invoice")
        return "ask" if arguments["amount"] > 100 else "allow"

    calls = [
        ScriptedModel.call("balance", customer="Ada"),
        ScriptedModel.call("send_invoice", customer="Ada", amount=50),
        ScriptedModel.call("send_invoice", customer="Bob", amount=5000),
        ScriptedModel.call("send_invoice", customer="Cy", amount=500),
    ]
    agent = ToolCallingAgent(office.tools, ScriptedModel([calls]), store=url, approval_policy=policy)
    paused = agent.run("Invoice them.", return_full_result=True)
    assert [p.arguments["customer"] for p in listed(url)] == ["Cy"]
    assert office.sent == []

    model = ScriptedModel([[ScriptedModel.call("final_answer", answer="ok")]])
    again = ToolCallingAgent(office.tools, model, store=url, approval_policy=policy)
    assert again.resume(paused.run_id, approvals={f"{paused.run_id}/1/3": True}) == "ok"
    assert sorted(c for c, _ in office.sent) == ["Ada", "Cy"] and office.looked_up == ["Ada"]
    seen = "\n".join(str(m.content) for m in model.requests[0])
    assert "was denied by the approval policy: too large for one invoice" in seen
    assert ("balance", {"customer": "Ada"}) in asked


def test_a_policy_can_approve_a_tool_that_requires_approval(url: str) -> None:
    office = Office()
    model = ScriptedModel([code("final_answer(send_invoice('Ada', 1))")])
    agent = CodeAgent(office.tools, model, store=url, approval_policy=lambda name, arguments: "allow")
    assert agent.run("Invoice Ada.") == "invoiced Ada 1 EUR" and len(office.sent) == 1


def test_code_that_catches_the_pause_cannot_go_on_calling_tools(url: str) -> None:
    office = Office()
    reply = code("try:\n    send_invoice('Ada', 5)\nexcept Exception:\n    pass\nprint(balance('Bob'))")
    agent = CodeAgent(office.tools, ScriptedModel([reply]), store=url)
    paused = agent.run("Invoice Ada.", return_full_result=True)
    assert paused.state is RunState.AWAITING_APPROVAL
    assert office.looked_up == [] and office.sent == []


def test_approvals_need_a_store() -> None:
    office = Office()
    with pytest.raises(ConfigurationError, match=r"send_invoice require approval.*approvals need store="):
        CodeAgent(office.tools, ScriptedModel([]))
    with pytest.raises(ConfigurationError, match="approval_policy= is set"):
        ToolCallingAgent([office.balance], ScriptedModel([]), approval_policy=lambda n, a: "allow")

    class Wire(Tool):
        name = "wire"
        description = "Wire money."
        requires_approval = True

        def forward(self, amount: int) -> str:
            """Wire money.

            Args:
                amount: The amount.
            """
            return "wired"

    with pytest.raises(ConfigurationError, match="wire require approval"):
        ToolCallingAgent([Wire()], ScriptedModel([]))
    schema_tool = Tool.from_schema("pay", "Pay.", {"type": "object"}, lambda: "paid", requires_approval=True)
    with pytest.raises(ConfigurationError, match="pay require approval"):
        ToolCallingAgent([schema_tool], ScriptedModel([]))


ANSWERING_PROCESS = """
import sys
from codeloop import CodeAgent, ScriptedModel, tool
from codeloop.agents.approval import pending_approvals
import asyncio

url = sys.argv[1]
sent = []

@tool(requires_approval=True)
def send_invoice(customer: str, amount: int) -> str:
    '''Send a customer an invoice.

    Args:
        customer: The customer's name.
        amount: The amount in euros.
    '''
    sent.append(customer)
    return f"invoiced {customer} {amount} EUR"

[pending] = asyncio.run(pending_approvals(url))
agent = CodeAgent([send_invoice], ScriptedModel(["```python\\nfinal_answer(status)\\n```"]), store=url)
print(agent.resume(pending.run_id, approvals={pending.call_id: True}), sent)
"""


def test_another_process_answers_and_finishes_the_run(url: str) -> None:
    office = Office()
    reply = code("status = send_invoice('Ada', 7)")
    agent = CodeAgent([office.send_invoice], ScriptedModel([reply]), store=url)
    paused = agent.run("Invoice Ada.", return_full_result=True)
    assert paused.state is RunState.AWAITING_APPROVAL
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(ANSWERING_PROCESS), url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "invoiced Ada 7 EUR ['Ada']"
    assert office.sent == [] and stored_state(url, paused.run_id) == ("success", [])


def test_readme_approval_example(tmp_path: Path) -> None:
    runs_db = tmp_path / "runs.db"
    # --- README: approving tool calls ---
    import asyncio

    from codeloop import ApprovalRequired, CodeAgent, ScriptedModel, pending_approvals, tool

    @tool(requires_approval=True)
    def send_invoice(customer: str, amount: int) -> str:
        """Send a customer an invoice.

        Args:
            customer: The customer's name.
            amount: The amount in euros.
        """
        return f"invoiced {customer} {amount} EUR"

    model = ScriptedModel(["```python\nstatus = send_invoice('Ada', 300)\nprint(status)\n```"])
    agent = CodeAgent([send_invoice], model, store=runs_db)  # approvals need a store
    try:
        agent.run("Invoice Ada 300 EUR.")
    except ApprovalRequired as paused:  # the run is stored, waiting: run() returns at once
        print(paused.pending)  # [{'call_id': '<run_id>/1/0', 'tool': 'send_invoice', 'arguments': {...}}]

    # later, in any process: list what waits, and answer (True, False or a reason for denial)
    [call] = asyncio.run(pending_approvals(runs_db))
    agent = CodeAgent([send_invoice], ScriptedModel(["```python\nfinal_answer(status)\n```"]), store=runs_db)
    print(agent.resume(call.run_id, approvals={call.call_id: True}))  # invoiced Ada 300 EUR
    # --- end ---
    assert agent.resume(call.run_id) == "invoiced Ada 300 EUR"
