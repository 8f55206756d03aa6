"""Agents built and run at every verbosity level: the terminal view is built with the agent and
shows what the level promises. (An agent with `verbosity_level=1` once failed at construction on
a wrong import that no test reached.)"""

from __future__ import annotations

import pytest

from codeloop import CodeAgent, ConsoleRenderer, ScriptedModel, ToolCallingAgent

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
