"""Anthropic's Messages API (Claude) through the official `anthropic` SDK.

    model = AnthropicModel("claude-sonnet-4-5", temperature=0)
    thinker = AnthropicModel("claude-sonnet-4-5", thinking={"type": "enabled", "budget_tokens": 2048})

**Requests.** Leading system messages become the top-level `system`; a system message later in the
conversation is sent as user text (the API has no system role inside `messages`). Tool results
(`Role.TOOL` with a `tool_call_id`) become `tool_result` blocks of a user turn; consecutive turns of
one role are merged, as the API requires (several tool results make one user turn, results first).
Images become image blocks, placed before the text as Anthropic recommends. Assistant tool calls
become `tool_use` blocks. Function schemas (`{"name", "description", "parameters"}`) become tools;
schemas already in Anthropic's format (`input_schema`) and server tools (a `type`) pass unchanged,
also from `completion_kwargs["tools"]`. An OpenAI-style `tool_choice` ("auto", "required",
"none", a name) is translated, and only sent along with tools.

**Thinking.** `thinking` blocks come back as `reasoning`, never as content, and are normally not
sent back. The API makes one exception: while a tool-use cycle is under way (the assistant turns
after the last user turn that holds no tool results), each assistant turn must carry its thinking
blocks back unmodified, signature included. So the adapter keeps the content blocks of each
assistant turn with tool calls it produced: in `ChatMessage.raw` (the SDK's `Message`, from
`agenerate`), and in a bounded per-model record keyed by tool-use id, which also serves streamed
turns and messages rebuilt from agent memory. It sends signed thinking blocks back only inside the
current cycle. When the message still matches its record, the record's blocks are sent as they came,
so server-tool blocks (`server_tool_use`, `*_tool_result`) of that turn go back too. A turn rebuilt
in another process (memory loaded from JSON) has no record: its thinking is lost, and an API with
thinking enabled may refuse a tool-use cycle continued from it.

**Responses.** Text blocks make the content (a text block that follows a non-text block is set off
from earlier text by a blank line), `tool_use` blocks the tool calls; other block types
(`server_tool_use`, `tool_search_tool_result`, ...) are skipped. Usage: `input_tokens` counts every
prompt token, whether uncached, read from the cache or written to it (Anthropic reports the three
apart), and `cached_tokens` those read from the cache, as with OpenAI; `reasoning_tokens` is
`output_tokens_details.thinking_tokens` when the API reports it. `finish_reason`: end_turn and
stop_sequence → "stop", tool_use → "tool_calls", max_tokens and model_context_window_exceeded →
"length", refusal → "content_filter", anything else as sent.

**Stop sequences** are sent as `stop_sequences` (the API documents no count limit; whitespace-only
sequences, which it refuses, are kept back) and always enforced client-side too. **Errors**: each
call is one HTTP request, the SDK's own retries are off; failures become `ModelHTTPError` with `retryable`
(408, 409, 429, 5xx, 529 overloaded, network failures, timeouts, a retryable `error` event inside a
stream, a stream that ends before its `message_delta`) and `retry_after` (from `retry-after-ms` or
`retry-after`), for codeloop's retry policy.
A non-streamed request the SDK refuses up front (it requires streaming when `max_tokens` is large)
is streamed instead.
"""

from __future__ import annotations

import base64
import inspect
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, ModelHTTPError
from ..messages import ChatMessage, ImageContent, MessageDelta, Role, ToolCall, ToolCallDelta, Usage
from ._clients import (
    LOCAL_PLACEHOLDER_KEY,
    PerLoopClients,
    import_sdk,
    is_local,
    resolve_api_key,
    sdk_client_kwargs,
    sdk_retry_policy,
    transport_errors,
)
from ._common import clean_stops, http_status_error, translating
from ._text import TextFilter
from .base import Model, ToolSchema, assemble_message, parse_arguments

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["LOCAL_PLACEHOLDER_KEY", "AnthropicModel", "to_anthropic_messages", "to_anthropic_tools"]

