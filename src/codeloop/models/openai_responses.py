"""OpenAI's Responses API (`client.responses.create`) through the official `openai` SDK.

    model = OpenAIResponsesModel("gpt-4.1-mini", temperature=0)
    reasoner = OpenAIResponsesModel("o4-mini", reasoning={"effort": "low", "summary": "auto"})

System messages become `instructions`; the rest of the conversation becomes `input` items (user and
assistant text, `function_call` items for the assistant's tool calls, `function_call_output` items
for tool results, `input_image` parts for images). Tools are sent as `{"type": "function", ...}`
with `strict: false`, since codeloop's schemas may have optional arguments. Reasoning summaries
arrive as `reasoning`; earlier turns' reasoning is not sent back (the requests are stateless).

The Responses API has no `stop` parameter: stop sequences are always enforced client-side, and a
stream is closed at the first match. Each call is exactly one HTTP request (the SDK never retries);
failures become `ModelHTTPError`s, retried by `codeloop.models.retry` as for `OpenAIModel`.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ModelHTTPError
from ..messages import ChatMessage, MessageDelta, Role, ToolCall, ToolCallDelta, Usage
from ._clients import (
    PerLoopClients,
    import_sdk,
    resolve_api_key,
    sdk_client_kwargs,
)
from ._common import clean_stops, stream_error, translating
from ._text import TextFilter, filter_deltas
from .base import Model, ToolSchema, parse_arguments
from .openai import make_openai_client, translate_openai_error

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["OpenAIResponsesModel", "to_responses_input", "to_responses_tools"]

_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}


class OpenAIResponsesModel(Model):
    """A model served over OpenAI's Responses API (`AsyncOpenAI().responses` underneath).

    `request_kwargs` (temperature, max_output_tokens, reasoning, store, tool_choice...) go into
    every request as given. `api_key` falls back to `OPENAI_API_KEY`; a local `api_base` needs
    none. `client_kwargs` go to `AsyncOpenAI`; its own retries are always off.
    """

    def __init__(
        self,
        model_id: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        timeout: float | None = None,
        **request_kwargs: Any,
    ) -> None:
        (self._openai,) = import_sdk("OpenAIResponsesModel", "openai", "openai")
        self.model_id = model_id
        self.api_base = api_base
        self.request_kwargs = request_kwargs
        key = api_key or os.environ.get("OPENAI_API_KEY")
        self.client_kwargs = sdk_client_kwargs(
            client_kwargs,
            timeout,
            base_url=api_base,
            api_key=resolve_api_key(key, api_base, ("OPENAI_API_KEY",), "OPENAI_BASE_URL"),
        )
        self._clients: PerLoopClients[AsyncOpenAI] = PerLoopClients(self._make_client)
        self.client = self._make_client()  # built now so a missing key fails at construction

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, api_base={self.api_base!r})"

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> ChatMessage:
        request = self._request(messages, tools)
        with translating(self._translate_error):
            response = await self._clients.get(self.client).responses.create(**request)
        return message_from_response(response, clean_stops(stop))

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> AsyncIterator[MessageDelta]:
        """Stream deltas; a client-side stop match ends the stream and closes the connection
        (the final usage is then never received)."""
        request = {**self._request(messages, tools), "stream": True}
        with translating(self._translate_error):
            stream = await self._clients.get(self.client).responses.create(**request)
        async with (
            aclosing(self._deltas(stream)) as deltas,
            aclosing(filter_deltas(deltas, clean_stops(stop))) as kept,
        ):
            async for delta in kept:
                yield delta

    # -- plumbing ----------------------------------------------------------------------------------
    def _request(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSchema] | None) -> dict[str, Any]:
        instructions, items = to_responses_input(messages)
        request: dict[str, Any] = {**self.request_kwargs, "model": self.model_id, "input": items}
        if instructions:
            request["instructions"] = instructions
        if tools:
            request["tools"] = to_responses_tools(tools)
        return request

    async def _deltas(self, stream: Any) -> AsyncGenerator[MessageDelta, None]:
        state = _StreamState()
        try:
            with translating(self._translate_error):
                async for event in stream:
                    delta = state.delta(event, self.model_id)
                    if delta is not None:
                        yield delta
        finally:
            await stream.close()

    def _translate_error(self, err: Exception) -> ModelHTTPError | None:
        return translate_openai_error(err, self._openai, self.model_id)

    def _make_client(self) -> AsyncOpenAI:
        return make_openai_client(self._openai, repr(self), self.api_base, self.client_kwargs)


# -- requests ----------------------------------------------------------------------------------
def to_responses_input(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """(`instructions`: the system messages joined, `input`: the other messages as items)."""
    system = [m.content for m in messages if m.role is Role.SYSTEM and m.content]
    items = [item for m in messages if m.role is not Role.SYSTEM for item in _items(m)]
    return "\n\n".join(system), items


def _items(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role is Role.TOOL:
        output = {"type": "function_call_output", "call_id": message.tool_call_id, "output": message.content}
        if not message.images:
            return [output]
        # a tool message's images follow as a user message, as in the Chat Completions format
        return [output, *_items(ChatMessage(role=Role.USER, images=message.images))]
    role = message.role.value
    items: list[dict[str, Any]] = []
    if message.images and role == "user":
        text = [{"type": "input_text", "text": message.content}] if message.content else []
        parts: list[dict[str, Any]] = [*text]
        parts += [{"type": "input_image", "image_url": image.as_data_url()} for image in message.images]
        items.append({"role": role, "content": parts})
    elif message.content or not message.tool_calls:
        items.append({"role": role, "content": message.content})
    items += [_function_call(call) for call in message.tool_calls]
    return items


def _function_call(call: ToolCall) -> dict[str, Any]:
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    return {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": arguments}


def to_responses_tools(tools: Sequence[ToolSchema]) -> list[dict[str, Any]]:
    """Function schemas as Responses function tools (`strict: false`: arguments may be optional)."""
    return [
        {
            "type": "function",
            "name": t["name"],
            "description": t.get("description", ""),
            "parameters": t.get("parameters") or {"type": "object", "properties": {}},
            "strict": False,
        }
        for t in tools
    ]


# -- responses ---------------------------------------------------------------------------------
def message_from_response(response: Any, stops: Sequence[str]) -> ChatMessage:
    """The assistant message of a `Response`, its text cut at the first of `stops`."""
    texts, calls, summaries = [], [], []
    for item in response.output or ():
        if item.type == "message":
            texts += [part.text if part.type == "output_text" else part.refusal for part in item.content]
        elif item.type == "function_call":
            calls.append(ToolCall(id=item.call_id, name=item.name, arguments=parse_arguments(item.arguments)))
        elif item.type == "reasoning":
            summaries += [part.text for part in item.summary]
    text = TextFilter(stops)
    content, think = text.feed("".join(texts))
    tail, tail_think = text.flush()
    reasoning = "\n\n".join([*summaries, *filter(None, [(think + tail_think).strip()])])
    return ChatMessage(
        role=Role.ASSISTANT,
        content=content + tail,
        tool_calls=tuple(calls),
        reasoning=reasoning or None,
        usage=usage_from(response.usage),
        finish_reason="stop" if text.stopped else _finish_reason(response, bool(calls)),
        raw=response,
    )


def usage_from(usage: Any) -> Usage | None:
    if usage is None:
        return None
    cached = getattr(usage.input_tokens_details, "cached_tokens", 0) or 0
    reasoning = getattr(usage.output_tokens_details, "reasoning_tokens", 0) or 0
    return Usage(usage.input_tokens or 0, usage.output_tokens or 0, cached, reasoning)


def _finish_reason(response: Any, called: bool) -> str | None:
    if response.status == "incomplete":
        reason = getattr(response.incomplete_details, "reason", None)
        return _FINISH.get(reason or "", reason or "length")
    if response.status == "completed":
        return "tool_calls" if called else "stop"
    return response.status  # type: ignore[no-any-return]


@dataclass
class _StreamState:
    """Which output items are function calls, and which of them had argument deltas."""

    calls: dict[int, bool] = field(default_factory=dict)

    def delta(self, event: Any, model_id: str) -> MessageDelta | None:
        kind = event.type
        if kind == "response.output_text.delta":
            return MessageDelta(content=event.delta)
        if kind == "response.reasoning_summary_text.delta":
            return MessageDelta(reasoning=event.delta)
        if kind == "response.output_item.added" and event.item.type == "function_call":
            item = event.item
            self.calls[event.output_index] = bool(item.arguments)
            index = event.output_index
            part = ToolCallDelta(index, id=item.call_id, name=item.name, arguments=item.arguments or "")
            return MessageDelta(tool_calls=(part,))
        if kind == "response.function_call_arguments.delta":
            self.calls[event.output_index] = True
            return MessageDelta(tool_calls=(ToolCallDelta(event.output_index, arguments=event.delta),))
        if kind == "response.function_call_arguments.done" and not self.calls.get(event.output_index):
            self.calls[event.output_index] = True  # no deltas came: the whole arguments now
            return MessageDelta(tool_calls=(ToolCallDelta(event.output_index, arguments=event.arguments),))
        if kind in ("response.completed", "response.incomplete"):
            finish = _finish_reason(event.response, bool(self.calls))
            return MessageDelta(usage=usage_from(event.response.usage), finish_reason=finish)
        if kind in ("response.failed", "error"):
            raise _failure(event, model_id)
        return None


def _failure(event: Any, model_id: str) -> ModelHTTPError:
    """A `response.failed` or `error` event as a `ModelHTTPError` (retryable unless a 4xx code)."""
    error = event.response.error if event.type == "response.failed" else event
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or "the response failed"
    return stream_error(model_id, code, message, event.model_dump())
