"""The event stream subscribers build on: phases in pairs with timestamps, tool calls from both
agent kinds, JSON data for every event, run observers that see each top-level run once, and the
timings a stored run keeps for its timeline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from codeloop import CodeAgent, ScriptedModel, ToolCallingAgent, tool
from codeloop.events import (
    CodeAction,
    CodeActionFinished,
    Event,
    ModelCallFinished,
    ModelCallStarted,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
    add_run_observer,
    event_to_dict,
)
from codeloop.memory import ActionStep
from codeloop.messages import ToolCall
from codeloop.result import RunState
from codeloop.store import open_store


@tool
def price(item: str) -> float:
    """The price of an item.

    Args:
        item: The item's name.
    """
    if item == "gold":
        raise ValueError("gold is not sold here")
    return 4.5


def code(text: str) -> str:
    return f"```python\n{text}\n```"


PHASES = (RunStarted, ModelCallStarted, ModelCallFinished, CodeAction, CodeActionFinished,
          ToolCallStarted, ToolCallFinished, RunFinished)  # fmt: skip


def phases(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events if isinstance(e, PHASES)]


def test_a_code_agent_sends_its_phases_in_pairs_with_its_tool_calls_inside_the_code_action() -> None:
    model = ScriptedModel([code("print(price('tea'))"), code("final_answer(price('jam') * 2)")])
    events = list(CodeAgent([price], model).stream("Price of jam, doubled?"))
    step = ["ModelCallStarted", "ModelCallFinished", "CodeAction", "ToolCallStarted", "ToolCallFinished",
            "CodeActionFinished"]  # fmt: skip
    assert phases(events) == ["RunStarted", *step, *step, "RunFinished"]
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert (started.name, started.arguments, started.call_index, started.step) == (
        "price",
        {"item": "tea"},
        0,
        1,
    )
    assert (finished.result, finished.error) == ("4.5", None)
    action = next(e for e in events if isinstance(e, CodeAction))
    assert action.executor == "MontyExecutor" and action.limits["timeout_s"] > 0
    call = next(e for e in events if isinstance(e, ModelCallFinished))
    assert call.model_id == "scripted" and call.message.usage is not None and call.purpose == "action"


def test_a_failed_tool_call_and_a_failed_code_action_say_why() -> None:
    model = ScriptedModel([code("price('gold')"), code("final_answer(1)")])
    events = list(CodeAgent([price], model).stream("Price of gold?"))
    failed_call = next(e for e in events if isinstance(e, ToolCallFinished))
    assert failed_call.error is not None and "gold is not sold here" in failed_call.error
    failed_action = next(e for e in events if isinstance(e, CodeActionFinished))
    assert failed_action.error is not None and "gold is not sold here" in failed_action.error


def test_a_tool_calling_agent_sends_tool_calls_and_plans_are_model_calls_too() -> None:
    calls = [ToolCall("c1", "price", {"item": "tea"}), ToolCall("c2", "price", {"item": "jam"})]
    answer = [ToolCall("c3", "final_answer", {"answer": "9"})]
    agent = ToolCallingAgent([price], ScriptedModel(["The plan.", calls, answer]), planning_interval=5)
    events = list(agent.stream("Two prices?"))
    purposes = [e.purpose for e in events if isinstance(e, ModelCallStarted)]
    assert purposes == ["plan", "action", "action"]
    started = [(e.name, e.call_index) for e in events if isinstance(e, ToolCallStarted)]
    assert started == [("price", 0), ("price", 1)]  # final_answer is the answer, not a tool call
    assert len([e for e in events if isinstance(e, ToolCallFinished)]) == 2


def test_every_event_is_json_data() -> None:
    model = ScriptedModel([code("price('gold')"), code("final_answer({'tea': price('tea')})")])
    events = list(CodeAgent([price], model).stream("Prices?"))
    lines = [json.loads(json.dumps(event_to_dict(e))) for e in events]
    assert lines[0]["type"] == "RunStarted" and lines[0]["task"] == "Prices?"
    finished = lines[-1]
    assert finished["type"] == "RunFinished"
    assert finished["result"]["state"] == "success" and finished["result"]["output"] == {"tea": 4.5}
    assert finished["result"]["steps"] == 2 and finished["result"]["usage"]["input_tokens"] > 0
    assert {line["type"] for line in lines} >= {"ModelDelta", "StepFinished", "StepErrored", "CodeAction"}


def test_a_run_observer_sees_every_top_level_run_once_with_its_sub_agents_nested() -> None:
    seen: list[tuple[str, Event]] = []

    def observer(agent: Any) -> Any:
        return lambda event: seen.append((agent.name, event))

    sub = CodeAgent([price], ScriptedModel([code("final_answer(price('tea'))")]), name="clerk",
                    description="Looks up prices.")  # fmt: skip
    manager = CodeAgent([], ScriptedModel([code("final_answer(clerk(task='What does tea cost?'))")]),
                        managed_agents=[sub], name="boss")  # fmt: skip
    remove = add_run_observer(observer)
    try:
        assert manager.run("Tea?") == 4.5
    finally:
        remove()
    starts = [(owner, e.agent, e.depth) for owner, e in seen if isinstance(e, RunStarted)]
    assert starts == [("boss", "boss", 0), ("boss", "clerk", 1)]  # the sub-run only through the boss
    tool_calls = [(e.name, e.depth) for _, e in seen if isinstance(e, ToolCallStarted)]
    assert tool_calls == [("clerk", 0), ("price", 1)]
    seen.clear()
    manager.model = ScriptedModel([code("final_answer(1)")])
    manager.run("Again?")
    assert seen == []  # removed: no longer called


def test_a_stored_run_keeps_when_its_model_calls_and_tool_calls_began_and_ended(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    model = ScriptedModel([code("print(price('tea'))"), code("final_answer(2)")], latency_s=0.01)
    result = CodeAgent([price], model, store=url).run("Tea?", return_full_result=True)
    assert result.state is RunState.SUCCESS

    async def read() -> tuple[list[Any], list[Any]]:
        async with open_store(url) as store:
            return await store.steps(result.run_id), await store.tool_calls(result.run_id)

    steps, calls = asyncio.run(read())
    first = next(s.to_step() for s in steps if isinstance(s.to_step(), ActionStep))
    assert isinstance(first, ActionStep) and first.model_timing is not None
    assert first.timing.start_time <= first.model_timing.start_time < first.model_timing.end_time
    assert first.model_timing.end_time <= (first.timing.end_time or 0)
    [journaled] = calls
    assert journaled.started_at is not None
    assert first.model_timing.end_time <= journaled.started_at <= journaled.recorded_at


def test_a_tool_calling_manager_forwards_its_sub_agents_events_into_its_stream() -> None:
    clerk = CodeAgent([price], ScriptedModel([code("final_answer(price('tea'))")]), name="clerk",
                      description="Looks up prices.")  # fmt: skip
    replies = [[ToolCall("c1", "clerk", {"task": "What does tea cost?"})],
               [ToolCall("c2", "final_answer", {"answer": "4.5"})]]  # fmt: skip
    events = list(
        ToolCallingAgent([], ScriptedModel(replies), managed_agents=[clerk], name="boss").stream("Tea?")
    )
    nested = [(type(e).__name__, e.agent) for e in events if e.depth == 1]
    assert ("RunStarted", "clerk") in nested and ("ToolCallStarted", "clerk") in nested
    assert nested[-1] == ("RunFinished", "clerk")
    boss_finished = next(
        i for i, e in enumerate(events) if isinstance(e, ToolCallFinished) and e.name == "clerk"
    )
    assert max(i for i, e in enumerate(events) if e.depth == 1) < boss_finished  # inside the boss's call