Block = dict[str, Any]
"""One content block of the Messages API, as JSON."""

Recall = Callable[[ChatMessage], list[Block] | None]
"""Finds the recorded content blocks of an assistant message the adapter produced."""

_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})
_THINKING = frozenset({"thinking", "redacted_thinking"})
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}
_TOOL_CHOICES = {"auto": "auto", "required": "any", "any": "any", "none": "none"}
_RECORD_LIMIT = 256


class AnthropicModel(Model):
    """A Claude model over Anthropic's Messages API (`AsyncAnthropic` underneath).

    `completion_kwargs` (temperature, top_p, tool_choice, metadata, extra_headers...) go into every
    request. `thinking` enables extended thinking, e.g. `{"type": "enabled", "budget_tokens": 2048}`
    (the budget must stay below `max_tokens`). `api_key` falls back to the SDK's own resolution
    (`ANTHROPIC_API_KEY`, `ANTHROPIC_AUTH_TOKEN`, profiles); a local `api_base` needs no key.
    `client_kwargs` go to `AsyncAnthropic`. The SDK never retries: `max_retries=N` (or
    `client_kwargs={"max_retries": N}`) sets this model's `retry_policy` to
    `RetryPolicy(max_attempts=N + 1)`, which agents use unless given their own `retry_policy=`.
    """

    def __init__(
        self,
        model_id: str,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        max_tokens: int = 4096,
        thinking: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        **completion_kwargs: Any,
    ) -> None:
        (self._anthropic,) = import_sdk("AnthropicModel", "anthropic", "anthropic")
        self._transport_errors = transport_errors()  # the SDK lets these through while a stream is read
        self.model_id = model_id
        self.api_base = api_base
        self.max_tokens = max_tokens
        self.thinking = dict(thinking) if thinking else None
        self.completion_kwargs = completion_kwargs
        self.retry_policy = sdk_retry_policy(max_retries, client_kwargs)
        """This model's default retries (from `max_retries`); None: the agent's default policy."""
        self.client_kwargs = sdk_client_kwargs(
            client_kwargs, timeout, base_url=api_base, api_key=_resolve_api_key(api_key, api_base)
        )
        self._records = _TurnRecords()
        self._clients: PerLoopClients[AsyncAnthropic] = PerLoopClients(self._make_client)
        self.client = self._make_client()  # built now so missing credentials fail at construction

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, api_base={self.api_base!r})"

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> ChatMessage:
        """One answer. A request the SDK will not send unstreamed (a large `max_tokens`) is
        streamed and assembled instead; `raw` is then None."""
        request = self._request(messages, stop, tools, stream=False)
        try:
            response = await self._send(request)
        except _Refused:
            return assemble_message([delta async for delta in self.astream(messages, stop=stop, tools=tools)])
        blocks = [_as_dict(block) for block in response.content]
        self._records.remember(blocks)
        return _message_from_blocks(blocks, response, clean_stops(stop))

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> AsyncIterator[MessageDelta]:
        """Stream deltas: text, reasoning, tool-call fragments (indexed by content block), then one
        delta with usage and finish reason. A client-side stop match ends the stream at once (the
        connection is closed so the server stops generating); usage is then never received."""
        request = self._request(messages, stop, tools, stream=True)
        try:
            stream = await self._send(request)
        except _Refused as err:
            raise ConfigurationError(f"{self!r}: the anthropic SDK refused the request: {err}") from err
        state, text = _StreamState(), TextFilter(clean_stops(stop))
        try:
            async for event in self._events(stream):
                delta = state.feed(event)
                delta = text.apply(delta) if delta is not None else None
                if delta is not None:
                    yield delta
                if text.stopped:
                    return
            if not state.finished:
                raise ModelHTTPError(
                    f"Model {self.model_id!r}: the stream ended before the message did",
                    code="incomplete_stream",
                    retryable=True,
                )
            tail = text.finish()
            if tail is not None:
                yield tail
            self._records.remember(state.content())
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
        system, wire = to_anthropic_messages(messages, self._records.recall)
        request: dict[str, Any] = {
            **self.completion_kwargs,
            "model": self.model_id,
            "max_tokens": self.max_tokens,
            "messages": wire,
            "stream": stream,
        }
        if system:
            request["system"] = system
        if self.thinking:
            request["thinking"] = self.thinking
        _add_tools(request, tools)
        sent = [s for s in clean_stops(stop) if s.strip()]  # the API refuses whitespace-only ones
        if sent:
            request["stop_sequences"] = list(dict.fromkeys([*request.get("stop_sequences", ()), *sent]))
        return request

    async def _send(self, request: dict[str, Any]) -> Any:
        create = self._clients.get(self.client).messages.create
        try:
            with self._sdk_errors():
                return await create(**_body_extras(request, _parameters(create)))
        except ValueError as err:  # the SDK checks some arguments before sending anything
            raise _Refused(str(err)) from err

    async def _events(self, stream: Any) -> AsyncIterator[Any]:
        with self._sdk_errors():
            async for event in stream:
                yield event

    def _make_client(self) -> AsyncAnthropic:
        kwargs = dict(self.client_kwargs)
        if is_local(self.api_base) and "http_client" not in kwargs:
            # A local server is never behind the user's HTTP(S)_PROXY: don't route it there.
            kwargs["http_client"] = self._anthropic.DefaultAsyncHttpxClient(trust_env=False)
        try:
            client: AsyncAnthropic = self._anthropic.AsyncAnthropic(**kwargs)
        except (self._anthropic.AnthropicError, ValueError, TypeError) as err:
            raise ConfigurationError(f"{self!r}: {err}") from err
        if not (client.api_key or client.auth_token or getattr(client, "credentials", None)):
            raise ConfigurationError(
                f"{self!r}: no Anthropic credentials. Pass api_key=..., or set ANTHROPIC_API_KEY."
            )
        return client

    def _sdk_errors(self) -> AbstractContextManager[None]:
        return translating(self._translate_error)

    def _translate_error(self, err: Exception) -> ModelHTTPError | None:
        if isinstance(err, self._anthropic.AnthropicError):
            return _api_error(err, self._anthropic, self.model_id)
        if isinstance(err, json.JSONDecodeError):
            return ModelHTTPError(
                f"Model {self.model_id!r}: the server sent malformed JSON: {err}",
                code="malformed_response",
                retryable=True,
            )
        if isinstance(err, self._transport_errors):
            return ModelHTTPError(
                f"Model {self.model_id!r}: the connection failed while reading the answer: {err!r}",
                retryable=True,
            )
        return None


