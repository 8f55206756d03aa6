"""Shared code of the adapters whose SDK speaks OpenAI-shaped chat completions without being the
`openai` SDK (LiteLLM, Hugging Face `AsyncInferenceClient`), plus small helpers every adapter uses.

`ChatCompletionsModel` is their base: it builds the request (with `to_openai_messages` and
`to_openai_tools` from `codeloop.models.openai`) as the model's `ModelCapabilities` allow (system
role, `max_tokens` field, tools, stop sequences: a provider that answers 400 to `stop` anyway is
remembered and asked again without it; stops are always enforced client-side too), reads the
answer and translates SDK errors to `ModelHTTPError` for `codeloop.models.retry`. A subclass only
says how to send a request (`_complete`, `_open_stream`) and how to read its SDK's errors
(`_translate_error`).

Responses are read tolerantly: objects or dicts, tool-call arguments as JSON text or already
parsed, usage details as attributes or nested dicts, missing fields absent rather than errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from ..errors import ModelHTTPError
from ..messages import ChatMessage, MessageDelta, Role, ToolCall, ToolCallDelta, Usage
from ._text import TextFilter
from .base import Model, ToolSchema, parse_arguments
from .capabilities import ModelCapabilities
from .openai import to_openai_messages, to_openai_tools

__all__ = [
    "ChatCompletionsModel",
    "clean_stops",
    "delta_from_chunk",
    "filter_deltas",
    "is_retryable_status",
    "is_retryable_stream_code",
    "message_from_response",
    "rejects_stop",
    "usage_from",
]

_T = TypeVar("_T")
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_STOP_PARAM = re.compile(r"'stop'|\bstop(_sequences|Sequences)?\b", re.IGNORECASE)


class ChatCompletionsModel(Model):
    """Base of adapters on an SDK that sends OpenAI chat-completions requests.

    Subclasses set `model_id`, `capabilities`, `custom_role_conversions` (applied after the
    capabilities' system role) and `completion_kwargs`, and implement `_complete`,
    `_open_stream` and `_translate_error`.
    """

    capabilities: ModelCapabilities = ModelCapabilities()
    custom_role_conversions: dict[str, str]
    completion_kwargs: dict[str, Any]

    @property
    def supports_stop(self) -> bool:
        """Whether stop sequences are sent (they are enforced client-side anyway)."""
        return self.capabilities.stop

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> ChatMessage:
        stops = clean_stops(stop)
        response = await self._send(self._complete, self._request(messages, stops, tools, stream=False))
        return message_from_response(response, stops, self.model_id)

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> AsyncIterator[MessageDelta]:
        """Stream deltas. A client-side stop match ends the stream at once and closes the
        connection, so the final usage chunk is then never received."""
        stops = clean_stops(stop)
        chunks = await self._send(self._open_stream, self._request(messages, stops, tools, stream=True))
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

    # -- plumbing ----------------------------------------------------------------------------------
    def _request(
        self,
        messages: Sequence[ChatMessage],
        stops: list[str],
        tools: Sequence[ToolSchema] | None,
        *,
        stream: bool,
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
        if stops and caps.stop:
            request["stop"] = stops[: caps.max_stop_sequences]
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
            if "stop" not in request or not rejects_stop(err):
                raise
        self.capabilities = replace(self.capabilities, stop=False)
        with self._sdk_errors():
            return await call({k: v for k, v in request.items() if k != "stop"})

    async def _deltas(self, chunks: AsyncIterator[Any]) -> AsyncGenerator[MessageDelta, None]:
        try:
            with self._sdk_errors():
                async for chunk in chunks:
                    yield delta_from_chunk(chunk)
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    @contextmanager
    def _sdk_errors(self) -> Iterator[None]:
        try:
            yield
        except ModelHTTPError:
            raise
        except Exception as err:
            translated = self._translate_error(err)
            if translated is None:
                raise
            raise translated from err


# -- helpers every adapter can use ---------------------------------------------------------------------
def clean_stops(stop: Sequence[str] | None) -> list[str]:
    return [s for s in (stop or ()) if s]


async def filter_deltas(
    deltas: AsyncIterator[MessageDelta], stops: Sequence[str]
) -> AsyncGenerator[MessageDelta, None]:
    """Apply `<think>` splitting and client-side stop truncation to a stream of deltas; the stream
    ends at the first stop match (the caller closes the source)."""
    text = TextFilter(stops)
    async for delta in deltas:
        kept = text.apply(delta)
        if kept is not None:
            yield kept
        if text.stopped:
            return
    tail = text.finish()
    if tail is not None:
        yield tail


def is_retryable_status(status: int | None) -> bool:
    """408, 409, 429 and 5xx may succeed later; other statuses will not."""
    return status is not None and (status in _RETRYABLE_STATUS or status >= 500)


def is_retryable_stream_code(code: object) -> bool:
    """An error reported inside a 200 stream may succeed on a new request unless its code is a
    4xx other than 408, 409 and 429 (the request itself is wrong). Non-HTTP codes are retryable."""
    status = code if isinstance(code, int) else int(code) if isinstance(code, str) and code.isdigit() else 0
    return not (400 <= status < 500 and not is_retryable_status(status))


def rejects_stop(err: ModelHTTPError) -> bool:
    """A 400 about the stop parameter (`param: "stop"`, "'stop' is not supported", `stopSequences`)."""
    if err.status_code != 400:
        return False
    body = err.body if isinstance(err.body, dict) else {}
    error = body.get("error")
    param = (error if isinstance(error, dict) else body).get("param")
    return param == "stop" or bool(_STOP_PARAM.search(str(err)))


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
    reasoning = (_reasoning(message) + think + tail_think).strip()
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
        reasoning=_reasoning(delta),
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


def _reasoning(obj: Any) -> str:
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
