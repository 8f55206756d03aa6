"""`OpenAIResponsesModel` against a local server speaking OpenAI's Responses API.

The real `openai` SDK parses every reply. The `Response` bodies and SSE event streams here are
hand-written by the small helpers below, after the installed SDK's `openai.types.responses` models
(no recorded Responses API fixtures exist yet): they check codeloop's reading of the documented
shapes, not OpenAI's actual traffic.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from codeloop import OpenAIResponsesModel, ToolCallingAgent
from codeloop.errors import ModelHTTPError
from codeloop.messages import ChatMessage, ImageContent, Role, ToolCall, Usage
from codeloop.models.base import assemble_message

from helpers import add, collect, schema, system, tool_result, user
from wire import ReplayServer, Reply

USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 4},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 2},
    "total_tokens": 19,
}


# -- hand-written Responses API bodies -------------------------------------------------------------
def text_item(text: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [part]}


def call_item(call_id: str, name: str, arguments: str = "", status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(summary: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": summary}]}


def response(*output: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": "gpt-test",
        "status": status,
        "output": list(output),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": USAGE,
    }


def events(*items: tuple[str, dict[str, Any]]) -> Reply:
    """An SSE stream of `(type, fields)` events, numbered; the Responses API sends no [DONE]."""
    body = [(kind, {"type": kind, "sequence_number": i, **data}) for i, (kind, data) in enumerate(items)]
    return Reply.sse(body, done=False)


def text_delta(text: str) -> tuple[str, dict[str, Any]]:
    fields = {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": text, "logprobs": []}
    return ("response.output_text.delta", fields)


def completed(*output: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("response.completed", {"response": response(*output)})


def model_for(server: ReplayServer, **kwargs: Any) -> OpenAIResponsesModel:
    return OpenAIResponsesModel("gpt-test", api_base=server.url("/v1"), api_key="test", **kwargs)


# -- requests and replies --------------------------------------------------------------------------
async def test_text_reply_with_usage_and_reasoning() -> None:
    image = ImageContent(data=b"png", mime_type="image/png")
    messages = [system("Be brief."), ChatMessage(role=Role.USER, content="Hi", images=(image,))]
    with ReplayServer([Reply.json(response(reasoning_item("Greet."), text_item("Hello!")))]) as server:
        message = await model_for(server, temperature=0).agenerate(messages)
    assert message.content == "Hello!"
    assert message.reasoning == "Greet."
    assert message.usage == Usage(input_tokens=12, output_tokens=7, cached_tokens=4, reasoning_tokens=2)
    assert message.finish_reason == "stop"
    (sent,) = server.bodies
    assert server.requests[0].path == "/v1/responses"
    assert sent["instructions"] == "Be brief." and sent["temperature"] == 0 and "stop" not in sent
    assert sent["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Hi"},
                {"type": "input_image", "image_url": image.as_data_url()},
            ],
        }
    ]


async def test_function_call_then_function_call_output() -> None:
    tools = [schema("add", "Add.", a="integer", b="integer")]
    replies = [
        Reply.json(response(call_item("call_1", "add", '{"a": 1, "b": 2}'))),
        Reply.json(response(text_item("3"))),
    ]
    with ReplayServer(replies) as server:
        model = model_for(server)
        first = await model.agenerate([user("1+2?")], tools=tools)
        assert first.tool_calls == (ToolCall(id="call_1", name="add", arguments={"a": 1, "b": 2}),)
        assert first.finish_reason == "tool_calls"
        second = await model.agenerate(
            [user("1+2?"), first, tool_result(first.tool_calls[0], "3")], tools=tools
        )
    assert second.content == "3"
    assert server.bodies[0]["tools"] == [{"type": "function", "strict": False, **tools[0]}]
    assert server.bodies[1]["input"][1:] == [
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "add",
            "arguments": json.dumps({"a": 1, "b": 2}),
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "3"},
    ]


async def test_stop_sequence_is_enforced_client_side() -> None:
    answer = "```py\nprint(1)\n```<end_code>\nObservation: made up"
    with ReplayServer([Reply.json(response(text_item(answer)))]) as server:
        message = await model_for(server).agenerate([user("go")], stop=["<end_code>"])
    assert message.content == "```py\nprint(1)\n```"
    assert message.finish_reason == "stop"
    assert "stop" not in server.bodies[0]


# -- streaming -------------------------------------------------------------------------------------
async def test_streamed_text_assembles_to_the_same_message() -> None:
    stream = events(text_delta("Hel"), text_delta("lo!"), completed(text_item("Hello!")))
    with ReplayServer([stream, Reply.json(response(text_item("Hello!")))]) as server:
        model = model_for(server)
        streamed = assemble_message(await collect(model, [user("Hi")]))
        whole = await model.agenerate([user("Hi")])
    assert server.bodies[0]["stream"] is True
    assert streamed == whole
    assert streamed.usage == Usage(12, 7, 4, 2)


async def test_streamed_function_call_arguments_are_assembled() -> None:
    added = {"output_index": 1, "item": call_item("call_9", "add", status="in_progress")}
    args = {"item_id": "fc_call_9", "output_index": 1}
    stream = events(
        (
            "response.reasoning_summary_text.delta",
            {"item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": "Adding."},
        ),
        ("response.output_item.added", added),
        ("response.function_call_arguments.delta", {**args, "delta": '{"a": 2, '}),
        ("response.function_call_arguments.delta", {**args, "delta": '"b": 5}'}),
        ("response.function_call_arguments.done", {**args, "arguments": '{"a": 2, "b": 5}'}),
        completed(call_item("call_9", "add", '{"a": 2, "b": 5}')),
    )
    with ReplayServer([stream]) as server:
        message = assemble_message(await collect(model_for(server), [user("2+5?")], tools=[schema("add")]))
    assert message.tool_calls == (ToolCall(id="call_9", name="add", arguments={"a": 2, "b": 5}),)
    assert message.reasoning == "Adding."
    assert message.finish_reason == "tool_calls"


async def test_streamed_failure_is_a_retryable_model_error() -> None:
    failed = response(status="failed") | {"error": {"code": "server_error", "message": "boom"}}
    stream = events(text_delta("Hi"), ("response.failed", {"response": failed}))
    with ReplayServer([stream]) as server, pytest.raises(ModelHTTPError, match="boom") as caught:
        await collect(model_for(server), [user("Hi")])
    assert caught.value.retryable and caught.value.code == "server_error"


# -- errors ----------------------------------------------------------------------------------------
async def test_429_is_retryable_with_retry_after() -> None:
    error = {"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit_exceeded"}}
    with ReplayServer([Reply.json(error, status=429, headers={"retry-after": "7"})]) as server:
        with pytest.raises(ModelHTTPError) as caught:
            await model_for(server).agenerate([user("Hi")])
    assert caught.value.status_code == 429 and caught.value.retryable
    assert caught.value.retry_after == 7


async def test_400_is_not_retryable() -> None:
    error = {"error": {"message": "bad input", "type": "invalid_request_error", "param": "input"}}
    with ReplayServer([Reply.json(error, status=400)]) as server:
        with pytest.raises(ModelHTTPError, match="bad input") as caught:
            await model_for(server).agenerate([user("Hi")])
    assert caught.value.status_code == 400 and not caught.value.retryable


# -- agent run -------------------------------------------------------------------------------------
def test_tool_calling_agent_run() -> None:
    replies = [
        Reply.json(response(call_item("call_a", "add", '{"a": 20, "b": 22}'))),
        Reply.json(response(call_item("call_b", "final_answer", '{"answer": 42}'))),
    ]
    with ReplayServer(replies) as server:
        agent = ToolCallingAgent([add], model_for(server), stream_outputs=False, max_steps=4)
        result = agent.run("What is 20 + 22?", return_full_result=True)
    assert result.output == 42
    first, second = server.bodies
    assert {t["name"] for t in first["tools"]} == {"add", "final_answer"}
    assert second["input"][-1] == {"type": "function_call_output", "call_id": "call_a", "output": "42"}
