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
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigurationError, ModelHTTPError
from ..messages import ChatMessage, MessageDelta, Role, ToolCall, ToolCallDelta, Usage
from ._clients import (
    LOCAL_PLACEHOLDER_KEY,
    PerLoopClients,
    import_sdk,
    is_local,
    local_http_client,
    resolve_api_key,
    sdk_client_kwargs,
    sdk_retry_policy,
)
from ._common import http_status_error, stream_error
from ._openai_format import (
    ChatCompletionsModel,
    closing_after,
    reasoning_of,
    to_openai_messages,
    to_openai_tools,
)
from ._text import TextFilter
from .base import parse_arguments
from .capabilities import SAMPLING_PARAMETERS, ModelCapabilities, capabilities_for, provider_for_url

if TYPE_CHECKING:
    from types import ModuleType

    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletion, ChatCompletionChunk


__all__ = [
    "LOCAL_PLACEHOLDER_KEY",
    "OpenAIModel",
    "OpenAIServerModel",
    "make_openai_client",
    "to_openai_messages",
    "to_openai_tools",
    "translate_openai_error",
]


class OpenAIModel(ChatCompletionsModel):
    """A model served over the OpenAI Chat Completions API (`AsyncOpenAI` underneath).

    `completion_kwargs` (temperature, max_tokens, reasoning_effort, tool_choice...) go into every
    request; one the model's capabilities refuse is a `ConfigurationError` here. `capabilities`
    overrides the table lookup (by `provider`, default: from `api_base`, and `model_id`);
    `supports_stop` overrides just its `stop`. `custom_role_conversions` renames roles on the way
    out after the capability's system role, e.g. `{"system": "user"}`. `api_key` falls back to
    `OPENAI_API_KEY`; a local `api_base` (localhost, 127.0.0.1...) needs no key at all.
    `max_retries` sets `retry_policy` (see the module docstring); the SDK never retries.
    """

    _unused_without_tools = ("tool_choice", "parallel_tool_calls")  # a 400 at OpenAI without tools

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
        (self._openai,) = import_sdk("OpenAIModel", "openai", "openai")
        self.model_id = model_id
        self.api_base = api_base
        self.provider = provider or provider_for_url(api_base or os.environ.get("OPENAI_BASE_URL"))
        self._set_capabilities(capabilities or capabilities_for(model_id, self.provider), supports_stop)
        self.custom_role_conversions = dict(custom_role_conversions or {})
        self.completion_kwargs = _checked_settings(completion_kwargs, self.capabilities, model_id)
        self.retry_policy = sdk_retry_policy(max_retries, client_kwargs)
        """This model's default retries (from `max_retries`); None: the agent's default policy."""
        key = api_key or os.environ.get("OPENAI_API_KEY")
        self.client_kwargs = sdk_client_kwargs(
            client_kwargs,
            timeout,
            base_url=api_base,
            api_key=resolve_api_key(key, api_base, ("OPENAI_API_KEY",), "OPENAI_BASE_URL"),
            organization=organization,
            project=project,
        )
        self._clients: PerLoopClients[AsyncOpenAI] = PerLoopClients(self._make_client)
        self.client = self._make_client()  # built now so a missing key fails at construction

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, api_base={self.api_base!r})"

    # -- ChatCompletionsModel ----------------------------------------------------------------
    async def _complete(self, request: dict[str, Any]) -> Any:
        return await self._clients.get(self.client).chat.completions.create(**request)

    async def _open_stream(self, request: dict[str, Any]) -> AsyncIterator[Any]:
        """The stream, closed when it ends or is abandoned (so the server stops generating)."""
        stream = await self._clients.get(self.client).chat.completions.create(**request)
        return closing_after(stream, stream.close)

    def _message(self, response: Any, stops: list[str]) -> ChatMessage:
        return _message_from_completion(cast("ChatCompletion", response), stops)

    def _delta(self, chunk: Any) -> MessageDelta:
        return _delta_from_chunk(chunk)

    def _rejects_stop(self, err: ModelHTTPError) -> bool:
        return _rejects_stop(err)

    def _translate_error(self, err: Exception) -> ModelHTTPError | None:
        return translate_openai_error(err, self._openai, self.model_id)

    def _make_client(self) -> AsyncOpenAI:
        return make_openai_client(self._openai, repr(self), self.api_base, self.client_kwargs)


