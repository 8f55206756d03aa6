"""Agents for the Ray backend's tests (tests/test_evals_ray.py), named `ray_agents:<name>` so
each Ray worker imports this module and builds its own.

`make_adder` answers "What is N + N? (folder F)": its first step calls the tool `hold`, which
leaves a mark in F/started (`<N>.<pid>.<parent pid>`: the task, the worker process that ran it
and that process's parent, its node's raylet) and then waits until the file F/gate exists; its
second step answers 2 * N. So a test knows which tasks
are in flight and in which process, and holds them there while it kills their node. A task
ending in "(dies)" has `hold` SIGKILL its own worker process, every time; "(dies once)" only the
first time (it leaves F/died.N).

`make_stored_adder` is the same agent keeping its runs in the PostgreSQL store whose URL is in
the worker's CODELOOP_TEST_STORE variable (set through the actors' runtime env).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codeloop import ScriptedModel, ToolCallingAgent, tool
from codeloop.messages import ChatMessage, Role

__all__ = ["adder_task", "hold", "make_adder", "make_stored_adder"]


def adder_task(n: int, folder: Path, dies: str = "") -> str:
    """The task "What is N + N? (folder F)"; `dies` "always" or "once" adds "(dies)", "(dies once)"."""
    ending = {"": "", "always": " (dies)", "once": " (dies once)"}[dies]
    return f"What is {n} + {n}? (folder {folder}){ending}"


@tool
async def hold(folder: str, n: int, dies: str) -> str:
    """Mark the task as started, then wait until the folder's gate file exists.

    Args:
        folder: The folder of marks and the gate.
        n: The task's number.
        dies: "always" or "once" to SIGKILL this process (once: unless it did already), or "".
    """
    started = Path(folder) / "started"
    started.mkdir(parents=True, exist_ok=True)
    (started / f"{n}.{os.getpid()}.{os.getppid()}").touch()
    died = Path(folder) / f"died.{n}"
    if dies == "always" or (dies == "once" and not died.exists()):
        died.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    while not (Path(folder) / "gate").exists():
        await asyncio.sleep(0.05)
    return "go on"


def _asked(messages: Sequence[ChatMessage]) -> tuple[int, str, str]:
    task = next(str(m.content) for m in messages if m.role is Role.USER)
    found = re.search(r"What is (\d+) \+ \d+\? \(folder ([^)]+)\)( \(dies( once)?\))?", task)
    if found is None:
        raise ValueError(f"not an adder task: {task!r}")
    dies = "" if not found.group(3) else "once" if found.group(4) else "always"
    return int(found.group(1)), found.group(2), dies


def _hold(messages: Sequence[ChatMessage]) -> list[Any]:
    n, folder, dies = _asked(messages)
    return [ScriptedModel.call("hold", folder=folder, n=n, dies=dies)]


def _answer(messages: Sequence[ChatMessage]) -> list[Any]:
    n, _, _ = _asked(messages)
    return [ScriptedModel.call("final_answer", answer=2 * n)]


def make_adder(store: str | None = None) -> ToolCallingAgent:
    """A fresh agent per task (its scripted model starts at its first reply)."""
    return ToolCallingAgent([hold], ScriptedModel([_hold, _answer]), max_steps=3, name="adder", store=store)


def make_stored_adder() -> ToolCallingAgent:
    return make_adder(store=os.environ["CODELOOP_TEST_STORE"])
