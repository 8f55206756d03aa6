"""The agent loop, end to end with the scripted model and the real default executor."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from codeloop import (
    CodeAgent,
    MaxStepsExceeded,
    Memory,
    PlanningStep,
    RunState,
    ScriptedModel,
    ToolCallingAgent,
    tool,
)
from codeloop.events import (
    CodeAction,
    Event,
    FinalAnswer,
    ModelDelta,
    Observation,
    PlanReady,
    RunFinished,
    StepErrored,
    StepFinished,
    ToolCallRequested,
)
from codeloop.messages import Role

from helpers import add

call = ScriptedModel.call


@tool
def lookup(key: str) -> str:
    """Look a key up in the store.

    Args:
        key: The key.
    """
    store = {"capital_fr": "Paris"}
    if key not in store:
        raise KeyError(f"no such key: {key}")
    return store[key]


def fenced(code: str, thought: str = "Thought: next step.") -> str:
    return f"{thought}\n```python\n{code}\n```"


def last_user_text(model: ScriptedModel, request: int) -> str:
    messages = model.requests[request]
    return next(m.content for m in reversed(messages) if m.role in (Role.USER, Role.TOOL))


# ---- CodeAgent -------------------------------------------------------------------------------


def test_code_agent_multi_step_with_error_and_parse_failure_recovered() -> None:
    model = ScriptedModel(
        [
            fenced("x = add(2, 3)\nprint('x is', x)"),
            "I think the answer is probably 5.",  # no code: parse failure
            fenced("y = x / 0"),  # runtime error
            fenced("final_answer(x * 10)"),
        ]
    )
    agent = CodeAgent([add], model, max_steps=6)
    result = agent.run("Compute (2+3)*10", return_full_result=True)

    assert result.state is RunState.SUCCESS
    assert result.output == 50
    steps = result.memory.action_steps()
    assert [s.error.type if s.error else None for s in steps] == [
        None,
        "AgentParsingError",
        "AgentExecutionError",
        None,
    ]
    assert "x is 5" in last_user_text(model, 1)
    assert "```python" in last_user_text(model, 2)  # the parse failure tells the model the format
    assert "ZeroDivisionError" in last_user_text(model, 3)
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.timing.duration is not None


def test_code_agent_state_persists_across_steps_and_tool_errors_are_visible() -> None:
    model = ScriptedModel(
        [
            fenced("city = lookup('capital_de')"),
            fenced("city = lookup('capital_fr')\nprint(city)"),
            fenced("final_answer(city.upper())"),
        ]
    )
    agent = CodeAgent([lookup], model, max_steps=5)
    assert agent.run("Capital of France, upper case") == "PARIS"
    assert "no such key" in last_user_text(model, 1)


def test_max_steps_is_reported_not_guessed() -> None:
    model = ScriptedModel([fenced("print(1)"), fenced("print(2)"), fenced("final_answer('late')")])
    agent = CodeAgent([], model, max_steps=2)
    result = agent.run("Count", return_full_result=True)
    assert result.state is RunState.MAX_STEPS
    assert result.output is None
    assert "max_steps=2" in (result.error or "")
    assert len(model.requests) == 2  # no extra "best guess" call
    with pytest.raises(MaxStepsExceeded) as info:
        CodeAgent([], ScriptedModel([fenced("print(1)")]), max_steps=1).run("Count")
    assert info.value.result is not None and info.value.result.state is RunState.MAX_STEPS


def test_final_answer_checks_reject_then_accept() -> None:
    seen: list[Any] = []

    def must_be_even(answer: Any, memory: Memory) -> bool:
        seen.append(answer)
        return answer % 2 == 0

    model = ScriptedModel([fenced("final_answer(7)"), fenced("final_answer(8)")])
    agent = CodeAgent([], model, final_answer_checks=[must_be_even])
    result = agent.run("An even number", return_full_result=True)
    assert result.output == 8 and seen == [7, 8]
    first = result.memory.action_steps()[0]
    assert first.error is not None and first.error.type == "FinalAnswerRejected"
    assert not first.is_final_answer
    assert "must_be_even" in last_user_text(model, 1)


def test_planning_steps_run_at_the_interval() -> None:
    model = ScriptedModel(
        [
            "1. compute\n2. answer",
            fenced("v = add(1, 1)"),
            fenced("v = add(v, 1)"),
            "1. answer now",
            fenced("final_answer(v)"),
        ]
    )
    agent = CodeAgent([add], model, planning_interval=2)
    events = list(agent.stream("Plan then compute"))
    plans = [e.plan for e in events if isinstance(e, PlanReady)]
    assert plans == ["1. compute\n2. answer", "1. answer now"]
    kinds = [type(s).__name__ for s in agent.memory.steps]
    assert kinds == [
        "TaskStep",
        "PlanningStep",
        "ActionStep",
        "ActionStep",
        "PlanningStep",
        "ActionStep",
        "FinalAnswerStep",
    ]
    assert "Update your plan" in model.requests[3][-1].content
    assert _final(events).output == 3


def test_reset_false_continues_the_conversation_and_the_variables() -> None:
    model = ScriptedModel([fenced("n = 21\nfinal_answer(n)"), fenced("final_answer(n * 2)")])
    agent = CodeAgent([], model)
    assert agent.run("Pick 21") == 21
    assert agent.run("Double it", reset=False) == 42
    texts = [m.content for m in model.requests[1]]
    assert any("Pick 21" in t for t in texts) and any("Double it" in t for t in texts)
    fresh = ScriptedModel([fenced("final_answer(n)")])
    other = CodeAgent([], fresh, max_steps=1)
    result = other.run("n is gone", return_full_result=True)
    assert result.state is RunState.MAX_STEPS  # NameError: a new run has new variables
    error = result.memory.action_steps()[0].error
    assert error is not None and "NameError" in error.message


def test_additional_args_are_visible_to_the_code() -> None:
    model = ScriptedModel([fenced("final_answer(len(rows) + offset)")])
    agent = CodeAgent([], model)
    assert agent.run("Count rows", additional_args={"rows": [1, 2, 3], "offset": 10}) == 13
    assert "rows (list)" in model.requests[0][-1].content


def test_step_callbacks_receive_each_step() -> None:
    seen: list[tuple[int, str]] = []

    def on_step(step: Any, agent: Any) -> None:
        seen.append((getattr(step, "step_number", -1), agent.name))

    model = ScriptedModel([fenced("print(1)"), fenced("final_answer(2)")])
    CodeAgent([], model, step_callbacks=[on_step], name="calc").run("x")
    assert seen == [(1, "calc"), (2, "calc")]


def test_images_reach_the_model() -> None:
    from codeloop import ImageContent

    model = ScriptedModel([fenced("final_answer('a cat')")])
    image = ImageContent(data=b"\x89PNG fake", mime_type="image/png")
    CodeAgent([], model).run("What is in the picture?", images=[image])
    assert model.requests[0][1].images == (image,)


# ---- ToolCallingAgent ------------------------------------------------------------------------


def test_tool_calling_agent_parallel_calls_errors_and_text_json() -> None:
    model = ScriptedModel(
        [
            [call("add", a=1, b=2), call("add", a=10, b=20)],
            [call("add", a="one", b=2)],  # validation error fed back
            [call("nope", x=1)],  # unknown tool fed back
            'The total: {"name": "final_answer", "arguments": {"answer": 33}} done.',  # JSON in text
        ]
    )
    agent = ToolCallingAgent([add], model, max_steps=5)
    events = list(agent.stream("Add things"))
    result = _final(events)
    assert result.output == 33
    steps = result.memory.action_steps()
    assert [r.content for r in steps[0].tool_results] == ["3", "30"]
    assert steps[1].tool_results[0].is_error and "a" in steps[1].tool_results[0].content
    assert "Unknown tool 'nope'" in steps[2].tool_results[0].content
    assert not steps[3].native_tool_calls
    tool_messages = [m for m in model.requests[1] if m.role is Role.TOOL]
    assert [m.content for m in tool_messages] == ["3", "30"]
    assert sum(isinstance(e, ToolCallRequested) for e in events) == 5
    observations = [(e.step, e.is_error) for e in events if isinstance(e, Observation)]
    assert observations == [(1, False), (1, False), (2, True), (3, True), (4, False)]
    assert [e.step for e in events if isinstance(e, StepErrored)] == [2, 3]


def test_tool_calls_in_one_step_run_concurrently() -> None:
    in_flight: list[str] = []
    all_started = asyncio.Event()

    @tool
    async def rendezvous(label: str) -> str:
        """Wait until every call of the step has started.

        Args:
            label: A label.
        """
        in_flight.append(label)
        if len(in_flight) == 5:
            all_started.set()
        await asyncio.wait_for(all_started.wait(), timeout=10)  # run one by one, this never ends
        return label

    calls = [call("rendezvous", label=str(i)) for i in range(5)]
    model = ScriptedModel([calls, [call("final_answer", answer="ok")]])
    result = ToolCallingAgent([rendezvous], model).run("meet", return_full_result=True)
    step = result.memory.action_steps()[0]
    assert [r.content for r in step.tool_results] == ["0", "1", "2", "3", "4"]
    assert not any(r.is_error for r in step.tool_results)


def test_tool_calling_max_steps_and_checks() -> None:
    model = ScriptedModel([[call("final_answer", answer="bad")], [call("final_answer", answer="good")]])
    agent = ToolCallingAgent([], model, final_answer_checks=[lambda a, m: a == "good"])
    assert agent.run("x") == "good"
    stuck = ToolCallingAgent([add], ScriptedModel([[call("add", a=1, b=1)]] * 3), max_steps=3)
    assert stuck.run("loop", return_full_result=True).state is RunState.MAX_STEPS


def test_tool_calling_reset_false() -> None:
    model = ScriptedModel([[call("final_answer", answer="A")], [call("final_answer", answer="B")]])
    agent = ToolCallingAgent([], model)
    agent.run("first")
    agent.run("second", reset=False)
    assert [type(s).__name__ for s in agent.memory.steps].count("TaskStep") == 2
    assert any(m.content == "Task: first" for m in model.requests[1])


# ---- managed agents --------------------------------------------------------------------------


def _researcher(replies: list[Any], max_steps: int = 3) -> ToolCallingAgent:
    return ToolCallingAgent(
        [lookup],
        ScriptedModel(replies),
        name="researcher",
        description="Looks facts up in the store.",
        max_steps=max_steps,
    )


def test_manager_code_agent_calls_a_managed_tool_calling_agent() -> None:
    sub = _researcher([[call("lookup", key="capital_fr")], [call("final_answer", answer="Paris")]])
    manager = CodeAgent(
        [],
        ScriptedModel([fenced("c = researcher(task='capital of France?')\nfinal_answer(c)")]),
        managed_agents=[sub],
        name="boss",
    )
    events = list(manager.stream("Ask the researcher"))
    assert _final(events).output == "Paris"
    sub_events = [e for e in events if e.agent == "researcher"]
    assert sub_events and all(e.depth == 1 for e in sub_events)
    assert any(isinstance(e, ToolCallRequested) and e.call.name == "lookup" for e in sub_events)
    assert "researcher(task: str" in manager.system_prompt


def test_sub_agent_running_out_of_steps_is_a_failure_for_the_manager() -> None:
    sub = _researcher([[call("lookup", key="capital_fr")]] * 2, max_steps=2)
    manager_model = ScriptedModel(
        [
            fenced("c = researcher(task='capital of France?')\nfinal_answer(c)"),
            fenced("final_answer('researcher failed')"),
        ]
    )
    manager = CodeAgent([], manager_model, managed_agents=[sub])
    result = manager.run("Ask", return_full_result=True)
    first = result.memory.action_steps()[0]
    assert first.error is not None and "ManagedAgentError" in first.error.message
    assert "max_steps=2" in first.error.message
    assert result.output == "researcher failed"


def test_sub_agent_failure_reaches_a_tool_calling_manager_as_an_error() -> None:
    sub = _researcher([RuntimeError("model down")])
    manager_model = ScriptedModel(
        [[call("researcher", task="What is the capital?")], [call("final_answer", answer="gave up")]]
    )
    manager = ToolCallingAgent([], manager_model, managed_agents=[sub])
    result = manager.run("Ask", return_full_result=True)
    outcome = result.memory.action_steps()[0].tool_results[0]
    assert outcome.is_error and "model down" in outcome.content


def test_a_task_too_short_to_say_what_is_asked_is_refused_before_the_sub_agent_runs() -> None:
    sub = _researcher([[call("final_answer", answer="Paris")]])
    manager_model = ScriptedModel(
        [
            fenced("c = researcher('France')"),
            fenced("final_answer(researcher('What is the capital of France?'))"),
        ]
    )
    result = CodeAgent([], manager_model, managed_agents=[sub]).run("Ask", return_full_result=True)
    first = result.memory.action_steps()[0].error
    assert first is not None and "researcher needs a complete task in plain words" in first.message
    assert "not just 'France'" in first.message
    assert result.output == "Paris" and len(sub.model.requests) == 1  # the short task never ran


# ---- one engine, four entry points -----------------------------------------------------------


def _script() -> ScriptedModel:
    return ScriptedModel([fenced("v = add(2, 2)\nprint(v)"), "no code here", fenced("final_answer(v)")])


def _shape(steps: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (
            type(s).__name__,
            getattr(s, "model_output", None),
            getattr(s, "code_action", None),
            getattr(s, "observations", None),
            getattr(s, "error", None),
            getattr(s, "action_output", None),
        )
        for s in steps
    ]


def test_run_arun_stream_astream_produce_the_same_steps() -> None:
    via_run = CodeAgent([add], _script()).run("t", return_full_result=True)
    via_arun = asyncio.run(CodeAgent([add], _script()).arun("t", return_full_result=True))
    via_stream = _final(list(CodeAgent([add], _script()).stream("t")))

    async def collect() -> list[Event]:
        return [e async for e in CodeAgent([add], _script()).astream("t")]

    via_astream = _final(asyncio.run(collect()))
    expected = _shape(via_run.steps)
    assert len(expected) == 5
    for other in (via_arun, via_stream, via_astream):
        assert _shape(other.steps) == expected


def test_stream_event_order() -> None:
    events = list(CodeAgent([add], _script()).stream("t"))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[-2:] == ["FinalAnswer", "RunFinished"]
    assert any(isinstance(e, ModelDelta) for e in events)
    assert [e.step for e in events if isinstance(e, StepFinished)] == [1, 2, 3]
    assert any(isinstance(e, CodeAction) for e in events)
    assert any(isinstance(e, Observation) and e.text.strip() == "4" for e in events)
    assert isinstance(events[-2], FinalAnswer)


def test_run_works_inside_a_running_event_loop() -> None:
    async def inside() -> Any:
        return CodeAgent([], ScriptedModel([fenced("final_answer(1)")])).run("x")

    assert asyncio.run(inside()) == 1


# ---- memory ----------------------------------------------------------------------------------


def test_memory_round_trips_and_the_loop_continues_from_it() -> None:
    model = ScriptedModel(
        ["1. add", fenced("s = add(20, 22)\nprint(s)"), [call("x")], fenced("final_answer(s)")]
    )
    agent = CodeAgent([add], model, planning_interval=10)
    agent.run("Add", max_steps=2, return_full_result=True)
    saved = agent.memory.to_json()
    restored = Memory.from_json(saved)
    assert restored == agent.memory
    assert restored.to_json() == saved
    assert isinstance(restored.steps[1], PlanningStep)

    follow = ScriptedModel([fenced("final_answer(42)")])
    resumed = CodeAgent([add], follow)
    resumed.memory = restored
    assert resumed.run("Now answer", reset=False) == 42
    history = [m.content for m in follow.requests[0]]
    assert any("s = add(20, 22)" in t for t in history) and history[-1] == "Task: Now answer"


def _final(events: list[Event]) -> Any:
    finished = [e for e in events if isinstance(e, RunFinished) and e.depth == 0]
    assert len(finished) == 1
    return finished[0].result


def test_a_model_failure_ends_the_run_typed_with_memory_intact() -> None:
    from codeloop import ModelError

    model = ScriptedModel([fenced("x = 1\nprint(x)"), ConnectionError("server went away")])
    agent = CodeAgent([], model)
    with pytest.raises(ModelError, match="server went away") as info:
        agent.run("t")
    result = info.value.result
    assert result is not None and result.state is RunState.ERROR and result.output is None
    assert isinstance(info.value.__cause__, ConnectionError)
    assert [type(s).__name__ for s in agent.memory.steps] == ["TaskStep", "ActionStep"]
    assert agent.memory.action_steps()[0].observations.strip() == "1"


def test_tool_calling_agent_plans_and_recovers_from_a_reply_without_a_call() -> None:
    model = ScriptedModel(
        [
            "1. add the numbers\n2. answer",
            "Let me think about which tool to use.",  # no call at all: parse failure, fed back
            [call("add", a=40, b=2)],
            [call("final_answer", answer=42)],
        ]
    )
    agent = ToolCallingAgent([add], model, planning_interval=5)
    result = agent.run("Add 40 and 2", return_full_result=True)
    assert result.output == 42
    kinds = [type(s).__name__ for s in result.memory.steps]
    assert kinds == ["TaskStep", "PlanningStep", "ActionStep", "ActionStep", "ActionStep", "FinalAnswerStep"]
    first = result.memory.action_steps()[0]
    assert first.error is not None and first.error.type == "AgentParsingError"
    assert "final_answer" in last_user_text(model, 2)
    system = model.requests[1][0]
    assert system.role is Role.SYSTEM and system.content == agent.system_prompt


def test_import_codeloop_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, codeloop; heavy = [m for m in ('pydantic', 'jinja2', 'openai', 'rich', 'pydantic_monty')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
