"""Amazon Bedrock through the Converse and ConverseStream APIs of boto3's `bedrock-runtime`.

    model = AmazonBedrockModel("us.anthropic.claude-sonnet-4-5-20250929-v1:0", region_name="us-east-1")

boto3 is synchronous: each call (and each event of a stream) runs in a worker thread with
`asyncio.to_thread`. The client built here has botocore's retries off (`total_max_attempts=1`):
codeloop's retry policy retries `ModelHTTPError`s that are `retryable` (throttling, 5xx,
timeouts). A client you pass in keeps its own retry configuration.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager, aclosing
from typing import Any

from ..errors import ConfigurationError, ModelHTTPError
from ..messages import ChatMessage, ImageContent, MessageDelta, Role, ToolCall, ToolCallDelta, Usage
from ._clients import import_sdk
from ._common import clean_stops, is_retryable_status, is_retryable_stream_code, rejects_stop, translating
from ._text import TextFilter, filter_deltas
from .base import Model, ToolSchema
from .retry import parse_retry_after

__all__ = ["AmazonBedrockModel", "to_converse_messages", "to_converse_tools"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}
_STATUS_OF_CODE = {  # errors reported inside a stream have no HTTP status of their own
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ModelTimeoutException": 408,
    "ValidationException": 400,
}


class AmazonBedrockModel(Model):
    """A Bedrock model or inference profile (`model_id`), called with Converse.

    `inference_config` is Converse's `inferenceConfig` (`maxTokens`, `temperature`, `topP`);
    other keyword arguments go into every request as given (`guardrailConfig`,
    `additionalModelRequestFields`, `toolConfig` with a `toolChoice`...). Without `client`, one
    is built from `region_name` and `client_kwargs`. Stop sequences are sent as `stopSequences`
    when `supports_stop` (a model that rejects them is remembered) and enforced client-side.
    """

    def __init__(
        self,
        model_id: str,
        *,
        client: Any = None,
        region_name: str | None = None,
        inference_config: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        supports_stop: bool = True,
        **converse_kwargs: Any,
    ) -> None:
        # the client comes from boto3; the errors are botocore's
        self._botocore = import_sdk(
            "AmazonBedrockModel", "boto3", "bedrock", "botocore.exceptions", "botocore"
        )[-1]
        self.model_id = model_id
        self.client = client if client is not None else _make_client(region_name, client_kwargs or {})
        self.inference_config = dict(inference_config or {})
        self.custom_role_conversions = dict(custom_role_conversions or {})
        self.supports_stop = supports_stop
        self.converse_kwargs = converse_kwargs

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r})"

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> ChatMessage:
        stops = clean_stops(stop)
        response = await self._call(self.client.converse, self._request(messages, stops, tools))
        return _message_from_response(response, stops)

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> AsyncIterator[MessageDelta]:
        stops = clean_stops(stop)
        response = await self._call(self.client.converse_stream, self._request(messages, stops, tools))
        async with aclosing(self._deltas(response["stream"])) as deltas:
            async with aclosing(filter_deltas(deltas, stops)) as kept:
                async for delta in kept:
                    yield delta

    # -- plumbing --------------------------------------------------------------------------------
    def _request(
        self, messages: Sequence[ChatMessage], stops: list[str], tools: Sequence[ToolSchema] | None
    ) -> dict[str, Any]:
        system, turns = to_converse_messages(messages, self.custom_role_conversions)
        request: dict[str, Any] = {**self.converse_kwargs, "modelId": self.model_id, "messages": turns}
        if system:
            request["system"] = system
        config = {**self.inference_config}
        if stops and self.supports_stop:
            config["stopSequences"] = stops
        if config:
            request["inferenceConfig"] = config
        if tools:
            request["toolConfig"] = {**request.get("toolConfig", {}), "tools": to_converse_tools(tools)}
        return request

    async def _call(self, operation: Callable[..., Any], request: dict[str, Any]) -> Any:
        """One Converse call; a model that rejects `stopSequences` is remembered and asked
        again without them (they are enforced client-side anyway)."""
        try:
            return await self._invoke(operation, request)
        except ModelHTTPError as err:
            if "stopSequences" not in request.get("inferenceConfig", {}) or not rejects_stop(err):
                raise
        self.supports_stop = False
        return await self._invoke(operation, _without_stops(request))

    async def _invoke(self, operation: Callable[..., Any], request: dict[str, Any]) -> Any:
        with self._sdk_errors():
            return await asyncio.to_thread(functools.partial(operation, **request))

    async def _deltas(self, stream: Any) -> AsyncGenerator[MessageDelta, None]:
        events = iter(stream)
        try:
            while True:
                with self._sdk_errors():
                    event = await asyncio.to_thread(next, events, None)
                if event is None:
                    return
                delta = _delta_from_event(event)
                if delta is not None:
                    yield delta
        finally:
            stream.close()  # releases the connection when the stream is abandoned

    def _sdk_errors(self) -> AbstractContextManager[None]:
        return translating(self._translate_error)

    def _translate_error(self, err: Exception) -> ModelHTTPError | None:
        exceptions = self._botocore.exceptions
        if isinstance(err, exceptions.ClientError):
            return _client_error(err, isinstance(err, exceptions.EventStreamError), self.model_id)
        if isinstance(err, (exceptions.ConnectionError, exceptions.HTTPClientError)):
            return ModelHTTPError(f"Model {self.model_id!r}: could not reach Bedrock: {err}", retryable=True)
        if isinstance(err, exceptions.NoCredentialsError):
            return ModelHTTPError(
                f"Model {self.model_id!r}: no AWS credentials found ({err}); "
                "configure them as for any boto3 client"
            )
        return None


def _make_client(region_name: str | None, client_kwargs: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    kwargs = {"region_name": region_name, **client_kwargs}
    no_retries = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    config = kwargs.get("config")
    kwargs["config"] = (
        no_retries if config is None else config if config.retries else config.merge(no_retries)
    )
    try:
        return boto3.client("bedrock-runtime", **kwargs)
    except BotoCoreError as err:  # e.g. no region configured
        raise ConfigurationError(f"Cannot create the Bedrock client: {err}") from err


def _client_error(err: Any, in_stream: bool, model_id: str) -> ModelHTTPError:
    error = err.response.get("Error", {})
    meta = err.response.get("ResponseMetadata", {})
    code = str(error.get("Code") or "")
    code = code[:1].upper() + code[1:]  # in-stream errors are spelled throttlingException
    status = None if in_stream else meta.get("HTTPStatusCode")
    where = f"Bedrock answered HTTP {status}" if status else "Bedrock reported an error in the stream"
    return ModelHTTPError(
        f"Model {model_id!r}: {where}: {code}: {error.get('Message', err)}",
        status_code=status,
        code=code or None,
        retryable=is_retryable_status(status)
        if status
        else is_retryable_stream_code(_STATUS_OF_CODE.get(code)),
        body=err.response,
        retry_after=parse_retry_after(meta.get("HTTPHeaders")),
    )


def _without_stops(request: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in request["inferenceConfig"].items() if k != "stopSequences"}
    trimmed = {k: v for k, v in request.items() if k != "inferenceConfig"}
    return {**trimmed, "inferenceConfig": config} if config else trimmed


# -- requests --------------------------------------------------------------------------------------------
def to_converse_messages(
    messages: Sequence[ChatMessage], role_conversions: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """codeloop messages as Converse `(system, messages)`: tool results become `toolResult`
    blocks of a user turn, and consecutive turns of one role are merged (Converse wants them
    to alternate). Reasoning is never sent back."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = (role_conversions or {}).get(message.role.value, message.role.value)
        if role == Role.SYSTEM.value:
            system += [{"text": message.content}] if message.content else []
            continue
        blocks = _blocks(message)
        wire_role = "assistant" if role == Role.ASSISTANT.value else "user"
        if turns and turns[-1]["role"] == wire_role:
            turns[-1]["content"] += blocks
        elif blocks:
            turns.append({"role": wire_role, "content": blocks})
    return system, turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    images = [_image_block(image) for image in message.images]
    if message.role is Role.TOOL:
        content = ([{"text": message.content}] if message.content else []) + images
        result = {"toolUseId": message.tool_call_id, "content": content or [{"text": ""}]}
        return [{"toolResult": result}]
    blocks: list[dict[str, Any]] = [{"text": message.content}] if message.content else []
    for call in message.tool_calls:
        arguments = call.arguments if isinstance(call.arguments, dict) else {"input": call.arguments}
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": arguments}})
    return blocks + images


