"""Tracing (`codeloop.telemetry`): runs become OpenTelemetry spans under the GenAI conventions.

- With the SDK's in-memory exporter: the span tree and attributes of a CodeAgent run (tool calls
  under code actions, span times from the events), a ToolCallingAgent run (the model's call ids),
  a managed sub-agent's run under its manager's tool call (and two runs of one sub-agent at once,
  from their interleaved events), failing tools, code actions and model calls, a run out of steps
  and a cancelled one (status ERROR, `error.type`, an exception event; no span left open),
  content recorded only when asked, concurrent runs kept apart, the caller's span as the parent.
- The environment: which OTEL_* variables turn tracing on, the provider built from them
  (service.name, console exporter), OTEL_SDK_DISABLED, no OpenTelemetry import when off.
- A real Arize Phoenix server (`tests/phoenix_server.py`): spans exported over OTLP/HTTP, read
  back from Phoenix's REST API (names, parent ids, Phoenix's span kinds and its reading of the
  gen_ai attributes, the error status), from `instrument()` and from the environment alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from tests.phoenix_server import PhoenixServer, PhoenixUnavailable

from codeloop import CodeAgent, ScriptedModel, ToolCallingAgent, telemetry, tool
from codeloop.events import (
    CodeAction,
    CodeActionFinished,
    Event,
    ModelCallFinished,
    ModelCallStarted,
    RunFinished,
    RunStarted,
    StepFinished,
    ToolCallFinished,
    ToolCallStarted,
)
from codeloop.memory import ActionStep, Memory, Timing
from codeloop.messages import ChatMessage, Role, Usage
from codeloop.result import RunResult, RunState
from codeloop.telemetry import GenAITracer
from codeloop.telemetry._attributes import provider_name
from codeloop.telemetry._setup import capture_content_from_env, tracing_requested

ROOT = Path(__file__).resolve().parents[1]
call = ScriptedModel.call
CONTENT_KEYS = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "codeloop.code",
}
STEP_SPANS = ["chat scripted", "execute_code", "execute_tool price"]
"""The spans of a CodeAgent step whose code calls `price` once."""


@tool
def price(item: str) -> float:
    """The price of an item.

    Args:
        item: The item's name.
    """
    if item == "gold":
        raise ValueError("gold is not sold here")
    return {"tea": 4.5, "milk": 1.25}.get(item, 2.0)


@tool
def lookup(key: str) -> str:
    """Look a fact up.

    Args:
        key: What to look up.
    """
    return {"capital_fr": "Paris"}.get(key, "unknown")


def code(source: str, input_tokens: int = 0, output_tokens: int = 0) -> ChatMessage | str:
    """A scripted code reply; with token counts, a message carrying that usage."""
    text = f"Thought: next.\n```python\n{source}\n```"
    if not input_tokens:
        return text
    return ChatMessage(role=Role.ASSISTANT, content=text, usage=Usage(input_tokens, output_tokens))


# -- fixtures and span helpers ----------------------------------------------------------------------


def traced(capture_content: bool | None = False) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.instrument(provider, capture_content=capture_content)
    return provider, exporter


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Every run traced into memory (no content), for the length of the test."""
    _, found = traced()
    yield found
    telemetry.uninstrument()


@pytest.fixture
def content_exporter() -> Iterator[InMemorySpanExporter]:
    _, found = traced(capture_content=True)
    yield found
    telemetry.uninstrument()


