"""OpenAIModel against the real `openai` SDK talking to a local server that replays recorded
provider traffic (tests/data/wire) or scripted responses. The SDK is never mocked."""

from __future__ import annotations

import itertools
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest

from codeloop.errors import ConfigurationError, ModelError, ModelHTTPError, RetryBudgetExhausted
from codeloop.messages import ChatMessage, ImageContent, MessageDelta, Role, ToolCall
from codeloop.models._text import StopScanner, TextFilter
from codeloop.models.base import assemble_message
from codeloop.models.capabilities import ModelCapabilities, capabilities_for, provider_for_url
from codeloop.models.openai import (
    LOCAL_PLACEHOLDER_KEY,
    OpenAIModel,
    OpenAIServerModel,
    to_openai_messages,
    to_openai_tools,
)
from codeloop.models.retry import RetryingModel, RetryPolicy

from faults import FakeClock
from helpers import (
    CODE_ANSWER,
    USAGE_CHUNK,
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

__all__ = ["replay"]  # the pytest fixture, imported so tests here can use it


def model_for(server: ReplayServer, model_id: str, prefix: str = "/v1", **kwargs: Any) -> OpenAIModel:
    return OpenAIModel(model_id, api_base=server.url(prefix), api_key="test", **kwargs)


# -- plain requests --------------------------------------------------------------------------------
async def test_text_response() -> None:
    with ReplayServer.from_fixture("openai/chat_text.yaml") as server:
        model = model_for(server, "gpt-4o")
        answer = await model.agenerate([user("What is the capital of France?")])
    assert answer.role is Role.ASSISTANT
    assert answer.content == "The capital of France is Paris."
    assert answer.finish_reason == "stop"
    assert answer.reasoning is None and answer.tool_calls == ()
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.cached_tokens) == (14, 7, 0)
    assert answer.raw.id == "chatcmpl-Bu8vBIrB8kIWKRyTcpEEPncjhHtMU"
    assert sent_matches_recorded(server, 0)
    assert "stream" not in server.bodies[0] and "tools" not in server.bodies[0]


async def test_tool_call_then_tool_result_follow_up() -> None:
    tools = [schema("get_temperature", city="string")]
    with ReplayServer.from_fixture("openai/chat_tool_call_then_tool_result.yaml") as server:
        model = model_for(server, "gpt-4.1-mini")
        history = [system("You are a helpful assistant."), user("What is the temperature in Tokyo?")]
        first = await model.agenerate(history, tools=tools)
        assert first.finish_reason == "tool_calls" and first.content == ""
        assert first.tool_calls == (
            ToolCall(id="call_bhZkmIKKItNGJ41whHUHB7p9", name="get_temperature", arguments={"city": "Tokyo"}),
        )
        history += [first, tool_result(first.tool_calls[0], "20.0")]
        second = await model.agenerate(history, tools=tools)
    assert second.content == "The temperature in Tokyo is currently 20.0 degrees Celsius."
    assert second.usage is not None and second.usage.input_tokens == 75
    sent = server.bodies[1]
    assert sent["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_bhZkmIKKItNGJ41whHUHB7p9",
        "content": "20.0",
    }
    assert sent_matches_recorded(server, 0) and sent_matches_recorded(server, 1)
    assert sent["tools"][0]["type"] == "function"
    assert sent["tools"][0]["function"]["name"] == "get_temperature"


