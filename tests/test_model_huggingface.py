"""InferenceClientModel against the real `huggingface_hub.AsyncInferenceClient` talking to a local
server that replays recorded provider traffic (tests/data/wire) or scripted responses.
The SDK is never mocked. With `base_url`, the client POSTs `{base_url}/chat/completions`."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from codeloop import ToolCallingAgent, tool
from codeloop.errors import ConfigurationError, ModelHTTPError
from codeloop.messages import MessageDelta, ToolCall
from codeloop.models.base import assemble_message
from codeloop.models.huggingface import InferenceClientModel
from codeloop.models.retry import RetryingModel, RetryPolicy

from faults import FakeClock, Fault, FaultServer
from helpers import (
    CODE_ANSWER,
    USAGE_CHUNK,
    call_chunk,
    chunk,
    closed_port,
    collect,
    completion_reply,
    schema,
    sdk_loaded_by_import,
    sent_matches_recorded,
    system,
    tool_result,
    user,
)
from wire import ReplayServer, Reply

hub = pytest.importorskip("huggingface_hub")


def hf_model(server: ReplayServer, model_id: str, prefix: str = "/v1", **kwargs: Any) -> InferenceClientModel:
    kwargs.setdefault("token", "hf_test")
    return InferenceClientModel(model_id, base_url=server.url(prefix), **kwargs)


# -- the Hugging Face router fixture -----------------------------------------------------------------
async def test_think_tags_become_reasoning_and_bill_to_is_a_header() -> None:
    with ReplayServer.from_fixture("huggingface/chat_reasoning_think_tags_deepseek_r1.yaml") as server:
        model = hf_model(server, "deepseek-ai/DeepSeek-R1", "/together/v1", bill_to="my-org")
        answer = await model.agenerate([user("hello")])
    assert answer.content == "Hello! \U0001f44b How can I help you today?"
    assert answer.reasoning is not None
    assert answer.reasoning.startswith('Hmm, the user just said "hello".')
    assert answer.reasoning.endswith("Keeping it simple but friendly feels right here.")
    assert "<think>" not in answer.content and answer.finish_reason == "stop"
    assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (4, 197)
    request = server.requests[0]
    assert request.path == "/together/v1/chat/completions"
    assert request.headers["x-hf-bill-to"] == "my-org"
    assert request.headers["authorization"] == "Bearer hf_test"
    assert request.json == {
        "model": "deepseek-ai/DeepSeek-R1",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": False,
    }


# -- OpenAI-compatible traffic -------------------------------------------------------------------------
async def test_text_response() -> None:
    with ReplayServer.from_fixture("openai/chat_text.yaml") as server:
        answer = await hf_model(server, "gpt-4o").agenerate([user("What is the capital of France?")])
    assert answer.content == "The capital of France is Paris." and answer.finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.cached_tokens) == (14, 7, 0)
    assert server.requests[0].path == "/v1/chat/completions"
    assert sent_matches_recorded(server, 0)


async def test_tool_call_then_tool_result_follow_up() -> None:
    tools = [schema("get_temperature", city="string")]
    with ReplayServer.from_fixture("openai/chat_tool_call_then_tool_result.yaml") as server:
        model = hf_model(server, "gpt-4.1-mini")
        history = [system("You are a helpful assistant."), user("What is the temperature in Tokyo?")]
        first = await model.agenerate(history, tools=tools)
        assert first.tool_calls == (
            ToolCall(id="call_bhZkmIKKItNGJ41whHUHB7p9", name="get_temperature", arguments={"city": "Tokyo"}),
        )
        assert first.finish_reason == "tool_calls"
        history += [first, tool_result(first.tool_calls[0], "20.0")]
        second = await model.agenerate(history, tools=tools)
    assert second.content == "The temperature in Tokyo is currently 20.0 degrees Celsius."
    assert sent_matches_recorded(server, 0) and sent_matches_recorded(server, 1)


async def test_groq_parallel_tool_calls_with_tool_choice() -> None:
    tools = [schema("get_weather", city="string"), schema("final_result", city="string", summary="string")]
    with ReplayServer.from_fixture("groq/chat_parallel_tool_calls.yaml") as server:
        model = hf_model(
            server, "meta-llama/llama-4-scout-17b-16e-instruct", "/openai/v1", tool_choice="required"
        )
        answer = await model.agenerate([user("Get weather for Paris and summarize")], tools=tools)
    assert [(c.id, c.name) for c in answer.tool_calls] == [
        ("rew01jq49", "get_weather"),
        ("gbpypqxpx", "final_result"),
    ]
    assert server.bodies[0]["tool_choice"] == "required"


async def test_stream_text_with_usage() -> None:
    with ReplayServer.from_fixture("openai/chat_stream_text.yaml") as server:
        deltas = await collect(hf_model(server, "gpt-4o"), [user("What is the capital of Mexico?")])
    message = assemble_message(deltas)
    assert message.content == "The capital of Mexico is Mexico City." and message.finish_reason == "stop"
    assert len([d for d in deltas if d.content]) == 8
    assert message.usage is not None and (message.usage.input_tokens, message.usage.output_tokens) == (14, 8)
    assert sent_matches_recorded(server, 0, ("model", "messages", "stream", "stream_options"))


async def test_stream_tool_call_deltas_then_streamed_follow_up() -> None:
    tools = [schema("get_capital", country="string")]
    with ReplayServer.from_fixture("openai/chat_stream_tool_call_then_stream_text.yaml") as server:
        model = hf_model(server, "gpt-4o-mini")
        history = [user("What is the capital of the UK? Use the tool, then answer.")]
        deltas = await collect(model, history, tools=tools)
        assert [part.arguments for d in deltas for part in d.tool_calls] == [
            "",
            '{"',
            "country",
            '":"',
            "UK",
            '"}',
        ]
        first = assemble_message(deltas)
        assert first.tool_calls == (
            ToolCall(id="call_ZR5UUuTt3pf61kjwAJIYdVMj", name="get_capital", arguments={"country": "UK"}),
        )
        assert first.usage is not None and first.usage.output_tokens == 15
        history += [first, tool_result(first.tool_calls[0], "London")]
        second = assemble_message(await collect(model, history, tools=tools))
    assert second.content == "The capital of the UK is London."
    sent = server.bodies[1]["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_ZR5UUuTt3pf61kjwAJIYdVMj", "content": "London"}
    assert (
        sent[-2]["tool_calls"][0]["id"] == "call_ZR5UUuTt3pf61kjwAJIYdVMj"
    )  # the client drops `content: null`


async def test_unknown_settings_travel_in_extra_body() -> None:
    with ReplayServer([completion_reply("hi")]) as server:
        model = hf_model(server, "m", temperature=0, reasoning_effort="low", extra_body={"top_k": 5})
        await model.agenerate([user("hi")])
    body = server.bodies[0]
    assert (body["temperature"], body["reasoning_effort"], body["top_k"]) == (0, "low", 5)


async def test_stop_is_sent_and_enforced_client_side() -> None:
    stops = ["<end_code>", "Observation:", "x1", "x2", "x3"]
    with ReplayServer([completion_reply(CODE_ANSWER)]) as server:
        answer = await hf_model(server, "m").agenerate([user("2+2?")], stop=stops)
    assert server.bodies[0]["stop"] == stops[:4]
    assert answer.content == "Thought: add.\n```py\nprint(1 + 1)\n```" and answer.finish_reason == "stop"


# -- errors ------------------------------------------------------------------------------------------
async def test_bad_request_400_is_not_retryable() -> None:
    with ReplayServer.from_fixture("openai/chat_error_400_unsupported_value.yaml") as server:
        with pytest.raises(ModelHTTPError) as caught:
            await hf_model(server, "o1-mini").agenerate(
                [system("You are a helpful assistant."), user("Hello")]
            )
    error = caught.value
    assert error.status_code == 400 and not error.retryable and error.code == "unsupported_value"
    assert "'messages[0].role' does not support 'system' with this model." in str(error)
    assert isinstance(error.__cause__, hub.errors.HfHubHTTPError)
    assert len(server.requests) == 1


async def test_openrouter_429_is_retryable() -> None:
    fixture = "openrouter/chat_error_429_rate_limited_retried.yaml"
    with ReplayServer.from_fixture(fixture, interactions=[0]) as server:
        model = hf_model(server, "google/gemini-2.0-flash-exp:free", "/api/v1")
        with pytest.raises(ModelHTTPError, match="Provider returned error") as caught:
            await model.agenerate([system("Be helpful."), user("Tell me a joke.")])
    assert caught.value.status_code == 429 and caught.value.retryable
    assert len(server.requests) == 1  # the client does not retry by itself


async def test_streamed_request_failing_carries_retry_after() -> None:
    failure = Reply.json({"error": "Model is overloaded"}, status=503, headers={"retry-after": "7"})
    with ReplayServer([failure]) as server:
        with pytest.raises(ModelHTTPError, match="Model is overloaded") as caught:
            await collect(hf_model(server, "m"), [user("hi")])
    assert (caught.value.status_code, caught.value.retryable, caught.value.retry_after) == (503, True, 7.0)


async def test_openrouter_error_chunk_inside_stream_raises() -> None:
    deltas: list[MessageDelta] = []
    with ReplayServer.from_fixture("openrouter/chat_stream_reasoning_then_error_chunk.yaml") as server:
        model = hf_model(server, "minimax/minimax-m2:free", "/api/v1", max_tokens=10)
        with pytest.raises(ModelHTTPError, match="Token limit reached") as caught:
            async for delta in model.astream([user("Hello there")]):
                deltas.append(delta)
    assert "".join(d.reasoning for d in deltas) == "We need to respond to a greeting. The user"
    error = caught.value
    assert error.code == "400" and error.status_code is None and not error.retryable


async def test_timeout_is_retryable() -> None:
    with FaultServer([Fault.hang()]) as server:
        with pytest.raises(ModelHTTPError) as caught:
            await hf_model(server, "m", timeout=0.2).agenerate([user("hi")])
    assert caught.value.retryable and caught.value.code == "timeout" and caught.value.status_code is None


async def test_connection_reset_mid_stream_is_retryable() -> None:
    events = [chunk("The answer"), chunk(" is"), chunk(" 4."), chunk(finish="stop")]
    deltas: list[MessageDelta] = []
    with FaultServer([Fault.cut(Reply.sse(events), keep=2)]) as server:
        with pytest.raises(ModelHTTPError, match="could not reach") as caught:
            async for delta in hf_model(server, "m").astream([user("2+2?")]):
                deltas.append(delta)
    assert caught.value.retryable and caught.value.status_code is None
    assert "".join(d.content for d in deltas) == "The answer is"


async def test_retry_policy_honours_retry_after_then_succeeds() -> None:
    clock = FakeClock()
    failure = Reply.json({"error": "rate limited"}, status=429, headers={"retry-after": "3"})
    with ReplayServer([failure, completion_reply("4")]) as server:
        model = RetryingModel(hf_model(server, "m"), RetryPolicy(sleep=clock.sleep, clock=clock))
        answer = await model.agenerate([user("2+2?")])
    assert answer.content == "4" and clock.sleeps == [3.0] and len(server.requests) == 2


async def test_connection_error_is_retryable() -> None:
    port = closed_port()  # nothing listens there
    model = InferenceClientModel("m", base_url=f"http://127.0.0.1:{port}/v1", token="hf_test")
    with pytest.raises(ModelHTTPError, match="could not reach") as caught:
        await model.agenerate([user("hi")])
    assert caught.value.retryable and caught.value.status_code is None


# -- an agent run ----------------------------------------------------------------------------------------
@tool
def word_length(word: str) -> int:
    """Count the letters of a word.

    Args:
        word: The word.
    """
    return len(word)


def test_tool_calling_agent_run_through_the_inference_client() -> None:
    think = chunk("<think>I should count.</think>")
    replies = [
        Reply.sse(
            [
                think,
                call_chunk("c1", "word_length", '{"word": "banana"}'),
                chunk(finish="tool_calls"),
                USAGE_CHUNK,
            ]
        ),
        Reply.sse(
            [call_chunk("c2", "final_answer", '{"answer": 6}'), chunk(finish="tool_calls"), USAGE_CHUNK]
        ),
    ]
    with ReplayServer(replies) as server:
        agent = ToolCallingAgent([word_length], hf_model(server, "Qwen/Qwen2.5-72B-Instruct"), max_steps=4)
        result = agent.run("How many letters has 'banana'?", return_full_result=True)
    assert result.succeeded and result.output == 6
    assert result.usage.output_tokens == 60
    step = result.memory.action_steps()[0]
    assert step.tool_results[0].content == "6"
    assert server.bodies[1]["messages"][-1] == {"role": "tool", "tool_call_id": "c1", "content": "6"}
    assert all("<think>" not in str(m.get("content")) for m in server.bodies[1]["messages"])  # never fed back


# -- configuration --------------------------------------------------------------------------------------
def test_import_is_lazy_and_missing_sdk_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sdk_loaded_by_import("codeloop.models.huggingface", "huggingface_hub") == "False"
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'codeloop\[huggingface\]'"):
        InferenceClientModel("m")


def test_token_and_api_key_are_the_same_thing() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        InferenceClientModel("m", token="hf_a", api_key="hf_b")
    import codeloop

    assert codeloop.InferenceClientModel is InferenceClientModel
