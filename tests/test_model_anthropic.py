"""AnthropicModel against the real `anthropic` SDK talking to a local server that replays recorded
Anthropic traffic (tests/data/wire/anthropic) or scripted responses. The SDK is never mocked."""

from __future__ import annotations

import json
import sys
from typing import Any

import anthropic
import pytest

from codeloop import AnthropicModel, CodeAgent, ToolCallingAgent, tool
from codeloop.errors import ConfigurationError, ModelHTTPError
from codeloop.messages import ChatMessage, ImageContent, Role, ToolCall
from codeloop.models.anthropic import LOCAL_PLACEHOLDER_KEY, to_anthropic_messages, to_anthropic_tools
from codeloop.models.base import assemble_message
from codeloop.models.retry import RetryingModel, RetryPolicy

from faults import FakeClock, Fault, FaultServer
from helpers import (
    CODE_ANSWER,
    closed_port,
    collect,
    schema,
    sdk_loaded_by_import,
    sent_matches_recorded,
    system,
    tool_result,
    user,
)
from wire import ReplayServer, Reply, is_subset, replay

__all__ = ["replay"]  # the pytest fixture, imported so tests here can use it

# the recorded model ids are from recording time; the SDK warns about the retired ones
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

SIGNATURE = "EvQCCkYICxgCKkAF-signed"


# -- helpers -----------------------------------------------------------------------------------------
def model_for(server: ReplayServer, model_id: str = "claude-test", **kwargs: Any) -> AnthropicModel:
    return AnthropicModel(model_id, api_base=server.url(), api_key="test", **kwargs)


def sent_key(server: ReplayServer, index: int = 0) -> str:
    """The API key a request carried (`x-api-key`, or a bearer token in newer SDKs)."""
    headers = server.requests[index].headers
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


# scripted Anthropic responses --------------------------------------------------------------------
def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def thinking(value: str, signature: str = SIGNATURE) -> dict[str, Any]:
    return {"type": "thinking", "thinking": value, "signature": signature}


def tool_use(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


USAGE = {"input_tokens": 30, "output_tokens": 12, "cache_read_input_tokens": 0}


def _message(content: list[dict[str, Any]], stop_reason: str | None, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def message_reply(*blocks: dict[str, Any], stop_reason: str = "end_turn") -> Reply:
    return Reply.json(_message(list(blocks), stop_reason, USAGE))


def _halves(value: str) -> list[str]:
    return [value[: len(value) // 2], value[len(value) // 2 :]]


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    kind = block["type"]
    if kind == "text":
        start, deltas = text(""), [{"type": "text_delta", "text": p} for p in _halves(block["text"])]
    elif kind == "thinking":
        start = thinking("", "")
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _halves(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        start = {**block, "input": {}}
        deltas = [
            {"type": "input_json_delta", "partial_json": p} for p in _halves(json.dumps(block["input"]))
        ]
    return [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}),
        *[
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ],
        ("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def stream_reply(*blocks: dict[str, Any], stop_reason: str = "end_turn") -> Reply:
    message = _message([], None, {"input_tokens": 30, "output_tokens": 1})
    events: list[Any] = [("message_start", {"type": "message_start", "message": message})]
    events.append(("ping", {"type": "ping"}))
    for index, block in enumerate(blocks):
        events += _block_events(index, block)
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    events.append(
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 12}})
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return Reply.sse(events, done=False)


# -- the recorded fixtures -----------------------------------------------------------------------------
async def test_text_response() -> None:
    with ReplayServer.from_fixture("anthropic/messages_text.yaml") as server:
        instructions = server.replies[0].expected_json["system"]  # "You are a helpful assistant.\n\n"
        model = model_for(server, "claude-3-opus-latest")
        answer = await model.agenerate([system(instructions), user("What is the capital of France?")])
    assert answer.role is Role.ASSISTANT
    assert answer.content == "The capital of France is Paris."
    assert answer.finish_reason == "stop"
    assert answer.reasoning is None and answer.tool_calls == ()
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.cached_tokens) == (20, 10, 0)
    assert answer.raw.id == "msg_01Fg1JVgvCYUHWsxrj9GkpEv"
    assert sent_matches_recorded(server, 0, ("model", "max_tokens", "messages", "system", "stream"))
    assert "tools" not in server.bodies[0] and "thinking" not in server.bodies[0]
    assert sent_key(server) == "test"


async def test_tool_use_then_tool_result_follow_up() -> None:
    tools = [schema("get_weather", "Get the current weather for a city.", city="string")]
    with ReplayServer.from_fixture("anthropic/messages_tool_use_then_tool_result.yaml") as server:
        model = model_for(server, "claude-sonnet-4-5", tool_choice="auto")
        history = [user("What's the weather in Paris?")]
        first = await model.agenerate(history, tools=tools)
        assert first.finish_reason == "tool_calls" and first.content == ""
        assert first.tool_calls == (
            ToolCall(id="toolu_01WN4AuToBnJyXNQXwQBBebj", name="get_weather", arguments={"city": "Paris"}),
        )
        assert first.usage is not None and first.usage.output_tokens == 53
        history += [first, tool_result(first.tool_calls[0], "Sunny, 22C in Paris")]
        second = await model.agenerate(history, tools=tools)
    assert second.content.startswith("The weather in Paris is currently sunny with a temperature of 22")
    assert second.finish_reason == "stop"
    keys = ("model", "max_tokens", "messages", "stream", "tools", "tool_choice")
    assert sent_matches_recorded(server, 0, keys) and sent_matches_recorded(server, 1, keys)
    assert server.bodies[1]["messages"][-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01WN4AuToBnJyXNQXwQBBebj",
                "content": "Sunny, 22C in Paris",
                "is_error": False,
            }
        ],
    }


