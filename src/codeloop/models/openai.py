"""OpenAI Chat Completions, and every server that speaks it (vLLM, Ollama, llama.cpp, Groq,
OpenRouter, DeepSeek, the Hugging Face router...), through the official `openai` SDK.

    model = OpenAIModel("gpt-4o-mini", temperature=0)
    local = OpenAIModel("qwen2.5-coder", api_base="http://127.0.0.1:8080/v1")  # no key needed

Reasoning arrives apart from the answer whichever way the server sends it: a `reasoning_content`
or `reasoning` field, or a leading `<think>...</think>` block in the content.

What the model accepts comes from `codeloop.models.capabilities` (looked up by provider and model
id, or passed as `capabilities=`): stop sequences are sent only to models that take them (a server
that answers 400 to `stop` anyway is remembered and asked again without it) and always enforced
client-side too, so the text returned never contains one; system messages go out with the role the
model wants (system, developer, or user); `max_tokens` is renamed for reasoning models.

Each call is exactly one HTTP request: the SDK's own retries are off. SDK failures become
`ModelHTTPError` (a `codeloop.errors.ModelError`) carrying the status, whether a retry may help,
and the server's `Retry-After`; retries are `codeloop.models.retry`'s, which every agent applies.
`max_retries=N` (or `client_kwargs={"max_retries": N}`) no longer configures the SDK: it sets
this model's `retry_policy` to `RetryPolicy(max_attempts=N + 1)`, which agents use unless given
their own `retry_policy=`. Outside an agent, wrap the model: `RetryingModel(model, policy)`.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from ..errors import ConfigurationError, ModelHTTPError
from ..messages import ChatMessage, MessageDelta, Role, ToolCall, ToolCallDelta, Usage
from ._text import TextFilter
from .base import Model, ToolSchema, parse_arguments
from .capabilities import SAMPLING_PARAMETERS, ModelCapabilities, capabilities_for, provider_for_url
from .retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    import asyncio

    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletion, ChatCompletionChunk


__all__ = [
    "OpenAIModel",
    "OpenAIServerModel",
    "to_openai_messages",
    "to_openai_tools",
]

LOCAL_PLACEHOLDER_KEY = "codeloop-local"
"""Sent as the API key to local servers when none is configured (they ignore it)."""

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_TOOL_SETTINGS = ("tool_choice", "parallel_tool_calls")  # meaningless (a 400 at OpenAI) without tools


class OpenAIModel(Model):
    """A model served over the OpenAI Chat Completions API (`AsyncOpenAI` underneath).

    `completion_kwargs` (temperature, max_tokens, reasoning_effort, tool_choice...) go into every
    request; one the model's capabilities refuse is a `ConfigurationError` here. `capabilities`
    overrides the table lookup (by `provider`, default: from `api_base`, and `model_id`);
    `supports_stop` overrides just its `stop`. `custom_role_conversions` renames roles on the way
    out after the capability's system role, e.g. `{"system": "user"}`. `api_key` falls back to
    `OPENAI_API_KEY`; a local `api_base` (localhost, 127.0.0.1...) needs no key at all.
    `max_retries` sets `retry_policy` (see the module docstring); the SDK never retries.
    """

    def __init__(
        self,
        model_id: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        supports_stop: bool | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        capabilities: ModelCapabilities | None = None,
        provider: str | None = None,
        **completion_kwargs: Any,
    ) -> None:
        self._openai = _import_openai()
        self.model_id = model_id
        self.api_base = api_base
        self.provider = provider or provider_for_url(api_base or os.environ.get("OPENAI_BASE_URL"))
        self.capabilities = capabilities or capabilities_for(model_id, self.provider)
        if supports_stop is not None:
            self.capabilities = replace(self.capabilities, stop=supports_stop)
        self.custom_role_conversions = dict(custom_role_conversions or {})
        self.completion_kwargs = _checked_settings(completion_kwargs, self.capabilities, model_id)
        extra = dict(client_kwargs or {})
        self.retry_policy = _retry_policy(max_retries, extra.pop("max_retries", None))
        """This model's default retries (from `max_retries`); None: the agent's default policy."""
        self.client_kwargs: dict[str, Any] = {
            "base_url": api_base,
            "api_key": _resolve_api_key(api_key, api_base),
            "organization": organization,
            "project": project,
            **({"timeout": timeout} if timeout is not None else {}),  # None would mean "never"
            **extra,
            "max_retries": 0,  # retries are codeloop's own (models.retry): never stack the SDK's
        }
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOpenAI]
        self._clients = weakref.WeakKeyDictionary()
        self.client = self._make_client()  # built now so a missing key fails at construction
        self._client_taken = False  # `client` serves the first event loop that calls the model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, api_base={self.api_base!r})"

    @property
    def supports_stop(self) -> bool:
        """Whether stop sequences are sent to the server (they are enforced client-side anyway)."""
        return self.capabilities.stop

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> ChatMessage:
        completion = await self._create(self._request(messages, stop, tools, stream=False))
        return _message_from_completion(cast("ChatCompletion", completion), _clean_stops(stop))

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> AsyncIterator[MessageDelta]:
        """Stream deltas. A client-side stop match ends the stream at once (the connection is
        closed so the server stops generating); the final usage chunk is then never received."""
        request = self._request(messages, stop, tools, stream=True)
        text = TextFilter(_clean_stops(stop))
        stream = await self._create(request)
        with self._sdk_errors():
            try:
                async for chunk in stream:
                    delta = text.apply(_delta_from_chunk(chunk))
                    if delta is not None:
                        yield delta
                    if text.stopped:
                        break
                tail = text.finish()
                if tail is not None:
                    yield tail
            finally:
                await stream.close()

    # -- plumbing --------------------------------------------------------------------------
    def _request(
        self,
        messages: Sequence[ChatMessage],
        stop: Sequence[str] | None,
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
        else:
            for name in _TOOL_SETTINGS:
                request.pop(name, None)
        stops = _clean_stops(stop)
        if stops and caps.stop:
            request["stop"] = stops[: caps.max_stop_sequences]
        if stream:
            request["stream"] = True
            request.setdefault("stream_options", {"include_usage": True})
        return request

    async def _create(self, request: dict[str, Any]) -> Any:
        """Send one request. A server that rejects `stop` (as OpenAI's reasoning models do) is
        remembered and asked again without it: stop sequences are enforced client-side anyway."""
        try:
            with self._sdk_errors():
                return await self._loop_client().chat.completions.create(**request)
        except ModelHTTPError as err:
            if "stop" not in request or not _rejects_stop(err):
                raise
        self.capabilities = replace(self.capabilities, stop=False)
        with self._sdk_errors():
            without_stop = {k: v for k, v in request.items() if k != "stop"}
            return await self._loop_client().chat.completions.create(**without_stop)

    def _make_client(self) -> AsyncOpenAI:
        kwargs = dict(self.client_kwargs)
        if _is_local(self.api_base) and "http_client" not in kwargs:
            # A local server is never behind the user's HTTP(S)_PROXY: don't route it there. And
            # no idle keep-alive: local servers (llama.cpp's among them) drop idle connections after
            # a few seconds, and a request sent on one that was just dropped fails; on loopback a
            # new connection per request costs next to nothing.
            import httpx

            kwargs["http_client"] = self._openai.DefaultAsyncHttpxClient(
                trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
            )
        try:
            client: AsyncOpenAI = self._openai.AsyncOpenAI(**kwargs)
        except self._openai.OpenAIError as err:
            raise ConfigurationError(f"{self!r}: {err} Pass api_key=..., or set OPENAI_API_KEY.") from err
        return client

    def _loop_client(self) -> AsyncOpenAI:
        """The client for the running event loop: an async HTTP client's connections belong to
        the loop that opened them, and the sync wrappers run each call on a fresh loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._make_client() if self._client_taken else self.client
            self._client_taken = True
            self._clients[loop] = client
        return client

    @contextmanager
    def _sdk_errors(self) -> Iterator[None]:
        try:
            yield
        except self._openai.OpenAIError as err:
            raise _translate_error(err, self._openai, self.model_id) from err
        except json.JSONDecodeError as err:  # a 200 whose body (or an SSE event) is not JSON
            raise ModelHTTPError(
                f"Model {self.model_id!r}: the server sent malformed JSON ({err})",
                code="malformed_response",
                retryable=True,  # a truncated or garbled body is the transport's fault: try again
            ) from err


OpenAIServerModel = OpenAIModel
"""The smolagents name of `OpenAIModel`."""


# -- configuration ---------------------------------------------------------------------------
def _import_openai() -> ModuleType:
    try:
        import openai
    except ImportError as err:
        raise ConfigurationError(
            "OpenAIModel needs the openai package: pip install 'codeloop[openai]'"
        ) from err
    return openai


def _is_local(url: str | None) -> bool:
    host = (urlsplit(url).hostname or "") if url else ""
    return host in _LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127.")


def _resolve_api_key(api_key: str | None, api_base: str | None) -> str | None:
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key and _is_local(api_base or os.environ.get("OPENAI_BASE_URL")):
        return LOCAL_PLACEHOLDER_KEY
    return key


def _clean_stops(stop: Sequence[str] | None) -> list[str]:
    return [s for s in (stop or ()) if s]


def _retry_policy(max_retries: int | None, sdk_max_retries: Any) -> RetryPolicy | None:
    """`max_retries` (or the SDK's, from `client_kwargs`) as a policy: N retries, N + 1 attempts."""
    retries = max_retries if max_retries is not None else sdk_max_retries
    return None if retries is None else RetryPolicy(max_attempts=int(retries) + 1)


def _checked_settings(settings: dict[str, Any], caps: ModelCapabilities, model_id: str) -> dict[str, Any]:
    """`settings`, unless the model refuses one of them: then a `ConfigurationError` now rather
    than an HTTP 400 in the middle of a run."""
    refused = sorted(SAMPLING_PARAMETERS & settings.keys()) if not caps.sampling else []
    optional = {"reasoning_effort": caps.reasoning_effort, "response_format": caps.response_format}
    refused += [name for name, accepted in optional.items() if name in settings and not accepted]
    if refused:
        raise ConfigurationError(
            f"Model {model_id!r} does not accept {', '.join(refused)}: leave it out, or pass "
            f"capabilities=ModelCapabilities(...) if this server does accept it."
        )
    return settings


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


# -- responses ---------------------------------------------------------------------------------
def _message_from_completion(completion: ChatCompletion, stops: list[str]) -> ChatMessage:
    if not completion.choices:
        raise ModelHTTPError(f"The response for model {completion.model!r} has no choices", body=completion)
    choice = completion.choices[0]
    message = choice.message
    text = TextFilter(stops)
    content, think = text.feed(message.content or message.refusal or "")  # a refusal is the answer
    tail_content, tail_think = text.flush()
    reasoning = (_reasoning_of(message) + think + tail_think).strip()
    return ChatMessage(
        role=Role.ASSISTANT,
        content=content + tail_content,
        tool_calls=tuple(_tool_call(call) for call in message.tool_calls or ()),
        reasoning=reasoning or None,
        usage=_usage(completion.usage),
        finish_reason="stop" if text.stopped else choice.finish_reason,
        raw=completion,
    )


def _tool_call(call: Any) -> ToolCall:
    function = getattr(call, "function", None)
    if function is not None:
        return ToolCall(id=call.id, name=function.name, arguments=parse_arguments(function.arguments or ""))
    custom = call.custom  # a "custom" tool call: free-form input, kept as text
    return ToolCall(id=call.id, name=custom.name, arguments=custom.input)


def _reasoning_of(obj: Any) -> str:
    """Reasoning sent in a separate field: `reasoning_content` (DeepSeek, vLLM) or `reasoning`
    (OpenRouter, newer vLLM)."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(obj, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    cached = getattr(prompt_details, "cached_tokens", None) or getattr(usage, "cached_tokens", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=cached or getattr(usage, "prompt_cache_hit_tokens", None) or 0,
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None) or 0,
    )


def _delta_from_chunk(chunk: ChatCompletionChunk) -> MessageDelta:
    usage = _usage(chunk.usage)
    if not chunk.choices:
        return MessageDelta(usage=usage)
    choice = chunk.choices[0]
    delta = choice.delta
    calls = tuple(
        ToolCallDelta(
            index=part.index,
            id=part.id,
            name=part.function.name if part.function else None,
            arguments=(part.function.arguments or "") if part.function else "",
        )
        for part in delta.tool_calls or ()
    )
    return MessageDelta(
        content=delta.content or "",
        reasoning=_reasoning_of(delta),
        tool_calls=calls,
        usage=usage,
        finish_reason=choice.finish_reason,
    )


# -- errors ------------------------------------------------------------------------------------
def _translate_error(err: Exception, openai: ModuleType, model_id: str) -> ModelHTTPError:
    body = getattr(err, "body", None)
    detail = _provider_message(body, getattr(err, "message", None) or str(err))
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        return ModelHTTPError(
            f"Model {model_id!r}: the server answered HTTP {status}: {detail}",
            status_code=status,
            code=getattr(err, "code", None),
            retryable=status in _RETRYABLE_STATUS or status >= 500,
            body=body,
            retry_after=parse_retry_after(getattr(err.response, "headers", None)),
        )
    if isinstance(err, openai.APIConnectionError):  # refused, reset, or timed out (a subclass)
        url = getattr(getattr(err, "request", None), "url", "the server")
        what = "timed out waiting for" if isinstance(err, openai.APITimeoutError) else "could not reach"
        return ModelHTTPError(f"Model {model_id!r}: {what} {url}: {detail}", retryable=True)
    if isinstance(err, openai.APIError):  # an error object inside a 200 stream
        code = body.get("code") if isinstance(body, dict) else None
        retryable = not _is_client_error(code)
        return ModelHTTPError(
            f"Model {model_id!r}: the server reported an error in the stream"
            + (f" (code {code})" if code is not None else "")
            + f": {detail}",
            code=None if code is None else str(code),
            retryable=retryable,
            body=body,
        )
    return ModelHTTPError(f"Model {model_id!r}: {detail}")


def _is_client_error(code: object) -> bool:
    """A stream's error code that names a request problem (a 4xx other than 408, 409, 429):
    trying the same request again would fail the same way. Codes that are not HTTP statuses
    (None, "server_error"...) are not."""
    status = code if isinstance(code, int) else int(code) if isinstance(code, str) and code.isdigit() else 0
    return 400 <= status < 500 and status not in _RETRYABLE_STATUS


def _rejects_stop(err: ModelHTTPError) -> bool:
    """A 400 about the `stop` parameter, e.g. OpenAI's `param: "stop"`, `unsupported_parameter`."""
    if err.status_code != 400 or not isinstance(err.body, dict):
        return False
    return err.body.get("param") == "stop" or "'stop'" in str(err.body.get("message", ""))


def _provider_message(body: object, fallback: str) -> str:
    """The provider's own words: `error.message`, plus OpenRouter's upstream `metadata.raw`."""
    if isinstance(body, dict) and body.get("message"):
        message = str(body["message"])
        metadata = body.get("metadata")
        raw = metadata.get("raw") if isinstance(metadata, dict) else None
        return f"{message} ({raw})" if raw else message
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return fallback