OpenAIServerModel = OpenAIModel
"""The smolagents name of `OpenAIModel`."""


# -- configuration ---------------------------------------------------------------------------
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


# -- responses ---------------------------------------------------------------------------------
# The SDK's typed objects, read as they are (not with `_openai_format`'s tolerant readers, which
# differ on what only OpenAI sends, such as custom tool calls, and on responses missing fields).
def _message_from_completion(completion: ChatCompletion, stops: list[str]) -> ChatMessage:
    if not completion.choices:
        raise ModelHTTPError(f"The response for model {completion.model!r} has no choices", body=completion)
    choice = completion.choices[0]
    message = choice.message
    text = TextFilter(stops)
    content, think = text.feed(message.content or message.refusal or "")  # a refusal is the answer
    tail_content, tail_think = text.flush()
    reasoning = (reasoning_of(message) + think + tail_think).strip()
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
        reasoning=reasoning_of(delta),
        tool_calls=calls,
        usage=usage,
        finish_reason=choice.finish_reason,
    )


# -- errors ------------------------------------------------------------------------------------
def make_openai_client(
    openai: ModuleType, model: str, api_base: str | None, client_kwargs: dict[str, Any]
) -> AsyncOpenAI:
    """The SDK's async client for `model` (its repr, for messages); a server on this machine gets
    `local_http_client`. Missing credentials are a `ConfigurationError` that says what to pass."""
    kwargs = dict(client_kwargs)
    if is_local(api_base) and "http_client" not in kwargs:
        kwargs["http_client"] = local_http_client(openai.DefaultAsyncHttpxClient)
    try:
        client: AsyncOpenAI = openai.AsyncOpenAI(**kwargs)
    except openai.OpenAIError as err:
        if kwargs.get("api_key"):
            raise ConfigurationError(f"{model}: {err}") from err
        raise ConfigurationError(  # the SDK found no credentials
            f"{model} has no API key: pass api_key=... or set OPENAI_API_KEY (a server on this "
            "machine needs none: pass its api_base, e.g. 'http://127.0.0.1:8080/v1')."
        ) from err
    return client


def translate_openai_error(err: Exception, openai: ModuleType, model_id: str) -> ModelHTTPError | None:
    """An error of the openai SDK (or a malformed body it let through) as a `ModelHTTPError`."""
    if isinstance(err, openai.OpenAIError):
        return _api_error(err, openai, model_id)
    if isinstance(err, json.JSONDecodeError):  # a 200 whose body (or an SSE event) is not JSON
        return ModelHTTPError(
            f"Model {model_id!r}: the server sent malformed JSON ({err})",
            code="malformed_response",
            retryable=True,  # a truncated or garbled body is the transport's fault: try again
        )
    return None


def _api_error(err: Exception, openai: ModuleType, model_id: str) -> ModelHTTPError:
    body = getattr(err, "body", None)
    detail = _provider_message(body, getattr(err, "message", None) or str(err))
    if isinstance(err, openai.APIStatusError):
        headers = getattr(err.response, "headers", None)
        code = getattr(err, "code", None)
        return http_status_error(model_id, err.status_code, detail, code=code, body=body, headers=headers)
    if isinstance(err, openai.APIConnectionError):  # refused, reset, or timed out (a subclass)
        url = getattr(getattr(err, "request", None), "url", "the server")
        what = "timed out waiting for" if isinstance(err, openai.APITimeoutError) else "could not reach"
        return ModelHTTPError(f"Model {model_id!r}: {what} {url}: {detail}", retryable=True)
    if isinstance(err, openai.APIError):  # an error object inside a 200 stream
        return stream_error(model_id, body.get("code") if isinstance(body, dict) else None, detail, body)
    return ModelHTTPError(f"Model {model_id!r}: {detail}")


def _rejects_stop(err: ModelHTTPError) -> bool:
    """A 400 about the `stop` parameter, as OpenAI reports it: `param: "stop"`, or `'stop'` in
    the message (`unsupported_parameter`). Narrower than `_common.rejects_stop`, which also reads
    a bare "stop" anywhere in the error: here `stop` would be turned off for good on any 400
    that merely mentions the word."""
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