def _image_block(image: ImageContent) -> dict[str, Any]:
    data, mime = image.data, image.mime_type
    if not data and image.url and image.url.startswith("data:"):
        header, _, encoded = image.url.partition(",")
        data, mime = base64.b64decode(encoded), header[5:].split(";")[0]
    if not data:
        raise ConfigurationError(f"Bedrock needs image bytes, not a URL: {image.url}")
    return {"image": {"format": mime.split("/")[-1].replace("jpg", "jpeg"), "source": {"bytes": data}}}


def to_converse_tools(tools: Sequence[ToolSchema]) -> list[dict[str, Any]]:
    """`{"name", "description", "parameters"}` schemas (or OpenAI function tools) as `toolSpec`s."""
    specs = []
    for schema in tools:
        function = schema["function"] if schema.get("type") == "function" and "function" in schema else schema
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        description = function.get("description") or function["name"]  # Converse wants one
        specs.append(
            {
                "toolSpec": {
                    "name": function["name"],
                    "description": description,
                    "inputSchema": {"json": parameters},
                }
            }
        )
    return specs


# -- responses -------------------------------------------------------------------------------------------
def _message_from_response(response: dict[str, Any], stops: Sequence[str]) -> ChatMessage:
    blocks = response.get("output", {}).get("message", {}).get("content", [])
    texts = [b["text"] for b in blocks if "text" in b]
    thoughts = [
        b["reasoningContent"].get("reasoningText", {}).get("text", "")
        for b in blocks
        if "reasoningContent" in b
    ]
    calls = [b["toolUse"] for b in blocks if "toolUse" in b]
    text = TextFilter(stops)
    content, think = text.feed("".join(texts))
    tail_content, tail_think = text.flush()
    reasoning = ("".join(thoughts) + think + tail_think).strip()
    return ChatMessage(
        role=Role.ASSISTANT,
        content=content + tail_content,
        tool_calls=tuple(
            ToolCall(id=c["toolUseId"], name=c["name"], arguments=c.get("input") or {}) for c in calls
        ),
        reasoning=reasoning or None,
        usage=_usage(response.get("usage")),
        finish_reason="stop" if text.stopped else _finish(response.get("stopReason")),
        raw=response,
    )


