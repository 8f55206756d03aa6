"""Agents built and run at every verbosity level: the terminal view is built with the agent and
shows what the level promises. (An agent with `verbosity_level=1` once failed at construction on
a wrong import that no test reached.)"""

from __future__ import annotations

import io
import re

import pytest

from codeloop import (
    ChatMessage,
    CodeAgent,
    ConsoleRenderer,
    Price,
    Role,
    ScriptedModel,
    ToolCallingAgent,
    Usage,
)
from codeloop.agents.budget import Budget
from codeloop.render import run_cost, run_summary

from helpers import add

call = ScriptedModel.call
CODE_REPLIES = [
    "Thought: add them.\n```python\ntotal = add(a=2, b=3)\nprint('total is', total)\n```",
    "Thought: done.\n```python\nfinal_answer(total * 2)\n```",
]
TOOL_REPLIES = [[call("add", a=2, b=3)], [call("final_answer", answer="10")]]


def _renderers(agent: CodeAgent | ToolCallingAgent) -> list[ConsoleRenderer]:
    return [h for h in agent.event_handlers if isinstance(h, ConsoleRenderer)]


@pytest.mark.parametrize("level", [0, 1, 2])
def test_code_agent_runs_and_renders_at_every_verbosity(
    level: int, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = CodeAgent([add], ScriptedModel(CODE_REPLIES, chunk_size=4), verbosity_level=level)
    assert [r.verbosity_level for r in _renderers(agent)] == ([level] if level else [])

    assert agent.run("Double the sum of 2 and 3.") == 10

    shown = capsys.readouterr().out
    if level == 0:
        assert shown == ""
        return
    assert "step 1" in shown and "step 2" in shown
    assert "total = add(a=2, b=3)" in shown  # the code of each step
    assert "total is 5" in shown  # its observation
    assert "Thought: add them." in shown
    assert "final answer: 10" in shown
    assert "success · 2 steps" in shown
    assert ("```python" in shown) is (level == 2)  # the model's raw text streams only at 2


@pytest.mark.parametrize("level", [0, 1, 2])
def test_tool_calling_agent_runs_and_renders_at_every_verbosity(
    level: int, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = ToolCallingAgent([add], ScriptedModel(TOOL_REPLIES), verbosity_level=level)

    assert agent.run("Double the sum of 2 and 3.") == "10"

    shown = capsys.readouterr().out
    if level == 0:
        assert shown == ""
        return
    assert "add" in shown and "'a': 2" in shown.replace('"', "'")  # the tool call and its arguments
    assert "5" in shown  # the tool's result
    assert "final answer: 10" in shown


# -- the summary line: steps, tokens, cost (when the price is known), time ---------------------------

SUMMARY = r"success · 2 steps · {tokens} tokens · {cost}\d+\.\ds"


def _priced_replies() -> list[ChatMessage]:
    """Two code replies whose usage adds up to 1,000,000 input and 100,000 output tokens."""
    texts = ["```python\nprint(6 * 7)\n```", "```python\nfinal_answer(42)\n```"]
    usages = [
        Usage(input_tokens=400_000, output_tokens=40_000),
        Usage(input_tokens=600_000, output_tokens=60_000),
    ]
    return [ChatMessage(role=Role.ASSISTANT, content=t, usage=u) for t, u in zip(texts, usages, strict=True)]


def _summary_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"· \d+ steps ·", line)]


def _render(agent: CodeAgent, renderer: ConsoleRenderer, buffer: io.StringIO) -> list[str]:
    agent.event_handlers.append(renderer)
    agent.run("Forty-two?")
    return _summary_lines(buffer.getvalue())


def test_the_summary_prices_a_model_with_a_known_price() -> None:
    buffer = io.StringIO()
    agent = CodeAgent([], ScriptedModel(_priced_replies(), model_id="gpt-4o-mini-2024-07-18"))
    (summary,) = _render(agent, ConsoleRenderer(1, file=buffer), buffer)
    # gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens
    expected = SUMMARY.format(tokens="1000000 in / 100000 out", cost=r"\$0\.2100 · ")
    assert re.fullmatch(expected, summary), summary


