"""LiteLLMModel and LiteLLMRouterModel against the real `litellm` package talking to a local
server that replays recorded provider traffic (tests/data/wire) or scripted responses.
litellm is never mocked; it is kept off the network (local cost map, offline mode, no callbacks)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from codeloop import ToolCallingAgent, tool
from codeloop.errors import ConfigurationError, ModelHTTPError
from codeloop.messages import MessageDelta, ToolCall
from codeloop.models.base import assemble_message
from codeloop.models.litellm import LiteLLMModel, LiteLLMRouterModel
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
from wire import ReplayServer, Reply, replay

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
litellm = pytest.importorskip("litellm")

__all__ = ["replay"]  # the pytest fixture, imported so tests here can use it


@pytest.fixture(autouse=True)
def _quiet_litellm() -> Iterator[None]:
    """No "Give Feedback" banner on errors, and no callback that could reach the network."""
    saved = litellm.suppress_debug_info, list(litellm.callbacks), list(litellm.success_callback)
    litellm.suppress_debug_info = True
    litellm.callbacks, litellm.success_callback = [], []
    yield
    litellm.suppress_debug_info, litellm.callbacks, litellm.success_callback = saved


def openai_model(server: ReplayServer, model_id: str, prefix: str = "/v1", **kwargs: Any) -> LiteLLMModel:
    return LiteLLMModel(f"openai/{model_id}", api_base=server.url(prefix), api_key="test", **kwargs)


# -- OpenAI traffic through litellm's openai provider -----------------------------------------------------
async def test_text_response() -> None:
    with ReplayServer.from_fixture("openai/chat_text.yaml") as server:
        answer = await openai_model(server, "gpt-4o").agenerate([user("What is the capital of France?")])
    assert answer.content == "The capital of France is Paris."
    assert answer.finish_reason == "stop" and answer.tool_calls == () and answer.reasoning is None
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.cached_tokens) == (14, 7, 0)
    assert sent_matches_recorded(server, 0)
    body = server.bodies[0]
    assert "stream" not in body and "tools" not in body
    assert "num_retries" not in body and "max_retries" not in body  # litellm's own, not sent
    assert server.requests[0].headers["authorization"] == "Bearer test"


async def test_tool_call_then_tool_result_follow_up() -> None:
    tools = [schema("get_temperature", city="string")]
    with ReplayServer.from_fixture("openai/chat_tool_call_then_tool_result.yaml") as server:
        model = openai_model(server, "gpt-4.1-mini")
        history = [system("You are a helpful assistant."), user("What is the temperature in Tokyo?")]
        first = await model.agenerate(history, tools=tools)
        assert first.finish_reason == "tool_calls"
        assert first.tool_calls == (
            ToolCall(id="call_bhZkmIKKItNGJ41whHUHB7p9", name="get_temperature", arguments={"city": "Tokyo"}),
        )
        history += [first, tool_result(first.tool_calls[0], "20.0")]
        second = await model.agenerate(history, tools=tools)
    assert second.content == "The temperature in Tokyo is currently 20.0 degrees Celsius."
    assert server.bodies[1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_bhZkmIKKItNGJ41whHUHB7p9",
        "content": "20.0",
    }
    assert sent_matches_recorded(server, 0) and sent_matches_recorded(server, 1)
    assert server.bodies[0]["tools"][0]["function"]["name"] == "get_temperature"


async def test_stream_text_with_usage() -> None:
    with ReplayServer.from_fixture("openai/chat_stream_text.yaml") as server:
        deltas = await collect(openai_model(server, "gpt-4o"), [user("What is the capital of Mexico?")])
    message = assemble_message(deltas)
    assert message.content == "The capital of Mexico is Mexico City."
    assert len([d for d in deltas if d.content]) == 8  # one per recorded content chunk
    assert message.finish_reason == "stop"
    assert message.usage is not None and (message.usage.input_tokens, message.usage.output_tokens) == (14, 8)
    assert server.bodies[0]["stream"] is True
    assert server.bodies[0]["stream_options"] == {"include_usage": True}


async def test_stream_tool_call_deltas_then_streamed_follow_up() -> None:
    tools = [schema("get_capital", country="string")]
    with ReplayServer.from_fixture("openai/chat_stream_tool_call_then_stream_text.yaml") as server:
        model = openai_model(server, "gpt-4o-mini")
        history = [user("What is the capital of the UK? Use the tool, then answer.")]
        first = assemble_message(await collect(model, history, tools=tools))
        assert first.tool_calls == (
            ToolCall(id="call_ZR5UUuTt3pf61kjwAJIYdVMj", name="get_capital", arguments={"country": "UK"}),
        )
        assert first.finish_reason == "tool_calls"
        assert first.usage is not None and first.usage.output_tokens == 15
        history += [first, tool_result(first.tool_calls[0], "London")]
        second = assemble_message(await collect(model, history, tools=tools))
    assert second.content == "The capital of the UK is London."
    sent = server.bodies[1]["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_ZR5UUuTt3pf61kjwAJIYdVMj", "content": "London"}
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "get_capital"  # litellm drops `content: null`


async def test_stream_parallel_tool_calls() -> None:
    tools = [schema("get_country"), schema("get_product_name")]
    with ReplayServer.from_fixture("openai/chat_stream_parallel_tool_calls.yaml") as server:
        model = openai_model(server, "gpt-4o", tool_choice="required")
        message = assemble_message(await collect(model, [user("Tell me")], tools=tools))
    assert [(c.name, c.arguments) for c in message.tool_calls] == [
        ("get_country", {}),
        ("get_product_name", {}),
    ]
    assert server.bodies[0]["tool_choice"] == "required"


async def test_deepseek_reasoning_content() -> None:
    with ReplayServer.from_fixture("deepseek/chat_reasoning_content.yaml") as server:
        model = openai_model(server, "deepseek-reasoner", prefix="")
        answer = await model.agenerate([user("How do I cross the street?")])
    assert answer.reasoning is not None and answer.reasoning.startswith(
        "Okay, the user is asking how to cross"
    )
    assert answer.content.startswith("Crossing the street safely") and "Okay, the user" not in answer.content
    assert answer.usage is not None and answer.usage.reasoning_tokens == 415


async def test_reasoning_model_usage_and_max_tokens_field() -> None:
    with ReplayServer.from_fixture("openai/chat_reasoning_o3_mini_usage.yaml") as server:
        model = openai_model(server, "o3-mini", max_tokens=100)  # renamed: the capability table
        answer = await model.agenerate([user("hello")])
    assert answer.content == "Hello there! How can I help you today?"
    assert answer.usage is not None and (answer.usage.output_tokens, answer.usage.reasoning_tokens) == (
        87,
        64,
    )
    assert sent_matches_recorded(server, 0, ("model", "messages", "max_completion_tokens"))
    assert "max_tokens" not in server.bodies[0]


async def test_bad_request_400_is_not_retryable() -> None:
    with ReplayServer.from_fixture("openai/chat_error_400_unsupported_value.yaml") as server:
        model = openai_model(server, "o1-mini")
        with pytest.raises(ModelHTTPError) as caught:
            await model.agenerate([system("You are a helpful assistant."), user("Hello")])
    error = caught.value
    assert error.status_code == 400 and not error.retryable and error.code == "unsupported_value"
    assert "'messages[0].role' does not support 'system' with this model." in str(error)
    assert isinstance(error.__cause__, litellm.BadRequestError)
    assert len(server.requests) == 1


async def test_openrouter_429_is_retryable_and_not_retried_by_litellm() -> None:
    fixture = "openrouter/chat_error_429_rate_limited_retried.yaml"
    with ReplayServer.from_fixture(fixture, interactions=[0]) as server:
        model = openai_model(server, "google/gemini-2.0-flash-exp:free", "/api/v1")
        with pytest.raises(ModelHTTPError) as caught:
            await model.agenerate([system("Be helpful."), user("Tell me a joke.")])
    assert caught.value.status_code == 429 and caught.value.retryable
    assert isinstance(caught.value.__cause__, litellm.RateLimitError)
    assert len(server.requests) == 1


async def test_server_error_carries_retry_after() -> None:
    failure = Reply.json({"error": {"message": "overloaded"}}, status=503, headers={"retry-after-ms": "1500"})
    with ReplayServer([failure]) as server:
        with pytest.raises(ModelHTTPError) as caught:
            await openai_model(server, "gpt-4o").agenerate([user("hi")])
    assert (caught.value.status_code, caught.value.retryable, caught.value.retry_after) == (503, True, 1.5)
    assert len(server.requests) == 1


async def test_openrouter_error_chunk_inside_stream_raises() -> None:
    deltas: list[MessageDelta] = []
    with ReplayServer.from_fixture("openrouter/chat_stream_reasoning_then_error_chunk.yaml") as server:
        model = openai_model(server, "minimax/minimax-m2:free", "/api/v1", max_completion_tokens=10)
        with pytest.raises(ModelHTTPError, match="Token limit reached") as caught:
            async for delta in model.astream([user("Hello there")]):
                deltas.append(delta)
    assert "".join(d.reasoning for d in deltas).startswith("We need to respond to a greeting.")
    error = caught.value  # litellm calls it a mid-stream 500; the SDK's error underneath says 400
    assert error.code == "400" and error.status_code is None and not error.retryable


async def test_stream_ending_without_finish_reason_is_retryable() -> None:
    with ReplayServer([Reply.sse([chunk("The answer"), chunk(" is")])]) as server:
        with pytest.raises(ModelHTTPError, match="broke off") as caught:
            await collect(openai_model(server, "gpt-4o"), [user("2+2?")])
    assert caught.value.retryable and caught.value.status_code is None


async def test_timeout_is_retryable() -> None:
    with FaultServer([Fault.hang()]) as server:
        with pytest.raises(ModelHTTPError, match="timed out") as caught:
            await openai_model(server, "gpt-4o", timeout=0.2).agenerate([user("hi")])
    assert caught.value.retryable and caught.value.code == "timeout" and caught.value.status_code is None


async def test_retry_policy_honours_retry_after_then_succeeds() -> None:
    clock = FakeClock()
    failure = Reply.json({"error": {"message": "slow down"}}, status=429, headers={"retry-after": "3"})
    with ReplayServer([failure, completion_reply("4")]) as server:
        model = RetryingModel(openai_model(server, "gpt-4o"), RetryPolicy(sleep=clock.sleep, clock=clock))
        answer = await model.agenerate([user("2+2?")])
    assert answer.content == "4" and clock.sleeps == [3.0] and len(server.requests) == 2


def test_sync_wrappers_across_event_loops(replay: Any) -> None:
    finished = [chunk("thr"), chunk("ee"), chunk(finish="stop")]
    server = replay([completion_reply("one"), completion_reply("two"), Reply.sse(finished)])
    model = openai_model(server, "gpt-4o")
    assert asyncio.run(model.agenerate([user("a")])).content == "one"  # a loop of its own
    assert model.generate([user("b")]).content == "two"  # codeloop's shared loop
    assert "".join(d.content for d in model.generate_stream([user("c")])) == "three"


async def test_connection_error_is_retryable() -> None:
    port = closed_port()  # nothing listens there
    model = LiteLLMModel("openai/m", api_base=f"http://127.0.0.1:{port}/v1", api_key="test")
    with pytest.raises(ModelHTTPError, match="could not reach") as caught:
        await model.agenerate([user("hi")])
    assert caught.value.retryable and caught.value.status_code is None


# -- stop sequences --------------------------------------------------------------------------------------
async def test_stop_is_sent_and_enforced_client_side() -> None:
    with ReplayServer([completion_reply(CODE_ANSWER)]) as server:  # a server that ignores `stop`
        model = openai_model(server, "gpt-4o")
        answer = await model.agenerate([user("2+2?")], stop=["<end_code>", "Observation:"])
    assert model.supports_stop  # litellm's parameter table says gpt-4o takes `stop`
    assert server.bodies[0]["stop"] == ["<end_code>", "Observation:"]
    assert answer.content == "Thought: add.\n```py\nprint(1 + 1)\n```" and answer.finish_reason == "stop"


async def test_capabilities_keep_stop_from_reasoning_models() -> None:
    with ReplayServer([completion_reply(CODE_ANSWER)]) as server:
        model = openai_model(server, "o3-mini")
        answer = await model.agenerate([system("Be brief."), user("2+2?")], stop=["<end_code>"])
    assert not model.supports_stop and "stop" not in server.bodies[0]
    assert answer.content.endswith("```")  # still cut client-side
    assert server.bodies[0]["messages"][0]["role"] == "developer"


async def test_server_rejecting_stop_is_asked_again_without_it() -> None:
    rejection = {"error": {"message": "Unsupported parameter: 'stop'", "type": "invalid_request_error"}}
    replies = [Reply.json(rejection, status=400), completion_reply(CODE_ANSWER)]
    with ReplayServer(replies) as server:
        model = openai_model(server, "my-proxy-model")
        answer = await model.agenerate([user("2+2?")], stop=["<end_code>"])
    assert answer.content.endswith("```") and not model.supports_stop
    assert [("stop" in body) for body in server.bodies] == [True, False]


async def test_stop_in_stream_closes_it_early() -> None:
    pieces = ["Thought: add.\n```py\nprint(1 + 1)\n```<e", "nd_co", "de>\nObser", "vation: 2"]
    events = [chunk(p) for p in pieces] + [chunk(finish="length"), USAGE_CHUNK]
    with ReplayServer([Reply.sse(events)]) as server:
        model = openai_model(server, "m", supports_stop=False)
        message = assemble_message(await collect(model, [user("2+2?")], stop=["<end_code>"]))
    assert message.content == "Thought: add.\n```py\nprint(1 + 1)\n```" and message.finish_reason == "stop"
    assert "stop" not in server.bodies[0]


# -- Anthropic traffic through litellm's anthropic provider -----------------------------------------------
def claude(server: ReplayServer, model_id: str, **kwargs: Any) -> LiteLLMModel:
    return LiteLLMModel(f"anthropic/{model_id}", api_base=server.url(), api_key="test", **kwargs)


async def test_anthropic_text() -> None:
    with ReplayServer.from_fixture("anthropic/messages_text.yaml") as server:
        model = claude(server, "claude-3-opus-latest", max_tokens=4096)
        answer = await model.agenerate(
            [system("You are a helpful assistant."), user("What is the capital of France?")]
        )
    assert answer.content == "The capital of France is Paris." and answer.finish_reason == "stop"
    assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (20, 10)
    sent = server.bodies[0]
    assert sent["system"][0]["text"] == "You are a helpful assistant."
    assert sent["max_tokens"] == 4096 and server.requests[0].headers["x-api-key"] == "test"


async def test_anthropic_tool_use_then_tool_result() -> None:
    tools = [{**schema("get_weather", city="string"), "description": "Get the current weather for a city."}]
    with ReplayServer.from_fixture("anthropic/messages_tool_use_then_tool_result.yaml") as server:
        model = claude(server, "claude-sonnet-4-5", max_tokens=4096)
        history = [user("What's the weather in Paris?")]
        first = await model.agenerate(history, tools=tools)
        assert first.tool_calls == (
            ToolCall(id="toolu_01WN4AuToBnJyXNQXwQBBebj", name="get_weather", arguments={"city": "Paris"}),
        )
        assert first.finish_reason == "tool_calls"
        history += [first, tool_result(first.tool_calls[0], "Sunny, 22C in Paris")]
        second = await model.agenerate(history, tools=tools)
    assert second.content.startswith("The weather in Paris is currently sunny")
    result = server.bodies[1]["messages"][-1]["content"][0]
    assert (result["type"], result["tool_use_id"]) == ("tool_result", "toolu_01WN4AuToBnJyXNQXwQBBebj")
    assert server.bodies[0]["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}


async def test_anthropic_parallel_tool_use_then_tool_results_in_one_turn() -> None:
    parameters = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    description = "Get the knowledge about the given entity."
    tool = {"name": "retrieve_entity_info", "description": description, "parameters": parameters}
    facts = ["alice is bob's wife", "bob is alice's husband", "charlie is alice's son"]
    facts.append("daisy is bob's daughter and charlie's younger sister")
    with ReplayServer.from_fixture("anthropic/messages_parallel_tool_use_then_tool_results.yaml") as server:
        model = claude(server, "claude-haiku-4-5", max_tokens=4096)
        history = [user("Alice, Bob, Charlie and Daisy are a family. Who is the youngest?")]
        first = await model.agenerate(history, tools=[tool])
        assert [c.arguments for c in first.tool_calls] == [
            {"name": n} for n in ("Alice", "Bob", "Charlie", "Daisy")
        ]
        assert first.content.startswith("I'll help you find out who is the youngest")
        results = [tool_result(call, fact) for call, fact in zip(first.tool_calls, facts, strict=True)]
        second = await model.agenerate([*history, first, *results], tools=[tool])
    assert "Daisy is the youngest" in second.content
    last_turn = server.bodies[1]["messages"][-1]
    assert last_turn["role"] == "user" and [b["tool_use_id"] for b in last_turn["content"]] == [
        c.id for c in first.tool_calls
    ]


async def test_anthropic_thinking_is_reasoning() -> None:
    with ReplayServer.from_fixture("anthropic/messages_thinking.yaml") as server:
        model = claude(
            server, "claude-sonnet-4-0", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 3000}
        )
        answer = await model.agenerate([user("What is 3 + 3?")])
    assert answer.content == '{"response": 6}'
    assert answer.reasoning is not None and answer.reasoning.startswith(
        "The user is asking me to calculate 3 + 3."
    )
    assert server.bodies[0]["thinking"] == {"type": "enabled", "budget_tokens": 3000}


async def test_anthropic_stream_text() -> None:
    with ReplayServer.from_fixture("anthropic/messages_stream_text.yaml") as server:
        model = claude(server, "claude-sonnet-4-5", max_tokens=32000)
        message = assemble_message(await collect(model, [user("What is 1+1? Answer with just the number.")]))
    assert message.content == "2" and message.finish_reason == "stop"
    assert message.usage is not None and message.usage.input_tokens == 20
    assert server.bodies[0]["stream"] is True


async def test_anthropic_400_is_not_retryable() -> None:
    with ReplayServer.from_fixture("anthropic/messages_error_400_invalid_request.yaml") as server:
        model = claude(server, "claude-opus-4-6", max_tokens=4096)
        with pytest.raises(ModelHTTPError, match="does not support effort level") as caught:
            await model.agenerate([user("What is 2+2?")])
    assert caught.value.status_code == 400 and not caught.value.retryable


# -- Router ------------------------------------------------------------------------------------------
def deployments(primary: ReplayServer, backup: ReplayServer) -> list[dict[str, Any]]:
    def params(server: ReplayServer) -> dict[str, Any]:
        return {"model": "openai/gpt-4o", "api_base": server.url("/v1"), "api_key": "test"}

    return [
        {"model_name": "primary", "litellm_params": params(primary)},
        {"model_name": "backup", "litellm_params": params(backup)},
    ]


@pytest.mark.parametrize("status", [429, 500])
async def test_router_falls_back_to_the_second_deployment(status: int) -> None:
    failure = Reply.json({"error": {"message": "unavailable", "type": "server_error"}}, status=status)
    with ReplayServer([failure]) as primary, ReplayServer.from_fixture("openai/chat_text.yaml") as backup:
        model = LiteLLMRouterModel(
            "primary", deployments(primary, backup), client_kwargs={"fallbacks": [{"primary": ["backup"]}]}
        )
        answer = await model.agenerate([user("What is the capital of France?")])
    assert answer.content == "The capital of France is Paris."
    assert (len(primary.requests), len(backup.requests)) == (1, 1)  # no retry of the failed one
    assert sent_matches_recorded(backup, 0)


async def test_router_streams_and_reports_failure_of_every_deployment() -> None:
    failure = Reply.json({"error": {"message": "rate limited"}}, status=429)
    with ReplayServer([failure]) as primary, ReplayServer([failure]) as backup:
        model = LiteLLMRouterModel(
            "primary", deployments(primary, backup), {"fallbacks": [{"primary": ["backup"]}]}
        )
        with pytest.raises(ModelHTTPError) as caught:
            await collect(model, [user("hi")])
    assert caught.value.status_code == 429 and caught.value.retryable
    assert (len(primary.requests), len(backup.requests)) == (1, 1)
    with ReplayServer.from_fixture("openai/chat_stream_text.yaml") as server:
        model = LiteLLMRouterModel("primary", deployments(server, server))
        message = assemble_message(await collect(model, [user("What is the capital of Mexico?")]))
    assert message.content == "The capital of Mexico is Mexico City."
    assert message.usage is not None and message.usage.output_tokens == 8


# -- an agent run ----------------------------------------------------------------------------------------
@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: The first factor.
        b: The second factor.
    """
    return a * b