async def test_parallel_tool_use_then_tool_results_in_one_user_turn() -> None:
    fixture = "anthropic/messages_parallel_tool_use_then_tool_results.yaml"
    tools = [schema("retrieve_entity_info", "Get the knowledge about the given entity.", name="string")]
    with ReplayServer.from_fixture(fixture) as server:
        instructions = server.replies[0].expected_json["system"]
        model = model_for(server, "claude-haiku-4-5", tool_choice="auto")
        history = [
            system(instructions),
            user("Alice, Bob, Charlie and Daisy are a family. Who is the youngest?"),
        ]
        first = await model.agenerate(history, tools=tools)
        assert first.content.startswith("I'll help you find out who is the youngest")
        assert [(c.name, c.arguments) for c in first.tool_calls] == [
            ("retrieve_entity_info", {"name": person}) for person in ("Alice", "Bob", "Charlie", "Daisy")
        ]
        facts = ["alice is bob's wife", "bob is alice's husband", "charlie is alice's son"]
        facts.append("daisy is bob's daughter and charlie's younger sister")
        results = [tool_result(call, fact) for call, fact in zip(first.tool_calls, facts, strict=True)]
        second = await model.agenerate([*history, first, *results], tools=tools)
    assert "Daisy is the youngest" in second.content
    sent = server.bodies[1]["messages"]
    assert [turn["role"] for turn in sent] == ["user", "assistant", "user"]  # four results, one turn
    assert [block["tool_use_id"] for block in sent[2]["content"]] == [c.id for c in first.tool_calls]
    keys = ("model", "max_tokens", "messages", "system", "stream", "tools", "tool_choice")
    assert sent_matches_recorded(server, 1, keys)


async def test_stream_text_with_usage() -> None:
    with ReplayServer.from_fixture("anthropic/messages_stream_text.yaml") as server:
        model = model_for(server, "claude-sonnet-4-5", max_tokens=32000)
        deltas = await collect(model, [user("What is 1+1? Answer with just the number.")])
    assert [d.content for d in deltas if d.content] == ["2"]
    assert deltas[-1].finish_reason == "stop" and deltas[-1].usage is not None  # one closing delta
    message = assemble_message(deltas)
    assert message.content == "2" and message.finish_reason == "stop"
    assert message.usage is not None and (message.usage.input_tokens, message.usage.output_tokens) == (20, 5)
    assert server.bodies[0]["stream"] is True
    assert sent_matches_recorded(server, 0, ("model", "max_tokens", "messages", "stream"))