def test_the_summary_uses_the_prices_it_is_given() -> None:
    buffer = io.StringIO()
    agent = CodeAgent([], ScriptedModel(_priced_replies(), model_id="acme-large"))
    renderer = ConsoleRenderer(1, file=buffer, prices={"acme-*": Price(input=3.0, output=15.0)})
    (summary,) = _render(agent, renderer, buffer)
    expected = SUMMARY.format(tokens="1000000 in / 100000 out", cost=r"\$4\.50 · ")
    assert re.fullmatch(expected, summary), summary


def test_the_view_verbosity_level_makes_prices_runs_with_the_budget_prices() -> None:
    prices = {"acme-*": Price(input=3.0, output=15.0)}
    model = ScriptedModel(_priced_replies(), model_id="acme-large")
    agent = CodeAgent([], model, verbosity_level=1, budget=Budget(max_duration=600, prices=prices))
    (renderer,) = _renderers(agent)
    buffer = io.StringIO()
    renderer.console.file = buffer
    agent.run("Forty-two?")
    (summary,) = _summary_lines(buffer.getvalue())
    expected = SUMMARY.format(tokens="1000000 in / 100000 out", cost=r"\$4\.50 · ")
    assert re.fullmatch(expected, summary), summary


@pytest.mark.parametrize("model_id", ["acme-unpriced", "scripted", "qwen2.5-coder-1.5b-instruct.gguf"])
def test_the_summary_tells_no_cost_for_an_unknown_or_free_model(model_id: str) -> None:
    buffer = io.StringIO()
    agent = CodeAgent([], ScriptedModel(_priced_replies(), model_id=model_id))
    (summary,) = _render(agent, ConsoleRenderer(1, file=buffer), buffer)
    assert re.fullmatch(SUMMARY.format(tokens="1000000 in / 100000 out", cost=""), summary), summary
    assert "$" not in buffer.getvalue()


def test_run_summary_and_run_cost_on_their_own() -> None:
    result = CodeAgent([], ScriptedModel(_priced_replies())).run("Forty-two?", return_full_result=True)
    assert run_cost(result, "gpt-4o-mini") == pytest.approx(0.21)
    assert run_cost(result, "nobody-knows") is None
    assert re.fullmatch(
        r"2 steps · 1000000 in / 100000 out tokens · \$0\.2100 · \d+\.\ds", run_summary(result, 0.21)
    )
    assert re.fullmatch(
        r"2 steps · 1000000 in / 100000 out tokens · <\$0\.0001 · \d+\.\ds", run_summary(result, 4e-7)
    )
    assert re.fullmatch(
        r"2 steps · 1000000 in / 100000 out tokens · \$12\.35 · \d+\.\ds", run_summary(result, 12.345)
    )


def test_a_sub_agent_is_indented_under_its_manager_with_its_own_summary() -> None:
    sub_replies = [
        ChatMessage(
            role=Role.ASSISTANT,
            content="```python\nfinal_answer('Paris')\n```",
            usage=Usage(input_tokens=2_000_000, output_tokens=0),
        )
    ]
    sub = CodeAgent(
        [], ScriptedModel(sub_replies, model_id="gpt-4o"), name="researcher", description="Finds facts."
    )
    manager_reply = (
        "```python\ncity = researcher(task='What is the capital of France?')\nfinal_answer(city)\n```"
    )
    manager = CodeAgent([], ScriptedModel([manager_reply]), managed_agents=[sub], name="boss")
    buffer = io.StringIO()
    manager.event_handlers.append(ConsoleRenderer(1, file=buffer))

    assert manager.run("Capital of France?") == "Paris"

    shown = buffer.getvalue().splitlines()
    sub_summary, boss_summary = _summary_lines(buffer.getvalue())
    # the sub-agent's line: two spaces in, its own tokens and its model's price ($2.50 / M input)
    assert re.fullmatch(r"  success · 1 steps · 2000000 in / 0 out tokens · \$5\.00 · \d+\.\ds", sub_summary)
    assert re.fullmatch(r"success · 1 steps · \d+ in / \d+ out tokens · \d+\.\ds", boss_summary)  # free
    assert "  final answer: Paris" in shown and "final answer: Paris" in shown
    assert [line.index("─") for line in shown if " boss: " in line or " researcher: " in line] == [0, 2]
    assert any(line.startswith("  ╭─ code") for line in shown)  # the sub-agent's code panel, indented
    assert any(line.startswith("╭─ code") for line in shown)
