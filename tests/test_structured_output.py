"""Structured outputs (`output_type=`) on both agents, with the scripted model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from codeloop import (
    CodeAgent,
    ConfigurationError,
    MaxStepsExceeded,
    RunState,
    ScriptedModel,
    ToolCallingAgent,
)
from codeloop.agents.output import OutputSpec, OutputValidationError
from codeloop.messages import Role, ToolCall
from codeloop.models.openai import OpenAIModel
from codeloop.tools import tool

from wire import ReplayServer, Reply

call = ScriptedModel.call
N_SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


class City(BaseModel):
    name: str
    population: int


def fenced(code: str) -> str:
    return f"Thought: answer.\n```python\n{code}\n```"


def task_text(model: ScriptedModel) -> str:
    return next(m.content for m in model.requests[0] if m.role is Role.USER)


def test_code_agent_pydantic_output_valid_first_time() -> None:
    model = ScriptedModel([fenced("final_answer({'name': 'Paris', 'population': 2100000})")])
    result = CodeAgent([], model, output_type=City).run("Biggest French city?", return_full_result=True)
    assert result.state is RunState.SUCCESS
    assert isinstance(result.output, City)
    assert result.output == City(name="Paris", population=2100000)
    assert '"population":{"type":"integer"}' in task_text(model)  # the model is told the shape
    assert "title" not in task_text(model)  # compact


def test_code_agent_invalid_answer_is_fed_back_then_fixed() -> None:
    model = ScriptedModel(
        [
            fenced("final_answer({'name': 'Paris', 'population': 'many'})"),
            fenced("final_answer({'name': 'Paris', 'population': 2100000})"),
        ]
    )
    result = CodeAgent([], model, output_type=City).run("city?", return_full_result=True)
    assert result.state is RunState.SUCCESS and result.output.population == 2100000
    first = result.memory.action_steps()[0]
    assert first.error is not None and first.error.type == "OutputValidationError"
    seen = model.requests[1][-1].content
    assert "population" in seen and "valid integer" in seen and "'many'" in seen


def test_tool_calling_agent_json_answer_and_native_schema() -> None:
    model = ScriptedModel(
        [
            [call("final_answer", answer='{"name": "Lyon"}')],  # JSON text, missing a field
            [call("final_answer", answer={"name": "Lyon", "population": 520000})],
        ]
    )
    agent = ToolCallingAgent([], model, output_type=City)
    result = agent.run("city?", return_full_result=True)
    assert result.output == City(name="Lyon", population=520000)
    first = result.memory.action_steps()[0]
    assert first.error is not None and "population: Field required" in first.error.message
    final = next(s for s in agent._tool_schemas() if s["name"] == "final_answer")
    assert final["parameters"]["properties"]["answer"]["required"] == ["name", "population"]
    assert "matching the schema of its `answer`" in task_text(model)  # no second copy of it


def test_tool_calling_agent_accepts_the_bare_object() -> None:
    bare = ToolCall(id="c1", name="final_answer", arguments={"name": "Nice", "population": 340000})
    model = ScriptedModel([[bare]])
    result = ToolCallingAgent([], model, output_type=City).run("city?", return_full_result=True)
    assert result.output == City(name="Nice", population=340000)


@pytest.mark.parametrize(
    ("output_type", "answer", "expected"),
    [
        (int, "'42'", 42),
        (list[str], "['a', 'b']", ["a", "b"]),
        (dict[str, float], "{'x': 1}", {"x": 1.0}),
        (N_SCHEMA, "{'n': 3}", {"n": 3}),
    ],
)
def test_each_kind_of_output_type(output_type: Any, answer: str, expected: Any) -> None:
    model = ScriptedModel([fenced(f"final_answer({answer})")])
    result = CodeAgent([], model, output_type=output_type).run("x", return_full_result=True)
    assert result.state is RunState.SUCCESS
    assert result.output == expected and type(result.output) is type(expected)


def test_json_schema_output_type_errors_are_fed_back() -> None:
    model = ScriptedModel(
        [[call("final_answer", answer={"n": "three"})], [call("final_answer", answer={"n": 3})]]
    )
    result = ToolCallingAgent([], model, output_type=N_SCHEMA).run("x", return_full_result=True)
    assert result.output == {"n": 3}
    error = result.memory.action_steps()[0].error
    assert error is not None and "n: 'three' is not of type 'integer'" in error.message


def test_never_valid_ends_with_max_steps() -> None:
    model = ScriptedModel([fenced("final_answer('no idea')")] * 2 + [fenced("final_answer('still no')")])
    agent = CodeAgent([], model, output_type=City, max_steps=3, max_repeats=None)
    result = agent.run("city?", return_full_result=True)
    assert result.state is RunState.MAX_STEPS and result.output is None
    assert all(s.error and s.error.type == "OutputValidationError" for s in result.memory.action_steps())
    with pytest.raises(MaxStepsExceeded):
        CodeAgent([], ScriptedModel([fenced("final_answer(1)")]), output_type=City, max_steps=1).run("x")


def test_output_spec_messages_and_configuration() -> None:
    spec = OutputSpec.of(list[int])
    assert spec is not None and spec.validate("[1, 2]") == [1, 2]  # JSON text is read
    with pytest.raises(OutputValidationError) as info:
        spec.validate(["a"] * 9)
    assert len(info.value.problems) == 9 and "... and 4 more" in str(info.value)
    assert OutputSpec.of(None) is None
    with pytest.raises(ConfigurationError):
        OutputSpec.of({"type": "no-such-type"})
    with pytest.raises(ConfigurationError):
        CodeAgent([], ScriptedModel([]), output_type=object())


def test_no_output_type_leaves_the_task_alone() -> None:
    model = ScriptedModel([fenced("final_answer(1)")])
    CodeAgent([], model).run("just this")
    assert task_text(model) == "Task: just this"


# ---- provider-native structured output (ToolCallingAgent) -------------------------------------


def test_tool_calling_agent_sends_the_schema_as_response_format_where_the_model_honours_it() -> None:
    model = ScriptedModel(
        ['{"name": "Paris", "population": "many"}', '{"name": "Paris", "population": 2100000}'],
        native_structured_output=True,
    )
    result = ToolCallingAgent([], model, output_type=City).run(
        "Biggest French city?", return_full_result=True
    )
    assert result.state is RunState.SUCCESS and result.output == City(name="Paris", population=2100000)
    expected = {
        "type": "json_schema",
        "json_schema": {"name": "final_answer", "schema": OutputSpec.of(City).json_schema},
    }  # type: ignore[union-attr]
    assert model.response_formats == [expected, expected]
    first = result.memory.action_steps()[0]  # the text reply was validated as the final answer
    assert first.tool_calls[0].name == "final_answer" and "population" in str(first.error)


def test_response_format_is_not_sent_to_models_that_do_not_honour_it_alongside_tools() -> None:
    model = ScriptedModel([[call("final_answer", answer={"name": "Lyon", "population": 500000})]])
    result = ToolCallingAgent([], model, output_type=City).run("x", return_full_result=True)
    assert result.output == City(name="Lyon", population=500000) and model.response_formats == [None]
    code_model = ScriptedModel(
        [fenced("final_answer({'name': 'Nice', 'population': 1})")], native_structured_output=True
    )
    CodeAgent([], code_model, output_type=City).run("x")  # code actions are not JSON: never sent
    assert code_model.response_formats == [None]


def _completion(content: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59},
    }  # fmt: skip


def test_openai_model_gets_response_format_with_the_tools_and_its_json_reply_is_the_answer() -> None:
    @tool
    def lookup(city: str) -> int:
        """Population of a city.

        Args:
            city: The city's name.
        """
        return 2100000

    reply = Reply.json(_completion('{"name": "Paris", "population": 2100000}'), path="/chat/completions")
    with ReplayServer([reply]) as server:
        model = OpenAIModel("gpt-4o-mini", api_base=server.url("/v1"), api_key="test", provider="openai")
        agent = ToolCallingAgent([lookup], model, output_type=City, stream_outputs=False)
        assert agent.run("Biggest French city?") == City(name="Paris", population=2100000)
        sent = server.requests[0].json
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["name", "population"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["lookup", "final_answer"]
    unknown = OpenAIModel("my-model", api_base="http://127.0.0.1:9/v1", api_key="test")
    assert not unknown.native_structured_output  # an unknown server: off unless its capabilities say so