async def test_parallel_tool_calls_then_tool_results() -> None:
    tools = [schema("create_file", path="string"), schema("delete_file", path="string")]
    with ReplayServer.from_fixture("openai/chat_parallel_tool_calls_then_tool_results.yaml") as server:
        model = model_for(server, "gpt-4o")
        history = [
            system("Just call tools without asking for confirmation."),
            user("Delete the file `.env` and create `test.txt`"),
        ]
        first = await model.agenerate(history, tools=tools)
        assert [(c.name, c.arguments) for c in first.tool_calls] == [
            ("delete_file", {"path": ".env"}),
            ("create_file", {"path": "test.txt"}),
        ]
        results = [tool_result(first.tool_calls[0], "true"), tool_result(first.tool_calls[1], "Success")]
        second = await model.agenerate([*history, first, *results], tools=tools)
    assert second.content.startswith("The file `.env` has been deleted")
    tool_messages = [m for m in server.bodies[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == [c.id for c in first.tool_calls]
    assert sent_matches_recorded(server, 1)


async def test_groq_parallel_tool_calls() -> None:
    tools = [schema("get_weather", city="string"), schema("final_result", city="string", summary="string")]
    with ReplayServer.from_fixture("groq/chat_parallel_tool_calls.yaml") as server:
        model = model_for(
            server, "meta-llama/llama-4-scout-17b-16e-instruct", "/openai/v1", tool_choice="required"
        )
        answer = await model.agenerate([user("Get weather for Paris and summarize")], tools=tools)
    assert [(c.id, c.name, c.arguments) for c in answer.tool_calls] == [
        ("rew01jq49", "get_weather", {"city": "Paris"}),
        ("gbpypqxpx", "final_result", {"city": "Paris", "summary": "Current weather in Paris"}),
    ]
    assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (779, 65)
    assert server.bodies[0]["tool_choice"] == "required"


# -- reasoning ---------------------------------------------------------------------------------------
async def test_reasoning_tokens_in_usage() -> None:
    with ReplayServer.from_fixture("openai/chat_reasoning_o3_mini_usage.yaml") as server:
        model = model_for(server, "o3-mini", max_completion_tokens=100)
        answer = await model.agenerate([user("hello")])
    assert answer.content == "Hello there! How can I help you today?"
    assert answer.usage is not None and answer.usage.reasoning_tokens == 64
    assert server.bodies[0]["max_completion_tokens"] == 100
    assert sent_matches_recorded(server, 0, ("model", "messages", "max_completion_tokens"))


async def test_deepseek_reasoning_content() -> None:
    with ReplayServer.from_fixture("deepseek/chat_reasoning_content.yaml") as server:
        model = model_for(server, "deepseek-reasoner", prefix="")
        answer = await model.agenerate([user("How do I cross the street?")])
    assert answer.reasoning is not None and answer.reasoning.startswith(
        "Okay, the user is asking how to cross"
    )
    assert answer.content.startswith("Crossing the street safely")
    assert "Okay, the user" not in answer.content
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.reasoning_tokens) == (
        12,
        789,
        415,
    )


async def test_huggingface_think_tags_are_split_from_content() -> None:
    with ReplayServer.from_fixture("huggingface/chat_reasoning_think_tags_deepseek_r1.yaml") as server:
        model = model_for(server, "deepseek-ai/DeepSeek-R1", "/together/v1")
        answer = await model.agenerate([user("hello")])
    assert answer.content == "Hello! \U0001f44b How can I help you today?"
    assert answer.reasoning is not None
    assert answer.reasoning.startswith('Hmm, the user just said "hello".')
    assert answer.reasoning.endswith("Keeping it simple but friendly feels right here.")
    assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (4, 197)
    assert "tools" not in server.bodies[0]  # no empty tool list is sent


# -- streaming ---------------------------------------------------------------------------------------
async def test_stream_text_with_usage() -> None:
    with ReplayServer.from_fixture("openai/chat_stream_text.yaml") as server:
        deltas = await collect(model_for(server, "gpt-4o"), [user("What is the capital of Mexico?")])
    assert len([d for d in deltas if d.content]) == 8  # one per recorded content chunk
    message = assemble_message(deltas)
    assert message.content == "The capital of Mexico is Mexico City."
    assert message.finish_reason == "stop"
    assert message.usage is not None and (message.usage.input_tokens, message.usage.output_tokens) == (14, 8)
    assert server.bodies[0]["stream"] is True
    assert server.bodies[0]["stream_options"] == {"include_usage": True}
    assert sent_matches_recorded(server, 0, ("model", "messages", "stream", "stream_options"))


async def test_stream_tool_call_deltas_then_streamed_follow_up() -> None:
    tools = [schema("get_capital", country="string")]
    with ReplayServer.from_fixture("openai/chat_stream_tool_call_then_stream_text.yaml") as server:
        model = model_for(server, "gpt-4o-mini")
        history = [user("What is the capital of the UK? Use the tool, then answer.")]
        deltas = await collect(model, history, tools=tools)
        fragments = [part.arguments for d in deltas for part in d.tool_calls]
        assert fragments == ["", '{"', "country", '":"', "UK", '"}']
        first = assemble_message(deltas)
        assert first.tool_calls == (
            ToolCall(id="call_ZR5UUuTt3pf61kjwAJIYdVMj", name="get_capital", arguments={"country": "UK"}),
        )
        assert first.finish_reason == "tool_calls"
        assert first.usage is not None and first.usage.output_tokens == 15
        history += [first, tool_result(first.tool_calls[0], "London")]
        second = assemble_message(await collect(model, history, tools=tools))
    assert second.content == "The capital of the UK is London."
    assert server.bodies[1]["messages"][-1]["role"] == "tool"
    assert server.bodies[1]["messages"][-1]["tool_call_id"] == "call_ZR5UUuTt3pf61kjwAJIYdVMj"
    assert sent_matches_recorded(server, 1)


async def test_stream_parallel_tool_calls() -> None:
    tools = [schema("get_country"), schema("get_product_name")]
    with ReplayServer.from_fixture("openai/chat_stream_parallel_tool_calls.yaml") as server:
        model = model_for(server, "gpt-4o", tool_choice="required")
        message = assemble_message(await collect(model, [user("Tell me")], tools=tools))
    assert [(c.id, c.name, c.arguments) for c in message.tool_calls] == [
        ("call_3rqTYrA6H21AYUaRGP4F66oq", "get_country", {}),
        ("call_Xw9XMKBJU48kAAd78WgIswDx", "get_product_name", {}),
    ]
    assert message.usage is not None and message.usage.input_tokens == 364


async def test_openrouter_error_chunk_inside_stream_raises() -> None:
    deltas: list[MessageDelta] = []
    with ReplayServer.from_fixture("openrouter/chat_stream_reasoning_then_error_chunk.yaml") as server:
        model = model_for(server, "minimax/minimax-m2:free", "/api/v1", max_completion_tokens=10)
        with pytest.raises(ModelError, match="Token limit reached") as caught:
            async for delta in model.astream([user("Hello there")]):
                deltas.append(delta)
    assert "".join(d.reasoning for d in deltas) == "We need to respond to a greeting. The user"
    error = caught.value
    assert isinstance(error, ModelHTTPError)
    assert error.code == "400" and error.status_code is None and not error.retryable
    assert isinstance(error.__cause__, openai.APIError)


# -- errors ------------------------------------------------------------------------------------------
OPENROUTER_429 = "openrouter/chat_error_429_rate_limited_retried.yaml"


async def test_openrouter_429_is_one_request_per_call() -> None:
    """The adapter makes exactly one request: the SDK's own retries are off."""
    with ReplayServer.from_fixture(OPENROUTER_429, interactions=[0]) as server:
        model = model_for(server, "google/gemini-2.0-flash-exp:free", "/api/v1")
        with pytest.raises(ModelHTTPError) as caught:
            await model.agenerate([system("Be helpful."), user("Tell me a joke.")])
    error = caught.value
    assert error.status_code == 429 and error.retryable and error.retry_after is None  # none recorded
    assert "429" in str(error) and "Provider returned error" in str(error)
    assert "temporarily rate-limited upstream" in str(error)  # OpenRouter's upstream detail
    assert isinstance(error.__cause__, openai.RateLimitError)
    assert len(server.requests) == 1


async def test_openrouter_429_fixture_is_retried() -> None:
    clock = FakeClock()
    server = ReplayServer.from_fixture(OPENROUTER_429)
    server.replies.append(completion_reply("Why did the scarecrow win an award?"))
    with server:
        model = model_for(server, "google/gemini-2.0-flash-exp:free", "/api/v1")
        retried = RetryingModel(model, RetryPolicy(jitter=0, sleep=clock.sleep, clock=clock))
        answer = await retried.agenerate([system("Be helpful."), user("Tell me a joke.")])
    assert answer.content == "Why did the scarecrow win an award?"
    assert clock.sleeps == [1.0, 2.0, 4.0]  # three 429s without Retry-After: exponential backoff
    assert len(server.requests) == 4 and all(sent_matches_recorded(server, i) for i in range(3))


async def test_openrouter_429_fixture_spends_the_budget() -> None:
    clock = FakeClock()
    with ReplayServer.from_fixture(OPENROUTER_429) as server:
        model = model_for(server, "google/gemini-2.0-flash-exp:free", "/api/v1", max_retries=2)
        assert model.retry_policy is not None  # max_retries=2: three attempts in all
        policy = RetryPolicy(max_attempts=model.retry_policy.max_attempts, sleep=clock.sleep, clock=clock)
        with pytest.raises(RetryBudgetExhausted) as caught:
            await RetryingModel(model, policy).agenerate([system("Be helpful."), user("Tell me a joke.")])
    assert caught.value.attempts == 3 and caught.value.last_error.status_code == 429
    assert len(server.requests) == 3 and server.remaining == 0


async def test_bad_request_400_is_not_retried() -> None:
    clock = FakeClock()
    with ReplayServer.from_fixture("openai/chat_error_400_unsupported_value.yaml") as server:
        # as recorded: a client that sends o1-mini a system message (as an unknown server would get)
        model = model_for(server, "o1-mini", capabilities=ModelCapabilities())
        retried = RetryingModel(model, RetryPolicy(sleep=clock.sleep, clock=clock))
        with pytest.raises(ModelHTTPError) as caught:
            await retried.agenerate([system("You are a helpful assistant."), user("Hello")])
    assert sent_matches_recorded(server, 0)
    assert len(server.requests) == 1 and clock.sleeps == []
    error = caught.value
    assert type(error) is ModelHTTPError
    assert error.status_code == 400 and not error.retryable and error.code == "unsupported_value"
    assert "400" in str(error)
    assert "Unsupported value: 'messages[0].role' does not support 'system' with this model." in str(error)
    assert isinstance(error.__cause__, openai.BadRequestError)


async def test_connection_error_is_retryable_model_error() -> None:
    port = closed_port()  # nothing listens there
    model = OpenAIModel("m", api_base=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ModelHTTPError, match="could not reach") as caught:
        await model.agenerate([user("hi")])
    assert caught.value.retryable and caught.value.status_code is None


# -- stop sequences ----------------------------------------------------------------------------------
async def test_stop_truncated_client_side_when_not_supported() -> None:
    with ReplayServer([completion_reply(CODE_ANSWER)]) as server:
        model = model_for(server, "m", supports_stop=False)
        answer = await model.agenerate([user("2+2?")], stop=["<end_code>", "Observation:"])
    assert answer.content == "Thought: add.\n```py\nprint(1 + 1)\n```"
    assert answer.finish_reason == "stop"
    assert "stop" not in server.bodies[0]


async def test_stop_sent_when_supported_and_still_enforced() -> None:
    stops = ["<end_code>", "Observation:", "a", "b", "c"]
    with ReplayServer([completion_reply(CODE_ANSWER)]) as server:  # a server that ignores `stop`
        answer = await model_for(server, "m").agenerate([user("2+2?")], stop=stops)
    assert server.bodies[0]["stop"] == stops[:4]  # OpenAI's limit; the rest is enforced here
    assert answer.content == "Thought: "  # cut at "a" of "add"


async def test_server_rejecting_stop_is_asked_again_without_it() -> None:
    rejection = {
        "error": {
            "message": "Unsupported parameter: 'stop' is not supported with this model.",
            "type": "invalid_request_error",
            "param": "stop",
            "code": "unsupported_parameter",
        }
    }
    replies = [Reply.json(rejection, status=400), completion_reply(CODE_ANSWER), completion_reply("x")]
    with ReplayServer(replies) as server:
        model = model_for(server, "a-reasoning-model-not-in-the-table")
        assert model.supports_stop
        answer = await model.agenerate([user("2+2?")], stop=["<end_code>"])
        assert answer.content.endswith("```") and not model.supports_stop
        await model.agenerate([user("again")], stop=["<end_code>"])  # no second rejection
    assert [("stop" in body) for body in server.bodies] == [True, False, False]


async def test_stop_in_stream_split_across_chunks() -> None:
    pieces = ["Thought: add.\n```py\nprint(1 + 1)\n```<e", "nd_co", "de>\nObser", "vation: 2", "."]
    events = [
        chunk(role="assistant", content=""),
        *[chunk(p) for p in pieces],
        chunk(finish="length"),
        USAGE_CHUNK,
    ]
    with ReplayServer([Reply.sse(events)]) as server:
        model = model_for(server, "m", supports_stop=False)
        deltas = await collect(model, [user("2+2?")], stop=["<end_code>"])
    message = assemble_message(deltas)
    assert message.content == "Thought: add.\n```py\nprint(1 + 1)\n```"
    assert message.finish_reason == "stop"
    assert all("<e" not in d.content for d in deltas)
    assert "stop" not in server.bodies[0]


async def test_think_tags_in_stream_split_across_chunks() -> None:
    pieces = ["<thi", "nk>\nLet me", " think.</th", "ink>\n\n", "The answer", " is 4."]
    events = [chunk(p) for p in pieces] + [chunk(finish="stop"), USAGE_CHUNK]
    with ReplayServer([Reply.sse(events)]) as server:
        deltas = await collect(model_for(server, "m"), [user("2+2?")])
    message = assemble_message(deltas)
    assert (message.reasoning, message.content) == ("Let me think.", "The answer is 4.")
    assert message.usage is not None and message.usage.output_tokens == 30


@pytest.mark.parametrize(
    "text",
    [
        "<think>\nplan a</thinking> b\n</think>\n\nAnswer <end_code> tail",
        "  plain answer with <think> inside <end_code>",
        "<thin",
        "<think>unterminated reasoning",
        "almost a stop <end_cod",
    ],
)
def test_text_filter_is_independent_of_chunking(text: str) -> None:
    whole = TextFilter(["<end_code>"])
    content, reasoning = whole.feed(text)
    tail = whole.flush()
    expected = (content + tail[0], (reasoning + tail[1]).strip())
    for cut_a, cut_b in itertools.combinations(range(1, len(text)), 2):
        streamed = TextFilter(["<end_code>"])
        parts = [streamed.feed(p) for p in (text[:cut_a], text[cut_a:cut_b], text[cut_b:])]
        parts.append(streamed.flush())
        got = ("".join(p[0] for p in parts), "".join(p[1] for p in parts).strip())
        assert got == expected, (cut_a, cut_b)


def test_stop_scanner_holds_back_only_possible_prefixes() -> None:
    scanner = StopScanner(["Observation:"])
    assert scanner.feed("value is 3. Obs") == "value is 3. "
    assert scanner.feed("cure") == "Obscure"
    assert scanner.feed(" Observation: x") == " " and scanner.stopped
    assert scanner.feed("more") == "" and scanner.flush() == ""


# -- capabilities ------------------------------------------------------------------------------------
async def test_o1_mini_system_prompt_goes_as_user_message_without_tools() -> None:
    """What the 400 fixture shows o1-mini refusing is never sent to it."""
    with ReplayServer([completion_reply("Hi!")]) as server:
        model = model_for(server, "o1-mini", max_tokens=50, tool_choice="auto")
        answer = await model.agenerate([system("Be brief."), user("Hello")], tools=[schema("look")])
    assert answer.content == "Hi!"
    sent = server.bodies[0]
    assert [m["role"] for m in sent["messages"]] == ["user", "user"]
    assert sent["messages"][0]["content"] == "Be brief."
    assert "tools" not in sent and "tool_choice" not in sent  # JSON calls in the text instead
    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent


async def test_reasoning_model_gets_no_stop_and_a_developer_role_yet_behaves_the_same() -> None:
    events = [chunk(p) for p in ["Thought: add.\n```py\nprint(1 + 1)\n```<end", "_code>\nObservation: 2"]]
    replies = [completion_reply(CODE_ANSWER), Reply.sse([*events, chunk(finish="length")])]
    with ReplayServer(replies) as server:
        model = model_for(server, "o3")
        answer = await model.agenerate([system("sys"), user("2+2?")], stop=["<end_code>", "Observation:"])
        streamed = assemble_message(await collect(model, [user("2+2?")], stop=["<end_code>"]))
    assert answer.content == streamed.content == "Thought: add.\n```py\nprint(1 + 1)\n```"
    assert answer.finish_reason == streamed.finish_reason == "stop"
    assert all("stop" not in body for body in server.bodies)
    assert server.bodies[0]["messages"][0] == {"role": "developer", "content": "sys"}


def test_settings_a_model_refuses_fail_when_the_model_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match=r"'o3-mini' does not accept temperature, top_p"):
        OpenAIModel("o3-mini", api_key="k", temperature=0, top_p=0.5)
    with pytest.raises(ConfigurationError, match="reasoning_effort"):
        OpenAIModel("gpt-4o", api_key="k", reasoning_effort="high")  # at api.openai.com
    with pytest.raises(ConfigurationError, match="response_format"):
        OpenAIModel("o1-mini", api_key="k", response_format={"type": "json_object"})
    allowed = OpenAIModel("o3-mini", api_key="k", capabilities=ModelCapabilities(), temperature=0)
    assert allowed.completion_kwargs == {"temperature": 0}
    local = OpenAIModel("gpt-4o", api_base="http://127.0.0.1:8000/v1", reasoning_effort="high")
    assert local.provider == "openai-compatible" and local.capabilities == ModelCapabilities()