class Tree:
    """Finished spans, looked up by name and by parent."""

    def __init__(self, spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> None:
        self.spans = list(spans)
        self.by_id = {s.context.span_id: s for s in self.spans if s.context is not None}

    def named(self, name: str) -> list[ReadableSpan]:
        return sorted((s for s in self.spans if s.name == name), key=lambda s: s.start_time or 0)

    def one(self, name: str) -> ReadableSpan:
        (found,) = self.named(name)
        return found

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return None if span.parent is None else self.by_id.get(span.parent.span_id)

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        assert span.context is not None
        kids = [s for s in self.spans if s.parent is not None and s.parent.span_id == span.context.span_id]
        return sorted(kids, key=lambda s: s.start_time or 0)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def ns(event: Event) -> int:
    return int(event.timestamp * 1_000_000_000)


def run_events(agent: Any, task: str) -> tuple[list[Event], RunResult]:
    events = list(agent.stream(task))
    finished = [e for e in events if isinstance(e, RunFinished) and e.depth == 0]
    return events, finished[-1].result


# -- the span tree --------------------------------------------------------------------------------


def shop_run(exporter: InMemorySpanExporter) -> tuple[list[Event], RunResult, Tree]:
    """A two-step CodeAgent run whose code calls `price` in each step, with set token counts."""
    model = ScriptedModel(
        [code("print(price('tea'))", 100, 10), code("final_answer(price('milk'))", 200, 20)]
    )
    agent = CodeAgent([price], model, name="shop", description="Sells things.")
    events, result = run_events(agent, "Prices?")
    return events, result, Tree(exporter.get_finished_spans())


def test_a_code_agent_run_is_an_invoke_agent_span_over_its_model_calls_and_code_actions(
    exporter: InMemorySpanExporter,
) -> None:
    events, result, tree = shop_run(exporter)
    run = tree.one("invoke_agent shop")
    assert attrs(run) == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "shop",
        "gen_ai.agent.description": "Sells things.", "gen_ai.request.model": "scripted",
        "codeloop.run.id": result.run_id, "gen_ai.conversation.id": result.run_id,
        "codeloop.run.state": "success", "codeloop.run.steps": 2,
        "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 30,
    }  # fmt: skip
    assert tree.parent(run) is None and run.status.status_code is StatusCode.UNSET
    started = next(e for e in events if isinstance(e, RunStarted))
    assert (run.start_time, run.end_time) == (ns(started), ns(events[-1]))  # the events' own times

    chats, codes = tree.named("chat scripted"), tree.named("execute_code")
    assert [tree.parent(s) for s in chats + codes] == [run] * 4
    assert [attrs(c)["gen_ai.usage.input_tokens"] for c in chats] == [100, 200]
    assert attrs(chats[1]) | {"gen_ai.usage.input_tokens": 0} == {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "scripted", "codeloop.step": 2,
        "codeloop.model_call.purpose": "action", "gen_ai.usage.input_tokens": 0,
        "gen_ai.usage.output_tokens": 20,
    }  # fmt: skip
    assert len(tree.spans) == 7 and len({s.context.trace_id for s in tree.spans if s.context}) == 1
    assert all(s.status.status_code is StatusCode.UNSET for s in tree.spans)


def test_code_action_spans_name_the_executor_and_hold_the_tool_calls_made_from_the_code(
    exporter: InMemorySpanExporter,
) -> None:
    events, _, tree = shop_run(exporter)
    codes = tree.named("execute_code")
    limits = next(e for e in events if isinstance(e, CodeAction)).limits
    assert attrs(codes[0]) == {
        "codeloop.step": 1, "codeloop.executor.name": "MontyExecutor",
        **{f"codeloop.executor.limits.{k}": v for k, v in limits.items() if v is not None},
    }  # fmt: skip
    assert "codeloop.executor.limits.timeout_s" in attrs(codes[0])

    tools = tree.named("execute_tool price")
    assert [tree.parent(t) for t in tools] == codes  # each under the code that called it
    assert attrs(tools[1]) == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "price", "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "The price of an item.", "codeloop.tool.call_index": 0, "codeloop.step": 2,
    }  # fmt: skip
    for span, event_types in (
        (codes[0], (CodeAction, CodeActionFinished)),
        (tools[0], (ToolCallStarted, ToolCallFinished)),
    ):
        begin, end = (next(e for e in events if isinstance(e, t)) for t in event_types)
        assert (span.start_time, span.end_time) == (ns(begin), ns(end))


def test_a_tool_calling_agents_calls_are_execute_tool_spans_with_the_models_call_ids(
    exporter: InMemorySpanExporter,
) -> None:
    model = ScriptedModel([
        [call("price", call_id="c-tea", item="tea"), call("price", call_id="c-milk", item="milk")],
        [call("final_answer", call_id="c-end", answer="done")],
    ])  # fmt: skip
    agent = ToolCallingAgent([price], model, name="caller", stream_outputs=False)
    assert agent.run("Prices?") == "done"
    tree = Tree(exporter.get_finished_spans())

    run = tree.one("invoke_agent caller")
    calls = sorted(tree.named("execute_tool price"), key=lambda s: attrs(s)["codeloop.tool.call_index"])
    assert [attrs(c)["gen_ai.tool.call.id"] for c in calls] == ["c-tea", "c-milk"]
    assert [tree.parent(c) for c in calls] == [run, run]  # no code action in between
    assert tree.named("execute_code") == []
    first_chat = tree.named("chat scripted")[0]
    assert attrs(first_chat)["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert [s.name for s in tree.children(run)] == [
        "chat scripted",
        "execute_tool price",
        "execute_tool price",
        "chat scripted",
    ]  # fmt: skip  (final_answer is the run's answer, not a tool call: no span)


