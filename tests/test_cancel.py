"""Cancellation: agent.cancel() and cancelling the task running a run stop the step under way
(model stream, tool call, code action) and end the run as cancelled, memory intact."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.redteam import _descendants

from codeloop import CodeAgent, RunState, ScriptedModel, ToolCallingAgent, tool
from codeloop.errors import RunCancelled
from codeloop.events import CodeAction, ModelDelta, ToolCallRequested

needs_uncancel = pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel is Python 3.11+")
tool_finished: list[str] = []


@tool
async def slow_lookup(key: str) -> str:
    """Looks a key up, slowly.

    Args:
        key: The key.
    """
    await asyncio.sleep(30)
    tool_finished.append(key)
    return key


def fenced(code: str) -> str:
    return f"Thought: go.\n```python\n{code}\n```"


async def cancel_on(agent: CodeAgent | ToolCallingAgent, kind: type, task: str) -> Any:
    """Run `task`, cancelling through the agent as soon as an event of `kind` arrives."""
    result, asked = None, False
    async for event in agent.astream(task):
        if isinstance(event, kind) and not asked:
            asked = True
            agent.cancel(reason="the user changed their mind")
        result = getattr(event, "result", result)
    return result


def sandbox_cpu_s() -> float:
    return sum(p.cpu_s for p in _descendants().values())


@needs_uncancel
@pytest.mark.parametrize("executor", ["monty", "jail"])
async def test_cancel_stops_a_code_action_and_ends_the_run_as_cancelled(executor: str) -> None:
    code = fenced("x = 1\nwhile True:\n    x += 1")
    agent = CodeAgent([], ScriptedModel([code]), max_steps=3, executor=executor)
    result = await cancel_on(agent, CodeAction, "Spin.")
    before = sandbox_cpu_s()
    await asyncio.sleep(0.5)
    assert sandbox_cpu_s() - before < 0.1  # the loop no longer runs anywhere
    assert result.state is RunState.CANCELLED
    assert "the user changed their mind" in result.error
    assert len(result.memory.action_steps()) == 1  # the step it stopped
    again = ScriptedModel([fenced("final_answer(2)")])
    agent.model = again
    assert await agent.arun("Now something quick.") == 2  # the agent works afterwards


@needs_uncancel
async def test_cancel_stops_a_tool_call_and_a_model_stream() -> None:
    model = ScriptedModel([[ScriptedModel.call("slow_lookup", key="k")]])
    result = await cancel_on(ToolCallingAgent([slow_lookup], model), ToolCallRequested, "Look up k.")
    assert result.state is RunState.CANCELLED and tool_finished == []
    streaming = ScriptedModel([fenced("final_answer(1)")], chunk_size=1, latency_s=0.0)
    result = await cancel_on(CodeAgent([], streaming), ModelDelta, "Answer.")
    assert result.state is RunState.CANCELLED


def test_cancel_from_another_thread_makes_run_raise_run_cancelled() -> None:
    agent = CodeAgent([], ScriptedModel([fenced("while True:\n    pass")]), max_steps=2)
    started = threading.Event()
    agent.event_handlers.append(lambda e: started.set() if isinstance(e, CodeAction) else None)
    threading.Thread(target=lambda: (started.wait(30), agent.cancel(reason="shutdown"))).start()
    if sys.version_info < (3, 11):
        pytest.skip("Task.uncancel is Python 3.11+")
    with pytest.raises(RunCancelled, match="shutdown") as info:
        agent.run("Spin.")
    assert info.value.result is not None and info.value.result.state is RunState.CANCELLED


async def test_cancelling_the_task_running_arun_propagates_and_stops_the_code() -> None:
    agent = CodeAgent([], ScriptedModel([fenced("while True:\n    pass")]), max_steps=2)
    seen: list[RunState] = []
    agent.event_handlers.append(lambda e: seen.append(e.result.state) if hasattr(e, "result") else None)
    running = asyncio.ensure_future(agent.arun("Spin."))
    await asyncio.sleep(0.5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running  # asyncio's rule: an outside cancellation reaches the caller
    assert agent.memory.action_steps()[0].code_action is not None  # memory kept what happened
    assert await CodeAgent([], ScriptedModel([fenced("final_answer(3)")])).arun("x") == 3


@needs_uncancel
@pytest.mark.parametrize("how", ["agent.cancel", "task.cancel"])
async def test_a_cancelled_run_is_stored_as_cancelled_and_can_be_resumed(how: str, tmp_path: Path) -> None:
    from codeloop.store import open_store

    store = str(tmp_path / "runs.db")
    spin = ScriptedModel([fenced("x = 20\nprint(x)"), fenced("while True:\n    pass")])
    agent = CodeAgent([], spin, store=store, max_steps=5)
    if how == "agent.cancel":
        result = await cancel_on_second_action(agent)
    else:
        running = asyncio.ensure_future(agent.arun("Spin.", return_full_result=True))
        while len(agent.memory.action_steps()) < 2:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    async with open_store(store) as opened:
        (record,) = await opened.list_runs()
    assert record.state == "cancelled"
    if how == "agent.cancel":
        assert record.run_id == result.run_id
    again = CodeAgent([], ScriptedModel([fenced("final_answer(x + 1)")]), store=store, max_steps=5)
    assert await again.aresume(record.run_id) == 21  # x replayed; the spinning step is not repeated


async def cancel_on_second_action(agent: CodeAgent) -> Any:
    result, actions = None, 0
    async for event in agent.astream("Spin."):
        actions += isinstance(event, CodeAction)
        if actions == 2 and isinstance(event, CodeAction):
            agent.cancel(reason="stop")
        result = getattr(event, "result", result)
    return result