class _Refused(Exception):
    """The SDK refused a request before sending it (it requires streaming for a large
    `max_tokens`, or an argument is invalid)."""


# -- configuration ---------------------------------------------------------------------------
def _resolve_api_key(api_key: str | None, api_base: str | None) -> str | None:
    """The key to pass: the given one; a placeholder for a local server when the environment has
    no credential; otherwise None, leaving the SDK to resolve credentials its own way."""
    env_keys = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
    return resolve_api_key(api_key or None, api_base, env_keys, "ANTHROPIC_BASE_URL")


def _parameters(function: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword parameters `function` takes; None when it takes any."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters)


def _body_extras(request: dict[str, Any], known: frozenset[str] | None) -> dict[str, Any]:
    """Request fields the installed SDK has no parameter for (`temperature`, `top_p`... in SDKs
    that dropped them, or fields newer than the SDK) travel in `extra_body`."""
    extras = {key: value for key, value in request.items() if known is not None and key not in known}
    if not extras:
        return request
    kept = {key: value for key, value in request.items() if key not in extras}
    return {**kept, "extra_body": {**extras, **(request.get("extra_body") or {})}}


# -- requests ----------------------------------------------------------------------------------
def to_anthropic_messages(
    messages: Sequence[ChatMessage], recall: Recall | None = None
) -> tuple[str | None, list[dict[str, Any]]]:
    """Convert codeloop messages to the Messages API's `(system, messages)`.

    `recall` finds the recorded blocks of assistant messages the adapter produced (`raw` is
    consulted first); without it, signed thinking blocks can only come from `raw`."""
    system, rest = _split_system(messages)
    turns: list[dict[str, Any]] = []
    for message in rest:
        role, blocks = _turn_of(message, recall)
        if not blocks:
            continue  # the API refuses empty turns
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    _settle_turns(turns)
    return system, turns


def _split_system(messages: Sequence[ChatMessage]) -> tuple[str | None, Sequence[ChatMessage]]:
    count = 0
    while count < len(messages) and messages[count].role is Role.SYSTEM:
        count += 1
    system = "\n\n".join(m.content for m in messages[:count] if m.content)
    return system or None, messages[count:]


def _turn_of(message: ChatMessage, recall: Recall | None) -> tuple[str, list[Block]]:
    if message.role is Role.ASSISTANT:
        recorded = _blocks_of_raw(message.raw) or (recall(message) if recall else None)
        return "assistant", _assistant_blocks(message, recorded)
    if message.role is Role.TOOL and message.tool_call_id:
        return "user", [_tool_result(message)]
    return "user", _user_blocks(message.content, message.images)


def _user_blocks(text: str, images: Sequence[ImageContent]) -> list[Block]:
    blocks = [_image_block(image) for image in images]
    if text.strip():  # the API refuses empty and whitespace-only text blocks
        blocks.append({"type": "text", "text": text})
    return blocks


def _image_block(image: ImageContent) -> Block:
    if image.url and not image.url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    if image.url:  # a data URL: data:<mime>;base64,<data>
        header, _, data = image.url.partition(",")
        media_type = header.removeprefix("data:").split(";")[0] or image.mime_type
    else:
        media_type, data = image.mime_type, base64.b64encode(image.data).decode()
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _tool_result(message: ChatMessage) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": message.tool_call_id, "is_error": False}
    if message.images:
        block["content"] = [*_user_blocks(message.content, ()), *_user_blocks("", message.images)]
    elif message.content:
        block["content"] = message.content
    return block


def _assistant_blocks(message: ChatMessage, recorded: list[Block] | None) -> list[Block]:
    """The record's blocks when the message still matches it (thinking and server-tool blocks
    included); else blocks built from the message, behind any recorded thinking blocks."""
    calls = [_tool_use(call) for call in message.tool_calls]
    if recorded and _matches(recorded, message):
        return [dict(block) for block in recorded]
    thinking = [dict(b) for b in recorded or () if b.get("type") in _THINKING]
    text = [{"type": "text", "text": message.content}] if message.content.strip() else []
    return [*thinking, *text, *calls]


def _matches(recorded: list[Block], message: ChatMessage) -> bool:
    ids = [b.get("id") for b in recorded if b.get("type") == "tool_use"]
    return ids == [c.id for c in message.tool_calls] and _joined(recorded, "text") == message.content


def _tool_use(call: ToolCall) -> Block:
    arguments = call.arguments if isinstance(call.arguments, dict) else parse_arguments(call.arguments)
    # an input that never parsed as a JSON object cannot be sent back: the API wants an object
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": _object_or_empty(arguments)}


def _object_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _settle_turns(turns: list[dict[str, Any]]) -> None:
    """Tool results first in each user turn; thinking blocks only inside the current tool-use
    cycle; no trailing whitespace in a final (prefilled) assistant turn, which the API refuses."""
    plain = [i for i, t in enumerate(turns) if t["role"] == "user" and not _has_tool_results(t)]
    cycle_start = plain[-1] if plain else 0
    for index, turn in enumerate(turns):
        if turn["role"] == "user":
            turn["content"].sort(key=lambda block: block.get("type") != "tool_result")
        elif index < cycle_start:
            turn["content"] = [b for b in turn["content"] if b.get("type") not in _THINKING]
    last = turns[-1]["content"] if turns and turns[-1]["role"] == "assistant" else []
    if last and last[-1].get("type") == "text":
        last[-1] = {**last[-1], "text": last[-1]["text"].rstrip()}


def _has_tool_results(turn: dict[str, Any]) -> bool:
    return any(block.get("type") == "tool_result" for block in turn["content"])


def to_anthropic_tools(tools: Sequence[ToolSchema]) -> list[dict[str, Any]]:
    """Function schemas (`{"name", "description", "parameters"}`, or OpenAI's wrapping of them)
    as Anthropic tools; Anthropic tools (`input_schema`) and server tools (`type`) pass as they are."""
    converted = []
    for schema in tools:
        function = schema.get("function")
        if schema.get("type") == "function" and isinstance(function, dict):
            schema = function
        elif "input_schema" in schema or "type" in schema:
            converted.append(dict(schema))
            continue
        tool: dict[str, Any] = {
            "name": schema["name"],
            "input_schema": schema.get("parameters") or {"type": "object", "properties": {}},
        }
        if schema.get("description"):
            tool["description"] = schema["description"]
        converted.append(tool)
    return converted


def _add_tools(request: dict[str, Any], tools: Sequence[ToolSchema] | None) -> None:
    """Tools given to the call, then any from `completion_kwargs`; `tool_choice` only with tools
    (the API refuses it alone, and planning calls send none)."""
    wire = to_anthropic_tools([*(tools or ()), *request.pop("tools", ())])
    choice = request.pop("tool_choice", None)
    if wire:
        request["tools"] = wire
        if choice is not None:
            request["tool_choice"] = _tool_choice(choice)


def _tool_choice(choice: Any) -> Any:
    """Anthropic's `tool_choice` from OpenAI's spelling ("required", a name, a function dict)."""
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, Mapping):
            return {"type": "tool", "name": function["name"]}
        return dict(choice)
    if choice in _TOOL_CHOICES:
        return {"type": _TOOL_CHOICES[choice]}
    return {"type": "tool", "name": str(choice)}