def test_a_managed_sub_agents_run_nests_under_the_managers_tool_call(exporter: InMemorySpanExporter) -> None:
    sub = ToolCallingAgent(
        [lookup],
        ScriptedModel([[call("lookup", key="capital_fr")], [call("final_answer", answer="Paris")]]),
        name="researcher",
        description="Looks facts up.",
    )
    manager = CodeAgent(
        [],
        ScriptedModel([code("c = researcher(task='What is the capital of France?')\nfinal_answer(c)")]),
        managed_agents=[sub],
        name="boss",
    )
    events, result = run_events(manager, "Ask the researcher")
    assert result.output == "Paris"
    tree = Tree(exporter.get_finished_spans())

    boss, researcher = tree.one("invoke_agent boss"), tree.one("invoke_agent researcher")
    delegation = tree.one("execute_tool researcher")
    assert tree.parent(delegation) == tree.one("execute_code")
    assert tree.parent(tree.one("execute_code")) == boss
    assert tree.parent(researcher) == delegation  # the sub-agent's run under the call that ran it
    assert [s.name for s in tree.children(researcher)] == [
        "chat scripted",
        "execute_tool lookup",
        "chat scripted",
    ]
    sub_start = next(e for e in events if isinstance(e, RunStarted) and e.depth == 1)
    assert attrs(researcher)["codeloop.run.id"] == sub_start.run_id != result.run_id
    assert attrs(researcher)["gen_ai.agent.description"] == "Looks facts up."
    assert researcher.start_time == ns(sub_start)  # placed when it happened, not when forwarded
    assert delegation.start_time <= researcher.start_time <= researcher.end_time <= delegation.end_time
    assert len({s.context.trace_id for s in tree.spans if s.context}) == 1


def test_a_tool_calling_managers_sub_agent_nests_under_its_tool_call(exporter: InMemorySpanExporter) -> None:
    helper = CodeAgent([], ScriptedModel([code("final_answer('a')")]), name="helper", description="Answers.")
    replies = [[call("helper", task="Give the first answer.")], [call("final_answer", answer="done")]]
    manager = ToolCallingAgent([], ScriptedModel(replies), managed_agents=[helper], name="boss")
    assert manager.run("Ask.") == "done"
    tree = Tree(exporter.get_finished_spans())
    assert tree.parent(tree.one("invoke_agent helper")) == tree.one("execute_tool helper")


def message(text: str) -> ChatMessage:
    return ChatMessage(role=Role.ASSISTANT, content=text, usage=Usage(10, 2))


def finished(run_id: str, depth: int, agent: str) -> RunFinished:
    result = RunResult(output="x", state=RunState.SUCCESS, memory=Memory(), usage=Usage(), timing=Timing(),
                       run_id=run_id)  # fmt: skip
    return RunFinished(agent=agent, depth=depth, result=result)


def interleaved_helper_events() -> list[Event]:
    """A manager's events with two runs of its sub-agent `helper` interleaved, as a ToolCallingAgent
    manager that calls it twice in one step forwards them (the second run ends first)."""
    h: dict[str, Any] = {"agent": "helper", "depth": 1, "step": 1}
    step = ActionStep(step_number=1)
    return [
        RunStarted(agent="boss", task="Ask twice.", run_id="boss-run"),
        ModelCallStarted(agent="boss", step=1, model_id="m"),
        ModelCallFinished(agent="boss", step=1, model_id="m", message=message("")),
        ToolCallStarted(agent="boss", step=1, name="helper", arguments={}, call_index=0),
        ToolCallStarted(agent="boss", step=1, name="helper", arguments={}, call_index=1),
        RunStarted(**h, task="first", run_id="h1"),
        ModelCallStarted(**h, model_id="m"),
        RunStarted(**h, task="second", run_id="h2"),
        ModelCallStarted(**h, model_id="m"),
        ModelCallFinished(**h, model_id="m", message=message("a")),
        CodeAction(**h, code="final_answer('a')"),
        ModelCallFinished(**h, model_id="m", message=message("b")),
        CodeAction(**h, code="final_answer('b')"),
        CodeActionFinished(**h),
        StepFinished(**h, memory_step=step),
        CodeActionFinished(**h),
        finished("h2", 1, "helper"),
        StepFinished(**h, memory_step=step),
        finished("h1", 1, "helper"),
        ToolCallFinished(agent="boss", step=1, name="helper", call_index=1),
        ToolCallFinished(agent="boss", step=1, name="helper", call_index=0),
        StepFinished(agent="boss", step=1, memory_step=step),
        finished("boss-run", 0, "boss"),
    ]


