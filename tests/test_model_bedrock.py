"""AmazonBedrockModel on a real boto3 `bedrock-runtime` client, offline.

Converse is driven with botocore's own `Stubber` (which also checks each request against the
expected parameters). ConverseStream cannot be stubbed (the Stubber refuses an event stream as a
response), so its tests serve real AWS event-stream frames from the local replay server and let
botocore parse them, exactly as it parses Bedrock's."""

from __future__ import annotations

import binascii
import json
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from codeloop import ToolCallingAgent
from codeloop.errors import ConfigurationError, ModelHTTPError
from codeloop.messages import ChatMessage, ImageContent, MessageDelta, Role, ToolCall
from codeloop.models.base import assemble_message
from codeloop.models.bedrock import AmazonBedrockModel, to_converse_messages, to_converse_tools
from codeloop.models.retry import RetryingModel, RetryPolicy

from faults import FakeClock
from helpers import add, closed_port, collect, sdk_loaded_by_import, user
from wire import ReplayServer, Reply

stub = pytest.importorskip("botocore.stub")

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def bedrock(**kwargs: Any) -> AmazonBedrockModel:
    kwargs.setdefault("client_kwargs", CREDENTIALS)
    return AmazonBedrockModel(MODEL, region_name="us-east-1", **kwargs)


@pytest.fixture
def model() -> AmazonBedrockModel:
    return bedrock()


@pytest.fixture
def stubber(model: AmazonBedrockModel) -> Iterator[Any]:
    with stub.Stubber(model.client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def reply(*content: dict[str, Any], stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    tokens = {"inputTokens": 10, "outputTokens": 5, **usage}
    tokens.setdefault("totalTokens", sum(tokens.values()))
    return {
        "output": {"message": {"role": "assistant", "content": list(content)}},
        "stopReason": stop_reason,
        "usage": tokens,
        "metrics": {"latencyMs": 100},
    }


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


# -- Converse (Stubber) ---------------------------------------------------------------------------------
async def test_text_reply_and_request_shape(stubber: Any) -> None:
    model = bedrock(inference_config={"maxTokens": 512, "temperature": 0.0})
    expected = {
        "modelId": MODEL,
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "What is the capital of France?"}]}],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.0, "stopSequences": ["Observation:"]},
    }
    with stub.Stubber(model.client) as own:
        own.add_response("converse", reply({"text": "Paris."}), expected)
        answer = await model.agenerate(
            [ChatMessage(role=Role.SYSTEM, content="Be brief."), user("What is the capital of France?")],
            stop=["Observation:"],
        )
    assert (answer.content, answer.finish_reason, answer.tool_calls) == ("Paris.", "stop", ())
    assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (10, 5)


async def test_tool_use_then_tool_result_follow_up(model: AmazonBedrockModel, stubber: Any) -> None:
    tool_use = {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}
    spec = {
        "toolSpec": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "inputSchema": {"json": WEATHER_TOOL["parameters"]},
        }
    }
    question = {"role": "user", "content": [{"text": "Weather in Paris?"}]}
    stubber.add_response(
        "converse",
        reply({"text": "Let me check."}, tool_use, stop_reason="tool_use"),
        {"modelId": MODEL, "messages": [question], "toolConfig": {"tools": [spec]}},
    )
    result_turn = {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "Sunny, 22C"}]}}],
    }
    follow_up = [
        question,
        {"role": "assistant", "content": [{"text": "Let me check."}, tool_use]},
        result_turn,
    ]
    stubber.add_response(
        "converse",
        reply({"text": "It is sunny."}),
        {"modelId": MODEL, "messages": follow_up, "toolConfig": {"tools": [spec]}},
    )
    history = [user("Weather in Paris?")]
    first = await model.agenerate(history, tools=[WEATHER_TOOL])
    assert first.content == "Let me check." and first.finish_reason == "tool_calls"
    assert first.tool_calls == (ToolCall(id="tooluse_1", name="get_weather", arguments={"city": "Paris"}),)
    result = ChatMessage(role=Role.TOOL, content="Sunny, 22C", tool_call_id="tooluse_1", name="get_weather")
    second = await model.agenerate([*history, first, result], tools=[WEATHER_TOOL])
    assert second.content == "It is sunny."


