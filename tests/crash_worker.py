"""A worker process for tests/test_crash.py: runs (or resumes) one durable CodeAgent run, to be
killed with SIGKILL at any moment.

    python crash_worker.py STORE_URL AGENT_NAME (new | RUN_ID) FOLDER

The model's reply depends only on the step number (read from the messages), so a resumed run
asks the same things. The tool `record` follows the exactly-once recipe: it appends its call's
idempotency key to FOLDER/AGENT_NAME.lines unless that key is already there. A key found already
applied is appended to FOLDER/AGENT_NAME.repeated: a call the framework alone would have repeated
(the worker was killed between the tool's side effect and the journal write).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from codeloop import CodeAgent, ScriptedModel, tool
from codeloop.agents.durable import RunLeaseHeld
from codeloop.messages import ChatMessage, Role
from codeloop.tools import current_call

TASK = "Add up what record() returns."
STEPS = [
    "a = record(1)\nprint(a)",
    "b = record(a) + record(a + 1)\nprint(b)",
    "c = record(b)\nprint(c)",
    "final_answer(a + b + c)",
]
ANSWER = 2 + (3 + 4) + 8
CALLS = 4
"""Logical tool calls of a run."""

_folder = Path(".")
_name = "crash"


def _append(path: Path, line: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line.encode())  # one write: a line is whole or absent
    finally:
        os.close(descriptor)


@tool
def record(n: int) -> int:
    """Record a number (once per call) and return the next one.

    Args:
        n: The number.
    """
    context = current_call()
    key = "no key" if context is None else context.key
    time.sleep(0.02)
    lines = _folder / f"{_name}.lines"
    applied = lines.read_text().splitlines() if lines.exists() else []
    if key in applied:  # the recipe: a key already applied is not applied again
        _append(_folder / f"{_name}.repeated", key + "\n")
    else:
        _append(lines, key + "\n")
    time.sleep(0.01)
    return n + 1


def reply(messages: Sequence[ChatMessage]) -> str:
    step = sum(1 for m in messages if m.role is Role.ASSISTANT)
    return f"```python\n{STEPS[min(step, len(STEPS) - 1)]}\n```"


def main(url: str, name: str, mode: str, folder: str) -> None:
    global _folder, _name
    _folder, _name = Path(folder), name
    model = ScriptedModel([reply] * 20, latency_s=0.03, chunk_size=4)
    agent = CodeAgent([record], model, name=name, store=url, lease_ttl_s=0.6)
    print("ready", flush=True)
    if mode == "new":
        agent.run(TASK)
        return
    while True:
        try:
            agent.resume(mode)
            return
        except RunLeaseHeld:  # the killed worker's lease has not expired yet
            time.sleep(0.05)


if __name__ == "__main__":
    main(*sys.argv[1:5])