def test_two_runs_of_one_sub_agent_at_once_each_get_their_own_spans() -> None:
    """Each run goes under its own tool call and every span in them ends, none marked failed."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handle = GenAITracer(provider.get_tracer("test"))(ToolCallingAgent([], ScriptedModel([]), name="boss"))
    for event in interleaved_helper_events():
        handle(event)
    tree = Tree(exporter.get_finished_spans())
    assert len(tree.spans) == 10  # every span ended
    assert all(s.status.status_code is StatusCode.UNSET for s in tree.spans)
    calls = sorted(tree.named("execute_tool helper"), key=lambda s: attrs(s)["codeloop.tool.call_index"])
    runs = {attrs(r)["codeloop.run.id"]: r for r in tree.named("invoke_agent helper")}
    assert [tree.parent(runs["h1"]), tree.parent(runs["h2"])] == calls
    for run in runs.values():
        assert [s.name for s in tree.children(run)] == ["chat m", "execute_code"]


# -- errors -------------------------------------------------------------------------------------------


def exception_events(span: ReadableSpan) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == "exception"]


def test_a_failing_tool_and_a_failing_code_action_are_errors(exporter: InMemorySpanExporter) -> None:
    model = ScriptedModel([code("print(price('tea'))\nprice('gold')"), code("final_answer(1)")])
    assert CodeAgent([price], model, name="shop").run("Gold?") == 1
    tree = Tree(exporter.get_finished_spans())

    ok, failed = tree.named("execute_tool price")
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "ValueError: gold is not sold here"
    assert attrs(failed)["error.type"] == "ValueError"
    assert exception_events(failed) == [
        {"exception.type": "ValueError", "exception.message": "ValueError: gold is not sold here"}
    ]
    code_span = tree.named("execute_code")[0]
    assert code_span.status.status_code is StatusCode.ERROR and attrs(code_span)["error.type"] == "ValueError"
    assert "gold is not sold here" in (code_span.status.description or "")
    assert tree.named("execute_code")[1].status.status_code is StatusCode.UNSET
    assert tree.one("invoke_agent shop").status.status_code is StatusCode.UNSET  # the run recovered


def test_a_tool_calling_agents_failing_tool_is_an_error(exporter: InMemorySpanExporter) -> None:
    model = ScriptedModel([[call("price", item="gold")], [call("final_answer", answer="none")]])
    assert ToolCallingAgent([price], model, name="caller").run("Gold?") == "none"
    failed = Tree(exporter.get_finished_spans()).one("execute_tool price")
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)["error.type"] == "AgentToolExecutionError"
    assert "gold is not sold here" in (failed.status.description or "")


def test_code_that_never_ran_ends_its_span_with_the_steps_error(exporter: InMemorySpanExporter) -> None:
    # a tool's name bound in a way the shield cannot rename: refused before it runs
    model = ScriptedModel([code("def \\\nprice():\n    return 1"), code("final_answer(2)")])
    events, result = run_events(CodeAgent([price], model, name="shop"), "Define?")
    assert result.output == 2
    assert [e.step for e in events if isinstance(e, CodeActionFinished)] == [2]  # none for step 1
    refused, ran = Tree(exporter.get_finished_spans()).named("execute_code")
    assert refused.status.status_code is StatusCode.ERROR
    assert attrs(refused)["error.type"] == "AgentExecutionError"
    assert "names a function you are given" in (refused.status.description or "")
    assert ran.status.status_code is StatusCode.UNSET


def test_a_model_error_ends_the_chat_span_and_the_run_as_errors(exporter: InMemorySpanExporter) -> None:
    agent = CodeAgent([price], ScriptedModel([RuntimeError("model down")]), name="shop")
    result = agent.run("Tea?", return_full_result=True)
    assert result.state is RunState.ERROR
    tree = Tree(exporter.get_finished_spans())
    chat, run = tree.one("chat scripted"), tree.one("invoke_agent shop")
    assert len(tree.spans) == 2 and tree.parent(chat) == run
    assert chat.status.status_code is StatusCode.ERROR and attrs(chat)["error.type"] == "RuntimeError"
    assert chat.status.description == result.error and "model down" in (result.error or "")
    assert run.status.status_code is StatusCode.ERROR
    assert attrs(run)["error.type"] == "codeloop.errors.ModelError"
    assert attrs(run)["codeloop.run.state"] == "error"
    assert exception_events(run)[0]["exception.message"] == result.error


def test_a_run_out_of_steps_is_an_error_named_by_its_state(exporter: InMemorySpanExporter) -> None:
    agent = CodeAgent([price], ScriptedModel([code("print(1)"), code("print(2)")]), name="shop", max_steps=2)
    assert agent.run("Loop", return_full_result=True).state is RunState.MAX_STEPS
    run = Tree(exporter.get_finished_spans()).one("invoke_agent shop")
    assert run.status.status_code is StatusCode.ERROR
    assert attrs(run)["error.type"] == "max_steps_exceeded" == attrs(run)["codeloop.run.state"]


async def test_a_run_cancelled_inside_a_sub_agent_ends_every_span(exporter: InMemorySpanExporter) -> None:
    sub = CodeAgent(
        [], ScriptedModel([code("final_answer(1)")], latency_s=30), name="slow", description="Slow."
    )
    boss = CodeAgent([], ScriptedModel([code("final_answer(slow(task='Take your time, please.'))")]),
                     managed_agents=[sub], name="boss")  # fmt: skip
    events = []
    async for event in boss.astream("Go"):
        events.append(event)
        if isinstance(event, ModelCallStarted) and event.depth == 1:
            boss.cancel(reason="test")  # while the sub-agent waits for its model
    assert [(e.depth, e.result.state) for e in events if isinstance(e, RunFinished)] == [
        (0, RunState.CANCELLED)
    ]
    tree = Tree(exporter.get_finished_spans())
    sub_run = tree.one("invoke_agent slow")  # ended although its RunFinished never came
    assert sub_run.status.status_code is StatusCode.ERROR
    assert tree.parent(sub_run) == tree.one("execute_tool slow")
    assert tree.one("invoke_agent boss").status.status_code is StatusCode.ERROR
    assert attrs(tree.one("invoke_agent boss"))["error.type"] == "cancelled"
    boss_spans = ["invoke_agent boss", "chat scripted", "execute_code", "execute_tool slow"]
    assert sorted(s.name for s in tree.spans) == sorted([*boss_spans, "invoke_agent slow", "chat scripted"])


# -- content ----------------------------------------------------------------------------------------


SECRET = "SECRET-4242"


def secret_run() -> RunResult:
    model = ScriptedModel([code(f"x = price('{SECRET}')\nprint(x)"), code(f"final_answer('{SECRET} ok')")])
    result: RunResult = CodeAgent([price], model, name="shop").run(
        f"Price of {SECRET}?", return_full_result=True
    )
    assert result.output == f"{SECRET} ok"
    return result


def mentions_secret(span: ReadableSpan) -> bool:
    values = [*attrs(span).values(), *(v for e in span.events for v in (e.attributes or {}).values())]
    return any(SECRET in str(v) for v in values) or SECRET in (span.status.description or "")


def test_no_content_is_recorded_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    _, exporter = traced(capture_content=None)
    try:
        secret_run()
    finally:
        telemetry.uninstrument()
    spans = exporter.get_finished_spans()
    assert {s.name for s in spans} == {
        "invoke_agent shop",
        "chat scripted",
        "execute_code",
        "execute_tool price",
    }
    assert not any(CONTENT_KEYS & attrs(s).keys() for s in spans)
    assert not any(mentions_secret(s) for s in spans)  # no task, reply, code, argument or answer


def test_content_is_recorded_when_asked(content_exporter: InMemorySpanExporter) -> None:
    secret_run()
    tree = Tree(content_exporter.get_finished_spans())
    run = attrs(tree.one("invoke_agent shop"))
    assert json.loads(run["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": f"Price of {SECRET}?"}]}
    ]
    assert json.loads(run["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": f"{SECRET} ok"}], "finish_reason": "stop"}
    ]
    reply = json.loads(attrs(tree.named("chat scripted")[0])["gen_ai.output.messages"])
    assert reply[0]["role"] == "assistant" and f"price('{SECRET}')" in reply[0]["parts"][0]["content"]
    assert attrs(tree.named("execute_code")[0])["codeloop.code"] == f"x = price('{SECRET}')\nprint(x)"
    called = attrs(tree.one("execute_tool price"))
    assert json.loads(called["gen_ai.tool.call.arguments"]) == {"item": SECRET}
    assert called["gen_ai.tool.call.result"] == "2.0"


@pytest.mark.parametrize(("value", "recorded"), [("true", True), ("SPAN_ONLY", True), ("false", False)])
def test_the_capture_variable_turns_content_on(
    monkeypatch: pytest.MonkeyPatch, value: str, recorded: bool
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    _, exporter = traced(capture_content=None)
    try:
        secret_run()
    finally:
        telemetry.uninstrument()
    assert any(mentions_secret(s) for s in exporter.get_finished_spans()) is recorded


# -- runs at once, the caller's span, switching on and off ------------------------------------------------


async def test_concurrent_runs_keep_their_spans_apart(content_exporter: InMemorySpanExporter) -> None:
    def agent(item: str) -> CodeAgent:
        replies = [code(f"print(price('{item}'))"), code(f"final_answer(price('{item}'))")]
        return CodeAgent([price], ScriptedModel(replies, latency_s=0.02), name="shop")

    tea, milk = await asyncio.gather(
        agent("tea").arun("Tea?", return_full_result=True),
        agent("milk").arun("Milk?", return_full_result=True),
    )
    tree = Tree(content_exporter.get_finished_spans())
    runs = {attrs(s)["codeloop.run.id"]: s for s in tree.named("invoke_agent shop")}
    assert set(runs) == {tea.run_id, milk.run_id}
    a, b = runs.values()
    assert a.start_time < b.end_time and b.start_time < a.end_time  # they did run at once
    for run_id, item in ((tea.run_id, "tea"), (milk.run_id, "milk")):
        trace_id = runs[run_id].context.trace_id
        mine = [s for s in tree.spans if s.context.trace_id == trace_id]
        assert sorted(s.name for s in mine) == sorted(
            ["invoke_agent shop"] + ["chat scripted", "execute_code", "execute_tool price"] * 2
        )
        args = [
            json.loads(attrs(s)["gen_ai.tool.call.arguments"]) for s in mine if s.name.startswith("execute_t")
        ]
        assert args == [{"item": item}] * 2
        assert all(tree.parent(s) is not None for s in mine if s is not runs[run_id])


@pytest.mark.parametrize("call", ["arun", "run", "stream"])
def test_the_run_span_is_a_child_of_the_callers_current_span(call: str) -> None:
    provider, exporter = traced()
    try:
        with provider.get_tracer("app").start_as_current_span("handle request") as request:
            agent = CodeAgent([], ScriptedModel([code("final_answer(1)")]), name="shop")
            if call == "arun":
                assert asyncio.run(agent.arun("One?")) == 1
            elif call == "run":  # sync: the work runs on codeloop's loop thread, in the caller's context
                assert agent.run("One?") == 1
            else:
                assert [type(e).__name__ for e in agent.stream("One?")][-1] == "RunFinished"
    finally:
        telemetry.uninstrument()
    tree = Tree(exporter.get_finished_spans())
    run = tree.one("invoke_agent shop")
    assert tree.parent(run) == tree.one("handle request")
    assert run.context.trace_id == request.get_span_context().trace_id


def test_instrument_replaces_itself_and_uninstrument_stops_tracing() -> None:
    _, replaced = traced()
    _, exporter = traced()  # a second instrument(): the first observer is gone
    agent = CodeAgent([], ScriptedModel([code("final_answer(1)"), code("final_answer(2)")]), name="shop")
    try:
        assert telemetry.is_instrumented()
        agent.run("One?")
    finally:
        telemetry.uninstrument()
    assert not telemetry.is_instrumented()
    agent.run("Two?")
    assert [s.name for s in exporter.get_finished_spans()].count("invoke_agent shop") == 1
    assert replaced.get_finished_spans() == ()


def test_planning_calls_are_chat_spans_with_purpose_plan(exporter: InMemorySpanExporter) -> None:
    model = ScriptedModel(["1. Answer.\n<end_plan>", code("final_answer(1)")])
    CodeAgent([], model, name="shop", planning_interval=1).run("Plan?")
    chats = Tree(exporter.get_finished_spans()).named("chat scripted")
    assert [attrs(c)["codeloop.model_call.purpose"] for c in chats] == ["plan", "action"]


def test_provider_names_come_from_the_model_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm: no download of its price list
    from codeloop.models.anthropic import AnthropicModel
    from codeloop.models.litellm import LiteLLMModel
    from codeloop.models.openai import OpenAIModel

    assert provider_name(OpenAIModel("gpt-4o", api_key="k")) == "openai"
    assert provider_name(OpenAIModel("m", api_base="https://api.groq.com/openai/v1", api_key="k")) == "groq"
    assert provider_name(AnthropicModel("claude-x", api_key="k")) == "anthropic"
    assert provider_name(LiteLLMModel("bedrock/anthropic.claude-x")) == "aws.bedrock"
    assert provider_name(ScriptedModel([])) is None


# -- the environment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, False),
        ({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx,codeloop", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_the_environment_decides_whether_to_trace(env: dict[str, str], wanted: bool) -> None:
    assert tracing_requested(env) is wanted


def test_content_capture_is_read_from_its_variable() -> None:
    variable = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
    assert [capture_content_from_env({variable: v}) for v in ("true", "True", "1", "false", "")] == [
        True, True, True, False, False,
    ]  # fmt: skip
    assert capture_content_from_env({}) is False


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**env, **extra}


def run_script(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


AGENT_SCRIPT = """
    import sys
    import codeloop.telemetry
    from codeloop import CodeAgent, ScriptedModel, tool

    @tool
    def price(item: str) -> float:
        '''The price of an item.

        Args:
            item: The item's name.
        '''
        return 4.5

    replies = ["```python\\nprint(price('tea'))\\n```", "```python\\nfinal_answer(price('tea'))\\n```"]
    assert CodeAgent([price], ScriptedModel(replies), name="shop").run("Tea?") == 4.5