# -- responses ---------------------------------------------------------------------------------
def _as_dict(obj: Any) -> Block:
    """An SDK object (block, usage) as JSON data."""
    if isinstance(obj, Mapping):
        return dict(obj)
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is not None:
        return dict(to_dict(mode="json", exclude_none=True))
    return dict(obj.model_dump(mode="json", exclude_none=True))


def _message_from_blocks(blocks: list[Block], response: Any, stops: list[str]) -> ChatMessage:
    text = TextFilter(stops)
    content, think = text.feed(_joined(blocks, "text"))
    tail, tail_think = text.flush()
    reasoning = (_joined(blocks, "thinking") + think + tail_think).strip()
    return ChatMessage(
        role=Role.ASSISTANT,
        content=content + tail,
        tool_calls=tuple(
            ToolCall(id=b["id"], name=b["name"], arguments=_object_or_empty(b.get("input")))
            for b in blocks
            if b.get("type") == "tool_use"
        ),
        reasoning=reasoning or None,
        usage=_usage(_as_dict(response.usage)) if response.usage is not None else None,
        finish_reason="stop" if text.stopped else _finish(response.stop_reason),
        raw=response,
    )


def _joined(blocks: Sequence[Block], kind: str) -> str:
    """The `kind` ("text" or "thinking") of all blocks of that type, in order. A block that does
    not directly follow one of its kind is set off from what came before by a blank line."""
    out, previous = "", None
    for block in blocks:
        value = block.get(kind) if block.get("type") == kind else None
        if value:
            out += ("\n\n" if out and previous != kind else "") + value
        previous = block.get("type")
    return out


