"""Agents that tests/test_mcp_serve.py serves with `codeloop mcp serve mcp_serve_agents:<name>`.

Each server process imports this module afresh, so every scripted model starts at its first
reply. `shop` renders its steps (verbosity_level=1): over stdio that view must reach stderr, never
the protocol on stdout.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from codeloop import CodeAgent, ScriptedModel, ToolCallingAgent, tool
from codeloop.messages import ChatMessage, Role

PRICES = {"apple": 0.5, "pear": 0.75}


@tool
def get_price(item: str) -> float:
    """Look up the price of an item in the shop.

    Args:
        item: The item's name.
    """
    return PRICES[item]


def fenced(code: str) -> str:
    return f"Thought: next step.\n```python\n{code}\n```"


class City(BaseModel):
    name: str
    population: int


shop = CodeAgent(
    [get_price],
    ScriptedModel(
        [
            fenced("price = get_price(item='pear')\nprint('one pear costs', price)"),
            fenced("final_answer(price * 2)"),
        ]
    ),
    name="shop_assistant",
    description="Answers questions about the shop's prices.",
    verbosity_level=1,
)

stuck = CodeAgent(
    [],
    ScriptedModel([fenced("print('still thinking')")]),
    name="stuck_assistant",
    max_steps=1,
)

city = CodeAgent(
    [],
    ScriptedModel([fenced("final_answer({'name': 'Paris', 'population': 2100000})")]),
    name="city_facts",
    description="Knows cities.",
    output_type=City,
)


def _count_step(messages: Sequence[ChatMessage]) -> str:
    """For "Count for A.": step 1 sets `x` from the task, step 2 answers `who` (the call's
    additional_args) and `x`. Two runs sharing one session would see each other's `x` and `who`."""
    task = next(m.content for m in messages if m.role is Role.USER)
    if not any(m.role is Role.ASSISTANT for m in messages):
        return fenced(f"x = {'one' if 'for A' in task else 'two'!r}\nprint(x)")
    return fenced("final_answer(who + ':' + x)")


counter = CodeAgent(
    [],
    ScriptedModel(
        [_count_step] * 4,  # two runs of two steps, each reply made from its run's messages
        latency_s=0.05,  # each step waits on the "model": the two runs interleave
    ),
    name="counter",
)


def make_price_desk() -> ToolCallingAgent:
    """A factory: `codeloop mcp serve mcp_serve_agents:make_price_desk` calls it."""
    script = ScriptedModel(
        [
            [ScriptedModel.call("get_price", item="apple")],
            [ScriptedModel.call("final_answer", answer="An apple costs 0.5.")],
        ]
    )
    return ToolCallingAgent([get_price], script, name="price_desk")


def needs_a_model(model: object) -> CodeAgent:
    return CodeAgent([], model)  # type: ignore[arg-type]


not_an_agent = 42