"""


UNTRACED_SCRIPT = """
    import sys
    import codeloop.telemetry
    from codeloop import CodeAgent, ScriptedModel, ToolCallingAgent
    from codeloop.events import _OBSERVERS

    def loaded():
        return sorted(m for m in sys.modules if m.startswith("opentelemetry"))

    answer = [ScriptedModel.call("final_answer", answer=1)]
    assert ToolCallingAgent([], ScriptedModel([answer])).run("One?") == 1
    assert loaded() == [], loaded()  # not even the API
    assert CodeAgent([], ScriptedModel(["```python\\nfinal_answer(2)\\n```"])).run("Two?") == 2
    # (Monty, the CodeAgent's interpreter, imports opentelemetry.context itself; not the tracing API)
    assert not [m for m in loaded() if m.startswith(("opentelemetry.trace", "opentelemetry.sdk"))], loaded()
    assert not codeloop.telemetry.is_instrumented() and _OBSERVERS == []
"""


def test_untraced_runs_import_no_opentelemetry() -> None:
    run_script(UNTRACED_SCRIPT, clean_env())
    disabled = clean_env(OTEL_SDK_DISABLED="true", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    run_script(UNTRACED_SCRIPT, disabled)  # the endpoint alone would turn tracing on


def test_instrument_does_nothing_when_the_sdk_is_disabled() -> None:
    script = """
    import sys
    import codeloop.telemetry
    codeloop.telemetry.instrument()
    assert not codeloop.telemetry.is_instrumented()
    assert not [m for m in sys.modules if m.startswith(("opentelemetry.trace", "opentelemetry.sdk"))]
    """
    run_script(script, clean_env(OTEL_SDK_DISABLED="true"))


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The spans the SDK's console exporter printed (JSON objects one after another)."""
    decoder, found, at = json.JSONDecoder(), [], stdout.find("{")
    while at != -1:
        value, end = decoder.raw_decode(stdout, at)
        found.append(value)
        at = stdout.find("{", end)
    return found