async def test_usage_with_cache_and_reasoning(model: AmazonBedrockModel, stubber: Any) -> None:
    thinking = {"reasoningContent": {"reasoningText": {"text": "3 + 3 is 6.", "signature": "sig"}}}
    usage = {"inputTokens": 20, "outputTokens": 7, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 30}
    stubber.add_response("converse", reply(thinking, {"text": "6"}, **usage))
    answer = await model.agenerate([user("What is 3 + 3?")])
    assert (answer.content, answer.reasoning) == ("6", "3 + 3 is 6.")
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.cached_tokens) == (
        150,
        7,
        100,
    )


async def test_throttling_is_a_retryable_429(model: AmazonBedrockModel, stubber: Any) -> None:
    stubber.add_client_error(
        "converse", "ThrottlingException", "Too many requests, please wait before trying again.", 429
    )
    with pytest.raises(ModelHTTPError, match="Too many requests") as caught:
        await model.agenerate([user("hi")])
    error = caught.value
    assert (error.status_code, error.code, error.retryable) == (429, "ThrottlingException", True)
    assert type(error.__cause__).__name__ == "ThrottlingException"


async def test_validation_error_is_a_non_retryable_400(model: AmazonBedrockModel, stubber: Any) -> None:
    stubber.add_client_error(
        "converse", "ValidationException", "The provided model identifier is invalid.", 400
    )
    with pytest.raises(ModelHTTPError) as caught:
        await model.agenerate([user("hi")])
    assert (caught.value.status_code, caught.value.code, caught.value.retryable) == (
        400,
        "ValidationException",
        False,
    )


async def test_model_rejecting_stop_sequences_is_asked_again_without_them(
    model: AmazonBedrockModel, stubber: Any
) -> None:
    message = "This model doesn't support the stopSequences field. Remove stopSequences and try again."
    stubber.add_client_error("converse", "ValidationException", message, 400)
    stubber.add_response(
        "converse",
        reply({"text": "Thought: x\n<end_code>\nObservation: y"}),
        {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "go"}]}]},
    )
    answer = await model.agenerate([user("go")], stop=["<end_code>"])
    assert answer.content == "Thought: x\n" and answer.finish_reason == "stop"  # cut client-side
    assert not model.supports_stop


async def test_retry_policy_retries_throttling(model: AmazonBedrockModel, stubber: Any) -> None:
    stubber.add_client_error("converse", "ThrottlingException", "Slow down", 429)
    stubber.add_response("converse", reply({"text": "ok"}))
    clock = FakeClock()
    retrying = RetryingModel(model, RetryPolicy(sleep=clock.sleep, clock=clock, jitter=0))
    assert (await retrying.agenerate([user("hi")])).content == "ok"
    assert clock.sleeps == [1.0]


def test_client_built_here_does_not_retry_by_itself(model: AmazonBedrockModel) -> None:
    assert model.client.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert model.client.meta.region_name == "us-east-1"