async def test_capabilities_override_per_instance() -> None:
    stops = ["a1", "a2", "a3", "a4", "a5", "a6"]
    caps = ModelCapabilities(system_role="developer", max_stop_sequences=None)
    with ReplayServer([completion_reply("x"), completion_reply("y"), completion_reply("z")]) as server:
        await model_for(server, "o3", capabilities=caps).agenerate([system("s")], stop=stops)
        await model_for(server, "o3", supports_stop=True).agenerate([system("s")], stop=stops)
        await model_for(server, "qwen", supports_stop=False).agenerate([system("s")], stop=stops)
    first, second, third = server.bodies
    assert first["stop"] == stops and first["messages"][0]["role"] == "developer"
    assert second["stop"] == stops[:4] and second["messages"][0]["role"] == "developer"
    assert "stop" not in third and third["messages"][0]["role"] == "system"


def test_capability_table_lookup() -> None:
    assert capabilities_for("o1-mini-2024-09-12").system_role == "user"
    assert not capabilities_for("o1-mini").tool_calls
    o3 = capabilities_for("O3-mini")
    assert (o3.stop, o3.system_role, o3.max_tokens_field) == (False, "developer", "max_completion_tokens")
    assert not capabilities_for("gpt-5-mini").stop and capabilities_for("gpt-5-chat-latest").stop
    assert not capabilities_for("gpt-4o", "openai").reasoning_effort
    assert capabilities_for("gpt-4o", "openai-compatible") == ModelCapabilities()
    assert not capabilities_for("grok-4-0709", "xai").stop and capabilities_for("grok-4", "groq").stop
    assert capabilities_for("qwen2.5-coder", "openai-compatible") == ModelCapabilities()
    assert provider_for_url(None) == "openai"
    assert provider_for_url("https://api.openai.com/v1") == "openai"
    assert provider_for_url("https://my-res.openai.azure.com/openai") == "azure"
    assert provider_for_url("https://api.x.ai/v1") == "xai"
    assert provider_for_url("https://openrouter.ai/api/v1") == "openrouter"
    assert provider_for_url("http://127.0.0.1:8080/v1") == "openai-compatible"


