"""The agent tests/test_ui.py serves with `codeloop ui --agent ui_agents:agent`.

One CodeAgent, `desk`, answers every test's task: its scripted model picks the script by a word
of the task and the reply by how many replies the run has had (its assistant messages), so one
server runs any number of tasks, at once or resumed. Each reply is a function of the messages
the model is given, which is how a test checks what the model saw (a denial's reason).

    "pear"     step 1 looks a price up (tool get_price) and prints it; step 2 answers twice it
    "divide"   step 1's code fails (ZeroDivisionError); step 2 answers
    "team"     step 1 asks the sub-agent `pricer` (2 steps of its own); step 2 answers with it
    "invoice"  step 1 calls send_invoice (needs approval); step 2 answers what the call gave,
               or the denial's reason the model was told
    "hold"     the first model call waits until the run is cancelled; resumed, it answers
    "dawdle"   never answers: prints until max_steps
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from codeloop import CodeAgent, ScriptedModel, tool
from codeloop.messages import ChatMessage, Role

__all__ = ["PRICES", "agent", "fenced", "pricer"]

PRICES = {"apple": 0.5, "pear": 0.75}
MAX_STEPS = 4
HELD: set[str] = set()
"""Tasks whose first model call has waited already (the next one answers)."""


@tool
def get_price(item: str) -> float:
    """Look up the price of an item in the shop.

    Args:
        item: The item's name.
    """
    return PRICES[item]


@tool(requires_approval=True)
def send_invoice(customer: str, amount: int) -> str:
    """Send a customer an invoice.

    Args:
        customer: The customer's name.
        amount: The amount in euros.
    """
    return f"invoice of {amount} EUR sent to {customer}"


def fenced(thought: str, code: str) -> str:
    return f"Thought: {thought}\n```python\n{code}\n```"


def _task(messages: Sequence[ChatMessage]) -> str:
    return next(m.content for m in messages if m.role is Role.USER)


def _turn(messages: Sequence[ChatMessage]) -> int:
    """How many replies the run has had (0: this is its first model call)."""
    return sum(1 for m in messages if m.role is Role.ASSISTANT)


def _desk_reply(messages: Sequence[ChatMessage]) -> str:
    task, turn = _task(messages).lower(), _turn(messages)
    for word, script in _SCRIPTS.items():
        if word in task:
            return script(turn, messages)
    return fenced("I do not know this task.", "final_answer('unknown task')")


def _pear(turn: int, messages: Sequence[ChatMessage]) -> str:
    if turn == 0:
        code = "price = get_price(item='pear')\nprint('one pear costs', price)"
        return fenced("I will look up the price of a pear.", code)
    return fenced("Two pears cost twice as much.", "final_answer(price * 2)")


def _divide(turn: int, messages: Sequence[ChatMessage]) -> str:
    if turn == 0:
        return fenced("I divide by the number of boxes.", "boxes = 0\nshare = 10 / boxes")
    return fenced("There are no boxes to share among.", "final_answer('nothing to share: no boxes')")


def _team(turn: int, messages: Sequence[ChatMessage]) -> str:
    if turn == 0:
        code = "answer = pricer(task='What does one apple cost in the shop?')\nprint(answer)"
        return fenced("The pricer knows prices: I ask it.", code)
    return fenced("The pricer answered.", "final_answer(f'an apple costs {answer}')")


def _invoice(turn: int, messages: Sequence[ChatMessage]) -> str:
    customer = re.search(r"invoice (\w+)", _task(messages), re.IGNORECASE)
    name = customer.group(1) if customer else "Ada"
    if turn == 0:
        code = f"status = send_invoice(customer={name!r}, amount=120)\nprint(status)"
        return fenced(f"I send {name} the invoice.", code)
    denied = re.search(r"denied by a human: (.*?)\.?$", messages[-1].content, re.MULTILINE)
    if denied:
        return fenced("The invoice was denied.", f"final_answer({'not sent: ' + denied.group(1)!r})")
    return fenced("The invoice went out.", "final_answer(status)")


def _hold(turn: int, messages: Sequence[ChatMessage]) -> str:
    return fenced("I was let through.", "final_answer('resumed and done')")


def _dawdle(turn: int, messages: Sequence[ChatMessage]) -> str:
    return fenced("Still thinking.", f"print('thinking, round {turn + 1}')")


_SCRIPTS: dict[str, Any] = {
    "pear": _pear,
    "divide": _divide,
    "team": _team,
    "invoice": _invoice,
    "hold": _hold,
    "dawdle": _dawdle,
}


class DeskModel(ScriptedModel):
    """The desk's scripted model; a "hold" task's first call waits until it is cancelled."""

    async def agenerate(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        task = _task(messages)
        if "hold" in task.lower() and task not in HELD:
            HELD.add(task)
            await asyncio.Event().wait()  # until the run is cancelled
        return await super().agenerate(messages, **kwargs)


def _pricer_reply(messages: Sequence[ChatMessage]) -> str:
    if _turn(messages) == 0:
        return fenced("I look the apple up.", "p = get_price(item='apple')\nprint('apple:', p)")
    return fenced("Found it.", "final_answer(p)")


pricer = CodeAgent(
    [get_price],
    ScriptedModel([_pricer_reply] * 1000),
    name="pricer",
    description="Knows the price of anything in the shop.",
    max_steps=3,
)

agent = CodeAgent(
    [get_price, send_invoice],
    DeskModel([_desk_reply] * 10_000, chunk_size=8),
    name="desk",
    managed_agents=[pricer],
    max_steps=MAX_STEPS,
    store=True,
)