async def test_connection_error_is_retryable() -> None:
    port = closed_port()  # nothing listens there
    model = bedrock(client_kwargs={**CREDENTIALS, "endpoint_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(ModelHTTPError, match="could not reach Bedrock") as caught:
        await model.agenerate([user("hi")])
    assert caught.value.retryable and caught.value.status_code is None


# -- ConverseStream (real event-stream frames from the local server) --------------------------------------
def frame(headers: dict[str, str], payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message: prelude (lengths + CRC), string headers, JSON payload, CRC."""
    encoded = b"".join(
        struct.pack("B", len(k)) + k.encode() + struct.pack(">BH", 7, len(v)) + v.encode()
        for k, v in headers.items()
    )
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(encoded) + len(body) + 4, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + encoded + body
    return message + struct.pack(">I", binascii.crc32(message))


def event(kind: str, **payload: Any) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, payload)


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, {"message": message})


@dataclass
class EventStreamReply(Reply):
    """A 200 whose body is AWS event-stream frames, written one frame per chunk."""

    frames: list[bytes] = field(default_factory=list)
    content_type: str = "application/vnd.amazon.eventstream"
    path: str | None = "/converse-stream"

    @property
    def is_sse(self) -> bool:  # the replay server then writes `pieces()` as chunks
        return True

    def pieces(self) -> list[bytes]:
        return self.frames


def text_stream(*texts: str, stop_reason: str = "end_turn") -> EventStreamReply:
    deltas = [event("contentBlockDelta", contentBlockIndex=0, delta={"text": t}) for t in texts]
    usage = {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16}
    return EventStreamReply(
        frames=[
            event("messageStart", role="assistant"),
            *deltas,
            event("contentBlockStop", contentBlockIndex=0),
            event("messageStop", stopReason=stop_reason),
            event("metadata", usage=usage, metrics={"latencyMs": 50}),
        ]
    )


def streaming(server: ReplayServer) -> AmazonBedrockModel:
    return bedrock(client_kwargs={**CREDENTIALS, "endpoint_url": server.url()})


async def test_stream_text_with_usage() -> None:
    with ReplayServer([text_stream("The capital", " of France", " is Paris.")]) as server:
        deltas = await collect(streaming(server), [user("Capital of France?")])
    assert [d.content for d in deltas if d.content] == ["The capital", " of France", " is Paris."]
    message = assemble_message(deltas)
    assert message.content == "The capital of France is Paris." and message.finish_reason == "stop"
    assert message.usage is not None and (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)
    assert server.requests[0].path.endswith("/converse-stream")
    assert server.bodies[0]["messages"] == [{"role": "user", "content": [{"text": "Capital of France?"}]}]


async def test_stream_tool_use_deltas() -> None:
    start = {"toolUse": {"toolUseId": "tooluse_9", "name": "get_weather"}}
    frames = [
        event("messageStart", role="assistant"),
        event(
            "contentBlockDelta", contentBlockIndex=0, delta={"reasoningContent": {"text": "Need weather."}}
        ),
        event("contentBlockStart", contentBlockIndex=1, start=start),
        event("contentBlockDelta", contentBlockIndex=1, delta={"toolUse": {"input": '{"ci'}}),
        event("contentBlockDelta", contentBlockIndex=1, delta={"toolUse": {"input": 'ty": "Paris"}'}}),
        event("contentBlockStop", contentBlockIndex=1),
        event("messageStop", stopReason="tool_use"),
        event(
            "metadata",
            usage={"inputTokens": 30, "outputTokens": 9, "totalTokens": 39},
            metrics={"latencyMs": 5},
        ),
    ]
    with ReplayServer([EventStreamReply(frames=frames)]) as server:
        message = assemble_message(await collect(streaming(server), [user("Weather?")], tools=[WEATHER_TOOL]))
    assert message.tool_calls == (ToolCall(id="tooluse_9", name="get_weather", arguments={"city": "Paris"}),)
    assert (message.reasoning, message.finish_reason) == ("Need weather.", "tool_calls")
    assert server.bodies[0]["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


async def test_stream_stop_sequence_cuts_and_closes() -> None:
    with ReplayServer([text_stream("Thought: go\n<end", "_code>\nObservation:", " made up")]) as server:
        message = assemble_message(await collect(streaming(server), [user("go")], stop=["<end_code>"]))
    assert message.content == "Thought: go\n" and message.finish_reason == "stop"
    assert server.bodies[0]["inferenceConfig"] == {"stopSequences": ["<end_code>"]}


async def test_throttling_inside_the_stream_is_retryable() -> None:
    frames = [
        event("messageStart", role="assistant"),
        event("contentBlockDelta", contentBlockIndex=0, delta={"text": "Hel"}),
        exception("throttlingException", "Too many tokens, please wait before trying again."),
    ]
    deltas: list[MessageDelta] = []
    with ReplayServer([EventStreamReply(frames=frames)]) as server:
        with pytest.raises(ModelHTTPError, match="Too many tokens") as caught:
            async for delta in streaming(server).astream([user("hi")]):
                deltas.append(delta)
    assert [d.content for d in deltas] == ["Hel"]
    error = caught.value
    assert (error.status_code, error.code, error.retryable) == (None, "ThrottlingException", True)


async def test_validation_error_inside_the_stream_is_not_retryable() -> None:
    frames = [exception("validationException", "Input is too long for requested model.")]
    with ReplayServer([EventStreamReply(frames=frames)]) as server:
        with pytest.raises(ModelHTTPError) as caught:
            await collect(streaming(server), [user("hi")])
    assert caught.value.code == "ValidationException" and not caught.value.retryable


# -- conversion ---------------------------------------------------------------------------------------
def test_message_conversion_merges_turns_and_never_sends_reasoning() -> None:
    call = ToolCall(id="t1", name="look", arguments={"at": "x"})
    image = ImageContent(data=b"\x89PNG", mime_type="image/png")
    messages = [
        ChatMessage(role=Role.SYSTEM, content="sys"),
        user("first"),
        user("second"),
        ChatMessage(role=Role.ASSISTANT, content="", tool_calls=(call,), reasoning="hidden"),
        ChatMessage(role=Role.TOOL, content="seen", tool_call_id="t1", images=(image,)),
        ChatMessage(role=Role.TOOL, content="", tool_call_id="t2"),
    ]
    system, turns = to_converse_messages(messages)
    assert system == [{"text": "sys"}]
    assert turns == [
        {"role": "user", "content": [{"text": "first"}, {"text": "second"}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "look", "input": {"at": "x"}}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "t1",
                        "content": [
                            {"text": "seen"},
                            {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}},
                        ],
                    }
                },
                {"toolResult": {"toolUseId": "t2", "content": [{"text": ""}]}},
            ],
        },
    ]
    assert to_converse_messages(messages[:2], {"system": "user"})[1] == [
        {"role": "user", "content": [{"text": "sys"}, {"text": "first"}]}
    ]


def test_tool_conversion_accepts_openai_function_tools() -> None:
    wire = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    assert to_converse_tools([wire]) == [
        {"toolSpec": {"name": "f", "description": "f", "inputSchema": {"json": {"type": "object"}}}}
    ]


# -- an agent run ----------------------------------------------------------------------------------------
def test_tool_calling_agent_run_through_bedrock(model: AmazonBedrockModel, stubber: Any) -> None:
    use_add = {"toolUse": {"toolUseId": "tu_1", "name": "add", "input": {"a": 2, "b": 3}}}
    final = {"toolUse": {"toolUseId": "tu_2", "name": "final_answer", "input": {"answer": 5}}}
    stubber.add_response("converse", reply(use_add, stop_reason="tool_use"))
    stubber.add_response("converse", reply(final, stop_reason="tool_use"))
    agent = ToolCallingAgent([add], model, max_steps=4, stream_outputs=False)
    result = agent.run("What is 2 + 3?", return_full_result=True)
    assert result.succeeded and result.output == 5
    assert result.usage.input_tokens == 20 and result.usage.output_tokens == 10


def test_streamed_agent_run_through_bedrock() -> None:
    def tool_use(call_id: str, name: str, arguments: str) -> EventStreamReply:
        start = {"toolUse": {"toolUseId": call_id, "name": name}}
        return EventStreamReply(
            frames=[
                event("contentBlockStart", contentBlockIndex=0, start=start),
                event("contentBlockDelta", contentBlockIndex=0, delta={"toolUse": {"input": arguments}}),
                event("messageStop", stopReason="tool_use"),
            ]
        )

    replies = [
        tool_use("tu_1", "add", '{"a": 20, "b": 22}'),
        tool_use("tu_2", "final_answer", '{"answer": 42}'),
    ]
    with ReplayServer(replies) as server:
        result = ToolCallingAgent([add], streaming(server)).run("20 + 22?", return_full_result=True)
    assert result.succeeded and result.output == 42
    tool_turn = server.bodies[1]["messages"][-1]
    assert tool_turn == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "tu_1", "content": [{"text": "42"}]}}],
    }


# -- configuration --------------------------------------------------------------------------------------
def test_import_is_lazy_and_missing_sdk_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sdk_loaded_by_import("codeloop.models.bedrock", "boto3", "botocore") == "False"
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'codeloop\[bedrock\]'"):
        AmazonBedrockModel(MODEL)


def test_missing_region_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ConfigurationError, match="region"):
        AmazonBedrockModel(MODEL)
    import codeloop

    assert codeloop.AmazonBedrockModel is AmazonBedrockModel