@pytest.mark.parametrize(("service", "expected"), [(None, "codeloop"), ("pricing", "pricing")])
def test_the_environment_alone_builds_a_provider_and_exports(service: str | None, expected: str) -> None:
    env = clean_env(OTEL_TRACES_EXPORTER="console", **({"OTEL_SERVICE_NAME": service} if service else {}))
    done = run_script(AGENT_SCRIPT + "\n    assert codeloop.telemetry.is_instrumented()\n", env)
    spans = console_spans(done.stdout)  # flushed by the SDK provider at exit
    assert sorted(s["name"] for s in spans) == sorted(
        ["invoke_agent shop"] + ["chat scripted", "execute_code"] * 2 + ["execute_tool price"] * 2
    )
    assert {s["resource"]["attributes"]["service.name"] for s in spans} == {expected}
    run = next(s for s in spans if s["name"] == "invoke_agent shop")
    assert run["attributes"]["gen_ai.agent.name"] == "shop" and run["parent_id"] is None


# -- a real Phoenix server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phoenix() -> Iterator[PhoenixServer]:
    """Arize Phoenix, installed into tests/.phoenix-venv on first use, started for this module."""
    try:
        server = PhoenixServer.start()
    except PhoenixUnavailable as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


def exported_to(server: PhoenixServer, project: str) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider sending spans to Phoenix's `project` over OTLP/HTTP, and keeping a copy."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"openinference.project.name": project}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=server.otlp_url)))
    copy = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(copy))
    return provider, copy