def _finish(stop_reason: str | None) -> str | None:
    return _FINISH_REASONS.get(stop_reason, stop_reason) if stop_reason else None


def _usage(values: Mapping[str, Any]) -> Usage:
    def count(key: str, source: Mapping[str, Any] = values) -> int:
        value = source.get(key)
        return value if isinstance(value, int) else 0

    details = values.get("output_tokens_details")
    cached = count("cache_read_input_tokens")
    return Usage(
        input_tokens=count("input_tokens") + cached + count("cache_creation_input_tokens"),
        output_tokens=count("output_tokens"),
        cached_tokens=cached,
        reasoning_tokens=count("thinking_tokens", details) if isinstance(details, Mapping) else 0,
    )


def _blocks_of_raw(raw: Any) -> list[Block] | None:
    """The content blocks of an SDK `Message` kept in `ChatMessage.raw`."""
    if getattr(raw, "type", None) != "message" or not isinstance(getattr(raw, "content", None), list):
        return None
    return _replayable([_as_dict(block) for block in raw.content])


def _replayable(blocks: Sequence[Block]) -> list[Block]:
    """Blocks as they can be sent back: only the fields the API accepts for the block types
    codeloop knows, other (server-tool) blocks as received, empty text blocks dropped."""
    kept: list[Block] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            kept.append({"type": "text", "text": block["text"]})
        elif kind == "tool_use":
            kept.append(_tool_use(ToolCall(block["id"], block["name"], _object_or_empty(block.get("input")))))
        elif kind == "thinking":
            signature = block.get("signature", "")
            kept.append({"type": kind, "thinking": block.get("thinking", ""), "signature": signature})
        elif kind == "redacted_thinking":
            kept.append({"type": kind, "data": block.get("data", "")})
        elif kind != "text":
            kept.append(dict(block))
    return kept