async def test_unstreamed_call_the_sdk_refuses_is_streamed_instead() -> None:
    # the SDK will not send a non-streamed request whose max_tokens could take over 10 minutes
    with ReplayServer.from_fixture("anthropic/messages_stream_text.yaml") as server:
        model = model_for(server, "claude-sonnet-4-5", max_tokens=32000)
        answer = await model.agenerate([user("What is 1+1? Answer with just the number.")])
    assert answer.content == "2" and answer.finish_reason == "stop"
    assert answer.usage is not None and answer.usage.output_tokens == 5
    assert len(server.requests) == 1 and server.bodies[0]["stream"] is True


async def test_stream_tool_use_interleaved_with_server_tool_blocks() -> None:
    fixture = "anthropic/messages_stream_tool_use_with_server_tool_search.yaml"
    with ReplayServer.from_fixture(fixture) as server:
        recorded_tools = server.replies[0].expected_json["tools"]  # deferred tools + a server tool
        model = model_for(server, "claude-sonnet-4-6", tool_choice="auto")
        history = [user("What is the current USD to EUR exchange rate?")]
        deltas = await collect(model, history, tools=recorded_tools)
        fragments = [(part.index, part.arguments) for d in deltas for part in d.tool_calls]
        assert {index for index, _ in fragments} == {4}  # the server tool's input is not a call
        first = assemble_message(deltas)
        assert first.content == (
            "Let me search for a tool that can provide current exchange rate information."
            "\n\nI found the right tool! Let me fetch the current USD to EUR exchange rate for you."
        )
        assert first.tool_calls == (
            ToolCall(
                id="toolu_01EFn5wTNBYA8Reni8rbmnHT",
                name="get_exchange_rate",
                arguments={"from_currency": "USD", "to_currency": "EUR"},
            ),
        )
        assert first.finish_reason == "tool_calls" and first.reasoning is None
        assert first.usage is not None and (first.usage.input_tokens, first.usage.output_tokens) == (
            1591,
            175,
        )
        history += [first, tool_result(first.tool_calls[0], "1 USD = 0.92 EUR")]
        second = assemble_message(await collect(model, history, tools=recorded_tools))
    assert second.content.startswith("The current exchange rate is **1 USD = 0.92 EUR**.")
    assert second.usage is not None and second.usage.output_tokens == 59
    assert sent_matches_recorded(
        server, 0, ("model", "max_tokens", "messages", "stream", "tools", "tool_choice")
    )
    expected, sent = server.replies[1].expected_json, server.bodies[1]
    # the assistant turn goes back as it came, server-tool blocks included
    assert is_subset(expected["messages"][:2], sent["messages"][:2])
    result = sent["messages"][2]["content"][0]
    assert result == {
        "type": "tool_result",
        "tool_use_id": "toolu_01EFn5wTNBYA8Reni8rbmnHT",
        "content": "1 USD = 0.92 EUR",  # recorded as one text block: the same to the API
        "is_error": False,
    }
    assert sent["tools"] == expected["tools"] and sent["tool_choice"] == {"type": "auto"}


async def test_thinking_is_reasoning_never_content() -> None:
    with ReplayServer.from_fixture("anthropic/messages_thinking.yaml") as server:
        instructions = server.replies[0].expected_json["system"]
        model = model_for(server, "claude-sonnet-4-0", thinking={"type": "enabled", "budget_tokens": 3000})
        answer = await model.agenerate([system(instructions), user("What is 3 + 3?")])
    assert answer.content == '{"response": 6}'
    assert answer.reasoning is not None
    assert answer.reasoning.startswith("The user is asking me to calculate 3 + 3.")
    assert "3 + 3 = 6" in answer.reasoning and "calculate" not in answer.content
    assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (107, 75)
    assert sent_matches_recorded(
        server, 0, ("model", "max_tokens", "messages", "system", "stream", "thinking")
    )
    # a later turn does not send this reasoning back: it ended with text, not a tool call
    _, wire = to_anthropic_messages([user("What is 3 + 3?"), answer, user("And 4 + 4?")])
    assert wire[1] == {"role": "assistant", "content": [text('{"response": 6}')]}