def hex_id(value: int) -> str:
    return f"{value:016x}"


def run_team_into(provider: TracerProvider) -> None:
    """A CodeAgent manager whose ToolCallingAgent sub-agent calls a failing tool, traced with content."""
    telemetry.instrument(provider, capture_content=True)
    try:
        sub = ToolCallingAgent(
            [price],
            ScriptedModel([[call("price", item="gold")], [call("final_answer", answer="no gold")]]),
            name="clerk", description="Knows prices.",
        )  # fmt: skip
        delegate = code("final_answer(clerk(task='What does gold cost?'))", 50, 5)
        manager = CodeAgent([], ScriptedModel([delegate]), managed_agents=[sub], name="boss")
        assert manager.run("Gold?") == "no gold"
    finally:
        telemetry.uninstrument()
        provider.force_flush()
        provider.shutdown()


def test_phoenix_stores_the_span_tree_as_it_was_sent(phoenix: PhoenixServer) -> None:
    provider, copy = exported_to(phoenix, "codeloop-tree")
    run_team_into(provider)
    sent = {hex_id(s.context.span_id): s for s in copy.get_finished_spans() if s.context}
    stored = phoenix.wait_for_spans("codeloop-tree", lambda found: len(found) >= len(sent))
    by_id = {s["context"]["span_id"]: s for s in stored}
    assert set(by_id) == set(sent)  # every span, none made up
    for span_id, span in sent.items():
        parent = hex_id(span.parent.span_id) if span.parent else None
        assert (by_id[span_id]["name"], by_id[span_id]["parent_id"]) == (span.name, parent)
    named = {s["name"]: s for s in stored}
    clerk, delegation = named["invoke_agent clerk"], named["execute_tool clerk"]
    assert clerk["parent_id"] == delegation["context"]["span_id"]
    assert named["execute_code"]["context"]["span_id"] == delegation["parent_id"]
    kinds = {name: named[name]["span_kind"] for name in named}
    assert kinds["invoke_agent boss"] == kinds["invoke_agent clerk"] == "AGENT"  # Phoenix read gen_ai.*
    assert kinds["chat scripted"] == "LLM"
    assert kinds["execute_tool price"] == kinds["execute_tool clerk"] == "TOOL"