# -- configuration and conversion --------------------------------------------------------------------
def test_local_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with ReplayServer([completion_reply("hi")]) as server:
        model = OpenAIModel("local-model", api_base=server.url("/v1"))
        assert model.generate([user("hi")]).content == "hi"
    assert server.requests[0].headers["authorization"] == f"Bearer {LOCAL_PLACEHOLDER_KEY}"
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as raised:
        OpenAIModel("gpt-4o", api_base="https://api.example.com/v1")
    assert str(raised.value) == (  # said once, in codeloop's terms, not the SDK's text glued to it
        "OpenAIModel(model_id='gpt-4o', api_base='https://api.example.com/v1') has no API key: pass "
        "api_key=... or set OPENAI_API_KEY (a server on this machine needs none: pass its api_base, "
        "e.g. 'http://127.0.0.1:8080/v1')."
    )


_ONLY_THE_SDKS_HTTP_LIBRARY = """
import importlib.abc, sys
import openai
sdk_http = openai.DefaultAsyncHttpxClient.__mro__[1].__module__.partition(".")[0]
other = {"httpx": "httpx2", "httpx2": "httpx"}[sdk_http]
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == other:
            raise ModuleNotFoundError(f"No module named {other!r} (refused by the test)")
sys.modules.pop(other, None)
sys.meta_path.insert(0, Refuse())
from codeloop.messages import ChatMessage, Role
from codeloop.models.openai import OpenAIModel
from codeloop.models.openai_responses import OpenAIResponsesModel
OpenAIResponsesModel("m", api_base=sys.argv[1])._make_client()
print(OpenAIModel("m", api_base=sys.argv[1]).generate([ChatMessage(role=Role.USER, content="hi")]).content)
"""