async def test_bad_request_400_is_a_non_retryable_model_error() -> None:
    with ReplayServer.from_fixture("anthropic/messages_error_400_invalid_request.yaml") as server:
        model = model_for(server, "claude-opus-4-6", output_config={"effort": "xhigh"})
        with pytest.raises(ModelHTTPError) as caught:
            await model.agenerate([user("What is 2+2?")])
    error = caught.value
    assert error.status_code == 400 and not error.retryable and error.retry_after is None
    assert error.code == "invalid_request_error"
    assert (
        "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium."
        in str(error)
    )
    assert "req_011Ca7jT9AHpgXgdv8igm4z9" in str(error)
    assert isinstance(error.__cause__, anthropic.BadRequestError)
    assert len(server.requests) == 1  # the SDK did not retry
    assert sent_matches_recorded(server, 0, ("model", "max_tokens", "messages", "output_config", "stream"))


# -- thinking with tool use ------------------------------------------------------------------------
async def test_signed_thinking_goes_back_only_within_the_tool_use_cycle() -> None:
    replies = [
        message_reply(
            thinking("Need the price."), tool_use("toolu_1", "get_price", item="pear"), stop_reason="tool_use"
        ),
        message_reply(thinking("Now answer."), text("A pear costs 0.75.")),
        message_reply(text("Two cost 1.5.")),
    ]
    tools = [schema("get_price", item="string")]
    with ReplayServer(replies) as server:
        model = model_for(server, thinking={"type": "enabled", "budget_tokens": 1024})
        history = [user("Price of a pear?")]
        first = await model.agenerate(history, tools=tools)
        assert first.reasoning == "Need the price." and first.content == ""
        history += [first, tool_result(first.tool_calls[0], "0.75")]
        history.append(await model.agenerate(history, tools=tools))
        history.append(user("And two?"))
        await model.agenerate(history, tools=tools)
    in_cycle = server.bodies[1]["messages"][1]
    assert in_cycle["content"][0] == thinking("Need the price.")  # unmodified, signature included
    assert in_cycle["content"][1]["type"] == "tool_use"
    later = server.bodies[2]["messages"]
    assert [turn["role"] for turn in later] == ["user", "assistant", "user", "assistant", "user"]
    assert not any(b["type"] == "thinking" for turn in later for b in turn["content"])
    assert all(body["thinking"] == {"type": "enabled", "budget_tokens": 1024} for body in server.bodies)


# -- agent runs ----------------------------------------------------------------------------------------
@tool
def get_price(item: str) -> float:
    """Look up the price of an item in the shop.

    Args:
        item: The item's name.
    """
    return {"apple": 0.5, "pear": 0.75}[item]


def test_tool_calling_agent_run() -> None:
    replies = [
        message_reply(
            text("Let me look."), tool_use("toolu_a", "get_price", item="pear"), stop_reason="tool_use"
        ),
        message_reply(tool_use("toolu_b", "final_answer", answer=1.5), stop_reason="tool_use"),
    ]
    with ReplayServer(replies) as server:
        agent = ToolCallingAgent([get_price], model_for(server), stream_outputs=False, max_steps=4)
        result = agent.run("What do two pears cost?", return_full_result=True)
    assert result.output == 1.5
    first, second = server.bodies
    assert first["system"] and first["messages"][0]["role"] == "user"
    assert {t["name"] for t in first["tools"]} == {"get_price", "final_answer"}
    assert all("input_schema" in t for t in first["tools"])
    assert second["messages"][-2]["content"] == [
        text("Let me look."),
        tool_use("toolu_a", "get_price", item="pear"),
    ]
    assert second["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "0.75", "is_error": False}
    ]