def test_phoenix_reads_the_genai_attributes_and_the_error(phoenix: PhoenixServer) -> None:
    provider, copy = exported_to(phoenix, "codeloop-attributes")
    run_team_into(provider)
    sent = len(copy.get_finished_spans())
    stored = phoenix.wait_for_spans("codeloop-attributes", lambda found: len(found) >= sent)
    named = {s["name"]: s for s in stored}
    boss = named["invoke_agent boss"]
    assert boss["attributes"]["gen_ai.agent.name"] == "boss" and boss["status_code"] == "UNSET"
    assert boss["attributes"]["gen_ai.usage.input_tokens"] == 50
    assert boss["attributes"]["codeloop.run.state"] == "success"
    assert named["execute_tool clerk"]["attributes"]["gen_ai.tool.name"] == "clerk"
    failed = named["execute_tool price"]
    assert failed["status_code"] == "ERROR" and "gold is not sold here" in failed["status_message"]
    assert failed["attributes"]["error.type"] == "AgentToolExecutionError"
    assert [e["name"] for e in failed["events"]] == ["exception"]
    assert json.loads(failed["attributes"]["gen_ai.tool.call.arguments"]) == {"item": "gold"}
    boss_id = boss["context"]["span_id"]
    (boss_chat,) = [s for s in stored if s["name"] == "chat scripted" and s["parent_id"] == boss_id]
    derived = boss_chat["attributes"]  # Phoenix's own reading of gen_ai.usage.* and gen_ai.output.messages
    assert derived["llm.token_count.prompt"] == 50 and derived["llm.token_count.completion"] == 5
    assert "clerk(task='What does gold cost?')" in derived["llm.output_messages.0.message.content"]


ENV_PROJECT = "codeloop-env"


def test_the_otlp_variables_alone_send_traces_to_phoenix(phoenix: PhoenixServer) -> None:
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=phoenix.url,
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={ENV_PROJECT}",
    )
    run_script(AGENT_SCRIPT, env)  # the SDK provider it built flushes at exit
    stored = phoenix.wait_for_spans(ENV_PROJECT, lambda found: len(found) >= 7)
    names = sorted(s["name"] for s in stored)
    assert names == sorted(
        ["invoke_agent shop"] + ["chat scripted", "execute_code", "execute_tool price"] * 2
    )
    by_id = {s["context"]["span_id"]: s for s in stored}
    run = next(s for s in stored if s["name"] == "invoke_agent shop")
    assert run["parent_id"] is None and run["span_kind"] == "AGENT"
    for span in stored:
        if span["name"] == "execute_tool price":
            assert by_id[span["parent_id"]]["name"] == "execute_code"
        elif span is not run:
            assert span["parent_id"] == run["context"]["span_id"]
    assert not any(CONTENT_KEYS & s["attributes"].keys() for s in stored)  # content is opt-in