def test_tool_calling_agent_run_through_litellm() -> None:
    replies = [
        Reply.sse(
            [call_chunk("call_1", "multiply", '{"a": 6, "b": 7}'), chunk(finish="tool_calls"), USAGE_CHUNK]
        ),
        Reply.sse(
            [call_chunk("call_2", "final_answer", '{"answer": 42}'), chunk(finish="tool_calls"), USAGE_CHUNK]
        ),
    ]
    with ReplayServer(replies) as server:
        agent = ToolCallingAgent([multiply], openai_model(server, "gpt-4o"), max_steps=4)
        result = agent.run("What is 6 times 7?", return_full_result=True)
    assert result.succeeded and result.output == 42
    assert result.usage.input_tokens == 6  # two steps, usage read from each stream
    follow_up = server.bodies[1]["messages"]
    assert follow_up[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "42"}
    assert {t["function"]["name"] for t in server.bodies[0]["tools"]} == {"multiply", "final_answer"}


# -- configuration --------------------------------------------------------------------------------------
def test_import_is_lazy_and_missing_sdk_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sdk_loaded_by_import("codeloop.models.litellm", "litellm") == "False"
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'codeloop\[litellm\]'"):
        LiteLLMModel("openai/gpt-4o")


def test_top_level_names() -> None:
    import codeloop

    assert codeloop.LiteLLMModel is LiteLLMModel and codeloop.LiteLLMRouterModel is LiteLLMRouterModel