def _delta_from_event(event: dict[str, Any]) -> MessageDelta | None:
    if "contentBlockStart" in event:
        start = event["contentBlockStart"]
        tool = start.get("start", {}).get("toolUse")
        if tool:
            call = ToolCallDelta(
                index=start.get("contentBlockIndex", 0), id=tool["toolUseId"], name=tool["name"]
            )
            return MessageDelta(tool_calls=(call,))
    elif "contentBlockDelta" in event:
        return _content_delta(event["contentBlockDelta"])
    elif "messageStop" in event:
        return MessageDelta(finish_reason=_finish(event["messageStop"].get("stopReason")))
    elif "metadata" in event:
        return MessageDelta(usage=_usage(event["metadata"].get("usage")))
    return None


def _content_delta(block: dict[str, Any]) -> MessageDelta | None:
    delta = block.get("delta", {})
    if "text" in delta:
        return MessageDelta(content=delta["text"])
    if "toolUse" in delta:
        fragment = ToolCallDelta(
            index=block.get("contentBlockIndex", 0), arguments=delta["toolUse"].get("input", "")
        )
        return MessageDelta(tool_calls=(fragment,))
    if "reasoningContent" in delta:
        return MessageDelta(reasoning=delta["reasoningContent"].get("text", ""))
    return None


def _finish(reason: str | None) -> str | None:
    return None if reason is None else _FINISH.get(reason, reason)


def _usage(usage: dict[str, Any] | None) -> Usage | None:
    """Converse usage. `inputTokens` may or may not include cache reads and writes depending on
    the model; `totalTokens - outputTokens` is the whole input either way."""
    if not usage:
        return None
    output = usage.get("outputTokens", 0)
    total = usage.get("totalTokens")
    return Usage(
        input_tokens=total - output if total is not None else usage.get("inputTokens", 0),
        output_tokens=output,
        cached_tokens=usage.get("cacheReadInputTokens", 0),
    )