def test_streamed_tool_calling_agent_with_thinking_keeps_the_cycle_signed() -> None:
    # the agent rebuilds the assistant message from its memory: the model's record supplies the block
    replies = [
        stream_reply(
            thinking("Look it up."), tool_use("toolu_a", "get_price", item="apple"), stop_reason="tool_use"
        ),
        stream_reply(
            thinking("Done."), tool_use("toolu_b", "final_answer", answer=0.5), stop_reason="tool_use"
        ),
    ]
    with ReplayServer(replies) as server:
        model = model_for(server, thinking={"type": "enabled", "budget_tokens": 1024})
        agent = ToolCallingAgent([get_price], model, max_steps=4)
        result = agent.run("Price of an apple?", return_full_result=True)
    assert result.output == 0.5
    assert result.memory.action_steps()[0].reasoning == "Look it up."
    assistant = server.bodies[1]["messages"][-2]
    assert assistant["content"] == [thinking("Look it up."), tool_use("toolu_a", "get_price", item="apple")]
    assert all(body["stream"] is True for body in server.bodies)


def test_code_agent_run() -> None:
    replies = [
        stream_reply(text("Thought: look it up.\n```python\nprint(get_price('apple') * 3)\n```")),
        stream_reply(text("Thought: done.\n```python\nfinal_answer(1.5)\n```")),
    ]
    with ReplayServer(replies) as server:
        agent = CodeAgent([get_price], model_for(server), max_steps=4)
        assert agent.run("What do 3 apples cost?") == 1.5
    first, second = server.bodies
    assert first["stop_sequences"] == ["Observation:"] and "tools" not in first
    assert "1.5" in json.dumps(second["messages"][-1])  # the printed observation went back


# -- stop sequences ----------------------------------------------------------------------------------
async def test_stop_sequences_sent_and_enforced_client_side() -> None:
    with ReplayServer([message_reply(text(CODE_ANSWER))]) as server:  # a server that ignores them
        answer = await model_for(server).agenerate([user("1+1?")], stop=["<end_code>", "Observation:", " \n"])
    assert server.bodies[0]["stop_sequences"] == ["<end_code>", "Observation:"]  # whitespace-only kept back
    assert answer.content == "Thought: add.\n```py\nprint(1 + 1)\n```"
    assert answer.finish_reason == "stop"


async def test_stop_in_stream_split_across_deltas() -> None:
    with ReplayServer([stream_reply(text(CODE_ANSWER))]) as server:  # split inside "<end_code>"
        deltas = await collect(model_for(server), [user("1+1?")], stop=["<end_code>"])
    message = assemble_message(deltas)
    assert message.content == "Thought: add.\n```py\nprint(1 + 1)\n```"
    assert message.finish_reason == "stop"
    assert not any("<end" in d.content for d in deltas)


# -- errors --------------------------------------------------------------------------------------------
def error_reply(status: int, kind: str, headers: dict[str, str] | None = None) -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": f"{kind} happened"}}
    return Reply.json(body, status=status, headers=headers or {})


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (error_reply(429, "rate_limit_error", {"retry-after": "7", "retry-after-ms": "1500"}), 1.5),
        (error_reply(429, "rate_limit_error", {"retry-after": "7"}), 7.0),
        (error_reply(529, "overloaded_error"), None),
        (error_reply(500, "api_error"), None),
        (error_reply(408, "timeout_error"), None),
    ],
)
async def test_retryable_status_errors(reply: Reply, retry_after: float | None) -> None:
    with ReplayServer([reply]) as server:
        with pytest.raises(ModelHTTPError) as caught:
            await model_for(server).agenerate([user("hi")])
    error = caught.value
    assert error.status_code == reply.status and error.retryable and error.retry_after == retry_after
    assert error.code == json.loads(reply.body)["error"]["type"] and "happened" in str(error)
    assert len(server.requests) == 1  # the SDK's retries are off: retrying is the policy's job


async def test_error_event_inside_a_stream() -> None:
    events = [
        ("message_start", json.loads(stream_reply().body.split("data: ")[1].split("\n")[0])),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ]
    with ReplayServer([Reply.sse(events, done=False)]) as server:
        with pytest.raises(ModelHTTPError, match="Overloaded") as caught:
            await collect(model_for(server), [user("hi")])
    error = caught.value
    assert error.status_code is None and error.code == "overloaded_error" and error.retryable


