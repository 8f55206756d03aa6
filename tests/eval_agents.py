"""Agents for `codeloop eval ... --agent eval_agents:<name>` (tests/test_cli_eval.py) and the API
tests (tests/test_evals.py).

The scripted model answers each task from the task's own text: "What is 6 * 7?" makes it write
`final_answer(6 * 7)`; any other task makes it print and never answer (the run reaches its
max_steps). So the agent computes real answers through its sandbox, whatever order tasks run in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from codeloop import CodeAgent, ScriptedModel
from codeloop.messages import ChatMessage, Role

__all__ = ["answer_from_task", "broken", "calculator", "make_calculator", "same_parity", "task_of"]


def fenced(code: str) -> str:
    return f"Thought: I will compute it.\n```python\n{code}\n```"


def task_of(messages: Sequence[ChatMessage]) -> str:
    """The task: the first user message (the system prompt has example tasks of its own)."""
    return next(m.content for m in messages if m.role is Role.USER)


def answer_from_task(messages: Sequence[ChatMessage]) -> str:
    """A reply that answers "What is <expression>?" by computing it, and stalls otherwise."""
    found = re.search(r"What is (.+?)\?", task_of(messages))
    return fenced(f"final_answer({found.group(1)})" if found else "print('still thinking')")


def make_calculator() -> CodeAgent:
    """A factory: one fresh agent (and scripted model) per task."""
    return CodeAgent([], ScriptedModel([answer_from_task] * 2), max_steps=2, name="calculator")


calculator = CodeAgent([], ScriptedModel([answer_from_task] * 100), max_steps=2, name="calculator")
"""One agent shared by every task: its model answers each run from that run's messages."""


def broken() -> int:
    """Not an agent factory: it returns a number."""
    return 42


def same_parity(output: Any, expected: Any, task: Any) -> bool:
    """A scorer for `--scorer eval_agents:same_parity`: both numbers even, or both odd."""
    return int(float(output)) % 2 == int(float(str(expected).replace(",", ""))) % 2
