"""Input, output and tool guards on both agents, with the scripted model."""

from __future__ import annotations

from typing import Any

import pytest

from codeloop import CodeAgent, RunState, ScriptedModel, ToolCallingAgent
from codeloop.agents.guardrails import GuardrailTripped, GuardResult
from codeloop.messages import Role

from helpers import add

call = ScriptedModel.call


def fenced(code: str) -> str:
    return f"Thought: go.\n```python\n{code}\n```"


def task_text(model: ScriptedModel) -> str:
    return next(m.content for m in model.requests[0] if m.role is Role.USER)


# ---- input guards ----------------------------------------------------------------------------


def no_secrets(task: str) -> GuardResult:
    return GuardResult.stop("the task holds a password") if "password" in task else GuardResult.allow()


async def polite(task: str) -> GuardResult | None:
    return GuardResult.reject("answer in French") if "French" not in task else None


def test_input_guard_stop_ends_the_run_before_any_model_call() -> None:
    model = ScriptedModel([])
    result = CodeAgent([], model, input_guards=[no_secrets]).run("my password is x", return_full_result=True)
    assert result.state is RunState.GUARDRAIL and model.requests == []
    assert isinstance(result.exception, GuardrailTripped)
    assert (result.exception.guard, result.exception.kind) == ("no_secrets", "input")
    with pytest.raises(GuardrailTripped, match="no_secrets: the task holds a password"):
        ToolCallingAgent([], ScriptedModel([]), input_guards=[no_secrets]).run("password?")


def test_async_input_guard_reject_is_shown_with_the_task() -> None:
    model = ScriptedModel([[call("final_answer", answer="Bonjour")]])
    assert ToolCallingAgent([], model, input_guards=[polite]).run("Greet me") == "Bonjour"
    assert "Note from input guard polite: answer in French" in task_text(model)


# ---- output guards ---------------------------------------------------------------------------


def test_output_guard_reject_then_accept_sync_and_async() -> None:
    async def not_negative(answer: Any) -> bool:
        return answer >= 0

    model = ScriptedModel([fenced("final_answer(-1)"), fenced("final_answer(2)")])
    result = CodeAgent([], model, output_guards=[not_negative]).run("x", return_full_result=True)
    assert result.output == 2
    error = result.memory.action_steps()[0].error
    assert error is not None and error.type == "OutputGuardRejected"
    assert "output guard not_negative" in model.requests[1][-1].content

    model = ScriptedModel([[call("final_answer", answer="bad")], [call("final_answer", answer="ok")]])
    guard = lambda answer, memory: GuardResult.reject("too short") if answer == "bad" else None  # noqa: E731
    assert ToolCallingAgent([], model, output_guards=[guard]).run("x") == "ok"


def test_output_guard_stop() -> None:
    def leak(answer: Any) -> GuardResult:
        return GuardResult.stop("leaks a secret")

    result = ToolCallingAgent(
        [], ScriptedModel([[call("final_answer", answer="s3cret")]]), output_guards=[leak]
    ).run("x", return_full_result=True)
    assert result.state is RunState.GUARDRAIL and result.output is None
    assert isinstance(result.exception, GuardrailTripped) and result.exception.kind == "output"


def test_final_answer_checks_still_run_first() -> None:
    seen: list[str] = []

    def check(answer: Any, memory: Any) -> bool:
        seen.append("check")
        return True

    def guard(answer: Any) -> None:
        seen.append("guard")

    model = ScriptedModel([fenced("final_answer(1)")])
    CodeAgent([], model, final_answer_checks=[check], output_guards=[guard]).run("x")
    assert seen == ["check", "guard"]


def test_output_guards_see_the_validated_output() -> None:
    seen: list[Any] = []
    model = ScriptedModel([fenced("final_answer('7')")])
    CodeAgent([], model, output_type=int, output_guards=[seen.append]).run("x")
    assert seen == [7]


# ---- tool guards -----------------------------------------------------------------------------


def small_numbers(name: str, arguments: dict[str, Any]) -> GuardResult | None:
    if any(isinstance(v, int) and v > 100 for v in arguments.values()):
        return GuardResult.reject(f"{name}: numbers over 100 are not allowed")
    return None


async def no_add(name: str, arguments: dict[str, Any]) -> GuardResult:
    return GuardResult.stop(f"{name} is forbidden") if name == "add" else GuardResult.allow()


def test_code_agent_tool_guard_reject_raises_in_the_snippet() -> None:
    model = ScriptedModel([fenced("print(add(500, b=1))"), fenced("final_answer(add(1, b=2))")])
    result = CodeAgent([add], model, tool_guards=[small_numbers]).run("x", return_full_result=True)
    assert result.output == 3
    error = result.memory.action_steps()[0].error
    assert error is not None and "add: numbers over 100 are not allowed" in error.message


def test_code_agent_tool_guard_sees_positional_arguments_by_name() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    model = ScriptedModel([fenced("final_answer(add(1, b=2))")])
    CodeAgent([add], model, tool_guards=[lambda n, a: seen.append((n, a))]).run("x")
    assert seen == [("add", {"a": 1, "b": 2})]


def test_code_agent_tool_guard_stop_ends_the_run_even_if_caught() -> None:
    code = "try:\n    add(1, b=2)\nexcept Exception:\n    pass\nfinal_answer(0)"
    result = CodeAgent([add], ScriptedModel([fenced(code)]), tool_guards=[no_add]).run(
        "x", return_full_result=True
    )
    assert result.state is RunState.GUARDRAIL
    assert isinstance(result.exception, GuardrailTripped) and result.exception.reason == "add is forbidden"


def test_tool_calling_agent_tool_guards_reject_and_stop() -> None:
    model = ScriptedModel([[call("add", a=500, b=1)], [call("final_answer", answer="done")]])
    result = ToolCallingAgent([add], model, tool_guards=[small_numbers]).run("x", return_full_result=True)
    assert result.output == "done"
    first = result.memory.action_steps()[0].tool_results[0]
    assert first.is_error and "numbers over 100" in first.content

    model = ScriptedModel([[call("add", a=1, b=1)]])
    with pytest.raises(GuardrailTripped, match="add is forbidden"):
        ToolCallingAgent([add], model, tool_guards=[no_add]).run("x")


def test_a_guard_that_raises_rejects() -> None:
    def strict(name: str, arguments: dict[str, Any]) -> None:
        raise ValueError("nope")

    model = ScriptedModel([[call("add", a=1, b=1)], [call("final_answer", answer=1)]])
    result = ToolCallingAgent([add], model, tool_guards=[strict]).run("x", return_full_result=True)
    assert "ValueError: nope" in result.memory.action_steps()[0].tool_results[0].content
