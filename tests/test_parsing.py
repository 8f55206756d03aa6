"""Action parsing: code blocks in every shape models write them, and JSON tool calls in text."""

from __future__ import annotations

import pytest

from codeloop.errors import AgentParsingError
from codeloop.parsing import (
    EMPTY_REPLY_HINT,
    answer_literal,
    extract_code,
    no_code_hint,
    parse_tool_calls_from_text,
    plain_answer,
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Thought: go.\n```python\nx = 1\nprint(x)\n```", "x = 1\nprint(x)"),
        ("```py\nfinal_answer(2)\n```", "final_answer(2)"),
        ("```\nfinal_answer(3)\n```\nDone.", "final_answer(3)"),
        ("Here:\n<code>\nfinal_answer(4)\n</code>", "final_answer(4)"),
        ("Thought: unclosed block at the end\n```python\ny = 5\nfinal_answer(y)", "y = 5\nfinal_answer(y)"),
        ("I use `x` and ```inline``` marks.\n```python\nfinal_answer(6)\n```", "final_answer(6)"),
        ("First:\n```python\na = 1\n```\nthen\n```python\nfinal_answer(a)\n```", "a = 1\n\nfinal_answer(a)"),
        ('Data:\n```json\n{"a": 1}\n```\n```python\nfinal_answer(7)\n```', "final_answer(7)"),
        ("    ```python\n    z = 8\n    final_answer(z)\n    ```", "z = 8\nfinal_answer(z)"),
        ("````python\ns = '```'\nfinal_answer(s)\n````", "s = '```'\nfinal_answer(s)"),
        ("final_answer(9)", "final_answer(9)"),
    ],
)
def test_extract_code(text: str, code: str) -> None:
    assert extract_code(text) == code


@pytest.mark.parametrize("text", ["The answer is 4.", "Paris", "```text\nhello\n```", "```python\n\n```"])
def test_no_code_is_a_parse_error_with_instructions(text: str) -> None:
    with pytest.raises(AgentParsingError, match="```python"):
        extract_code(text)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Lyon", "Lyon"),
        ("  Paris.\n", "Paris"),
        ("The answer is 42.", "42"),
        ("Final answer: **3.14**", "3.14"),
        ('answer = "Lyon (France)"', None),  # code, not an answer
        ("I need to call get_price first.", None),  # a thought
        ("Let me compute the total:", None),
        ("Which item do you mean?", None),
        ("Lyon\nParis", None),  # more than one line
        ("x" * 81, None),  # too long to be a plain answer
        ("final_answer(Lyon)", None),
        ("", None),
    ],
)
def test_plain_answer_text(text: str, answer: str | None) -> None:
    assert plain_answer(text) == answer


def test_a_reply_without_code_gets_the_hint_that_fits_it() -> None:
    assert no_code_hint("Lyon") == (
        'Your reply had no code block. If "Lyon" is your answer, reply with:\n'
        '```python\nfinal_answer("Lyon")\n```\n'
        "Otherwise write the code of your next step in a ```python block."
    )
    assert "final_answer(42)\n" in no_code_hint("42")
    assert no_code_hint(" \n") == EMPTY_REPLY_HINT and EMPTY_REPLY_HINT.startswith("Your reply was empty.")
    generic = no_code_hint("I will first look at the data, then compute the total.")
    assert "```python" in generic and "# your code" not in generic and "final_answer(answer)" in generic
    assert [answer_literal(a) for a in ("42", "-0.5", "007", 'say "hi"')] == [
        "42",
        "-0.5",
        '"007"',
        '"say \\"hi\\""',
    ]


def test_json_tool_calls_in_text() -> None:
    text = (
        'Calling:\n```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```\n'
        'and {"action": "final_answer", "action_input": "done"} trailing'
    )
    calls = parse_tool_calls_from_text(text)
    assert [(c.name, c.arguments) for c in calls] == [
        ("add", {"a": 1, "b": 2}),
        ("final_answer", {"answer": "done"}),
    ]


def test_json_arguments_given_as_a_string_are_decoded() -> None:
    (only,) = parse_tool_calls_from_text('{"name": "add", "arguments": "{\\"a\\": 1}"}')
    assert only.arguments == {"a": 1}


def test_no_json_call_is_a_parse_error() -> None:
    with pytest.raises(AgentParsingError, match="final_answer"):
        parse_tool_calls_from_text("I am not sure. {not json}")


def test_a_tool_definition_echoed_from_the_prompt_is_not_a_call() -> None:
    # Qwen2.5-Coder-1.5B's reply to the tool-calling prompt, as llama.cpp returned it
    text = (
        '<tools>\n{"type": "function", "function": {"name": "final_answer", "description": "Give the '
        'final answer to the task.", "parameters": {"additionalProperties": false, "properties": '
        '{"answer": {"description": "The final answer to the task."}}, "required": ["answer"], '
        '"type": "object"}}}\n</tools>\n{"name": "final_answer", "arguments": {"answer": "6765"}}'
    )
    calls = parse_tool_calls_from_text(text)
    assert [(c.name, c.arguments) for c in calls] == [("final_answer", {"answer": "6765"})]
    with pytest.raises(AgentParsingError):  # a definition alone is no call either
        parse_tool_calls_from_text('{"name": "add", "parameters": {"type": "object", "properties": {}}}')