def test_local_servers_use_only_the_sdks_own_http_library() -> None:
    """openai 3 is built on `httpx2`, earlier releases on `httpx`; a fresh install has only the
    one its SDK needs, so codeloop must never import the other (it did, and the README's first
    command failed with "No module named 'httpx'")."""
    with ReplayServer([completion_reply("hi")]) as server:
        done = subprocess.run(
            [sys.executable, "-c", _ONLY_THE_SDKS_HTTP_LIBRARY, server.url("/v1")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hi"


def test_env_key_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with ReplayServer([completion_reply("hi")]) as server:
        OpenAIServerModel("m", api_base=server.url("/v1")).generate([user("hi")])
    assert server.requests[0].headers["authorization"] == "Bearer sk-from-env"
    assert OpenAIServerModel is OpenAIModel


def test_sync_wrappers(replay: Any) -> None:
    server = replay(
        [completion_reply("one"), completion_reply("two"), Reply.sse([chunk("thr"), chunk("ee")])]
    )
    model = model_for(server, "m", temperature=0)
    # each sync call runs on a fresh event loop: the adapter must not reuse the old loop's client
    assert model.generate([user("a")]).content == "one"
    assert model([user("b")]).content == "two"
    assert [d.content for d in model.generate_stream([user("c")])] == ["thr", "ee"]
    assert all(body["temperature"] == 0 for body in server.bodies)


def test_message_conversion() -> None:
    image = ImageContent(data=b"\x89PNG", mime_type="image/png")
    call = ToolCall(id="call_1", name="look", arguments={"at": "x"})
    messages = [
        ChatMessage(role=Role.SYSTEM, content="sys"),
        ChatMessage(role=Role.USER, content="see", images=(image,)),
        ChatMessage(role=Role.ASSISTANT, content="", tool_calls=(call,), reasoning="hidden"),
        ChatMessage(role=Role.TOOL, content="seen", tool_call_id="call_1", images=(image,)),
        ChatMessage(role=Role.ASSISTANT, content="done"),
    ]
    converted = to_openai_messages(messages, {"system": "developer"})
    assert converted == [
        {"role": "developer", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": '{"at": "x"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "seen"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}],
        },
        {"role": "assistant", "content": "done"},
    ]


def test_tool_schema_conversion() -> None:
    wire_tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert to_openai_tools([{"name": "g"}, wire_tool]) == [
        {
            "type": "function",
            "function": {"name": "g", "description": "", "parameters": {"type": "object", "properties": {}}},
        },
        wire_tool,
    ]


def test_import_is_lazy_and_missing_sdk_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sdk_loaded_by_import("codeloop.models.openai", "openai") == "False"
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'codeloop\[openai\]'"):
        OpenAIModel("m", api_key="k")


# -- the replay server itself ------------------------------------------------------------------------
def test_replay_server_splits_sse_and_flags_unexpected_requests() -> None:
    server = ReplayServer.from_fixture("openai/chat_stream_text.yaml")
    reply = server.replies[0]
    assert len(reply.pieces()) == 12 and b"".join(reply.pieces()) == reply.body.encode()
    assert all(piece.endswith(b"\n\n") for piece in reply.pieces())
    with server:
        request = urllib.request.Request(server.url("/v1/embeddings"), data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 418
        assert server.errors == ["expected POST /v1/chat/completions, got POST /v1/embeddings"]
        server.errors.clear()