class _TurnRecords:
    """The content blocks of the latest assistant turns with tool calls, by first tool-use id
    (bounded, thread-safe): what lets signed thinking and server-tool blocks go back."""

    def __init__(self, limit: int = _RECORD_LIMIT) -> None:
        self._turns: OrderedDict[str, list[Block]] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def remember(self, blocks: Sequence[Block]) -> None:
        ids = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
        if not ids or not isinstance(ids[0], str):
            return
        with self._lock:
            self._turns[ids[0]] = _replayable(blocks)
            self._turns.move_to_end(ids[0])
            while len(self._turns) > self._limit:
                self._turns.popitem(last=False)

    def recall(self, message: ChatMessage) -> list[Block] | None:
        if not message.tool_calls:
            return None
        with self._lock:
            return self._turns.get(message.tool_calls[0].id)


class _StreamState:
    """Folds the raw stream events into deltas, and keeps the turn's blocks for `_TurnRecords`.
    Tool-call fragments are indexed by content block; server-tool input is not reported."""

    def __init__(self) -> None:
        self.blocks: dict[int, Block] = {}
        self.json_parts: dict[int, list[str]] = {}
        self.usage: dict[str, Any] = {}
        self.emitted = {"text": False, "thinking": False}
        self.set_off: set[int] = set()  # blocks whose first fragment needs a blank line before it
        self.last_type: str | None = None
        self.finished = False  # a message_delta (stop reason, final usage) arrived

    def feed(self, event: Any) -> MessageDelta | None:
        handler = getattr(self, f"_on_{getattr(event, 'type', '')}", None)
        return handler(event) if handler is not None else None  # ping, message_stop, unknown: nothing

    def content(self) -> list[Block]:
        return [self.blocks[index] for index in sorted(self.blocks)]

    def _on_message_start(self, event: Any) -> None:
        self.usage.update(_as_dict(event.message.usage))

    def _on_content_block_start(self, event: Any) -> MessageDelta | None:
        index, block = event.index, _as_dict(event.content_block)
        kind = block.get("type")
        self.blocks[index] = block
        if kind in self.emitted and self.emitted[kind] and self.last_type != kind:
            self.set_off.add(index)
        self.last_type = kind
        if kind in ("text", "thinking"):
            initial, block[kind] = block.get(kind) or "", ""
            return self._grow(index, kind, initial)
        if kind == "tool_use":
            initial = json.dumps(block["input"]) if block.get("input") else ""
            call = ToolCallDelta(index=index, id=block.get("id"), name=block.get("name"), arguments=initial)
            return MessageDelta(tool_calls=(call,))
        return None

    def _on_content_block_delta(self, event: Any) -> MessageDelta | None:
        index, delta = event.index, event.delta
        kind = getattr(delta, "type", None)
        if kind == "text_delta":
            return self._grow(index, "text", delta.text)
        if kind == "thinking_delta":
            return self._grow(index, "thinking", delta.thinking)
        if kind == "signature_delta" and index in self.blocks:
            self.blocks[index]["signature"] = delta.signature
        if kind == "input_json_delta":
            return self._json(index, delta.partial_json)
        return None  # citations_delta and unknown deltas

    def _on_content_block_stop(self, event: Any) -> None:
        parts = self.json_parts.pop(event.index, None)
        if parts is not None and event.index in self.blocks:
            self.blocks[event.index]["input"] = parse_arguments("".join(parts))

    def _on_message_delta(self, event: Any) -> MessageDelta:
        if event.usage is not None:
            self.usage.update(_as_dict(event.usage))  # cumulative totals; absent ones keep their value
        self.finished = True
        return MessageDelta(usage=_usage(self.usage), finish_reason=_finish(event.delta.stop_reason))

    def _grow(self, index: int, kind: str, piece: str) -> MessageDelta | None:
        block = self.blocks.get(index)
        if block is None or not piece:
            return None
        block[kind] = block.get(kind, "") + piece
        if index in self.set_off:
            self.set_off.discard(index)
            piece = "\n\n" + piece
        self.emitted[kind] = True
        return MessageDelta(content=piece) if kind == "text" else MessageDelta(reasoning=piece)

    def _json(self, index: int, part: str) -> MessageDelta | None:
        self.json_parts.setdefault(index, []).append(part)
        if not part or self.blocks.get(index, {}).get("type") != "tool_use":
            return None  # a server tool's input is the server's business
        return MessageDelta(tool_calls=(ToolCallDelta(index=index, arguments=part),))


