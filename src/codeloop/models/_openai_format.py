"""The OpenAI chat-completions format, shared by every adapter whose SDK speaks it: `OpenAIModel`
(the `openai` SDK), LiteLLM, Hugging Face `AsyncInferenceClient`.

`to_openai_messages` and `to_openai_tools` convert codeloop's messages and tool schemas.
`ChatCompletionsModel` is the adapters' base: it builds the request as the model's
`ModelCapabilities` allow (system role, `max_tokens` field, tools, stop sequences: a provider that
answers 400 to `stop` anyway is remembered and asked again without it; stops are always enforced
client-side too), reads the answer and translates SDK errors to `ModelHTTPError` for
`codeloop.models.retry`. A subclass only says how to send a request (`_complete`, `_open_stream`)
and how to read its SDK's errors (`_translate_error`); it may also read responses its own way
(`_message`, `_delta`).

Responses are read tolerantly by default: objects or dicts, tool-call arguments as JSON text or
already parsed, usage details as attributes or nested dicts, missing fields absent rather than
errors.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, aclosing
from dataclasses import replace
from typing import Any, TypeVar

from ..errors import ModelHTTPError
from ..messages import ChatMessage, MessageDelta, Role, ToolCall, ToolCallDelta, Usage
from ._common import clean_stops, rejects_stop, translating
from ._text import TextFilter, filter_deltas
from .base import Model, ToolSchema, parse_arguments
from .capabilities import ModelCapabilities

__all__ = [
    "ChatCompletionsModel",
    "closing_after",
    "delta_from_chunk",
    "message_from_response",
    "reasoning_of",
    "to_openai_messages",
    "to_openai_tools",
    "usage_from",
]

_T = TypeVar("_T")


class ChatCompletionsModel(Model):
    """Base of adapters on an SDK that sends OpenAI chat-completions requests.

    Subclasses set `model_id`, `capabilities` (see `_set_capabilities`), `custom_role_conversions`
    (applied after the capabilities' system role) and `completion_kwargs`, and implement
    `_complete`, `_open_stream` and `_translate_error`. `_unused_without_tools` names settings
    dropped from requests that carry no tools.
    """

    capabilities: ModelCapabilities = ModelCapabilities()
    custom_role_conversions: dict[str, str]
    completion_kwargs: dict[str, Any]
    _unused_without_tools: tuple[str, ...] = ()

    @property
    def supports_stop(self) -> bool:
        """Whether stop sequences are sent (they are enforced client-side anyway)."""
        return self.capabilities.stop

    @property
    def native_structured_output(self) -> bool:
        return self.capabilities.response_format and self.capabilities.structured_output

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        response_format: Mapping[str, Any] | None = None,
    ) -> ChatMessage:
        stops = clean_stops(stop)
        request = self._request(messages, stops, tools, stream=False, response_format=response_format)
        response = await self._send(self._complete, request)
        return self._message(response, stops)

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        response_format: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[MessageDelta]:
        """Stream deltas. A client-side stop match ends the stream at once and closes the
        connection, so the final usage chunk is then never received."""
        stops = clean_stops(stop)
        request = self._request(messages, stops, tools, stream=True, response_format=response_format)
        chunks = await self._send(self._open_stream, request)
        async with aclosing(self._deltas(chunks)) as deltas, aclosing(filter_deltas(deltas, stops)) as kept:
            async for delta in kept:
                yield delta

    # -- for subclasses --------------------------------------------------------------------------
    async def _complete(self, request: dict[str, Any]) -> Any:
        """Send a non-streamed request; return the SDK's completion object."""
        raise NotImplementedError

    async def _open_stream(self, request: dict[str, Any]) -> AsyncIterator[Any]:
        """Send a streamed request (HTTP errors surface here); return its chunks. The iterator's
        `aclose()`, if it has one, is called when the stream ends or is abandoned."""
        raise NotImplementedError

    def _translate_error(self, err: Exception) -> ModelHTTPError | None:
        """The `ModelHTTPError` for an SDK exception; None for exceptions that are not the SDK's."""
        raise NotImplementedError

    def _message(self, response: Any, stops: list[str]) -> ChatMessage:
        """The assistant message of a completion, cut at the first of `stops`."""
        return message_from_response(response, stops, self.model_id)

    def _delta(self, chunk: Any) -> MessageDelta:
        """One streamed chunk as a delta."""
        return delta_from_chunk(chunk)

    def _rejects_stop(self, err: ModelHTTPError) -> bool:
        """Whether `err` is the provider refusing the `stop` parameter."""
        return rejects_stop(err)

    def _set_capabilities(self, capabilities: ModelCapabilities, supports_stop: bool | None) -> None:
        """`capabilities`, with `stop` as `supports_stop` says when it is given."""
        if supports_stop is not None:
            capabilities = replace(capabilities, stop=supports_stop)
        self.capabilities = capabilities

    # -- plumbing ----------------------------------------------------------------------------------
    def _request(
        self,
        messages: Sequence[ChatMessage],
        stops: list[str],
        tools: Sequence[ToolSchema] | None,
        *,
        stream: bool,
        response_format: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        caps = self.capabilities
        roles = {"system": caps.system_role, **self.custom_role_conversions}
        request: dict[str, Any] = {
            **self.completion_kwargs,
            "model": self.model_id,
            "messages": to_openai_messages(messages, roles),
        }
        if "max_tokens" in request and caps.max_tokens_field != "max_tokens":
            request[caps.max_tokens_field] = request.pop("max_tokens")
        if tools and caps.tool_calls:
            request["tools"] = to_openai_tools(tools)
        else:
            for name in self._unused_without_tools:
                request.pop(name, None)
        if stops and caps.stop:
            request["stop"] = stops[: caps.max_stop_sequences]
        if response_format is not None:
            request["response_format"] = dict(response_format)
        if stream:
            request["stream"] = True
            request.setdefault("stream_options", {"include_usage": True})
        return request

    async def _send(self, call: Callable[[dict[str, Any]], Awaitable[_T]], request: dict[str, Any]) -> _T:
        """Send one request. A provider that rejects `stop` is remembered and asked again
        without it: stop sequences are enforced client-side anyway."""
        try:
            with self._sdk_errors():
                return await call(request)
        except ModelHTTPError as err:
            if "stop" not in request or not self._rejects_stop(err):
                raise
        self.capabilities = replace(self.capabilities, stop=False)
        with self._sdk_errors():
            return await call({k: v for k, v in request.items() if k != "stop"})

    async def _deltas(self, chunks: AsyncIterator[Any]) -> AsyncGenerator[MessageDelta, None]:
        try:
            with self._sdk_errors():
                async for chunk in chunks:
                    yield self._delta(chunk)
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    def _sdk_errors(self) -> AbstractContextManager[None]:
        return translating(self._translate_error)


async def closing_after(
    chunks: AsyncIterator[_T], close: Callable[[], Awaitable[Any]]
) -> AsyncGenerator[_T, None]:
    """`chunks`, then `close()` once they end or are abandoned (it releases the connection)."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await close()


# -- requests ----------------------------------------------------------------------------------
def to_openai_messages(
    messages: Sequence[ChatMessage], role_conversions: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Convert codeloop messages to Chat Completions message dicts."""
    converted: list[dict[str, Any]] = []
    for message in messages:
        converted.extend(_message_dicts(message))
    for item in converted:
        item["role"] = (role_conversions or {}).get(item["role"], item["role"])
    return converted


def _message_dicts(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role is Role.TOOL:
        result: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content,
        }
        if not message.images:
            return [result]  # tool messages cannot carry images: they follow as a user message
        return [result, {"role": "user", "content": _content_parts("", message)}]
    item: dict[str, Any] = {"role": message.role.value, "content": _content_parts(message.content, message)}
    if message.name:
        item["name"] = message.name
    if message.role is Role.ASSISTANT and message.tool_calls:
        item["content"] = message.content or None
        item["tool_calls"] = [_tool_call_dict(call) for call in message.tool_calls]
    return [item]


def _content_parts(text: str, message: ChatMessage) -> str | list[dict[str, Any]]:
    if not message.images:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    parts += [{"type": "image_url", "image_url": {"url": img.as_data_url()}} for img in message.images]
    return parts


def _tool_call_dict(call: ToolCall) -> dict[str, Any]:
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def to_openai_tools(tools: Sequence[ToolSchema]) -> list[dict[str, Any]]:
    """Wrap `{"name", "description", "parameters"}` schemas as Chat Completions function tools."""
    wrapped = []
    for schema in tools:
        if schema.get("type") == "function" and "function" in schema:
            wrapped.append(dict(schema))  # already in the wire format
            continue
        function = {"name": schema["name"], "description": schema.get("description", "")}
        function["parameters"] = schema.get("parameters") or {"type": "object", "properties": {}}
        wrapped.append({"type": "function", "function": function})
    return wrapped


# -- reading OpenAI-shaped responses -------------------------------------------------------------------
def _field(obj: Any, name: str) -> Any:
    """`obj.name`, or `obj[name]` for dicts; None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def message_from_response(response: Any, stops: Sequence[str], model_id: str = "model") -> ChatMessage:
    choices = _field(response, "choices")
    if not choices:
        raise ModelHTTPError(f"Model {model_id!r}: the response has no choices", body=response)
    choice = choices[0]
    message = _field(choice, "message")
    text = TextFilter(stops)
    content, think = text.feed(_field(message, "content") or _field(message, "refusal") or "")
    tail_content, tail_think = text.flush()
    reasoning = (reasoning_of(message) + think + tail_think).strip()
    return ChatMessage(
        role=Role.ASSISTANT,
        content=content + tail_content,
        tool_calls=tuple(_tool_call(call, i) for i, call in enumerate(_field(message, "tool_calls") or ())),
        reasoning=reasoning or None,
        usage=usage_from(_field(response, "usage")),
        finish_reason="stop" if text.stopped else _field(choice, "finish_reason"),
        raw=response,
    )


def delta_from_chunk(chunk: Any) -> MessageDelta:
    usage = usage_from(_field(chunk, "usage"))
    choices = _field(chunk, "choices")
    if not choices:
        return MessageDelta(usage=usage)
    choice = choices[0]
    delta = _field(choice, "delta")
    calls = tuple(_tool_call_delta(part, i) for i, part in enumerate(_field(delta, "tool_calls") or ()))
    return MessageDelta(
        content=_field(delta, "content") or "",
        reasoning=reasoning_of(delta),
        tool_calls=calls,
        usage=usage,
        finish_reason=_field(choice, "finish_reason"),
    )


def usage_from(usage: Any) -> Usage | None:
    """OpenAI usage, with the cached-token spellings of DeepSeek, Together and LiteLLM."""
    if usage is None:
        return None
    prompt_details = _field(usage, "prompt_tokens_details")
    completion_details = _field(usage, "completion_tokens_details")
    cached = (
        _field(prompt_details, "cached_tokens")
        or _field(usage, "cached_tokens")
        or _field(usage, "prompt_cache_hit_tokens")
        or _field(usage, "cache_read_input_tokens")
    )
    return Usage(
        input_tokens=_field(usage, "prompt_tokens") or 0,
        output_tokens=_field(usage, "completion_tokens") or 0,
        cached_tokens=cached or 0,
        reasoning_tokens=_field(completion_details, "reasoning_tokens") or 0,
    )


def reasoning_of(obj: Any) -> str:
    """Reasoning sent in a separate field: `reasoning_content` (DeepSeek, vLLM, LiteLLM) or
    `reasoning` (OpenRouter, Hugging Face, newer vLLM)."""
    for name in ("reasoning_content", "reasoning"):
        value = _field(obj, name)
        if isinstance(value, str) and value:
            return value
    return ""


def _tool_call(call: Any, position: int) -> ToolCall:
    function = _field(call, "function")
    arguments = _field(function, "arguments")
    parsed = arguments if isinstance(arguments, dict) else parse_arguments(arguments or "")
    return ToolCall(
        id=_field(call, "id") or f"call_{position}", name=_field(function, "name") or "", arguments=parsed
    )


def _tool_call_delta(part: Any, position: int) -> ToolCallDelta:
    function = _field(part, "function")
    arguments = _field(function, "arguments") or ""
    index = _field(part, "index")
    return ToolCallDelta(
        index=position if index is None else index,
        id=_field(part, "id"),
        name=_field(function, "name"),
        arguments=arguments if isinstance(arguments, str) else json.dumps(arguments),
    )