async def test_connection_refused_is_retryable() -> None:
    port = closed_port()  # nothing listens there
    model = AnthropicModel("m", api_base=f"http://127.0.0.1:{port}")
    with pytest.raises(ModelHTTPError, match="could not reach") as caught:
        await model.agenerate([user("hi")])
    assert caught.value.retryable and caught.value.status_code is None


async def test_connection_reset_mid_stream_is_retryable() -> None:
    with FaultServer([Fault.cut(stream_reply(text("Hello there")), keep=4)]) as server:
        model = model_for(server)
        with pytest.raises(ModelHTTPError, match="connection failed") as caught:
            await collect(model, [user("hi")])
    assert caught.value.retryable


async def test_hung_server_times_out_retryably() -> None:
    with FaultServer([Fault.hang()]) as server:
        with pytest.raises(ModelHTTPError) as caught:
            await model_for(server, timeout=0.2).agenerate([user("hi")])
    assert caught.value.retryable and isinstance(caught.value.__cause__, anthropic.APITimeoutError)


async def test_stream_ending_before_the_message_is_retryable() -> None:
    events = stream_reply(text("Hello there")).body.split("event: message_delta")[0]  # cleanly cut short
    with ReplayServer([Reply(body=events, content_type="text/event-stream")]) as server:
        with pytest.raises(ModelHTTPError, match="ended before") as caught:
            await collect(model_for(server), [user("hi")])
    assert caught.value.retryable


async def test_malformed_json_is_retryable() -> None:
    with ReplayServer([Reply(body='{"id": "msg_1", "content": [')]) as server:
        with pytest.raises(ModelHTTPError, match="malformed JSON") as caught:
            await model_for(server).agenerate([user("hi")])
    assert caught.value.retryable


async def test_the_retry_policy_acts_on_what_the_adapter_reports() -> None:
    replies = [
        error_reply(429, "rate_limit_error", {"retry-after-ms": "1500"}),
        error_reply(529, "overloaded_error"),
        Fault.cut(stream_reply(text("Hello there")), keep=4),  # a reset part-way through the stream
        stream_reply(text("Hello again")),
    ]
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=4, jitter=0, sleep=clock.sleep, clock=clock)
    with FaultServer(replies) as server:
        deltas = await collect(RetryingModel(model_for(server), policy), [user("hi")])
    assert clock.sleeps == [1.5, 2.0, 4.0]  # the server's wait, then backoff
    assert assemble_message(deltas).content == "Hello again"  # whatever came before a reset is dropped
    assert len(server.requests) == 4


def test_max_retries_sets_the_retry_policy_never_the_sdk(replay: Any) -> None:
    server = replay([])
    model = model_for(server, max_retries=3)
    assert model.retry_policy == RetryPolicy(max_attempts=4) and model.client.max_retries == 0
    sdk_setting = model_for(server, client_kwargs={"max_retries": 5})
    assert sdk_setting.retry_policy == RetryPolicy(max_attempts=6) and sdk_setting.client.max_retries == 0
    assert model_for(server).retry_policy is None  # the agent's default policy applies


# -- configuration and conversion --------------------------------------------------------------------
def test_sync_wrappers(replay: Any) -> None:
    server = replay([message_reply(text("one")), stream_reply(text("three"))])
    model = model_for(server, temperature=0)
    # each sync call runs on a fresh event loop: the adapter must not reuse the old loop's client
    assert model.generate([user("a")]).content == "one"
    assert "".join(d.content for d in model.generate_stream([user("b")])) == "three"
    assert all(body["temperature"] == 0 for body in server.bodies)
    assert model.client.max_retries == 0