# -- errors ------------------------------------------------------------------------------------
def _api_error(err: Exception, anthropic: ModuleType, model_id: str) -> ModelHTTPError:
    body = getattr(err, "body", None)
    detail = _provider_message(body, getattr(err, "message", None) or str(err))
    kind = _error_type(body)
    if isinstance(err, anthropic.APIStatusError) and err.status_code >= 400:
        headers = err.response.headers
        return http_status_error(model_id, err.status_code, detail, code=kind, body=body, headers=headers)
    if isinstance(err, anthropic.APIStatusError):  # an `error` event inside a 200 stream
        return ModelHTTPError(
            f"Model {model_id!r}: the server reported an error in the stream ({kind}): {detail}",
            code=kind,
            retryable=kind in _RETRYABLE_TYPES,
            body=body,
        )
    if isinstance(err, anthropic.APIConnectionError):  # APITimeoutError included
        url = getattr(getattr(err, "request", None), "url", "the server")
        return ModelHTTPError(f"Model {model_id!r}: could not reach {url}: {detail}", retryable=True)
    return ModelHTTPError(f"Model {model_id!r}: {detail}", body=body)


def _error_type(body: object) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def _provider_message(body: object, fallback: str) -> str:
    """The provider's own words: `error.message`, with the request id support will ask for."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        request_id = body.get("request_id") if isinstance(body, dict) else None
        return str(error["message"]) + (f" (request_id {request_id})" if request_id else "")
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return fallback