def test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with ReplayServer([message_reply(text("hi"))]) as server:
        assert AnthropicModel("m", api_base=server.url()).generate([user("hi")]).content == "hi"
    assert sent_key(server) == LOCAL_PLACEHOLDER_KEY
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicModel("claude-sonnet-4-5")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    with ReplayServer([message_reply(text("hi"))]) as server:
        AnthropicModel("m", api_base=server.url()).generate([user("hi")])
    assert sent_key(server) == "sk-ant-from-env"


def test_import_is_lazy_and_missing_sdk_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sdk_loaded_by_import("codeloop, codeloop.models.anthropic", "anthropic") == "False"
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'codeloop\[anthropic\]'"):
        AnthropicModel("m", api_key="k")


def test_message_conversion() -> None:
    image = ImageContent(data=b"\x89PNG", mime_type="image/png")
    call = ToolCall(id="toolu_1", name="look", arguments={"at": "x"})
    messages = [
        system("sys one"),
        system("sys two"),
        ChatMessage(role=Role.USER, content="see", images=(image, ImageContent(url="https://x.test/a.jpg"))),
        ChatMessage(role=Role.ASSISTANT, content="", tool_calls=(call,), reasoning="hidden"),
        ChatMessage(role=Role.TOOL, content="seen", tool_call_id="toolu_1", images=(image,)),
        ChatMessage(role=Role.USER, content="Error: try again"),
        system("a late instruction"),
        ChatMessage(role=Role.ASSISTANT, content="   "),  # empty turns are dropped
        ChatMessage(role=Role.ASSISTANT, content="done \n"),
    ]
    png = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}}
    assert to_anthropic_messages(messages) == (
        "sys one\n\nsys two",
        [
            {
                "role": "user",
                "content": [
                    png,
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                    text("see"),
                ],
            },
            {"role": "assistant", "content": [tool_use("toolu_1", "look", at="x")]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": False,
                        "content": [text("seen"), png],
                    },
                    text("Error: try again"),
                    text("a late instruction"),
                ],
            },
            {"role": "assistant", "content": [text("done")]},  # a final assistant turn: no trailing space
        ],
    )


def test_tool_results_lead_their_user_turn_and_unknown_blocks_are_skipped() -> None:
    call = ToolCall(id="toolu_9", name="f", arguments='{"a": 1')  # never parsed: sent as an empty object
    messages = [
        user("go"),
        ChatMessage(role=Role.ASSISTANT, tool_calls=(call,)),
        user("note first"),
        ChatMessage(role=Role.TOOL, content="", tool_call_id="toolu_9"),
    ]
    _, wire = to_anthropic_messages(messages)
    assert wire[1]["content"] == [tool_use("toolu_9", "f")]
    assert wire[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_9", "is_error": False},
        text("note first"),
    ]


async def test_unknown_response_blocks_are_ignored() -> None:
    server_block = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"q": "x"}}
    future_block = {"type": "some_future_block", "payload": 1}
    with ReplayServer([message_reply(server_block, future_block, text("Found it."))]) as server:
        answer = await model_for(server).agenerate([user("search")])
    assert answer.content == "Found it."
    assert answer.tool_calls == ()


def test_tool_schema_and_choice_conversion() -> None:
    wire_tool = {"name": "g", "input_schema": {"type": "object"}}
    server_tool = {"type": "web_search_20250305", "name": "web_search"}
    openai_tool = {"type": "function", "function": {"name": "h", "parameters": {"type": "object"}}}
    assert to_anthropic_tools([{"name": "f"}, wire_tool, server_tool, openai_tool]) == [
        {"name": "f", "input_schema": {"type": "object", "properties": {}}},
        wire_tool,
        server_tool,
        {"name": "h", "input_schema": {"type": "object"}},
    ]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_price", {"type": "tool", "name": "get_price"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice_is_translated_and_sent_only_with_tools(replay: Any, choice: Any, sent: Any) -> None:
    server = replay([message_reply(text("a")), message_reply(text("b"))])
    model = model_for(server, tool_choice=choice)
    model.generate([user("x")], tools=[schema("get_price", item="string")])
    model.generate([user("plan")])
    assert server.bodies[0]["tool_choice"] == sent
    assert "tool_choice" not in server.bodies[1] and "tools" not in server.bodies[1]
